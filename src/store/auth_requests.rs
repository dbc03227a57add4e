//! Authorization requests waiting for the user (login, consent). The validated request is kept
//! server-side under a random id, so the pages carry only that id, never editable parameters.

use super::Db;
use crate::clock::Timestamp;
use crate::config::PendingCaps;

/// A request to store.
#[derive(Debug)]
pub struct NewRequest<'a> {
    pub client_id: &'a str,
    /// The validated request, serialised (a pushed request: its parameters, form-encoded,
    /// without client credentials).
    pub params: &'a str,
    /// Where it came from (an IPv4 address or an IPv6 /64), for the per-address cap.
    pub client_address: Option<&'a str>,
}

/// Stores a request unless its app, or its client address, already has as many pending
/// (unexpired) requests as `caps` allow: then `None`. Check and insert are one statement; the
/// counts stop at the cap, so the check costs at most that many index entries.
#[tracing::instrument(level = "debug", skip(db, new), fields(client_id = new.client_id))]
pub async fn create(
    db: &Db,
    new: NewRequest<'_>,
    now: Timestamp,
    lifetime: i64,
    caps: PendingCaps,
) -> Result<Option<String>, sqlx::Error> {
    let id = crate::crypto::random_secret();
    let stored = insert_capped(db, Waiting::Authorization, &id, &new, now, lifetime, caps).await?;
    Ok(stored.then_some(id))
}

/// The tables of requests that wait, each capped per app and per client address.
#[derive(Clone, Copy)]
pub(super) enum Waiting {
    /// `auth_requests`, keyed by the request's id.
    Authorization,
    /// `pushed_requests` (RFC 9126), keyed by the hash of the `request_uri`'s random part.
    Pushed,
}

/// Inserts `new` under `key` into `table` unless the caps are reached (true when stored).
pub(super) async fn insert_capped(
    db: &Db,
    table: Waiting,
    key: &str,
    new: &NewRequest<'_>,
    now: Timestamp,
    lifetime: i64,
    caps: PendingCaps,
) -> Result<bool, sqlx::Error> {
    let (table, key_column) = match table {
        Waiting::Authorization => ("auth_requests", "id"),
        Waiting::Pushed => ("pushed_requests", "uri_hash"),
    };
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} ({key_column}, client_id, params, created_at, expires_at,
             client_address)
         SELECT $1, $2, $3, $4, $5, $6
         WHERE (SELECT COUNT(*) FROM (SELECT 1 FROM {table}
                 WHERE client_id = $2 AND expires_at > $4 LIMIT $7) AS by_app) < $7
           AND ($6 IS NULL OR (SELECT COUNT(*) FROM (SELECT 1 FROM {table}
                 WHERE client_address = $6 AND expires_at > $4 LIMIT $8) AS by_address) < $8)"
    )))
    .bind(key)
    .bind(new.client_id)
    .bind(new.params)
    .bind(now)
    .bind(now + lifetime)
    .bind(new.client_address)
    .bind(caps.per_app)
    .bind(caps.per_address)
    .execute(&db.writer)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The stored parameters and creation time of a live request.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn find(
    db: &Db,
    id: &str,
    now: Timestamp,
) -> Result<Option<(String, Timestamp)>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as::<_, (String, Timestamp)>(
        "SELECT params, created_at FROM auth_requests WHERE id = $1 AND expires_at > $2",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(pool)
    .await
}

/// Removes a finished request; true if it was still there (so it finishes only once).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn take(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let pool = &db.writer;
    let done = sqlx::query("DELETE FROM auth_requests WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
