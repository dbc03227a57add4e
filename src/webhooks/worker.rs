//! The delivery worker (STYLE.md, "Outbox worker"): claims due deliveries with a lease, posts
//! them outside any transaction, several at once, then records each attempt and what follows
//! from it (a retry on the schedule, the endpoint disabled, the app limited) in one
//! transaction. A claim that expired (its worker died) is claimed again by any instance, with
//! the same `webhook-id`.

use std::path::Path;
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
use crate::store::webhooks::{self as store, After, AttemptRecord, Claimed};
use crate::store::{Db, apps};

/// The worker's parts, shared by its delivery tasks.
struct Worker {
    db: Db,
    clock: SharedClock,
    sealer: SecretBox,
    deliverer: Deliverer,
    settings: WebhookSettings,
}

/// Opens the sealing key (creating it on first start) and starts the worker.
pub fn spawn(
    db: Db,
    clock: SharedClock,
    settings: WebhookSettings,
    keys_dir: &Path,
) -> anyhow::Result<()> {
    let worker = Arc::new(Worker {
        sealer: SecretBox::open_or_create(keys_dir)?,
        deliverer: Deliverer::new(settings.clone()),
        db,
        clock,
        settings,
    });
    tokio::spawn(worker.run());
    Ok(())
}

impl Worker {
    async fn run(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let freed = Arc::new(tokio::sync::Notify::new());
        loop {
            // Registered before claiming, so a wake during the claim is not lost.
            let enqueued = super::enqueued().notified();
            tokio::pin!(enqueued);
            enqueued.as_mut().enable();
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
                            tokio::spawn(async move {
                                worker.deliver(c).await;
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
                _ = &mut enqueued => {}
                _ = freed.notified(), if claimed > 0 || free == 0 => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
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

    async fn deliver(&self, c: Claimed) {
        let secrets = self.secrets(&c, self.clock.now());
        let attempt = if secrets.is_empty() {
            Attempt {
                outcome: Outcome::Failed { retry_after: None },
                status: None,
                latency: Duration::ZERO,
                error: Some(
                    "the endpoint's signing secret cannot be opened with this server's keys folder"
                        .into(),
                ),
            }
        } else {
            self.deliverer
                .deliver(&c.url, &c.event_id, &c.body, &secrets)
                .await
        };
        match self.record(&c, &attempt).await {
            Ok(Some(failure)) => tracing::warn!(
                client_id = %failure.client_id,
                endpoint_id = %failure.endpoint_id,
                app_limited = failure.app_limited,
                "webhook endpoint disabled after a security failure: {}",
                failure.reason
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, delivery = %c.delivery_id, "webhooks: recording an attempt failed")
            }
        }
    }

    /// Records the attempt and what follows from it, in one transaction; the security failure,
    /// if the attempt was one.
    async fn record(
        &self,
        c: &Claimed,
        attempt: &Attempt,
    ) -> Result<Option<SecurityFailure>, sqlx::Error> {
        let now = self.clock.now();
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
        // Read before the transaction: on SQLite the writer is the transaction's connection.
        let app = match attempt.outcome {
            Outcome::Delivered | Outcome::SecurityFailure => {
                apps::by_client_id(&self.db, &c.client_id).await?
            }
            _ => None,
        };
        let mut tx = self.db.begin().await?;
        if !store::record_attempt(&mut tx, c, &record, after).await? {
            // The lease expired and another worker holds the delivery now.
            return Ok(None);
        }
        let test = c.event_type == super::EventType::WebhookTest.as_str();
        let mut security = None;
        let disable = match &attempt.outcome {
            Outcome::Delivered => {
                store::endpoint_succeeded(&mut tx, &c.endpoint_id, test, now).await?;
                let security_disabled = store::disabled_for(
                    &mut tx,
                    &c.client_id,
                    DisabledReason::SecurityFailure.as_str(),
                )
                .await?;
                if test
                    && security_disabled == 0
                    && let Some(app) = &app
                {
                    crate::partner::access_change::auto_restore(
                        &mut tx,
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
                let since = store::endpoint_failed(&mut tx, &c.endpoint_id, now).await?;
                (now - since >= FAILING_LIMIT).then_some(DisabledReason::Failing)
            }
            Outcome::Gone => Some(DisabledReason::Gone),
            Outcome::SecurityFailure => Some(DisabledReason::SecurityFailure),
        };
        if let Some(reason) = disable {
            let note = attempt.error.as_deref().unwrap_or(reason.sentence());
            let disabled =
                store::disable(&mut tx, &c.endpoint_id, reason.as_str(), note, now).await?;
            if disabled && reason == DisabledReason::SecurityFailure {
                let app_limited = match &app {
                    Some(app) => {
                        crate::partner::access_change::auto_limit(
                            &mut tx,
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
        tx.commit().await?;
        Ok(security)
    }
}
