//! The launch checklist: every requirement of the product document an app must meet before
//! Onyx approves it for production, met or not, with its evidence.

use serde::Serialize;

use super::access::Stage;
use super::apps::applies;
use super::program::{Result, not_submitted};
use super::{AppDraft, Step, StepState};
use crate::clock::Timestamp;
use crate::store::Db;
use crate::store::apps::{self, App};
use crate::store::reviews::{self, Review};
use crate::store::webhooks::{self, EndpointRow};

/// Where one launch requirement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequirementStatus {
    Met,
    NotMet,
    /// The requirement does not concern this app (a webhook test for an app with no endpoint);
    /// it does not hold up the launch, and it does not read as met.
    NotApplicable,
}

/// One launch requirement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Requirement {
    /// Machine-readable, e.g. `sign_in_tested`.
    pub requirement: &'static str,
    pub label: &'static str,
    /// `status == met`.
    pub met: bool,
    pub status: RequirementStatus,
    pub evidence: String,
}

impl Requirement {
    /// Whether it holds up production approval.
    pub fn blocks_launch(&self) -> bool {
        self.status == RequirementStatus::NotMet
    }
}

/// The checklist with the app's stage.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LaunchView {
    pub stage: Stage,
    pub ready_for_production: bool,
    pub requirements: Vec<Requirement>,
}

/// A time in the evidence: "2 December 2026, 07:55 UTC".
fn when(ts: Timestamp) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => format!(
            "{} {} {}, {:02}:{:02} UTC",
            t.day(),
            t.month(),
            t.year(),
            t.hour(),
            t.minute()
        ),
        Err(_) => ts.to_string(),
    }
}

fn requirement(key: &'static str, label: &'static str, met: bool, evidence: String) -> Requirement {
    Requirement {
        requirement: key,
        label,
        met,
        status: if met {
            RequirementStatus::Met
        } else {
            RequirementStatus::NotMet
        },
        evidence,
    }
}

/// "Tested webhook delivery": met when every live endpoint (the enabled ones) has received a
/// signed test delivery that succeeded; not applicable when the app has no endpoint at all.
fn webhook_requirement(draft: &AppDraft, endpoints: &[EndpointRow]) -> Requirement {
    const KEY: &str = "webhook_delivery_tested";
    const LABEL: &str = "Tested webhook delivery";
    let live: Vec<&EndpointRow> = endpoints.iter().filter(|e| e.state == "enabled").collect();
    if live.is_empty() {
        if draft.webhooks.is_empty() && endpoints.is_empty() {
            return Requirement {
                status: RequirementStatus::NotApplicable,
                ..requirement(KEY, LABEL, false, "the app has no webhook endpoint".into())
            };
        }
        let evidence = if endpoints.is_empty() {
            "the app's webhook endpoints are not live yet: the webhooks step approves them".into()
        } else {
            "every webhook endpoint of the app is disabled".into()
        };
        return requirement(KEY, LABEL, false, evidence);
    }
    let untested: Vec<&str> = live
        .iter()
        .filter(|e| e.tested_at.is_none())
        .map(|e| e.url.as_str())
        .collect();
    if untested.is_empty() {
        let last = live
            .iter()
            .filter_map(|e| e.tested_at)
            .max()
            .unwrap_or_default();
        let evidence = match live.len() {
            1 => format!(
                "a signed test delivery succeeded to the live endpoint on {}",
                when(last)
            ),
            n => format!(
                "a signed test delivery succeeded to each of the {n} live endpoints (the last on {})",
                when(last)
            ),
        };
        requirement(KEY, LABEL, true, evidence)
    } else {
        let evidence = format!(
            "no successful test delivery yet to: {}",
            untested.join(", ")
        );
        requirement(KEY, LABEL, false, evidence)
    }
}

fn step_evidence(review: &Review, step: Step) -> (bool, String) {
    match review.step(step) {
        Some(rec) if rec.state == StepState::Approved => (
            true,
            format!(
                "{} approved by Onyx on {}",
                step.title(),
                when(rec.updated_at)
            ),
        ),
        Some(rec) if rec.state == StepState::NotApplicable => {
            (true, format!("{} does not apply to this app", step.title()))
        }
        Some(rec) => (
            false,
            format!(
                "{}: {}",
                step.title(),
                match rec.state {
                    StepState::ChangesRequested => "Onyx asked for changes",
                    StepState::Rejected => "rejected",
                    _ => "waiting for Onyx's review",
                }
            ),
        ),
        None => (false, format!("{} has not been reviewed", step.title())),
    }
}

/// Every launch requirement of the product document, met or not, with its evidence.
pub fn launch_checklist(
    app: &App,
    review: &Review,
    draft: &AppDraft,
    endpoints: &[EndpointRow],
) -> Vec<Requirement> {
    let mut out = Vec::new();
    let domain_met = draft.domain.is_some() && app.domain_verified == draft.domain;
    out.push(requirement(
        "verified_ownership",
        "Verified app ownership (domain)",
        domain_met,
        match (&app.domain_verified, app.domain_verified_at) {
            (Some(d), Some(at)) if domain_met => {
                format!("{d} served its verification token on {}", when(at))
            }
            _ => "the domain under review has not served its verification token".into(),
        },
    ));
    let (met, ev) = step_evidence(review, Step::Scopes);
    out.push(requirement("scopes_approved", "Approved scopes", met, ev));
    let (met, ev) = step_evidence(review, Step::AppIdentity);
    out.push(requirement(
        "consent_copy_approved",
        "Approved consent copy",
        met,
        ev,
    ));
    out.push(requirement(
        "sign_in_tested",
        "A sign-in flow completed in preview",
        app.preview_sign_in_at.is_some(),
        match app.preview_sign_in_at {
            Some(at) => format!(
                "a test account signed in and the code was exchanged on {}",
                when(at)
            ),
            None => "no sign-in has completed in preview yet".into(),
        },
    ));
    out.push(webhook_requirement(draft, endpoints));
    out.push(requirement(
        "revocation_tested",
        "A successful revocation call in preview",
        app.preview_revocation_at.is_some(),
        match app.preview_revocation_at {
            Some(at) => format!("the app revoked a token at /revoke on {}", when(at)),
            None => "the app has not called /revoke in preview yet".into(),
        },
    ));
    let (met, ev) = step_evidence(review, Step::Support);
    out.push(requirement(
        "support_reviewed",
        "Support intake readiness",
        met,
        ev,
    ));
    let (met, ev) = step_evidence(review, Step::PrivacySecurity);
    out.push(requirement(
        "privacy_security_approved",
        "Privacy and security review",
        met,
        ev,
    ));
    if applies(Step::ConnectivityCatalogue, draft) {
        let (met, ev) = step_evidence(review, Step::ConnectivityCatalogue);
        out.push(requirement(
            "connectivity_reviewed",
            "Connectivity catalogue review",
            met,
            ev,
        ));
    }
    out
}

/// The checklist of the app's latest review, or 409 when the app was never submitted.
pub async fn launch_view(db: &Db, app: &App) -> Result<LaunchView> {
    let Some(review) = reviews::latest(db, &app.client_id).await? else {
        return Err(not_submitted());
    };
    let draft = apps::draft(db, &app.client_id).await?.unwrap_or_default();
    let endpoints = webhooks::endpoints_of_app(db, &app.client_id).await?;
    let requirements = launch_checklist(app, &review, &draft, &endpoints);
    Ok(LaunchView {
        stage: app.stage,
        ready_for_production: !requirements.iter().any(Requirement::blocks_launch),
        requirements,
    })
}
