//! The partner API for permission state. An app authenticates with its own client credentials
//! (HTTP Basic, as at the token endpoint) and sees only its own grants:
//!
//! - `GET /api/v1/grants/{sub}`: the user's grant to this app, each permission with its state,
//!   reason and expiry as the app must treat it now;
//! - `GET /api/v1/grants/{sub}/history`: the permission history the user also sees;
//! - `DELETE /api/v1/grants/{sub}`: the app gives up its access (`revoked_by_partner`), or
//!   only the scopes of `?scope=a b` ("stay connected" alone: `?scope=offline_access`).
//!
//! Every call needs the app to be usable (a suspended app, or one Onyx has not approved, gets
//! 403 with `access_state` and `reason`, as at the token endpoint) and to hold `grants:read`
//! (approved, not withdrawn by a limit): otherwise 403 `insufficient_scope` naming it. A
//! limited app that still holds it reads on; every answer carries the app's `access_state`.

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::consent::{self, Reason};
use crate::oauth::client_auth::{authenticate, presented};
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::oauth::token::no_store;
use crate::startup::AppState;
use crate::store::apps::App;
use crate::store::grants::{self, Actor, Grant};
use crate::store::users::{self, User};

pub fn router() -> Router<AppState> {
    routes().split_for_parts().0
}

/// The grants API's routes with their documentation (`#[utoipa::path]` on each handler); the
/// partner API's document takes them in (`partner::api::document`).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(grant_get, grant_delete))
        .routes(routes!(history_get))
}

fn not_found() -> Response {
    no_store(
        (
            StatusCode::NOT_FOUND,
            Json(json!({
                "error": "not_found",
                "error_description": "this user has no grant for this app",
            })),
        )
            .into_response(),
    )
}

/// The scope the grants API needs.
const GRANTS_READ: &str = "grants:read";

fn forbidden(body: Value) -> Response {
    no_store((StatusCode::FORBIDDEN, Json(body)).into_response())
}

/// The authenticated app, if Onyx lets it use the grants API now; else the answer refusing it.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<App, Response> {
    let app = async {
        let empty = Params::parse(b"")?;
        let presented = presented(headers, &empty)?;
        authenticate(state, &presented).await
    }
    .await
    .map_err(IntoResponse::into_response)?;
    if let Err(refusal) = app.gate() {
        return Err(forbidden(json!({
            "error": "unauthorized_client",
            "error_description": refusal.description,
            "access_state": refusal.state,
            "reason": refusal.reason,
        })));
    }
    let why_not = crate::scopes::catalogue()
        .get(GRANTS_READ)
        .map(|info| consent::app_unavailable_because(info, &app.facts()));
    match why_not {
        Some(None) => Ok(app),
        Some(Some(reason)) => Err(forbidden(json!({
            "error": "insufficient_scope",
            "error_description": format!(
                "the grants API needs the scope {GRANTS_READ}, which this app does not hold now ({}): {}",
                reason.as_str(),
                reason.sentence()
            ),
            "scope": GRANTS_READ,
            "reason": reason.as_str(),
            "access_state": app.access.as_str(),
        }))),
        None => Err(OAuthError::new(
            crate::oauth::error::ErrorCode::ServerError,
            "the scope catalogue has no grants:read",
        )
        .into_response()),
    }
}

/// What the answer says about the app's own access (a limited app still reads).
fn with_access(mut v: Value, app: &App) -> Value {
    v["access_state"] = json!(app.access.as_str());
    v["access_reason"] = json!(app.access_reason.map(|r| r.as_str()));
    v
}

/// The user and the app's grant (the current one, else the latest ended one).
async fn lookup(
    state: &AppState,
    app: &App,
    sub: &str,
) -> Result<Option<(User, Grant)>, sqlx::Error> {
    let Some(user) = users::by_id(&state.db, sub).await? else {
        return Ok(None);
    };
    let grant = match grants::current(&state.db, &user.id, &app.client_id).await? {
        Some(g) => Some(g),
        None => grants::of_user(&state.db, &user.id)
            .await?
            .into_iter()
            .filter(|g| g.client_id == app.client_id)
            .max_by_key(|g| g.created_at),
    };
    Ok(grant.map(|g| (user, g)))
}

