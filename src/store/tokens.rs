//! Issued access tokens. The JWT is also a row keyed by the hash of its text, so a lookup
//! proves it genuine and shows revocation at once, without verifying a signature.

use sqlx::FromRow;

use super::Pool;
use crate::clock::Timestamp;

#[derive(Debug, Clone, FromRow)]
pub struct AccessToken {
    pub jti: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub grant_id: Option<String>,
    pub family_id: Option<String>,
    pub scope: String,
    pub audience: String,
    pub auth_time: Option<Timestamp>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl AccessToken {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

#[tracing::instrument(skip_all, fields(jti = %token.jti))]
pub async fn insert(pool: &Pool, token_hash: &str, token: &AccessToken) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, jti, client_id, user_id, grant_id, family_id, scope,
             audience, auth_time, issued_at, expires_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL)",
    )
    .bind(token_hash)
    .bind(&token.jti)
    .bind(&token.client_id)
    .bind(token.user_id.as_deref())
    .bind(token.grant_id.as_deref())
    .bind(token.family_id.as_deref())
    .bind(&token.scope)
    .bind(&token.audience)
    .bind(token.auth_time)
    .bind(token.issued_at)
    .bind(token.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn by_hash(pool: &Pool, token_hash: &str) -> Result<Option<AccessToken>, sqlx::Error> {
    sqlx::query_as::<_, AccessToken>(
        "SELECT jti, client_id, user_id, grant_id, family_id, scope, audience, auth_time, issued_at,
                expires_at, revoked_at
         FROM access_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await
}

/// Revokes every token of a family (all descended from one authorization code).
#[tracing::instrument(skip(pool))]
pub async fn revoke_family(
    pool: &Pool,
    family_id: &str,
    now: Timestamp,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE access_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
