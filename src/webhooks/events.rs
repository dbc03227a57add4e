//! The events partners hear of, in the shape `{"type", "timestamp", "data"}` (issue 13's table).
//! Each type's `data` is its own struct, so an event cannot be written with the wrong fields.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::partner::access::{AccessReason, AccessState, Capabilities, CapabilityState};
use crate::wire::wire_enum;

/// The gated capability that per-scope `permission.*` events need.
pub const ADVANCED_SUBSCRIPTIONS: &str = "advanced_event_subscriptions";

wire_enum! {
    /// An event type, as a partner subscribes to it and reads it in `type`.
    #[derive(Hash, PartialOrd, Ord)]
    pub enum EventType {
        /// A new grant, or a reconnect.
        #[serde(rename = "consent.granted")]
        #[strum(serialize = "consent.granted")]
        ConsentGranted,
        /// Incremental consent; a permission limited, restored or denied.
        #[serde(rename = "consent.updated")]
        #[strum(serialize = "consent.updated")]
        ConsentUpdated,
        /// A whole grant or one scope revoked, by the user, the partner or Onyx.
        #[serde(rename = "consent.revoked")]
        #[strum(serialize = "consent.revoked")]
        ConsentRevoked,
        /// A permission or grant reached its expiry.
        #[serde(rename = "consent.expired")]
        #[strum(serialize = "consent.expired")]
        ConsentExpired,
        /// The app was limited, suspended or restored.
        #[serde(rename = "app.access.changed")]
        #[strum(serialize = "app.access.changed")]
        AppAccessChanged,
        /// A review step was decided or reopened.
        #[serde(rename = "app.review.updated")]
        #[strum(serialize = "app.review.updated")]
        AppReviewUpdated,
        /// A gated capability's state changed.
        #[serde(rename = "app.capability.updated")]
        #[strum(serialize = "app.capability.updated")]
        AppCapabilityUpdated,
        /// A test delivery (sent only to the endpoint it tests).
        #[serde(rename = "webhook.test")]
        #[strum(serialize = "webhook.test")]
        WebhookTest,
        /// Per-scope detail: one permission granted (gated).
        #[serde(rename = "permission.granted")]
        #[strum(serialize = "permission.granted")]
        PermissionGranted,
        /// Per-scope detail: one permission limited, restored or denied (gated).
        #[serde(rename = "permission.updated")]
        #[strum(serialize = "permission.updated")]
        PermissionUpdated,
        /// Per-scope detail: one permission revoked (gated).
        #[serde(rename = "permission.revoked")]
        #[strum(serialize = "permission.revoked")]
        PermissionRevoked,
        /// Per-scope detail: one permission expired (gated).
        #[serde(rename = "permission.expired")]
        #[strum(serialize = "permission.expired")]
        PermissionExpired,
    }
}

impl EventType {
    /// Whether this type is an "advanced event subscription": delivered only to an app for
    /// which Onyx enabled [`ADVANCED_SUBSCRIPTIONS`].
    pub fn is_gated(self) -> bool {
        self.as_str().starts_with("permission.")
    }

    /// What an endpoint receives when its partner names no type: every type that is not gated.
    pub fn defaults() -> Vec<Self> {
        Self::all().filter(|t| !t.is_gated()).collect()
    }
}

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("{0:?} is not an event type; the types are {types}", types = type_names())]
    Unknown(String),
    #[error(
        "{event} is an advanced event subscription: it needs the {ADVANCED_SUBSCRIPTIONS} capability, which is {state} for this app; {sentence}"
    )]
    Gated {
        event: EventType,
        state: CapabilityState,
        /// The capability's state in words.
        sentence: String,
    },
}

fn type_names() -> String {
    EventType::all()
        .map(EventType::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the event types an endpoint is to receive (the defaults when none is named), sorted
/// and without repeats; gated types only when the app has the capability enabled.
pub fn subscription(
    requested: &[String],
    capabilities: &Capabilities,
) -> Result<Vec<EventType>, SubscriptionError> {
    let mut types = if requested.is_empty() {
        EventType::defaults()
    } else {
        requested
            .iter()
            .map(|raw| {
                EventType::parse(raw.trim()).ok_or_else(|| SubscriptionError::Unknown(raw.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    types.sort();
    types.dedup();
    let capability = capabilities.get(ADVANCED_SUBSCRIPTIONS);
    if capability.state != CapabilityState::Enabled
        && let Some(event) = types.iter().find(|t| t.is_gated())
    {
        return Err(SubscriptionError::Gated {
            event: *event,
            state: capability.state,
            sentence: capability.sentence(ADVANCED_SUBSCRIPTIONS),
        });
    }
    Ok(types)
}

/// Who made a permission change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    User,
    Partner,
    Onyx,
    System,
}

/// One permission of a grant as an event reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PermissionEntry {
    pub scope: String,
    /// `granted`, `limited`, `revoked`, `expired`, `denied`, …
    pub state: String,
    /// Why it is not (or no longer) granted, when it is not.
    pub reason: Option<String>,
    /// When it expires (RFC 3339), if it does.
    pub expires_at: Option<String>,
}

/// `data` of the `consent.*` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsentData {
    pub client_id: String,
    /// The user's subject, as in the app's tokens.
    pub sub: String,
    pub grant_id: String,
    pub permissions: Vec<PermissionEntry>,
    pub actor: Actor,
    /// The permission history entry this event reports (the last, when several).
    pub history_id: String,
    /// Per grant, increasing: a partner can order events and drop a stale one.
    pub sequence: i64,
}

/// `data` of the gated `permission.*` events: one scope of one grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PermissionData {
    pub client_id: String,
    pub sub: String,
    pub grant_id: String,
    pub permission: PermissionEntry,
    pub actor: Actor,
    pub history_id: String,
    pub sequence: i64,
}

/// `data` of `app.access.changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessChangedData {
    pub client_id: String,
    pub state: AccessState,
    /// The reasons of every cause the state adds up from.
    pub reasons: Vec<AccessReason>,
    pub withdrawn_scopes: Vec<String>,
}

/// `data` of `app.review.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewUpdatedData {
    pub client_id: String,
    pub step: String,
    pub state: String,
    pub note: Option<String>,
}

/// `data` of `app.capability.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CapabilityUpdatedData {
    pub client_id: String,
    pub capability: String,
    pub state: CapabilityState,
}

