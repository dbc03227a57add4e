//! The partner program's HTTP API (JSON). Partners call it with a partner API key, operators
//! with an operator API key, both as `Authorization: Bearer <key>`. Its OpenAPI document is
//! served at `/api/v1/openapi.json`.
//!
//! Every refusal is `{"error": code, "error_description": sentence, ...}` and names the state
//! and reason where one applies; another partner's app is "not found", never "forbidden".

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use super::domain::Verifier;
use super::program::{self, ProgramError};
use super::{Step, StepState};
use crate::startup::AppState;
use crate::store::audit;
use crate::store::partners::{self, KeyOwner};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/partner", get(partner_get))
        .route("/api/v1/partner/keys", post(key_create))
        .route(
            "/api/v1/partner/keys/{key_id}",
            axum::routing::delete(key_revoke),
        )
        .route("/api/v1/apps", get(apps_list).post(app_create))
        .route("/api/v1/apps/{client_id}", get(app_get).patch(app_patch))
        .route("/api/v1/apps/{client_id}/submit", post(app_submit))
        .route("/api/v1/apps/{client_id}/review", get(app_review))
        .route("/api/v1/apps/{client_id}/launch-checklist", get(app_launch))
        .route(
            "/api/v1/apps/{client_id}/capabilities",
            get(app_capabilities),
        )
        .route(
            "/api/v1/apps/{client_id}/capabilities/{name}",
            post(app_capability_request),
        )
        .route("/api/v1/apps/{client_id}/secret", post(app_secret_rotate))
        .route(
            "/api/v1/apps/{client_id}/test-accounts",
            get(app_test_accounts).put(app_test_accounts_set),
        )
        .route(
            "/api/v1/apps/{client_id}/domain-verification",
            get(app_domain_get).post(app_domain_verify),
        )
        .route("/api/v1/operator/reviews", get(op_queue))
        .route("/api/v1/operator/partners", post(op_partner_create))
        .route(
            "/api/v1/operator/partners/{partner_id}/members",
            post(op_member_add),
        )
        .route("/api/v1/operator/apps/{client_id}", get(op_app_get))
        .route(
            "/api/v1/operator/apps/{client_id}/steps/{step}",
            put(op_step_decide),
        )
        .route(
            "/api/v1/operator/apps/{client_id}/capabilities/{name}",
            put(op_capability_set),
        )
        .route(
            "/api/v1/operator/apps/{client_id}/access",
            put(op_access_set),
        )
        .route(
            "/api/v1/operator/apps/{client_id}/trust-level",
            put(op_trust_set),
        )
        .route("/api/v1/operator/audit", get(op_audit))
}

/// A JSON answer that is never cached.
fn reply(status: StatusCode, body: Value) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    reply(
        status,
        json!({ "error": code, "error_description": description }),
    )
}

impl IntoResponse for ProgramError {
    fn into_response(self) -> Response {
        match self {
            Self::Invalid {
                code,
                message,
                extra,
            } => {
                let mut body = json!({ "error": code, "error_description": message });
                if let Some(m) = body.as_object_mut() {
                    m.extend(extra);
                }
                reply(StatusCode::BAD_REQUEST, body)
            }
            Self::Conflict {
                code,
                message,
                extra,
            } => {
                let mut body = json!({ "error": code, "error_description": message });
                if let Some(m) = body.as_object_mut() {
                    m.extend(extra);
                }
                reply(StatusCode::CONFLICT, body)
            }
            Self::NotFound(what) => error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("no such {what} for this caller"),
            ),
            Self::Internal(e) => {
                tracing::error!(error = ?e, "internal error in the partner API");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "the server could not complete the request",
                )
            }
        }
    }
}

/// Why a caller was refused before anything else.
enum AuthError {
    Missing,
    Invalid,
    WrongKind(&'static str),
    Db(sqlx::Error),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let (status, code, d) = match self {
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "send an API key as Authorization: Bearer <key>",
            ),
            Self::Invalid => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the API key is unknown or revoked",
            ),
            Self::WrongKind(need) => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                if need == "partner" {
                    "this endpoint needs a partner API key"
                } else {
                    "this endpoint needs an operator API key"
                },
            ),
            Self::Db(e) => return ProgramError::from(e).into_response(),
        };
        let mut res = error(status, code, d);
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"onyx-id partner API\""),
            );
        }
        res
    }
}

async fn owner(state: &AppState, headers: &HeaderMap) -> Result<KeyOwner, AuthError> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthError::Missing)?;
    // The scheme name is case-insensitive (RFC 7235 §2.1).
    let key = match raw.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
        _ => return Err(AuthError::Missing),
    };
    partners::key_owner(&state.db, key, state.now())
        .await
        .map_err(AuthError::Db)?
        .ok_or(AuthError::Invalid)
}

/// A partner caller: its partner id and how the audit log names it.
struct PartnerCaller {
    partner_id: String,
    actor: String,
}

