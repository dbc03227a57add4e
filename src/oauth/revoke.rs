//! Token revocation (RFC 7009). Answers exactly 200 for unknown and already revoked tokens.
//! Revoking a refresh token revokes every token of its grant chain (RFC 7009 §2.1); revoking an
//! access token revokes that token. Only the app a token was issued to may revoke it.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::client_auth::{authenticate, presented};
use super::error::OAuthError;
use super::params::Params;
use super::token::no_store;
use super::{cors, is_form};
use crate::startup::AppState;
use crate::store::apps::App;
use crate::store::{refresh_tokens, tokens};

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut app_for_cors = None;
    let mut res = match handle(&state, &headers, &body, &mut app_for_cors).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    };
    if let Some(app) = &app_for_cors {
        cors::allow_for_app(&mut res, &headers, app);
    }
    res
}

fn not_yours() -> OAuthError {
    OAuthError::invalid_request("this token was not issued to the authenticated client")
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    app_for_cors: &mut Option<App>,
) -> Result<(), OAuthError> {
    if !is_form(headers) {
        return Err(OAuthError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body)?;
    let app = authenticate(state, &presented(headers, &params)?).await?;
    cors::check_origin(headers, &app)?;
    *app_for_cors = Some(app.clone());
    let token = params.required("token")?;
    let lookup = tokens::Lookup::of(token);
    let hash = lookup.hash();
    let now = state.now();

    let refresh_first = params.get("token_type_hint") != Some("access_token");
    for kind in if refresh_first {
        ["refresh", "access"]
    } else {
        ["access", "refresh"]
    } {
        if kind == "refresh" {
            if let Some(r) = refresh_tokens::status_by_hash(&state.db, hash).await? {
                if r.token.client_id != app.client_id {
                    return Err(not_yours());
                }
                let n = tokens::revoke_family(&state.db, &r.token.family_id, now).await?;
                tracing::info!(client_id = %app.client_id, revoked = n, "refresh token revoked with its grant chain");
                return preview_evidence(state, &app, now).await;
            }
        } else if let Some(owner) =
            tokens::revoke_access_token(&state.db, &lookup, &app.client_id, now).await?
        {
            if owner != app.client_id {
                return Err(not_yours());
            }
            tracing::info!(client_id = %app.client_id, "access token revoked");
            return preview_evidence(state, &app, now).await;
        }
    }
    // Unknown tokens: 200 all the same (RFC 7009 §2.2).
    Ok(())
}

/// Launch evidence: a successful revocation call while the app is in preview.
async fn preview_evidence(state: &AppState, app: &App, now: i64) -> Result<(), OAuthError> {
    if app.stage == crate::partner::access::Stage::Preview && app.preview_revocation_at.is_none() {
        crate::store::apps::record_preview_revocation(&state.db, &app.client_id, now).await?;
    }
    Ok(())
}
