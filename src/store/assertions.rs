//! `jti`s of client assertions already used (RFC 7523 §3, item 7).

use super::Db;
use crate::clock::Timestamp;

/// Records a `jti`; false if the client used it before.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn record_jti(
    db: &Db,
    client_id: &str,
    jti: &str,
    expires_at: Timestamp,
) -> Result<bool, sqlx::Error> {
    let pool = &db.writer;
    let done = sqlx::query(
        "INSERT INTO client_assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (client_id, jti) DO NOTHING",
    )
    .bind(client_id)
    .bind(jti)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
