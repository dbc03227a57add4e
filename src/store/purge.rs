//! Removes what has expired: codes, tokens, sessions, waiting and pushed requests, old login
//! failures, and assertion and DPoP proof ids. Runs in small batches from a background task, so it never holds the database
//! for long and never blocks a request.

use std::time::Duration;

use super::Db;
use crate::clock::{SharedClock, Timestamp};

const BATCH: i64 = 1000;

/// Each purge: the table, its key column, and the condition that makes a row removable ($1 is
/// the time now).
const PURGES: &[(&str, &str, &str)] = &[
    // Codes stay an hour past expiry so that a late replay is still recognised as one.
    ("auth_codes", "code_hash", "expires_at < $1 - 3600"),
    ("access_tokens", "jti", "expires_at < $1"),
    // Spent refresh tokens are kept until their family's absolute expiry: reuse detection.
    ("refresh_tokens", "token_hash", "family_expires_at < $1"),
    ("auth_requests", "id", "expires_at < $1"),
    ("pushed_requests", "uri_hash", "expires_at < $1"),
    ("sessions", "id_hash", "expires_at < $1"),
    // A DPoP proof's jti is remembered while its iat is inside the window.
    ("dpop_proof_jtis", "jti_hash", "expires_at < $1"),
    // A session gone (expired and purged) no longer needs to know its token families.
    (
        "session_families",
        "family_id",
        "created_at <= $1 AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.sid = session_families.sid)",
    ),
];

/// One pass over every table; returns how many rows it removed.
pub async fn purge_expired(db: &Db, now: Timestamp) -> Result<u64, sqlx::Error> {
    let pool = &db.writer;
    let mut removed = 0;
    for (table, key, condition) in PURGES {
        loop {
            let sql = format!(
                "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {condition} LIMIT {BATCH})"
            );
            let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .execute(pool)
                .await?;
            removed += done.rows_affected();
            if done.rows_affected() < BATCH as u64 {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    let jtis = sqlx::query("DELETE FROM client_assertion_jtis WHERE expires_at < $1")
        .bind(now)
        .execute(pool)
        .await?;
    let attempts = sqlx::query("DELETE FROM login_attempts WHERE at < $1")
        .bind(now - 24 * 3600)
        .execute(pool)
        .await?;
    Ok(removed + jtis.rows_affected() + attempts.rows_affected())
}

/// Runs [`purge_expired`] every `every`, for as long as the server runs.
pub fn spawn(db: Db, clock: SharedClock, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match super::grants::record_expiries(&db, clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "recorded expired permissions"),
                Err(e) => {
                    tracing::warn!(error = %e, "recording expired permissions failed; will retry")
                }
            }
            match purge_expired(&db, clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "purged expired rows"),
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed; will retry"),
            }
        }
    });
}
