//! Sign-in attempts, counted per limit key (account and address, account, address) in the
//! database so that every instance sharing it enforces the same limits.
//!
//! An attempt is reserved before its password is checked: its rows are inserted and the keys
//! counted in one transaction, so parallel attempts cannot all slip under a limit. A reservation
//! that would exceed a limit is rolled back, so refused attempts never count.

use super::Db;
use crate::clock::Timestamp;
use crate::config::Backend;

/// One limit: at most `max` attempts under `key` since the window began.
#[derive(Debug)]
pub struct Limit<'a> {
    pub key: &'a str,
    pub max: i64,
}

/// The id of a reserved attempt, to take it back.
#[derive(Debug, Clone)]
pub struct Reservation(String);

/// Reserves one attempt under every limit's key, unless that makes any key exceed its limit
/// (then nothing is recorded and `None` is returned).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn reserve(
    db: &Db,
    limits: &[Limit<'_>],
    now: Timestamp,
    since: Timestamp,
) -> Result<Option<Reservation>, sqlx::Error> {
    let (pool, backend) = (&db.writer, db.backend);
    let id = crate::crypto::random_secret();
    let mut tx = pool.begin().await?;
    if backend == Backend::Postgres {
        // READ COMMITTED transactions do not see each other's inserts: take a lock per key
        // (in one order, so two attempts cannot deadlock) until this one commits. On SQLite
        // the first INSERT takes the database's write lock, which does the same.
        let mut keys: Vec<&str> = limits.iter().map(|l| l.key).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS l",
            )
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        }
    }
    for limit in limits {
        sqlx::query("INSERT INTO login_attempts (attempt_key, at, attempt_id) VALUES ($1, $2, $3)")
            .bind(limit.key)
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
    }
    for limit in limits {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM login_attempts WHERE attempt_key = $1 AND at > $2",
        )
        .bind(limit.key)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
        if count > limit.max {
            tx.rollback().await?;
            return Ok(None);
        }
    }
    tx.commit().await?;
    Ok(Some(Reservation(id)))
}

/// Takes back a reserved attempt (it succeeded, or its password was never checked).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn release(db: &Db, reservation: &Reservation) -> Result<(), sqlx::Error> {
    let pool = &db.writer;
    sqlx::query("DELETE FROM login_attempts WHERE attempt_id = $1")
        .bind(&reservation.0)
        .execute(pool)
        .await?;
    Ok(())
}

/// Forgets every attempt under `key`.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn clear(db: &Db, key: &str) -> Result<(), sqlx::Error> {
    let pool = &db.writer;
    sqlx::query("DELETE FROM login_attempts WHERE attempt_key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}
