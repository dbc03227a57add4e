//! Refresh tokens: opaque, stored hashed, rotated at every use (RFC 9700 §4.14).

use sqlx::{AnyConnection, FromRow};

use super::Db;
use crate::clock::Timestamp;

#[derive(Debug, Clone, FromRow)]
pub struct RefreshToken {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub grant_id: String,
    pub scope: String,
    pub audience: String,
    pub auth_time: Timestamp,
    pub issued_at: Timestamp,
    /// Idle expiry, never past `family_expires_at`.
    pub expires_at: Timestamp,
    /// Absolute expiry of the whole family.
    pub family_expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// The thumbprint of the DPoP key the token is bound to (a public app's, RFC 9449 §5).
    pub dpop_jkt: Option<String>,
}

const SELECT: &str = "family_id, client_id, user_id, grant_id, scope, audience, auth_time, issued_at, expires_at, family_expires_at, used_at, revoked_at, dpop_jkt";

pub async fn insert(
    conn: &mut AnyConnection,
    token_hash: &str,
    t: &RefreshToken,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, grant_id, scope, audience,
             auth_time, issued_at, expires_at, family_expires_at, used_at, revoked_at, dpop_jkt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, $12)",
    )
    .bind(token_hash)
    .bind(&t.family_id)
    .bind(&t.client_id)
    .bind(&t.user_id)
    .bind(&t.grant_id)
    .bind(&t.scope)
    .bind(&t.audience)
    .bind(t.auth_time)
    .bind(t.issued_at)
    .bind(t.expires_at)
    .bind(t.family_expires_at)
    .bind(t.dpop_jkt.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// What presenting a refresh token found.
#[derive(Debug)]
pub enum Redemption {
    /// Unspent and unrevoked: it is now spent (the caller issues its successor in the same
    /// transaction).
    Fresh(RefreshToken),
    /// Spent before: a reuse, the sign of a stolen token.
    Reused(RefreshToken),
    /// Revoked, or never issued.
    Invalid,
}

/// Spends a refresh token atomically: of two concurrent uses exactly one is `Fresh`.
pub async fn redeem(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: Timestamp,
) -> Result<Redemption, sqlx::Error> {
    let fresh = sqlx::query_as::<_, RefreshToken>(sqlx::AssertSqlSafe(format!(
        "UPDATE refresh_tokens SET used_at = $1
         WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL
         RETURNING {SELECT}"
    )))
    .bind(now)
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(t) = fresh {
        return Ok(Redemption::Fresh(t));
    }
    let found = by_hash_on(conn, token_hash).await?;
    Ok(match found {
        Some(t) if t.used_at.is_some() && t.revoked_at.is_none() => Redemption::Reused(t),
        _ => Redemption::Invalid,
    })
}

/// A refresh token presented by an app whose tokens do not rotate (the FAPI 2.0 profile):
/// `Fresh` while unrevoked, and left unspent; it may be presented again.
pub async fn present(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Redemption, sqlx::Error> {
    Ok(match by_hash_on(conn, token_hash).await? {
        Some(t) if t.used_at.is_none() && t.revoked_at.is_none() => Redemption::Fresh(t),
        Some(t) if t.used_at.is_some() && t.revoked_at.is_none() => Redemption::Reused(t),
        _ => Redemption::Invalid,
    })
}

/// Moves a kept (non-rotating) refresh token's idle expiry to `expires_at`.
pub async fn extend(
    conn: &mut AnyConnection,
    token_hash: &str,
    expires_at: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET expires_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
    )
    .bind(expires_at)
    .bind(token_hash)
    .execute(conn)
    .await?;
    Ok(())
}

async fn by_hash_on(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<RefreshToken>, sqlx::Error> {
    sqlx::query_as::<_, RefreshToken>(sqlx::AssertSqlSafe(format!(
        "SELECT {SELECT} FROM refresh_tokens WHERE token_hash = $1"
    )))
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

/// A refresh token with its app's access state and its grant's status.
#[derive(Debug, Clone, FromRow)]
pub struct RefreshStatus {
    #[sqlx(flatten)]
    pub token: RefreshToken,
    pub app_state: String,
    pub grant_status: Option<String>,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn status_by_hash(
    db: &Db,
    token_hash: &str,
) -> Result<Option<RefreshStatus>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as::<_, RefreshStatus>(
        "SELECT r.family_id, r.client_id, r.user_id, r.grant_id, r.scope, r.audience, r.auth_time,
                r.issued_at, r.expires_at, r.family_expires_at, r.used_at, r.revoked_at,
                r.dpop_jkt,
                CASE WHEN a.stage = 'draft' THEN 'draft' ELSE a.access_state END AS app_state,
                g.status AS grant_status
         FROM refresh_tokens r
         JOIN apps a ON a.client_id = r.client_id
         LEFT JOIN grants g ON g.id = r.grant_id
         WHERE r.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await
}

/// Revokes the refresh tokens of a family (its access tokens stay as they are). Returns how
/// many it revoked.
pub async fn revoke_family(
    conn: &mut sqlx::AnyConnection,
    family_id: &str,
    now: Timestamp,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
