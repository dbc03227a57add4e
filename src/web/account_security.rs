//! The security page (`/account/security`): change the password. The current password is
//! checked like a sign-in (the same Argon2 checks, counted under the same sign-in limits, so a
//! wrong one is a failure and a lockout applies); the new one meets the rule of `users create`.
//! The new hash is stored and the person's other sessions end (`Ending::PasswordChanged`) in
//! one transaction; this session stays.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::account::{Account, signed_in, to_login};
use super::client_ip::ClientIp;
use super::login::{AttemptKeys, with_retry_after};
use super::views::{AccountNav, AccountSecurityPage};
use super::{csrf, render, see_other, with_cookies};
use crate::error::AppError;
use crate::oauth::params::Params;
use crate::sessions::{self, Ending};
use crate::startup::AppState;
use crate::store::login_attempts;
use crate::store::users::{self, PasswordProblem};

const PAGE: &str = "/account/security";
const NO_CURRENT: &str = "Enter your current password.";
const WRONG_CURRENT: &str = "Your current password is not correct.";
const TOO_SHORT: &str = "Choose a new password of at least 8 characters.";
const TOO_LONG: &str = "The new password is too long: at most 1024 bytes.";
const MISMATCH: &str = "The two new passwords are not the same. Type them again.";
const TOO_MANY: &str =
    "Too many wrong passwords. Wait a few minutes and try again; your password was not changed.";
const BUSY: &str = "Too many password checks right now. Wait a moment and try again.";

/// The page, with a notice, or an error about one field.
fn page(
    state: &AppState,
    headers: &HeaderMap,
    account: &Account,
    status: StatusCode,
    notice: Option<String>,
    error: Option<(&'static str, &str)>,
) -> Response {
    let (token, set) = csrf::token(state, headers);
    let view = AccountSecurityPage {
        nav: AccountNav {
            current: "security",
            csrf: &token,
            email: &account.user.email,
        },
        notice,
        error_field: error.map_or("", |(field, _)| field),
        error: error.map(|(_, message)| message),
    };
    with_cookies(render(status, &view), set)
}

/// `GET /account/security`; `?changed=N` after a change (N other sessions ended).
pub async fn security_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let Some(account) = signed_in(&state, &headers).await? else {
        return Ok(to_login(PAGE));
    };
    let changed = super::account::count_in_query(query.as_deref(), "changed");
    let notice = changed.map(|n| match n {
        0 => "Your password is changed.".to_string(),
        1 => "Your password is changed. Your other session has ended.".to_string(),
        n => format!("Your password is changed. Your {n} other sessions have ended."),
    });
    Ok(page(
        &state,
        &headers,
        &account,
        StatusCode::OK,
        notice,
        None,
    ))
}

/// `POST /account/security/password` (`csrf_token`, `current_password`, `new_password`,
/// `confirm_password`).
pub async fn password_post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let form = Params::parse(&body)
        .map_err(|e| AppError::bad_request("Cannot change the password", e.description))?;
    csrf::require(&state, &headers, form.get("csrf_token"))?;
    let Some(account) = signed_in(&state, &headers).await? else {
        return Ok(to_login(PAGE));
    };
    let current = form.get("current_password").unwrap_or_default();
    let new = form.get("new_password").unwrap_or_default();
    let confirm = form.get("confirm_password").unwrap_or_default();
    let refuse = |status, field, message: &str| {
        page(
            &state,
            &headers,
            &account,
            status,
            None,
            Some((field, message)),
        )
    };
    let ok = StatusCode::OK;
    if current.is_empty() {
        return Ok(refuse(ok, "current_password", NO_CURRENT));
    }
    match users::password_rule(new) {
        Err(PasswordProblem::TooShort) => return Ok(refuse(ok, "new_password", TOO_SHORT)),
        Err(PasswordProblem::TooLong) => return Ok(refuse(ok, "new_password", TOO_LONG)),
        Ok(()) => {}
    }
    if new != confirm {
        return Ok(refuse(ok, "confirm_password", MISMATCH));
    }

    // The current password is checked as a sign-in is: counted first, under the same keys.
    let now = state.now();
    let keys = AttemptKeys::new(&account.user.email, ip);
    let Some(reservation) = keys.reserve(&state, now).await? else {
        tracing::warn!(user_id = %account.user.id, address = ?ip, "password change refused: too many failed attempts");
        let window = u64::try_from(state.settings.login_limits.window).unwrap_or(900);
        let res = refuse(StatusCode::TOO_MANY_REQUESTS, "current_password", TOO_MANY);
        return Ok(with_retry_after(res, window));
    };
    let phc = account.user.password_hash.expose().to_string();
    let checked = state
        .password_checks
        .verify(current.to_string(), phc)
        .await?;
    let Some(matches) = checked else {
        login_attempts::release(&state.db, &reservation).await?;
        let res = refuse(StatusCode::TOO_MANY_REQUESTS, "current_password", BUSY);
        return Ok(with_retry_after(res, 5));
    };
    if !matches {
        // The reservation stays: it is this failure.
        tracing::warn!(user_id = %account.user.id, address = ?ip, "password change refused: wrong current password");
        return Ok(refuse(ok, "current_password", WRONG_CURRENT));
    }
    login_attempts::release(&state.db, &reservation).await?;
    login_attempts::clear(&state.db, &keys.pair).await?;

    // Hashing costs what a check costs: it takes one of the same permits.
    let permit = state
        .password_checks
        .permits
        .clone()
        .acquire_owned()
        .await
        .map_err(AppError::internal)?;
    let new = new.to_string();
    let hash = tokio::task::spawn_blocking(move || {
        let hash = crate::crypto::hash_password(&new);
        drop(permit);
        hash
    })
    .await
    .map_err(AppError::internal)??;
    // The new password and the end of every other session commit together.
    let mut tx = state.db.begin().await?;
    users::set_password_in(&mut tx, &account.user.id, &hash).await?;
    let keep = Some(account.session.sid.as_str());
    let ended = sessions::end_others_in(
        &mut tx,
        &account.user.id,
        keep,
        Ending::PasswordChanged,
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %account.user.id, ended, "password changed");
    Ok(see_other(&format!("{PAGE}?changed={ended}")))
}
