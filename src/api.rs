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
use serde::Serialize;
use serde_json::json;
use strum::VariantNames;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock::Timestamp;
use crate::consent::{self, GrantState, Reason};
use crate::oauth::client_auth::{authenticate, presented};
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::oauth::token::no_store;
use crate::partner::access::{AccessReason, AccessState};
use crate::partner::api::docs::names_schema;
use crate::partner::api::responses::GrantsErrors;
use crate::startup::AppState;
use crate::store::apps::App;
use crate::store::grants::{self, Actor, Grant, HistoryEntry};
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

/// A user's grant to the calling app: its state and every permission's effective state, as
/// the app must treat them now, and the app's own access.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Grant)]
pub struct GrantBody {
    pub sub: String,
    pub client_id: String,
    pub grant_id: String,
    /// Where the grant stands as a whole.
    #[schema(value_type = GrantStateDoc)]
    pub state: GrantState,
    /// Why the grant ended, once it has.
    pub ended_reason: Option<String>,
    pub consent_copy_version: String,
    #[schema(value_type = i64)]
    pub created_at: Timestamp,
    #[schema(value_type = i64)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<i64>)]
    pub last_used_at: Option<Timestamp>,
    #[schema(value_type = Vec<PermissionDoc>)]
    pub permissions: Vec<consent::View>,
    pub access_state: AccessState,
    pub access_reason: Option<AccessReason>,
}

/// The permission history of a user with the calling app, oldest first, and the app's own
/// access.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GrantHistory)]
pub struct HistoryBody {
    pub sub: String,
    pub client_id: String,
    pub entries: Vec<HistoryItem>,
    pub access_state: AccessState,
    pub access_reason: Option<AccessReason>,
}

/// One change of one permission.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = HistoryEntry)]
pub struct HistoryItem {
    #[schema(value_type = i64)]
    pub at: Timestamp,
    pub grant_id: String,
    pub scope: String,
    pub old_state: Option<String>,
    pub new_state: String,
    pub reason: Option<String>,
    /// The reason in a sentence a person can read.
    pub description: Option<&'static str>,
    /// Who made the change: `app`, `user`, `partner` or `onyx`.
    pub actor: String,
    pub consent_copy_version: String,
}

impl From<HistoryEntry> for HistoryItem {
    fn from(h: HistoryEntry) -> Self {
        let description = h
            .reason
            .as_deref()
            .and_then(Reason::parse)
            .map(Reason::sentence);
        Self {
            at: h.at,
            grant_id: h.grant_id,
            scope: h.scope,
            old_state: h.old_state,
            new_state: h.new_state,
            reason: h.reason,
            description,
            actor: h.actor,
            consent_copy_version: h.copy_version,
        }
    }
}

/// A permission as the app must treat it now (`consent::View`, which stays free of
/// documentation concerns; a unit test holds the two to the same members).
#[derive(ToSchema)]
#[schema(as = Permission)]
#[allow(dead_code)]
pub(crate) struct PermissionDoc {
    scope: String,
    #[schema(value_type = PermissionStateDoc)]
    state: String,
    #[schema(value_type = Option<PermissionReasonDoc>)]
    reason: Option<String>,
    /// The reason in a sentence a person can read.
    description: Option<String>,
    /// When the permission expires (Unix seconds).
    expires_at: Option<i64>,
    /// For a gated scope, the capability it waits for.
    capability: Option<String>,
    updated_at: i64,
}

names_schema!(
    /// Where a whole grant stands (`consent::GrantState`).
    GrantStateDoc = "GrantState", GrantState::VARIANTS
);
names_schema!(
    /// A permission's effective state (`consent::State`).
    PermissionStateDoc = "PermissionState", consent::State::VARIANTS
);
names_schema!(
    /// Why a permission is not (or no longer) granted (`consent::Reason`).
    PermissionReasonDoc = "PermissionReason", Reason::VARIANTS
);

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

