//! All SQL lives below this module. One code path serves both backends through sqlx's `Any`
//! driver: queries use `$N` placeholders (which SQLite accepts too), timestamps are integer
//! seconds and booleans integers, so every column decodes the same way on both.

pub mod access_causes;
pub mod apps;
pub mod assertions;
pub mod audit;
pub mod auth_requests;
pub mod codes;
pub mod dpop;
pub mod draft_versions;
pub mod fast;
pub mod grant_events;
pub mod grants;
pub mod keys;
pub mod login_attempts;
pub mod logout;
pub mod outbox;
pub mod partners;
pub mod purge;
pub mod pushed_requests;
pub mod refresh_tokens;
pub mod resource_servers;
pub mod reviews;
pub mod rows;
pub mod sessions;
pub mod tls;
pub mod tokens;
pub mod users;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use crate::config::{Backend, DatabaseUrl};
use fast::{changes, direct, pipeline};

pub use fast::changes::APPLICATION_NAME as CHANGE_LISTENER_NAME;
pub use fast::token_writer::TokenWriter;

pub type Pool = AnyPool;
pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The database: a pool and which backend it is.
#[derive(Clone, Debug)]
pub struct Db {
    /// Reads (and, on PostgreSQL, everything).
    pub(in crate::store) pool: Pool,
    /// Writes and transactions. On SQLite one connection, so writers queue here in order
    /// instead of sleeping in SQLite's busy handler, and its page cache stays warm; on
    /// PostgreSQL the same pool as `pool`.
    pub(in crate::store) writer: Pool,
    pub(in crate::store) backend: Backend,
    /// SQLite only: readers on the calling thread for the hottest lookups (see `fast::direct`).
    pub(in crate::store) direct: Option<Arc<direct::DirectReads>>,
    /// PostgreSQL only: pipelined connections for the same lookups (see `fast::pipeline`).
    pub(in crate::store) pipeline: Option<Arc<pipeline::Pipeline>>,
    /// PostgreSQL only, with `pipeline`: what those lookups made of their rows, kept until a
    /// change is committed anywhere (see `fast::changes`).
    pub(in crate::store) changes: Option<Arc<changes::Changes>>,
    /// `DatabaseUrl::plain_sqlx`: no fast path at all, every query through sqlx.
    plain: bool,
    /// Hot lookups (those `direct` or `pipeline` can serve) that the pool answered.
    pool_lookups: Arc<AtomicU64>,
    /// Tasks waiting in [`Db::begin`] for the writer (a metric).
    waiting: Arc<AtomicU64>,
}

/// One connection pool's connections, for the metrics.
#[derive(Debug, Clone)]
pub struct PoolStats {
    /// `read` and `write` on SQLite; `shared` on PostgreSQL (one pool serves both).
    pub name: &'static str,
    pub in_use: u64,
    pub idle: u64,
}

fn pool_stats(name: &'static str, pool: &Pool) -> PoolStats {
    let idle = u64::try_from(pool.num_idle()).unwrap_or(u64::MAX);
    PoolStats {
        name,
        in_use: u64::from(pool.size()).saturating_sub(idle),
        idle,
    }
}

