//! Gated capabilities: a partner asks for one, an operator decides its state.

use serde::Serialize;
use serde_json::json;

use super::CAPABILITIES;
use super::access::{Capability, CapabilityState};
use super::program::{ProgramError, Result, app_event, check_len};
use crate::clock::Timestamp;
use crate::scopes::catalogue;
use crate::store::Db;
use crate::store::apps::{self, App};

/// One capability of an app, as partners and operators read it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CapabilityView {
    pub capability: String,
    pub state: CapabilityState,
    pub reason: String,
    pub reason_text: String,
    pub note: Option<String>,
    #[schema(value_type = Option<i64>)]
    pub updated_at: Option<Timestamp>,
    /// The scopes the capability unlocks.
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CapabilitiesView {
    pub capabilities: Vec<CapabilityView>,
}

fn view(name: &str, c: &Capability) -> CapabilityView {
    let scopes = catalogue()
        .all()
        .iter()
        .filter(|s| s.capability.as_deref() == Some(name))
        .map(|s| s.name.clone())
        .collect();
    CapabilityView {
        capability: name.to_string(),
        state: c.state,
        reason: c.reason.clone(),
        reason_text: c.sentence(name),
        note: c.note.clone(),
        updated_at: (c.at > 0).then_some(c.at),
        scopes,
    }
}

/// Every known capability of the app, in catalogue order.
pub(super) fn capability_views(app: &App) -> Vec<CapabilityView> {
    app.capabilities
        .all()
        .into_iter()
        .map(|(name, c)| view(name, &c))
        .collect()
}

pub fn capabilities_view(app: &App) -> CapabilitiesView {
    CapabilitiesView {
        capabilities: capability_views(app),
    }
}

/// `Ok` for a capability of the catalogue, else `unknown_capability` naming the known ones.
pub fn known_capability(name: &str) -> Result<()> {
    if CAPABILITIES.contains(&name) {
        Ok(())
    } else {
        Err(ProgramError::invalid(
            "unknown_capability",
            format!(
                "{name:?} is not a capability (known: {})",
                CAPABILITIES.join(", ")
            ),
        ))
    }
}

/// A partner asks for a gated capability.
pub async fn request_capability(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    name: &str,
    justification: Option<&str>,
) -> Result<CapabilityView> {
    known_capability(name)?;
    let current = app.capabilities.get(name);
    if current.state != CapabilityState::Unavailable {
        return Err(ProgramError::conflict(
            match current.state {
                CapabilityState::Gated => "capability_gated",
                CapabilityState::Enabled => "capability_enabled",
                _ => "capability_requested",
            },
            current.sentence(name),
        )
        .with("capability", name)
        .with("state", current.state.as_str())
        .with("reason", current.reason.clone()));
    }
    if let Some(j) = justification {
        check_len("justification", j, 2000)?;
    }
    let requested = Capability {
        state: CapabilityState::Requested,
        reason: "awaiting_review".into(),
        at: now,
        note: justification.map(str::to_string),
    };
    let detail = json!({ "capability": name, "justification": justification });
    save(
        db,
        actor,
        app,
        name,
        requested,
        "capability.requested",
        detail,
    )
    .await
}

/// Sets the app's capability `name` to `capability` (made at `capability.at`) with its audit
/// entry (`action`, `detail`), in one transaction; answers the capability as it now reads.
async fn save(
    db: &Db,
    actor: &str,
    app: &App,
    name: &str,
    capability: Capability,
    action: &str,
    detail: serde_json::Value,
) -> Result<CapabilityView> {
    let now = capability.at;
    let mut caps = app.capabilities.clone();
    caps.0.insert(name.to_string(), capability);
    let mut tx = db.begin().await?;
    apps::set_capabilities(&mut tx, &app.client_id, &caps).await?;
    app_event(&mut tx, now, actor, app, action, detail).await?;
    tx.commit().await?;
    Ok(view(name, &caps.get(name)))
}

/// An operator's decision on one capability.
#[derive(Debug, Clone)]
pub struct CapabilityChange {
    pub name: String,
    pub state: CapabilityState,
    /// A snake_case code (default: one for the state).
    pub reason: Option<String>,
    pub note: Option<String>,
}

impl CapabilityChange {
    /// Reads a decision as the API and the CLI name it: the capability first, then its state.
    pub fn parse(
        name: &str,
        state: &str,
        reason: Option<String>,
        note: Option<String>,
    ) -> Result<Self> {
        known_capability(name)?;
        let Some(state) = CapabilityState::parse(state) else {
            return Err(ProgramError::invalid(
                "invalid_request",
                "state must be unavailable, requested, gated or enabled",
            ));
        };
        Ok(Self {
            name: name.to_string(),
            state,
            reason,
            note,
        })
    }
}

/// An operator sets a capability's state.
pub async fn set_capability(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    change: CapabilityChange,
) -> Result<CapabilityView> {
    let CapabilityChange {
        name,
        state,
        reason,
        note,
    } = change;
    known_capability(&name)?;
    let reason = reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| {
            match state {
                CapabilityState::Enabled => "enabled_by_onyx",
                CapabilityState::Gated => "gated_by_onyx",
                CapabilityState::Requested => "awaiting_review",
                CapabilityState::Unavailable => "refused_by_onyx",
            }
            .to_string()
        });
    if reason.len() > 64
        || !reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
    {
        return Err(ProgramError::invalid(
            "invalid_request",
            "reason must be a snake_case code of at most 64 characters (put words in the note)",
        ));
    }
    if let Some(n) = &note {
        check_len("note", n, 2000)?;
    }
    let detail = json!({
        "capability": name,
        "from": app.capabilities.get(&name).state,
        "to": state,
        "reason": reason,
        "note": note,
    });
    let set = Capability {
        state,
        reason,
        at: now,
        note,
    };
    save(db, actor, app, &name, set, "capability.set", detail).await
}
