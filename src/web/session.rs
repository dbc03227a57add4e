//! The browser's Onyx session, read from its cookie.

use axum::http::HeaderMap;

use crate::startup::AppState;
use crate::store::sessions::{self, Session};

/// The live session named by the request's session cookie, if any.
pub async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, sqlx::Error> {
    match super::cookies::get(headers, state.cookies.session()) {
        Some(secret) => sessions::find(&state.db, secret, state.now()).await,
        None => Ok(None),
    }
}
