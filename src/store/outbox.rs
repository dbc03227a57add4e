//! The event outbox (migration 0020): a change writes each event as one row of
//! `webhook_outbox` in its own transaction, and the delivery worker splits the rows into
//! `webhook_events` and their `webhook_deliveries` ([`split_outbox`]), many per transaction.
//! Also the batched writes a change sends in one round trip ([`Batch`]), and the outbox as the
//! metrics read it.

use super::webhooks::delivery_id;
use super::{Db, Tx};
use crate::clock::Timestamp;
use crate::config::Backend;

/// The start of an insert into the outbox, as a literal (for `concat!`).
macro_rules! outbox_row {
    () => {
        "INSERT INTO webhook_outbox (event_id, client_id, type, body, endpoints, created_at) VALUES"
    };
}

/// An event to write, with the endpoints it goes to.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub event_id: &'a str,
    pub client_id: &'a str,
    pub event_type: &'a str,
    /// The body, byte for byte as it will be signed and sent.
    pub body: &'a str,
    pub endpoints: &'a [String],
}

/// A value bound to a [`Batch`].
enum Arg<'a> {
    Text(&'a str),
    Owned(String),
    Int(i64),
}

/// Several writes sent to the database in one round trip: on SQLite the statements of one
/// query string (run in order, each with its own `$N`), on PostgreSQL one statement whose
/// first writes are data-modifying `WITH` clauses (each run once, to completion). The writes
/// must not read each other's rows but through constraints (a delivery's event is checked at
/// the end of the statement on PostgreSQL).
pub(in crate::store) struct Batch<'a> {
    postgres: bool,
    parts: Vec<String>,
    args: Vec<Arg<'a>>,
}

impl<'a> Batch<'a> {
    /// A batch for the backend of `tx`.
    pub(in crate::store) fn new(tx: &Tx<'_>) -> Self {
        Self {
            postgres: is_postgres(tx),
            parts: Vec::new(),
            args: Vec::new(),
        }
    }

    fn arg(&mut self, a: Arg<'a>) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    pub(in crate::store) fn text(&mut self, v: &'a str) -> String {
        self.arg(Arg::Text(v))
    }

    pub(in crate::store) fn int(&mut self, v: i64) -> String {
        self.arg(Arg::Int(v))
    }

    /// Adds one write (its placeholders from [`Batch::text`] and [`Batch::int`]).
    pub(in crate::store) fn push(&mut self, sql: String) {
        self.parts.push(sql);
    }