/// The grant as JSON: its state and every permission's effective state.
pub async fn grant_json(
    state: &AppState,
    app: &App,
    user: &User,
    grant: &Grant,
) -> Result<Value, sqlx::Error> {
    let views = grants::views(
        &state.db,
        &grant.id,
        &app.facts(),
        &user.facts(),
        state.now(),
    )
    .await?;
    let summary = consent::GrantState::of(grant.is_active(), &views).as_str();
    Ok(json!({
        "sub": user.id,
        "client_id": grant.client_id,
        "grant_id": grant.id,
        "state": summary,
        "ended_reason": grant.ended_reason,
        "consent_copy_version": grant.copy_version,
        "created_at": grant.created_at,
        "updated_at": grant.updated_at,
        "last_used_at": grant.last_used_at,
        "permissions": views,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/grants/{sub}",
    tag = "grants",
    operation_id = "grant_get",
    security(("clientBasic" = [])),
    params(("sub" = String, Path, description = "the user's subject identifier")),
    responses((status = 200, description = "the grant, each permission with its state, reason and expiry", body = Object), (status = 400, description = "the request is malformed or a value is not acceptable", body = crate::error::ErrorBody), (status = 401, description = "no API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)", body = crate::error::ErrorBody), (status = 403, description = "the key is of the other kind", body = crate::error::ErrorBody), (status = 404, description = "no such thing for this caller", body = crate::error::ErrorBody), (status = 500, description = "the server could not complete the request", body = crate::error::ErrorBody))
)]
async fn grant_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(sub): Path<String>,
) -> Response {
    let app = match caller(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let found = match lookup(&state, &app, &sub).await {
        Ok(f) => f,
        Err(e) => return OAuthError::from(e).into_response(),
    };
    let Some((user, grant)) = found else {
        return not_found();
    };
    match grant_json(&state, &app, &user, &grant).await {
        Ok(v) => no_store(Json(with_access(v, &app)).into_response()),
        Err(e) => OAuthError::from(e).into_response(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/grants/{sub}/history",
    tag = "grants",
    operation_id = "history_get",
    security(("clientBasic" = [])),
    params(("sub" = String, Path, description = "the user's subject identifier")),
    responses((status = 200, description = "the permission history the user also sees", body = Object), (status = 400, description = "the request is malformed or a value is not acceptable", body = crate::error::ErrorBody), (status = 401, description = "no API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)", body = crate::error::ErrorBody), (status = 403, description = "the key is of the other kind", body = crate::error::ErrorBody), (status = 404, description = "no such thing for this caller", body = crate::error::ErrorBody), (status = 500, description = "the server could not complete the request", body = crate::error::ErrorBody))
)]
async fn history_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(sub): Path<String>,
) -> Response {
    let app = match caller(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let entries = match lookup(&state, &app, &sub).await {
        Ok(None) => return not_found(),
        Ok(Some((user, _))) => grants::history(&state.db, &user.id, Some(&app.client_id)).await,
        Err(e) => Err(e),
    };
    match entries {
        Ok(entries) => {
            let entries: Vec<Value> = entries
                .into_iter()
                .map(|h| {
                    let reason = h.reason.as_deref().and_then(Reason::parse);
                    json!({
                        "at": h.at,
                        "grant_id": h.grant_id,
                        "scope": h.scope,
                        "old_state": h.old_state,
                        "new_state": h.new_state,
                        "reason": h.reason,
                        "description": reason.map(Reason::sentence),
                        "actor": h.actor,
                        "consent_copy_version": h.copy_version,
                    })
                })
                .collect();
            no_store(
                Json(with_access(
                    json!({ "sub": sub, "client_id": app.client_id, "entries": entries }),
                    &app,
                ))
                .into_response(),
            )
        }
        Err(e) => OAuthError::from(e).into_response(),
    }
}

/// The scopes a partner's DELETE gives up: `?scope=a b` (space-separated), or all of them.
fn delete_scopes(query: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let params = Params::parse(query.unwrap_or("").as_bytes())?;
    match params.get("scope") {
        None => Ok(Vec::new()),
        Some(raw) => {
            let scopes = crate::scopes::parse_scope_list(raw).map_err(|e| {
                OAuthError::new(crate::oauth::error::ErrorCode::InvalidScope, e.to_string())
            })?;
            Ok(scopes.iter().map(|s| s.as_str().to_string()).collect())
        }
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/grants/{sub}",
    tag = "grants",
    operation_id = "grant_delete",
    security(("clientBasic" = [])),
    params(("sub" = String, Path, description = "the user's subject identifier"), ("scope" = Option<String>, Query, description = "only these scopes (space-separated)")),
    responses((status = 200, description = "the grant after the app gave up its access", body = Object), (status = 400, description = "the request is malformed or a value is not acceptable", body = crate::error::ErrorBody), (status = 401, description = "no API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)", body = crate::error::ErrorBody), (status = 403, description = "the key is of the other kind", body = crate::error::ErrorBody), (status = 404, description = "no such thing for this caller", body = crate::error::ErrorBody), (status = 500, description = "the server could not complete the request", body = crate::error::ErrorBody))
)]
async fn grant_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(sub): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let app = match caller(&state, &headers).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let scopes = match delete_scopes(query.as_deref()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let result = async {
        let Some((user, grant)) = lookup(&state, &app, &sub).await? else {
            return Ok(None);
        };
        grants::revoke(
            &state.db,
            &grant.id,
            &scopes,
            Reason::RevokedByPartner,
            Actor::Partner,
            state.now(),
        )
        .await?;
        let grant = grants::by_id(&state.db, &grant.id).await?.unwrap_or(grant);
        grant_json(&state, &app, &user, &grant).await.map(Some)
    }
    .await;
    match result {
        Ok(Some(v)) => {
            tracing::info!(client_id = %app.client_id, user_id = %sub, "grant revoked by the partner");
            no_store(Json(with_access(v, &app)).into_response())
        }
        Ok(None) => not_found(),
        Err(e) => OAuthError::from(e).into_response(),
    }
}
