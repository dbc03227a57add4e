//! Signing keys, their generation counter and the instance secrets (migration 0018). Values
//! are stored sealed (`crypto::Sealer`); sealing and opening them is `keys`' business, not this
//! module's.

use sqlx::FromRow;

use super::fast::{self, HotRow};
use super::rows::{Columns, RowSource};
use super::{Db, Tx};
use crate::clock::Timestamp;

/// A `signing_keys` row: its private key as sealed.
#[derive(Debug, Clone, FromRow)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub sealed_pem: String,
    pub created_at: Timestamp,
    pub activates_at: Timestamp,
    pub retires_at: Option<Timestamp>,
}

const KEY_COLUMNS: &str = "kid, alg, sealed_pem, created_at, activates_at, retires_at";

/// The counter's one row, read on every signing and JWKS request.
struct GenerationRow(i64);

impl HotRow for GenerationRow {
    fn read_at<R: RowSource>(r: &R, offset: usize) -> Result<Self, R::Error> {
        Ok(Self(Columns::at(r, offset).get("generation")?))
    }
}

const GENERATION: &str = "SELECT generation FROM key_generation WHERE id = 1";

/// The key generation: bumped by every change of the signing keys. A primary-key read of one
/// row, on the fast path of the backend (direct on SQLite, pipelined on PostgreSQL), since
/// every request that signs or publishes keys makes it.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn generation(db: &Db) -> Result<i64, sqlx::Error> {
    fn first(rows: Vec<GenerationRow>) -> Option<i64> {
        rows.first().map(|r| r.0)
    }
    fast::rows_then(db, GENERATION, None, &[], first)
        .await?
        .ok_or_else(|| sqlx::Error::Protocol("the key_generation row is missing".into()))
}

/// Every signing key, oldest first.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn all(db: &Db) -> Result<Vec<StoredKey>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY activates_at, kid"
    )))
    .fetch_all(&db.pool)
    .await
}

/// `all`, in the caller's transaction (after [`bump_generation`], so it sees the keys as the
/// last change left them).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn all_in(tx: &mut Tx<'_>) -> Result<Vec<StoredKey>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY activates_at, kid"
    )))
    .fetch_all(&mut **tx)
    .await
}

/// Whether any signing key is stored (read outside a transaction, before taking the lock).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn any(db: &Db) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys")
        .fetch_one(&db.pool)
        .await?;
    Ok(n > 0)
}

/// Bumps the key generation. Run it first in every transaction that changes the signing keys:
/// the row's write lock makes such transactions (two instances importing at the first start,
/// two rotations) run one after the other, and every instance sees the change at its next
/// generation check.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn bump_generation(tx: &mut Tx<'_>) -> Result<(), sqlx::Error> {
    let done = sqlx::query("UPDATE key_generation SET generation = generation + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() != 1 {
        return Err(sqlx::Error::Protocol(
            "the key_generation row is missing".into(),
        ));
    }
    Ok(())
}

#[tracing::instrument(level = "debug", skip_all, fields(kid = key.kid))]
pub async fn insert(tx: &mut Tx<'_>, key: &StoredKey) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, sealed_pem, created_at, activates_at, retires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.kid)
    .bind(&key.alg)
    .bind(&key.sealed_pem)
    .bind(key.created_at)
    .bind(key.activates_at)
    .bind(key.retires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[tracing::instrument(level = "debug", skip(tx))]
pub async fn set_retires_at(
    tx: &mut Tx<'_>,
    kid: &str,
    retires_at: Option<Timestamp>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE signing_keys SET retires_at = $1 WHERE kid = $2")
        .bind(retires_at)
        .bind(kid)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes the keys retired at `now` (no longer published, their tokens expired or revoked).
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn delete_retired(tx: &mut Tx<'_>, now: Timestamp) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM signing_keys WHERE retires_at IS NOT NULL AND retires_at <= $1")
            .bind(now)
            .execute(&mut **tx)
            .await?;
    Ok(done.rows_affected())
}

/// The sealed value of the instance secret `name`, if it is stored.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn instance_secret(db: &Db, name: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT sealed FROM instance_secrets WHERE name = $1")
        .bind(name)
        .fetch_optional(&db.writer)
        .await
}

/// Stores the instance secret `name` unless one is stored already (another instance starting at
/// the same moment): the first one stays, and every instance reads that one.
#[tracing::instrument(level = "debug", skip(db, sealed))]
pub async fn insert_instance_secret(db: &Db, name: &str, sealed: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO instance_secrets (name, sealed) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(sealed)
    .execute(&db.writer)
    .await?;
    Ok(())
}
