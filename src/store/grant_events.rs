//! The events a grant change writes to the webhook outbox (issue 13), in the transaction of the
//! change: one `consent.*` event with the grant's permissions as they now stand, and, for an
//! app with advanced event subscriptions, one gated `permission.*` event per scope that changed.
//! An app with no endpoint subscribed costs one query per event type and writes nothing.

use super::Tx;
use super::grants::{Actor, Permission};
use crate::clock::Timestamp;
use crate::consent::State;
use crate::store::webhooks as outbox;
use crate::webhooks::events::{self, ConsentData, PermissionData, PermissionEntry};
use crate::webhooks::{Event, EventKind, EventType};

/// What kind of grant change is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A decision (the consent screen's, or the server's on an app's request): `consent.granted`
    /// when it grants the first permission of the grant (a new grant or a reconnect),
    /// `consent.updated` otherwise.
    Decided {
        had_granted: bool,
    },
    Revoked,
    Expired,
}

/// Who made the change, as events name it.
fn actor(a: Actor) -> events::Actor {
    match a {
        Actor::User => events::Actor::User,
        Actor::Partner => events::Actor::Partner,
        Actor::Onyx => events::Actor::Onyx,
        // Recorded by the server on the app's request (a scope found unavailable).
        Actor::App => events::Actor::System,
    }
}

fn entry(p: &Permission) -> PermissionEntry {
    PermissionEntry {
        scope: p.scope.clone(),
        state: p.stored.state.as_str().to_string(),
        reason: p.stored.reason.map(|r| r.as_str().to_string()),
        expires_at: p.stored.expires_at.map(events::rfc3339),
    }
}

/// Writes the events of a change to grant `grant_id` whose changed scopes are `changed`
/// (nothing when empty). Returns whether anything was enqueued (then call
/// `crate::webhooks::wake()` after the commit).
pub async fn announce(
    tx: &mut Tx<'_>,
    grant_id: &str,
    kind: Kind,
    changed: &[String],
    by: Actor,
    now: Timestamp,
) -> Result<bool, sqlx::Error> {
    if changed.is_empty() {
        return Ok(false);
    }
    let (user_id, client_id): (String, String) =
        sqlx::query_as("SELECT user_id, client_id FROM grants WHERE id = $1")
            .bind(grant_id)
            .fetch_one(&mut **tx)
            .await?;
    let permissions = super::grants::permissions_in(tx, grant_id).await?;
    let (consent_type, per_scope_type) = match kind {
        Kind::Decided { had_granted } => {
            let grants_now = permissions.iter().any(|p| p.stored.state == State::Granted);
            if !had_granted && grants_now {
                (EventType::ConsentGranted, EventType::PermissionGranted)
            } else {
                (EventType::ConsentUpdated, EventType::PermissionUpdated)
            }
        }
        Kind::Revoked => (EventType::ConsentRevoked, EventType::PermissionRevoked),
        Kind::Expired => (EventType::ConsentExpired, EventType::PermissionExpired),
    };
    let consent_wanted = !outbox::subscribers(tx, &client_id, consent_type.as_str())
        .await?
        .is_empty();
    let per_scope_wanted = !outbox::subscribers(tx, &client_id, per_scope_type.as_str())
        .await?
        .is_empty();
    if !consent_wanted && !per_scope_wanted {
        return Ok(false);
    }
    let sequence: i64 = sqlx::query_scalar(
        "UPDATE grants SET event_sequence = event_sequence + 1 WHERE id = $1
         RETURNING event_sequence",
    )
    .bind(grant_id)
    .fetch_one(&mut **tx)
    .await?;
    let history_id: Option<i64> =
        sqlx::query_scalar("SELECT MAX(id) FROM permission_history WHERE grant_id = $1")
            .bind(grant_id)
            .fetch_one(&mut **tx)
            .await?;
    let history_id = history_id.map(|id| id.to_string()).unwrap_or_default();
    let actor = actor(by);
    let mut enqueued = false;
    if consent_wanted {
        let data = ConsentData {
            client_id: client_id.clone(),
            sub: user_id.clone(),
            grant_id: grant_id.to_string(),
            permissions: permissions.iter().map(entry).collect(),
            actor,
            history_id: history_id.clone(),
            sequence,
        };
        let kind = match consent_type {
            EventType::ConsentGranted => EventKind::ConsentGranted(data),
            EventType::ConsentRevoked => EventKind::ConsentRevoked(data),
            EventType::ConsentExpired => EventKind::ConsentExpired(data),
            _ => EventKind::ConsentUpdated(data),
        };
        let done = crate::webhooks::enqueue(tx, &client_id, &Event::new(kind, now), now).await?;
        enqueued |= done.deliveries > 0;
    }
    if per_scope_wanted {
        for p in permissions.iter().filter(|p| changed.contains(&p.scope)) {
            let data = PermissionData {
                client_id: client_id.clone(),
                sub: user_id.clone(),
                grant_id: grant_id.to_string(),
                permission: entry(p),
                actor,
                history_id: history_id.clone(),
                sequence,
            };
            let kind = match per_scope_type {
                EventType::PermissionGranted if p.stored.state == State::Granted => {
                    EventKind::PermissionGranted(data)
                }
                EventType::PermissionRevoked => EventKind::PermissionRevoked(data),
                EventType::PermissionExpired => EventKind::PermissionExpired(data),
                _ => EventKind::PermissionUpdated(data),
            };
            // `enqueue` writes a gated type only while the capability is enabled.
            let done =
                crate::webhooks::enqueue(tx, &client_id, &Event::new(kind, now), now).await?;
            enqueued |= done.deliveries > 0;
        }
    }
    Ok(enqueued)
}
