//! Partner apps and their drafts: registering an app, changing its draft (which reopens the
//! review steps whose fields changed), and what a partner or operator reads about an app.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::access::{Capabilities, Stage};
use super::access_change::{AccessView, access_view};
use super::capabilities::{CapabilityView, capability_views};
use super::launch::LaunchView;
use super::partners::partner_event;
use super::program::{ProgramError, Result, app_event};
use super::review::{ReviewView, review_view_of};
use super::{AppDraft, Finding, Step, StepState, prechecks};
use crate::clock::Timestamp;
use crate::crypto::{random_secret, secret_hash};
use crate::scopes::{ScopeName, TrustLevel};
use crate::store::Db;
use crate::store::apps::{self, App, AuthMethod, ClientType, ConsentProfile, NewApp};
use crate::store::draft_versions;
use crate::store::reviews::{self, NewStep};

/// The partner's app, or `NotFound` for another partner's (never "forbidden": that would tell
/// one partner that another's client id exists).
pub async fn partner_app(db: &Db, partner_id: &str, client_id: &str) -> Result<App> {
    match apps::by_client_id(db, client_id).await? {
        Some(app) if app.partner_id.as_deref() == Some(partner_id) => Ok(app),
        _ => Err(ProgramError::NotFound("app")),
    }
}

pub async fn any_app(db: &Db, client_id: &str) -> Result<App> {
    apps::by_client_id(db, client_id)
        .await?
        .ok_or(ProgramError::NotFound("app"))
}

/// A partner app to register: its client type and its first draft.
pub struct NewPartnerApp {
    pub client_type: ClientType,
    pub draft: AppDraft,
}

/// A change to a draft: each field given replaces the draft's (`None`: left as it is).
#[derive(Debug, Clone, Default)]
pub struct DraftPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub use_case: Option<String>,
    pub purpose: Option<String>,
    pub consent_copy: Option<String>,
    /// `Some(None)` removes the domain.
    pub domain: Option<Option<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub origins: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `Some(None)` removes the back-channel logout URI.
    pub backchannel_logout_uri: Option<Option<String>>,
    pub backchannel_logout_session_required: Option<bool>,
    pub require_pushed_authorization_requests: Option<bool>,
    /// `Some(None)` removes the profile.
    pub profile: Option<Option<crate::store::apps::Profile>>,
    /// `Some(None)` removes the keys.
    pub jwks: Option<Option<serde_json::Value>>,
    /// `Some(None)` removes the key URL.
    pub jwks_uri: Option<Option<String>>,
    pub webhooks: Option<Vec<String>>,
    /// `Some(None)` removes the support URL.
    pub support_url: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    pub optional_scopes: Option<Vec<String>>,
    pub justifications: Option<BTreeMap<String, String>>,
    pub capabilities: Option<Vec<String>>,
}

impl DraftPatch {
    /// The names of the fields it changes, in alphabetical order (as the history lists them).
    pub fn fields(&self) -> Vec<String> {
        let given = [
            (
                "backchannel_logout_session_required",
                self.backchannel_logout_session_required.is_some(),
            ),
            (
                "backchannel_logout_uri",
                self.backchannel_logout_uri.is_some(),
            ),
            ("capabilities", self.capabilities.is_some()),
            ("consent_copy", self.consent_copy.is_some()),
            ("description", self.description.is_some()),
            ("domain", self.domain.is_some()),
            ("justifications", self.justifications.is_some()),
            ("jwks", self.jwks.is_some()),
            ("jwks_uri", self.jwks_uri.is_some()),
            ("name", self.name.is_some()),
            ("optional_scopes", self.optional_scopes.is_some()),
            ("origins", self.origins.is_some()),
            (
                "post_logout_redirect_uris",
                self.post_logout_redirect_uris.is_some(),
            ),
            ("profile", self.profile.is_some()),
            ("purpose", self.purpose.is_some()),
            ("redirect_uris", self.redirect_uris.is_some()),
            (
                "require_pushed_authorization_requests",
                self.require_pushed_authorization_requests.is_some(),
            ),
            ("scopes", self.scopes.is_some()),
            ("support_url", self.support_url.is_some()),
            ("use_case", self.use_case.is_some()),
            ("webhooks", self.webhooks.is_some()),
        ];
        given
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(f, _)| f.to_string())
            .collect()
    }

    /// The draft with this change made.
    pub fn apply(self, mut d: AppDraft) -> AppDraft {
        fn put<T>(slot: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *slot = v;
            }
        }
        put(&mut d.name, self.name);
        put(&mut d.description, self.description);
        put(&mut d.use_case, self.use_case);
        put(&mut d.purpose, self.purpose);
        put(&mut d.consent_copy, self.consent_copy);
        put(&mut d.domain, self.domain);
        put(&mut d.redirect_uris, self.redirect_uris);
        put(&mut d.origins, self.origins);
        put(
            &mut d.post_logout_redirect_uris,
            self.post_logout_redirect_uris,
        );
        put(&mut d.backchannel_logout_uri, self.backchannel_logout_uri);
        if let Some(required) = self.backchannel_logout_session_required {
            d.backchannel_logout_session_required = Some(required);
        }
        put(
            &mut d.require_pushed_authorization_requests,
            self.require_pushed_authorization_requests,
        );
        put(&mut d.profile, self.profile);
        put(&mut d.jwks, self.jwks);
        put(&mut d.jwks_uri, self.jwks_uri);
        put(&mut d.webhooks, self.webhooks);
        put(&mut d.support_url, self.support_url);
        put(&mut d.scopes, self.scopes);
        put(&mut d.optional_scopes, self.optional_scopes);
        put(&mut d.justifications, self.justifications);
        put(&mut d.capabilities, self.capabilities);
        normalised(d)
    }
}