async fn partner(state: &AppState, headers: &HeaderMap) -> Result<PartnerCaller, AuthError> {
    match owner(state, headers).await? {
        o @ KeyOwner::Partner { .. } => {
            let actor = o.actor();
            let KeyOwner::Partner { partner_id, .. } = o else {
                return Err(AuthError::Invalid);
            };
            Ok(PartnerCaller { partner_id, actor })
        }
        KeyOwner::Operator { .. } => Err(AuthError::WrongKind("partner")),
    }
}

async fn operator(state: &AppState, headers: &HeaderMap) -> Result<String, AuthError> {
    match owner(state, headers).await? {
        o @ KeyOwner::Operator { .. } => Ok(o.actor()),
        KeyOwner::Partner { .. } => Err(AuthError::WrongKind("operator")),
    }
}

/// Parses a JSON body (an empty body is `{}`), answering `invalid_request` when it is not JSON.
fn body_json(body: &Bytes) -> Result<Value, ProgramError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        ProgramError::invalid(
            "invalid_request",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

fn body_as<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ProgramError> {
    serde_json::from_value(body_json(body)?).map_err(|e| {
        ProgramError::invalid("invalid_request", format!("the body does not fit: {e}"))
    })
}

fn ok(v: Result<Value, ProgramError>) -> Response {
    match v {
        Ok(v) => reply(StatusCode::OK, v),
        Err(e) => e.into_response(),
    }
}

fn created(v: Result<Value, ProgramError>) -> Response {
    match v {
        Ok(v) => reply(StatusCode::CREATED, v),
        Err(e) => e.into_response(),
    }
}

/// The value, or the response that refuses (any error that knows its own response).
macro_rules! or_respond {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return IntoResponse::into_response(e),
        }
    };
}

fn verifier(state: &AppState) -> Verifier {
    Verifier::new(state.settings.domain_verification.clone())
}

// ---------------------------------------------------------------------------------------------
// Partner endpoints
// ---------------------------------------------------------------------------------------------

async fn openapi() -> Response {
    let mut res = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

async fn partner_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = or_respond!(partner(&state, &headers).await);
    ok(program::partner_view(&state.db, &p.partner_id).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    name: String,
}

async fn key_create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let p = or_respond!(partner(&state, &headers).await);
    let b: KeyBody = or_respond!(body_as(&body));
    created(
        program::create_partner_key(&state.db, state.now(), &p.actor, &p.partner_id, &b.name).await,
    )
}

async fn key_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key_id): Path<String>,
) -> Response {
    let p = or_respond!(partner(&state, &headers).await);
    ok(program::revoke_partner_key(&state.db, state.now(), &p.actor, &p.partner_id, &key_id).await)
}

async fn apps_list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = or_respond!(partner(&state, &headers).await);
    ok(program::partner_apps(&state.db, &p.partner_id).await)
}

async fn app_create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let p = or_respond!(partner(&state, &headers).await);
    let b = or_respond!(body_json(&body));
    created(program::create_app(&state.db, state.now(), &p.actor, &p.partner_id, b).await)
}

/// The caller's app, or the response that refuses.
async fn own_app(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<(PartnerCaller, crate::store::apps::App), Response> {
    let p = partner(state, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    let app = program::partner_app(&state.db, &p.partner_id, client_id)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((p, app))
}

async fn app_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(program::app_view(&state.db, &app).await)
}

async fn app_patch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (p, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    let b = or_respond!(body_json(&body));
    ok(program::update_draft(&state.db, state.now(), &p.actor, &app, b).await)
}

async fn app_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (p, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(program::submit(&state.db, state.now(), &p.actor, &app).await)
}

async fn app_review(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(program::review_view(&state.db, &app).await)
}

async fn app_launch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(program::launch_view(&state.db, &app).await)
}

