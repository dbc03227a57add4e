//! `onyx-id audit`.

use std::process::ExitCode;

use clap::Args;

use super::output::{open_db, program_result, report};
use crate::config::Settings;
use crate::partner::program;
use crate::store::audit::Filter;

#[derive(Args)]
pub struct AuditArgs {
    /// Only this app's entries.
    #[arg(long, allow_hyphen_values = true)]
    app: Option<String>,
    /// Only this partner's entries.
    #[arg(long, allow_hyphen_values = true)]
    partner: Option<String>,
    #[arg(long, default_value_t = 200)]
    limit: i64,
}

pub async fn run(args: AuditArgs, settings: &Settings) -> ExitCode {
    let db = match open_db(settings).await {
        Ok(db) => db,
        Err(code) => return code,
    };
    let filter = Filter {
        client_id: args.app,
        partner_id: args.partner,
        limit: Some(args.limit),
    };
    report(program_result(program::audit_view(&db, &filter).await))
}