/// Domain names are compared and fetched in lowercase; a blank one is none.
fn normalised(mut d: AppDraft) -> AppDraft {
    d.domain = d
        .domain
        .map(|x| x.trim().to_ascii_lowercase())
        .filter(|x| !x.is_empty());
    d
}

/// The largest JWK Set a draft may hold, as JSON (a handful of RSA keys fit).
const MAX_JWKS_LEN: usize = 20_000;

/// Limits on the shape of a draft (the pre-checks judge its content).
fn check_draft_shape(d: &AppDraft) -> Result<()> {
    for (field, value, max) in [
        ("name", d.name.as_str(), 200),
        ("description", d.description.as_str(), 2000),
        ("use_case", d.use_case.as_str(), 50),
        ("purpose", d.purpose.as_str(), 2000),
        ("consent_copy", d.consent_copy.as_str(), 2000),
        ("domain", d.domain.as_deref().unwrap_or(""), 253),
        ("support_url", d.support_url.as_deref().unwrap_or(""), 500),
        (
            "backchannel_logout_uri",
            d.backchannel_logout_uri.as_deref().unwrap_or(""),
            500,
        ),
        ("jwks_uri", d.jwks_uri.as_deref().unwrap_or(""), 500),
    ] {
        if value.chars().count() > max {
            return Err(ProgramError::invalid(
                "invalid_request",
                format!("{field} must be at most {max} characters"),
            )
            .with("field", field));
        }
    }
    if d.jwks
        .as_ref()
        .is_some_and(|j| j.to_string().len() > MAX_JWKS_LEN)
    {
        return Err(ProgramError::invalid(
            "invalid_request",
            format!("jwks must be at most {MAX_JWKS_LEN} bytes of JSON"),
        )
        .with("field", "jwks"));
    }
    // A domain the verification would call invalid gets no challenge URL: it is refused here.
    if let Some(why) = d
        .domain
        .as_deref()
        .and_then(super::domain::unverifiable_domain)
    {
        return Err(ProgramError::invalid("invalid_request", why).with("field", "domain"));
    }
    for (field, list) in [
        ("redirect_uris", &d.redirect_uris),
        ("origins", &d.origins),
        ("post_logout_redirect_uris", &d.post_logout_redirect_uris),
        ("webhooks", &d.webhooks),
        ("scopes", &d.scopes),
        ("optional_scopes", &d.optional_scopes),
        ("capabilities", &d.capabilities),
    ] {
        if list.len() > 50 {
            return Err(ProgramError::invalid(
                "invalid_request",
                format!("{field} may hold at most 50 entries"),
            )
            .with("field", field));
        }
        if let Some(v) = list.iter().find(|v| v.chars().count() > 500) {
            return Err(ProgramError::invalid(
                "invalid_request",
                format!(
                    "{field} has an entry over 500 characters ({}…)",
                    v.chars().take(40).collect::<String>()
                ),
            )
            .with("field", field));
        }
    }
    if d.justifications.len() > 50 || d.justifications.values().any(|j| j.chars().count() > 2000) {
        return Err(ProgramError::invalid(
            "invalid_request",
            "justifications may hold at most 50 entries of at most 2000 characters",
        )
        .with("field", "justifications"));
    }
    Ok(())
}

/// The scopes a draft asks for that the live app is not approved for.
fn pending_scopes(draft: &AppDraft, live: &[ScopeName]) -> Vec<String> {
    draft
        .scopes
        .iter()
        .filter(|s| !live.iter().any(|l| l == s.as_str()))
        .cloned()
        .collect()
}

