//! The login page (`/login`): email and password, for an authorization request in progress.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::client_ip::ClientIp;
use super::views::LoginPage;
use super::{csrf, render, with_cookies};
use crate::error::AppError;
use crate::oauth::authorize::{load_request, proceed};
use crate::oauth::params::Params;
use crate::startup::AppState;
use crate::store::{login_attempts, sessions, users};

/// Failed attempts allowed per account, and per address, in [`WINDOW`] seconds.
const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
const MAX_FAILURES_PER_ADDRESS: i64 = 30;
const WINDOW: i64 = 15 * 60;

const WRONG_CREDENTIALS: &str = "The email or password is not correct.";
const TOO_MANY: &str = "Too many sign-in attempts. Wait a few minutes and try again.";

#[derive(Deserialize)]
pub struct LoginQuery {
    request_id: Option<String>,
}

fn missing_request() -> AppError {
    AppError::bad_request(
        "Start from the app",
        "To sign in, start from the app you want to use: it will bring you here.",
    )
}

pub async fn login_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let request_id = q.request_id.ok_or_else(missing_request)?;
    let (req, _, app) = load_request(&state, &request_id).await?;
    let (token, set) = csrf::token(&state, &headers);
    let page = LoginPage {
        app_name: &app.name,
        request_id: &request_id,
        csrf: &token,
        email: req.login_hint.as_deref().unwrap_or(""),
        error: None,
    };
    Ok(with_cookies(render(StatusCode::OK, &page), set))
}

pub async fn login_post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let form =
        Params::parse(&body).map_err(|e| AppError::bad_request("Cannot sign in", e.description))?;
    let request_id = form
        .get("request_id")
        .ok_or_else(missing_request)?
        .to_string();
    csrf::require(&state, &headers, form.get("csrf_token"))?;
    let (req, created_at, app) = load_request(&state, &request_id).await?;
    let email = form.get("email").unwrap_or("").trim().to_string();
    let password = form.get("password").unwrap_or("").to_string();
    let (token, _) = csrf::token(&state, &headers);
    let again = |status: StatusCode, error: &str| {
        render(
            status,
            &LoginPage {
                app_name: &app.name,
                request_id: &request_id,
                csrf: &token,
                email: &email,
                error: Some(error),
            },
        )
    };

    let now = state.now();
    let account_key = format!("account:{}", users::normalise_email(&email));
    let address_key = ip.map(|ip| format!("address:{ip}"));
    let (pool, writer) = (&state.db.pool, &state.db.writer);
    let mut over_limit = login_attempts::recent_failures(pool, &account_key, now - WINDOW).await?
        >= MAX_FAILURES_PER_ACCOUNT;
    if let Some(k) = &address_key {
        over_limit |= login_attempts::recent_failures(pool, k, now - WINDOW).await?
            >= MAX_FAILURES_PER_ADDRESS;
    }
    if over_limit {
        tracing::warn!(address = ?ip, "sign-in refused: too many failed attempts");
        return Ok(again(StatusCode::TOO_MANY_REQUESTS, TOO_MANY));
    }

    let user = if email.is_empty() || password.is_empty() {
        None
    } else {
        users::by_email(pool, &email).await?
    };
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers. An unknown email
    // is checked against a dummy hash so that it takes as long as a wrong password.
    let phc = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| crate::crypto::dummy_password_hash().to_string());
    let pw = password.clone();
    let matches = tokio::task::spawn_blocking(move || crate::crypto::verify_password(&pw, &phc))
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let user = match user {
        Some(u) if matches => u,
        _ => {
            let mut keys = vec![account_key.as_str()];
            if let Some(k) = &address_key {
                keys.push(k);
            }
            login_attempts::record_failure(writer, &keys, now).await?;
            return Ok(again(StatusCode::OK, WRONG_CREDENTIALS));
        }
    };
    login_attempts::clear(writer, &account_key).await?;

    // A new session id at every login (no fixation); the old session, if any, ends.
    if let Some(old) = super::cookies::get(&headers, state.cookies.session()) {
        sessions::delete(writer, old).await?;
    }
    let secret = sessions::create(writer, &user.id, now, state.settings.lifetimes.session).await?;
    let session = sessions::Session {
        user_id: user.id.clone(),
        auth_time: now,
        expires_at: now + state.settings.lifetimes.session,
    };
    tracing::info!(user_id = %user.id, client_id = %app.client_id, "signed in");
    let next = proceed(
        &state,
        &app,
        &req,
        Some(&request_id),
        created_at,
        Some(&session),
    )
    .await;
    let cookie = state.cookies.set(
        state.cookies.session(),
        &secret,
        Some(state.settings.lifetimes.session),
    );
    Ok(with_cookies(next, [cookie]))
}
