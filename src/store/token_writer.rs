//! Group commit for issued access tokens. Token requests that arrive together share one
//! transaction (one WAL commit on SQLite, one fsync on PostgreSQL) instead of paying for one
//! each; a lone request is written at once, without waiting for company.

use tokio::sync::{Mutex, mpsc, oneshot};

use super::Pool;
use super::tokens::{AccessToken, insert_many};

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
}

impl TokenWriter {
    /// Starts `workers` writer tasks on `pool` (one suits SQLite, which has one writer).
    pub fn spawn(pool: Pool, workers: usize) -> Self {
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
                    let result = write(&pool, &batch).await.map_err(|e| e.to_string());
                    for job in batch {
                        let _ = job.done.send(result.clone());
                    }
                }
            });
        }
        Self { jobs }
    }

    /// Writes one token; returns once it is committed.
    pub async fn insert(&self, token_hash: String, token: AccessToken) -> anyhow::Result<()> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job {
                token_hash,
                token,
                done,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the token writer has stopped"))?;
        wait.await
            .map_err(|_| anyhow::anyhow!("the token writer dropped a token"))?
            .map_err(|e| anyhow::anyhow!("writing an access token failed: {e}"))
    }
}

async fn write(pool: &Pool, batch: &[Job]) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, AccessToken)> = batch
        .iter()
        .map(|j| (j.token_hash.clone(), j.token.clone()))
        .collect();
    let mut tx = pool.begin().await?;
    insert_many(&mut tx, &rows).await?;
    tx.commit().await
}
