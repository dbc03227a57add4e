//! The token endpoint (RFC 6749 §3.2): client authentication, then the grant.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::client_auth::{authenticate, presented};
use super::error::{ErrorCode, OAuthError};
use super::issue::{self, AccessGrant, IdTokenInput};
use super::params::Params;
use super::{cors, is_form, pkce};
use crate::startup::AppState;
use crate::store::apps::App;
use crate::store::codes::{self, Redemption};
use crate::store::tokens;

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut app_for_cors = None;
    let mut res = match handle(&state, &headers, &body, &mut app_for_cors).await {
        Ok(json) => {
            let mut res = Json(json).into_response();
            let h = res.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            res
        }
        Err(e) => e.into_response(),
    };
    if let Some(app) = &app_for_cors {
        cors::allow_for_app(&mut res, &headers, app);
    }
    res
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    app_for_cors: &mut Option<App>,
) -> Result<serde_json::Value, OAuthError> {
    if !is_form(headers) {
        return Err(OAuthError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body)?;
    let app = authenticate(state, &presented(headers, &params)?).await?;
    if let Some(origin) = cors::origin(headers)
        && !app.origins.iter().any(|o| o == origin)
    {
        return Err(OAuthError::invalid_request(format!(
            "origin {origin:?} is not allowed for this app"
        )));
    }
    *app_for_cors = Some(app.clone());
    if !app.is_active() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this app cannot use Onyx ID at the moment",
        ));
    }
    match params.required("grant_type")? {
        "authorization_code" => authorization_code(state, &app, &params).await,
        other => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!(
                "grant_type {:?} is not supported",
                other.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6).
async fn authorization_code(
    state: &AppState,
    app: &App,
    params: &Params,
) -> Result<serde_json::Value, OAuthError> {
    if !app.allows_grant("authorization_code") {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this app may not use the authorization code grant",
        ));
    }
    let code = params.required("code")?;
    let redirect_uri = params.required("redirect_uri")?;
    let verifier = params
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    let now = state.now();
    let code = match codes::redeem(&state.db.pool, code, now).await? {
        Redemption::Fresh(c) => c,
        Redemption::Replayed { family_id } => {
            let revoked = tokens::revoke_family(&state.db.pool, &family_id, now).await?;
            tracing::warn!(client_id = %app.client_id, revoked, "authorization code replayed: its tokens are revoked");
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; the tokens issued from it are revoked",
            ));
        }
        Redemption::Unknown => {
            return Err(OAuthError::invalid_grant(
                "the authorization code is invalid",
            ));
        }
    };
    if code.client_id != app.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if code.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the one of the authorization request",
        ));
    }
    pkce::verify(verifier, &code.code_challenge).map_err(OAuthError::invalid_grant)?;

    let access = issue::access_token(
        state,
        app,
        AccessGrant {
            user_id: Some(&code.user_id),
            grant_id: Some(&code.grant_id),
            family_id: Some(&code.family_id),
            scope: &code.scope,
            audience: &state.settings.default_audience,
            auth_time: Some(code.auth_time),
        },
    )
    .await?;
    let mut response = serde_json::json!({
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": access.record.expires_at - now,
        "scope": code.scope,
    });
    if access.record.scopes().any(|s| s == "openid") {
        response["id_token"] = issue::id_token(
            state,
            app,
            IdTokenInput {
                user_id: &code.user_id,
                nonce: code.nonce.as_deref(),
                auth_time: code.auth_time,
                access_token: &access.token,
            },
        )?
        .into();
    }
    tracing::info!(client_id = %app.client_id, user_id = %code.user_id, "tokens issued for an authorization code");
    Ok(response)
}