/// A registered app: its client id, its draft, and (for a confidential app, this once) its
/// secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppCreated {
    pub client_id: String,
    pub client_type: &'static str,
    pub stage: Stage,
    pub draft: AppDraft,
    pub draft_version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Registers a partner app: a draft that works nowhere until Onyx approves it.
pub async fn create_app(
    db: &Db,
    now: Timestamp,
    actor: &str,
    partner_id: &str,
    new: NewPartnerApp,
) -> Result<AppCreated> {
    let NewPartnerApp { client_type, draft } = new;
    let draft = normalised(draft);
    check_draft_shape(&draft)?;
    if draft.name.trim().is_empty() {
        return Err(
            ProgramError::invalid("invalid_request", "name is required").with("field", "name")
        );
    }
    let (auth_method, secret) = match client_type {
        ClientType::Confidential => (AuthMethod::ClientSecret, Some(random_secret())),
        ClientType::Public => (AuthMethod::None, None),
    };
    let mut grant_types = vec![
        "authorization_code".to_string(),
        "refresh_token".to_string(),
    ];
    if client_type == ClientType::Confidential {
        grant_types.push("client_credentials".into());
    }
    let consent = ConsentProfile {
        pending_scopes: pending_scopes(&draft, &[]),
        ..ConsentProfile::default()
    };
    let draft_json = serde_json::to_string(&draft).map_err(|e| ProgramError::Internal(e.into()))?;
    let mut tx = db.begin().await?;
    let client_id = apps::create_in(
        &mut tx,
        NewApp {
            name: draft.name.trim(),
            client_type,
            auth_method,
            secret_hash: secret.as_deref().map(secret_hash),
            jwks: None,
            jwks_uri: None,
            id_token_alg: "ES256",
            redirect_uris: &[],
            origins: &[],
            scopes: &[],
            grant_types: &grant_types,
            lifetimes: Default::default(),
            consent: &consent,
            capabilities: &Capabilities::default(),
            partner_id: Some(partner_id),
            stage: Stage::Draft,
            description: "",
            use_case: None,
            webhooks: &[],
            support_url: None,
            draft: Some(&draft_json),
            // Live only once the redirect URIs' step is approved.
            require_par: false,
            profile: None,
        },
        now,
    )
    .await?;
    partner_event(
        &mut tx,
        now,
        actor,
        Some(partner_id),
        Some(&client_id),
        "app.created",
        json!({ "name": draft.name, "client_type": client_type.as_str() }),
    )
    .await?;
    draft_versions::record(&mut tx, &client_id, 1, &draft, &[], actor, now).await?;
    tx.commit().await?;
    Ok(AppCreated {
        client_id,
        client_type: client_type.as_str(),
        stage: Stage::Draft,
        draft,
        draft_version: 1,
        client_secret: secret,
    })
}

/// The draft fields a step covers, as JSON (what its approval records).
pub(super) fn snapshot(step: Step, draft: &AppDraft) -> Option<serde_json::Value> {
    let all = serde_json::to_value(draft).ok()?;
    let fields = step.fields();
    if fields.is_empty() {
        return None;
    }
    let picked: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .map(|f| {
            (
                (*f).to_string(),
                all.get(*f).cloned().unwrap_or(serde_json::Value::Null),
            )
        })
        .collect();
    Some(serde_json::Value::Object(picked))
}

/// A field's value in a recorded snapshot. A field the draft gained after the snapshot was
/// taken counts as its default there: an approval made before it existed still holds while the
/// field keeps its default, and nothing reopens for it.
pub(super) fn recorded_value(snapshot: &serde_json::Value, field: &str) -> serde_json::Value {
    snapshot.get(field).cloned().unwrap_or_else(|| {
        serde_json::to_value(AppDraft::default())
            .ok()
            .and_then(|d| d.get(field).cloned())
            .unwrap_or(serde_json::Value::Null)
    })
}

/// Whether `now` (a step's snapshot of the draft) holds what `recorded` was decided on.
pub(super) fn same_snapshot(
    step: Step,
    recorded: Option<&serde_json::Value>,
    now: Option<&serde_json::Value>,
) -> bool {
    match (recorded, now) {
        (None, None) => true,
        (Some(old), Some(now)) => step
            .fields()
            .iter()
            .all(|f| now.get(*f).cloned().unwrap_or_default() == recorded_value(old, f)),
        _ => false,
    }
}

