//! Capabilities (`/partner/apps/{client_id}/capabilities`): each gated capability's state
//! (unavailable, requested, gated, enabled) and why, in words (`Capability::sentence`), and a
//! request with a reason (`capabilities::request_capability`) for one the app does not hold.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};

use super::{AppPage, query_member};
use crate::console::form::{Banner, FieldErrors, Form, refused_status};
use crate::console::partner::AppHeader;
use crate::console::{Nav, Section, date_time, not_found, refusal, sentence};
use crate::partner::CAPABILITIES;
use crate::partner::access::CapabilityState;
use crate::partner::capabilities;
use crate::scopes::catalogue;
use crate::startup::AppState;
use crate::web::see_other;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/partner/apps/{client_id}/capabilities",
            get(capabilities_get),
        )
        .route(
            "/partner/apps/{client_id}/capabilities/{name}",
            post(capability_request),
        )
}

/// One capability as the page shows it.
pub struct CapabilityRow {
    pub name: String,
    /// "Advanced event subscriptions".
    pub title: String,
    pub state: &'static str,
    pub class: &'static str,
    pub why: String,
    /// The words with it: the partner's reason while requested, else Onyx's note.
    pub note: Option<(&'static str, String)>,
    pub since: Option<String>,
    /// The scopes it unlocks, by their labels.
    pub scopes: Vec<String>,
    /// Whether the app may ask for it now (it is unavailable).
    pub requestable: bool,
    /// The field's name in the errors (`reason-<name>`), and what was typed in it.
    pub field: String,
    pub typed: String,
}

#[derive(Template)]
#[template(path = "console/partner/capabilities.html")]
pub struct CapabilitiesPage {
    pub nav: Nav,
    pub header: AppHeader,
    pub banner: Banner,
    pub errors: FieldErrors,
    pub capabilities: Vec<CapabilityRow>,
}

fn path_of(client_id: &str) -> String {
    format!("/partner/apps/{client_id}/capabilities")
}

fn title(name: &str) -> String {
    sentence(&name.replace('_', " "))
        .trim_end_matches('.')
        .to_string()
}

fn state_words(state: CapabilityState) -> (&'static str, &'static str) {
    match state {
        CapabilityState::Unavailable => ("Unavailable", "quiet"),
        CapabilityState::Requested => ("Requested", "wait"),
        CapabilityState::Gated => ("Gated", "bad"),
        CapabilityState::Enabled => ("Enabled", "good"),
    }
}

/// The page; `typed` is the reason typed for the capability `typed.0` in a refused request.
fn render(
    p: &AppPage,
    status: StatusCode,
    banner: Banner,
    errors: FieldErrors,
    typed: Option<(&str, &str)>,
) -> Response {
    let rows = capabilities::capabilities_view(&p.app)
        .capabilities
        .into_iter()
        .map(|c| {
            let (state, class) = state_words(c.state);
            let field = format!("reason-{}", c.capability);
            let typed = match typed {
                Some((name, text)) if name == c.capability => text.to_string(),
                _ => String::new(),
            };
            CapabilityRow {
                title: title(&c.capability),
                state,
                class,
                why: sentence(&c.reason_text),
                // A gated capability's sentence already carries Onyx's note.
                note: c
                    .note
                    .filter(|_| c.state != CapabilityState::Gated)
                    .map(|n| {
                        let who = if c.state == CapabilityState::Requested {
                            "Your reason"
                        } else {
                            "Onyx's note"
                        };
                        (who, n)
                    }),
                since: c.updated_at.map(date_time),
                scopes: c
                    .scopes
                    .iter()
                    .map(|s| catalogue().get(s).map_or(s.clone(), |d| d.label.clone()))
                    .collect(),
                requestable: c.state == CapabilityState::Unavailable,
                field,
                typed,
                name: c.capability,
            }
        })
        .collect();
    p.person.render(
        status,
        &CapabilitiesPage {
            nav: p.person.nav(Section::Apps),
            header: p.header("capabilities"),
            banner,
            errors,
            capabilities: rows,
        },
    )
}

async fn capabilities_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let p = or_page!(AppPage::open(&state, &headers, &client_id, &path_of(&client_id)).await);
    let banner = match query_member(&query, "done").as_deref() {
        Some("requested") => Banner::done(
            "Your request was sent to Onyx. The capability reads Requested until Onyx decides.",
        ),
        _ => Banner::default(),
    };
    render(&p, StatusCode::OK, banner, FieldErrors::new(), None)
}

async fn capability_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let path = path_of(&client_id);
    let p = or_page!(AppPage::open(&state, &headers, &client_id, &path).await);
    if !CAPABILITIES.contains(&name.as_str()) {
        return not_found(&p.person);
    }
    let form = or_page!(Form::checked(&state, &headers, &body));
    let field = format!("reason-{name}");
    let typed = form.raw("reason");
    let mut errors = FieldErrors::new();
    let Some(reason) = form.text("reason") else {
        errors.add(
            &field,
            "Say why the app needs this capability: Onyx decides on the reason you give.",
        );
        let typed = Some((name.as_str(), typed));
        return render(
            &p,
            StatusCode::BAD_REQUEST,
            Banner::default(),
            errors,
            typed,
        );
    };
    let actor = p.actor();
    let now = state.now();
    match capabilities::request_capability(&state.db, now, &actor, &p.app, &name, Some(reason))
        .await
    {
        Ok(_) => see_other(&format!("{path}?done=requested#capability-{name}")),
        Err(e) => {
            let (s, message, _) = refusal(&e);
            errors.add(&field, message);
            let typed = Some((name.as_str(), typed));
            render(&p, refused_status(s), Banner::default(), errors, typed)
        }
    }
}
