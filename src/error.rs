//! `AppError`: the failures of the pages and the JSON APIs, each a status, a stable error code
//! and a readable message. Internal causes (database, I/O) are logged here and never sent.
//!
//! The JSON error body has one shape, built by [`error_body`] (and sent by
//! [`json_error_response`]): `{"error": code, "error_description": message}`, plus members that
//! name a state and its reason. The protocol side's `OAuthError` builds its body with it too, and
//! so do [`refuse_early`] and [`rewrite_framework_refusal`], which give the framework's own refusals (413, 405, 404
//! under `/api/`, a path that is not UTF-8, an over-long URI or header) that shape on the JSON
//! routes and the error page on the pages.

use std::borrow::Cow;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::web::error_page;

/// Longest request target (path and query) served; longer ones get 414. Below hyper's own
/// limit (64 KiB), which closes the connection with an empty answer.
pub const MAX_URI_BYTES: usize = 32 * 1024;
/// Most bytes of request headers (names and values together) served; more get 431. Below
/// hyper's own limit on the request head (about 400 KiB), which answers with an empty body.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The one JSON error body: `error` (a stable, snake_case code), `error_description` (a
/// sentence a person can read) and `extra`, members that name a state and its reason (an app's
/// access state, a capability's state). `extra` never replaces `error` or `error_description`.
/// Every JSON error of onyx-id is built here: call it rather than writing the shape again.
pub fn error_body(code: &str, message: &str, extra: Map<String, Value>) -> Value {
    let mut body = Map::new();
    body.insert("error".into(), code.into());
    body.insert("error_description".into(), message.into());
    for (k, v) in extra {
        body.entry(k).or_insert(v);
    }
    Value::Object(body)
}

/// The OpenAPI schema of [`error_body`] (named `Error` in the documents). Documentation only:
/// the body itself is always built by `error_body`.
#[derive(utoipa::ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// A stable, snake_case code.
    #[schema(pattern = "^[a-z0-9_]+$")]
    error: String,
    /// A sentence a person can read.
    error_description: String,
}

/// A JSON error answer: [`error_body`] with `status` and `Cache-Control: no-store` (an error
/// may answer a request that carried a credential).
pub fn json_error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    extra: Map<String, Value>,
) -> Response {
    let mut res = (status, axum::Json(error_body(code, message, extra))).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// How an error is shown: an HTML page for people, the JSON body for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Page,
    Json,
}

impl Form {
    /// The form of the answers at `path`: JSON for the APIs and the protocol endpoints that
    /// programs call, the error page everywhere else (the sign-in, consent and account pages,
    /// `/authorize`, which a browser opens, and unknown addresses outside `/api/`).
    pub fn for_path(path: &str) -> Self {
        let json = path == "/api"
            || path.starts_with("/api/")
            || path.starts_with("/.well-known/")
            || matches!(
                path,
                "/par"
                    | "/token"
                    | "/revoke"
                    | "/introspect"
                    | "/userinfo"
                    | "/jwks.json"
                    | "/healthz"
                    | "/readyz"
            );
        if json { Self::Json } else { Self::Page }
    }
}

/// A failure of a page or a JSON API.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    /// Stable and snake_case: what a program matches on.
    code: &'static str,
    /// The heading of the error page.
    title: &'static str,
    /// What went wrong, for the person or the developer; never an internal detail.
    message: Cow<'static, str>,
    /// The internal cause: logged, never sent.
    cause: Option<anyhow::Error>,
    form: Form,
    /// Members of the JSON body beside `error` and `error_description` that name a state and
    /// its reason (`access_state`, `reason`, `capability`, `changed_fields`, ...).
    extra: Map<String, Value>,
    /// The `WWW-Authenticate` challenge of a 401.
    challenge: Option<&'static str>,
}

impl AppError {
    /// A refusal: `status`, a stable `code`, the page's `title` and a readable `message`. Shown
    /// as a page; [`AppError::json`] turns it into the JSON body.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            message: message.into(),
            cause: None,
            form: Form::Page,
            extra: Map::new(),
            challenge: None,
        }
    }

    /// The request cannot be served as sent (400 `invalid_request`).
    pub fn bad_request(title: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", title, message)
    }

    /// Nothing here, or nothing this person may see (404 `not_found`).
    pub fn not_found(title: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", title, message)
    }

    /// An internal failure (500 `server_error`): `cause` is logged, a generic message shown.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Something went wrong",
                "Something went wrong on our side. Please try again in a moment.",
            )
        }
    }

    /// Answers with the JSON error body instead of a page.
    pub fn json(mut self) -> Self {
        self.form = Form::Json;
        self
    }

    /// Answers in `form`.
    pub fn in_form(mut self, form: Form) -> Self {
        self.form = form;
        self
    }

    /// Adds members to the JSON body (never `error` or `error_description`).
    pub fn with_extra(mut self, extra: Map<String, Value>) -> Self {
        self.extra.extend(extra);
        self
    }

    /// Sends `WWW-Authenticate: challenge` (a 401 names how to authenticate, RFC 9110 §11.6.1).
    pub fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// The members of the JSON body beside `error` and `error_description`.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.cause {
            Some(cause) => write!(f, "{}: {cause}", self.title),
            None => write!(f, "{}: {}", self.title, self.message),
        }
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().map(|c| c.as_ref())
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(e)
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            tracing::error!(error = ?cause, code = self.code, "internal error");
        }
        // Pages speak to people in sentences; the JSON message follows the APIs' style.
        let json_message = if self.cause.is_some() {
            Cow::Borrowed("the server could not complete the request")
        } else {
            self.message.clone()
        };
        let mut res = match self.form {
            Form::Page => error_page(self.status, self.title, &self.message),
            Form::Json => json_error_response(self.status, self.code, &json_message, self.extra),
        };
        if let Some(challenge) = self.challenge {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        res
    }
}

