//! The events a grant change writes to the webhook outbox (issue 13), in the transaction of the
//! change: one `consent.*` event with the grant's permissions as they now stand, and, for an
//! app with advanced event subscriptions, one gated `permission.*` event per scope that changed.
//! An app with no enabled endpoint subscribed to the change's types costs one query (the grant
//! and the app's endpoints, read together) and writes nothing.

use super::Tx;
use super::grants::{Actor, Permission};
use crate::clock::Timestamp;
use crate::consent::State;
use crate::store::outbox;
use crate::store::webhooks::subscribes;
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

/// The grant an event is about, with the app's enabled endpoints (read together, in one query).
struct Target {
    user_id: String,
    client_id: String,
    /// The grant's event sequence as it stands in the transaction.
    sequence: i64,
    /// The last permission history entry of the grant.
    history_id: Option<i64>,
    /// The app's enabled endpoints: id and subscribed types (a JSON list).
    endpoints: Vec<(String, String)>,
}

impl Target {
    /// The endpoints subscribed to `t`.
    fn subscribers(&self, t: EventType) -> Vec<String> {
        self.endpoints
            .iter()
            .filter(|(_, types)| subscribes(types, t.as_str()))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn wants(&self, t: EventType) -> bool {
        self.endpoints
            .iter()
            .any(|(_, types)| subscribes(types, t.as_str()))
    }
}

type TargetRow = (
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// The grant, its event sequence and last history entry, and the app's enabled endpoints.
async fn target(tx: &mut Tx<'_>, grant_id: &str) -> Result<Target, sqlx::Error> {
    // The history subquery seeks `permission_history_by_user_app` (user, app, id): every entry
    // of a grant carries the grant's user and app. The grant's row is locked on PostgreSQL, so
    // concurrent announcements of one grant are ordered and the sequence read here holds to
    // the commit (on SQLite the transaction holds the database's write lock already).
    let lock = if outbox::is_postgres(tx) {
        "FOR UPDATE OF g"
    } else {
        ""
    };
    let rows: Vec<TargetRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT g.user_id, g.client_id, g.event_sequence,
                (SELECT MAX(h.id) FROM permission_history h
                 WHERE h.user_id = g.user_id AND h.client_id = g.client_id
                   AND h.grant_id = g.id),
                e.id, e.event_types
         FROM grants g
         LEFT JOIN webhook_endpoints e ON e.client_id = g.client_id AND e.state = 'enabled'
         WHERE g.id = $1 {lock}"
    )))
    .bind(grant_id)
    .fetch_all(&mut **tx)
    .await?;
    let Some((user_id, client_id, sequence, history_id, _, _)) = rows.first().cloned() else {
        return Err(sqlx::Error::RowNotFound);
    };
    let endpoints = rows
        .into_iter()
        .filter_map(|(_, _, _, _, id, types)| Some((id?, types?)))
        .collect();
    Ok(Target {
        user_id,
        client_id,
        sequence,
        history_id,
        endpoints,
    })
}

/// Writes the events of a change to grant `grant_id` whose changed scopes are `changed`
/// (nothing when empty). Returns whether anything was enqueued (then call
/// `crate::webhooks::wake()` after the commit).
///
/// Costs one query when no enabled endpoint of the app is subscribed to the change's types;
/// otherwise the permissions are read, and the grant's next sequence number and the events'
/// outbox rows are written in one round trip. A caller with writes of its own still to make
/// can [`prepare`] the events and write them in its own batch instead.
///
/// `known` is the grant's permissions as the transaction has just left them, when the caller
/// has them at hand (a revocation does): they are not read again.
pub async fn announce(
    tx: &mut Tx<'_>,
    grant_id: &str,
    kind: Kind,
    changed: &[String],
    by: Actor,
    now: Timestamp,
    known: Option<Vec<Permission>>,
) -> Result<bool, sqlx::Error> {
    let Some(a) = prepare(tx, grant_id, kind, changed, by, now, known).await? else {
        return Ok(false);
    };
    outbox::write_outbox(tx, Some((grant_id, a.sequence)), &a.outgoing(), now).await?;
    a.written();
    Ok(true)
}

