//! The protocol endpoints: authorize, pushed authorization requests, token, introspection,
//! revocation, userinfo, discovery and JWKS.

pub mod authorize;
pub mod client_auth;
pub mod cors;
pub mod discovery;
pub mod dpop;
pub mod end_session;
pub mod error;
pub mod introspect;
pub mod issue;
pub mod jwks_uri;
pub mod par;
pub mod params;
pub mod pkce;
pub mod profile;
pub mod redirect;
pub mod revoke;
pub mod token;
pub mod unavailable;
pub mod userinfo;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};

use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::openid_configuration),
        )
        .route("/jwks.json", get(discovery::jwks))
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/par", post(par::push).options(cors::preflight_post))
        .route("/token", post(token::token).options(cors::preflight_post))
        .route(
            "/revoke",
            post(revoke::revoke).options(cors::preflight_post),
        )
        .route("/introspect", post(introspect::introspect))
        .route(
            "/end_session",
            get(end_session::end_session_get).post(end_session::end_session_post),
        )
        .route("/end_session/confirm", post(end_session::confirm_post))
        .route(
            "/userinfo",
            get(userinfo::userinfo_get)
                .post(userinfo::userinfo_post)
                .options(cors::preflight_get_post),
        )
}

/// Whether the request body is declared `application/x-www-form-urlencoded`.
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}
