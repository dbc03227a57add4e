//! Webhooks (issue 13): partners hear of every permission and access change, durably and
//! verifiably.
//!
//! - **Outbox.** [`enqueue`] writes an event, with the live endpoints subscribed to its type,
//!   as one outbox row in the caller's transaction, so the event commits with the change that
//!   causes it and a crash after the commit loses nothing. Call [`wake`] after the commit so
//!   the worker delivers at once (it also polls). The worker splits outbox rows into the event
//!   and one delivery per endpoint, many rows per transaction, off the path of the change.
//! - **Delivery** ([`delivery`]): Standard Webhooks 1.0, a POST signed with each of the
//!   endpoint's secrets ([`secrets`]), through the one guarded, pinned fetch; the `webhook-id`
//!   is the event's id on every attempt.
//! - **Worker** ([`worker`]): splits the outbox, claims due deliveries with a lease, posts them outside any
//!   transaction, records each attempt, and retries on the schedule ([`settings`]).
//! - **Endpoints** ([`endpoints`]): the service functions the partner API and the CLI call.
//!
//! Times: due times and the attempt log use the server's clock (`SharedClock`, so tests can
//! move it); leases and the `webhook-timestamp` header use the wall clock, since they are about
//! processes alive now and receivers comparing with their own clocks.

pub mod backchannel;
pub mod delivery;
pub mod endpoints;
pub mod events;
pub mod secrets;
pub mod settings;
pub mod worker;

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::Notify;

pub use endpoints::{
    AttemptView, DeliveryState, DeliveryView, DisabledReason, EndpointState, EndpointView,
    NewEndpoint, RotatedSecret, TestSent,
};
pub use events::{Event, EventKind, EventType, SubscriptionError};
pub use settings::{WebhookArgs, WebhookSettings};

use crate::clock::Timestamp;
use crate::partner::access::{Capabilities, CapabilityState};
use crate::store::{Tx, webhooks as store};

/// How long a rotated-out secret keeps signing beside the new one: 24 hours, time for a
/// partner to deploy the new secret while every delivery still verifies with the old.
pub const ROTATION_OVERLAP: i64 = 24 * 3600;

/// An endpoint that has failed every delivery this long is disabled: 5 days.
pub const FAILING_LIMIT: i64 = 5 * 24 * 3600;

/// What [`enqueue`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "call webhooks::wake() after the commit"]
pub struct Enqueued {
    /// The event's id, the `webhook-id` of its every delivery; `None` when no endpoint is
    /// subscribed (nothing is written then).
    pub event_id: Option<String>,
    /// The deliveries it will make, one per endpoint.
    pub deliveries: usize,
}

/// Writes `event` about app `client_id` into the outbox, in the caller's transaction, for
/// each of the app's enabled endpoints subscribed to its type (the worker makes one delivery
/// per endpoint). A gated type is written only while the app has advanced event subscriptions
/// enabled. Costs one query when no endpoint is subscribed, and one more to write the row.
pub async fn enqueue(
    tx: &mut Tx<'_>,
    client_id: &str,
    event: &Event,
    now: Timestamp,
) -> std::result::Result<Enqueued, sqlx::Error> {
    let event_type = event.event_type();
    let endpoints = store::subscribers(tx, client_id, event_type.as_str()).await?;
    if endpoints.is_empty() || (event_type.is_gated() && !advanced_enabled(tx, client_id).await?) {
        return Ok(Enqueued {
            event_id: None,
            deliveries: 0,
        });
    }
    let event_id = new_event_id();
    let body = event.body();
    let outgoing = store::Outgoing {
        event_id: &event_id,
        client_id,
        event_type: event_type.as_str(),
        body: &body,
        endpoints: &endpoints,
    };
    store::insert_outbox(tx, &outgoing, now).await?;
    note_enqueued(1);
    Ok(Enqueued {
        event_id: Some(event_id),
        deliveries: endpoints.len(),
    })
}

/// Whether the app has advanced event subscriptions enabled (the gate of `permission.*`),
/// read in the caller's transaction.
pub async fn advanced_enabled(
    tx: &mut Tx<'_>,
    client_id: &str,
) -> std::result::Result<bool, sqlx::Error> {
    let caps = Capabilities::parse(&store::capability_states(tx, client_id).await?);
    Ok(caps.get(events::ADVANCED_SUBSCRIPTIONS).state == CapabilityState::Enabled)
}

/// A fresh event id: `msg_` and a time-ordered unique id.
pub fn new_event_id() -> String {
    format!("msg_{}", crate::crypto::ordered_id())
}

static ENQUEUED: Notify = Notify::const_new();

/// Events written by this process, counted when written (before their commit).
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Counts `n` events written into the outbox (see [`Mark`]).
pub(crate) fn note_enqueued(n: usize) {
    if n > 0 {
        WRITTEN.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// How many events this process had written when it was taken: a caller that cannot tell
/// whether its transaction enqueued anything takes one before, and after the commit calls
/// [`Mark::wake_if_enqueued`], which wakes the workers only when some event was written since
/// (its own, if it wrote one: a wake for nothing makes the worker claim for nothing, a write
/// on the database's one writer).
#[derive(Debug, Clone, Copy)]
pub struct Mark(u64);

impl Mark {
    pub fn now() -> Self {
        Self(WRITTEN.load(Ordering::Relaxed))
    }

    pub fn wake_if_enqueued(self) {
        if WRITTEN.load(Ordering::Relaxed) != self.0 {
            wake();
        }
    }
}

/// Wakes the delivery workers of this process: call it after committing a transaction that
/// enqueued events. (A worker that misses it finds the events at its next poll.)
pub fn wake() {
    ENQUEUED.notify_waiters();
}

/// What the workers wait on (see [`wake`]).
pub(crate) fn enqueued() -> &'static Notify {
    &ENQUEUED
}

/// Why a webhook request was refused; each with a stable code and a sentence.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error(transparent)]
    Subscription(#[from] SubscriptionError),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl WebhookError {
    /// The stable, machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Invalid { code, .. } | Self::Conflict { code, .. } => code,
            Self::Subscription(SubscriptionError::Unknown(_)) => "unknown_event_type",
            Self::Subscription(SubscriptionError::Gated { .. }) => "event_type_gated",
            Self::Internal(_) | Self::Db(_) => "internal_error",
        }
    }
}

pub type Result<T> = std::result::Result<T, WebhookError>;

/// A security failure at delivery, as the worker reports it (the endpoint disabled itself, and
/// the app was limited with `webhook_security_failure` when it has scopes to withdraw).
#[derive(Debug, Clone, Serialize)]
pub struct SecurityFailure {
    pub client_id: String,
    pub endpoint_id: String,
    pub reason: String,
    pub app_limited: bool,
}
