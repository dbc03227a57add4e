//! Versions of a partner app's draft. `apps.draft_version` is the current one; every edit
//! raises it (compare-and-set, so two edits never get one number) and keeps the draft it made,
//! so that a review decision made on an older version can be told what changed since.

use sqlx::FromRow;

use super::{Db, Tx};
use crate::clock::Timestamp;
use crate::partner::AppDraft;

/// The draft (none for an app made with `apps create`) and its version; `None` for no app.
#[allow(clippy::type_complexity)]
pub async fn current(
    db: &Db,
    client_id: &str,
) -> Result<Option<(Option<AppDraft>, i64)>, sqlx::Error> {
    let pool = &db.pool;
    let row: Option<(Option<String>, i64)> =
        sqlx::query_as("SELECT draft, draft_version FROM apps WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(d, v)| (d.and_then(|d| serde_json::from_str(&d).ok()), v)))
}

/// The draft, if its version is still `version`, read inside the caller's transaction after
/// taking the app row's write lock, so no edit can land between this read and the commit.
/// `Err(current version)` when it moved on.
pub async fn lock_version(
    tx: &mut Tx<'_>,
    client_id: &str,
    version: i64,
) -> Result<Result<AppDraft, i64>, sqlx::Error> {
    let locked = sqlx::query(
        "UPDATE apps SET draft_version = draft_version WHERE client_id = $1 AND draft_version = $2",
    )
    .bind(client_id)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    let (draft, current): (Option<String>, i64) =
        sqlx::query_as("SELECT draft, draft_version FROM apps WHERE client_id = $1")
            .bind(client_id)
            .fetch_one(&mut **tx)
            .await?;
    if locked.rows_affected() == 0 {
        return Ok(Err(current));
    }
    Ok(Ok(draft
        .and_then(|d| serde_json::from_str(&d).ok())
        .unwrap_or_default()))
}

/// Raises the version from `from` to `from + 1` with this draft; false if another edit raised
/// it first.
pub async fn bump(
    tx: &mut Tx<'_>,
    client_id: &str,
    from: i64,
    draft: &AppDraft,
    fields: &[String],
    actor: &str,
    now: Timestamp,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE apps SET draft_version = $1 WHERE client_id = $2 AND draft_version = $3",
    )
    .bind(from + 1)
    .bind(client_id)
    .bind(from)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    record(tx, client_id, from + 1, draft, fields, actor, now).await?;
    Ok(true)
}

/// Keeps `draft` as version `version` (1 when an app is registered).
pub async fn record(
    tx: &mut Tx<'_>,
    client_id: &str,
    version: i64,
    draft: &AppDraft,
    fields: &[String],
    actor: &str,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO app_draft_versions (client_id, version, draft, fields, actor, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(client_id)
    .bind(version)
    .bind(serde_json::to_string(draft).unwrap_or_else(|_| "{}".into()))
    .bind(serde_json::to_string(fields).unwrap_or_else(|_| "[]".into()))
    .bind(actor)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One kept version.
#[derive(Debug, Clone, FromRow)]
pub struct Version {
    pub version: i64,
    pub draft: String,
    pub fields: String,
    pub actor: String,
    pub at: Timestamp,
}

impl Version {
    pub fn draft(&self) -> AppDraft {
        serde_json::from_str(&self.draft).unwrap_or_default()
    }

    pub fn fields(&self) -> Vec<String> {
        serde_json::from_str(&self.fields).unwrap_or_default()
    }
}

/// The versions after `after`, oldest first, and `after` itself (first, when kept).
pub async fn since(db: &Db, client_id: &str, after: i64) -> Result<Vec<Version>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as(
        "SELECT version, draft, fields, actor, at FROM app_draft_versions
         WHERE client_id = $1 AND version >= $2 ORDER BY version",
    )
    .bind(client_id)
    .bind(after)
    .fetch_all(pool)
    .await
}
