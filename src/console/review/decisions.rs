//! The review console's actions, each the operator API's handler as a form: parse, one call of
//! the partner program's service with the operator's console actor (`operator:{user}/console`),
//! then back to the app's review page (`?done=…#…`), or the page again with the refusal at the
//! form it came from and what was typed kept.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::super::form::{Banner, FieldErrors, Form, refused_status};
use super::super::{MessagePage, Section, refusal, sentence};
use super::app::{Typed, Which, app_page, operator_and_app, step_name};
use crate::partner::access_change::{self, AccessChange};
use crate::partner::capabilities::{self, CapabilityChange};
use crate::partner::program::ProgramError;
use crate::partner::review::{self, StepDecision};
use crate::partner::{Step, StepState, apps};
use crate::startup::AppState;
use crate::web::see_other;

/// A refusal in words for the form, with its status; a draft that changed since the page was
/// read says so plainly.
fn refusal_words(e: &ProgramError) -> (StatusCode, String, Option<String>) {
    if let ProgramError::Conflict {
        code: "draft_changed",
        extra,
        ..
    } = e
    {
        let now = extra.get("draft_version").and_then(|v| v.as_i64());
        let seen = extra
            .get("decided_on_draft_version")
            .and_then(|v| v.as_i64());
        let fields: Vec<&str> = extra
            .get("changed_fields")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str())
                    .map(super::field_label)
                    .collect()
            })
            .unwrap_or_default();
        let mut s = String::from("The draft changed since you read it");
        if let (Some(seen), Some(now)) = (seen, now) {
            s.push_str(&format!(
                " (you read version {seen}; it is now version {now})"
            ));
        }
        if !fields.is_empty() {
            s.push_str(&format!(": {} changed", fields.join(", ")));
        }
        s.push_str(". Nothing was recorded. Read the step again as it is now, then decide.");
        return (StatusCode::CONFLICT, s, None);
    }
    let (status, message, field) = refusal(e);
    (refused_status(status), message, field)
}

fn refused_banner(what: &str) -> Banner {
    Banner::refused(format!(
        "{what} was not recorded: the reason is at its form below. What you typed is kept."
    ))
}

pub(super) async fn step_decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, step)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (person, app) = or_page!(operator_and_app(&state, &headers, &client_id).await);
    let form = or_page!(Form::checked(&state, &headers, &body));
    let Some(step) = Step::parse(&step) else {
        return person.render(
            StatusCode::BAD_REQUEST,
            &MessagePage {
                nav: person.nav(Section::Review),
                title: "No such review step",
                message: "This form names a review step that does not exist. Nothing was recorded.",
                back: Some(("/review", "Go to the review queue")),
            },
        );
    };
    let key = step.as_str();
    let mut errors = FieldErrors::new();
    let decision = StepState::parse(form.raw("state")).filter(|s| *s != StepState::Pending);
    let status = match decision {
        None => {
            errors.add(
                &format!("{key}-state"),
                "Choose a decision: approve, request changes, reject, or not applicable.",
            );
            StatusCode::BAD_REQUEST
        }
        Some(decision) => {
            let outcome = review::decide(
                &state.db,
                state.now(),
                &person.operator_actor(),
                &app,
                StepDecision {
                    step,
                    state: decision,
                    note: form.text("note").map(String::from),
                    draft_version: form.text("draft_version").and_then(|v| v.parse().ok()),
                },
            )
            .await;
            match outcome {
                Ok(_) => {
                    return see_other(&format!("/review/apps/{client_id}?done=decided#step-{key}"));
                }
                Err(e) => {
                    let (status, message, field) = refusal_words(&e);
                    let at_note = field.as_deref() == Some("note")
                        || message.contains("a note is required")
                        || message.starts_with("Note ");
                    let at = if at_note { "note" } else { "state" };
                    errors.add(&format!("{key}-{at}"), message);
                    status
                }
            }
        }
    };
    let banner = refused_banner(&format!("Your decision on {}", step_name(step)));
    let typed = Typed {
        which: Which::Step(step),
        form,
        errors,
    };
    app_page(&state, &person, &app, banner, Some(typed), status).await
}