/// Decrements the waiting count when dropped: also when the waiting request is cancelled.
struct Waiting<'a>(&'a AtomicU64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Db {
    /// Connects (creating a SQLite file and its folder when missing) and runs the migrations.
    pub async fn connect(url: &DatabaseUrl) -> anyhow::Result<Self> {
        install_default_drivers();
        let backend = url.backend();
        let db = match backend {
            Backend::Sqlite => {
                if let Some(parent) = url
                    .sqlite_path()
                    .and_then(|p| p.parent().map(|p| p.to_owned()))
                    && !parent.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(&parent).map_err(|e| {
                        anyhow::anyhow!("cannot create the folder {}: {e}", parent.display())
                    })?;
                }
                if let Some(path) = url.sqlite_path() {
                    private_sqlite_files(&path).map_err(|e| {
                        anyhow::anyhow!("cannot create the database {}: {e}", path.display())
                    })?;
                }
                let raw = url.expose();
                let with_mode = if raw.contains("mode=") {
                    raw.to_string()
                } else if raw.contains('?') {
                    format!("{raw}&mode=rwc")
                } else {
                    format!("{raw}?mode=rwc")
                };
                let pool = sqlite_pool(url.pool_size).connect(&with_mode).await?;
                let writer = sqlite_pool(1).connect(&with_mode).await?;
                // (In-memory databases are refused when the URL is parsed.)
                let direct = url
                    .sqlite_path()
                    .filter(|_| !url.plain_sqlx)
                    .map(|p| Arc::new(direct::DirectReads::new(p)));
                Self {
                    pool,
                    writer,
                    backend,
                    direct,
                    pipeline: None,
                    changes: None,
                    plain: url.plain_sqlx,
                    pool_lookups: Arc::default(),
                    waiting: Arc::default(),
                }
            }
            Backend::Postgres => {
                // sqlx reads sslmode and sslrootcert from the URL itself; the pipelined
                // connections get the same settings from here. Reading them first stops a bad
                // value or root certificate file with its own message.
                let tls = tls::PgTls::from_url(url.expose()).map_err(anyhow::Error::msg)?;
                tls.client_config().map_err(anyhow::Error::msg)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(url.pool_size)
                    .acquire_timeout(Duration::from_secs(10))
                    .test_before_acquire(false)
                    .connect(url.expose())
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "cannot connect to PostgreSQL (sslmode={}): {e}",
                            tls.mode.as_str()
                        )
                    })?;
                let pipeline = if url.plain_sqlx {
                    None
                } else {
                    match pipeline::Pipeline::new(url.expose(), pipelined_connections()) {
                        Ok(p) => Some(Arc::new(p)),
                        Err(why) => {
                            tracing::info!(reason = %why, "hot lookups use the pool: tokio-postgres cannot read the database URL");
                            None
                        }
                    }
                };
                let changes = pipeline.as_ref().map(|p| Arc::new(p.changes()));
                Self {
                    writer: pool.clone(),
                    pool,
                    backend,
                    direct: None,
                    pipeline,
                    changes,
                    plain: url.plain_sqlx,
                    pool_lookups: Arc::default(),
                    waiting: Arc::default(),
                }
            }
        };
        db.migrate().await?;
        Ok(db)
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        self.migrator().run(&self.writer).await?;
        Ok(())
    }

    /// How many of this binary's migrations the database has not applied (readiness: an
    /// instance of a newer version waits until the schema is its own).
    pub async fn migrations_pending(&self) -> Result<usize, sqlx::Error> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = true")
                .fetch_all(&self.pool)
                .await?;
        Ok(self
            .migrator()
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .count())
    }

    /// A transaction on the writer.
    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        self.writer.begin().await
    }

    /// The pools' connections, in use and idle.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        match self.backend {
            Backend::Sqlite => vec![
                pool_stats("read", &self.pool),
                pool_stats("write", &self.writer),
            ],
            Backend::Postgres => vec![pool_stats("shared", &self.pool)],
        }
    }

    /// Tasks waiting for the writer to start a transaction.
    pub fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Starts the writer of issued access tokens (see `fast::token_writer`): batches written inline on
    /// SQLite (unless `plain_sqlx`), one sqlx writer task on SQLite and four on PostgreSQL,
    /// which commits in parallel.
    pub fn spawn_token_writer(&self, url: &DatabaseUrl) -> TokenWriter {
        let workers = if self.backend == Backend::Sqlite {
            1
        } else {
            4
        };
        let inline = url.sqlite_path().filter(|_| !self.plain);
        TokenWriter::spawn(
            self.writer.clone(),
            self.backend,
            workers,
            inline.as_deref(),
        )
    }

    /// On SQLite, checkpoints the WAL in the background (see `fast::direct::spawn_checkpointer`).
    pub fn spawn_checkpointer(&self, url: &DatabaseUrl) {
        if let Some(path) = url.sqlite_path() {
            direct::spawn_checkpointer(path, Duration::from_millis(500));
        }
    }

    /// How many hot lookups (app by client id, token status, resource server and token) the
    /// pool answered rather than the direct SQLite readers or the pipelined connections: all of
    /// them with `plain_sqlx`, none on SQLite otherwise.
    pub fn pool_lookups(&self) -> u64 {
        self.pool_lookups.load(Ordering::Relaxed)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the direct SQLite readers serve the hot lookups (SQLite, unless `plain_sqlx`).
    pub fn reads_directly(&self) -> bool {
        self.direct.is_some()
    }

    /// How many hot lookups the direct SQLite readers answered from a connection's cache (see
    /// `fast::direct`); `None` when they do not serve (PostgreSQL, or `plain_sqlx`).
    pub fn direct_cache_hits(&self) -> Option<u64> {
        self.direct.as_ref().map(|d| d.cache_hits())
    }

    /// How many hot lookups PostgreSQL's instance cache answered (see `fast::changes`); `None`
    /// when it does not serve (SQLite, or `plain_sqlx`).
    pub fn changes_cache_hits(&self) -> Option<u64> {
        self.changes.as_ref().map(|c| c.hits())
    }

    /// How many hot lookups the pipelined PostgreSQL connections answered; `None` when there
    /// are none (SQLite, or `plain_sqlx`).
    pub fn pipelined_lookups(&self) -> Option<u64> {
        self.pipeline.as_ref().map(|p| p.served())
    }

    /// Counts a hot lookup the pool answers (see [`Db::pool_lookups`]).
    pub(crate) fn count_pool_lookup(&self) {
        self.pool_lookups.fetch_add(1, Ordering::Relaxed);
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// Pipelined connections per instance for the hottest PostgreSQL lookups: one per two cores
/// this process may run on. Each carries many queries at once, and the fewer there are, the more
/// queries PostgreSQL reads per wake-up (on the benchmark's single core, one connection served
/// 31k lookups a second and two 26k); more than one lets a large instance keep more than one
/// PostgreSQL backend busy.
fn pipelined_connections() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2))
}

/// The SQLite database readable by this user only (0600): it holds password hashes, token
/// hashes and sessions. The file is made 0600 before SQLite opens it, and SQLite gives its
/// `-wal` and `-shm` files the database file's mode. Files found open to others (a database
/// from before, say) are closed where they can be, with a warning either way.
fn private_sqlite_files(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let file = std::path::PathBuf::from(file);
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                let shown = format!("{:o}", mode & 0o777);
                match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                    Ok(()) => {
                        tracing::warn!(file = %file.display(), mode = shown, "a database file was open to other users: set it to 0600")
                    }
                    Err(e) => {
                        tracing::warn!(file = %file.display(), mode = shown, error = %e, "a database file is open to other users and cannot be closed")
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn sqlite_pool(size: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(10))
        // A pinged connection costs a round trip per query; a broken one fails that query and
        // the pool replaces it.
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // WAL lets readers run beside the one writer; NORMAL sync is safe with WAL (a
                // crash can lose the last commits, never corrupt).
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                // Checkpoints run in the background (`fast::direct::spawn_checkpointer`); this
                // threshold (40 MB of WAL) is only a safety net.
                conn.execute("PRAGMA wal_autocheckpoint = 10000").await?;
                Ok(())
            })
        })
}

/// True when `e` is a unique-constraint violation (turned into a client error where it happens).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.code().as_deref() == Some("23505")
                || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}