async fn app_capabilities(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(Ok(program::capabilities_view(&app)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CapabilityRequest {
    #[serde(default)]
    justification: Option<String>,
}

async fn app_capability_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (p, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    let b: CapabilityRequest = or_respond!(body_as(&body));
    ok(program::request_capability(
        &state.db,
        state.now(),
        &p.actor,
        &app,
        &name,
        b.justification.as_deref(),
    )
    .await)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    overlap_seconds: Option<i64>,
}

async fn app_secret_rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (p, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    let b: RotateBody = or_respond!(body_as(&body));
    ok(program::rotate_secret(&state.db, state.now(), &p.actor, &app, b.overlap_seconds).await)
}

async fn app_test_accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(program::test_accounts_view(&state.db, &app).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestAccountsBody {
    emails: Vec<String>,
}

async fn app_test_accounts_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (p, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    let b: TestAccountsBody = or_respond!(body_as(&body));
    ok(program::set_test_accounts(&state.db, state.now(), &p.actor, &app, &b.emails).await)
}

async fn app_domain_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(program::domain_challenge(&state.db, &verifier(&state), &app).await)
}

async fn app_domain_verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (p, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(program::verify_domain(&state.db, &verifier(&state), state.now(), &p.actor, &app).await)
}

// ---------------------------------------------------------------------------------------------
// Operator endpoints
// ---------------------------------------------------------------------------------------------

async fn op_queue(State(state): State<AppState>, headers: HeaderMap) -> Response {
    or_respond!(operator(&state, &headers).await);
    ok(program::queue(&state.db).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerBody {
    name: String,
    website: String,
    #[serde(default)]
    regions: Vec<String>,
    support_contact: String,
    owner_email: String,
}

async fn op_partner_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let actor = or_respond!(operator(&state, &headers).await);
    let b: PartnerBody = or_respond!(body_as(&body));
    created(
        program::create_partner(
            &state.db,
            state.now(),
            &actor,
            program::PartnerSpec {
                name: b.name,
                website: b.website,
                regions: b.regions,
                support_contact: b.support_contact,
                owner_email: b.owner_email,
            },
        )
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    email: String,
    role: String,
}

async fn op_member_add(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(partner_id): Path<String>,
    body: Bytes,
) -> Response {
    let actor = or_respond!(operator(&state, &headers).await);
    let b: MemberBody = or_respond!(body_as(&body));
    ok(program::add_member(
        &state.db,
        state.now(),
        &actor,
        &partner_id,
        &b.email,
        &b.role,
    )
    .await)
}

async fn op_app(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<(String, crate::store::apps::App), Response> {
    let actor = operator(state, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    let app = program::any_app(&state.db, client_id)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((actor, app))
}

async fn op_app_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(op_app(&state, &headers, &client_id).await);
    let mut view = match program::app_view(&state.db, &app).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    if let Ok(launch) = program::launch_view(&state.db, &app).await {
        view["launch_checklist"] = launch;
    }
    reply(StatusCode::OK, view)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    state: String,
    #[serde(default)]
    note: Option<String>,
    /// The draft version the decision was made on (required; checked by `program::decide`).
    #[serde(default)]
    draft_version: Option<i64>,
}

async fn op_step_decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, step)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (actor, app) = or_respond!(op_app(&state, &headers, &client_id).await);
    let Some(step) = Step::parse(&step) else {
        return ProgramError::invalid(
            "invalid_request",
            format!(
                "{step:?} is not a review step (steps: {})",
                Step::ALL.map(Step::as_str).join(", ")
            ),
        )
        .into_response();
    };
    let b: DecisionBody = or_respond!(body_as(&body));
    let Some(decision) = StepState::parse(&b.state) else {
        return ProgramError::invalid(
            "invalid_request",
            "state must be approved, changes_requested, rejected or not_applicable",
        )
        .into_response();
    };
    ok(program::decide(
        &state.db,
        state.now(),
        &actor,
        &app,
        step,
        decision,
        b.note.as_deref(),
        b.draft_version,
    )
    .await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapabilityBody {
    state: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

async fn op_capability_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (actor, app) = or_respond!(op_app(&state, &headers, &client_id).await);
    let b: CapabilityBody = or_respond!(body_as(&body));
    ok(program::set_capability(
        &state.db,
        state.now(),
        &actor,
        &app,
        program::CapabilityChange {
            name: &name,
            state: &b.state,
            reason: b.reason.as_deref(),
            note: b.note.as_deref(),
        },
    )
    .await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessBody {
    state: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    withdrawn_scopes: Vec<String>,
    #[serde(default)]
    cause: Option<String>,
}

async fn op_access_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (actor, app) = or_respond!(op_app(&state, &headers, &client_id).await);
    let b: AccessBody = or_respond!(body_as(&body));
    ok(program::set_access(
        &state.db,
        state.now(),
        &actor,
        &app,
        program::AccessChange {
            state: &b.state,
            reason: b.reason.as_deref(),
            note: b.note.as_deref(),
            withdrawn: &b.withdrawn_scopes,
            cause: b.cause.as_deref(),
        },
    )
    .await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustBody {
    trust_level: String,
}

async fn op_trust_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (actor, app) = or_respond!(op_app(&state, &headers, &client_id).await);
    let b: TrustBody = or_respond!(body_as(&body));
    ok(program::set_trust_level(&state.db, state.now(), &actor, &app, &b.trust_level).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    client_id: Option<String>,
    partner_id: Option<String>,
    limit: Option<i64>,
}

async fn op_audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    or_respond!(operator(&state, &headers).await);
    let Ok(Query(q)) = query else {
        return ProgramError::invalid(
            "invalid_request",
            "query parameters are client_id, partner_id and limit (a number)",
        )
        .into_response();
    };
    ok(program::audit_view(
        &state.db,
        &audit::Filter {
            client_id: q.client_id,
            partner_id: q.partner_id,
            limit: q.limit,
        },
    )
    .await)
}
