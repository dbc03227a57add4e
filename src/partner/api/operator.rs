//! The operator endpoints (`/api/v1/operator…`), called with an operator API key.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::responses::{OperatorBodyErrors, OperatorErrors};
use super::{body_as, created, ok, operator, refuse};
use crate::error::AppError;
use crate::partner::access_change::{self, AccessChange};
use crate::partner::capabilities::{self, CapabilityChange};
use crate::partner::partners::{self, PartnerSpec, Role};
use crate::partner::program::{self, ProgramError};
use crate::partner::review::{self, StepDecision};
use crate::partner::{Step, StepState, apps, launch};
use crate::startup::AppState;
use crate::store::apps::App;
use crate::store::audit;

#[utoipa::path(
    get,
    path = "/api/v1/operator/reviews",
    tag = "operator",
    operation_id = "op_queue",
    security(("operatorKey" = [])),
    responses((status = 200, description = "the reviews waiting for an operator", body = crate::partner::review::ReviewQueue), OperatorErrors)
)]
pub(super) async fn op_queue(State(state): State<AppState>, headers: HeaderMap) -> Response {
    or_respond!(operator(&state, &headers).await);
    ok(review::queue(&state.db).await)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PartnerBody {
    #[schema(
        pattern = r"^(?=[\s\S]*\S)[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$",
        min_length = 1,
        max_length = 100
    )]
    name: String,
    /// An https URL.
    #[schema(pattern = "^https://", max_length = 500)]
    website: String,
    /// The markets the partner serves (ISO 3166-1 alpha-2 codes such as `GB`).
    #[serde(default)]
    regions: Vec<String>,
    /// An email address or an https URL.
    #[schema(
        pattern = r"^(?=[\s\S]*\S)[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$",
        min_length = 1,
        max_length = 200
    )]
    support_contact: String,
    owner_email: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/operator/partners",
    tag = "operator",
    operation_id = "op_partner_create",
    security(("operatorKey" = [])),
    request_body(content = PartnerBody, content_type = "application/json"),
    responses((status = 201, description = "the partner and its owner", body = crate::partner::partners::PartnerCreated), OperatorBodyErrors)
)]
pub(super) async fn op_partner_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let actor = or_respond!(operator(&state, &headers).await);
    let b: PartnerBody = or_respond!(body_as(&headers, &body));
    created(
        partners::create_partner(
            &state.db,
            state.now(),
            &actor,
            PartnerSpec {
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    email: String,
    #[schema(value_type = crate::partner::partners::Role)]
    role: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/operator/partners/{partner_id}/members",
    tag = "operator",
    operation_id = "op_member_add",
    security(("operatorKey" = [])),
    params(("partner_id" = String, Path, description = "the partner's id")),
    request_body(content = MemberBody, content_type = "application/json"),
    responses((status = 200, description = "the member with its role", body = crate::partner::partners::MemberSet), OperatorBodyErrors)
)]
pub(super) async fn op_member_add(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(partner_id): Path<String>,
    body: Bytes,
) -> Response {
    let actor = or_respond!(operator(&state, &headers).await);
    let b: MemberBody = or_respond!(body_as(&headers, &body));
    let role = or_respond!(Role::parse(&b.role));
    ok(partners::add_member(&state.db, state.now(), &actor, &partner_id, &b.email, role).await)
}

async fn op_app(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<(String, App), AppError> {
    let actor = operator(state, headers).await.map_err(AppError::from)?;
    let app = apps::any_app(&state.db, client_id)
        .await
        .map_err(AppError::from)?;
    Ok((actor, app))
}

#[utoipa::path(
    get,
    path = "/api/v1/operator/apps/{client_id}",
    tag = "operator",
    operation_id = "op_app_get",
    security(("operatorKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    responses((status = 200, description = "any app, with its launch checklist once submitted", body = crate::partner::apps::AppView), OperatorErrors)
)]
pub(super) async fn op_app_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(op_app(&state, &headers, &client_id).await);
    let mut view = or_respond!(apps::app_view(&state.db, &app).await);
    // Only once the app was submitted: before, there is no checklist to show.
    view.launch_checklist = launch::launch_view(&state.db, &app).await.ok();
    ok(Ok(view))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[schema(value_type = crate::partner::StepState)]
    state: String,
    /// Required for `changes_requested` and `rejected`: what must change.
    #[serde(default)]
    #[schema(
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$",
        max_length = 2000
    )]
    note: Option<String>,
    /// The draft version the decision was made on (required; checked by `review::decide`).
    #[serde(default)]
    #[schema(minimum = 1)]
    draft_version: Option<i64>,
}

