//! Group commit for issued access tokens. Token requests that arrive together share one
//! transaction (one WAL commit on SQLite, one fsync on PostgreSQL) instead of paying for one
//! each; a lone request is written at once, without waiting for company.
//!
//! On SQLite the batch is written on the runtime's own thread, through a rusqlite connection of
//! its own ([`Inline`]). Handing it to sqlx's worker thread instead cost a thread wake-up for
//! each of BEGIN, INSERT, COMMIT and the pool's release ping, and on a server with few cores
//! that worker preempted the runtime at every hand-off, so batches stayed one token long (`perf`
//! and the threads' context-switch counters showed it). A WAL commit with `synchronous =
//! NORMAL` does not fsync, so the batch costs about as much CPU as signing a token. The inline
//! writer never waits for SQLite's write lock: when another writer holds it (a consent, a
//! refresh rotation, the purge), or the connection is in use on another thread, or the write
//! fails, the batch goes to the sqlx writer task below, which queues for the lock as every other
//! write does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::config::Backend;
use crate::store::Pool;
use crate::store::tokens::{AccessToken, insert_batch_postgres, insert_many, insert_one_sql};

/// Rows written per transaction at most.
const MAX_BATCH: usize = 128;

struct Job {
    token_hash: String,
    token: AccessToken,
    done: oneshot::Sender<Result<(), String>>,
}

#[derive(Clone)]
pub struct TokenWriter {
    jobs: mpsc::Sender<Job>,
    inline: Option<Arc<Inline>>,
}

impl TokenWriter {
    /// Starts `workers` writer tasks on `pool` (one suits SQLite, which has one writer).
    /// `sqlite_path`: write batches inline on SQLite (see the module's documentation).
    pub fn spawn(pool: Pool, backend: Backend, workers: usize, sqlite_path: Option<&Path>) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>(4096);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for _ in 0..workers.max(1) {
            let (pool, rx) = (pool.clone(), rx.clone());
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut rx = rx.lock().await;
                        let Some(first) = rx.recv().await else { return };
                        let mut batch = vec![first];
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(job) => batch.push(job),
                                Err(_) => break,
                            }
                        }
                        batch
                    };
                    let result = write(&pool, backend, &batch)
                        .await
                        .map_err(|e| e.to_string());
                    finish(batch, result);
                }
            });
        }
        let inline = sqlite_path.map(|p| Arc::new(Inline::new(p.to_path_buf(), jobs.clone())));
        Self { jobs, inline }
    }

    /// Whether batches are written inline on SQLite (see the module's documentation).
    pub fn writes_inline(&self) -> bool {
        self.inline.is_some()
    }

    /// Writes one token; returns once it is committed.
    pub async fn insert(&self, token_hash: String, token: AccessToken) -> anyhow::Result<()> {
        let (done, wait) = oneshot::channel();
        let job = Job {
            token_hash,
            token,
            done,
        };
        match &self.inline {
            Some(inline) => inline.enqueue(job),
            None => self
                .jobs
                .send(job)
                .await
                .map_err(|_| anyhow::anyhow!("the token writer has stopped"))?,
        }
        wait.await
            .map_err(|_| anyhow::anyhow!("the token writer dropped a token"))?
            .map_err(|e| anyhow::anyhow!("writing an access token failed: {e}"))
    }
}

fn finish(batch: Vec<Job>, result: Result<(), String>) {
    for job in batch {
        let _ = job.done.send(result.clone());
    }
}

async fn write(pool: &Pool, backend: Backend, batch: &[Job]) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, AccessToken)> = batch
        .iter()
        .map(|j| (j.token_hash.clone(), j.token.clone()))
        .collect();
    if backend == Backend::Postgres {
        return insert_batch_postgres(pool, &rows).await;
    }
    let mut tx = pool.begin().await?;
    insert_many(&mut tx, &rows).await?;
    tx.commit().await
}