/// Whether a step applies to this draft at all.
pub(super) fn applies(step: Step, draft: &AppDraft) -> bool {
    match step {
        Step::Webhooks => !draft.webhooks.is_empty(),
        Step::ConnectivityCatalogue => {
            draft.capabilities.iter().any(|c| {
                c == "partner_connectivity_catalogue" || c == "market_connectivity_launches"
            }) || draft.scopes.iter().any(|s| s == "connectivity:catalogue")
        }
        _ => true,
    }
}

/// The pre-checks' findings on `draft`, with the names of the apps Onyx approved (other than
/// this one) to catch impersonation.
pub async fn run_prechecks(db: &Db, client_id: &str, draft: &AppDraft) -> Result<Vec<Finding>> {
    let names = apps::approved_names(db, client_id).await?;
    Ok(prechecks::run(
        draft,
        &prechecks::Context {
            approved_names: &names,
        },
    ))
}

/// Whether a draft now at `draft` reopens this step of the latest review: the step was done
/// (approved, or not applicable and it applies now) and the fields it covers differ from what
/// it was decided on. The one rule for both a change and the preview of a change.
fn reopens(rec: &reviews::StepRecord, draft: &AppDraft) -> bool {
    let now_snapshot = snapshot(rec.step, draft);
    let was_done = rec.state == StepState::Approved
        || (rec.state == StepState::NotApplicable && applies(rec.step, draft));
    let differs = now_snapshot.is_some()
        && !same_snapshot(rec.step, rec.snapshot.as_ref(), now_snapshot.as_ref());
    was_done && differs
}

/// The steps of `review` that changing the draft to `draft` reopens, in the review's order.
pub fn reopened_steps(review: Option<&reviews::Review>, draft: &AppDraft) -> Vec<Step> {
    review
        .map(|r| {
            r.steps
                .iter()
                .filter(|rec| reopens(rec, draft))
                .map(|rec| rec.step)
                .collect()
        })
        .unwrap_or_default()
}

/// What a change would do, without making it: the draft it makes (checked as a change is),
/// the steps it reopens and the pre-checks' findings on it.
#[derive(Debug)]
pub struct DraftChangePreview {
    pub draft: AppDraft,
    /// The draft version the change applies to.
    pub draft_version: i64,
    pub reopened: Vec<Step>,
    pub findings: Vec<Finding>,
}

pub async fn preview_draft_change(
    db: &Db,
    app: &App,
    patch: DraftPatch,
) -> Result<DraftChangePreview> {
    let (current, version) = draft_versions::current(db, &app.client_id)
        .await?
        .ok_or(ProgramError::NotFound("app"))?;
    let draft = patch.apply(current.unwrap_or_default());
    check_draft_shape(&draft)?;
    let review = reviews::latest(db, &app.client_id).await?;
    let findings = run_prechecks(db, &app.client_id, &draft).await?;
    Ok(DraftChangePreview {
        reopened: reopened_steps(review.as_ref(), &draft),
        draft,
        draft_version: version,
        findings,
    })
}

/// Changes a partner app's draft (the fields given replace the draft's). Steps of the latest
/// review whose fields changed go back to `pending`.
pub async fn update_draft(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    patch: DraftPatch,
) -> Result<AppView> {
    Ok(change_draft(db, now, actor, app, None, patch).await?.app)
}

/// A draft changed: the app as it is now, and the review steps the change reopened.
#[derive(Debug)]
pub struct DraftUpdated {
    pub app: AppView,
    pub reopened: Vec<Step>,
}

/// [`update_draft`] on the draft version the partner read (`seen`): when the draft has moved
/// on since, nothing is changed and the refusal names the version it is at.
pub async fn update_draft_at(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    seen: i64,
    patch: DraftPatch,
) -> Result<DraftUpdated> {
    change_draft(db, now, actor, app, Some(seen), patch).await
}

