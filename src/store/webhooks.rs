//! Webhook endpoints, deliveries and their attempts (migration 0009); the outbox they are
//! made from is `store::outbox`.
//!
//! The worker claims due deliveries with a lease: on PostgreSQL the rows are picked with
//! `FOR UPDATE SKIP LOCKED`, so instances on one database never claim the same row; on SQLite
//! the one writer connection serialises claims (one instance delivers). A claim names its
//! batch (`lease_owner`), and an attempt is recorded only while that claim still holds.

use sqlx::FromRow;

use super::{Db, Tx};
use crate::clock::Timestamp;
use crate::config::Backend;

pub use super::outbox::{
    OutboxStats, Outgoing, insert_event, insert_outbox, outbox_stats, split_outbox,
};

/// An endpoint row. Its secrets are sealed (see `webhooks::secrets::SecretBox`).
#[derive(Debug, Clone, FromRow)]
pub struct EndpointRow {
    pub id: String,
    pub client_id: String,
    pub url: String,
    /// JSON list of event type names.
    pub event_types: String,
    pub state: String,
    pub disabled_reason: Option<String>,
    pub disabled_note: Option<String>,
    pub disabled_at: Option<i64>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub failing_since: Option<i64>,
    pub tested_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const ENDPOINT_COLUMNS: &str = "id, client_id, url, event_types, state, disabled_reason,
     disabled_note, disabled_at, secret, previous_secret, previous_secret_until, failing_since,
     tested_at, created_at, updated_at";

pub async fn insert_endpoint(tx: &mut Tx<'_>, e: &EndpointRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, client_id, url, event_types, state, secret,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'enabled', $5, $6, $6)",
    )
    .bind(&e.id)
    .bind(&e.client_id)
    .bind(&e.url)
    .bind(&e.event_types)
    .bind(&e.secret)
    .bind(e.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The app's endpoints, oldest first.
pub async fn endpoints_of_app(db: &Db, client_id: &str) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE client_id = $1
         ORDER BY created_at, id"
    )))
    .bind(client_id)
    .fetch_all(&db.pool)
    .await
}

/// One of the app's endpoints.
pub async fn endpoint(
    db: &Db,
    client_id: &str,
    endpoint_id: &str,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE client_id = $1 AND id = $2"
    )))
    .bind(client_id)
    .bind(endpoint_id)
    .fetch_optional(&db.writer)
    .await
}

/// A new secret; the one it replaces keeps signing until `previous_until`.
pub async fn set_secret(
    tx: &mut Tx<'_>,
    endpoint_id: &str,
    sealed: &str,
    previous_sealed: &str,
    previous_until: Timestamp,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_endpoints SET secret = $2, previous_secret = $3,
             previous_secret_until = $4, updated_at = $5 WHERE id = $1",
    )
    .bind(endpoint_id)
    .bind(sealed)
    .bind(previous_sealed)
    .bind(previous_until)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Enables an endpoint again: its failure streak starts over.
pub async fn enable(tx: &mut Tx<'_>, endpoint_id: &str, now: Timestamp) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_endpoints SET state = 'enabled', disabled_reason = NULL,
             disabled_note = NULL, disabled_at = NULL, failing_since = NULL, updated_at = $2
         WHERE id = $1",
    )
    .bind(endpoint_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Disables an endpoint with its reason, and fails its pending deliveries with `note` (they
/// can be retried once it is enabled again). True if it was enabled.
pub async fn disable(
    tx: &mut Tx<'_>,
    endpoint_id: &str,
    reason: &str,
    note: &str,
    now: Timestamp,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET state = 'disabled', disabled_reason = $2,
             disabled_note = $3, disabled_at = $4, updated_at = $4
         WHERE id = $1 AND state = 'enabled'",
    )
    .bind(endpoint_id)
    .bind(reason)
    .bind(note)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE webhook_deliveries SET state = 'failed', last_error = $2, lease_owner = NULL,
             lease_until = NULL, updated_at = $3
         WHERE endpoint_id = $1 AND state = 'pending'",
    )
    .bind(endpoint_id)
    .bind(format!(
        "not delivered: the endpoint was disabled ({reason})"
    ))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// How many of the app's endpoints are disabled for `reason`.
pub async fn disabled_for(
    tx: &mut Tx<'_>,
    client_id: &str,
    reason: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_endpoints
         WHERE client_id = $1 AND state = 'disabled' AND disabled_reason = $2",
    )
    .bind(client_id)
    .bind(reason)
    .fetch_one(&mut **tx)
    .await
}