    /// Adds the events to the outbox ([`split_outbox`] makes their deliveries later): one
    /// row each, the whole cost of an event to the change that causes it.
    pub(in crate::store) fn outbox(&mut self, events: &[Outgoing<'a>], now: i64) {
        if events.is_empty() {
            return;
        }
        let at = self.int(now);
        let mut rows = Vec::new();
        for e in events {
            let row = format!(
                "({}, {}, {}, {}, {}, {at})",
                self.text(e.event_id),
                self.text(e.client_id),
                self.text(e.event_type),
                self.text(e.body),
                self.arg(Arg::Owned(
                    serde_json::to_string(e.endpoints).unwrap_or_else(|_| "[]".into())
                ))
            );
            rows.push(row);
        }
        self.push(format!("{} {}", outbox_row!(), rows.join(", ")));
    }

    /// Adds the events, and one delivery for each of their endpoints, due `now`, past the
    /// outbox. A delivery's id is its event's and endpoint's ([`delivery_id`]), so it is
    /// written once.
    fn events(&mut self, events: &[Outgoing<'a>], now: i64) {
        let at = self.int(now);
        let mut rows = Vec::new();
        for e in events {
            let row = format!(
                "({}, {}, {}, {}, {at})",
                self.text(e.event_id),
                self.text(e.client_id),
                self.text(e.event_type),
                self.text(e.body)
            );
            rows.push(row);
        }
        if rows.is_empty() {
            return;
        }
        self.push(format!(
            "INSERT INTO webhook_events (id, client_id, type, body, created_at) VALUES {}",
            rows.join(", ")
        ));
        let mut rows = Vec::new();
        for e in events {
            for endpoint_id in e.endpoints {
                let row = format!(
                    "({}, {}, {}, 'pending', {at}, {at}, {at})",
                    self.arg(Arg::Owned(delivery_id(e.event_id, endpoint_id))),
                    self.text(e.event_id),
                    self.text(endpoint_id)
                );
                rows.push(row);
            }
        }
        if !rows.is_empty() {
            self.push(format!(
                "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, state, next_attempt_at,
                     created_at, updated_at) VALUES {}",
                rows.join(", ")
            ));
        }
    }

    /// Runs the writes in `tx`, in one round trip (nothing when there are none).
    pub(in crate::store) async fn run(self, tx: &mut Tx<'_>) -> Result<(), sqlx::Error> {
        let Some((last, first)) = self.parts.split_last() else {
            return Ok(());
        };
        let sql = if first.is_empty() {
            last.clone()
        } else if self.postgres {
            let with: Vec<String> = first
                .iter()
                .enumerate()
                .map(|(i, part)| format!("w{i} AS ({part})"))
                .collect();
            format!("WITH {} {last}", with.join(", "))
        } else {
            self.parts.join(";\n")
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in self.args {
            query = match a {
                Arg::Text(v) => query.bind(v),
                Arg::Owned(v) => query.bind(v),
                Arg::Int(v) => query.bind(v),
            };
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }
}

/// Whether `tx` is on PostgreSQL (else SQLite).
pub(in crate::store) fn is_postgres(tx: &Tx<'_>) -> bool {
    tx.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME
}

/// Writes an event with one delivery for each of `endpoints`, due now, in one round trip,
/// past the outbox (a test event, whose delivery its caller names at once). A delivery's id
/// is its event's and endpoint's, so it can be written only once.
pub async fn insert_event(
    tx: &mut Tx<'_>,
    event: &Outgoing<'_>,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    let mut batch = Batch::new(tx);
    batch.events(std::slice::from_ref(event), now);
    batch.run(tx).await
}

/// Writes an event into the outbox, in one statement: the worker's next [`split_outbox`]
/// makes its deliveries.
pub async fn insert_outbox(
    tx: &mut Tx<'_>,
    event: &Outgoing<'_>,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    write_outbox(tx, None, std::slice::from_ref(event), now).await
}

/// One outbox row.
const ONE_ROW: &str = concat!(outbox_row!(), " ($1, $2, $3, $4, $5, $6)");

/// A grant's event sequence set ($1, $2) and one outbox row, in one round trip.
const ONE_ROW_WITH_SEQUENCE_SQLITE: &str = concat!(
    "UPDATE grants SET event_sequence = $1 WHERE id = $2;\n",
    outbox_row!(),
    " ($3, $4, $5, $6, $7, $8)"
);
const ONE_ROW_WITH_SEQUENCE_POSTGRES: &str = concat!(
    "WITH w0 AS (UPDATE grants SET event_sequence = $1 WHERE id = $2) ",
    outbox_row!(),
    " ($3, $4, $5, $6, $7, $8)"
);

/// Writes `events` into the outbox, and, when `grant` is given, sets that grant's event
/// sequence (`(grant id, sequence)`), in one round trip. The usual case, one event, is one
/// prepared statement of a fixed text; several events go through a [`Batch`].
pub(in crate::store) async fn write_outbox(
    tx: &mut Tx<'_>,
    grant: Option<(&str, i64)>,
    events: &[Outgoing<'_>],
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    let [event] = events else {
        let mut batch = Batch::new(tx);
        if let Some((grant_id, sequence)) = grant {
            let (seq, id) = (batch.int(sequence), batch.text(grant_id));
            batch.push(format!(
                "UPDATE grants SET event_sequence = {seq} WHERE id = {id}"
            ));
        }
        batch.outbox(events, now);
        return batch.run(tx).await;
    };
    let endpoints = serde_json::to_string(event.endpoints).unwrap_or_else(|_| "[]".into());
    let query = match grant {
        Some((grant_id, sequence)) => {
            let sql = if is_postgres(tx) {
                ONE_ROW_WITH_SEQUENCE_POSTGRES
            } else {
                ONE_ROW_WITH_SEQUENCE_SQLITE
            };
            sqlx::query(sql).bind(sequence).bind(grant_id)
        }
        None => sqlx::query(ONE_ROW),
    };
    query
        .bind(event.event_id)
        .bind(event.client_id)
        .bind(event.event_type)
        .bind(event.body)
        .bind(endpoints)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The outbox rows a split takes. SQLite (one writer): the oldest, as `seq <= $1`, the last
/// one's `seq`, a range on the table's key whose plan no value changes (a statement whose
/// plan depends on a bound value is compiled again each time it gets a new one).
/// PostgreSQL: rows no other instance is splitting, locked to the commit, as `$1`, their
/// `seq`s in a JSON list.
const SPLIT_PICK_SQLITE: &str =
    "SELECT MAX(seq) FROM (SELECT seq FROM webhook_outbox ORDER BY seq LIMIT $1) AS oldest";
const SPLIT_PICK_POSTGRES: &str =
    "SELECT seq FROM webhook_outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED";
const PICKED_SQLITE: &str = "o.seq <= $1";
const PICKED_POSTGRES: &str =
    "o.seq IN (SELECT value::bigint FROM json_array_elements_text($1::json))";

/// Each picked row's endpoints, from its JSON list, with the endpoint as it stands now (`e`;
/// one deleted since is absent).
const ENDPOINTS_SQLITE: &str = "json_each(o.endpoints) j
     JOIN webhook_endpoints e ON e.id = j.value";
const ENDPOINTS_POSTGRES: &str = "json_array_elements_text(o.endpoints::json) AS j(value)
     JOIN webhook_endpoints e ON e.id = j.value";

/// The `$1` of `PICKED_*`.
enum Picked {
    UpTo(i64),
    List(String),
}

type AnyQuery = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

/// Moves up to `limit` events from the outbox into `webhook_events`, with one delivery for
/// each endpoint that was subscribed when the change was made and still exists: pending, due
/// `now`, or failed if the endpoint has been disabled since (as disabling it fails its pending
/// deliveries). The rows are deleted in the same transaction, and on PostgreSQL picked with
/// `FOR UPDATE SKIP LOCKED`, so instances never split one twice. Every statement has one
/// text per backend, so each is prepared once, and the rows' data stays in the database.
/// Returns how many rows it moved.
pub async fn split_outbox(db: &Db, now: Timestamp, limit: i64) -> Result<usize, sqlx::Error> {
    // Looked at first on the readers, so an empty outbox costs the writer (SQLite's one
    // connection, which the changes queue on) nothing.
    let any: Option<i64> = sqlx::query_scalar("SELECT seq FROM webhook_outbox LIMIT 1")
        .fetch_optional(&db.pool)
        .await?;
    if any.is_none() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let (picked, endpoints, key) = match db.backend {
        Backend::Postgres => {
            let seqs: Vec<i64> = sqlx::query_scalar(SPLIT_PICK_POSTGRES)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            if seqs.is_empty() {
                return Ok(0);
            }
            let list = serde_json::to_string(&seqs).unwrap_or_else(|_| "[]".into());
            (PICKED_POSTGRES, ENDPOINTS_POSTGRES, Picked::List(list))
        }
        Backend::Sqlite => {
            let last: Option<i64> = sqlx::query_scalar(SPLIT_PICK_SQLITE)
                .bind(limit)
                .fetch_one(&mut *tx)
                .await?;
            let Some(last) = last else {
                return Ok(0);
            };
            (PICKED_SQLITE, ENDPOINTS_SQLITE, Picked::UpTo(last))
        }
    };
    let bind_key = |q: AnyQuery| match &key {
        Picked::UpTo(last) => q.bind(*last),
        Picked::List(list) => q.bind(list.clone()),
    };
    // Only an event with a delivery to make is kept.
    let events = format!(
        "INSERT INTO webhook_events (id, client_id, type, body, created_at)
         SELECT o.event_id, o.client_id, o.type, o.body, o.created_at FROM webhook_outbox o
         WHERE {picked} AND EXISTS (SELECT 1 FROM {endpoints})"
    );
    bind_key(sqlx::query(sqlx::AssertSqlSafe(events)))
        .execute(&mut *tx)
        .await?;
    let deliveries = format!(
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, state, last_error,
             next_attempt_at, created_at, updated_at)
         SELECT o.event_id || '.' || e.id, o.event_id, e.id,
                CASE WHEN e.state = 'enabled' THEN 'pending' ELSE 'failed' END,
                CASE WHEN e.state = 'enabled' THEN NULL
                     ELSE 'not delivered: the endpoint was disabled ('
                          || COALESCE(e.disabled_reason, 'disabled') || ')' END,
                $2, $2, $2
         FROM webhook_outbox o CROSS JOIN {endpoints}
         WHERE {picked}"
    );
    bind_key(sqlx::query(sqlx::AssertSqlSafe(deliveries)))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let moved = format!(
        "DELETE FROM webhook_outbox WHERE {}",
        picked.replace("o.seq", "seq")
    );
    let moved = bind_key(sqlx::query(sqlx::AssertSqlSafe(moved)))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(usize::try_from(moved.rows_affected()).unwrap_or(usize::MAX))
}

/// The outbox as the metrics read it: deliveries waiting, and the age of the oldest.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxStats {
    pub pending: i64,
    /// Seconds since the oldest waiting delivery was written; 0 when none waits.
    pub oldest_age: i64,
}

/// Reads [`OutboxStats`] at `now`: the pending deliveries (the partial index of due
/// deliveries) and those the events still in the outbox will make, one per endpoint named.
pub async fn outbox_stats(db: &Db, now: Timestamp) -> Result<OutboxStats, sqlx::Error> {
    let named = match db.backend {
        Backend::Postgres => "json_array_length(endpoints::json)",
        Backend::Sqlite => "json_array_length(endpoints)",
    };
    let (pending, oldest): (i64, Option<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT), MIN(oldest) FROM (
             SELECT COUNT(*) AS n, MIN(created_at) AS oldest
             FROM webhook_deliveries WHERE state = 'pending'
             UNION ALL
             SELECT SUM({named}), MIN(created_at) FROM webhook_outbox
         ) AS waiting"
    )))
    .fetch_one(&db.pool)
    .await?;
    Ok(OutboxStats {
        pending,
        oldest_age: oldest.map_or(0, |t| (now - t).max(0)),
    })
}
