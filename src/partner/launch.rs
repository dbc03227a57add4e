//! The launch checklist: every requirement of the product document an app must meet before
//! Onyx approves it for production, met or not, with its evidence.

use serde::Serialize;

use super::access::Stage;
use super::apps::applies;
use super::program::{Result, not_submitted};
use super::{AppDraft, Step, StepState};
use crate::store::Db;
use crate::store::apps::{self, App};
use crate::store::reviews::{self, Review};

/// One launch requirement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Requirement {
    /// Machine-readable, e.g. `sign_in_tested`.
    pub requirement: &'static str,
    pub label: &'static str,
    pub met: bool,
    pub evidence: String,
}

/// The checklist with the app's stage.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LaunchView {
    pub stage: Stage,
    pub ready_for_production: bool,
    pub requirements: Vec<Requirement>,
}

fn requirement(key: &'static str, label: &'static str, met: bool, evidence: String) -> Requirement {
    Requirement {
        requirement: key,
        label,
        met,
        evidence,
    }
}

fn step_evidence(review: &Review, step: Step) -> (bool, String) {
    match review.step(step) {
        Some(rec) if rec.state == StepState::Approved => (
            true,
            format!(
                "{step} approved by {} at {}",
                rec.reviewer.as_deref().unwrap_or("an operator"),
                rec.updated_at
            ),
        ),
        Some(rec) if rec.state == StepState::NotApplicable => {
            (true, format!("{step} does not apply to this app"))
        }
        Some(rec) => (false, format!("{step} is {}", rec.state)),
        None => (false, format!("{step} has not been reviewed")),
    }
}

/// Every launch requirement of the product document, met or not, with its evidence.
pub fn launch_checklist(app: &App, review: &Review, draft: &AppDraft) -> Vec<Requirement> {
    let mut out = Vec::new();
    let domain_met = draft.domain.is_some() && app.domain_verified == draft.domain;
    out.push(requirement(
        "verified_ownership",
        "Verified app ownership (domain)",
        domain_met,
        match (&app.domain_verified, app.domain_verified_at) {
            (Some(d), Some(at)) if domain_met => {
                format!("{d} served its verification token at {at}")
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
            Some(at) => format!("a test account signed in and the code was exchanged at {at}"),
            None => "no sign-in has completed in preview yet".into(),
        },
    ));
    out.push(requirement(
        "webhook_delivery_tested",
        "A webhook test delivery",
        true,
        if draft.webhooks.is_empty() {
            "the app registers no webhook endpoints".into()
        } else {
            "onyx-id does not deliver webhooks yet, so there is no delivery to test".into()
        },
    ));
    out.push(requirement(
        "revocation_tested",
        "A successful revocation call in preview",
        app.preview_revocation_at.is_some(),
        match app.preview_revocation_at {
            Some(at) => format!("the app revoked a token at /revoke at {at}"),
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
    let requirements = launch_checklist(app, &review, &draft);
    Ok(LaunchView {
        stage: app.stage,
        ready_for_production: requirements.iter().all(|r| r.met),
        requirements,
    })
}
