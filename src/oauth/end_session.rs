//! The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0): an app sends the person
//! here to sign out of Onyx ID, by GET or form POST.
//!
//! - `id_token_hint` is trusted when onyx-id signed it (its own keys, `iss` this issuer), even
//!   expired (§2); it names the app (`aud`) and the person. With one that names the person
//!   signed in here, the session ends at once; without one (absent, forged, another person's),
//!   the person is asked "Sign out of Onyx ID?" on a CSRF-protected page.
//! - `client_id` names the app too; with a hint they must agree.
//! - `post_logout_redirect_uri` is honoured only for an identified app, and only when it is one
//!   of the app's registered `post_logout_redirect_uris`, compared as the registered string. Any
//!   other gets a page, never a redirect. `state` goes back with it unchanged.
//! - `logout_hint` and `ui_locales` are accepted and not used: the person signed in is who
//!   signs out.
//!
//! The session ends through `sessions::end` (`Ending::RpInitiated`): its non-offline tokens are
//! revoked and the apps that got an ID token in it are told by back-channel logout.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::params::Params;
use super::redirect::with_query;
use crate::error::AppError;
use crate::sessions::{self, Ending};
use crate::startup::AppState;
use crate::store::sessions::Session;
use crate::store::{apps, logout};
use crate::web::{csrf, error_page, render, see_other, with_cookies};

/// "Sign out of Onyx ID?"
#[derive(Template)]
#[template(path = "end_session_confirm.html")]
pub struct ConfirmPage<'a> {
    pub app_name: Option<&'a str>,
    pub user_email: &'a str,
    pub csrf: &'a str,
    pub client_id: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
}

/// "You are signed out".
#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage<'a> {
    pub app_name: Option<&'a str>,
}

const CANNOT: &str = "Cannot sign out";

/// An end-session request, checked: the app it names (if any) and where to send the person
/// back (a registered URI of that app, with `state`).
struct Checked {
    app: Option<apps::App>,
    /// The registered URI to return to, when one was asked for.
    back_to: Option<String>,
    state: Option<String>,
    /// The verified hint's person and session.
    hinted: Option<Hint>,
}

struct Hint {
    sub: String,
    sid: Option<String>,
}

pub async fn end_session_get(
    State(state): State<AppState>,
    Query(raw): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(raw.iter())
        .finish();
    respond(end_session(&state, encoded.as_bytes(), &headers).await)
}

pub async fn end_session_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !super::is_form(&headers) {
        return error_page(
            StatusCode::BAD_REQUEST,
            CANNOT,
            "The request must be sent as application/x-www-form-urlencoded.",
        );
    }
    respond(end_session(&state, &body, &headers).await)
}

fn respond(r: Result<Response, AppError>) -> Response {
    r.unwrap_or_else(axum::response::IntoResponse::into_response)
}

async fn end_session(
    state: &AppState,
    raw: &[u8],
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let params = Params::parse(raw).map_err(|e| AppError::bad_request(CANNOT, e.description))?;
    let checked = check(state, &params, true).await?;
    let session = crate::web::session::current(state, headers).await?;
    let Some(session) = session else {
        // Nobody is signed in here: nothing to end.
        return Ok(finish(state, &checked, None));
    };
    let hinted_here = checked.hinted.as_ref().is_some_and(|h| {
        h.sub == session.user_id && h.sid.as_deref().is_none_or(|sid| sid == session.sid)
    });
    if hinted_here {
        sessions::end(
            state,
            std::slice::from_ref(&session.sid),
            Ending::RpInitiated,
        )
        .await?;
        tracing::info!(user_id = %session.user_id, client_id = ?checked.app.as_ref().map(|a| &a.client_id), "signed out at the app's request");
        return Ok(finish(state, &checked, Some(&session)));
    }
    confirm_page(state, headers, &checked, &session).await
}

async fn confirm_page(
    state: &AppState,
    headers: &HeaderMap,
    checked: &Checked,
    session: &Session,
) -> Result<Response, AppError> {
    let user = crate::store::users::by_id(&state.db, &session.user_id).await?;
    let (token, set) = csrf::token(state, headers);
    let page = ConfirmPage {
        app_name: checked.app.as_ref().map(|a| a.name.as_str()),
        user_email: user.as_ref().map_or("", |u| u.email.as_str()),
        csrf: &token,
        client_id: checked.app.as_ref().map(|a| a.client_id.as_str()),
        post_logout_redirect_uri: checked.back_to.as_deref(),
        state: checked.state.as_deref(),
    };
    Ok(with_cookies(render(StatusCode::OK, &page), set))
}

