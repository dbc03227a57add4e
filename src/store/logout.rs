//! Sign-out (issue 14): an app's sign-out metadata, the token families issued in each session,
//! and the back-channel logout outbox (`logout_deliveries` and its attempt log).

use sqlx::FromRow;

use super::{Db, Tx};
use crate::clock::Timestamp;
use crate::config::Backend;

/// An app's sign-out metadata (RP-Initiated Logout 1.0 §3.1, Back-Channel Logout 1.0 §2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogoutMetadata {
    /// Where the app may be sent back after sign-out: compared as registered strings.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where its logout tokens are posted.
    pub backchannel_logout_uri: Option<String>,
    /// Whether the app needs `sid` in its logout tokens (onyx-id always sends it).
    pub backchannel_logout_session_required: bool,
}

fn list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// The sign-out metadata of app `client_id` (`None`: no such app).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn metadata(db: &Db, client_id: &str) -> Result<Option<LogoutMetadata>, sqlx::Error> {
    let row: Option<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT post_logout_redirect_uris, backchannel_logout_uri,
                backchannel_logout_session_required
         FROM apps WHERE client_id = $1",
    )
    .bind(client_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(uris, uri, required)| LogoutMetadata {
        post_logout_redirect_uris: list(&uris),
        backchannel_logout_uri: uri,
        backchannel_logout_session_required: required != 0,
    }))
}

/// Sets app `client_id`'s sign-out metadata, in the caller's transaction.
pub async fn set_metadata(
    tx: &mut Tx<'_>,
    client_id: &str,
    m: &LogoutMetadata,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE apps SET post_logout_redirect_uris = $1, backchannel_logout_uri = $2,
             backchannel_logout_session_required = $3
         WHERE client_id = $4",
    )
    .bind(serde_json::to_string(&m.post_logout_redirect_uris).unwrap_or_else(|_| "[]".into()))
    .bind(m.backchannel_logout_uri.as_deref())
    .bind(i64::from(m.backchannel_logout_session_required))
    .bind(client_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A token family issued in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFamily<'a> {
    pub sid: &'a str,
    pub family_id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    /// Its scope holds offline_access: it outlives the session.
    pub offline: bool,
    /// The app received an ID token with the session's sid.
    pub id_token: bool,
}

/// Links a token family to the session it was issued in (at the code's redemption), in the
/// caller's transaction.
pub async fn link_family(
    tx: &mut Tx<'_>,
    f: &SessionFamily<'_>,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO session_families (sid, family_id, client_id, user_id, offline, id_token,
             created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(f.sid)
    .bind(f.family_id)
    .bind(f.client_id)
    .bind(f.user_id)
    .bind(i64::from(f.offline))
    .bind(i64::from(f.id_token))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The families issued in session `sid` (optionally only to app `client_id`) that do not
/// outlive it (no offline_access).
pub async fn session_only_families_in(
    tx: &mut Tx<'_>,
    sid: &str,
    client_id: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT family_id FROM session_families
         WHERE sid = $1 AND offline = 0 AND client_id = COALESCE($2, client_id)
         ORDER BY created_at, family_id",
    )
    .bind(sid)
    .bind(client_id)
    .fetch_all(&mut **tx)
    .await
}

/// Someone to tell that a session ended: an app that received an ID token in it and has a
/// back-channel logout URI.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ToTell {
    pub sid: String,
    pub client_id: String,
    pub user_id: String,
}

/// The apps to tell of session `sid`'s end (one row per app), optionally only `client_id`.
pub async fn to_tell_in(
    tx: &mut Tx<'_>,
    sid: &str,
    client_id: Option<&str>,
) -> Result<Vec<ToTell>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT f.sid, f.client_id, f.user_id FROM session_families f
         JOIN apps a ON a.client_id = f.client_id
         WHERE f.sid = $1 AND f.id_token = 1 AND a.backchannel_logout_uri IS NOT NULL
           AND f.client_id = COALESCE($2, f.client_id)
         ORDER BY f.client_id",
    )
    .bind(sid)
    .bind(client_id)
    .fetch_all(&mut **tx)
    .await
}

/// The sids of person `user_id`'s sessions in which app `client_id` got tokens.
pub async fn sids_of_app_in(
    tx: &mut Tx<'_>,
    user_id: &str,
    client_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT sid FROM session_families WHERE user_id = $1 AND client_id = $2
         ORDER BY sid",
    )
    .bind(user_id)
    .bind(client_id)
    .fetch_all(&mut **tx)
    .await
}

