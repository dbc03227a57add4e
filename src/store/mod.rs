//! All SQL lives below this module. One code path serves both backends through sqlx's `Any`
//! driver: queries use `$N` placeholders (which SQLite accepts too), timestamps are integer
//! seconds and booleans integers, so every column decodes the same way on both.

pub mod apps;
pub mod assertions;
pub mod auth_requests;
pub mod codes;
pub mod grants;
pub mod login_attempts;
pub mod purge;
pub mod refresh_tokens;
pub mod resource_servers;
pub mod sessions;
pub mod token_writer;
pub mod tokens;
pub mod users;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use crate::config::{Backend, DatabaseUrl};

pub type Pool = AnyPool;
pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The database: a pool and which backend it is.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: Pool,
    pub backend: Backend,
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
                let raw = url.expose();
                let with_mode = if raw.contains("mode=") {
                    raw.to_string()
                } else if raw.contains('?') {
                    format!("{raw}&mode=rwc")
                } else {
                    format!("{raw}?mode=rwc")
                };
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the one writer; NORMAL sync is safe
                            // with WAL (a crash can lose the last commits, never corrupt).
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            Ok(())
                        })
                    })
                    .connect(&with_mode)
                    .await?;
                Self { pool, backend }
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url.expose())
                    .await?;
                Self { pool, backend }
            }
        };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        self.pool.begin().await
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
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