/// The answer to a request for an address nothing is routed to.
pub async fn fallback(uri: Uri) -> Response {
    match Form::for_path(uri.path()) {
        Form::Json => AppError::not_found("Not found", "there is nothing at this address").json(),
        Form::Page => AppError::not_found("Page not found", "There is nothing at this address."),
    }
    .into_response()
}

/// Before routing: refuses an over-long URI (414) or header block (431) readably, in the form
/// the address calls for. `None` lets the request through. Called by `edge::Edge` for every
/// request.
pub fn refuse_early(req: &Request) -> Option<Response> {
    let uri_bytes = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    let status = if uri_bytes > MAX_URI_BYTES {
        StatusCode::URI_TOO_LONG
    } else if req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        > MAX_HEADER_BYTES
    {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    } else {
        return None;
    };
    Some(
        refusal(status, req.method())
            .in_form(Form::for_path(req.uri().path()))
            .into_response(),
    )
}

/// After routing: gives the refusals the framework writes itself (plain text or an empty body:
/// 400 for a path parameter that is not UTF-8, 405, 413, 415, ...) the error page or the JSON
/// body, as the address calls for; any other answer is returned as it is. Any header of the
/// framework's answer but its content type and length (`Allow` of a 405) is kept.
pub fn rewrite_framework_refusal(res: Response, method: &Method, form: Form) -> Response {
    if !written_by_the_framework(&res) {
        return res;
    }
    let (parts, _) = res.into_parts();
    let mut answer = refusal(parts.status, method).in_form(form).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

/// onyx-id's own error answers are JSON or HTML; axum's rejections are plain text or empty.
fn written_by_the_framework(res: &Response) -> bool {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return false;
    }
    match res.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v.as_bytes().starts_with(b"text/plain"),
    }
}

/// The readable form of a refusal the framework decides on.
fn refusal(status: StatusCode, method: &Method) -> AppError {
    let (code, title, message): (_, _, Cow<'static, str>) = match status {
        StatusCode::BAD_REQUEST => (
            "invalid_request",
            "Cannot read this request",
            "The request's address or parameters are malformed (not UTF-8, or not of the expected form)."
                .into(),
        ),
        StatusCode::NOT_FOUND => (
            "not_found",
            "Page not found",
            "There is nothing at this address.".into(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "Not available",
            format!("This address does not accept the {method} method (see the Allow header).")
                .into(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "request_too_large",
            "Request too large",
            "The request body is larger than the 64 KiB accepted.".into(),
        ),
        StatusCode::URI_TOO_LONG => (
            "uri_too_long",
            "Address too long",
            format!(
                "The request's address is longer than the {} KiB accepted.",
                MAX_URI_BYTES / 1024
            )
            .into(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "Cannot read this request",
            "The request body's content type is not accepted here.".into(),
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "headers_too_large",
            "Request too large",
            format!(
                "The request's headers are larger than the {} KiB accepted.",
                MAX_HEADER_BYTES / 1024
            )
            .into(),
        ),
        s if s.is_server_error() => {
            return AppError::internal(anyhow::anyhow!("the framework answered {s}"));
        }
        _ => (
            "invalid_request",
            "Cannot serve this request",
            "The request was refused as sent.".into(),
        ),
    };
    AppError::new(status, code, title, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_body_has_one_shape_and_extra_members_never_replace_the_code() {
        let mut extra = Map::new();
        extra.insert("access_state".into(), "limited".into());
        extra.insert("error".into(), "something_else".into());
        let body = error_body("app_unavailable", "the app is limited", extra);
        assert_eq!(
            body,
            serde_json::json!({
                "error": "app_unavailable",
                "error_description": "the app is limited",
                "access_state": "limited",
            })
        );
    }

    #[test]
    fn apis_and_protocol_endpoints_answer_in_json_and_the_rest_in_pages() {
        for path in [
            "/api/v1/apps",
            "/api",
            "/par",
            "/token",
            "/userinfo",
            "/.well-known/jwks",
        ] {
            assert_eq!(Form::for_path(path), Form::Json, "{path}");
        }
        for path in [
            "/authorize",
            "/login",
            "/account/apps",
            "/apis",
            "/token/x",
            "/",
        ] {
            assert_eq!(Form::for_path(path), Form::Page, "{path}");
        }
    }

    #[test]
    fn an_internal_error_sends_no_detail() {
        let e = AppError::internal(anyhow::anyhow!("connection refused at 10.0.0.5")).json();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.code(), "server_error");
        assert!(!e.message().contains("10.0.0.5"));
    }
}
