//! Direct SQLite reads for the hottest lookups (introspection, client authentication).
//!
//! sqlx runs every SQLite statement on a worker thread of its own and hands the rows back over a
//! channel: two thread wake-ups per query, which cost more than the query itself (an indexed
//! lookup in SQLite takes a few microseconds). The lookups that sit on every resource server's
//! request path therefore read the SQLite file directly on the calling thread, through a small
//! set of `query_only` connections. They see every committed write at once, like the pool (WAL
//! readers see the last commit when their statement starts), so nothing here is a cache.
//!
//! Writes, transactions and everything else still go through sqlx, and PostgreSQL is untouched:
//! on PostgreSQL the same functions use the pipelined connections or the pool (`fast::rows`).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::store::rows::RowSource;

/// How many idle connections are kept; more can be open briefly under load.
const KEEP_IDLE: usize = 8;

pub struct DirectReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for DirectReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectReads")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A rusqlite error, as the sqlx error the rest of the store returns.
pub fn driver_error(e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::AnyDriverError(Box::new(e))
}

impl DirectReads {
    /// Readers of the database file at `path` (which sqlx has already created and migrated).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Read-write open so the WAL index can be used, but no statement may write.
        conn.pragma_update(None, "query_only", true)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// Runs `f` on an idle connection (opening one if none is idle), on this thread.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, sqlx::Error> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open().map_err(driver_error)?,
        };
        let result = f(&conn);
        // A connection whose statement failed for a reason other than the query's own (the file
        // went away, I/O error) is dropped rather than reused.
        let healthy = match &result {
            Ok(_) => true,
            Err(rusqlite::Error::SqliteFailure(e, _)) => !matches!(
                e.code,
                rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::NotADatabase
                    | rusqlite::ErrorCode::DatabaseCorrupt
            ),
            Err(_) => true,
        };
        if healthy {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < KEEP_IDLE {
                idle.push(conn);
            }
        }
        result.map_err(driver_error)
    }
}

/// Checkpoints the WAL in the background every `every`, so that commits do not pay for it:
/// otherwise the commit that crosses SQLite's auto-checkpoint threshold copies the WAL into the
/// database file and waits for its fsync while the writer's queue stands still. (The writer
/// keeps a high auto-checkpoint threshold as a safety net should this task fall behind.)
pub fn spawn_checkpointer(path: PathBuf, every: Duration) {
    let conn = match Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .and_then(|c| c.busy_timeout(Duration::from_secs(1)).map(|()| c))
    {
        Ok(c) => std::sync::Arc::new(Mutex::new(c)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the database for background checkpoints; SQLite's automatic ones remain");
            return;
        }
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let conn = conn.clone();
            let done = tokio::task::spawn_blocking(move || {
                let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
            })
            .await;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "background WAL checkpoint failed; will retry")
                }
                Err(e) => tracing::warn!(error = %e, "background WAL checkpoint panicked"),
            }
        }
    });
}

impl RowSource for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn column_name(&self, i: usize) -> Option<&str> {
        self.as_ref().column_name(i).ok()
    }

    fn text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }

    fn int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }

    fn unexpected_null(&self, i: usize) -> rusqlite::Error {
        rusqlite::Error::InvalidColumnType(
            i,
            RowSource::column_name(self, i).unwrap_or("?").to_string(),
            rusqlite::types::Type::Null,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_another_connection_committed_and_refuses_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).expect("open");
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER);")
            .expect("schema");
        let reads = DirectReads::new(path);
        let count = |r: &DirectReads| {
            r.read(|c| c.query_row("SELECT COUNT(*) FROM t", [], |row| row.get::<_, i64>(0)))
                .expect("count")
        };
        assert_eq!(count(&reads), 0);
        writer
            .execute("INSERT INTO t VALUES (1)", [])
            .expect("insert");
        assert_eq!(count(&reads), 1, "a commit is seen by the next read");
        let write = reads.read(|c| c.execute("INSERT INTO t VALUES (2)", []));
        assert!(write.is_err(), "direct connections are query_only");
        assert_eq!(count(&reads), 1);
    }
}
