//! Domain verification: the token a partner publishes on its domain, and the check that
//! fetches it. A failed check on a domain that was verified is a lapse, which limits a live app.

use serde::Serialize;
use serde_json::json;

use super::access::{AccessReason, AccessState};
use super::access_change::{auto_limit, auto_restore};
use super::domain::{Verifier, new_token};
use super::program::{ProgramError, Result, app_event};
use crate::clock::Timestamp;
use crate::store::Db;
use crate::store::apps::{self, App};

/// The token the partner must publish, and where.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainChallenge {
    pub domain: String,
    pub url: String,
    pub token: String,
    pub verified: bool,
    #[schema(value_type = Option<i64>)]
    pub verified_at: Option<Timestamp>,
}

/// What a verification found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum DomainCheck {
    Verified {
        domain: String,
        /// Always true.
        verified: bool,
        #[schema(value_type = i64)]
        verified_at: Timestamp,
        access_restored: bool,
        cause_cleared: bool,
    },
    Failed {
        domain: String,
        /// Always false.
        verified: bool,
        error: &'static str,
        error_description: String,
        verification_lapsed: bool,
        access_limited: bool,
    },
}

async fn draft_domain(db: &Db, app: &App) -> Result<String> {
    let draft = apps::draft(db, &app.client_id).await?.unwrap_or_default();
    draft
        .domain
        .ok_or_else(|| ProgramError::conflict("domain_missing", "set the app's domain first"))
}

/// The token the partner must publish (made on first read), and where.
pub async fn domain_challenge(db: &Db, verifier: &Verifier, app: &App) -> Result<DomainChallenge> {
    let domain = draft_domain(db, app).await?;
    let token = match &app.domain_token {
        Some(t) => t.clone(),
        None => {
            let t = new_token();
            let mut tx = db.begin().await?;
            apps::set_domain_token(&mut tx, &app.client_id, &t).await?;
            tx.commit().await?;
            t
        }
    };
    Ok(DomainChallenge {
        url: verifier.url_for(&domain),
        token,
        verified: app.domain_verified.as_deref() == Some(domain.as_str()),
        verified_at: app.domain_verified_at,
        domain,
    })
}

/// Fetches the domain's verification token now. A failure on a domain that was verified is a
/// lapse: the verification is withdrawn, and a live app is limited until it is verified again.
pub async fn verify_domain(
    db: &Db,
    verifier: &Verifier,
    now: Timestamp,
    actor: &str,
    app: &App,
) -> Result<DomainCheck> {
    let domain = draft_domain(db, app).await?;
    let Some(token) = app.domain_token.clone() else {
        return Err(ProgramError::conflict(
            "no_challenge",
            "read the verification token first (GET …/domain-verification)",
        ));
    };
    let result = verifier.verify(&domain, &token).await;
    let mut tx = db.begin().await?;
    let out = match &result {
        Ok(()) => {
            apps::set_domain_verified(&mut tx, &app.client_id, Some(&domain), now).await?;
            app_event(
                &mut tx,
                now,
                actor,
                app,
                "domain.verified",
                json!({ "domain": domain }),
            )
            .await?;
            // Clears onyx-id's own verification_lapsed cause only: an operator's limit (of any
            // reason) stays, whatever the partner publishes.
            let after = auto_restore(
                &mut tx,
                now,
                app,
                AccessReason::VerificationLapsed,
                json!({ "domain": domain }),
            )
            .await?;
            DomainCheck::Verified {
                domain,
                verified: true,
                verified_at: now,
                access_restored: after == Some(AccessState::Active),
                cause_cleared: after.is_some(),
            }
        }
        Err(e) => {
            let lapsed = app.domain_verified.as_deref() == Some(domain.as_str());
            let mut limited = false;
            if lapsed {
                apps::set_domain_verified(&mut tx, &app.client_id, None, now).await?;
                limited = auto_limit(
                    &mut tx,
                    now,
                    app,
                    AccessReason::VerificationLapsed,
                    Some(&e.to_string()),
                    json!({ "domain": domain }),
                )
                .await?;
            }
            app_event(
                &mut tx,
                now,
                actor,
                app,
                "domain.verification_failed",
                json!({ "domain": domain, "error": e.code(), "lapsed": lapsed }),
            )
            .await?;
            DomainCheck::Failed {
                domain,
                verified: false,
                error: e.code(),
                error_description: e.to_string(),
                verification_lapsed: lapsed,
                access_limited: limited,
            }
        }
    };
    tx.commit().await?;
    Ok(out)
}
