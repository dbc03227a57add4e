//! Pushed authorization requests (RFC 9126 §2): the validated parameters an app pushed, kept
//! under the hash of their `request_uri`'s random part (the handle itself is given to the app
//! once and never stored), bound to the app, single-use and short-lived.

use super::Db;
use crate::clock::Timestamp;
use crate::config::PendingCaps;
use crate::crypto::secret_hash;

/// A pushed request to store.
#[derive(Debug)]
pub struct NewPushed<'a> {
    pub client_id: &'a str,
    /// The request's parameters, form-encoded, without client credentials.
    pub params: &'a str,
    /// Where it came from (an IPv4 address or an IPv6 /64), for the per-address cap.
    pub client_address: Option<&'a str>,
}

/// Stores a pushed request and returns the random part of its `request_uri`, unless its app or
/// its client address already has as many unexpired pushed requests as `caps` allow: then
/// `None`. Check and insert are one statement, as for `auth_requests::create`.
#[tracing::instrument(level = "debug", skip(db, new), fields(client_id = new.client_id))]
pub async fn create(
    db: &Db,
    new: NewPushed<'_>,
    now: Timestamp,
    lifetime: i64,
    caps: PendingCaps,
) -> Result<Option<String>, sqlx::Error> {
    let pool = &db.writer;
    let reference = crate::crypto::random_secret();
    let done = sqlx::query(
        "INSERT INTO pushed_requests (uri_hash, client_id, params, client_address, created_at,
             expires_at)
         SELECT $1, $2, $3, $4, $5, $6
         WHERE (SELECT COUNT(*) FROM (SELECT 1 FROM pushed_requests
                 WHERE client_id = $2 AND expires_at > $5 LIMIT $7) AS by_app) < $7
           AND ($4 IS NULL OR (SELECT COUNT(*) FROM (SELECT 1 FROM pushed_requests
                 WHERE client_address = $4 AND expires_at > $5 LIMIT $8) AS by_address) < $8)",
    )
    .bind(secret_hash(&reference))
    .bind(new.client_id)
    .bind(new.params)
    .bind(new.client_address)
    .bind(now)
    .bind(now + lifetime)
    .bind(caps.per_app)
    .bind(caps.per_address)
    .execute(pool)
    .await?;
    Ok((done.rows_affected() == 1).then_some(reference))
}

/// Takes the live pushed request `reference` of `client_id`: its parameters, and it is gone.
/// One statement, so of two concurrent takes (on any instance) at most one gets it. A request
/// of another app, an expired, a used or an unknown one is `None`; another app's stays.
#[tracing::instrument(level = "debug", skip_all, fields(client_id))]
pub async fn take(
    db: &Db,
    reference: &str,
    client_id: &str,
    now: Timestamp,
) -> Result<Option<String>, sqlx::Error> {
    let pool = &db.writer;
    sqlx::query_scalar(
        "DELETE FROM pushed_requests WHERE uri_hash = $1 AND client_id = $2 AND expires_at > $3
         RETURNING params",
    )
    .bind(secret_hash(reference))
    .bind(client_id)
    .bind(now)
    .fetch_optional(pool)
    .await
}
