//! The consent screen's preview (`/partner/apps/{client_id}/consent-preview`): the page a
//! person would see, rendered from the app's draft with the consent page's own template and
//! grouping (`web::consent`), marked as a preview and with nothing to answer.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{draft_of_app, member_app};
use crate::scopes::{Subject, catalogue};
use crate::startup::AppState;
use crate::web::views::{ConsentPage, ScopeView};

pub(super) async fn consent_preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let path = format!("/partner/apps/{client_id}/consent-preview");
    let (person, app, _) = or_page!(member_app(&state, &headers, &client_id, &path).await);
    let (draft, _) = or_page!(draft_of_app(&state, &app).await);
    // What a person is asked for: the draft's scopes that they grant (the app's own access is
    // never on the screen), in the draft's order, once each.
    let mut asked: Vec<ScopeView> = Vec::new();
    for name in &draft.scopes {
        let Some(info) = catalogue().get(name) else {
            continue;
        };
        if info.subject != Subject::User || asked.iter().any(|s| &s.name == name) {
            continue;
        }
        asked.push(ScopeView {
            name: info.name.clone(),
            label: info.label.clone(),
            description: info.description.clone(),
            optional: draft.optional_scopes.contains(name),
            expiry: None,
        });
    }
    let host = draft
        .redirect_uris
        .first()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_string))
        .or_else(|| draft.domain.clone())
        .unwrap_or_else(|| "the app".into());
    // The screen names a domain only once it is verified.
    let verified = draft
        .domain
        .as_deref()
        .filter(|d| app.domain_verified.as_deref() == Some(*d));
    let back = format!("/partner/apps/{client_id}");
    let page = ConsentPage {
        app_name: &draft.name,
        app_host: &host,
        app_domain: verified,
        purpose: &draft.purpose,
        consent_copy: &draft.consent_copy,
        copy_changed: false,
        notice: None,
        user_email: &person.user.email,
        request_id: "",
        csrf: "",
        shown: "",
        groups: crate::web::consent::groups(asked),
        common_expiry: None,
        unavailable: Vec::new(),
        already_granted: Vec::new(),
        preview: Some(&back),
    };
    person.render(StatusCode::OK, &page)
}
