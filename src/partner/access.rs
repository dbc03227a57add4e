//! What Onyx currently lets an app do: its stage (draft, preview, production), its access state
//! (active, limited, suspended) with the reason, and the state of each gated capability.
//!
//! These are read from the app's row at every request that names the app (authorize, token,
//! introspection, userinfo), so a change takes effect on the very next request. (On SQLite the
//! row may come from a reading connection's cache, which any commit anywhere empties first:
//! `store::fast::direct`.)

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::wire::wire_enum;

/// Whether an app in this folded state (its access state, or `draft` for an app Onyx has not
/// approved yet) may still use its tokens: active and limited apps may, for the scopes they
/// still hold.
pub fn usable_state(folded: &str) -> bool {
    matches!(folded, "active" | "limited")
}

/// Why an app may not be used at all now: its state and the reason. A typed refusal: the
/// OAuth endpoints turn it into their `unauthorized_client` error, the pages into a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `draft` or `suspended`.
    pub state: &'static str,
    pub reason: &'static str,
    pub description: String,
}

/// Whether an app may sign people in and get tokens at all (a limited app may, for the scopes
/// it still holds).
pub fn gate(
    stage: Stage,
    access: AccessState,
    reason: Option<AccessReason>,
) -> Result<(), Refusal> {
    if access == AccessState::Suspended {
        let reason = reason.unwrap_or(AccessReason::OperatorDecision);
        return Err(Refusal {
            state: "suspended",
            reason: reason.as_str(),
            description: format!(
                "Onyx has suspended this app's access. {}",
                reason.sentence()
            ),
        });
    }
    if stage == Stage::Draft {
        return Err(Refusal {
            state: "draft",
            reason: "review_pending",
            description: "Onyx has not approved this app yet: its review is not finished.".into(),
        });
    }
    Ok(())
}

wire_enum! {
    /// Where an app runs.
    pub enum Stage as "snake_case" {
        /// Registered and perhaps submitted; Onyx has not approved its identity and redirect URIs
        /// yet, so it signs nobody in.
        Draft,
        /// Signs in only the test accounts its partner lists.
        Preview,
        Production,
    }
}

wire_enum! {
    /// An app's access state (partner-program-access.txt, "Access Changes").
    pub enum AccessState as "snake_case" {
        Active,
        /// Some scopes are withdrawn; the rest keep working.
        Limited,
        /// Nothing works: no sign-in, no token, every token introspects inactive.
        Suspended,
    }
}

wire_enum! {
    /// Why an app's access changed. The first ones are set by onyx-id itself when it sees the
    /// condition; every one can also be set by an operator.
    pub enum AccessReason as "snake_case" {
        /// An operator asked for changes on a step Onyx had approved for the live app.
        ReviewReopened,
        /// The app's domain no longer serves its verification token.
        VerificationLapsed,
        ConsentExpired,
        ScopesRevoked,
        RegionWithdrawn,
        AbuseReview,
        WebhookSecurityFailure,
        SupportRequirements,
        /// Any other operator decision; the note says why.
        OperatorDecision,
        /// Access given back.
        Restored,
    }
}

impl AccessReason {
    /// A sentence a partner (and, on the "app unavailable" page, a user) can read.
    pub fn sentence(self) -> &'static str {
        match self {
            Self::ReviewReopened => "Onyx reopened part of this app's review.",
            Self::VerificationLapsed => "The app's domain verification no longer holds.",
            Self::ConsentExpired => "Consent this app relied on has expired.",
            Self::ScopesRevoked => "Access this app relied on was revoked.",
            Self::RegionWithdrawn => "This app's access is not available in this region any more.",
            Self::AbuseReview => "Onyx is reviewing this app for abuse or fraud.",
            Self::WebhookSecurityFailure => "The app's webhook endpoints failed a security check.",
            Self::SupportRequirements => "The app does not meet Onyx's support requirements.",
            Self::OperatorDecision => "Onyx changed this app's access.",
            Self::Restored => "Onyx restored this app's access.",
        }
    }
}

wire_enum! {
    /// Who set an access cause: an operator's manual decision, or onyx-id itself when it saw the
    /// condition (`review_reopened`, `verification_lapsed`). An automatic restore clears only the
    /// automatic cause of its own reason, so nothing a partner does lifts an operator's limit.
    pub enum CauseSource as "snake_case" {
        Operator,
        Automatic,
    }
}

