//! PostgreSQL reads for the hottest lookups (introspection, client authentication), over a few
//! shared, pipelined connections (tokio-postgres).
//!
//! Through sqlx's pool each of these lookups cost two round trips: the query, then the ping
//! the pool sends on every connection it takes back (PostgreSQL wakes up, answers, onyx-id
//! wakes up), and a connection ran one query at a time. Here every request task sends its
//! query on a shared connection at once: the queries go out together, the server reads them in
//! one go and answers in order, and nothing is sent besides the queries. (What the lookups make
//! of the rows is kept by `fast::changes` until a change is committed anywhere.)
//!
//! The lookup every resource server makes on every request goes further
//! ([`Pipeline::batched_rows`]): the lookups waiting at the same moment become one statement,
//! because most of what PostgreSQL spends on such a join is setting up its executor, once per
//! statement however many rows it answers.
//!
//! Only these reads run here; everything else uses the pool. These connections speak TLS as the
//! pool does (`sslmode` and `sslrootcert` from the same URL, see `tls`). When the database URL
//! has options tokio-postgres does not know, or a connection cannot be made, the lookups go
//! through the pool instead.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::rows::RowSource;

pub struct Pipeline {
    config: Config,
    /// TLS as `sslmode` asks (never used when it is `disable`).
    tls: MakeRustlsConnect,
    slots: Vec<Slot>,
    next: AtomicUsize,
    /// When a lookup last fell back to the pool (Unix ms), so that it is logged once a minute
    /// rather than on every request.
    fell_back_at: AtomicU64,
    /// Queries answered here (not by the pool).
    served: AtomicU64,
    /// Batched lookups, by their statement.
    batches: Mutex<HashMap<&'static str, Arc<Batch>>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("connections", &self.slots.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Slot {
    current: Mutex<Option<Arc<Conn>>>,
    /// Held while (re)connecting, so a slot makes one connection at a time.
    connecting: tokio::sync::Mutex<()>,
    /// After a failed connection attempt, no other is made before this time (Unix ms): until
    /// then the lookups go straight to the pool.
    retry_at: AtomicU64,
}

/// How long a slot waits after a failed connection attempt.
const RETRY_AFTER_MS: u64 = 5_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct Conn {
    client: Client,
    /// Statements prepared on this connection, by their text.
    statements: Mutex<HashMap<&'static str, Statement>>,
}

/// Why a lookup did not run here; the caller then uses the pool.
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

type Answer = Result<Result<Vec<tokio_postgres::Row>, sqlx::Error>, Unavailable>;

/// Lookups waiting to go out together as one statement.
#[derive(Default)]
struct Batch {
    queue: Mutex<Vec<Waiting>>,
    /// A flush task is scheduled and has not yet taken the queue.
    scheduled: AtomicBool,
}

struct Waiting {
    params: Vec<String>,
    done: oneshot::Sender<Answer>,
}

/// Lookups per batched statement at most.
const MAX_BATCH: usize = 64;

