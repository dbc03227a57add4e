//! `sqlx::migrate!` embeds the migrations at compile time, and cargo does not know it reads
//! them: without this, an added or edited migration is missed by an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
