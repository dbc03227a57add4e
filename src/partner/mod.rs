//! The partner program: what a partner asks for (an app's draft), how Onyx reviews it (steps,
//! automatic pre-checks, domain verification), which environment it runs in (preview, then
//! production), which gated capabilities it holds, and its access state.
//!
//! An app has two configurations. The **draft** is what the partner last wrote; the **live**
//! columns of the `apps` row are what Onyx approved and what the OAuth endpoints use. Approving a
//! review step copies that step's fields from the draft to the live app, so a live app keeps
//! working with what was approved while a change to it is under review; changing a reviewed
//! field in the draft reopens the steps that cover it.

pub mod access;
pub mod api;
pub mod domain;
pub mod prechecks;
pub mod program;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The gated capabilities (partner-program-access.txt, "Gated Capabilities").
pub const CAPABILITIES: [&str; 6] = [
    "expanded_messaging",
    "community_execution",
    "support_agent_execution",
    "partner_connectivity_catalogue",
    "market_connectivity_launches",
    "advanced_event_subscriptions",
];

/// Everything a partner writes about an app. Lists are kept in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppDraft {
    /// The name users see on the consent screen.
    pub name: String,
    /// A public description of the app.
    pub description: String,
    /// What the app is for, from the catalogue's use cases (`fintech`, `travel`…).
    pub use_case: String,
    /// The intended use in the partner's words, shown on the consent screen.
    pub purpose: String,
    /// The app's own words on the consent screen.
    pub consent_copy: String,
    /// The domain the partner proves it controls; redirect URIs live under it.
    pub domain: Option<String>,
    pub redirect_uris: Vec<String>,
    /// Exact origins (scheme, host, port) allowed to call the token endpoint from a browser.
    pub origins: Vec<String>,
    /// https endpoints that receive Onyx events.
    pub webhooks: Vec<String>,
    /// Where the app's users get help (an https URL).
    pub support_url: Option<String>,
    /// Scopes the app asks for.
    pub scopes: Vec<String>,
    /// Of those, the ones users may untick.
    pub optional_scopes: Vec<String>,
    /// Why the app needs each scope that needs review, keyed by scope.
    pub justifications: BTreeMap<String, String>,
    /// Gated capabilities the app asks for.
    pub capabilities: Vec<String>,
}

/// One step of an app's review (partner-program-access.txt, "Review Steps").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Company,
    AppIdentity,
    UseCase,
    Scopes,
    Domain,
    RedirectUris,
    Webhooks,
    ConnectivityCatalogue,
    Support,
    PrivacySecurity,
    Production,
}

impl Step {
    pub const ALL: [Step; 11] = [
        Step::Company,
        Step::AppIdentity,
        Step::UseCase,
        Step::Scopes,
        Step::Domain,
        Step::RedirectUris,
        Step::Webhooks,
        Step::ConnectivityCatalogue,
        Step::Support,
        Step::PrivacySecurity,
        Step::Production,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Company => "company",
            Self::AppIdentity => "app_identity",
            Self::UseCase => "use_case",
            Self::Scopes => "scopes",
            Self::Domain => "domain",
            Self::RedirectUris => "redirect_uris",
            Self::Webhooks => "webhooks",
            Self::ConnectivityCatalogue => "connectivity_catalogue",
            Self::Support => "support",
            Self::PrivacySecurity => "privacy_security",
            Self::Production => "production",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// What the step covers, in words.
    pub fn title(self) -> &'static str {
        match self {
            Self::Company => "Company review",
            Self::AppIdentity => "App identity: name, description and consent language",
            Self::UseCase => "Use case and intended use",
            Self::Scopes => "Requested scopes",
            Self::Domain => "Domain verification",
            Self::RedirectUris => "Redirect URIs and allowed origins",
            Self::Webhooks => "Webhook endpoints",
            Self::ConnectivityCatalogue => "Connectivity catalogue",
            Self::Support => "Support and escalation",
            Self::PrivacySecurity => "Privacy and security",
            Self::Production => "Production approval",
        }
    }

    /// The draft fields whose change reopens this step.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Company | Self::PrivacySecurity | Self::Production => &[],
            Self::AppIdentity => &["name", "description", "consent_copy"],
            Self::UseCase => &["use_case", "purpose"],
            Self::Scopes => &[
                "scopes",
                "optional_scopes",
                "justifications",
                "capabilities",
            ],
            Self::Domain => &["domain"],
            Self::RedirectUris => &["redirect_uris", "origins"],
            Self::Webhooks => &["webhooks"],
            Self::ConnectivityCatalogue => &["capabilities"],
            Self::Support => &["support_url"],
        }
    }
}

/// Where a review step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Approved,
    ChangesRequested,
    Rejected,
    NotApplicable,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::ChangesRequested => "changes_requested",
            Self::Rejected => "rejected",
            Self::NotApplicable => "not_applicable",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "changes_requested" => Self::ChangesRequested,
            "rejected" => Self::Rejected,
            "not_applicable" => Self::NotApplicable,
            _ => return None,
        })
    }

    /// Approved or not applicable: nothing left to do on the step.
    pub fn is_done(self) -> bool {
        matches!(self, Self::Approved | Self::NotApplicable)
    }
}

/// A problem the automatic pre-checks found. Every finding blocks approval of its step until
/// the draft is fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Machine-readable, e.g. `redirect_uri_not_https`.
    pub code: String,
    /// The step it blocks.
    pub step: Step,
    /// The draft field, with an index for lists (`redirect_uris[1]`).
    pub field: String,
    /// One sentence a partner can act on.
    pub message: String,
}
