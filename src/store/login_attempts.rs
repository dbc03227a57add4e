//! Failed sign-in attempts, counted per account and per address in the database so that every
//! instance sharing it enforces the same limit.

use super::Pool;
use crate::clock::Timestamp;

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn recent_failures(pool: &Pool, key: &str, since: Timestamp) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM login_attempts WHERE attempt_key = $1 AND at > $2")
        .bind(key)
        .bind(since)
        .fetch_one(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn record_failure(pool: &Pool, keys: &[&str], now: Timestamp) -> Result<(), sqlx::Error> {
    for key in keys {
        sqlx::query("INSERT INTO login_attempts (attempt_key, at) VALUES ($1, $2)")
            .bind(*key)
            .bind(now)
            .execute(pool)
            .await?;
    }
    Ok(())
}

#[tracing::instrument(level = "debug", skip(pool))]
pub async fn clear(pool: &Pool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_attempts WHERE attempt_key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}