/// A delivered attempt ends the endpoint's failure streak (and, for a test, records when).
pub async fn endpoint_succeeded(
    tx: &mut Tx<'_>,
    endpoint_id: &str,
    test: bool,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    // Only a row with something to change is written (and locked): deliveries to one endpoint
    // do not queue on its row.
    sqlx::query(
        "UPDATE webhook_endpoints SET failing_since = NULL,
             tested_at = CASE WHEN $2 = 1 THEN $3 ELSE tested_at END
         WHERE id = $1 AND (failing_since IS NOT NULL OR $2 = 1)",
    )
    .bind(endpoint_id)
    .bind(i64::from(test))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A failed attempt: starts the endpoint's failure streak if none runs; returns its start.
pub async fn endpoint_failed(
    tx: &mut Tx<'_>,
    endpoint_id: &str,
    now: Timestamp,
) -> Result<Timestamp, sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_endpoints SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL",
    )
    .bind(endpoint_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let since: Option<i64> =
        sqlx::query_scalar("SELECT failing_since FROM webhook_endpoints WHERE id = $1")
            .bind(endpoint_id)
            .fetch_optional(&mut **tx)
            .await?
            .flatten();
    Ok(since.unwrap_or(now))
}

/// The app's gated-capability states (JSON), read in the transaction that enqueues.
pub async fn capability_states(tx: &mut Tx<'_>, client_id: &str) -> Result<String, sqlx::Error> {
    let raw: Option<String> =
        sqlx::query_scalar("SELECT capability_states FROM apps WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(raw.unwrap_or_else(|| "{}".into()))
}

/// The app's enabled endpoints subscribed to `event_type`.
pub async fn subscribers(
    tx: &mut Tx<'_>,
    client_id: &str,
    event_type: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM webhook_endpoints
         WHERE client_id = $1 AND state = 'enabled' AND event_types LIKE $2",
    )
    .bind(client_id)
    .bind(format!("%\"{event_type}\"%"))
    .fetch_all(&mut **tx)
    .await
}

/// Whether an endpoint's subscription (its `event_types`, a JSON list of names) names
/// `event_type`: the test [`subscribers`] makes in SQL, for endpoint rows read some other way.
pub fn subscribes(event_types: &str, event_type: &str) -> bool {
    event_types.contains(&format!("\"{event_type}\""))
}

/// The id of the delivery of an event to an endpoint.
pub fn delivery_id(event_id: &str, endpoint_id: &str) -> String {
    format!("{event_id}.{endpoint_id}")
}

/// A claimed delivery, with what the worker needs to post it.
#[derive(Debug, Clone, FromRow)]
pub struct Claimed {
    pub delivery_id: String,
    pub event_id: String,
    pub endpoint_id: String,
    pub client_id: String,
    pub event_type: String,
    pub body: String,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub attempts: i64,
    pub failures: i64,
    pub lease_owner: String,
}

/// Claims up to `limit` deliveries due at `due` (the server's clock) whose lease is free or
/// expired at `wall` (wall-clock seconds), leasing them to `owner` until `lease_until`.
pub async fn claim(
    db: &Db,
    owner: &str,
    due: Timestamp,
    wall: Timestamp,
    lease_until: Timestamp,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let lock = match db.backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        // The one writer connection serialises claims.
        Backend::Sqlite => "",
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2
         WHERE id IN (SELECT id FROM webhook_deliveries
                      WHERE state = 'pending' AND next_attempt_at <= $3
                        AND (lease_until IS NULL OR lease_until <= $4)
                      ORDER BY next_attempt_at LIMIT $5 {lock})"
    )))
    .bind(owner)
    .bind(lease_until)
    .bind(due)
    .bind(wall)
    .bind(limit)
    .execute(&db.writer)
    .await?;
    sqlx::query_as(
        "SELECT d.id AS delivery_id, d.event_id, d.endpoint_id, p.client_id,
                e.type AS event_type, e.body, p.url, p.secret, p.previous_secret,
                p.previous_secret_until, d.attempts, d.failures, d.lease_owner
         FROM webhook_deliveries d
         JOIN webhook_events e ON e.id = d.event_id
         JOIN webhook_endpoints p ON p.id = d.endpoint_id
         WHERE d.lease_owner = $1 AND d.state = 'pending'
         ORDER BY d.next_attempt_at",
    )
    .bind(owner)
    .fetch_all(&db.writer)
    .await
}

/// One attempt as recorded.
#[derive(Debug, Clone)]
pub struct AttemptRecord<'a> {
    pub at: Timestamp,
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub outcome: &'a str,
    pub error: Option<&'a str>,
}

/// What a delivery is after an attempt.
#[derive(Debug, Clone, Copy)]
pub enum After {
    Delivered,
    /// Retried at this time, after this many failures in the schedule.
    Retry {
        at: Timestamp,
        failures: i64,
    },
    Failed {
        failures: i64,
    },
}

