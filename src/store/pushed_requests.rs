//! Pushed authorization requests (RFC 9126 §2): the validated parameters an app pushed, kept
//! under the hash of their `request_uri`'s random part (the handle itself is given to the app
//! once and never stored), bound to the app, single-use and short-lived.

use super::Db;
use super::auth_requests::{NewRequest, Waiting, insert_capped};
use crate::clock::Timestamp;
use crate::config::PendingCaps;
use crate::crypto::secret_hash;

/// Stores a pushed request and returns the random part of its `request_uri`, unless its app or
/// its client address already has as many unexpired pushed requests as `caps` allow: then
/// `None`. Check and insert are one statement, as for `auth_requests::create`.
#[tracing::instrument(level = "debug", skip(db, new), fields(client_id = new.client_id))]
pub async fn create(
    db: &Db,
    new: NewRequest<'_>,
    now: Timestamp,
    lifetime: i64,
    caps: PendingCaps,
) -> Result<Option<String>, sqlx::Error> {
    let reference = crate::crypto::random_secret();
    let key = secret_hash(&reference);
    let stored = insert_capped(db, Waiting::Pushed, &key, &new, now, lifetime, caps).await?;
    Ok(stored.then_some(reference))
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