/// The SQLite batch writer on the runtime's thread.
struct Inline {
    path: PathBuf,
    /// Opened on first use; `None` again after an I/O-level failure, so the next batch reopens.
    conn: std::sync::Mutex<Option<rusqlite::Connection>>,
    queue: std::sync::Mutex<Vec<Job>>,
    /// A flush task is scheduled and has not yet taken the queue.
    scheduled: AtomicBool,
    /// Where batches go when the write lock is taken.
    fallback: mpsc::Sender<Job>,
}

/// How a batch went. Unless committed, nothing of it was written.
enum Outcome {
    Committed,
    /// The write lock or the connection was busy.
    Busy,
    Failed(String),
}

impl Inline {
    fn new(path: PathBuf, fallback: mpsc::Sender<Job>) -> Self {
        Self {
            path,
            conn: std::sync::Mutex::new(None),
            queue: std::sync::Mutex::new(Vec::new()),
            scheduled: AtomicBool::new(false),
            fallback,
        }
    }

    fn enqueue(self: &Arc<Self>, job: Job) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(job);
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            tokio::spawn(async move { this.flush().await });
        }
    }

    async fn flush(self: Arc<Self>) {
        // Let the requests that are ready now mint their tokens first, so they share the commit.
        tokio::task::yield_now().await;
        self.scheduled.store(false, Ordering::Release);
        let batch: Vec<Job> =
            std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return;
        }
        match self.write(&batch) {
            Outcome::Committed => return finish(batch, Ok(())),
            Outcome::Busy => {}
            // Nothing was committed, so the sqlx writer can try: it waits for the lock, and its
            // error (if the database really is broken) is the one the requests get.
            Outcome::Failed(e) => {
                tracing::warn!(error = %e, "writing tokens inline failed; the sqlx writer takes the batch")
            }
        }
        for job in batch {
            if let Err(mpsc::error::SendError(job)) = self.fallback.send(job).await {
                let _ = job.done.send(Err("the token writer has stopped".into()));
            }
        }
    }

    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // The same settings as the pool's connections (they are per connection), except that
        // this one never waits for the lock.
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = 10000;",
        )?;
        conn.busy_timeout(std::time::Duration::ZERO)?;
        Ok(conn)
    }

    fn write(&self, batch: &[Job]) -> Outcome {
        let Ok(mut slot) = self.conn.try_lock() else {
            return Outcome::Busy;
        };
        if slot.is_none() {
            match self.open() {
                Ok(c) => *slot = Some(c),
                Err(e) => return Outcome::Failed(e.to_string()),
            }
        }
        let Some(conn) = slot.as_mut() else {
            return Outcome::Busy;
        };
        match insert_inline(conn, batch) {
            Ok(()) => Outcome::Committed,
            // (A failed transaction has been rolled back when it was dropped.)
            Err(e) => match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if matches!(
                        f.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) =>
                {
                    Outcome::Busy
                }
                rusqlite::Error::SqliteFailure(f, msg)
                    if matches!(
                        f.code,
                        rusqlite::ErrorCode::SystemIoFailure
                            | rusqlite::ErrorCode::CannotOpen
                            | rusqlite::ErrorCode::NotADatabase
                            | rusqlite::ErrorCode::DatabaseCorrupt
                    ) =>
                {
                    *slot = None;
                    Outcome::Failed(msg.unwrap_or_else(|| f.to_string()))
                }
                other => Outcome::Failed(other.to_string()),
            },
        }
    }
}

fn insert_inline(conn: &mut rusqlite::Connection, batch: &[Job]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(insert_one_sql())?;
        for job in batch {
            let t = &job.token;
            stmt.execute(rusqlite::params![
                job.token_hash,
                t.jti,
                t.client_id,
                t.user_id,
                t.grant_id,
                t.family_id,
                t.scope,
                t.audience,
                t.auth_time,
                t.issued_at,
                t.expires_at,
                t.revoked_at,
            ])?;
        }
    }
    tx.commit()
}
