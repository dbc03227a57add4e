//! The delivery worker (STYLE.md, "Outbox worker"): splits the outbox's rows into events and
//! their deliveries (many rows per transaction), claims due deliveries with a lease, posts
//! them outside any transaction, several at once, then records each attempt and what follows
//! from it (a retry on the schedule, the endpoint disabled, the app limited) in one
//! transaction. A claim that expired (its worker died) is claimed again by any instance, with
//! the same `webhook-id`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;

use super::delivery::{Attempt, Deliverer, Outcome};
use super::endpoints::DisabledReason;
use super::secrets::{SecretBox, SigningSecret};
use super::settings::WebhookSettings;
use super::{FAILING_LIMIT, SecurityFailure};
use crate::clock::{Clock, SharedClock, SystemClock, Timestamp};
use crate::partner::access::AccessReason;
use crate::store::apps::{self, App};
use crate::store::webhooks::{self as store, After, AttemptRecord, Claimed};
use crate::store::{Db, Tx};

/// The worker's parts, shared by its delivery tasks.
struct Worker {
    db: Db,
    clock: SharedClock,
    sealer: SecretBox,
    deliverer: Deliverer,
    settings: WebhookSettings,
    metrics: Arc<crate::ops::metrics::Metrics>,
}

/// Starts the worker, which opens the endpoints' secrets with `sealer`.
pub fn spawn(
    db: Db,
    clock: SharedClock,
    settings: WebhookSettings,
    sealer: SecretBox,
    metrics: Arc<crate::ops::metrics::Metrics>,
) {
    let worker = Arc::new(Worker {
        metrics,
        sealer,
        deliverer: Deliverer::new(settings.clone()),
        db,
        clock,
        settings,
    });
    tokio::spawn(worker.run());
}

/// How long the worker, woken by an enqueue, waits for more before it claims.
const CLAIM_GATHER: Duration = Duration::from_millis(10);

/// Outbox rows split in one transaction at most.
const SPLIT_BATCH: i64 = 100;

/// Attempts recorded in one transaction at most.
const MAX_RECORD_BATCH: usize = 128;

/// A finished attempt on its way to the recorder.
struct Done {
    claimed: Claimed,
    attempt: Attempt,
}

