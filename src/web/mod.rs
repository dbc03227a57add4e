//! The pages people see: askama views, the template → response wrapper with the headers every
//! page carries, cookies and CSRF.

pub mod account;
pub mod account_security;
pub mod account_sessions;
pub mod app_sign_out;
pub mod client_ip;
pub mod consent;
pub mod cookies;
pub mod csrf;
pub mod login;
pub mod session;
pub mod sign_out;
pub mod views;

use askama::Template;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::startup::AppState;

/// The login, consent and account pages, and the stylesheet.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login::login_get).post(login::login_post))
        .route(
            "/consent",
            get(consent::consent_get).post(consent::consent_post),
        )
        .route("/account/apps", get(account::apps_get))
        .route(
            "/account/apps/revoke",
            axum::routing::post(account::revoke_post),
        )
        .route(
            "/account/apps/sign-out",
            axum::routing::post(app_sign_out::sign_out_post),
        )
        .route("/account/sessions", get(account_sessions::sessions_get))
        .route(
            "/account/sessions/end",
            axum::routing::post(account_sessions::end_post),
        )
        .route(
            "/account/sessions/end-others",
            axum::routing::post(account_sessions::end_others_post),
        )
        .route("/account/security", get(account_security::security_get))
        .route(
            "/account/security/password",
            axum::routing::post(account_security::password_post),
        )
        .route(
            "/account/sign-out",
            get(sign_out::sign_out_get).post(sign_out::sign_out_post),
        )
        .route("/static/onyx.css", get(stylesheet))
        .merge(crate::console::router())
}

/// Adds `Set-Cookie` headers to a response.
pub fn with_cookies(mut res: Response, cookies: impl IntoIterator<Item = String>) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// Sets each header to its fixed value (replacing any it had).
pub fn set_headers<const N: usize>(res: &mut Response, headers: [(HeaderName, &'static str); N]) {
    let h = res.headers_mut();
    for (name, value) in headers {
        h.insert(name, HeaderValue::from_static(value));
    }
}

const PAGE_CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers for every HTML page: never framed (clickjacking), never cached (pages carry codes
/// and CSRF tokens), never leaking their URL in a Referer.
pub fn page_headers(res: &mut Response) {
    set_headers(
        res,
        [
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
    );
}

/// Renders a template as an HTML page with `status` and the page headers.
pub fn render<T: Template>(status: StatusCode, view: &T) -> Response {
    match view.render() {
        Ok(body) => {
            let mut res = (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                )],
                body,
            )
                .into_response();
            page_headers(&mut res);
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            let mut res = (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            )
                .into_response();
            page_headers(&mut res);
            res
        }
    }
}

/// A readable error page.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(status, &views::ErrorPage { title, message })
}

/// A 303 See Other to `location`, with the page headers (the redirect may carry a code).
pub fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(location) {
        Ok(v) => {
            res.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Cannot continue",
                "The address to return to is not valid.",
            );
        }
    }
    page_headers(&mut res);
    res
}

/// The one stylesheet: the pages', then the consoles' (shared, the partner console's app and
/// operating pages, the review console's).
pub const STYLESHEET: &str = concat!(
    include_str!("../../static/onyx.css"),
    include_str!("../../static/console.css"),
    include_str!("../../static/console-partner.css"),
    include_str!("../../static/console-operate.css"),
    include_str!("../../static/console-review.css"),
);

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}
