//! `onyx-id resource-servers create`.

use std::process::ExitCode;

use clap::Subcommand;

use super::output::{admin_result, open_db, report};
use crate::admin;
use crate::config::Settings;

#[derive(Subcommand)]
pub enum ResourceServersCommand {
    /// Register a resource server. Prints {"client_id", "client_secret", "audience", ...}: the
    /// credentials it introspects with. Tokens requested with resource=AUDIENCE are for it.
    Create {
        #[arg(long)]
        name: String,
        /// The audience (an absolute URI, RFC 8707) its tokens carry.
        #[arg(long)]
        audience: String,
    },
}

pub async fn run(command: ResourceServersCommand, settings: &Settings, now: i64) -> ExitCode {
    let ResourceServersCommand::Create { name, audience } = command;
    let db = match open_db(settings).await {
        Ok(db) => db,
        Err(code) => return code,
    };
    report(admin_result(
        admin::create_resource_server(&db, now, &name, &audience).await,
    ))
}
