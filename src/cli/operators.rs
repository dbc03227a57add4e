//! `onyx-id operators create`.

use std::process::ExitCode;

use clap::Subcommand;

use super::output::{open_db, program_result, report};
use crate::admin::CLI_ACTOR;
use crate::config::Settings;
use crate::partner::partners;

#[derive(Subcommand)]
pub enum OperatorsCommand {
    /// Make an account an operator and print an operator API key.
    Create {
        #[arg(long)]
        email: String,
    },
}

pub async fn run(command: OperatorsCommand, settings: &Settings, now: i64) -> ExitCode {
    let OperatorsCommand::Create { email } = command;
    let db = match open_db(settings).await {
        Ok(db) => db,
        Err(code) => return code,
    };
    report(program_result(
        partners::create_operator(&db, now, CLI_ACTOR, &email).await,
    ))
}