fn forbidden(body: serde_json::Value) -> Response {
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

/// The answer: `body` as JSON, never cached.
fn answer(body: impl Serialize) -> Response {
    no_store(Json(body).into_response())
}

/// A database failure, as the protocol side answers it.
fn failed(e: sqlx::Error) -> Response {
    OAuthError::from(e).into_response()
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

/// The user and the app's grant, or the answer that there is none.
async fn found(state: &AppState, app: &App, sub: &str) -> Result<(User, Grant), Response> {
    match lookup(state, app, sub).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(not_found()),
        Err(e) => Err(failed(e)),
    }
}

/// The grant as the app reads it: its state and every permission's effective state.
pub async fn grant_view(
    state: &AppState,
    app: &App,
    user: &User,
    grant: &Grant,
) -> Result<GrantBody, sqlx::Error> {
    let views = grants::views(
        &state.db,
        &grant.id,
        &app.facts(),
        &user.facts(),
        state.now(),
    )
    .await?;
    Ok(GrantBody {
        sub: user.id.clone(),
        client_id: grant.client_id.clone(),
        grant_id: grant.id.clone(),
        state: GrantState::of(grant.is_active(), &views),
        ended_reason: grant.ended_reason.clone(),
        consent_copy_version: grant.copy_version.clone(),
        created_at: grant.created_at,
        updated_at: grant.updated_at,
        last_used_at: grant.last_used_at,
        permissions: views,
        access_state: app.access,
        access_reason: app.access_reason,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/grants/{sub}",
    tag = "grants",
    operation_id = "grant_get",
    security(("clientBasic" = [])),
    params(("sub" = String, Path, description = "the user's subject identifier")),
    responses((status = 200, description = "the grant, each permission with its state, reason and expiry", body = GrantBody), GrantsErrors)
)]
async fn grant_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(sub): Path<String>,
) -> Result<Response, Response> {
    let app = caller(&state, &headers).await?;
    let (user, grant) = found(&state, &app, &sub).await?;
    let body = grant_view(&state, &app, &user, &grant)
        .await
        .map_err(failed)?;
    Ok(answer(body))
}

#[utoipa::path(
    get,
    path = "/api/v1/grants/{sub}/history",
    tag = "grants",
    operation_id = "history_get",
    security(("clientBasic" = [])),
    params(("sub" = String, Path, description = "the user's subject identifier")),
    responses((status = 200, description = "the permission history the user also sees", body = HistoryBody), GrantsErrors)
)]
async fn history_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(sub): Path<String>,
) -> Result<Response, Response> {
    let app = caller(&state, &headers).await?;
    let (user, _) = found(&state, &app, &sub).await?;
    let entries = grants::history(&state.db, &user.id, Some(&app.client_id))
        .await
        .map_err(failed)?;
    Ok(answer(HistoryBody {
        sub,
        client_id: app.client_id,
        entries: entries.into_iter().map(HistoryItem::from).collect(),
        access_state: app.access,
        access_reason: app.access_reason,
    }))
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
    responses((status = 200, description = "the grant after the app gave up its access", body = GrantBody), GrantsErrors)
)]
async fn grant_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(sub): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Response> {
    let app = caller(&state, &headers).await?;
    let scopes = delete_scopes(query.as_deref()).map_err(IntoResponse::into_response)?;
    let (user, grant) = found(&state, &app, &sub).await?;
    let body = async {
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
        grant_view(&state, &app, &user, &grant).await
    }
    .await
    .map_err(failed)?;
    tracing::info!(client_id = %app.client_id, user_id = %sub, "grant revoked by the partner");
    Ok(answer(body))
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use super::*;
    use crate::partner::api::docs::tests::{members, properties};

    #[test]
    fn the_permission_schema_names_every_member_a_view_can_have() {
        let view = consent::View {
            scope: "email".into(),
            state: consent::State::Denied,
            reason: Some(Reason::UserDeclined),
            description: Some("d"),
            expires_at: Some(1),
            capability: Some("c".into()),
            updated_at: 0,
        };
        assert_eq!(members(view), properties::<PermissionDoc>());
    }

    #[test]
    fn the_enum_schemas_list_the_enums_string_forms() {
        let RefOr::T(Schema::Object(o)) = GrantStateDoc::schema() else {
            panic!("not an object schema");
        };
        let names: Vec<String> = o
            .enum_values
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert!(names.contains(&GrantState::Limited.as_str().to_string()));
        assert_eq!(names.len(), GrantState::VARIANTS.len());
    }
}
