//! Browser sessions. The cookie carries a random secret; only its hash is stored.

use sqlx::FromRow;

use super::Db;
use crate::clock::Timestamp;
use crate::crypto::secret_hash;

#[derive(Debug, Clone, FromRow)]
pub struct Session {
    pub user_id: String,
    pub auth_time: Timestamp,
    pub expires_at: Timestamp,
}

/// Creates a session and returns the secret to put in the cookie.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn create(
    db: &Db,
    user_id: &str,
    now: Timestamp,
    lifetime: i64,
) -> Result<String, sqlx::Error> {
    let pool = &db.writer;
    let secret = crate::crypto::random_secret();
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, auth_time, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(secret_hash(&secret))
    .bind(user_id)
    .bind(now)
    .bind(now)
    .bind(now + lifetime)
    .execute(pool)
    .await?;
    Ok(secret)
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(db: &Db, secret: &str, now: Timestamp) -> Result<Option<Session>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as::<_, Session>(
        "SELECT user_id, auth_time, expires_at FROM sessions WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(secret_hash(secret))
    .bind(now)
    .fetch_optional(pool)
    .await
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn delete(db: &Db, secret: &str) -> Result<(), sqlx::Error> {
    let pool = &db.writer;
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(secret_hash(secret))
        .execute(pool)
        .await?;
    Ok(())
}