/// `POST /end_session/confirm`: the person answered "Sign out of Onyx ID?" (CSRF-checked; the
/// app and return URI are checked again, as on the first request).
pub async fn confirm_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    respond(confirm(&state, &headers, &body).await)
}

async fn confirm(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, AppError> {
    let form = Params::parse(body).map_err(|e| AppError::bad_request(CANNOT, e.description))?;
    csrf::require(state, headers, form.get("csrf_token"))?;
    let checked = check(state, &form, false).await?;
    let session = crate::web::session::current(state, headers).await?;
    if let Some(session) = &session {
        sessions::end(
            state,
            std::slice::from_ref(&session.sid),
            Ending::RpInitiated,
        )
        .await?;
        tracing::info!(user_id = %session.user_id, "signed out after confirming");
    }
    Ok(finish(state, &checked, session.as_ref()))
}

/// Back to the app's registered URI with `state`, or the "You are signed out" page; the session
/// cookie is cleared when there was a session.
fn finish(state: &AppState, checked: &Checked, ended: Option<&Session>) -> Response {
    let res = match &checked.back_to {
        Some(uri) => {
            let pairs: Vec<(&str, &str)> = checked
                .state
                .as_deref()
                .map(|s| ("state", s))
                .into_iter()
                .collect();
            see_other(&with_query(uri, &pairs))
        }
        None => render(
            StatusCode::OK,
            &SignedOutPage {
                app_name: checked.app.as_ref().map(|a| a.name.as_str()),
            },
        ),
    };
    match ended {
        Some(_) => with_cookies(
            res,
            [state.cookies.set(state.cookies.session(), "", Some(0))],
        ),
        None => res,
    }
}

/// Checks the request's app and return URI. `with_hint`: read `id_token_hint` (the
/// confirmation form carries the app's `client_id` instead).
async fn check(state: &AppState, params: &Params, with_hint: bool) -> Result<Checked, AppError> {
    let hinted = match params.get("id_token_hint").filter(|_| with_hint) {
        Some(hint) => verify_hint(state, hint).await,
        None => None,
    };
    let client_id = match (params.get("client_id"), &hinted) {
        (Some(c), Some((aud, _))) if c != aud => {
            return Err(AppError::bad_request(
                CANNOT,
                "The app named by client_id is not the one the id_token_hint was issued to.",
            ));
        }
        (Some(c), _) => Some(c.to_string()),
        (None, Some((aud, _))) => Some(aud.clone()),
        (None, None) => None,
    };
    let app = match &client_id {
        Some(c) => Some(apps::by_client_id(&state.db, c).await?.ok_or_else(|| {
            AppError::bad_request(CANNOT, "The app that sent you here is not registered.")
        })?),
        None => None,
    };
    let back_to = match (params.get("post_logout_redirect_uri"), &app) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(AppError::bad_request(
                CANNOT,
                "The app that sent you here did not say who it is (client_id or id_token_hint), so Onyx ID cannot send you back to it. You can close this page.",
            ));
        }
        (Some(uri), Some(app)) => {
            let meta = logout::metadata(&state.db, &app.client_id)
                .await?
                .unwrap_or_default();
            if !meta.post_logout_redirect_uris.iter().any(|r| r == uri) {
                tracing::warn!(client_id = %app.client_id, "end session: unregistered post_logout_redirect_uri refused");
                return Err(AppError::bad_request(
                    CANNOT,
                    format!(
                        "{} asked to send you back to an address it has not registered, so Onyx ID will not go there. You can close this page.",
                        app.name
                    ),
                ));
            }
            Some(uri.to_string())
        }
    };
    Ok(Checked {
        app,
        back_to,
        state: params.get("state").map(str::to_string),
        hinted: hinted.map(|(_, h)| h),
    })
}

/// The app (`aud`) and person of an ID token onyx-id signed for this issuer; `None` for
/// anything else. Expiry is not checked (§2: an expired ID token is still a valid hint).
async fn verify_hint(state: &AppState, hint: &str) -> Option<(String, Hint)> {
    let claims = state.keys.current().await.verify_jwt(hint, state.now())?;
    if claims.get("iss")?.as_str()? != state.settings.issuer.as_str() {
        return None;
    }
    let aud = match claims.get("aud")? {
        serde_json::Value::String(a) => a.clone(),
        serde_json::Value::Array(list) => match (list.as_slice(), claims.get("azp")) {
            ([one], _) => one.as_str()?.to_string(),
            (_, Some(azp)) => azp.as_str()?.to_string(),
            _ => return None,
        },
        _ => return None,
    };
    let sub = claims.get("sub")?.as_str()?.to_string();
    let sid = claims
        .get("sid")
        .and_then(|s| s.as_str())
        .map(str::to_string);
    Some((aud, Hint { sub, sid }))
}
