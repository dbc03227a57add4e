//! The partner console (`/partner`): a partner member's apps, each with its stage, access state
//! and review progress, and the pages that act on one app. Split by what the pages do:
//!
//! - [`apps`]: the list, a new app, the app's overview, editing its draft (which steps a change
//!   reopens, pre-check findings at their fields), submitting it and following its review, and
//!   the consent screen preview;
//! - [`operate`]: domain verification, preview test accounts and the launch checklist with
//!   production approval, capabilities, the client secret and webhooks.
//!
//! Every app page starts with [`AppHeader`] and the app's section navigation
//! (`templates/console/partner/app_nav.html`).

pub mod apps;
pub mod operate;

use axum::Router;

use crate::partner::access::{AccessState, Stage};
use crate::startup::AppState;
use crate::store::apps::App;

pub fn router() -> Router<AppState> {
    Router::new().merge(apps::router()).merge(operate::router())
}

/// The sections of an app's pages, in the order of the navigation.
pub const SECTIONS: [(&str, &str, &str); 9] = [
    ("overview", "", "Overview"),
    ("edit", "/edit", "Draft"),
    ("review", "/review", "Review"),
    ("consent", "/consent-preview", "Consent preview"),
    ("domain", "/domain", "Domain"),
    ("launch", "/launch", "Launch"),
    ("capabilities", "/capabilities", "Capabilities"),
    ("secret", "/secret", "Secret"),
    ("webhooks", "/webhooks", "Webhooks"),
];

/// What the top of every app page shows: the app, its stage and access state in words, and
/// which section is open.
pub struct AppHeader {
    pub client_id: String,
    pub name: String,
    pub stage: &'static str,
    /// `good`, `wait` or `bad`: the badge's class (the words say the same).
    pub stage_class: &'static str,
    pub access: &'static str,
    pub access_class: &'static str,
    /// Why the access is what it is, in words (none while active with no history).
    pub access_reason: Option<&'static str>,
    pub access_note: Option<String>,
    /// The open section (a key of [`SECTIONS`]).
    pub current: &'static str,
}

impl AppHeader {
    /// The header of `app`'s pages, with `current` open; `draft_name` is the name the partner
    /// last wrote, shown when the app has no approved name yet.
    pub fn of(app: &App, draft_name: Option<&str>, current: &'static str) -> Self {
        let (stage, stage_class) = match app.stage {
            Stage::Draft => ("Draft", "quiet"),
            Stage::Preview => ("Preview", "wait"),
            Stage::Production => ("Production", "good"),
        };
        let (access, access_class) = match app.access {
            AccessState::Active => ("Active", "good"),
            AccessState::Limited => ("Limited", "wait"),
            AccessState::Suspended => ("Suspended", "bad"),
        };
        let name = match draft_name.filter(|n| !n.trim().is_empty()) {
            Some(n) if app.name.trim().is_empty() || app.stage == Stage::Draft => n.to_string(),
            _ => app.name.clone(),
        };
        Self {
            client_id: app.client_id.clone(),
            name,
            stage,
            stage_class,
            access,
            access_class,
            access_reason: app.access_reason.map(|r| r.sentence()),
            access_note: app.access_note.clone(),
            current,
        }
    }

    /// The section links: (href, label, is the open one).
    pub fn sections(&self) -> Vec<(String, &'static str, bool)> {
        SECTIONS
            .iter()
            .map(|(key, path, label)| {
                (
                    format!("/partner/apps/{}{path}", self.client_id),
                    *label,
                    *key == self.current,
                )
            })
            .collect()
    }
}
