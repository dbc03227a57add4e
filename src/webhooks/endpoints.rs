//! The service functions over an app's webhook endpoints, for the partner API and the CLI: add
//! (the secret shown once), list, change the event types, rotate the secret, enable, send a
//! test event, retry a failed delivery, and the deliveries log with each attempt.

use serde::Serialize;

use super::delivery::check_url;
use super::events::{self, Event, EventKind, EventType, TestData};
use super::secrets::{SecretBox, SigningSecret};
use super::settings::WebhookSettings;
use super::{ROTATION_OVERLAP, Result, WebhookError};
use crate::clock::Timestamp;
use crate::store::apps::App;
use crate::store::audit::{self, Event as AuditEvent};
use crate::store::webhooks::{self as store, AttemptRow, DeliveryRow, EndpointRow};
use crate::store::{Db, Tx, is_unique_violation};
use crate::wire::wire_enum;

/// Endpoints an app may have at most.
pub const MAX_ENDPOINTS: usize = 10;
/// Deliveries the log shows at most.
pub const MAX_LISTED_DELIVERIES: i64 = 100;

/// Who changes an endpoint, for the audit entry written in the change's own transaction: a
/// partner's API key or member (`partner:{id}/key:{id}`, `partner:{id}/user:{id}`). The CLI,
/// which writes its own entry with the OS user, passes none.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub actor: &'a str,
    pub partner_id: Option<&'a str>,
}

/// Appends the audit entry of a change to `client_id`'s endpoints, when someone is named.
async fn audit_in(
    tx: &mut Tx<'_>,
    by: Option<Actor<'_>>,
    now: Timestamp,
    client_id: &str,
    action: &str,
    detail: serde_json::Value,
) -> Result<()> {
    if let Some(by) = by {
        audit::append(
            tx,
            now,
            AuditEvent {
                actor: by.actor,
                partner_id: by.partner_id,
                client_id: Some(client_id),
                action,
                detail,
            },
        )
        .await?;
    }
    Ok(())
}

wire_enum! {
    /// Whether an endpoint receives deliveries.
    pub enum EndpointState as "snake_case" {
        Enabled,
        Disabled,
    }
}

wire_enum! {
    /// Why an endpoint was disabled.
    pub enum DisabledReason as "snake_case" {
        /// It answered 410 Gone.
        Gone,
        /// It failed a security check at delivery (a non-public address, an invalid certificate).
        SecurityFailure,
        /// It failed every delivery for 5 days.
        Failing,
        /// Its partner (or an operator) disabled it.
        Disabled,
        /// The app's webhooks review step no longer approves its URL.
        NotApproved,
    }
}

impl DisabledReason {
    /// A sentence the partner can act on.
    pub fn sentence(self) -> &'static str {
        match self {
            Self::Gone => {
                "The endpoint answered 410 Gone, so Onyx stopped delivering to it. Enable it again once it accepts events."
            }
            Self::SecurityFailure => {
                "The endpoint failed a security check at delivery (it resolved to a non-public address or presented an invalid certificate). Fix it, enable it again and send a test event."
            }
            Self::Failing => {
                "Every delivery to the endpoint failed for 5 days, so Onyx stopped delivering to it. Fix it and enable it again."
            }
            Self::Disabled => "The endpoint was disabled.",
            Self::NotApproved => {
                "The app's approved webhook endpoints no longer include this URL, so Onyx stopped delivering to it. Add it to the draft's webhooks and submit it for review to use it again."
            }
        }
    }
}

/// An endpoint as the partner reads it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    pub endpoint_id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub state: EndpointState,
    pub disabled_reason: Option<DisabledReason>,
    pub disabled_reason_text: Option<&'static str>,
    /// What exactly failed, when onyx-id disabled it.
    pub disabled_note: Option<String>,
    pub disabled_at: Option<i64>,
    /// Until when the secret before the last rotation still signs (Unix seconds).
    pub previous_secret_valid_until: Option<i64>,
    /// The first failure since the last delivery, while deliveries fail.
    pub failing_since: Option<i64>,
    /// The last successful test delivery.
    pub tested_at: Option<i64>,
    pub created_at: i64,
}

