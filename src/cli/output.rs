//! What every command shares: opening the database, the one JSON object printed on success, the
//! `{"error": "invalid_input", ...}` failure, and the audit wrapper.

use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;

use crate::admin::{self, AdminError};
use crate::config::Settings;
use crate::partner::program::ProgramError;
use crate::store::Db;

/// A command's answer: the JSON object it prints, or why it failed.
pub type CommandResult = Result<Value, AdminError>;

fn to_json<T: Serialize>(outcome: &T) -> CommandResult {
    serde_json::to_value(outcome).map_err(|e| AdminError::Internal(e.into()))
}

/// An operator command's outcome as the JSON the CLI prints.
pub fn admin_result<T: Serialize>(r: Result<T, AdminError>) -> CommandResult {
    r.and_then(|outcome| to_json(&outcome))
}

/// A partner-program outcome as the JSON the CLI prints, or its refusal in one line.
pub fn program_result<T: Serialize>(r: Result<T, ProgramError>) -> CommandResult {
    match r {
        Ok(outcome) => to_json(&outcome),
        Err(ProgramError::Internal(e)) => Err(AdminError::Internal(e)),
        Err(other) => Err(AdminError::Invalid(other.line())),
    }
}

/// `result`, once its success is in the audit log (with what it answered).
pub async fn audited<T: Serialize>(
    db: &Db,
    now: i64,
    action: &str,
    result: Result<T, AdminError>,
) -> Result<T, AdminError> {
    let outcome = result?;
    admin::record_cli_event(db, now, action, &outcome).await?;
    Ok(outcome)
}

/// The database the settings name; a failure is reported and becomes the exit code.
pub async fn open_db(settings: &Settings) -> Result<Db, ExitCode> {
    Db::connect(&settings.database_url)
        .await
        .map_err(|e| fail(format!("cannot open the database: {e}")))
}

/// Reports `reason` on standard error in one line; the command then exits with a failure.
pub fn fail(reason: impl std::fmt::Display) -> ExitCode {
    eprintln!("onyx-id: error: {reason}");
    ExitCode::FAILURE
}

/// Prints a command's answer as one JSON object (its failure too, and then the reason on
/// standard error) and turns it into the exit code.
pub fn report(result: CommandResult) -> ExitCode {
    match result {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(AdminError::Invalid(reason)) => {
            println!(
                "{}",
                serde_json::json!({ "error": "invalid_input", "error_description": reason })
            );
            fail(reason)
        }
        Err(AdminError::Internal(e)) => {
            println!(
                "{}",
                serde_json::json!({ "error": "internal_error", "error_description": e.to_string() })
            );
            fail(e)
        }
    }
}
