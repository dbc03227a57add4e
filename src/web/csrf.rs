//! CSRF protection for every form: a random token in an HttpOnly, SameSite cookie, repeated in a
//! hidden field, compared in constant time (double submit). With an https issuer the cookie is
//! `__Host-`-prefixed, so no other host can plant it.

use axum::http::HeaderMap;

use crate::crypto::ct_eq;
use crate::error::AppError;
use crate::startup::AppState;

/// The browser's CSRF token, and a `Set-Cookie` value when a new one had to be made.
pub fn token(state: &AppState, headers: &HeaderMap) -> (String, Option<String>) {
    match super::cookies::get(headers, state.cookies.csrf()) {
        Some(t) if t.len() == 43 => (t.to_string(), None),
        _ => {
            let t = crate::crypto::random_secret();
            let cookie = state.cookies.set(state.cookies.csrf(), &t, None);
            (t, Some(cookie))
        }
    }
}

/// Whether the submitted form carries the browser's CSRF token.
pub fn verify(state: &AppState, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    match (
        super::cookies::get(headers, state.cookies.csrf()),
        submitted,
    ) {
        (Some(cookie), Some(field)) => ct_eq(cookie.as_bytes(), field.as_bytes()),
        _ => false,
    }
}

/// [`verify`], as the error page every form shows when it fails.
pub fn require(
    state: &AppState,
    headers: &HeaderMap,
    submitted: Option<&str>,
) -> Result<(), AppError> {
    if verify(state, headers, submitted) {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "This form has expired",
            "This page was open too long or came from somewhere else. Go back to the app and start again.",
        ))
    }
}