impl EndpointView {
    fn from_row(r: EndpointRow, now: Timestamp) -> Self {
        let events: Vec<String> = serde_json::from_str(&r.event_types).unwrap_or_default();
        let disabled_reason = r.disabled_reason.as_deref().and_then(|s| s.parse().ok());
        Self {
            endpoint_id: r.id,
            url: r.url,
            events: events.iter().filter_map(|e| EventType::parse(e)).collect(),
            // An unreadable state fails closed.
            state: r.state.parse().unwrap_or(EndpointState::Disabled),
            disabled_reason,
            disabled_reason_text: disabled_reason.map(DisabledReason::sentence),
            disabled_note: r.disabled_note,
            disabled_at: r.disabled_at,
            previous_secret_valid_until: r.previous_secret_until.filter(|u| *u > now),
            failing_since: r.failing_since,
            tested_at: r.tested_at,
            created_at: r.created_at,
        }
    }
}

/// A new endpoint, with its secret: shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewEndpoint {
    pub endpoint_id: String,
    pub url: String,
    pub events: Vec<EventType>,
    /// `whsec_` + base64 of 32 random bytes.
    pub secret: String,
}

/// A rotated secret: the new one (shown this once) signs from now on, the previous one beside
/// it until `previous_secret_valid_until`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    pub endpoint_id: String,
    pub secret: String,
    pub previous_secret_valid_until: i64,
}

/// A test event on its way.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestSent {
    pub endpoint_id: String,
    pub event_id: String,
    pub delivery_id: String,
}

wire_enum! {
    /// Where a delivery is.
    pub enum DeliveryState as "snake_case" {
        /// Not delivered yet; attempted again at `next_attempt_at`.
        Pending,
        Delivered,
        /// Every retry failed, or the endpoint was disabled: it can be retried.
        Failed,
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt: i64,
    /// When it was made (Unix seconds).
    pub at: i64,
    /// The endpoint's HTTP status, when it answered.
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// `delivered`, `failed`, `gone` or `security_failure`.
    pub outcome: String,
    pub error: Option<String>,
}

/// One delivery of one event to one endpoint, with its attempts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub delivery_id: String,
    /// The `webhook-id` of every attempt.
    pub event_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    pub state: DeliveryState,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
    pub attempts: Vec<AttemptView>,
}

fn invalid(code: &'static str, message: impl Into<String>) -> WebhookError {
    WebhookError::Invalid {
        code,
        message: message.into(),
    }
}

async fn one(db: &Db, client_id: &str, endpoint_id: &str) -> Result<EndpointRow> {
    store::endpoint(db, client_id, endpoint_id)
        .await?
        .ok_or(WebhookError::NotFound("endpoint"))
}

