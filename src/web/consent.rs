//! The consent page (`/consent`): what the app asks for, in the catalogue's plain words, with
//! Allow and Decline.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::views::{ConsentPage, ScopeGroup, ScopeView};
use super::{csrf, render, see_other, with_cookies};
use crate::error::AppError;
use crate::oauth::authorize::{error_redirect, finish_with_code, load_request};
use crate::oauth::error::ErrorCode;
use crate::oauth::params::Params;
use crate::oauth::redirect::with_query;
use crate::scopes::{Scope, catalogue};
use crate::startup::AppState;
use crate::store::{grants, users};

#[derive(Deserialize)]
pub struct ConsentQuery {
    request_id: Option<String>,
}

fn missing_request() -> AppError {
    AppError::bad_request(
        "Start from the app",
        "There is no access request to answer here. Start from the app you want to use.",
    )
}

fn view(scope: &Scope) -> ScopeView {
    let info = scope.info();
    ScopeView {
        name: info.name.clone(),
        label: info.label.clone(),
        description: info.description.clone(),
    }
}

/// The requested scopes grouped by category, in catalogue order.
fn groups(scopes: &[&Scope]) -> Vec<ScopeGroup> {
    let mut out: Vec<ScopeGroup> = Vec::new();
    for scope in scopes {
        let category = catalogue()
            .category_label(&scope.info().category)
            .to_string();
        match out.iter_mut().find(|g| g.category == category) {
            Some(g) => g.scopes.push(view(scope)),
            None => out.push(ScopeGroup {
                category,
                scopes: vec![view(scope)],
            }),
        }
    }
    out
}

pub async fn consent_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ConsentQuery>,
) -> Result<Response, AppError> {
    let request_id = q.request_id.ok_or_else(missing_request)?;
    let (req, _, app) = load_request(&state, &request_id).await?;
    let Some(session) = super::session::current(&state, &headers).await? else {
        return Ok(see_other(&with_query(
            "/login",
            &[("request_id", &request_id)],
        )));
    };
    let Some(user) = users::by_id(&state.db.pool, &session.user_id).await? else {
        return Ok(see_other(&with_query(
            "/login",
            &[("request_id", &request_id)],
        )));
    };
    let granted = grants::active(&state.db.pool, &user.id, &app.client_id)
        .await?
        .map(|(_, s)| s)
        .unwrap_or_default();
    let is_granted = |s: &Scope| granted.iter().any(|g| g == s.as_str());
    // prompt=consent shows everything again; otherwise only what is new.
    let (already, asked): (Vec<&Scope>, Vec<&Scope>) = req
        .scopes
        .iter()
        .partition(|s| !req.prompt.consent && is_granted(s));
    let app_host = url::Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| req.redirect_uri.clone());
    let (token, set) = csrf::token(&state, &headers);
    let page = ConsentPage {
        app_name: &app.name,
        app_host: &app_host,
        user_email: &user.email,
        request_id: &request_id,
        csrf: &token,
        groups: groups(&asked),
        already_granted: already.into_iter().map(view).collect(),
    };
    Ok(with_cookies(render(StatusCode::OK, &page), set))
}

pub async fn consent_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let form = Params::parse(&body)
        .map_err(|e| AppError::bad_request("Cannot record your answer", e.description))?;
    let request_id = form
        .get("request_id")
        .ok_or_else(missing_request)?
        .to_string();
    csrf::require(&state, &headers, form.get("csrf_token"))?;
    let (req, _, app) = load_request(&state, &request_id).await?;
    let Some(session) = super::session::current(&state, &headers).await? else {
        return Ok(see_other(&with_query(
            "/login",
            &[("request_id", &request_id)],
        )));
    };
    match form.get("decision") {
        Some("approve") => {
            let scopes: Vec<String> = req.scopes.iter().map(|s| s.as_str().to_string()).collect();
            let grant_id = grants::record_approval(
                &state.db.writer,
                &session.user_id,
                &app.client_id,
                &scopes,
                state.now(),
            )
            .await?;
            tracing::info!(user_id = %session.user_id, client_id = %app.client_id, scope = %req.scope_string(), "consent approved");
            Ok(finish_with_code(
                &state,
                &req,
                Some(&request_id),
                &session.user_id,
                &grant_id,
                session.auth_time,
            )
            .await)
        }
        Some("deny") => {
            if !crate::store::auth_requests::take(&state.db.writer, &request_id).await? {
                return Err(AppError::bad_request(
                    "Already answered",
                    "This request was already answered. Go back to the app and start again.",
                ));
            }
            tracing::info!(user_id = %session.user_id, client_id = %app.client_id, "consent declined");
            Ok(error_redirect(
                &state,
                &req.redirect_uri,
                req.state.as_deref(),
                ErrorCode::AccessDenied,
                "the user declined the request",
            ))
        }
        _ => Err(AppError::bad_request(
            "Cannot record your answer",
            "Choose Allow or Decline.",
        )),
    }
}