async fn change_draft(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    seen: Option<i64>,
    patch: DraftPatch,
) -> Result<DraftUpdated> {
    let (current, version) = draft_versions::current(db, &app.client_id)
        .await?
        .ok_or(ProgramError::NotFound("app"))?;
    if let Some(seen) = seen.filter(|s| *s != version) {
        return Err(ProgramError::conflict(
            "draft_changed",
            format!(
                "the draft changed since version {seen}, which this edit was made on: it is at version {version} now; nothing was saved"
            ),
        )
        .with("field", "draft_version")
        .with("draft_version", version)
        .with("edited_draft_version", seen));
    }
    let changed = patch.fields();
    let draft = patch.apply(current.unwrap_or_default());
    check_draft_shape(&draft)?;
    let mut tx = db.begin().await?;
    // Raising the version first takes the app row's lock: a review decision on the version
    // read here either committed before (and is seen by the read of the review below) or
    // waits, then finds the version moved on and is refused.
    if !draft_versions::bump(
        &mut tx,
        &app.client_id,
        version,
        &draft,
        &changed,
        actor,
        now,
    )
    .await?
    {
        return Err(ProgramError::conflict(
            "draft_changed",
            "the draft changed while this edit was being made; read it again and repeat the edit",
        ));
    }
    let review = reviews::latest(db, &app.client_id).await?;
    apps::set_draft(
        &mut tx,
        &app.client_id,
        &draft,
        &pending_scopes(&draft, &app.scopes),
    )
    .await?;
    let mut reopened = Vec::new();
    if let Some(review) = &review {
        for rec in &review.steps {
            if reopens(rec, &draft) {
                reviews::set_step(
                    &mut tx,
                    &review.id,
                    &NewStep {
                        step: rec.step,
                        state: StepState::Pending,
                        reviewer: None,
                        note: Some(format!(
                            "reopened: {} changed",
                            rec.step.fields().join(", ")
                        )),
                        snapshot: rec.snapshot.clone(),
                        draft_version: Some(version + 1),
                    },
                    now,
                )
                .await?;
                reopened.push(rec.step);
            }
        }
        if !reopened.is_empty() && !review.is_open() {
            reviews::set_state(&mut tx, &review.id, "open", now).await?;
        }
        if review.is_open() || !reopened.is_empty() {
            let findings = run_prechecks(db, &app.client_id, &draft).await?;
            reviews::set_findings(&mut tx, &review.id, &findings).await?;
        }
    }
    app_event(
        &mut tx,
        now,
        actor,
        app,
        "app.draft_updated",
        json!({
            "fields": changed,
            "reopened_steps": reopened,
            "draft_version": version + 1,
        }),
    )
    .await?;
    tx.commit().await?;
    let app = any_app(db, &app.client_id).await?;
    Ok(DraftUpdated {
        app: app_view(db, &app).await?,
        reopened,
    })
}

#[path = "apps_view.rs"]
mod view;
pub use view::{
    AppList, AppSummary, AppView, DomainVerification, LiveConfig, app_view, partner_apps,
};

/// Reads a trust level as the API and the CLI name it.
pub fn parse_trust_level(raw: &str) -> Result<TrustLevel> {
    TrustLevel::parse(raw).ok_or_else(|| {
        ProgramError::invalid(
            "invalid_request",
            "trust_level must be basic, verified or trusted",
        )
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrustLevelSet {
    pub client_id: String,
    pub trust_level: &'static str,
}

/// An operator sets how far Onyx trusts the app (scopes name the level they need).
pub async fn set_trust_level(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    level: TrustLevel,
) -> Result<TrustLevelSet> {
    let mut tx = db.begin().await?;
    apps::set_trust_level(&mut tx, &app.client_id, level).await?;
    app_event(
        &mut tx,
        now,
        actor,
        app,
        "app.trust_level_set",
        json!({ "from": app.consent.trust_level.as_str(), "to": level.as_str() }),
    )
    .await?;
    tx.commit().await?;
    Ok(TrustLevelSet {
        client_id: app.client_id.clone(),
        trust_level: level.as_str(),
    })
}

/// The accounts a preview app may sign in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestAccounts {
    pub stage: Stage,
    pub test_accounts: Vec<String>,
}

pub async fn test_accounts_view(db: &Db, app: &App) -> Result<TestAccounts> {
    let emails = apps::test_accounts(db, &app.client_id).await?;
    Ok(TestAccounts {
        stage: app.stage,
        test_accounts: emails,
    })
}

/// Replaces the list of accounts a preview app may sign in.
pub async fn set_test_accounts(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    emails: &[String],
) -> Result<TestAccounts> {
    if emails.len() > 100 {
        return Err(ProgramError::invalid(
            "invalid_request",
            "at most 100 test accounts",
        ));
    }
    let mut list = Vec::new();
    for e in emails {
        crate::admin::validate_email(e)
            .map_err(|err| ProgramError::invalid("invalid_request", err.to_string()))?;
        list.push(crate::store::users::normalise_email(e));
    }
    list.sort();
    list.dedup();
    let mut tx = db.begin().await?;
    apps::set_test_accounts(&mut tx, &app.client_id, &list, now).await?;
    app_event(
        &mut tx,
        now,
        actor,
        app,
        "app.test_accounts_set",
        json!({ "count": list.len() }),
    )
    .await?;
    tx.commit().await?;
    Ok(TestAccounts {
        stage: app.stage,
        test_accounts: list,
    })
}

#[cfg(test)]
#[path = "apps_tests.rs"]
mod tests;
