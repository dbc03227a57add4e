//! Direct SQLite reads for the hottest lookups (introspection, client authentication).
//!
//! sqlx runs every SQLite statement on a worker thread of its own and hands the rows back over a
//! channel: two thread wake-ups per query, which cost more than the query itself (an indexed
//! lookup in SQLite takes a few microseconds). The lookups that sit on every resource server's
//! request path therefore read the SQLite file directly on the calling thread, through a small
//! set of `query_only` connections.
//!
//! Each connection keeps what its recent lookups made of their rows ([`DirectReads::cached`]:
//! the decoded app, the token's status), and keeps it only while the database is unchanged: before every lookup it asks SQLite for
//! `PRAGMA data_version`, which moves whenever any other connection, in this process or any
//! other (another instance, the CLI), has committed, and on a move it empties its cache. These
//! connections never write, so every commit anywhere moves it: a revocation, a suspension or a
//! consent change committed before a lookup starts is seen by that lookup, exactly as without
//! the cache. What the cache saves is the query (a joined, indexed read of a few b-trees) and the
//! decoding of its rows (an app's JSON columns among them) when nothing at all was committed in
//! between, which is what an introspection-heavy load looks like
//! between writes.
//!
//! Writes, transactions and everything else still go through sqlx, and PostgreSQL is untouched:
//! on PostgreSQL the same functions use the pipelined connections or the pool (`fast::rows`).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Rows};

use crate::store::rows::RowSource;

/// How many idle connections are kept; more can be open briefly under load.
const KEEP_IDLE: usize = 8;

/// How many lookups one connection keeps the rows of; a full cache is emptied (so memory stays
/// bounded, at a few MiB per connection, whatever tokens are presented).
const CACHED_LOOKUPS: usize = 2048;

pub struct DirectReads {
    path: PathBuf,
    idle: Mutex<Vec<Reader>>,
    /// Lookups answered from a connection's cache.
    hits: std::sync::atomic::AtomicU64,
}

/// A lookup: its query (a `'static` text, known by its address and length), what its rows are
/// made into (the type, and the function's address), and its parameters.
/// (PostgreSQL's cache, `fast::changes`, keys its lookups the same way.)
#[derive(PartialEq, Eq, Hash)]
pub(super) struct Key {
    sql: (usize, usize),
    made: (TypeId, usize),
    params: Vec<String>,
}

impl Key {
    pub(super) fn new<V: 'static>(sql: &'static str, params: &[&str], made: usize) -> Self {
        Self {
            sql: (sql.as_ptr() as usize, sql.len()),
            made: (TypeId::of::<V>(), made),
            params: params.iter().map(|p| (*p).to_string()).collect(),
        }
    }
}

/// One connection and what its lookups made of their rows since the database last changed.
struct Reader {
    conn: Connection,
    /// `PRAGMA data_version` when `cache` was last known to be current.
    version: Option<i64>,
    cache: HashMap<Key, Arc<dyn Any + Send + Sync>>,
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
            hits: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn open(&self) -> rusqlite::Result<Reader> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Read-write open so the WAL index can be used, but no statement may write.
        conn.pragma_update(None, "query_only", true)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Reader {
            conn,
            version: None,
            cache: HashMap::new(),
        })
    }

    /// Runs `f` on an idle connection (opening one if none is idle), on this thread.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, sqlx::Error> {
        self.with_reader(|r| f(&r.conn))
    }

    /// What `make` makes of the rows of `sql` with `$1`, `$2`… bound to `params`: from this
    /// connection's cache when no commit has been made anywhere since it was made, otherwise
    /// made now (and kept). `made` names what `make` does (a function's address): lookups of one
    /// query made into the same type by different functions are kept apart.
    pub fn cached<V: Clone + Send + Sync + 'static>(
        &self,
        sql: &'static str,
        params: &[&str],
        made: usize,
        make: impl FnOnce(&mut Rows<'_>) -> rusqlite::Result<V>,
    ) -> Result<V, sqlx::Error> {
        self.with_reader(|r| {
            let (value, hit) = r.lookup(sql, params, made, make)?;
            if hit {
                self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(value)
        })
    }

    /// How many lookups a connection's cache has answered.
    pub fn cache_hits(&self) -> u64 {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&mut Reader) -> rusqlite::Result<T>,
    ) -> Result<T, sqlx::Error> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => self.open().map_err(driver_error)?,
        };
        let result = f(&mut conn);
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

impl Reader {
    /// Empties the cache if anything was committed since it was last current. The version is
    /// read before the lookup that follows, so rows read after a commit it missed are kept under
    /// the older version and dropped at the next check: never kept past a commit.
    fn check_version(&mut self) -> rusqlite::Result<()> {
        let now: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.version != Some(now) {
            self.cache.clear();
            self.version = Some(now);
        }
        Ok(())
    }

