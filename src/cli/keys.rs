//! `onyx-id keys rotate`.

use std::process::ExitCode;

use clap::Subcommand;

use super::output::{admin_result, audited, open_db, report};
use crate::admin;
use crate::config::Settings;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add a new ES256 and RS256 key. They are published at once and sign after the publish-ahead
    /// window (120 s) so clients' cached JWKS catch up; old keys stay published until their
    /// tokens expire.
    Rotate {
        /// Sign with the new keys at once (for a compromised key).
        #[arg(long)]
        now: bool,
        /// With --now: take every older key out of the JWKS at once (a compromised key), instead
        /// of keeping it published until the tokens it signed expire.
        #[arg(long, requires = "now")]
        revoke_old: bool,
    },
}

pub async fn run(command: KeysCommand, settings: &Settings, now: i64) -> ExitCode {
    let KeysCommand::Rotate {
        now: immediately,
        revoke_old,
    } = command;
    // Opened first: no rotation is made while the audit log cannot be reached.
    let db = match open_db(settings).await {
        Ok(db) => db,
        Err(code) => return code,
    };
    let rotated = admin::rotate_keys(&db, settings, now, immediately, revoke_old).await;
    report(admin_result(
        audited(&db, now, "keys.rotated", rotated).await,
    ))
}