/// One reason an app is limited or suspended. Causes stack: the app's access state is computed
/// from all of them (`effective`), and it is active only when none remains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AccessCause {
    pub source: CauseSource,
    pub reason: AccessReason,
    /// `limited` or `suspended`.
    pub state: AccessState,
    pub note: Option<String>,
    pub withdrawn_scopes: Vec<String>,
    pub actor: String,
    pub at: i64,
}

/// The access state an app's causes add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub state: AccessState,
    /// The reason of the strongest, latest cause (`restored` when none remains).
    pub reason: AccessReason,
    pub note: Option<String>,
    /// Every scope any cause withdraws.
    pub withdrawn: Vec<String>,
}

/// Suspended if any cause suspends, else limited if any limits, else active; the withdrawn
/// scopes are the union of every cause's.
pub fn effective(causes: &[AccessCause]) -> Effective {
    let rank = |s: AccessState| match s {
        AccessState::Suspended => 2,
        AccessState::Limited => 1,
        AccessState::Active => 0,
    };
    let mut withdrawn: Vec<String> = causes
        .iter()
        .flat_map(|c| c.withdrawn_scopes.iter().cloned())
        .collect();
    withdrawn.sort();
    withdrawn.dedup();
    match causes.iter().max_by_key(|c| (rank(c.state), c.at)) {
        Some(top) => Effective {
            state: top.state,
            reason: top.reason,
            note: top.note.clone(),
            withdrawn,
        },
        None => Effective {
            state: AccessState::Active,
            reason: AccessReason::Restored,
            note: None,
            withdrawn,
        },
    }
}

wire_enum! {
    /// The state of one gated capability for one app.
    pub enum CapabilityState as "snake_case" {
        /// Not requested, or refused.
        Unavailable,
        /// The partner asked; Onyx has not decided.
        Requested,
        /// Onyx holds it back for now (market, capacity, readiness); the reason says why.
        Gated,
        Enabled,
    }
}

/// A capability's state with its reason, as stored in the app row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Capability {
    pub state: CapabilityState,
    /// Machine-readable (`not_requested`, `awaiting_review`, `enabled_by_onyx`, or the
    /// operator's reason code).
    pub reason: String,
    /// When it was last set (Unix seconds).
    #[serde(default)]
    pub at: i64,
    /// The operator's or partner's words, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Capability {
    /// What an app that never asked for a capability has.
    pub fn not_requested() -> Self {
        Self {
            state: CapabilityState::Unavailable,
            reason: "not_requested".into(),
            at: 0,
            note: None,
        }
    }

    /// One sentence for people.
    pub fn sentence(&self, name: &str) -> String {
        let words = name.replace('_', " ");
        match self.state {
            CapabilityState::Enabled => format!("Onyx enabled {words} for this app."),
            CapabilityState::Requested => {
                format!("The app asked for {words}; Onyx has not decided yet.")
            }
            CapabilityState::Gated => match &self.note {
                Some(n) => format!("Onyx holds {words} back for this app for now: {n}"),
                None => format!("Onyx holds {words} back for this app for now."),
            },
            CapabilityState::Unavailable if self.reason == "not_requested" => {
                format!("The app has not asked for {words}.")
            }
            CapabilityState::Unavailable => format!("{words} is not available to this app."),
        }
    }
}

/// Every capability's state, keyed by name (a missing key is `not_requested`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Capabilities(pub BTreeMap<String, Capability>);

impl Capabilities {
    /// Parses the stored JSON; anything unreadable counts as no capability at all (the safe
    /// side: nothing gated is enabled by a corrupt value).
    pub fn parse(json: &str) -> Self {
        serde_json::from_str(json).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }

    pub fn get(&self, name: &str) -> Capability {
        self.0
            .get(name)
            .cloned()
            .unwrap_or_else(Capability::not_requested)
    }

    pub fn enabled(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, c)| c.state == CapabilityState::Enabled)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every known capability with its state, in catalogue order.
    pub fn all(&self) -> Vec<(&'static str, Capability)> {
        super::CAPABILITIES
            .iter()
            .map(|name| (*name, self.get(name)))
            .collect()
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
