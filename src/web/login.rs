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
    /// Where to go after signing in without an authorization request (an account page).
    next: Option<String>,
}

/// `next` if it is one of onyx-id's own account pages (never another site: no open redirect).
pub fn safe_next(raw: &str) -> Option<&str> {
    let ok = raw.starts_with("/account/")
        && raw.len() <= 200
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_".contains(&b))
        && !raw.contains("//");
    ok.then_some(raw)
}

/// What the sign-in is for.
enum Purpose {
    Request {
        req: Box<crate::oauth::authorize::AuthorizationRequest>,
        created_at: i64,
        app: Box<crate::store::apps::App>,
        request_id: String,
    },
    Account {
        next: String,
    },
}

async fn purpose(
    state: &AppState,
    request_id: Option<&str>,
    next: Option<&str>,
) -> Result<Purpose, AppError> {
    if let Some(id) = request_id {
        let (req, created_at, app) = load_request(state, id).await?;
        return Ok(Purpose::Request {
            req: Box::new(req),
            created_at,
            app: Box::new(app),
            request_id: id.to_string(),
        });
    }
    match next.and_then(safe_next) {
        Some(next) => Ok(Purpose::Account {
            next: next.to_string(),
        }),
        None => Err(missing_request()),
    }
}

impl Purpose {
    fn page<'a>(&'a self, csrf: &'a str, email: &'a str, error: Option<&'a str>) -> LoginPage<'a> {
        match self {
            Self::Request {
                app, request_id, ..
            } => LoginPage {
                app_name: Some(&app.name),
                request_id: Some(request_id),
                next: None,
                csrf,
                email,
                error,
            },
            Self::Account { next } => LoginPage {
                app_name: None,
                request_id: None,
                next: Some(next),
                csrf,
                email,
                error,
            },
        }
    }
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
    let purpose = purpose(&state, q.request_id.as_deref(), q.next.as_deref()).await?;
    let hint = match &purpose {
        Purpose::Request { req, .. } => req.login_hint.clone().unwrap_or_default(),
        Purpose::Account { .. } => String::new(),
    };
    let (token, set) = csrf::token(&state, &headers);
    let page = purpose.page(&token, &hint, None);
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
    csrf::require(&state, &headers, form.get("csrf_token"))?;
    let purpose = purpose(&state, form.get("request_id"), form.get("next")).await?;
    let email = form.get("email").unwrap_or("").trim().to_string();
    let password = form.get("password").unwrap_or("").to_string();
    let (token, _) = csrf::token(&state, &headers);
    let again = |status: StatusCode, error: &str| {
        render(status, &purpose.page(&token, &email, Some(error)))
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
    let next = match &purpose {
        Purpose::Request {
            req,
            created_at,
            app,
            request_id,
        } => {
            tracing::info!(user_id = %user.id, client_id = %app.client_id, "signed in");
            proceed(
                &state,
                app,
                req,
                Some(request_id),
                *created_at,
                Some(&session),
            )
            .await
        }
        Purpose::Account { next } => {
            tracing::info!(user_id = %user.id, "signed in to the account pages");
            super::see_other(next)
        }
    };
    let cookie = state.cookies.set(
        state.cookies.session(),
        &secret,
        Some(state.settings.lifetimes.session),
    );
    Ok(with_cookies(next, [cookie]))
}
