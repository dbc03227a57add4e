//! The causes an app is limited or suspended for (`app_access_causes`), one row per source and
//! reason. Every change of them recomputes the app's effective access state into its row in
//! the same transaction, so the request path keeps reading one row.

use sqlx::FromRow;

use super::{Db, Tx};
use crate::clock::Timestamp;
use crate::partner::access::{
    self, AccessCause, AccessReason, AccessState, CauseSource, Effective,
};
use crate::webhooks::events::AccessChangedData;
use crate::webhooks::{Event, EventKind};

#[derive(FromRow)]
struct Row {
    source: String,
    reason: String,
    state: String,
    note: Option<String>,
    withdrawn_scopes: String,
    actor: String,
    created_at: i64,
}

impl Row {
    fn cause(self) -> AccessCause {
        AccessCause {
            // An unreadable value fails closed: an unknown source counts as the operator's
            // (nothing automatic lifts it), an unknown state as a suspension.
            source: CauseSource::parse(&self.source).unwrap_or(CauseSource::Operator),
            reason: AccessReason::parse(&self.reason).unwrap_or(AccessReason::OperatorDecision),
            state: AccessState::parse(&self.state).unwrap_or(AccessState::Suspended),
            note: self.note,
            withdrawn_scopes: serde_json::from_str(&self.withdrawn_scopes).unwrap_or_default(),
            actor: self.actor,
            at: self.created_at,
        }
    }
}

const SELECT: &str = "SELECT source, reason, state, note, withdrawn_scopes, actor, created_at
     FROM app_access_causes WHERE client_id = $1 ORDER BY created_at, source, reason";

/// The app's causes, oldest first.
pub async fn of_app(db: &Db, client_id: &str) -> Result<Vec<AccessCause>, sqlx::Error> {
    let pool = &db.pool;
    let rows: Vec<Row> = sqlx::query_as(SELECT)
        .bind(client_id)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(Row::cause).collect())
}

async fn of_app_in(tx: &mut Tx<'_>, client_id: &str) -> Result<Vec<AccessCause>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(SELECT)
        .bind(client_id)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.into_iter().map(Row::cause).collect())
}

/// Adds a cause, or replaces the one of the same source and reason.
pub async fn put(tx: &mut Tx<'_>, client_id: &str, cause: &AccessCause) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM app_access_causes WHERE client_id = $1 AND source = $2 AND reason = $3",
    )
    .bind(client_id)
    .bind(cause.source.as_str())
    .bind(cause.reason.as_str())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO app_access_causes
             (client_id, source, reason, state, note, withdrawn_scopes, actor, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(client_id)
    .bind(cause.source.as_str())
    .bind(cause.reason.as_str())
    .bind(cause.state.as_str())
    .bind(cause.note.as_deref())
    .bind(serde_json::to_string(&cause.withdrawn_scopes).unwrap_or_else(|_| "[]".into()))
    .bind(&cause.actor)
    .bind(cause.at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes the causes of this source (any, when `None`) and reason (any, when `None`); how
/// many it removed.
pub async fn clear(
    tx: &mut Tx<'_>,
    client_id: &str,
    source: Option<CauseSource>,
    reason: Option<AccessReason>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM app_access_causes WHERE client_id = $1
             AND ($2 IS NULL OR source = $2) AND ($3 IS NULL OR reason = $3)",
    )
    .bind(client_id)
    .bind(source.map(CauseSource::as_str))
    .bind(reason.map(AccessReason::as_str))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Writes the state the app's remaining causes add up to into the app's row; returns it.
pub async fn recompute(
    tx: &mut Tx<'_>,
    client_id: &str,
    now: Timestamp,
) -> Result<Effective, sqlx::Error> {
    let causes = of_app_in(tx, client_id).await?;
    let e = access::effective(&causes);
    let (before, withdrawn_before): (String, String) =
        sqlx::query_as("SELECT access_state, withdrawn_scopes FROM apps WHERE client_id = $1")
            .bind(client_id)
            .fetch_one(&mut **tx)
            .await?;
    let withdrawn_before: Vec<String> = serde_json::from_str(&withdrawn_before).unwrap_or_default();
    if before != e.state.as_str() || withdrawn_before != e.withdrawn {
        // Partners hear of the change in the transaction that makes it.
        let data = AccessChangedData {
            client_id: client_id.to_string(),
            state: e.state,
            reasons: causes.iter().map(|c| c.reason).collect(),
            withdrawn_scopes: e.withdrawn.clone(),
        };
        let event = Event::new(EventKind::AppAccessChanged(data), now);
        let _ = crate::webhooks::enqueue(tx, client_id, &event, now).await?;
    }
    super::apps::set_access(
        tx,
        client_id,
        e.state,
        e.reason,
        e.note.as_deref(),
        &e.withdrawn,
        now,
    )
    .await?;
    Ok(e)
}
