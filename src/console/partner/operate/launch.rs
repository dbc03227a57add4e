//! Launch (`/partner/apps/{client_id}/launch`): the accounts that may sign in to the app before
//! production (`apps::set_test_accounts`), the launch checklist with each requirement's
//! evidence (`launch::launch_view`), and where production approval stands (the `production`
//! review step and the app's stage).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{AppPage, query_member, words_as_sentence};
use crate::console::form::{Banner, FieldErrors, Form, refused_status};
use crate::console::partner::AppHeader;
use crate::console::{Nav, Section, date_time, refusal};
use crate::error::AppError;
use crate::partner::access::Stage;
use crate::partner::launch::{self, RequirementStatus};
use crate::partner::program::ProgramError;
use crate::partner::{Step, StepState, apps};
use crate::startup::AppState;
use crate::store::reviews;
use crate::web::see_other;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/partner/apps/{client_id}/launch", get(launch_get))
        .route(
            "/partner/apps/{client_id}/test-accounts",
            post(test_accounts_set),
        )
}

/// One launch requirement in words.
pub struct RequirementRow {
    pub key: &'static str,
    pub label: &'static str,
    /// "Met", "Not met" or "Not applicable".
    pub status: &'static str,
    pub class: &'static str,
    pub evidence: String,
}

/// Where production approval stands.
pub struct Production {
    /// The production step's state in words.
    pub state: &'static str,
    pub class: &'static str,
    pub note: Option<String>,
    pub decided: Option<String>,
}

#[derive(Template)]
#[template(path = "console/partner/launch.html")]
pub struct LaunchPage {
    pub nav: Nav,
    pub header: AppHeader,
    pub banner: Banner,
    pub errors: FieldErrors,
    /// The test accounts as typed (or as stored), one per line.
    pub emails: String,
    pub account_count: usize,
    /// `None` before the app is submitted for review.
    pub checklist: Option<Vec<RequirementRow>>,
    pub ready: bool,
    pub production: Option<Production>,
    pub in_production: bool,
}

fn path_of(client_id: &str) -> String {
    format!("/partner/apps/{client_id}/launch")
}

pub fn step_state_words(state: StepState) -> (&'static str, &'static str) {
    match state {
        StepState::Pending => ("Waiting for Onyx", "wait"),
        StepState::Approved => ("Approved", "good"),
        StepState::ChangesRequested => ("Changes requested", "bad"),
        StepState::Rejected => ("Rejected", "bad"),
        StepState::NotApplicable => ("Not applicable", "quiet"),
    }
}

async fn page(
    state: &AppState,
    p: &AppPage,
    status: StatusCode,
    banner: Banner,
    errors: FieldErrors,
    typed: Option<String>,
) -> Response {
    let accounts = match apps::test_accounts_view(&state.db, &p.app).await {
        Ok(a) => a.test_accounts,
        Err(e) => return internal(&e),
    };
    let (checklist, ready) = match launch::launch_view(&state.db, &p.app).await {
        Ok(v) => {
            let rows = v
                .requirements
                .into_iter()
                .map(|r| {
                    let (status, class) = match r.status {
                        RequirementStatus::Met => ("Met", "good"),
                        RequirementStatus::NotMet => ("Not met", "bad"),
                        RequirementStatus::NotApplicable => ("Not applicable", "quiet"),
                    };
                    RequirementRow {
                        key: r.requirement,
                        label: r.label,
                        status,
                        class,
                        evidence: words_as_sentence(&r.evidence),
                    }
                })
                .collect();
            (Some(rows), v.ready_for_production)
        }
        Err(ProgramError::Conflict { .. }) => (None, false),
        Err(e) => return internal(&e),
    };
    let production = match reviews::latest(&state.db, &p.app.client_id).await {
        Ok(review) => review.map(|r| {
            let rec = r.step(Step::Production);
            let (words, class) = step_state_words(r.step_state(Step::Production));
            Production {
                state: words,
                class,
                note: rec.and_then(|s| s.note.clone()),
                decided: rec
                    .filter(|s| s.state != StepState::Pending)
                    .map(|s| date_time(s.updated_at)),
            }
        }),
        Err(e) => return AppError::internal(e).into_response(),
    };
    let account_count = accounts.len();
    p.person.render(
        status,
        &LaunchPage {
            nav: p.person.nav(Section::Apps),
            header: p.header("launch"),
            banner,
            errors,
            emails: typed.unwrap_or_else(|| accounts.join("\n")),
            account_count,
            checklist,
            ready,
            production,
            in_production: p.app.stage == Stage::Production,
        },
    )
}

fn internal(e: &ProgramError) -> Response {
    let (s, message, _) = refusal(e);
    crate::web::error_page(s, "Something went wrong", &message)
}

async fn launch_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let p = or_page!(AppPage::open(&state, &headers, &client_id, &path_of(&client_id)).await);
    let banner = match query_member(&query, "done").as_deref() {
        Some("accounts") => Banner::done("The test accounts were saved."),
        _ => Banner::default(),
    };
    page(&state, &p, StatusCode::OK, banner, FieldErrors::new(), None).await
}

async fn test_accounts_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let path = path_of(&client_id);
    let p = or_page!(AppPage::open(&state, &headers, &client_id, &path).await);
    let form = or_page!(Form::checked(&state, &headers, &body));
    let emails = form.lines("emails");
    let actor = p.actor();
    match apps::set_test_accounts(&state.db, state.now(), &actor, &p.app, &emails).await {
        Ok(_) => see_other(&format!("{path}?done=accounts")),
        Err(e) => {
            let (s, message, _) = refusal(&e);
            let mut errors = FieldErrors::new();
            // The service names the problem; the line it is on is the first one the same
            // address check refuses.
            match emails
                .iter()
                .position(|e| crate::admin::validate_email(e).is_err())
            {
                Some(i) => errors.add(&format!("emails[{i}]"), message),
                None => errors.add("emails", message),
            }
            let typed = Some(form.raw("emails").to_string());
            page(
                &state,
                &p,
                refused_status(s),
                Banner::default(),
                errors,
                typed,
            )
            .await
        }
    }
}