impl Worker {
    async fn run(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let freed = Arc::new(tokio::sync::Notify::new());
        let (done, finished) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(self.clone().record_all(finished));
        loop {
            // Registered before claiming, so a wake during the claim is not lost.
            let enqueued = super::enqueued().notified();
            tokio::pin!(enqueued);
            enqueued.as_mut().enable();
            self.split().await;
            let free = slots.available_permits();
            let mut claimed = 0;
            if free > 0 {
                match self.claim(free).await {
                    Ok(batch) => {
                        claimed = batch.len();
                        for c in batch {
                            let Ok(permit) = slots.clone().acquire_owned().await else {
                                return;
                            };
                            let worker = self.clone();
                            let freed = freed.clone();
                            let done = done.clone();
                            tokio::spawn(async move {
                                let attempt = worker.deliver(&c).await;
                                // The claim holds until the attempt is recorded.
                                let _ = done.send(Done {
                                    claimed: c,
                                    attempt,
                                });
                                drop(permit);
                                freed.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "webhooks: claiming deliveries failed"),
                }
            }
            if claimed > 0 && slots.available_permits() > 0 {
                // More may be due right away.
                continue;
            }
            tokio::select! {
                _ = &mut enqueued => {
                    // Changes that enqueue come many a second: gather them, so one claim (a
                    // write on the database's writer, SQLite's one connection, which the
                    // changes themselves queue on) takes many deliveries, not one per change.
                    // What commits meanwhile is claimed by the claim that follows.
                    tokio::time::sleep(CLAIM_GATHER).await;
                }
                _ = freed.notified(), if claimed > 0 || free == 0 => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// Records finished attempts, as many as have finished in one transaction (one commit for
    /// many deliveries); a batch that fails is recorded one by one. An attempt that could not be
    /// recorded at all is delivered again once its lease expires (at least once).
    async fn record_all(self: Arc<Self>, mut finished: tokio::sync::mpsc::UnboundedReceiver<Done>) {
        while let Some(first) = finished.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_RECORD_BATCH {
                match finished.try_recv() {
                    Ok(d) => batch.push(d),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.record(&batch).await {
                tracing::warn!(error = %e, n = batch.len(), "webhooks: recording attempts failed; recording them one by one");
                for d in &batch {
                    if let Err(e) = self.record(std::slice::from_ref(d)).await {
                        tracing::warn!(error = %e, delivery = %d.claimed.delivery_id, "webhooks: recording an attempt failed");
                    }
                }
            }
        }
    }

    /// Splits what the outbox holds into events and their deliveries, a batch per transaction.
    async fn split(&self) {
        loop {
            match store::split_outbox(&self.db, self.clock.now(), SPLIT_BATCH).await {
                Ok(n) if n == SPLIT_BATCH as usize => continue,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks: splitting the outbox failed");
                    return;
                }
            }
        }
    }

    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, sqlx::Error> {
        let wall = SystemClock.now();
        let lease = i64::try_from(self.settings.lease.as_secs()).unwrap_or(60);
        let owner = crate::crypto::random_id();
        store::claim(
            &self.db,
            &owner,
            self.clock.now(),
            wall,
            wall + lease,
            i64::try_from(limit).unwrap_or(1),
        )
        .await
    }

    /// The secrets that sign now: the current one, and the previous one during its overlap.
    fn secrets(&self, c: &Claimed, now: Timestamp) -> Vec<SigningSecret> {
        let mut out: Vec<SigningSecret> = self
            .sealer
            .open(&c.endpoint_id, &c.secret)
            .into_iter()
            .collect();
        if let (Some(prev), Some(until)) = (&c.previous_secret, c.previous_secret_until)
            && until > now
            && let Some(s) = self.sealer.open(&c.endpoint_id, prev)
        {
            out.push(s);
        }
        out
    }

    async fn deliver(&self, c: &Claimed) -> Attempt {
        let secrets = self.secrets(c, self.clock.now());
        if secrets.is_empty() {
            return Attempt {
                outcome: Outcome::Failed { retry_after: None },
                status: None,
                latency: Duration::ZERO,
                error: Some(
                    "the endpoint's signing secret cannot be opened with this server's sealing key"
                        .into(),
                ),
            };
        }
        self.deliverer
            .deliver(&c.url, &c.event_id, &c.body, &secrets)
            .await
    }

    /// Records a batch of attempts in one transaction, and logs the security failures.
    async fn record(&self, batch: &[Done]) -> Result<(), sqlx::Error> {
        // The apps an automatic access cause may change, read before the transaction.
        let mut apps: HashMap<String, App> = HashMap::new();
        for d in batch {
            let test = d.claimed.event_type == super::EventType::WebhookTest.as_str();
            let needs_app = match d.attempt.outcome {
                Outcome::Delivered => test,
                Outcome::SecurityFailure => true,
                _ => false,
            };
            if needs_app
                && !apps.contains_key(&d.claimed.client_id)
                && let Some(app) = apps::by_client_id(&self.db, &d.claimed.client_id).await?
            {
                apps.insert(app.client_id.clone(), app);
            }
        }
        let now = self.clock.now();
        let mut tx = self.db.begin().await?;
        let mut failures = Vec::new();
        let mut counted = Vec::new();
        for d in batch {
            let app = apps.get(&d.claimed.client_id);
            if let Some(f) = self
                .record_one(&mut tx, now, &d.claimed, &d.attempt, app, &mut counted)
                .await?
            {
                failures.push(f);
            }
        }
        tx.commit().await?;
        // Counted once recorded: a batch that fails is recorded (and counted) one by one.
        for (outcome, finished) in counted {
            self.metrics.webhook_attempt(outcome, finished);
        }
        for f in failures {
            tracing::warn!(
                client_id = %f.client_id,
                endpoint_id = %f.endpoint_id,
                app_limited = f.app_limited,
                "webhook endpoint disabled after a security failure: {}",
                f.reason
            );
        }
        Ok(())
    }

    /// Records one attempt and what follows from it; the security failure, if it was one.
    async fn record_one(
        &self,
        tx: &mut Tx<'_>,
        now: Timestamp,
        c: &Claimed,
        attempt: &Attempt,
        app: Option<&App>,
        counted: &mut Vec<(&'static str, Option<&'static str>)>,
    ) -> Result<Option<SecurityFailure>, sqlx::Error> {
        let schedule = &self.settings.retry_schedule;
        let failures = c.failures + 1;
        let after = match &attempt.outcome {
            Outcome::Delivered => After::Delivered,
            Outcome::Failed { retry_after } => {
                match usize::try_from(c.failures)
                    .ok()
                    .and_then(|i| schedule.get(i))
                {
                    Some(delay) => {
                        let wait = retry_after.unwrap_or(*delay);
                        After::Retry {
                            at: now + i64::try_from(wait.as_secs()).unwrap_or(i64::MAX / 2),
                            failures,
                        }
                    }
                    None => After::Failed { failures },
                }
            }
            Outcome::Gone | Outcome::SecurityFailure => After::Failed { failures },
        };
        let record = AttemptRecord {
            at: now,
            status: attempt.status,
            latency_ms: i64::try_from(attempt.latency.as_millis()).unwrap_or(i64::MAX),
            outcome: attempt.outcome.as_str(),
            error: attempt.error.as_deref(),
        };
        let finished = match after {
            After::Delivered => Some("delivered"),
            After::Failed { .. } => Some("failed"),
            After::Retry { .. } => None,
        };
        if !store::record_attempt(tx, c, &record, after).await? {
            // The lease expired and another worker holds the delivery now.
            return Ok(None);
        }
        counted.push((attempt.outcome.as_str(), finished));
        let test = c.event_type == super::EventType::WebhookTest.as_str();
        let mut security = None;
        let disable = match &attempt.outcome {
            Outcome::Delivered => {
                store::endpoint_succeeded(tx, &c.endpoint_id, test, now).await?;
                // A test delivery lifts the security cause once no endpoint of the app is
                // still disabled for one.
                if test
                    && let Some(app) = app
                    && store::disabled_for(
                        tx,
                        &c.client_id,
                        DisabledReason::SecurityFailure.as_str(),
                    )
                    .await?
                        == 0
                {
                    crate::partner::access_change::auto_restore(
                        tx,
                        now,
                        app,
                        AccessReason::WebhookSecurityFailure,
                        json!({"endpoint_id": c.endpoint_id, "test_event_id": c.event_id}),
                    )
                    .await?;
                }
                None
            }
            Outcome::Failed { .. } => {
                let since = store::endpoint_failed(tx, &c.endpoint_id, now).await?;
                (now - since >= FAILING_LIMIT).then_some(DisabledReason::Failing)
            }
            Outcome::Gone => Some(DisabledReason::Gone),
            Outcome::SecurityFailure => Some(DisabledReason::SecurityFailure),
        };
        if let Some(reason) = disable {
            let note = attempt.error.as_deref().unwrap_or(reason.sentence());
            let disabled = store::disable(tx, &c.endpoint_id, reason.as_str(), note, now).await?;
            if disabled && reason == DisabledReason::SecurityFailure {
                let app_limited = match app {
                    Some(app) => {
                        crate::partner::access_change::auto_limit(
                            tx,
                            now,
                            app,
                            AccessReason::WebhookSecurityFailure,
                            Some(note),
                            json!({"endpoint_id": c.endpoint_id, "url": c.url}),
                        )
                        .await?
                    }
                    None => false,
                };
                security = Some(SecurityFailure {
                    client_id: c.client_id.clone(),
                    endpoint_id: c.endpoint_id.clone(),
                    reason: note.to_string(),
                    app_limited,
                });
            }
        }
        Ok(security)
    }
}
