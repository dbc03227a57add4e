//! The UserInfo endpoint (OIDC Core §5.3): the claims of the scopes the token carries, for a
//! bearer token (RFC 6750) that is genuine, unexpired and unrevoked.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::{cors, is_form};
use crate::startup::AppState;
use crate::store::tokens::AccessToken;
use crate::store::{apps, tokens, users};

/// No bearer token was sent (RFC 6750 §3.1: the challenge names no error).
fn no_token() -> OAuthError {
    OAuthError::bearer(
        StatusCode::UNAUTHORIZED,
        None,
        "a Bearer access token is required",
    )
}

fn header_token(headers: &HeaderMap) -> Result<Option<String>, OAuthError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| OAuthError::invalid_token("the authorization header is malformed"))?;
    match v.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim().to_string()))
        }
        _ => Err(no_token()),
    }
}

pub async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = match header_token(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    respond(&state, &headers, token).await
}

pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let from_header = match header_token(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    // RFC 6750 §2.2: a form body may carry the token instead of the header, never both.
    let from_body = if is_form(&headers) {
        match Params::parse(&body) {
            Ok(p) => p.get("access_token").map(str::to_string),
            Err(_) => {
                return OAuthError::bearer(
                    StatusCode::BAD_REQUEST,
                    Some(ErrorCode::InvalidRequest),
                    "the request body is not a valid form",
                )
                .into_response();
            }
        }
    } else {
        None
    };
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return OAuthError::bearer(
                StatusCode::BAD_REQUEST,
                Some(ErrorCode::InvalidRequest),
                "send the access token in one place only",
            )
            .into_response();
        }
        (h, b) => h.or(b),
    };
    respond(&state, &headers, token).await
}

async fn respond(state: &AppState, headers: &HeaderMap, token: Option<String>) -> Response {
    let Some(token) = token else {
        return no_token().into_response();
    };
    match claims(state, &token).await {
        Ok((claims, record)) => {
            let mut res = Json(claims).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Ok(Some(app)) = apps::by_client_id(&state.db, &record.client_id).await {
                cors::allow_for_app(&mut res, headers, &app);
            }
            res
        }
        Err(e) => e.into_response(),
    }
}

async fn claims(
    state: &AppState,
    token: &str,
) -> Result<(serde_json::Value, AccessToken), OAuthError> {
    // The bare challenge and `invalid_request` in the body, as userinfo has always answered.
    let server = |e: sqlx::Error| {
        tracing::error!(error = %e, "userinfo: database error");
        OAuthError::bearer(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "the server could not complete the request",
        )
    };
    let status = tokens::status(&state.db, &tokens::Lookup::of(token))
        .await
        .map_err(server)?
        .ok_or(OAuthError::invalid_token("the access token is not valid"))?;
    let usable: Vec<String> = status
        .usable_scopes(state.now())
        .into_iter()
        .map(str::to_string)
        .collect();
    let record = status.token;
    if record.revoked_at.is_some() {
        return Err(OAuthError::invalid_token(
            "the access token has been revoked",
        ));
    }
    if record.expires_at <= state.now() {
        return Err(OAuthError::invalid_token("the access token has expired"));
    }
    // A token minted for a resource server (RFC 8707 `resource`) is not for userinfo.
    if record.audience != state.settings.issuer.as_str() {
        return Err(OAuthError::invalid_token(
            "the access token's audience is not this server: it was issued for a resource server",
        ));
    }
    if record.grant_id.is_some() && status.grant_status.as_deref() != Some("active") {
        return Err(OAuthError::invalid_token(
            "the user's consent for this app no longer stands",
        ));
    }
    if !usable.iter().any(|s| s == "openid") {
        if record.scopes().any(|s| s == "openid") {
            return Err(OAuthError::invalid_token(
                "the user's consent to sign in to this app has been revoked or has expired",
            ));
        }
        return Err(OAuthError::bearer(
            StatusCode::FORBIDDEN,
            Some(ErrorCode::InsufficientScope),
            "the access token does not carry the openid scope",
        ));
    }
    if !crate::partner::access::usable_state(&status.app_state) {
        return Err(OAuthError::invalid_token(
            "the app of this access token cannot use Onyx ID at the moment",
        ));
    }
    let user_id = record
        .user_id
        .as_deref()
        .ok_or(OAuthError::invalid_token("the access token has no user"))?;
    let user = users::by_id(&state.db, user_id)
        .await
        .map_err(server)?
        .ok_or(OAuthError::invalid_token(
            "the account of this access token no longer exists",
        ))?;
    let mut claims = serde_json::json!({ "sub": user.id });
    // Claims of the scopes the user still allows, only.
    for scope in &usable {
        match scope.as_str() {
            "profile" => claims["name"] = user.name.clone().into(),
            "email" => {
                claims["email"] = user.email.clone().into();
                claims["email_verified"] = user.email_verified.into();
            }
            _ => {}
        }
    }
    Ok((claims, record))
}