pub(super) async fn capability_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (person, app) = or_page!(operator_and_app(&state, &headers, &client_id).await);
    let form = or_page!(Form::checked(&state, &headers, &body));
    let change = CapabilityChange::parse(
        &name,
        form.raw("state"),
        form.text("reason").map(String::from),
        form.text("note").map(String::from),
    );
    let outcome = match change {
        Ok(change) => {
            capabilities::set_capability(
                &state.db,
                state.now(),
                &person.operator_actor(),
                &app,
                change,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let e = match outcome {
        Ok(_) => {
            return see_other(&format!(
                "/review/apps/{client_id}?done=capability#capability-{name}"
            ));
        }
        Err(e) => e,
    };
    let (status, message, _) = refusal_words(&e);
    let known = crate::partner::CAPABILITIES.contains(&name.as_str());
    let mut errors = FieldErrors::new();
    let banner = if known {
        errors.add(&format!("cap-{name}"), message);
        refused_banner("The capability's state")
    } else {
        Banner::refused(message)
    };
    let typed = Typed {
        which: Which::Capability(name),
        form,
        errors,
    };
    app_page(&state, &person, &app, banner, Some(typed), status).await
}

/// The field of the access form a refusal concerns.
fn access_field(field: Option<&str>, message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    match field {
        Some("cause") => "access-cause",
        Some("note") => "access-note",
        _ if m.contains("withdraw") => "access-withdrawn",
        _ if m.starts_with("note") => "access-note",
        _ if m.contains("cause") => "access-cause",
        _ if m.contains("reason") => "access-reason",
        _ if m.starts_with("state") => "access-state",
        _ => "access",
    }
}

pub(super) async fn access_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (person, app) = or_page!(operator_and_app(&state, &headers, &client_id).await);
    let form = or_page!(Form::checked(&state, &headers, &body));
    let change = AccessChange::parse(
        form.raw("state"),
        form.text("reason"),
        form.text("note").map(String::from),
        form.all("withdrawn")
            .into_iter()
            .map(String::from)
            .collect(),
        form.text("cause"),
    );
    let outcome = match change {
        Ok(change) => {
            access_change::set_access(
                &state.db,
                state.now(),
                &person.operator_actor(),
                &app,
                change,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let e = match outcome {
        Ok(_) => return see_other(&format!("/review/apps/{client_id}?done=access#access")),
        Err(e) => e,
    };
    let (status, message, field) = refusal_words(&e);
    let mut errors = FieldErrors::new();
    errors.add(access_field(field.as_deref(), &message), sentence(&message));
    let typed = Typed {
        which: Which::Access,
        form,
        errors,
    };
    let banner = refused_banner("The access change");
    app_page(&state, &person, &app, banner, Some(typed), status).await
}

pub(super) async fn trust_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (person, app) = or_page!(operator_and_app(&state, &headers, &client_id).await);
    let form = or_page!(Form::checked(&state, &headers, &body));
    let outcome = match apps::parse_trust_level(form.raw("trust_level")) {
        Ok(level) => {
            apps::set_trust_level(
                &state.db,
                state.now(),
                &person.operator_actor(),
                &app,
                level,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let e = match outcome {
        Ok(_) => return see_other(&format!("/review/apps/{client_id}?done=trust#trust-level")),
        Err(e) => e,
    };
    let (status, message, _) = refusal_words(&e);
    let mut errors = FieldErrors::new();
    errors.add("trust_level", message);
    let typed = Typed {
        which: Which::Trust,
        form,
        errors,
    };
    let banner = refused_banner("The trust level");
    app_page(&state, &person, &app, banner, Some(typed), status).await
}
