//! Back-Channel Logout 1.0 delivery: the worker of the `logout_deliveries` outbox.
//!
//! `sessions::end_in` (and `sessions::sign_out_of_app`) write one delivery per app to tell, in
//! the transaction that ends the session. This worker claims due deliveries with a lease, as the
//! webhook worker does, signs a `logout_token` for each (§2.4: `typ: logout+jwt`, `iss`, `aud`,
//! `iat`, `exp`, `jti`, `events`, `sid`, `sub`, never `nonce`) with the app's ID token
//! algorithm, and POSTs it form-encoded (§2.5) through the one guarded fetch, with the webhooks'
//! retry schedule and test-only allow flags. Each attempt is logged in `logout_attempts`.
//!
//! The token is signed at each attempt: a retry carries a fresh `iat` and `exp` (so a late
//! retry is not refused as expired) and the same `jti` (the delivery's, so a receiver that saw
//! an earlier attempt can drop the repeat).

use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;

use super::delivery::{Attempt, Deliverer, Outcome};
use crate::clock::{Clock, SystemClock};
use crate::keys::Algorithm;
use crate::startup::AppState;
use crate::store::logout::{self as store, After, AttemptRecord, Claimed};

/// The event a logout token carries (§2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// A logout token is valid this long from its signing: 2 minutes.
pub const TOKEN_LIFETIME: i64 = 120;
/// Deliveries claimed at once.
const BATCH: i64 = 32;

static ENQUEUED: Notify = Notify::const_new();

/// Wakes the back-channel workers of this process: call it after committing a transaction that
/// ended sessions. (A worker that misses it finds the deliveries at its next poll.)
pub fn wake() {
    ENQUEUED.notify_waiters();
}

/// Starts the worker.
pub fn spawn(state: AppState) {
    let deliverer = Deliverer::new(state.settings.webhooks.clone());
    tokio::spawn(run(state, deliverer));
}