impl Pipeline {
    /// `Err` (and why) when tokio-postgres cannot read the URL, or its `sslmode` and
    /// `sslrootcert` (read by `tls`, since tokio-postgres cannot) are unusable.
    pub fn new(url: &str, connections: usize) -> Result<Self, String> {
        use crate::store::tls::PgTls;
        let tls = PgTls::from_url(url)?;
        let mut config =
            Config::from_str(&PgTls::tokio_postgres_url(url)?).map_err(|e| e.to_string())?;
        config.ssl_mode(tls.tokio_postgres_mode());
        Ok(Self {
            config,
            tls: tls.connector()?,
            slots: (0..connections.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            fell_back_at: AtomicU64::new(0),
            served: AtomicU64::new(0),
            batches: Mutex::new(HashMap::new()),
        })
    }

    /// The change listener for the same database, with the same connection settings (see
    /// `fast::changes`).
    pub fn changes(&self) -> super::changes::Changes {
        super::changes::Changes::new(self.config.clone(), self.tls.clone())
    }

    async fn conn(&self) -> Result<Arc<Conn>, Unavailable> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let live = |slot: &Slot| {
            slot.current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .filter(|c| !c.client.is_closed())
        };
        if let Some(c) = live(slot) {
            return Ok(c);
        }
        if now_ms() < slot.retry_at.load(Ordering::Relaxed) {
            return Err(Unavailable("the last connection attempt failed".into()));
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(c) = live(slot) {
            return Ok(c);
        }
        let (client, connection) = match self.config.connect(self.tls.clone()).await {
            Ok(c) => c,
            Err(e) => {
                slot.retry_at
                    .store(now_ms() + RETRY_AFTER_MS, Ordering::Relaxed);
                return Err(Unavailable(format!("cannot connect: {e}")));
            }
        };
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "a pipelined PostgreSQL connection ended; the next lookup reconnects");
            }
        });
        let conn = Arc::new(Conn {
            client,
            statements: Mutex::new(HashMap::new()),
        });
        *slot.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `sql` (prepared once per connection) and returns its rows. `Err(Unavailable)` when
    /// no connection could be had or it closed under the query: the caller then asks the pool.
    /// Errors from the query itself are the caller's.
    async fn query(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Answer {
        let unavailable = |e: tokio_postgres::Error| Unavailable(e.to_string());
        let conn = self.conn().await?;
        let cached = conn
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
            .cloned();
        let statement = match cached {
            Some(s) => s,
            None => match conn.client.prepare(sql).await {
                Ok(s) => {
                    conn.statements
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(sql, s.clone());
                    s
                }
                Err(e) if e.is_closed() => return Err(unavailable(e)),
                Err(e) => return Ok(Err(driver_error(e))),
            },
        };
        match conn.client.query(&statement, params).await {
            Ok(rows) => {
                self.served.fetch_add(1, Ordering::Relaxed);
                Ok(Ok(rows))
            }
            Err(e) if e.is_closed() => Err(unavailable(e)),
            Err(e) => Ok(Err(driver_error(e))),
        }
    }

    /// How many queries ran here rather than on the pool.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Rows of `sql`, each read by `read`; `None` when the lookup must go through the pool.
    pub async fn rows<T>(
        &self,
        sql: &'static str,
        params: &[&str],
        read: impl Fn(&PgRow<'_>) -> Result<T, sqlx::Error>,
    ) -> Option<Result<Vec<T>, sqlx::Error>> {
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let answer = self.query(sql, &params).await;
        self.read_answer(answer, |rows| {
            rows.iter().map(|r| read(&PgRow(r))).collect()
        })
    }

    /// Like [`Pipeline::rows`], for a lookup that many requests make at once: the lookups that
    /// are waiting together go to PostgreSQL as one statement, which pays the executor's set-up
    /// (locks, plan nodes, projections: most of such a query's cost) once for all of them.
    /// `batch_sql` takes one text array per parameter (element `i` from the `i`th lookup) and
    /// returns, first, the column `n`: the 1-based position of the lookup a row answers. `read`
    /// reads a row from its second column on.
    pub async fn batched_rows<T>(
        self: &Arc<Self>,
        batch_sql: &'static str,
        params: &[&str],
        read: impl Fn(&PgRow<'_>) -> Result<T, sqlx::Error>,
    ) -> Option<Result<Vec<T>, sqlx::Error>> {
        let (done, answer) = oneshot::channel();
        let batch = self.batch(batch_sql);
        batch
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Waiting {
                params: params.iter().map(|p| p.to_string()).collect(),
                done,
            });
        if !batch.scheduled.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            tokio::spawn(async move { this.flush(batch_sql, batch).await });
        }
        let answer = answer
            .await
            .unwrap_or_else(|_| Err(Unavailable("the batch was dropped".into())));
        self.read_answer(answer, |rows| {
            rows.iter().map(|r| read(&PgRow(r))).collect()
        })
    }

    fn batch(&self, sql: &'static str) -> Arc<Batch> {
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(sql)
            .or_default()
            .clone()
    }

    async fn flush(self: Arc<Self>, sql: &'static str, batch: Arc<Batch>) {
        // Let the requests that are ready now queue their lookups first.
        tokio::task::yield_now().await;
        batch.scheduled.store(false, Ordering::Release);
        let waiting = std::mem::take(&mut *batch.queue.lock().unwrap_or_else(|p| p.into_inner()));
        let mut chunks = Vec::new();
        let mut rest = waiting;
        while rest.len() > MAX_BATCH {
            let tail = rest.split_off(MAX_BATCH);
            chunks.push(rest);
            rest = tail;
        }
        if !rest.is_empty() {
            chunks.push(rest);
        }
        // Chunks beyond the first run beside it, on the same pipelined connections.
        let mut chunks = chunks.into_iter();
        let first = chunks.next();
        for chunk in chunks {
            let this = self.clone();
            tokio::spawn(async move { this.run_batch(sql, chunk).await });
        }
        if let Some(chunk) = first {
            self.run_batch(sql, chunk).await;
        }
    }

    async fn run_batch(&self, sql: &'static str, waiting: Vec<Waiting>) {
        let columns = waiting.first().map_or(0, |w| w.params.len());
        let arrays: Vec<Vec<&str>> = (0..columns)
            .map(|c| {
                waiting
                    .iter()
                    .map(|w| w.params.get(c).map_or("", String::as_str))
                    .collect()
            })
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> =
            arrays.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        let rows = match self.query(sql, &params).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                let why = e.to_string();
                for w in waiting {
                    let _ = w.done.send(Ok(Err(sqlx::Error::Protocol(why.clone()))));
                }
                return;
            }
            Err(unavailable) => {
                for w in waiting {
                    let _ = w.done.send(Err(unavailable.clone()));
                }
                return;
            }
        };
        let mut each: Vec<Vec<tokio_postgres::Row>> = waiting.iter().map(|_| Vec::new()).collect();
        for row in rows {
            let n = row
                .try_get::<_, i64>(0)
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=each.len()).contains(n));
            match n {
                Some(n) => each[n - 1].push(row),
                None => {
                    let why = "a batched lookup returned a row that answers no lookup";
                    for w in waiting {
                        let _ = w.done.send(Ok(Err(sqlx::Error::Protocol(why.into()))));
                    }
                    return;
                }
            }
        }
        for (w, rows) in waiting.into_iter().zip(each) {
            let _ = w.done.send(Ok(Ok(rows)));
        }
    }

    /// A query's answer as the caller's rows, or `None` (logged) when it must use the pool.
    fn read_answer<T>(
        &self,
        answer: Answer,
        read: impl FnOnce(&[tokio_postgres::Row]) -> Result<Vec<T>, sqlx::Error>,
    ) -> Option<Result<Vec<T>, sqlx::Error>> {
        match answer {
            Ok(Ok(rows)) => Some(read(&rows)),
            Ok(Err(e)) => Some(Err(e)),
            Err(Unavailable(why)) => {
                let now = now_ms();
                let last = self.fell_back_at.swap(now, Ordering::Relaxed);
                if now.saturating_sub(last) >= 60_000 {
                    tracing::warn!(reason = %why, "pipelined PostgreSQL lookups are unavailable; using the pool");
                }
                None
            }
        }
    }
}

