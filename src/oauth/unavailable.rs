//! What an app cannot have now, in words: the `unavailable` permissions a request records, their
//! error description, and the "app unavailable" page of an app whose access does not allow
//! sign-in (used by `authorize`).

use super::authorize::Invalid;
use crate::consent;
use crate::error::AppError;
use crate::store::apps::App;
use crate::store::grants;

/// The `unavailable` permissions to record for the scopes `sorted` found unavailable.
pub fn unavailable_changes(sorted: &consent::Classified) -> Vec<grants::Change> {
    sorted
        .unavailable
        .iter()
        .map(|(s, r)| grants::Change {
            scope: s.name.clone(),
            state: consent::State::Unavailable,
            reason: Some(*r),
            expires_at: None,
        })
        .collect()
}

/// "scope X is unavailable: <reason>; …" for an error description.
pub fn unavailable_description(sorted: &consent::Classified) -> String {
    sorted
        .unavailable
        .iter()
        .map(|(s, r)| {
            format!(
                "scope {:?} is unavailable ({}): {}",
                s.name,
                r.as_str(),
                r.sentence()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The words of the "app unavailable" page: the state and its reason, and where to get help.
pub(super) fn unavailable_message(app: &App, refusal: &crate::partner::access::Refusal) -> String {
    // A draft app's name is not approved yet: do not show it.
    let who = if refusal.state == "draft" {
        "This app".to_string()
    } else {
        app.name.clone()
    };
    let help = match &app.support_url {
        Some(url) if refusal.state != "draft" => format!(" The app's support: {url}"),
        _ => String::new(),
    };
    format!(
        "{who} cannot use Onyx ID at the moment. {} (state: {}, reason: {}){help}",
        refusal.description, refusal.state, refusal.reason
    )
}

pub(super) fn unavailable_page(app: &App, refusal: &crate::partner::access::Refusal) -> Invalid {
    Invalid::Page {
        title: "App unavailable",
        message: unavailable_message(app, refusal),
    }
}

pub(super) fn unavailable_error(app: &App, refusal: &crate::partner::access::Refusal) -> AppError {
    AppError::bad_request("App unavailable", unavailable_message(app, refusal))
}
