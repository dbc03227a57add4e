//! The partner API's webhook routes (issue 13): an app's endpoints with their state, event
//! types and secret rotation, changing an endpoint's event types, each endpoint's deliveries and
//! attempts, a test event, enabling a disabled endpoint again, and retrying a failed delivery. The handlers extract, call one
//! service function of `crate::webhooks::endpoints`, and map its outcome.
//!
//! A partner app's endpoints are the ones its webhooks review step approved: adding one whose
//! URL the review has not approved is refused (apps made with `onyx-id apps create` are the
//! operator's, and take any URL, like the CLI's `apps webhooks add`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::partner::own_app;
use super::responses::{PartnerBodyErrors, PartnerErrors};
use super::{body_as, created, ok};
use crate::partner::program::ProgramError;
use crate::startup::AppState;
use crate::webhooks::endpoints::{self, EndpointView};
use crate::webhooks::{DeliveryView, NewEndpoint, RotatedSecret, TestSent, WebhookError};

/// The partner program's form of a webhook refusal.
fn program(e: WebhookError) -> ProgramError {
    match e {
        WebhookError::NotFound(what) => ProgramError::NotFound(what),
        WebhookError::Invalid { code, message } => ProgramError::invalid(code, message),
        WebhookError::Subscription(s) => {
            let code = WebhookError::Subscription(s.clone()).code();
            match s {
                crate::webhooks::SubscriptionError::Unknown(_) => {
                    ProgramError::invalid(code, s.to_string())
                }
                crate::webhooks::SubscriptionError::Gated { .. } => {
                    ProgramError::conflict(code, s.to_string()).with(
                        "capability",
                        crate::webhooks::events::ADVANCED_SUBSCRIPTIONS,
                    )
                }
            }
        }
        WebhookError::Conflict { code, message } => ProgramError::conflict(code, message),
        WebhookError::Internal(e) => ProgramError::Internal(e),
        WebhookError::Db(e) => ProgramError::Internal(e.into()),
    }
}

fn outcome<T>(r: Result<T, WebhookError>) -> Result<T, ProgramError> {
    r.map_err(program)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EndpointBody {
    /// The https URL events are POSTed to; for a partner app, one its webhooks review step
    /// approved.
    #[schema(min_length = 1, max_length = 500)]
    url: String,
    /// The event types it receives (every type that is not gated when not given).
    #[serde(default)]
    #[schema(max_items = 20)]
    events: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/apps/{client_id}/webhooks",
    tag = "partner",
    operation_id = "app_webhooks",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    responses((status = 200, description = "the app's webhook endpoints, with their state and event types (never their secrets)", body = Vec<EndpointView>), PartnerErrors)
)]
pub(super) async fn app_webhooks(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(outcome(
        endpoints::list(&state.db, &app.client_id, state.now()).await,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{client_id}/webhooks",
    tag = "partner",
    operation_id = "app_webhook_add",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    request_body(content = EndpointBody, content_type = "application/json"),
    responses((status = 201, description = "the new endpoint with its signing secret, shown this once", body = NewEndpoint), PartnerBodyErrors)
)]
pub(super) async fn app_webhook_add(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (caller, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    let b: EndpointBody = or_respond!(body_as(&headers, &body));
    created(outcome(
        endpoints::add(
            &state.db,
            by(&caller),
            &state.webhook_secrets,
            &state.settings.webhooks,
            &app,
            &b.url,
            &b.events,
            state.now(),
        )
        .await,
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/apps/{client_id}/webhooks/{endpoint_id}",
    tag = "partner",
    operation_id = "app_webhook_get",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id"), ("endpoint_id" = String, Path, description = "the endpoint's id")),
    responses((status = 200, description = "the endpoint", body = EndpointView), PartnerErrors)
)]
pub(super) async fn app_webhook_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, endpoint_id)): Path<(String, String)>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(outcome(
        endpoints::get(&state.db, &app.client_id, &endpoint_id, state.now()).await,
    ))
}

