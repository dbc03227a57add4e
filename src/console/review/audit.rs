//! The app's audit log (`GET /review/apps/{client_id}/audit?page=N`): every entry about the
//! app, newest first — who (the actor), what (the action in words, and its detail), when —
//! read a page at a time.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::super::pager::{self, PER_PAGE, Pager, page_param};
use super::super::partner::AppHeader;
use super::super::{Nav, Section, actors, date_time};
use super::app::operator_and_app;
use super::query_member;
use crate::error::AppError;
use crate::partner::program;
use crate::startup::AppState;
use crate::store::{audit, draft_versions};

pub struct EntryRow {
    pub when: String,
    /// The actor as stored, and in words (an account by its email).
    pub actor: String,
    pub by: String,
    pub action: String,
    pub code: String,
    /// The detail as `key: value` lines.
    pub detail: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/review/audit.html")]
pub struct AuditPage {
    pub nav: Nav,
    pub header: AppHeader,
    pub entries: Vec<EntryRow>,
    pub pager: Pager,
}

/// An action of the audit log in words (the code itself when there are none).
pub fn action_words(action: &str) -> String {
    match action {
        "app.created" => "App registered",
        "app.draft_updated" => "Draft changed",
        "app.secret_rotated" => "Client secret rotated",
        "app.test_accounts_set" => "Preview test accounts set",
        "app.trust_level_set" => "Trust level set",
        "review.submitted" => "Submitted for review",
        "review.resubmitted" => "Submitted again",
        "review.step_decided" => "Review step decided",
        "capability.requested" => "Capability requested",
        "capability.set" => "Capability set",
        "access.limited" => "Access limited",
        "access.suspended" => "Access suspended",
        "access.restored" => "Access restored",
        "access.cause_cleared" => "An access cause cleared",
        "domain.verified" => "Domain verified",
        "domain.verification_failed" => "Domain verification failed",
        "webhook.endpoint_added" => "Webhook endpoint set up",
        "webhook.events_set" => "Webhook event types changed",
        "webhook.secret_rotated" => "Webhook signing secret rotated",
        "webhook.enabled" => "Webhook endpoint enabled again",
        "webhook.test_sent" => "Webhook test event sent",
        "webhook.delivery_retried" => "Webhook delivery retried",
        other => return other.to_string(),
    }
    .to_string()
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// The detail of an entry as `key: value` lines, leaving out what is empty.
pub fn detail_lines(detail: &Value) -> Vec<String> {
    match detail {
        Value::Object(o) => o
            .iter()
            .filter(|(_, v)| match v {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(m) => !m.is_empty(),
                _ => true,
            })
            .map(|(k, v)| format!("{}: {}", k.replace('_', " "), plain(v)))
            .collect(),
        Value::Null => Vec::new(),
        other => vec![plain(other)],
    }
}

pub(super) async fn audit_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let (person, app) = or_page!(operator_and_app(&state, &headers, &client_id).await);
    let mut filter = audit::Filter {
        client_id: Some(client_id.clone()),
        partner_id: None,
        limit: Some(1),
    };
    let total = match audit::count(&state.db, &filter).await {
        Ok(n) => usize::try_from(n).unwrap_or(0),
        Err(e) => return AppError::internal(e).into_response(),
    };
    let base = format!("/review/apps/{client_id}/audit");
    let pager = pager::of_total(
        total,
        page_param(query_member(&query, "page").as_deref()),
        &base,
    );
    filter.limit = Some(PER_PAGE as i64);
    let page = match program::audit_page(&state.db, &filter, pager.offset() as i64).await {
        Ok(p) => p,
        Err(e) => return AppError::internal(anyhow::anyhow!(e.line())).into_response(),
    };
    let draft_name = match draft_versions::current(&state.db, &client_id).await {
        Ok(d) => d.and_then(|(d, _)| d).map(|d| d.name),
        Err(e) => return AppError::internal(e).into_response(),
    };
    let named: Vec<&str> = page.entries.iter().map(|e| e.actor.as_str()).collect();
    let words = match actors::in_words(&state.db, &named).await {
        Ok(w) => w,
        Err(e) => return AppError::internal(e).into_response(),
    };
    let entries = page
        .entries
        .into_iter()
        .map(|e| EntryRow {
            when: date_time(e.at),
            action: action_words(&e.action),
            detail: detail_lines(&e.detail),
            code: e.action,
            by: words
                .get(&e.actor)
                .cloned()
                .unwrap_or_else(|| e.actor.clone()),
            actor: e.actor,
        })
        .collect();
    person.render(
        StatusCode::OK,
        &AuditPage {
            nav: person.nav(Section::Review),
            header: AppHeader::of(&app, draft_name.as_deref(), "audit"),
            entries,
            pager,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_entrys_detail_reads_as_lines_without_the_empty_parts() {
        let lines = detail_lines(&json!({
            "step": "scopes", "state": "approved", "note": null, "effects": [], "draft_version": 3
        }));
        assert_eq!(
            lines,
            ["draft version: 3", "state: approved", "step: scopes"]
        );
        assert_eq!(action_words("review.step_decided"), "Review step decided");
        assert_eq!(action_words("something.new"), "something.new");
    }
}