/// Forgets the links of session `sid` (it ended), optionally only app `client_id`'s.
pub async fn forget_in(
    tx: &mut Tx<'_>,
    sid: &str,
    client_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM session_families WHERE sid = $1 AND client_id = COALESCE($2, client_id)",
    )
    .bind(sid)
    .bind(client_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes one back-channel delivery into the outbox, due now, in the caller's transaction.
pub async fn enqueue_in(
    tx: &mut Tx<'_>,
    to: &ToTell,
    ending: &str,
    now: Timestamp,
) -> Result<String, sqlx::Error> {
    let id = format!("bcl_{}", crate::crypto::ordered_id());
    sqlx::query(
        "INSERT INTO logout_deliveries (id, client_id, user_id, sid, jti, ending, state,
             next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7, $7)",
    )
    .bind(&id)
    .bind(&to.client_id)
    .bind(&to.user_id)
    .bind(&to.sid)
    .bind(crate::crypto::random_id())
    .bind(ending)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// A delivery claimed by a worker, with what signing and posting it needs.
#[derive(Debug, Clone, FromRow)]
pub struct Claimed {
    pub delivery_id: String,
    pub client_id: String,
    pub user_id: String,
    pub sid: String,
    pub jti: String,
    /// The app's `backchannel_logout_uri` now (`None`: it was removed since).
    pub url: Option<String>,
    /// The app's ID token algorithm: its logout tokens are signed the same way.
    pub id_token_alg: String,
    pub attempts: i64,
    pub failures: i64,
    pub lease_owner: String,
}

/// Claims up to `limit` due deliveries for `owner` until `lease_until` (wall clock), as the
/// webhook worker does (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
pub async fn claim(
    db: &Db,
    owner: &str,
    due: Timestamp,
    wall: Timestamp,
    lease_until: Timestamp,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let lock = match db.backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE logout_deliveries SET lease_owner = $1, lease_until = $2
         WHERE id IN (SELECT id FROM logout_deliveries
                      WHERE state = 'pending' AND next_attempt_at <= $3
                        AND (lease_until IS NULL OR lease_until <= $4)
                      ORDER BY next_attempt_at LIMIT $5 {lock})"
    )))
    .bind(owner)
    .bind(lease_until)
    .bind(due)
    .bind(wall)
    .bind(limit)
    .execute(&db.writer)
    .await?;
    sqlx::query_as(
        "SELECT d.id AS delivery_id, d.client_id, d.user_id, d.sid, d.jti,
                a.backchannel_logout_uri AS url, a.id_token_alg, d.attempts, d.failures,
                d.lease_owner
         FROM logout_deliveries d JOIN apps a ON a.client_id = d.client_id
         WHERE d.lease_owner = $1 AND d.state = 'pending'
         ORDER BY d.next_attempt_at",
    )
    .bind(owner)
    .fetch_all(&db.writer)
    .await
}

/// One attempt as recorded.
#[derive(Debug, Clone)]
pub struct AttemptRecord<'a> {
    pub at: Timestamp,
    pub url: &'a str,
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub outcome: &'a str,
    pub error: Option<&'a str>,
}

pub use super::webhooks::After;

/// Records an attempt of a claimed delivery and its state after; false (nothing written) when
/// the claim no longer holds.
pub async fn record_attempt(
    db: &Db,
    claimed: &Claimed,
    attempt: &AttemptRecord<'_>,
    after: After,
) -> Result<bool, sqlx::Error> {
    let (state, next, failures, delivered_at) = match after {
        After::Delivered => ("delivered", None, claimed.failures, Some(attempt.at)),
        After::Retry { at, failures } => ("pending", Some(at), failures, None),
        After::Failed { failures } => ("failed", None, failures, None),
    };
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE logout_deliveries SET state = $3, attempts = attempts + 1, failures = $4,
             next_attempt_at = COALESCE($5, next_attempt_at), delivered_at = $6,
             last_error = $7, lease_owner = NULL, lease_until = NULL, updated_at = $8
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(&claimed.delivery_id)
    .bind(&claimed.lease_owner)
    .bind(state)
    .bind(failures)
    .bind(next)
    .bind(delivered_at)
    .bind(attempt.error)
    .bind(attempt.at)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO logout_attempts (delivery_id, attempt, at, url, status, latency_ms, outcome,
             error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&claimed.delivery_id)
    .bind(claimed.attempts + 1)
    .bind(attempt.at)
    .bind(attempt.url)
    .bind(attempt.status.map(i64::from))
    .bind(attempt.latency_ms)
    .bind(attempt.outcome)
    .bind(attempt.error)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A delivery as the partner API lists it.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub user_id: String,
    pub sid: String,
    pub jti: String,
    pub ending: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// An attempt as the partner API lists it.
#[derive(Debug, Clone, FromRow)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub attempt: i64,
    pub at: Timestamp,
    pub url: String,
    pub status: Option<i64>,
    pub latency_ms: i64,
    pub outcome: String,
    pub error: Option<String>,
}

/// The app's latest `limit` back-channel deliveries, newest first, and their attempts.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn deliveries(
    db: &Db,
    client_id: &str,
    limit: i64,
) -> Result<(Vec<DeliveryRow>, Vec<AttemptRow>), sqlx::Error> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(
        "SELECT id, user_id, sid, jti, ending, state, attempts, next_attempt_at, last_error,
                delivered_at, created_at
         FROM logout_deliveries WHERE client_id = $1
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(client_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    let attempts = sqlx::query_as(
        "SELECT t.delivery_id, t.attempt, t.at, t.url, t.status, t.latency_ms, t.outcome, t.error
         FROM logout_attempts t
         JOIN (SELECT id FROM logout_deliveries WHERE client_id = $1
               ORDER BY created_at DESC, id DESC LIMIT $2) d ON d.id = t.delivery_id
         ORDER BY t.delivery_id, t.attempt",
    )
    .bind(client_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows, attempts))
}