/// Records an attempt of a claimed delivery and its state after; false (and nothing written)
/// when the claim no longer holds, because its lease expired and another worker took it.
pub async fn record_attempt(
    tx: &mut Tx<'_>,
    claimed: &Claimed,
    attempt: &AttemptRecord<'_>,
    after: After,
) -> Result<bool, sqlx::Error> {
    let (state, next, failures, delivered_at) = match after {
        After::Delivered => ("delivered", None, claimed.failures, Some(attempt.at)),
        After::Retry { at, failures } => ("pending", Some(at), failures, None),
        After::Failed { failures } => ("failed", None, failures, None),
    };
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = $3, attempts = attempts + 1, failures = $4,
             next_attempt_at = COALESCE($5, next_attempt_at), last_error = $6,
             delivered_at = $7, lease_owner = NULL, lease_until = NULL, updated_at = $8
         WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
    )
    .bind(&claimed.delivery_id)
    .bind(&claimed.lease_owner)
    .bind(state)
    .bind(failures)
    .bind(next)
    .bind(attempt.error)
    .bind(delivered_at)
    .bind(attempt.at)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, attempt, at, status, latency_ms, outcome, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&claimed.delivery_id)
    .bind(claimed.attempts + 1)
    .bind(attempt.at)
    .bind(attempt.status.map(i64::from))
    .bind(attempt.latency_ms)
    .bind(attempt.outcome)
    .bind(attempt.error)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

/// Sets a failed delivery of the app's to pending again, due now, with the schedule started
/// over. True if there was one.
pub async fn retry(
    tx: &mut Tx<'_>,
    client_id: &str,
    delivery_id: &str,
    now: Timestamp,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = 'pending', failures = 0, next_attempt_at = $3,
             lease_owner = NULL, lease_until = NULL, updated_at = $3
         WHERE id = $1 AND state = 'failed'
           AND endpoint_id IN (SELECT id FROM webhook_endpoints
                               WHERE client_id = $2 AND state = 'enabled')",
    )
    .bind(delivery_id)
    .bind(client_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A delivery as the deliveries log shows it.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub event_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub attempt: i64,
    pub at: i64,
    pub status: Option<i64>,
    pub latency_ms: i64,
    pub outcome: String,
    pub error: Option<String>,
}

/// The app's latest `limit` deliveries (of one endpoint, when given), newest first, and the
/// attempts of each, oldest first.
pub async fn deliveries(
    db: &Db,
    client_id: &str,
    endpoint_id: Option<&str>,
    limit: i64,
) -> Result<(Vec<DeliveryRow>, Vec<AttemptRow>), sqlx::Error> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(
        "SELECT d.id, d.event_id, d.endpoint_id, e.type AS event_type, d.state, d.attempts,
                d.next_attempt_at, d.last_error, d.delivered_at, d.created_at
         FROM webhook_deliveries d
         JOIN webhook_events e ON e.id = d.event_id
         JOIN webhook_endpoints p ON p.id = d.endpoint_id
         WHERE p.client_id = $1 AND ($2 IS NULL OR d.endpoint_id = $2)
         ORDER BY d.created_at DESC, d.id DESC LIMIT $3",
    )
    .bind(client_id)
    .bind(endpoint_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    let Some(oldest) = rows.last().map(|r| r.created_at) else {
        return Ok((rows, Vec::new()));
    };
    let attempts: Vec<AttemptRow> = sqlx::query_as(
        "SELECT a.delivery_id, a.attempt, a.at, a.status, a.latency_ms, a.outcome, a.error
         FROM webhook_attempts a
         JOIN webhook_deliveries d ON d.id = a.delivery_id
         JOIN webhook_endpoints p ON p.id = d.endpoint_id
         WHERE p.client_id = $1 AND ($2 IS NULL OR d.endpoint_id = $2) AND d.created_at >= $3
         ORDER BY a.delivery_id, a.attempt",
    )
    .bind(client_id)
    .bind(endpoint_id)
    .bind(oldest)
    .fetch_all(&db.pool)
    .await?;
    Ok((rows, attempts))
}

/// The app's enabled endpoints (id, URL), read in the caller's transaction.
pub async fn enabled_endpoints_in(
    tx: &mut Tx<'_>,
    client_id: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, url FROM webhook_endpoints WHERE client_id = $1 AND state = 'enabled'
         ORDER BY created_at, id",
    )
    .bind(client_id)
    .fetch_all(&mut **tx)
    .await
}

/// Sets the event types (a JSON list of names) an endpoint of the app receives from now on.
/// True if the app has that endpoint.
pub async fn set_event_types(
    tx: &mut Tx<'_>,
    client_id: &str,
    endpoint_id: &str,
    event_types: &str,
    now: Timestamp,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET event_types = $3, updated_at = $4
         WHERE client_id = $1 AND id = $2",
    )
    .bind(client_id)
    .bind(endpoint_id)
    .bind(event_types)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}