/// Adds an endpoint to `app`: an https URL (http only with the insecure setting) and the event
/// types it receives (every type that is not gated when none is named; a gated type only with
/// advanced event subscriptions enabled). Returns its secret, shown once.
///
/// A caller acting for the partner (`by` is the member or API key, from the console or the
/// partner API) may add to a partner app only a URL its webhooks review step approved; the
/// CLI's development shortcut (`by` is `None`) takes any URL, like `apps create`.
#[allow(clippy::too_many_arguments)]
pub async fn add(
    db: &Db,
    by: Option<Actor<'_>>,
    sealer: &SecretBox,
    settings: &WebhookSettings,
    app: &App,
    url: &str,
    event_types: &[String],
    now: Timestamp,
) -> Result<NewEndpoint> {
    check_url(url, settings.insecure_http).map_err(|m| invalid("invalid_url", m))?;
    if by.is_some() && app.partner_id.is_some() && !app.webhooks.iter().any(|w| w == url) {
        return Err(WebhookError::Conflict {
            code: "endpoint_not_approved",
            message: format!(
                "the webhooks review step has not approved {url}: add it to the draft's \
                 webhooks and submit the draft for review"
            ),
        });
    }
    let events = events::subscription(event_types, &app.capabilities)?;
    let existing = store::endpoints_of_app(db, &app.client_id).await?;
    if existing.iter().any(|e| e.url == url) {
        return Err(WebhookError::Conflict {
            code: "endpoint_exists",
            message: format!("the app already has an endpoint at {url}"),
        });
    }
    if existing.len() >= MAX_ENDPOINTS {
        return Err(WebhookError::Conflict {
            code: "too_many_endpoints",
            message: format!("an app has at most {MAX_ENDPOINTS} webhook endpoints"),
        });
    }
    let id = format!("ep_{}", crate::crypto::random_id());
    let secret = SigningSecret::generate();
    let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    let row = EndpointRow {
        secret: sealer.seal(&id, &secret),
        id,
        client_id: app.client_id.clone(),
        url: url.to_string(),
        event_types: serde_json::to_string(&names).unwrap_or_else(|_| "[]".into()),
        state: "enabled".into(),
        disabled_reason: None,
        disabled_note: None,
        disabled_at: None,
        previous_secret: None,
        previous_secret_until: None,
        failing_since: None,
        tested_at: None,
        created_at: now,
        updated_at: now,
    };
    let mut tx = db.begin().await?;
    store::insert_endpoint(&mut tx, &row).await.map_err(|e| {
        if is_unique_violation(&e) {
            WebhookError::Conflict {
                code: "endpoint_exists",
                message: "the endpoint exists already".into(),
            }
        } else {
            e.into()
        }
    })?;
    let detail = serde_json::json!({ "endpoint_id": row.id, "url": row.url, "events": names });
    audit_in(
        &mut tx,
        by,
        now,
        &app.client_id,
        "webhook.endpoint_added",
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(NewEndpoint {
        endpoint_id: row.id,
        url: row.url,
        events,
        secret: secret.expose(),
    })
}

/// The app's endpoints, oldest first.
pub async fn list(db: &Db, client_id: &str, now: Timestamp) -> Result<Vec<EndpointView>> {
    Ok(store::endpoints_of_app(db, client_id)
        .await?
        .into_iter()
        .map(|r| EndpointView::from_row(r, now))
        .collect())
}

/// One of the app's endpoints.
pub async fn get(
    db: &Db,
    client_id: &str,
    endpoint_id: &str,
    now: Timestamp,
) -> Result<EndpointView> {
    Ok(EndpointView::from_row(
        one(db, client_id, endpoint_id).await?,
        now,
    ))
}

/// A new secret for the endpoint; the current one keeps signing beside it for
/// [`ROTATION_OVERLAP`] (a secret rotated out earlier stops at once).
pub async fn rotate_secret(
    db: &Db,
    by: Option<Actor<'_>>,
    sealer: &SecretBox,
    client_id: &str,
    endpoint_id: &str,
    now: Timestamp,
) -> Result<RotatedSecret> {
    let row = one(db, client_id, endpoint_id).await?;
    let secret = SigningSecret::generate();
    let until = now + ROTATION_OVERLAP;
    let mut tx = db.begin().await?;
    store::set_secret(
        &mut tx,
        &row.id,
        &sealer.seal(&row.id, &secret),
        &row.secret,
        until,
        now,
    )
    .await?;
    let detail = serde_json::json!({ "endpoint_id": row.id, "previous_secret_valid_until": until });
    audit_in(
        &mut tx,
        by,
        now,
        client_id,
        "webhook.secret_rotated",
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(RotatedSecret {
        endpoint_id: row.id,
        secret: secret.expose(),
        previous_secret_valid_until: until,
    })
}

/// Enables a disabled endpoint: deliveries resume with new events (failed ones can be retried).
pub async fn enable(
    db: &Db,
    by: Option<Actor<'_>>,
    client_id: &str,
    endpoint_id: &str,
    now: Timestamp,
) -> Result<EndpointView> {
    let row = one(db, client_id, endpoint_id).await?;
    let mut tx = db.begin().await?;
    store::enable(&mut tx, &row.id, now).await?;
    let detail = serde_json::json!({ "endpoint_id": row.id });
    audit_in(&mut tx, by, now, client_id, "webhook.enabled", detail).await?;
    tx.commit().await?;
    get(db, client_id, endpoint_id, now).await
}

/// Sends a `webhook.test` event to the endpoint (and only to it). A successful test delivery
/// is what "tested webhook delivery" reads (`tested_at`), and lifts an automatic
/// `webhook_security_failure` cause.
pub async fn send_test(
    db: &Db,
    by: Option<Actor<'_>>,
    client_id: &str,
    endpoint_id: &str,
    now: Timestamp,
) -> Result<TestSent> {
    let row = one(db, client_id, endpoint_id).await?;
    if row.state != "enabled" {
        return Err(WebhookError::Conflict {
            code: "endpoint_disabled",
            message: "the endpoint is disabled: enable it first".into(),
        });
    }
    let event = Event::new(
        EventKind::WebhookTest(TestData {
            client_id: client_id.to_string(),
            endpoint_id: row.id.clone(),
            url: row.url.clone(),
        }),
        now,
    );
    let event_id = super::new_event_id();
    let mut tx = db.begin().await?;
    let body = event.body();
    let outgoing = store::Outgoing {
        event_id: &event_id,
        client_id,
        event_type: EventType::WebhookTest.as_str(),
        body: &body,
        endpoints: std::slice::from_ref(&row.id),
    };
    store::insert_event(&mut tx, &outgoing, now).await?;
    let detail = serde_json::json!({ "endpoint_id": row.id, "event_id": event_id });
    audit_in(&mut tx, by, now, client_id, "webhook.test_sent", detail).await?;
    tx.commit().await?;
    super::wake();
    Ok(TestSent {
        delivery_id: store::delivery_id(&event_id, &row.id),
        endpoint_id: row.id,
        event_id,
    })
}

/// Delivers a failed delivery again, with the same `webhook-id`, the schedule started over.
pub async fn retry(
    db: &Db,
    by: Option<Actor<'_>>,
    client_id: &str,
    delivery_id: &str,
    now: Timestamp,
) -> Result<()> {
    let mut tx = db.begin().await?;
    if !store::retry(&mut tx, client_id, delivery_id, now).await? {
        return Err(WebhookError::Conflict {
            code: "not_retryable",
            message: "no failed delivery of this app to an enabled endpoint has that id".into(),
        });
    }
    let detail = serde_json::json!({ "delivery_id": delivery_id });
    audit_in(
        &mut tx,
        by,
        now,
        client_id,
        "webhook.delivery_retried",
        detail,
    )
    .await?;
    tx.commit().await?;
    super::wake();
    Ok(())
}

/// The app's latest deliveries (of one endpoint, when given), newest first, each with its
/// attempts: time, HTTP status, latency and error.
pub async fn deliveries(
    db: &Db,
    client_id: &str,
    endpoint_id: Option<&str>,
) -> Result<Vec<DeliveryView>> {
    if let Some(e) = endpoint_id {
        one(db, client_id, e).await?;
    }
    let (rows, attempts) =
        store::deliveries(db, client_id, endpoint_id, MAX_LISTED_DELIVERIES).await?;
    Ok(rows
        .into_iter()
        .map(|r| delivery_view(r, &attempts))
        .collect())
}

fn delivery_view(r: DeliveryRow, attempts: &[AttemptRow]) -> DeliveryView {
    let state = r.state.parse().unwrap_or(DeliveryState::Failed);
    DeliveryView {
        attempts: attempts
            .iter()
            .filter(|a| a.delivery_id == r.id)
            .map(|a| AttemptView {
                attempt: a.attempt,
                at: a.at,
                status: a.status.and_then(|s| u16::try_from(s).ok()),
                latency_ms: a.latency_ms,
                outcome: a.outcome.clone(),
                error: a.error.clone(),
            })
            .collect(),
        delivery_id: r.id,
        event_id: r.event_id,
        endpoint_id: r.endpoint_id,
        event_type: r.event_type,
        next_attempt_at: (state == DeliveryState::Pending).then_some(r.next_attempt_at),
        state,
        last_error: r.last_error,
        delivered_at: r.delivered_at,
        created_at: r.created_at,
    }
}

/// Disables the app's enabled endpoints whose URL is not in `approved`, in the caller's
/// transaction: a partner app's endpoints are the ones its webhooks review step approved, so
/// approving a list without a URL stops deliveries to it. Returns how many it disabled.
pub async fn withdraw_unapproved(
    tx: &mut crate::store::Tx<'_>,
    client_id: &str,
    approved: &[String],
    now: Timestamp,
) -> std::result::Result<usize, sqlx::Error> {
    let reason = DisabledReason::NotApproved;
    let mut n = 0;
    for (id, url) in store::enabled_endpoints_in(tx, client_id).await? {
        if !approved.contains(&url)
            && store::disable(tx, &id, reason.as_str(), reason.sentence(), now).await?
        {
            n += 1;
        }
    }
    Ok(n)
}

/// Changes the event types the endpoint receives, checked as at [`add`] (a known type; a gated
/// one only with advanced event subscriptions enabled), except that at least one must be named.
/// Events enqueued before the change keep their deliveries; later ones follow the new types.
pub async fn set_events(
    db: &Db,
    by: Option<Actor<'_>>,
    app: &App,
    endpoint_id: &str,
    event_types: &[String],
    now: Timestamp,
) -> Result<EndpointView> {
    if event_types.is_empty() {
        return Err(invalid(
            "invalid_events",
            format!(
                "name at least one event type; the types that are not gated are {}",
                EventType::defaults()
                    .iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let events = events::subscription(event_types, &app.capabilities)?;
    let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    let json = serde_json::to_string(&names).unwrap_or_else(|_| "[]".into());
    let mut tx = db.begin().await?;
    if !store::set_event_types(&mut tx, &app.client_id, endpoint_id, &json, now).await? {
        return Err(WebhookError::NotFound("endpoint"));
    }
    let detail = serde_json::json!({ "endpoint_id": endpoint_id, "events": names });
    audit_in(
        &mut tx,
        by,
        now,
        &app.client_id,
        "webhook.events_set",
        detail,
    )
    .await?;
    tx.commit().await?;
    get(db, &app.client_id, endpoint_id, now).await
}