/// `data` of `webhook.test`: the endpoint tested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestData {
    pub client_id: String,
    pub endpoint_id: String,
    pub url: String,
}

/// What happened, with its `data`: serialised as `"type"` and `"data"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "data")]
pub enum EventKind {
    #[serde(rename = "consent.granted")]
    ConsentGranted(ConsentData),
    #[serde(rename = "consent.updated")]
    ConsentUpdated(ConsentData),
    #[serde(rename = "consent.revoked")]
    ConsentRevoked(ConsentData),
    #[serde(rename = "consent.expired")]
    ConsentExpired(ConsentData),
    #[serde(rename = "app.access.changed")]
    AppAccessChanged(AccessChangedData),
    #[serde(rename = "app.review.updated")]
    AppReviewUpdated(ReviewUpdatedData),
    #[serde(rename = "app.capability.updated")]
    AppCapabilityUpdated(CapabilityUpdatedData),
    #[serde(rename = "webhook.test")]
    WebhookTest(TestData),
    #[serde(rename = "permission.granted")]
    PermissionGranted(PermissionData),
    #[serde(rename = "permission.updated")]
    PermissionUpdated(PermissionData),
    #[serde(rename = "permission.revoked")]
    PermissionRevoked(PermissionData),
    #[serde(rename = "permission.expired")]
    PermissionExpired(PermissionData),
}

impl EventKind {
    pub fn event_type(&self) -> EventType {
        match self {
            Self::ConsentGranted(_) => EventType::ConsentGranted,
            Self::ConsentUpdated(_) => EventType::ConsentUpdated,
            Self::ConsentRevoked(_) => EventType::ConsentRevoked,
            Self::ConsentExpired(_) => EventType::ConsentExpired,
            Self::AppAccessChanged(_) => EventType::AppAccessChanged,
            Self::AppReviewUpdated(_) => EventType::AppReviewUpdated,
            Self::AppCapabilityUpdated(_) => EventType::AppCapabilityUpdated,
            Self::WebhookTest(_) => EventType::WebhookTest,
            Self::PermissionGranted(_) => EventType::PermissionGranted,
            Self::PermissionUpdated(_) => EventType::PermissionUpdated,
            Self::PermissionRevoked(_) => EventType::PermissionRevoked,
            Self::PermissionExpired(_) => EventType::PermissionExpired,
        }
    }
}

/// One event: `{"type": "...", "timestamp": "RFC 3339", "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    #[serde(flatten)]
    pub kind: EventKind,
    /// When it happened (RFC 3339, UTC).
    pub timestamp: String,
}

impl Event {
    pub fn new(kind: EventKind, at: Timestamp) -> Self {
        Self {
            kind,
            timestamp: rfc3339(at),
        }
    }

    pub fn event_type(&self) -> EventType {
        self.kind.event_type()
    }

    /// The body as sent and signed.
    pub fn body(&self) -> String {
        // Plain data with string keys: serialising it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Unix seconds as RFC 3339 in UTC (`2026-12-02T01:04:00Z`).
pub fn rfc3339(at: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partner::access::Capability;

    #[test]
    fn an_event_has_type_timestamp_and_data() {
        let event = Event::new(
            EventKind::WebhookTest(TestData {
                client_id: "c1".into(),
                endpoint_id: "e1".into(),
                url: "https://hooks.partner.example/onyx".into(),
            }),
            1_614_265_330,
        );
        let v: serde_json::Value = serde_json::from_str(&event.body()).unwrap();
        assert_eq!(v["type"], "webhook.test");
        assert_eq!(v["timestamp"], "2021-02-25T15:02:10Z");
        assert_eq!(v["data"]["endpoint_id"], "e1");
        let back: Event = serde_json::from_str(&event.body()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn types_read_and_print_their_dotted_names() {
        for t in EventType::all() {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert!(EventType::PermissionRevoked.is_gated());
        assert!(!EventType::ConsentRevoked.is_gated());
        assert!(EventType::defaults().iter().all(|t| !t.is_gated()));
    }

    #[test]
    fn gated_types_need_the_advanced_subscriptions_capability() {
        let none = Capabilities::default();
        let err = subscription(&["permission.revoked".into()], &none).unwrap_err();
        assert!(matches!(err, SubscriptionError::Gated { .. }));
        assert!(err.to_string().contains(ADVANCED_SUBSCRIPTIONS), "{err}");
        assert!(matches!(
            subscription(&["consent.nope".into()], &none),
            Err(SubscriptionError::Unknown(_))
        ));
        assert_eq!(subscription(&[], &none).unwrap(), EventType::defaults());
        let mut enabled = Capabilities::default();
        enabled.0.insert(
            ADVANCED_SUBSCRIPTIONS.into(),
            Capability {
                state: CapabilityState::Enabled,
                reason: "enabled_by_onyx".into(),
                at: 0,
                note: None,
            },
        );
        assert_eq!(
            subscription(
                &[
                    "permission.revoked".into(),
                    "consent.revoked".into(),
                    "consent.revoked".into()
                ],
                &enabled
            )
            .unwrap(),
            vec![EventType::ConsentRevoked, EventType::PermissionRevoked]
        );
    }
}
