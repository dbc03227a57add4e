//! `jti`s of DPoP proofs already accepted (RFC 9449 §11.1), hashed with their key's thumbprint.

use super::Db;
use crate::clock::Timestamp;

/// Records a proof's replay key; false if it was recorded before (on any instance: the primary
/// key decides, in the database).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn record_jti(
    db: &Db,
    replay_key: &str,
    expires_at: Timestamp,
) -> Result<bool, sqlx::Error> {
    let pool = &db.writer;
    let done = sqlx::query(
        "INSERT INTO dpop_proof_jtis (jti_hash, expires_at) VALUES ($1, $2)
         ON CONFLICT (jti_hash) DO NOTHING",
    )
    .bind(replay_key)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