#[utoipa::path(
    put,
    path = "/api/v1/operator/apps/{client_id}/steps/{step}",
    tag = "operator",
    operation_id = "op_step_decide",
    security(("operatorKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id"), ("step" = crate::partner::Step, Path, description = "the review step")),
    request_body(content = DecisionBody, content_type = "application/json"),
    responses((status = 200, description = "the review after the decision", body = crate::partner::review::DecisionOutcome), OperatorBodyErrors)
)]
pub(super) async fn op_step_decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, step)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (actor, app) = or_respond!(op_app(&state, &headers, &client_id).await);
    let Some(step) = Step::parse(&step) else {
        return refuse(ProgramError::invalid(
            "invalid_request",
            format!(
                "{step:?} is not a review step (steps: {})",
                Step::all().map(Step::as_str).collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let b: DecisionBody = or_respond!(body_as(&headers, &body));
    let Some(decision) = StepState::parse(&b.state) else {
        return refuse(ProgramError::invalid(
            "invalid_request",
            "state must be approved, changes_requested, rejected or not_applicable",
        ));
    };
    ok(review::decide(
        &state.db,
        state.now(),
        &actor,
        &app,
        StepDecision {
            step,
            state: decision,
            note: b.note,
            draft_version: b.draft_version,
        },
    )
    .await)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CapabilityBody {
    #[schema(value_type = crate::partner::access::CapabilityState)]
    state: String,
    /// A machine-readable reason code (`market_not_launched`, …).
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9_]*$", max_length = 64)]
    reason: Option<String>,
    #[serde(default)]
    #[schema(
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$",
        max_length = 2000
    )]
    note: Option<String>,
}

#[utoipa::path(
    put,
    path = "/api/v1/operator/apps/{client_id}/capabilities/{name}",
    tag = "operator",
    operation_id = "op_capability_set",
    security(("operatorKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id"), ("name" = super::docs::CapabilityName, Path, description = "the capability")),
    request_body(content = CapabilityBody, content_type = "application/json"),
    responses((status = 200, description = "the capability's new state", body = crate::partner::capabilities::CapabilityView), OperatorBodyErrors)
)]
pub(super) async fn op_capability_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (actor, app) = or_respond!(op_app(&state, &headers, &client_id).await);
    let b: CapabilityBody = or_respond!(body_as(&headers, &body));
    let change = or_respond!(CapabilityChange::parse(&name, &b.state, b.reason, b.note));
    ok(capabilities::set_capability(&state.db, state.now(), &actor, &app, change).await)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AccessBody {
    #[schema(value_type = crate::partner::access::AccessState)]
    state: String,
    #[serde(default)]
    #[schema(value_type = Option<crate::partner::access::AccessReason>)]
    reason: Option<String>,
    #[serde(default)]
    #[schema(
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$",
        max_length = 2000
    )]
    note: Option<String>,
    /// The scopes a limit withdraws (at least one, of the app's approved scopes; only for
    /// `limited`).
    #[serde(default)]
    withdrawn_scopes: Vec<String>,
    /// For `active`: the reason of the one cause to clear.
    #[serde(default)]
    #[schema(value_type = Option<crate::partner::access::AccessReason>)]
    cause: Option<String>,
}

#[utoipa::path(
    put,
    path = "/api/v1/operator/apps/{client_id}/access",
    tag = "operator",
    operation_id = "op_access_set",
    security(("operatorKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    request_body(content = AccessBody, content_type = "application/json"),
    responses((status = 200, description = "the app's new access state", body = crate::partner::access_change::AccessSet), OperatorBodyErrors)
)]
pub(super) async fn op_access_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (actor, app) = or_respond!(op_app(&state, &headers, &client_id).await);
    let b: AccessBody = or_respond!(body_as(&headers, &body));
    let change = or_respond!(AccessChange::parse(
        &b.state,
        b.reason.as_deref(),
        b.note,
        b.withdrawn_scopes,
        b.cause.as_deref(),
    ));
    ok(access_change::set_access(&state.db, state.now(), &actor, &app, change).await)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TrustBody {
    #[schema(value_type = super::docs::TrustLevelDoc)]
    trust_level: String,
}

#[utoipa::path(
    put,
    path = "/api/v1/operator/apps/{client_id}/trust-level",
    tag = "operator",
    operation_id = "op_trust_set",
    security(("operatorKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    request_body(content = TrustBody, content_type = "application/json"),
    responses((status = 200, description = "the app's new trust level", body = crate::partner::apps::TrustLevelSet), OperatorBodyErrors)
)]
pub(super) async fn op_trust_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (actor, app) = or_respond!(op_app(&state, &headers, &client_id).await);
    let b: TrustBody = or_respond!(body_as(&headers, &body));
    let level = or_respond!(apps::parse_trust_level(&b.trust_level));
    ok(apps::set_trust_level(&state.db, state.now(), &actor, &app, level).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    client_id: Option<String>,
    partner_id: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/operator/audit",
    tag = "operator",
    operation_id = "op_audit",
    security(("operatorKey" = [])),
    params(("client_id" = Option<String>, Query, description = "only entries about this app"), ("partner_id" = Option<String>, Query, description = "only entries about this partner"), ("limit" = Option<i64>, Query, description = "at most this many entries")),
    responses((status = 200, description = "audit entries, newest first", body = crate::partner::program::AuditLog), OperatorErrors)
)]
pub(super) async fn op_audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    or_respond!(operator(&state, &headers).await);
    let Ok(Query(q)) = query else {
        return refuse(ProgramError::invalid(
            "invalid_request",
            "query parameters are client_id, partner_id and limit (a number)",
        ));
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
