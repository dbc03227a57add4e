//! The partner API's back-channel logout log (issue 14): every logout token onyx-id sent or is
//! still sending to the app's `backchannel_logout_uri`, with each attempt's time, URL, HTTP
//! status, latency and error, as the webhooks' deliveries are listed.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::ok;
use super::partner::own_app;
use super::responses::PartnerErrors;
use crate::partner::program::ProgramError;
use crate::startup::AppState;
use crate::webhooks::backchannel::{self, LogoutDeliveryView};

#[utoipa::path(
    get,
    path = "/api/v1/apps/{client_id}/backchannel-logout/deliveries",
    tag = "partner",
    operation_id = "app_backchannel_deliveries",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    responses((status = 200, description = "the app's latest back-channel logouts (at most 100), newest first, each with its attempts (time, URL, HTTP status, latency, error)", body = Vec<LogoutDeliveryView>), PartnerErrors)
)]
pub(super) async fn app_backchannel_deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(backchannel::deliveries(&state.db, &app.client_id)
        .await
        .map_err(ProgramError::from))
}
