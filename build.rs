//! Two things cargo cannot see by itself:
//! - `sqlx::migrate!` embeds the migrations at compile time, and cargo does not know it reads
//!   them: without `rerun-if-changed=migrations`, an added or edited migration is missed by an
//!   incremental build.
//! - The git revision this binary is built from (`onyx_build_info` in the metrics):
//!   `ONYX_GIT_REVISION`, or "unknown" outside a git checkout.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let revision = std::env::var("ONYX_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=ONYX_GIT_REVISION={revision}");
    println!("cargo:rerun-if-env-changed=ONYX_GIT_REVISION");
    // Built again when HEAD moves: the HEAD file, and the branch it names (a worktree's HEAD
    // and the shared refs live in different folders, which git itself resolves).
    // Only files that exist are named: cargo runs the script again every time for one that
    // does not.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
