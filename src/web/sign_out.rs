//! Signing out on onyx-id's pages (`/account/sign-out`): a POST with the CSRF token ends this
//! browser's session (`Ending::SignedOut`), clears its cookie and says so. A GET never signs out:
//! it asks, with the form.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::views::SignOutPage;
use super::{csrf, render, with_cookies};
use crate::error::AppError;
use crate::oauth::params::Params;
use crate::sessions::{self, Ending};
use crate::startup::AppState;

/// "You are signed out", with the session cookie cleared.
pub(super) fn signed_out(state: &AppState) -> Response {
    let page = SignOutPage {
        confirm: None,
        csrf: "",
    };
    let clear = state.cookies.set(state.cookies.session(), "", Some(0));
    with_cookies(render(StatusCode::OK, &page), [clear])
}

/// `GET /account/sign-out`: the question and its form when signed in, else "You are signed out".
pub async fn sign_out_get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some(account) = super::account::signed_in(&state, &headers).await? else {
        return Ok(signed_out(&state));
    };
    let (token, set) = csrf::token(&state, &headers);
    let page = SignOutPage {
        confirm: Some(&account.user.email),
        csrf: &token,
    };
    Ok(with_cookies(render(StatusCode::OK, &page), set))
}

/// `POST /account/sign-out` (`csrf_token`): ends this session.
pub async fn sign_out_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let form = Params::parse(&body)
        .map_err(|e| AppError::bad_request("Cannot sign out", e.description))?;
    csrf::require(&state, &headers, form.get("csrf_token"))?;
    if let Some(session) = super::session::current(&state, &headers).await? {
        sessions::end(&state, &[session.sid], Ending::SignedOut).await?;
        tracing::info!(user_id = %session.user_id, "signed out");
    }
    Ok(signed_out(&state))
}
