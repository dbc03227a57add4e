//! CORS for browser-based apps. A real request from an origin gets `Access-Control-Allow-Origin`
//! only if its app registered that origin. A preflight cannot name the app, so it is answered
//! for origins some app registered, and gets no allow header for any other.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::startup::AppState;
use crate::store::apps::{self, App};

pub fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

/// Adds the allow header when the request's origin is registered for `app`.
pub fn allow_for_app(res: &mut Response, headers: &HeaderMap, app: &App) {
    res.headers_mut()
        .append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(o) = origin(headers)
        && app.origins.iter().any(|r| r == o)
        && let Ok(v) = HeaderValue::from_str(o)
    {
        res.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        // A browser app reads the DPoP nonce and the challenge of a refusal (RFC 9449 §8).
        res.headers_mut().insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("DPoP-Nonce, WWW-Authenticate"),
        );
    }
}

/// Refuses a request from an origin the app did not register (a browser would not let the
/// page read the answer anyway; refusing first keeps a code from being spent for nothing).
pub fn check_origin(headers: &HeaderMap, app: &App) -> Result<(), crate::oauth::error::OAuthError> {
    match origin(headers) {
        Some(o) if !app.origins.iter().any(|r| r == o) => {
            Err(crate::oauth::error::OAuthError::invalid_request(format!(
                "origin {o:?} is not allowed for this app"
            )))
        }
        _ => Ok(()),
    }
}

async fn preflight(state: AppState, headers: HeaderMap, methods: &'static str) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Origin"));
    let Some(o) = origin(&headers) else {
        return res;
    };
    match apps::origin_is_registered(&state.db, o).await {
        Ok(true) => {
            if let Ok(v) = HeaderValue::from_str(o) {
                res.headers_mut()
                    .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
                crate::web::set_headers(
                    &mut res,
                    [
                        (header::ACCESS_CONTROL_ALLOW_METHODS, methods),
                        (
                            header::ACCESS_CONTROL_ALLOW_HEADERS,
                            "authorization, content-type, dpop",
                        ),
                        (header::ACCESS_CONTROL_MAX_AGE, "600"),
                    ],
                );
            }
        }
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "CORS preflight: looking up the origin failed"),
    }
    res
}

pub async fn preflight_post(State(state): State<AppState>, headers: HeaderMap) -> Response {
    preflight(state, headers, "POST").await
}

pub async fn preflight_get_post(State(state): State<AppState>, headers: HeaderMap) -> Response {
    preflight(state, headers, "GET, POST").await
}
