//! `onyx-id reviews queue | decide`.

use std::process::ExitCode;

use clap::Subcommand;
use clap::builder::PossibleValuesParser;
use strum::VariantNames;

use super::output::{open_db, program_result, report};
use crate::admin::CLI_ACTOR;
use crate::config::Settings;
use crate::partner::program::ProgramError;
use crate::partner::review::{self, StepDecision};
use crate::partner::{Step, StepState, apps};
use crate::store::Db;

#[derive(Subcommand)]
pub enum ReviewsCommand {
    /// Open reviews, oldest first.
    Queue,
    /// Decide one step of an app's review.
    Decide {
        #[arg(long, allow_hyphen_values = true)]
        app: String,
        /// company, app_identity, use_case, scopes, domain, redirect_uris, webhooks,
        /// connectivity_catalogue, support, privacy_security or production.
        #[arg(long)]
        step: String,
        #[arg(long, value_parser = PossibleValuesParser::new(StepState::decisions()))]
        state: String,
        #[arg(long)]
        note: Option<String>,
        /// The draft version the decision is made on (required; `apps show` and `reviews
        /// queue` show it). A decision on an older version is refused with what changed.
        #[arg(long)]
        draft_version: Option<i64>,
    },
}

pub async fn run(command: ReviewsCommand, settings: &Settings, now: i64) -> ExitCode {
    let db = match open_db(settings).await {
        Ok(db) => db,
        Err(code) => return code,
    };
    report(match command {
        ReviewsCommand::Queue => program_result(review::queue(&db).await),
        ReviewsCommand::Decide {
            app,
            step,
            state,
            note,
            draft_version,
        } => program_result(decide(&db, now, &app, &step, &state, note, draft_version).await),
    })
}

/// `reviews decide`: the step and state parsed, then the decision on the app.
async fn decide(
    db: &Db,
    now: i64,
    app: &str,
    step: &str,
    state: &str,
    note: Option<String>,
    draft_version: Option<i64>,
) -> Result<review::DecisionOutcome, ProgramError> {
    match (Step::parse(step), StepState::parse(state)) {
        (Some(step), Some(state)) => {
            let app = apps::any_app(db, app).await?;
            let decision = StepDecision {
                step,
                state,
                note,
                draft_version,
            };
            review::decide(db, now, CLI_ACTOR, &app, decision).await
        }
        (None, _) => Err(ProgramError::invalid(
            "invalid_request",
            format!(
                "--step {step:?} is not one of {}",
                Step::VARIANTS.join(", ")
            ),
        )),
        (_, None) => Err(ProgramError::invalid("invalid_request", "bad --state")),
    }
}
