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

const WRONG_CREDENTIALS: &str = "The email or password is not correct.";
const TOO_MANY: &str = "Too many sign-in attempts. Wait a few minutes and try again.";
const BUSY: &str = "Too many sign-ins right now. Wait a moment and try again.";
/// Seconds a person is asked to wait when every password check is busy.
const BUSY_RETRY_AFTER: u64 = 5;

/// The password checks (argon2, 19 MiB of memory each): at most one per core runs at once, and a
/// sign-in waits a bounded time for its turn instead of queueing without limit.
pub struct PasswordChecks {
    /// One permit per check that may run at once.
    pub permits: std::sync::Arc<tokio::sync::Semaphore>,
    wait: std::time::Duration,
    checked: std::sync::atomic::AtomicU64,
}

impl PasswordChecks {
    pub fn new(limits: &crate::config::LoginLimits) -> Self {
        Self {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(limits.concurrent_checks)),
            wait: limits.check_wait,
            checked: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many passwords this instance has checked since it started.
    pub fn checked(&self) -> u64 {
        self.checked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Checks `password` against `phc` on the blocking pool, or `None` if no check became free
    /// in time.
    pub(super) async fn verify(
        &self,
        password: String,
        phc: String,
    ) -> Result<Option<bool>, AppError> {
        let acquire = self.permits.clone().acquire_owned();
        let Ok(Ok(permit)) = tokio::time::timeout(self.wait, acquire).await else {
            return Ok(None);
        };
        self.checked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The permit goes with the check: it is held until argon2 is done, even if the person
        // gives up waiting and the request is dropped.
        let matches = tokio::task::spawn_blocking(move || {
            let matches = crate::crypto::verify_password(&password, &phc);
            drop(permit);
            matches
        })
        .await
        .map_err(AppError::internal)?;
        Ok(Some(matches))
    }
}

pub(super) fn with_retry_after(mut res: Response, seconds: u64) -> Response {
    res.headers_mut()
        .insert(axum::http::header::RETRY_AFTER, seconds.into());
    res
}

/// The keys a password check is counted under (sign-in, and the current password of a password
/// change). The lockout the owner meets is per account *and* address, so an attacker's failures
/// elsewhere do not lock them out; the per-account ceiling stops guessing spread over many
/// addresses, the per-address limit one address trying many accounts.
pub(super) struct AttemptKeys {
    pub pair: String,
    account: String,
    address: Option<String>,
}

impl AttemptKeys {
    pub fn new(email: &str, ip: Option<std::net::IpAddr>) -> Self {
        let account = users::normalise_email(email);
        let network = ip.map(super::client_ip::network_key);
        Self {
            pair: format!(
                "account_address:{account}|{}",
                network.as_deref().unwrap_or("-")
            ),
            account: format!("account:{account}"),
            address: network.map(|n| format!("address:{n}")),
        }
    }

    /// Reserves one attempt under every key ([`login_attempts::reserve`]), or `None` when the
    /// limits are reached.
    pub async fn reserve(
        &self,
        state: &AppState,
        now: i64,
    ) -> Result<Option<login_attempts::Reservation>, sqlx::Error> {
        let limits = &state.settings.login_limits;
        let mut keys = vec![
            login_attempts::Limit {
                key: &self.pair,
                max: limits.per_account_and_address,
            },
            login_attempts::Limit {
                key: &self.account,
                max: limits.per_account,
            },
        ];
        if let Some(k) = &self.address {
            keys.push(login_attempts::Limit {
                key: k,
                max: limits.per_address,
            });
        }
        login_attempts::reserve(&state.db, &keys, now, now - limits.window).await
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    request_id: Option<String>,
    /// Where to go after signing in without an authorization request (an account page).
    next: Option<String>,
}

/// `next` if it is one of onyx-id's own account or console pages (never another site: no open
/// redirect).
pub fn safe_next(raw: &str) -> Option<&str> {
    let page = ["/account/", "/partner", "/review"].iter().any(|p| {
        raw.starts_with(p)
            && (p.ends_with('/') || matches!(raw.as_bytes().get(p.len()), None | Some(b'/')))
    });
    let ok = page
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
    let limits = &state.settings.login_limits;
    let keys = AttemptKeys::new(&email, ip);
    let db = &state.db;
    // The attempt counts before its password is checked: parallel guesses cannot all pass.
    let Some(reservation) = keys.reserve(&state, now).await? else {
        tracing::warn!(address = ?ip, "sign-in refused: too many failed attempts");
        state.metrics.login_locked_out();
        return Ok(with_retry_after(
            again(StatusCode::TOO_MANY_REQUESTS, TOO_MANY),
            u64::try_from(limits.window).unwrap_or(900),
        ));
    };

    let user = if email.is_empty() || password.is_empty() {
        None
    } else {
        users::by_email(db, &email).await?
    };
    // An unknown email is checked against a dummy hash so that it takes as long as a wrong
    // password.
    let phc = user
        .as_ref()
        .map(|u| u.password_hash.expose().to_string())
        .unwrap_or_else(|| crate::crypto::dummy_password_hash().to_string());
    let Some(matches) = state.password_checks.verify(password, phc).await? else {
        // Not checked, so not a failure.
        login_attempts::release(db, &reservation).await?;
        tracing::warn!(address = ?ip, "sign-in refused: every password check is busy");
        return Ok(with_retry_after(
            again(StatusCode::TOO_MANY_REQUESTS, BUSY),
            BUSY_RETRY_AFTER,
        ));
    };
    let user = match user {
        Some(u) if matches => u,
        // The reservation stays: it is this failure.
        _ => {
            state.metrics.login_failed();
            return Ok(again(StatusCode::OK, WRONG_CREDENTIALS));
        }
    };
    // A success is no failure; and the owner, signed in from here, starts afresh here.
    login_attempts::release(db, &reservation).await?;
    login_attempts::clear(db, &keys.pair).await?;

    // A new session secret at every sign-in (no fixation). The same person's session in this
    // browser goes on under it (same sid, fresh auth_time); anyone else's ends, and its apps are
    // told.
    let address = ip.map(|ip| ip.to_string());
    let browser = sessions::Browser {
        user_agent: headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        ip: address.as_deref(),
    };
    let lifetime = state.settings.lifetimes.session;
    let old = super::cookies::get(&headers, state.cookies.session());
    let renewed = match old {
        Some(old) => sessions::renew(db, old, &user.id, browser, now, lifetime).await?,
        None => None,
    };
    let sessions::Created { secret, session } = match renewed {
        Some(renewed) => renewed,
        None => {
            if let Some(old) = old
                && let Some(sid) = sessions::sid_of_secret(db, old).await?
            {
                crate::sessions::end(&state, &[sid], crate::sessions::Ending::Replaced).await?;
            }
            sessions::create(db, &user.id, browser, now, lifetime).await?
        }
    };
    let next = match &purpose {
        Purpose::Request {
            req,
            created_at,
            app,
            request_id,
        } => {
            tracing::info!(user_id = %user.id, client_id = %app.client_id, address = ?ip, "signed in");
            proceed(
                &state,
                app,
                req,
                Some(request_id),
                *created_at,
                Some(&session),
                ip,
            )
            .await
        }
        Purpose::Account { next } => {
            tracing::info!(user_id = %user.id, address = ?ip, "signed in to the account pages");
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
