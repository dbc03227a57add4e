//! Authorization requests waiting for the user (login, consent). The validated request is kept
//! server-side under a random id, so the pages carry only that id, never editable parameters.

use super::Pool;
use crate::clock::Timestamp;

#[tracing::instrument(level = "debug", skip(pool, params))]
pub async fn create(
    pool: &Pool,
    client_id: &str,
    params: &str,
    now: Timestamp,
    lifetime: i64,
) -> Result<String, sqlx::Error> {
    let id = crate::crypto::random_secret();
    sqlx::query(
        "INSERT INTO auth_requests (id, client_id, params, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(client_id)
    .bind(params)
    .bind(now)
    .bind(now + lifetime)
    .execute(pool)
    .await?;
    Ok(id)
}

/// The stored parameters and creation time of a live request.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn find(
    pool: &Pool,
    id: &str,
    now: Timestamp,
) -> Result<Option<(String, Timestamp)>, sqlx::Error> {
    sqlx::query_as::<_, (String, Timestamp)>(
        "SELECT params, created_at FROM auth_requests WHERE id = $1 AND expires_at > $2",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(pool)
    .await
}

/// Removes a finished request; true if it was still there (so it finishes only once).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn take(pool: &Pool, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM auth_requests WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
