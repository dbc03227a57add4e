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
pub mod access_change;
pub mod api;
pub mod apps;
pub mod capabilities;
pub mod domain;
pub mod launch;
pub mod partners;
pub mod prechecks;
pub mod program;
pub mod review;
pub mod secrets;
mod url_rules;
pub mod verification;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::wire::wire_enum;

/// The gated capabilities (partner-program-access.txt, "Gated Capabilities").
pub const CAPABILITIES: [&str; 6] = [
    "expanded_messaging",
    "community_execution",
    "support_agent_execution",
    "partner_connectivity_catalogue",
    "market_connectivity_launches",
    "advanced_event_subscriptions",
];

/// Everything a partner writes about an app. Lists are kept in the order given. The bounds
/// in the schema are the ones `apps::check_draft_shape` enforces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AppDraft {
    /// The name users see on the consent screen.
    #[schema(max_length = 200)]
    pub name: String,
    /// A public description of the app.
    #[schema(max_length = 2000)]
    pub description: String,
    /// What the app is for, from the catalogue's use cases (`fintech`, `travel`…).
    #[schema(max_length = 50)]
    pub use_case: String,
    /// The intended use in the partner's words, shown on the consent screen.
    #[schema(max_length = 2000)]
    pub purpose: String,
    /// The app's own words on the consent screen.
    #[schema(max_length = 2000)]
    pub consent_copy: String,
    /// The domain the partner proves it controls; redirect URIs live under it.
    #[schema(max_length = 253)]
    pub domain: Option<String>,
    #[schema(max_items = 50)]
    pub redirect_uris: Vec<String>,
    /// Exact origins (scheme, host, port) allowed to call the token endpoint from a browser.
    #[schema(max_items = 50)]
    pub origins: Vec<String>,
    /// Where the app may send people back after they sign out at the end-session endpoint
    /// (RP-Initiated Logout 1.0), compared exactly; the redirect URIs' rules apply.
    #[schema(max_items = 50)]
    pub post_logout_redirect_uris: Vec<String>,
    /// The https endpoint Onyx posts the app's logout tokens to when a session it signed in
    /// with ends (Back-Channel Logout 1.0).
    #[schema(max_length = 500)]
    pub backchannel_logout_uri: Option<String>,
    /// Whether the app needs `sid` in its logout tokens (`null`: true; Onyx always sends it).
    pub backchannel_logout_session_required: Option<bool>,
    /// The app pushes its authorization requests to the pushed authorization request endpoint
    /// first (RFC 9126), and the authorization endpoint refuses any other request from it.
    pub require_pushed_authorization_requests: bool,
    /// The security profile the app is held to: `fapi2` (the FAPI 2.0 Security Profile), or
    /// none. It needs `jwks` or `jwks_uri`.
    pub profile: Option<crate::store::apps::Profile>,
    /// The app's public keys (a JWK Set): it then authenticates with `private_key_jwt`
    /// (RFC 7523) instead of its client secret.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Where the app publishes its public keys (an https URL on a public host), instead of
    /// `jwks`.
    #[schema(max_length = 500)]
    pub jwks_uri: Option<String>,
    /// https endpoints that receive Onyx events.
    #[schema(max_items = 50)]
    pub webhooks: Vec<String>,
    /// Where the app's users get help (an https URL).
    #[schema(max_length = 500)]
    pub support_url: Option<String>,
    /// Scopes the app asks for.
    #[schema(max_items = 50)]
    pub scopes: Vec<String>,
    /// Of those, the ones users may untick.
    #[schema(max_items = 50)]
    pub optional_scopes: Vec<String>,
    /// Why the app needs each scope that needs review, keyed by scope.
    pub justifications: BTreeMap<String, String>,
    /// Gated capabilities the app asks for.
    #[schema(max_items = 50)]
    pub capabilities: Vec<String>,
}

wire_enum! {
    /// One step of an app's review (partner-program-access.txt, "Review Steps").
    ///
    /// Its string forms (serde, `FromStr`, `&'static str`, the list of names) all derive from the
    /// variant names in snake_case.
    #[derive(PartialOrd, Ord, Hash)]
    pub enum Step as "snake_case" {
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
}

impl Step {
    /// What the step covers, in words.
    pub fn title(self) -> &'static str {
        match self {
            Self::Company => "Company review",
            Self::AppIdentity => "App identity: name, description and consent language",
            Self::UseCase => "Use case and intended use",
            Self::Scopes => "Requested scopes",
            Self::Domain => "Domain verification",
            Self::RedirectUris => "Redirect URIs, allowed origins and sign-out URIs",
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
            Self::RedirectUris => &[
                "redirect_uris",
                "origins",
                "post_logout_redirect_uris",
                "backchannel_logout_uri",
                "backchannel_logout_session_required",
                "require_pushed_authorization_requests",
                "profile",
                "jwks",
                "jwks_uri",
            ],
            Self::Webhooks => &["webhooks"],
            Self::ConnectivityCatalogue => &["capabilities"],
            Self::Support => &["support_url"],
        }
    }
}

wire_enum! {
    /// Where a review step stands.
    pub enum StepState as "snake_case" {
        Pending,
        Approved,
        ChangesRequested,
        Rejected,
        NotApplicable,
    }
}

impl StepState {
    /// The states an operator's decision may set (every one but `pending`), for the CLI's
    /// list of values.
    pub fn decisions() -> impl Iterator<Item = &'static str> {
        Self::all()
            .filter(|s| *s != Self::Pending)
            .map(Self::as_str)
    }

    /// Approved or not applicable: nothing left to do on the step.
    pub fn is_done(self) -> bool {
        matches!(self, Self::Approved | Self::NotApplicable)
    }
}

/// A problem the automatic pre-checks found. Every finding blocks approval of its step until
/// the draft is fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
