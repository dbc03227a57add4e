//! The review console (`/review`), for Onyx operators (re-checked at every request through
//! [`super::operator`]; anyone else gets the "no access" page). Split by what the pages do:
//!
//! - [`queue`]: the open reviews, oldest first, filterable by step, with counts;
//! - [`app`]: one app's review — its summary, every step with its fields, the diff against
//!   the step's last approval, the pre-check findings and the decision form, and the forms for
//!   its capabilities, access and trust level;
//! - [`decisions`]: the actions those forms post (each one call of the partner program's
//!   service, as the operator API makes it, with the operator's console actor);
//! - [`audit`]: the app's audit log, paginated.

pub mod app;
pub mod audit;
pub mod decisions;
pub mod queue;

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;

use super::form::Banner;
use crate::partner::{Step, StepState};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/review", get(queue::queue_get))
        .route("/review/apps/{client_id}", get(app::app_get))
        .route(
            "/review/apps/{client_id}/steps/{step}",
            post(decisions::step_decide),
        )
        .route(
            "/review/apps/{client_id}/capabilities/{name}",
            post(decisions::capability_set),
        )
        .route(
            "/review/apps/{client_id}/access",
            post(decisions::access_set),
        )
        .route(
            "/review/apps/{client_id}/trust-level",
            post(decisions::trust_set),
        )
        .route("/review/apps/{client_id}/audit", get(audit::audit_get))
}

/// The value of `name` in a query string.
fn query_member(query: &Option<String>, name: &str) -> Option<String> {
    query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    })
}

/// The banner a redirect after an action asks for (`?done=…`): fixed sentences only.
fn done_banner(query: &Option<String>) -> Banner {
    match query_member(query, "done").as_deref() {
        Some("decided") => Banner::done("The decision was recorded. The partner sees it now."),
        Some("capability") => Banner::done("The capability's state was set."),
        Some("access") => {
            Banner::done("The app's access was changed. It takes effect on the app's next request.")
        }
        Some("trust") => Banner::done("The app's trust level was set."),
        _ => Banner::default(),
    }
}

/// A step's state in words, and the badge class that goes with it (the words say the same).
pub fn step_state_words(state: StepState) -> (&'static str, &'static str) {
    match state {
        StepState::Pending => ("Waiting for a decision", "wait"),
        StepState::Approved => ("Approved", "good"),
        StepState::ChangesRequested => ("Changes requested", "bad"),
        StepState::Rejected => ("Rejected", "bad"),
        StepState::NotApplicable => ("Not applicable", "quiet"),
    }
}

/// A step's short name, for lists and filter links.
pub fn step_short(step: Step) -> &'static str {
    match step {
        Step::Company => "Company",
        Step::AppIdentity => "App identity",
        Step::UseCase => "Use case",
        Step::Scopes => "Scopes",
        Step::Domain => "Domain",
        Step::RedirectUris => "Redirect URIs",
        Step::Webhooks => "Webhooks",
        Step::ConnectivityCatalogue => "Connectivity catalogue",
        Step::Support => "Support",
        Step::PrivacySecurity => "Privacy and security",
        Step::Production => "Production",
    }
}

/// A draft field's label.
pub fn field_label(field: &str) -> &str {
    match field {
        "name" => "Name",
        "description" => "Description",
        "use_case" => "Use case",
        "purpose" => "Intended use",
        "consent_copy" => "Consent copy",
        "domain" => "Domain",
        "redirect_uris" => "Redirect URIs",
        "origins" => "Allowed origins",
        "post_logout_redirect_uris" => "Post-logout redirect URIs",
        "backchannel_logout_uri" => "Back-channel logout URI",
        "backchannel_logout_session_required" => "Back-channel logout needs the session id",
        "require_pushed_authorization_requests" => "Requires pushed authorization requests (PAR)",
        "profile" => "FAPI 2.0 Security Profile",
        "jwks" => "Public keys (JWK Set, private_key_jwt)",
        "jwks_uri" => "Public keys URL (jwks_uri, private_key_jwt)",
        "webhooks" => "Webhook endpoints",
        "support_url" => "Support URL",
        "scopes" => "Scopes",
        "optional_scopes" => "Optional scopes",
        "justifications" => "Justifications",
        "capabilities" => "Capabilities",
        other => other,
    }
}

/// A draft value as lines of text: a list one entry a line, a map `key: value`, nothing as
/// "Not set", a yes/no as words.
pub fn value_lines(v: &Value) -> Vec<String> {
    match v {
        Value::Null => vec!["Not set".into()],
        Value::Bool(true) => vec!["Yes".into()],
        Value::Bool(false) => vec!["No".into()],
        Value::String(s) if s.trim().is_empty() => vec!["Not set".into()],
        Value::String(s) => vec![s.clone()],
        Value::Array(a) if a.is_empty() => vec!["None".into()],
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
            .collect(),
        Value::Object(o) if o.is_empty() => vec!["None".into()],
        Value::Object(o) => o
            .iter()
            .map(|(k, x)| {
                format!(
                    "{k}: {}",
                    x.as_str().map_or_else(|| x.to_string(), String::from)
                )
            })
            .collect(),
        other => vec![other.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draft_values_read_as_lines_of_words() {
        assert_eq!(value_lines(&json!(null)), ["Not set"]);
        assert_eq!(value_lines(&json!(["a", "b"])), ["a", "b"]);
        assert_eq!(
            value_lines(&json!({"profile": "to greet"})),
            ["profile: to greet"]
        );
        assert_eq!(value_lines(&json!(false)), ["No"]);
        assert_eq!(value_lines(&json!([])), ["None"]);
    }
}