    /// The value, and whether it came from the cache.
    fn lookup<V: Clone + Send + Sync + 'static>(
        &mut self,
        sql: &'static str,
        params: &[&str],
        made: usize,
        make: impl FnOnce(&mut Rows<'_>) -> rusqlite::Result<V>,
    ) -> rusqlite::Result<(V, bool)> {
        self.check_version()?;
        let key = Key::new::<V>(sql, params, made);
        if let Some(value) = self.cache.get(&key).and_then(|v| v.downcast_ref::<V>()) {
            return Ok((value.clone(), true));
        }
        let named: Vec<(&str, &dyn rusqlite::ToSql)> = super::PARAM_NAMES
            .iter()
            .zip(params)
            .map(|(name, p)| (*name, p as &dyn rusqlite::ToSql))
            .collect();
        let mut statement = self.conn.prepare_cached(sql)?;
        let mut rows = statement.query(named.as_slice())?;
        let value = make(&mut rows)?;
        drop(rows);
        drop(statement);
        if self.cache.len() >= CACHED_LOOKUPS {
            self.cache.clear();
        }
        self.cache.insert(key, Arc::new(value.clone()));
        Ok((value, false))
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

    const LOOKUP: &str = "SELECT v, name FROM t WHERE id = $1";

    fn lookup(reads: &DirectReads, id: &str) -> Vec<(i64, Option<String>)> {
        reads
            .cached(LOOKUP, &[id], 0, |rows| {
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push((r.get(0)?, r.get(1)?));
                }
                Ok(out)
            })
            .expect("lookup")
    }

    /// A WAL database with table `t` holding `rows` (SQL values), and a writer on it.
    fn database(rows: &str) -> (tempfile::TempDir, PathBuf, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).expect("open");
        writer
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (id TEXT PRIMARY KEY, v INTEGER, name TEXT);
                 CREATE TABLE other (x INTEGER);
                 INSERT INTO t VALUES {rows};"
            ))
            .expect("schema");
        (dir, path, writer)
    }

    #[test]
    fn cached_rows_are_kept_only_until_anything_is_committed() {
        let (_dir, path, writer) = database("('a', 1, 'one'), ('b', 2, NULL)");
        let reads = DirectReads::new(path.clone());
        assert_eq!(lookup(&reads, "a"), vec![(1, Some("one".into()))]);
        assert_eq!(lookup(&reads, "b"), vec![(2, None)]);
        assert_eq!(lookup(&reads, "z"), vec![]);
        assert_eq!(reads.cache_hits(), 0);
        assert_eq!(lookup(&reads, "a"), vec![(1, Some("one".into()))]);
        assert_eq!(lookup(&reads, "z"), vec![]);
        assert_eq!(reads.cache_hits(), 2, "unchanged: answered from the cache");
        // The same lookup made into something else by another function is its own entry.
        let count = reads
            .cached(LOOKUP, &["a"], 1, |rows| {
                let mut n = 0_i64;
                while rows.next()?.is_some() {
                    n += 1;
                }
                Ok(n)
            })
            .expect("count");
        assert_eq!(count, 1);
        assert_eq!(reads.cache_hits(), 2);

        // A commit by another connection is seen by the very next lookup, even one of rows it
        // did not touch being cached (any commit empties the cache).
        writer
            .execute("UPDATE t SET v = 10 WHERE id = 'a'", [])
            .expect("update");
        assert_eq!(lookup(&reads, "a"), vec![(10, Some("one".into()))]);
        writer
            .execute("INSERT INTO t VALUES ('z', 26, 'zed')", [])
            .expect("insert");
        assert_eq!(lookup(&reads, "z"), vec![(26, Some("zed".into()))]);
        writer
            .execute("INSERT INTO other VALUES (1)", [])
            .expect("other");
        assert_eq!(lookup(&reads, "b"), vec![(2, None)]);
        assert_eq!(
            reads.cache_hits(),
            2,
            "every lookup after a commit was read again"
        );

        // A second writer (as another process would be) moves it too; a transaction still open
        // does not, and its commit does.
        let second = Connection::open(&path).expect("second");
        second
            .execute("DELETE FROM t WHERE id = 'b'", [])
            .expect("delete");
        assert_eq!(lookup(&reads, "b"), vec![]);
        second
            .execute_batch("BEGIN; UPDATE t SET v = 11 WHERE id = 'a';")
            .expect("begin");
        assert_eq!(lookup(&reads, "a"), vec![(10, Some("one".into()))]);
        second.execute_batch("COMMIT").expect("commit");
        assert_eq!(lookup(&reads, "a"), vec![(11, Some("one".into()))]);
    }

    #[test]
    fn a_full_cache_is_emptied_and_keeps_answering() {
        let (_dir, path, _writer) = database("('a', 1, 'one')");
        let reads = DirectReads::new(path);
        for i in 0..CACHED_LOOKUPS + 10 {
            assert_eq!(lookup(&reads, &format!("missing-{i}")), vec![]);
        }
        let idle = reads.idle.lock().unwrap();
        assert!(idle.iter().all(|r| r.cache.len() <= CACHED_LOOKUPS));
        drop(idle);
        assert_eq!(lookup(&reads, "a"), vec![(1, Some("one".into()))]);
    }
}