async fn run(state: AppState, deliverer: Deliverer) {
    let poll = state.settings.webhooks.poll_interval;
    loop {
        let enqueued = ENQUEUED.notified();
        tokio::pin!(enqueued);
        enqueued.as_mut().enable();
        let claimed = match claim(&state).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "back-channel logout: claiming deliveries failed");
                Vec::new()
            }
        };
        let n = claimed.len();
        let mut tasks = tokio::task::JoinSet::new();
        for c in claimed {
            let (state, deliverer) = (state.clone(), deliverer.clone());
            tasks.spawn(async move {
                let (url, attempt) = deliver(&state, &deliverer, &c).await;
                if let Err(e) = record(&state, &c, &url, &attempt).await {
                    tracing::warn!(error = %e, delivery = %c.delivery_id, "back-channel logout: recording an attempt failed");
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        if n as i64 == BATCH {
            continue;
        }
        tokio::select! {
            _ = &mut enqueued => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

async fn claim(state: &AppState) -> Result<Vec<Claimed>, sqlx::Error> {
    let wall = SystemClock.now();
    let lease = i64::try_from(state.settings.webhooks.lease.as_secs()).unwrap_or(60);
    store::claim(
        &state.db,
        &crate::crypto::random_id(),
        state.now(),
        wall,
        wall + lease,
        BATCH,
    )
    .await
}

/// The logout token for a claimed delivery, signed now.
pub async fn logout_token(state: &AppState, c: &Claimed) -> anyhow::Result<String> {
    let now = state.now();
    let alg = Algorithm::parse(&c.id_token_alg).unwrap_or(Algorithm::ES256);
    let claims = json!({
        "iss": state.settings.issuer.as_str(),
        "aud": c.client_id,
        "sub": c.user_id,
        "sid": c.sid,
        "iat": now,
        "exp": now + TOKEN_LIFETIME,
        "jti": c.jti,
        "events": { EVENT: {} },
    });
    let key = state
        .keys
        .current()
        .await
        .signer(alg, now)
        .ok_or_else(|| anyhow::anyhow!("no active {} signing key", alg.as_str()))?;
    key.sign_jwt("logout+jwt", &claims)
}

/// One attempt: the URL it went to (empty when the app has none any more) and what happened.
async fn deliver(state: &AppState, deliverer: &Deliverer, c: &Claimed) -> (String, Attempt) {
    let Some(url) = c.url.clone() else {
        return (
            String::new(),
            failed_without_answer("the app no longer has a backchannel_logout_uri"),
        );
    };
    let token = match logout_token(state, c).await {
        Ok(t) => t,
        Err(e) => return (url, failed_without_answer(&e.to_string())),
    };
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", &token)
        .finish();
    let mut attempt = deliverer.post_form(&url, body).await;
    // §2.8: the RP answers 200 OK (204 is accepted too); any other answer is a failure.
    if attempt.outcome == Outcome::Delivered && !matches!(attempt.status, Some(200 | 204)) {
        attempt.outcome = Outcome::Failed { retry_after: None };
        attempt.error = Some(format!(
            "answered {}; a logout token is received with 200 (or 204)",
            attempt.status.unwrap_or_default()
        ));
    }
    (url, attempt)
}

fn failed_without_answer(why: &str) -> Attempt {
    Attempt {
        outcome: Outcome::Failed { retry_after: None },
        status: None,
        latency: Duration::ZERO,
        error: Some(why.to_string()),
    }
}

/// Records an attempt: delivered; retried on the webhooks' schedule; or failed for good (the
/// schedule is over, the endpoint answered 410, or it is not a public address).
async fn record(
    state: &AppState,
    c: &Claimed,
    url: &str,
    attempt: &Attempt,
) -> Result<(), sqlx::Error> {
    let now = state.now();
    let failures = c.failures + 1;
    let after = match &attempt.outcome {
        Outcome::Delivered => After::Delivered,
        Outcome::Failed { retry_after } if c.url.is_some() => {
            match usize::try_from(c.failures)
                .ok()
                .and_then(|i| state.settings.webhooks.retry_schedule.get(i))
            {
                Some(delay) => After::Retry {
                    at: now
                        + i64::try_from(retry_after.unwrap_or(*delay).as_secs())
                            .unwrap_or(i64::MAX / 2),
                    failures,
                },
                None => After::Failed { failures },
            }
        }
        _ => After::Failed { failures },
    };
    let record = AttemptRecord {
        at: now,
        url,
        status: attempt.status,
        latency_ms: i64::try_from(attempt.latency.as_millis()).unwrap_or(i64::MAX),
        outcome: attempt.outcome.as_str(),
        error: attempt.error.as_deref(),
    };
    if store::record_attempt(&state.db, c, &record, after).await? {
        match after {
            After::Delivered => {
                tracing::info!(client_id = %c.client_id, delivery = %c.delivery_id, "back-channel logout delivered")
            }
            _ => {
                tracing::warn!(client_id = %c.client_id, delivery = %c.delivery_id, error = ?attempt.error, "back-channel logout failed")
            }
        }
    }
    Ok(())
}

/// One attempt of a back-channel delivery, as the partner API shows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LogoutAttemptView {
    pub attempt: i64,
    /// When it was made (Unix seconds).
    pub at: i64,
    /// The `backchannel_logout_uri` it was posted to.
    pub url: String,
    /// The app's HTTP status, when it answered.
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// `delivered`, `failed`, `gone` or `security_failure`.
    pub outcome: String,
    pub error: Option<String>,
}

/// One back-channel logout of one session to the app, with its attempts.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LogoutDeliveryView {
    pub delivery_id: String,
    /// The person, as `sub` in the app's ID tokens.
    pub sub: String,
    /// The session that ended (`sid` in the app's ID tokens).
    pub sid: String,
    /// The logout token's `jti`, the same on every attempt.
    pub jti: String,
    /// What ended the session.
    pub ending: crate::sessions::Ending,
    pub state: super::DeliveryState,
    /// When it is attempted again, while pending (Unix seconds).
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
    pub attempts: Vec<LogoutAttemptView>,
}

/// Deliveries listed at most.
const MAX_LISTED: i64 = 100;

/// The app's latest back-channel deliveries, newest first, each with its attempts.
pub async fn deliveries(
    db: &crate::store::Db,
    client_id: &str,
) -> Result<Vec<LogoutDeliveryView>, sqlx::Error> {
    let (rows, attempts) = store::deliveries(db, client_id, MAX_LISTED).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let state = r.state.parse().unwrap_or(super::DeliveryState::Failed);
            LogoutDeliveryView {
                attempts: attempts
                    .iter()
                    .filter(|a| a.delivery_id == r.id)
                    .map(|a| LogoutAttemptView {
                        attempt: a.attempt,
                        at: a.at,
                        url: a.url.clone(),
                        status: a.status.and_then(|s| u16::try_from(s).ok()),
                        latency_ms: a.latency_ms,
                        outcome: a.outcome.clone(),
                        error: a.error.clone(),
                    })
                    .collect(),
                next_attempt_at: (state == super::DeliveryState::Pending)
                    .then_some(r.next_attempt_at),
                ending: crate::sessions::Ending::parse(&r.ending)
                    .unwrap_or(crate::sessions::Ending::SignedOut),
                delivery_id: r.id,
                sub: r.user_id,
                sid: r.sid,
                jti: r.jti,
                state,
                last_error: r.last_error,
                delivered_at: r.delivered_at,
                created_at: r.created_at,
            }
        })
        .collect())
}
