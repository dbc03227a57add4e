//! Token revocation (RFC 7009). Answers exactly 200 for unknown and already revoked tokens.
//! Revoking a refresh token revokes every token of its grant chain (RFC 7009 §2.1); revoking an
//! access token revokes that token. Only the app a token was issued to may revoke it.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::error::OAuthError;
use super::params::Params;
use super::token::app_request;
use crate::startup::AppState;
use crate::store::apps::App;
use crate::store::{refresh_tokens, tokens};

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    app_request(&state, &headers, &body, async |params, app| {
        handle(&state, params, app).await.map(|()| StatusCode::OK)
    })
    .await
}

fn not_yours() -> OAuthError {
    OAuthError::invalid_request("this token was not issued to the authenticated client")
}

async fn handle(state: &AppState, params: Params, app: App) -> Result<(), OAuthError> {
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
        crate::store::apps::record_preview(
            &state.db,
            &app.client_id,
            crate::store::apps::PreviewEvidence::Revocation,
            now,
        )
        .await?;
    }
    Ok(())
}
