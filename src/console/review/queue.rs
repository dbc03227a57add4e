//! The review queue (`GET /review?step=&page=`): the open reviews, oldest submission first,
//! each with its app, partner, when it was submitted and the steps waiting for a decision; the
//! count of reviews waiting on each step, as links that filter the queue by that step.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::super::pager::{Pager, page_param, paginate};
use super::super::{MessagePage, Nav, Person, Section, date_time, operator, refusal};
use super::{query_member, step_short};
use crate::error::AppError;
use crate::partner::{Step, StepState, review};
use crate::startup::AppState;
use crate::store::{apps, draft_versions, partners};

/// One review in the queue.
pub struct QueueRow {
    pub client_id: String,
    pub app: String,
    pub partner: String,
    pub submitted: String,
    pub review: i64,
    /// The steps waiting for an operator's decision (short names).
    pub waiting: Vec<&'static str>,
}

/// A filter link: the step, its short name, how many reviews wait on it, whether it is the
/// current filter.
pub struct StepFilter {
    pub href: String,
    pub label: &'static str,
    pub count: usize,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "console/review/queue.html")]
pub struct QueuePage {
    pub nav: Nav,
    pub filters: Vec<StepFilter>,
    /// The "every step" link: its count and whether it is current.
    pub all_count: usize,
    pub all_current: bool,
    /// The current filter's name, for the heading of the list.
    pub filter: Option<&'static str>,
    pub rows: Vec<QueueRow>,
    pub pager: Pager,
}

fn internal(e: impl Into<anyhow::Error>) -> Response {
    AppError::internal(e.into()).into_response()
}

pub(super) async fn queue_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let person = or_page!(operator(&state, &headers, "/review").await);
    let step = match query_member(&query, "step").filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(raw) => match Step::parse(raw.trim()) {
            Some(s) => Some(s),
            None => return unknown_step(&person),
        },
    };
    let queue = match review::queue(&state.db).await {
        Ok(q) => q.reviews,
        Err(e) => {
            let (status, message, _) = refusal(&e);
            return message_page(&person, status, "The queue cannot be read", &message);
        }
    };
    let waiting_on = |r: &review::QueuedReview, s: Step| {
        r.review
            .steps
            .iter()
            .any(|v| v.step == s && v.state == StepState::Pending)
    };
    let filters = Step::all()
        .map(|s| StepFilter {
            href: format!("/review?step={}", s.as_str()),
            label: step_short(s),
            count: queue.iter().filter(|r| waiting_on(r, s)).count(),
            current: step == Some(s),
        })
        .collect();
    let all_count = queue.len();
    let shown: Vec<&review::QueuedReview> = queue
        .iter()
        .filter(|r| step.is_none_or(|s| waiting_on(r, s)))
        .collect();
    let mut partner_names: BTreeMap<String, String> = BTreeMap::new();
    let mut rows = Vec::new();
    for r in shown {
        let app = match apps::by_client_id(&state.db, &r.client_id).await {
            Ok(a) => a,
            Err(e) => return internal(e),
        };
        let draft_name = match draft_versions::current(&state.db, &r.client_id).await {
            Ok(d) => d.and_then(|(d, _)| d).map(|d| d.name),
            Err(e) => return internal(e),
        };
        let partner_id = app.as_ref().and_then(|a| a.partner_id.clone());
        let partner = match partner_id {
            None => "Onyx (no partner)".to_string(),
            Some(pid) => match partner_names.get(&pid) {
                Some(n) => n.clone(),
                None => {
                    let name = match partners::by_id(&state.db, &pid).await {
                        Ok(p) => p.map_or_else(|| pid.clone(), |p| p.name),
                        Err(e) => return internal(e),
                    };
                    partner_names.insert(pid, name.clone());
                    name
                }
            },
        };
        let name = draft_name
            .filter(|n| !n.trim().is_empty())
            .or_else(|| r.app.clone().filter(|n| !n.trim().is_empty()))
            .unwrap_or_else(|| r.client_id.clone());
        rows.push(QueueRow {
            client_id: r.client_id.clone(),
            app: name,
            partner,
            submitted: date_time(r.review.submitted_at),
            review: r.review.review,
            waiting: r
                .review
                .steps
                .iter()
                .filter(|v| v.state == StepState::Pending)
                .map(|v| step_short(v.step))
                .collect(),
        });
    }
    let base = match step {
        Some(s) => format!("/review?step={}", s.as_str()),
        None => "/review".to_string(),
    };
    let (rows, pager) = paginate(
        rows,
        page_param(query_member(&query, "page").as_deref()),
        &base,
    );
    person.render(
        StatusCode::OK,
        &QueuePage {
            nav: person.nav(Section::Review),
            filters,
            all_count,
            all_current: step.is_none(),
            filter: step.map(step_short),
            rows,
            pager,
        },
    )
}

fn message_page(person: &Person, status: StatusCode, title: &str, message: &str) -> Response {
    person.render(
        status,
        &MessagePage {
            nav: person.nav(Section::Review),
            title,
            message,
            back: Some(("/review", "Go to the review queue")),
        },
    )
}

fn unknown_step(person: &Person) -> Response {
    let steps = Step::all().map(Step::as_str).collect::<Vec<_>>().join(", ");
    message_page(
        person,
        StatusCode::BAD_REQUEST,
        "No such review step",
        &format!("The queue can be filtered by one of these steps: {steps}."),
    )
}
