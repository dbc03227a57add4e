//! "Sign out of this app" on Connected apps (`POST /account/apps/sign-out`, fields
//! `csrf_token` and `client_id`): the app is told by back-channel logout for each of the
//! person's sessions in which it got an ID token, and its tokens of this person that are not
//! offline_access are revoked. The grant stays ("Remove access" is the other action).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::{csrf, see_other};
use crate::error::AppError;
use crate::oauth::params::Params;
use crate::startup::AppState;
use crate::store::grants;

const PAGE: &str = "/account/apps";

pub async fn sign_out_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let form = Params::parse(&body)
        .map_err(|e| AppError::bad_request("Cannot sign out of this app", e.description))?;
    let Some(session) = super::session::current(&state, &headers).await? else {
        return Ok(see_other(&format!("/login?next={PAGE}")));
    };
    csrf::require(&state, &headers, form.get("csrf_token"))?;
    let client_id = form.get("client_id").unwrap_or_default();
    // Only the signed-in person's own apps can be found here.
    if grants::current(&state.db, &session.user_id, client_id)
        .await?
        .is_none()
    {
        return Err(AppError::not_found(
            "No such connected app",
            "This app is not connected to your account (any more).",
        ));
    }
    crate::sessions::sign_out_of_app(&state, &session.user_id, client_id).await?;
    Ok(see_other(PAGE))
}