fn driver_error(e: tokio_postgres::Error) -> sqlx::Error {
    sqlx::Error::AnyDriverError(Box::new(e))
}

/// A tokio-postgres row, read by position like the SQLite rows (`rows::Columns`).
pub struct PgRow<'a>(pub &'a tokio_postgres::Row);

impl RowSource for PgRow<'_> {
    type Error = sqlx::Error;

    fn column_name(&self, i: usize) -> Option<&str> {
        self.0.columns().get(i).map(|c| c.name())
    }

    fn text(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
        self.0.try_get(i).map_err(driver_error)
    }

    fn int(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
        let ty = self.0.columns().get(i).map(|c| c.type_().clone());
        match ty {
            Some(Type::INT4) => Ok(self
                .0
                .try_get::<_, Option<i32>>(i)
                .map_err(driver_error)?
                .map(i64::from)),
            Some(Type::INT2) => Ok(self
                .0
                .try_get::<_, Option<i16>>(i)
                .map_err(driver_error)?
                .map(i64::from)),
            _ => self.0.try_get(i).map_err(driver_error),
        }
    }

    fn unexpected_null(&self, i: usize) -> sqlx::Error {
        sqlx::Error::ColumnDecode {
            index: RowSource::column_name(self, i).unwrap_or("?").to_string(),
            source: "unexpected NULL".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_tokio_postgres_cannot_read_are_refused_up_front() {
        assert!(Pipeline::new("postgres://postgres@%2Fvar%2Frun%2Fpostgresql/db", 1).is_ok());
        assert!(Pipeline::new("postgres://u@127.0.0.1:5432/db?sslmode=disable", 2).is_ok());
        assert!(
            Pipeline::new(
                "postgres://u@127.0.0.1:5432/db?statement-cache-capacity=9",
                1
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn a_database_that_cannot_be_reached_sends_lookups_to_the_pool() {
        // Port 1 on the loopback address: nothing listens there.
        let p = Pipeline::new("postgres://u@127.0.0.1:1/db?connect_timeout=2", 1).unwrap();
        let rows = p.rows("SELECT 1", &[], |_| Ok(())).await;
        assert!(
            rows.is_none(),
            "no answer from here: the caller asks the pool"
        );
        assert_eq!(p.served(), 0);
    }
}
