//! Submitting an app's draft for review (`POST /partner/apps/{client_id}/submit`) and following
//! the review (`/partner/apps/{client_id}/review`): each step with its state in words and the
//! reviewer's note, and the pre-checks' findings in words, each linking to its field on the
//! edit form.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::draft_form::{field_id, step_state_class, step_state_words};
use super::{AppHeader, draft_of_app, failed, member_app, progress};
use crate::console::form::{Banner, Form, refused_status};
use crate::console::{Nav, Section, date_time, refusal};
use crate::partner::review;
use crate::partner::{AppDraft, Finding};
use crate::startup::AppState;
use crate::web::see_other;

pub struct StepRow {
    pub key: &'static str,
    pub title: &'static str,
    pub state: &'static str,
    pub class: &'static str,
    /// Who decided, in words.
    pub by: Option<&'static str>,
    pub note: Option<String>,
    pub updated: String,
    pub blocking: usize,
}

pub struct FindingRow {
    pub step: &'static str,
    pub message: String,
    /// `/partner/apps/{client_id}/edit#field`.
    pub href: String,
}

#[derive(Template)]
#[template(path = "console/partner/app_review.html")]
pub struct ReviewPage {
    pub nav: Nav,
    pub header: AppHeader,
    pub banner: Banner,
    /// None: never submitted.
    pub review: Option<ReviewSummary>,
    pub steps: Vec<StepRow>,
    pub findings: Vec<FindingRow>,
}

pub struct ReviewSummary {
    pub number: i64,
    pub state: &'static str,
    pub submitted: String,
    pub progress: String,
}

fn finding_rows(client_id: &str, findings: &[Finding], draft: &AppDraft) -> Vec<FindingRow> {
    findings
        .iter()
        .map(|f| FindingRow {
            step: f.step.title(),
            message: crate::console::sentence(&f.message),
            href: format!(
                "/partner/apps/{client_id}/edit#{}",
                field_id(&f.field, draft)
            ),
        })
        .collect()
}

fn reviewer_words(reviewer: Option<&str>) -> Option<&'static str> {
    match reviewer {
        None => None,
        Some("onyx-id") => Some("Onyx ID, automatically"),
        Some(_) => Some("An Onyx reviewer"),
    }
}

async fn page(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
    status: StatusCode,
    banner: Banner,
) -> Response {
    let path = format!("/partner/apps/{client_id}/review");
    let (person, app, _) = or_page!(member_app(state, headers, client_id, &path).await);
    let (draft, _) = or_page!(draft_of_app(state, &app).await);
    let latest = or_page!(super::latest_review(state, &app).await);
    let (summary, steps, findings) =
        match &latest {
            Some(r) => {
                let view = match review::review_view(&state.db, &app).await {
                    Ok(v) => v,
                    Err(e) => return failed(e),
                };
                let steps = view
                    .steps
                    .iter()
                    .map(|s| StepRow {
                        key: s.step.as_str(),
                        title: s.title,
                        state: step_state_words(s.state),
                        class: step_state_class(s.state),
                        by: reviewer_words(s.reviewer.as_deref()),
                        note: s.note.clone().filter(|n| !n.trim().is_empty()),
                        updated: date_time(s.updated_at),
                        blocking: s.blocking_findings,
                    })
                    .collect();
                let summary = ReviewSummary {
                    number: view.review,
                    state: match view.state.as_str() {
                        "approved" => "Approved: every step is done",
                        "rejected" => "Rejected",
                        _ => "Open: Onyx is reviewing it",
                    },
                    submitted: date_time(view.submitted_at),
                    progress: progress(Some(r)),
                };
                (
                    Some(summary),
                    steps,
                    finding_rows(client_id, &view.findings, &draft),
                )
            }
            None => {
                // Never submitted: the findings the pre-checks would record now.
                let findings =
                    match crate::partner::apps::run_prechecks(&state.db, &app.client_id, &draft)
                        .await
                    {
                        Ok(f) => f,
                        Err(e) => return failed(e),
                    };
                (None, Vec::new(), finding_rows(client_id, &findings, &draft))
            }
        };
    person.render(
        status,
        &ReviewPage {
            nav: person.nav(Section::Apps),
            header: AppHeader::of(&app, Some(&draft.name), "review"),
            banner,
            review: summary,
            steps,
            findings,
        },
    )
}

pub(super) async fn review_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    page(
        &state,
        &headers,
        &client_id,
        StatusCode::OK,
        Banner::default(),
    )
    .await
}

pub(super) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let path = format!("/partner/apps/{client_id}/review");
    let (person, app, _) = or_page!(member_app(&state, &headers, &client_id, &path).await);
    if let Err(r) = Form::checked(&state, &headers, &body) {
        return r;
    }
    let actor = person.partner_actor(app.partner_id.as_deref().unwrap_or_default());
    match review::submit(&state.db, state.now(), &actor, &app).await {
        Ok(_) => see_other(&path),
        Err(e) => {
            let (s, message, _) = refusal(&e);
            page(
                &state,
                &headers,
                &client_id,
                refused_status(s),
                Banner::refused(message),
            )
            .await
        }
    }
}
