//! `onyx-id grants show | revoke`.

use std::process::ExitCode;

use clap::Subcommand;

use super::output::{admin_result, open_db, report};
use crate::admin;
use crate::config::Settings;

#[derive(Subcommand)]
pub enum GrantsCommand {
    /// Print an account's grants: each app's permissions (state, reason, expiry) and the
    /// permission history.
    Show {
        /// The account's email.
        #[arg(long)]
        user: String,
    },
    /// Remove an app's access to an account as Onyx (revoked_by_onyx): one scope, or all.
    Revoke {
        #[arg(long)]
        user: String,
        #[arg(long, allow_hyphen_values = true)]
        app: String,
        #[arg(long)]
        scope: Option<String>,
    },
}

pub async fn run(command: GrantsCommand, settings: &Settings, now: i64) -> ExitCode {
    let db = match open_db(settings).await {
        Ok(db) => db,
        Err(code) => return code,
    };
    report(match command {
        GrantsCommand::Show { user } => admin_result(admin::show_grants(&db, now, &user).await),
        GrantsCommand::Revoke { user, app, scope } => {
            admin_result(admin::revoke_grant(&db, now, &user, &app, scope.as_deref()).await)
        }
    })
}