/// `PATCH /api/v1/apps/{client_id}/webhooks/{endpoint_id}`: the event types to receive.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EndpointEventsBody {
    /// The event types the endpoint receives from now on, at least one; a gated `permission.*`
    /// type only with advanced event subscriptions enabled. Events enqueued before the change
    /// are still delivered.
    #[schema(min_items = 1, max_items = 20)]
    events: Vec<String>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/apps/{client_id}/webhooks/{endpoint_id}",
    tag = "partner",
    operation_id = "app_webhook_update",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id"), ("endpoint_id" = String, Path, description = "the endpoint's id")),
    request_body(content = EndpointEventsBody, content_type = "application/json"),
    responses((status = 200, description = "the endpoint, with its new event types", body = EndpointView), PartnerBodyErrors)
)]
pub(super) async fn app_webhook_update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, endpoint_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (caller, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    let b: EndpointEventsBody = or_respond!(body_as(&headers, &body));
    ok(outcome(
        endpoints::set_events(
            &state.db,
            by(&caller),
            &app,
            &endpoint_id,
            &b.events,
            state.now(),
        )
        .await,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{client_id}/webhooks/{endpoint_id}/secret",
    tag = "partner",
    operation_id = "app_webhook_secret_rotate",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id"), ("endpoint_id" = String, Path, description = "the endpoint's id")),
    responses((status = 200, description = "the new signing secret (shown once); the previous one signs beside it until `previous_secret_valid_until`", body = RotatedSecret), PartnerErrors)
)]
pub(super) async fn app_webhook_secret_rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, endpoint_id)): Path<(String, String)>,
) -> Response {
    let (caller, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    let now = state.now();
    let sealer = &state.webhook_secrets;
    ok(outcome(
        endpoints::rotate_secret(
            &state.db,
            by(&caller),
            sealer,
            &app.client_id,
            &endpoint_id,
            now,
        )
        .await,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{client_id}/webhooks/{endpoint_id}/enable",
    tag = "partner",
    operation_id = "app_webhook_enable",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id"), ("endpoint_id" = String, Path, description = "the endpoint's id")),
    responses((status = 200, description = "the endpoint, enabled again (after a 410, a security failure or 5 days of failures)", body = EndpointView), PartnerErrors)
)]
pub(super) async fn app_webhook_enable(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, endpoint_id)): Path<(String, String)>,
) -> Response {
    let (caller, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(outcome(
        endpoints::enable(
            &state.db,
            by(&caller),
            &app.client_id,
            &endpoint_id,
            state.now(),
        )
        .await,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{client_id}/webhooks/{endpoint_id}/test",
    tag = "partner",
    operation_id = "app_webhook_test",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id"), ("endpoint_id" = String, Path, description = "the endpoint's id")),
    responses((status = 202, description = "a signed `webhook.test` event on its way; its delivery shows in the endpoint's deliveries", body = TestSent), PartnerErrors)
)]
pub(super) async fn app_webhook_test(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, endpoint_id)): Path<(String, String)>,
) -> Response {
    let (caller, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    super::answer(
        axum::http::StatusCode::ACCEPTED,
        outcome(
            endpoints::send_test(
                &state.db,
                by(&caller),
                &app.client_id,
                &endpoint_id,
                state.now(),
            )
            .await,
        ),
    )
}

#[utoipa::path(
    get,
    path = "/api/v1/apps/{client_id}/webhooks/{endpoint_id}/deliveries",
    tag = "partner",
    operation_id = "app_webhook_deliveries",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id"), ("endpoint_id" = String, Path, description = "the endpoint's id")),
    responses((status = 200, description = "the endpoint's latest deliveries, newest first, each with its attempts (time, HTTP status, latency, error)", body = Vec<DeliveryView>), PartnerErrors)
)]
pub(super) async fn app_webhook_deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, endpoint_id)): Path<(String, String)>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(outcome(
        endpoints::deliveries(&state.db, &app.client_id, Some(&endpoint_id)).await,
    ))
}

/// The answer to a retry: the delivery is due again.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RetryQueued {
    pub delivery_id: String,
    /// Always `pending`.
    pub state: crate::webhooks::DeliveryState,
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{client_id}/webhook-deliveries/{delivery_id}/retry",
    tag = "partner",
    operation_id = "app_webhook_retry",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id"), ("delivery_id" = String, Path, description = "the failed delivery's id")),
    responses((status = 202, description = "the failed delivery is due again, with the same `webhook-id`", body = RetryQueued), PartnerErrors)
)]
pub(super) async fn app_webhook_retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, delivery_id)): Path<(String, String)>,
) -> Response {
    let (caller, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    let done = endpoints::retry(
        &state.db,
        by(&caller),
        &app.client_id,
        &delivery_id,
        state.now(),
    )
    .await;
    super::answer(
        axum::http::StatusCode::ACCEPTED,
        outcome(done).map(|()| RetryQueued {
            delivery_id,
            state: crate::webhooks::DeliveryState::Pending,
        }),
    )
}

/// The partner's API key acting on its app's endpoints, for the change's audit entry.
fn by(caller: &super::PartnerCaller) -> Option<endpoints::Actor<'_>> {
    Some(endpoints::Actor {
        actor: &caller.actor,
        partner_id: Some(&caller.partner_id),
    })
}