/// The events of a grant change, made ready to write by [`prepare`]: the caller writes them
/// ([`Announcement::outgoing`] into the outbox, and [`Announcement::sequence`] as the grant's
/// `event_sequence`) in the same transaction, then calls [`Announcement::written`].
pub struct Announcement {
    /// The grant's next event sequence, carried by the events.
    pub sequence: i64,
    client_id: String,
    /// Each event's id, type, body and endpoints.
    events: Vec<(String, EventType, String, Vec<String>)>,
}

impl Announcement {
    /// The events as the outbox takes them.
    pub(in crate::store) fn outgoing(&self) -> Vec<outbox::Outgoing<'_>> {
        self.events
            .iter()
            .map(|(id, t, body, to)| outbox::Outgoing {
                event_id: id,
                client_id: &self.client_id,
                event_type: t.as_str(),
                body,
                endpoints: to,
            })
            .collect()
    }

    /// Counts the events as written (see `webhooks::Mark`); call once they are written.
    pub(in crate::store) fn written(&self) {
        crate::webhooks::note_enqueued(self.events.len());
    }
}

/// The events a change to grant `grant_id` announces (see [`announce`]), read and built but
/// not written; `None` when there is nothing to write.
pub async fn prepare(
    tx: &mut Tx<'_>,
    grant_id: &str,
    kind: Kind,
    changed: &[String],
    by: Actor,
    now: Timestamp,
    known: Option<Vec<Permission>>,
) -> Result<Option<Announcement>, sqlx::Error> {
    if changed.is_empty() {
        return Ok(None);
    }
    let target = target(tx, grant_id).await?;
    // The types this change may be announced as (a decision's depend on its permissions).
    let candidates: &[EventType] = match kind {
        Kind::Decided { .. } => &[
            EventType::ConsentGranted,
            EventType::ConsentUpdated,
            EventType::PermissionGranted,
            EventType::PermissionUpdated,
        ],
        Kind::Revoked => &[EventType::ConsentRevoked, EventType::PermissionRevoked],
        Kind::Expired => &[EventType::ConsentExpired, EventType::PermissionExpired],
    };
    if !candidates.iter().any(|t| target.wants(*t)) {
        return Ok(None);
    }
    let permissions = match known {
        Some(p) => p,
        None => super::grants::permissions_in(tx, grant_id).await?,
    };
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
    let consent_to = target.subscribers(consent_type);
    let per_scope_wanted = target.wants(per_scope_type);
    if consent_to.is_empty() && !per_scope_wanted {
        return Ok(None);
    }
    let Target {
        user_id,
        client_id,
        history_id,
        ..
    } = &target;
    // The row read above is this transaction's until it commits (see `target`).
    let sequence = target.sequence + 1;
    let history_id = history_id.map(|id| id.to_string()).unwrap_or_default();
    let actor = actor(by);
    // (the event, its type, its endpoints), in the order their ids are made.
    let mut events: Vec<(Event, EventType, Vec<String>)> = Vec::new();
    if !consent_to.is_empty() {
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
        events.push((Event::new(kind, now), consent_type, consent_to));
    }
    if per_scope_wanted {
        // A gated type is written only while the capability is enabled (read once, if needed).
        let mut gate_open: Option<bool> = None;
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
            let event_type = kind.event_type();
            let to = target.subscribers(event_type);
            if to.is_empty() {
                continue;
            }
            if event_type.is_gated() {
                let open = match gate_open {
                    Some(open) => open,
                    None => {
                        let open = crate::webhooks::advanced_enabled(tx, client_id).await?;
                        *gate_open.insert(open)
                    }
                };
                if !open {
                    continue;
                }
            }
            events.push((Event::new(kind, now), event_type, to));
        }
    }
    if events.is_empty() {
        return Ok(None);
    }
    let events = events
        .into_iter()
        .map(|(e, t, to)| (crate::webhooks::new_event_id(), t, e.body(), to))
        .collect();
    Ok(Some(Announcement {
        sequence,
        client_id: client_id.clone(),
        events,
    }))
}
