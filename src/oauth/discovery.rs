//! Discovery (OIDC Discovery 1.0 §3, RFC 8414 §2) and the JWKS (RFC 7517).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::config::Settings;
use crate::keys::Algorithm;
use crate::scopes::catalogue;
use crate::startup::AppState;

/// Algorithms accepted for `private_key_jwt` client assertions.
const ASSERTION_ALGS: [&str; 9] = [
    "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

/// The metadata document. Everything listed here is what the server really does.
pub fn document(settings: &Settings, algs: &[Algorithm]) -> serde_json::Value {
    let issuer = &settings.issuer;
    let algs: Vec<&str> = algs.iter().map(|a| a.as_str()).collect();
    let scopes: Vec<&str> = catalogue().all().iter().map(|s| s.name.as_str()).collect();
    serde_json::json!({
        "issuer": issuer.as_str(),
        "authorization_endpoint": issuer.endpoint("/authorize"),
        "token_endpoint": issuer.endpoint("/token"),
        "userinfo_endpoint": issuer.endpoint("/userinfo"),
        "jwks_uri": issuer.endpoint("/jwks.json"),
        "introspection_endpoint": issuer.endpoint("/introspect"),
        "revocation_endpoint": issuer.endpoint("/revoke"),
        "end_session_endpoint": issuer.endpoint("/end_session"),
        "pushed_authorization_request_endpoint": issuer.endpoint("/par"),
        "require_pushed_authorization_requests": settings.require_pushed_authorization_requests,
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": catalogue().claims(),
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        // Request objects by reference (OIDC Core §6.2) are not fetched; the request_uri of a
        // pushed request works regardless of this value (RFC 9126 §5).
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "dpop_signing_alg_values_supported": crate::oauth::dpop::ALGS,
    })
}

pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        state.discovery.clone(),
    )
        .into_response()
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    let jwks = state.keys.current().await.jwks(state.now());
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            // Short: a rotation publishes the next key ahead of use (ONYX key_publish_ahead).
            (header::CACHE_CONTROL, "public, max-age=60"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        jwks.to_string(),
    )
        .into_response()
}
