//! Resource servers: APIs that accept Onyx access tokens for their audience and introspect them.

use super::Db;
use super::apps::SecretHash;
use crate::clock::Timestamp;

#[derive(Debug, Clone)]
pub struct ResourceServer {
    pub client_id: String,
    pub name: String,
    pub audience: String,
    /// `secret_hash()` of its client secret (prints redacted; compared in constant time).
    pub secret_hash: SecretHash,
}

/// Resource server ids carry this prefix, so a caller's id says which table it is in.
pub const ID_PREFIX: &str = "rs_";

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("a resource server with this audience already exists")]
    AudienceTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

#[tracing::instrument(level = "debug", skip(db, secret_hash))]
pub async fn create(
    db: &Db,
    name: &str,
    audience: &str,
    secret_hash: &str,
    now: Timestamp,
) -> Result<String, CreateError> {
    let pool = &db.writer;
    let client_id = format!("{ID_PREFIX}{}", crate::crypto::random_id());
    sqlx::query(
        "INSERT INTO resource_servers (client_id, name, audience, secret_hash, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&client_id)
    .bind(name)
    .bind(audience)
    .bind(secret_hash)
    .bind(now)
    .execute(pool)
    .await
    .map_err(|e| {
        if super::is_unique_violation(&e) {
            CreateError::AudienceTaken
        } else {
            e.into()
        }
    })?;
    Ok(client_id)
}

#[tracing::instrument(level = "debug", skip(db))]
pub async fn by_client_id(db: &Db, client_id: &str) -> Result<Option<ResourceServer>, sqlx::Error> {
    let pool = &db.pool;
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        "SELECT client_id, name, audience, secret_hash FROM resource_servers WHERE client_id = $1",
    )
    .bind(client_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(client_id, name, audience, hash)| ResourceServer {
        client_id,
        name,
        audience,
        secret_hash: SecretHash::stored(hash),
    }))
}

#[tracing::instrument(level = "debug", skip(db))]
pub async fn audience_exists(db: &Db, audience: &str) -> Result<bool, sqlx::Error> {
    let pool = &db.pool;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM resource_servers WHERE audience = $1")
        .bind(audience)
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}
