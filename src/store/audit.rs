//! The partner program's audit log: every review decision, access change, capability change,
//! key and secret event, appended and never rewritten (triggers refuse UPDATE and DELETE).

use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;

use super::{Db, Tx};
use crate::clock::Timestamp;

/// Who did something: `operator:<user id>/key:<key id>` and `partner:<partner id>/key:<key id>`
/// (API callers), `cli` (an operator at the command line) or `onyx-id` (an automatic trigger).
pub type Actor = String;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub partner_id: Option<String>,
    pub client_id: Option<String>,
    pub action: String,
    pub detail: Value,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    at: Timestamp,
    actor: String,
    partner_id: Option<String>,
    client_id: Option<String>,
    action: String,
    detail: String,
}

impl From<Row> for Entry {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            at: r.at,
            actor: r.actor,
            partner_id: r.partner_id,
            client_id: r.client_id,
            action: r.action,
            detail: serde_json::from_str(&r.detail).unwrap_or(Value::Null),
        }
    }
}

/// What happened, to whom.
pub struct Event<'a> {
    pub actor: &'a str,
    pub partner_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub action: &'a str,
    pub detail: Value,
}

pub async fn append(tx: &mut Tx<'_>, at: Timestamp, e: Event<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, partner_id, client_id, action, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(at)
    .bind(e.actor)
    .bind(e.partner_id)
    .bind(e.client_id)
    .bind(e.action)
    .bind(e.detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Which entries to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub client_id: Option<String>,
    pub partner_id: Option<String>,
    /// At most this many, newest first (default 200, at most 1000).
    pub limit: Option<i64>,
}

pub async fn read(db: &Db, f: &Filter) -> Result<Vec<Entry>, sqlx::Error> {
    read_from(db, f, 0).await
}

/// The entries about app `client_id` with `action`, newest first (every one: an app's
/// decisions are few).
pub async fn of_app_action(
    db: &Db,
    client_id: &str,
    action: &str,
) -> Result<Vec<Entry>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, at, actor, partner_id, client_id, action, detail FROM audit_log
         WHERE client_id = $1 AND action = $2 ORDER BY id DESC",
    )
    .bind(client_id)
    .bind(action)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(Entry::from).collect())
}

/// How many entries `f` selects (its limit aside).
pub async fn count(db: &Db, f: &Filter) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log
         WHERE ($1 IS NULL OR client_id = $1) AND ($2 IS NULL OR partner_id = $2)",
    )
    .bind(f.client_id.as_deref())
    .bind(f.partner_id.as_deref())
    .fetch_one(&db.pool)
    .await
}

/// The entries `f` selects, newest first, skipping the first `offset` and at most `f.limit`
/// (as `read` clamps it) after them: one page of a long log.
pub async fn read_from(db: &Db, f: &Filter, offset: i64) -> Result<Vec<Entry>, sqlx::Error> {
    let limit = f.limit.unwrap_or(200).clamp(1, 1000);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, at, actor, partner_id, client_id, action, detail FROM audit_log
         WHERE ($1 IS NULL OR client_id = $1) AND ($2 IS NULL OR partner_id = $2)
         ORDER BY id DESC LIMIT $3 OFFSET $4",
    )
    .bind(f.client_id.as_deref())
    .bind(f.partner_id.as_deref())
    .bind(limit)
    .bind(offset.max(0))
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(Entry::from).collect())
}
