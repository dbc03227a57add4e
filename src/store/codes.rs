//! Authorization codes (RFC 6749 §4.1.2): stored hashed, single-use, short-lived.

use sqlx::FromRow;

use super::Db;
use crate::clock::Timestamp;
use crate::crypto::secret_hash;

#[derive(Debug, Clone, FromRow)]
pub struct AuthCode {
    pub client_id: String,
    pub user_id: String,
    pub grant_id: String,
    pub family_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub resource: Option<String>,
    pub auth_time: Timestamp,
    pub expires_at: Timestamp,
    /// The public id of the session the code was issued in (`None` for codes issued before
    /// sessions had one).
    pub sid: Option<String>,
    /// The DPoP key the code is bound to (`dpop_jkt`, RFC 9449 §10).
    pub dpop_jkt: Option<String>,
}

pub struct NewCode<'a> {
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub grant_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub code_challenge: &'a str,
    pub resource: Option<&'a str>,
    pub auth_time: Timestamp,
    /// The public id of the browser session that answered the request.
    pub sid: &'a str,
    pub dpop_jkt: Option<&'a str>,
}

/// Stores a new code and returns its text (given to the client once, never stored).
#[tracing::instrument(level = "debug", skip_all, fields(client_id = new.client_id))]
pub async fn create(
    db: &Db,
    new: NewCode<'_>,
    now: Timestamp,
    lifetime: i64,
) -> Result<String, sqlx::Error> {
    let pool = &db.writer;
    let code = crate::crypto::random_secret();
    sqlx::query(
        "INSERT INTO auth_codes (code_hash, client_id, user_id, grant_id, family_id, redirect_uri,
             scope, nonce, code_challenge, resource, auth_time, created_at, expires_at, sid, dpop_jkt)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(secret_hash(&code))
    .bind(new.client_id)
    .bind(new.user_id)
    .bind(new.grant_id)
    .bind(crate::crypto::random_id())
    .bind(new.redirect_uri)
    .bind(new.scope)
    .bind(new.nonce)
    .bind(new.code_challenge)
    .bind(new.resource)
    .bind(new.auth_time)
    .bind(now)
    .bind(now + lifetime)
    .bind(new.sid)
    .bind(new.dpop_jkt)
    .execute(pool)
    .await?;
    Ok(code)
}

/// What presenting a code found.
#[derive(Debug)]
pub enum Redemption {
    /// First use: the code is now spent.
    Fresh(Box<AuthCode>),
    /// The code was spent before: a replay. Carries the token family to revoke.
    Replayed {
        family_id: String,
    },
    Unknown,
}

/// Spends a code atomically: of two concurrent redemptions exactly one is `Fresh`.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn redeem(db: &Db, code: &str, now: Timestamp) -> Result<Redemption, sqlx::Error> {
    let pool = &db.writer;
    let hash = secret_hash(code);
    let fresh = sqlx::query_as::<_, AuthCode>(
        "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL
         RETURNING client_id, user_id, grant_id, family_id, redirect_uri, scope, nonce,
                   code_challenge, resource, auth_time, expires_at, sid, dpop_jkt",
    )
    .bind(now)
    .bind(&hash)
    .fetch_optional(pool)
    .await?;
    if let Some(code) = fresh {
        return Ok(Redemption::Fresh(Box::new(code)));
    }
    let family: Option<String> =
        sqlx::query_scalar("SELECT family_id FROM auth_codes WHERE code_hash = $1")
            .bind(&hash)
            .fetch_optional(pool)
            .await?;
    Ok(match family {
        Some(family_id) => Redemption::Replayed { family_id },
        None => Redemption::Unknown,
    })
}
