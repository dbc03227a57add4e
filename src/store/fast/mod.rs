//! The fast paths of the hottest lookups and of the token writes, behind the store functions
//! that use them (`apps::by_client_id`, `tokens::status`, `tokens::resource_server_and_status`,
//! and the token writer that `tokens::insert_many` serves): callers never pick a path.
//!
//! - [`direct`]: SQLite reads on the calling thread, through rusqlite, each connection keeping
//!   its lookups' rows until anything is committed anywhere (`PRAGMA data_version`).
//! - [`pipeline`]: PostgreSQL reads over a few shared, pipelined tokio-postgres connections.
//! - [`changes`]: on PostgreSQL, what those lookups made of their rows, kept until a change is
//!   committed anywhere (migration 0019's notifications tell every instance).
//! - [`token_writer`]: group commit of issued access tokens, inline through rusqlite on SQLite.
//!
//! Each falls back to sqlx's pool when it cannot serve, and `DatabaseUrl::plain_sqlx` turns all
//! of them off, so that the tests cover that plain path too. Rows are decoded by one function
//! per row type on every path (`store::rows`).

pub mod changes;
pub mod direct;
pub mod pipeline;
pub mod token_writer;

use super::Db;
use super::rows::RowSource;

/// A row one of the hot lookups returns, decoded by position from any path's rows.
pub(crate) trait HotRow: Sized + Send + Unpin {
    /// The row's columns, starting at column `offset`.
    fn read_at<R: RowSource>(r: &R, offset: usize) -> Result<Self, R::Error>;

    fn read<R: RowSource>(r: &R) -> Result<Self, R::Error> {
        Self::read_at(r, 0)
    }
}

/// The names SQLite gives `$1`, `$2`… (they are named parameters there, bound by name since a
/// query may name them out of order).
const PARAM_NAMES: [&str; 4] = ["$1", "$2", "$3", "$4"];

/// What `finish` makes of the rows of one hot lookup, `sql` with `$1`, `$2`… bound to
/// `params` in order: read directly on SQLite (where the connection keeps what `finish` made
/// until anything is committed anywhere: `direct`), on the pipelined connections on PostgreSQL
/// (where the instance keeps it until a change to a table the lookups read is committed
/// anywhere: `changes`), and through the pool when neither can serve. With `batch`, lookups waiting at the same moment
/// on PostgreSQL go out as one statement (`Pipeline::batched_rows`), whose first column says
/// which lookup a row answers. `finish` must depend on the rows alone.
pub(crate) async fn rows_then<T: HotRow, V: Clone + Send + Sync + 'static>(
    db: &Db,
    sql: &'static str,
    batch: Option<&'static str>,
    params: &[&str],
    finish: fn(Vec<T>) -> V,
) -> Result<V, sqlx::Error> {
    if params.len() > PARAM_NAMES.len() {
        return Err(sqlx::Error::Protocol(format!(
            "a hot lookup takes at most {} parameters",
            PARAM_NAMES.len()
        )));
    }
    if let Some(direct) = &db.direct {
        return direct.cached(sql, params, finish as usize, |rows| {
            let mut read = Vec::new();
            while let Some(r) = rows.next()? {
                read.push(T::read(r)?);
            }
            Ok(finish(read))
        });
    }
    if let Some(changes) = &db.changes
        && let Some(sequence) = changes.sequence_now()
    {
        let key = direct::Key::new::<V>(sql, params, finish as usize);
        // A kept value is used once a check shows that no change committed before now is
        // pending (see `changes`).
        if changes.holds(&key, sequence)
            && changes.checked().await == Some(sequence)
            && let Some(value) = changes.get::<V>(&key, sequence)
        {
            return Ok(value);
        }
        // Kept under the sequence from before the query goes out.
        let before = changes.sequence_now();
        let value = rows(db, sql, batch, params).await.map(finish)?;
        if let Some(sequence) = before {
            changes.keep(key, sequence, value.clone());
        }
        return Ok(value);
    }
    rows(db, sql, batch, params).await.map(finish)
}

/// The rows of one hot lookup on PostgreSQL's pipelined connections or through the pool (the
/// direct SQLite readers are `rows_then`'s).
async fn rows<T: HotRow>(
    db: &Db,
    sql: &'static str,
    batch: Option<&'static str>,
    params: &[&str],
) -> Result<Vec<T>, sqlx::Error> {
    if let Some(pipeline) = &db.pipeline {
        let answer = match batch {
            Some(batch_sql) => {
                pipeline
                    .batched_rows(batch_sql, params, |r| T::read_at(r, 1))
                    .await
            }
            None => pipeline.rows(sql, params, |r| T::read(r)).await,
        };
        if let Some(rows) = answer {
            return rows;
        }
    }
    db.count_pool_lookup();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for p in params {
        query = query.bind(*p);
    }
    query
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| T::read(r))
        .collect()
}
