//! `onyx-id users create | update`.

use std::io::Read;
use std::process::ExitCode;

use clap::Subcommand;

use super::output::{admin_result, fail, open_db, report};
use crate::admin::{self, UserChanges};
use crate::config::Settings;

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create an account. Prints {"user_id", "email", "name"}.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Read the password from standard input (one line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The email address is verified.
        #[arg(long)]
        verified: bool,
        /// The account's region, an ISO 3166-1 alpha-2 code such as GB.
        #[arg(long)]
        region: Option<String>,
        /// The account's risk level.
        #[arg(long, value_parser = ["normal", "elevated"])]
        risk: Option<String>,
    },
    /// Change the facts that decide what an account may grant and for how long. Takes effect
    /// at once for every app. Prints the account's facts.
    Update {
        #[arg(long)]
        email: String,
        /// Whether the email address is verified.
        #[arg(long)]
        verified: Option<bool>,
        /// The account's region (ISO 3166-1 alpha-2), or "none".
        #[arg(long)]
        region: Option<String>,
        #[arg(long, value_parser = ["normal", "elevated"])]
        risk: Option<String>,
    },
}

pub async fn run(command: UsersCommand, settings: &Settings, now: i64) -> ExitCode {
    let db = match open_db(settings).await {
        Ok(db) => db,
        Err(code) => return code,
    };
    let result = match command {
        UsersCommand::Update {
            email,
            verified,
            region,
            risk,
        } => {
            let changes = UserChanges {
                email_verified: verified,
                region: region.map(|r| (r != "none").then_some(r)),
                risk_level: risk,
            };
            admin::update_user(&db, &email, &changes).await
        }
        UsersCommand::Create {
            email,
            name,
            password_stdin: _,
            verified,
            region,
            risk,
        } => {
            let mut password = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut password) {
                return fail(format!("cannot read the password from stdin: {e}"));
            }
            let password = password.strip_suffix('\n').unwrap_or(&password);
            let password = password.strip_suffix('\r').unwrap_or(password);
            let changes = UserChanges {
                email_verified: verified.then_some(true),
                region: region.map(Some),
                risk_level: risk,
            };
            match admin::create_user(&db, now, &email, &name, password).await {
                Ok(_) => admin::update_user(&db, &email, &changes).await,
                Err(e) => Err(e),
            }
        }
    };
    report(admin_result(result))
}
