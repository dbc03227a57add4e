//! The partner program's operations, shared by the partner API, the operator API and the CLI.
//! Each one checks its input, changes the database in one transaction, appends to the audit
//! log, and answers with JSON.

use serde_json::{Map, Value, json};

use super::access::{
    AccessCause, AccessReason, AccessState, Capabilities, Capability, CapabilityState, CauseSource,
    Stage,
};
use super::domain::Verifier;
use super::prechecks;
use super::{AppDraft, CAPABILITIES, Finding, Step, StepState};
use crate::clock::Timestamp;
use crate::crypto::{random_secret, secret_hash};
use crate::scopes::catalogue;
use crate::store::Db;
use crate::store::apps::{self, App, AuthMethod, ClientType, ConsentProfile, NewApp};
use crate::store::audit::{self, Event};
use crate::store::partners::{self, NewPartner};
use crate::store::reviews::{self, NewStep, Review};
use crate::store::users;
use crate::store::{access_causes, draft_versions};

/// A refusal that names what is wrong, as the partner and operator APIs answer it:
/// `{"error": code, "error_description": message, ...extra}`.
#[derive(Debug)]
pub enum ProgramError {
    /// 400: the request is malformed or a value is not acceptable.
    Invalid {
        code: &'static str,
        message: String,
        extra: Map<String, Value>,
    },
    /// 404: no such thing (or not this caller's).
    NotFound(&'static str),
    /// 409: the request is well-formed but the current state does not allow it.
    Conflict {
        code: &'static str,
        message: String,
        extra: Map<String, Value>,
    },
    Internal(anyhow::Error),
}

impl ProgramError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// Adds a member to the answer.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Self::Invalid { extra, .. } | Self::Conflict { extra, .. } = &mut self {
            extra.insert(key.into(), value.into());
        }
        self
    }

    /// One line for the CLI.
    pub fn line(&self) -> String {
        match self {
            Self::Invalid { message, .. } | Self::Conflict { message, .. } => message.clone(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::Internal(e) => format!("internal error: {e}"),
        }
    }
}

impl From<sqlx::Error> for ProgramError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

type Result<T> = std::result::Result<T, ProgramError>;

/// Appends an event about `app` (and its partner) to the audit log.
async fn app_event(
    tx: &mut crate::store::Tx<'_>,
    now: Timestamp,
    actor: &str,
    app: &App,
    action: &str,
    detail: Value,
) -> std::result::Result<(), sqlx::Error> {
    audit::append(
        tx,
        now,
        Event {
            actor,
            partner_id: app.partner_id.as_deref(),
            client_id: Some(&app.client_id),
            action,
            detail,
        },
    )
    .await
}

fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(ProgramError::invalid(
            "invalid_request",
            format!("{field} must be at most {max} characters"),
        )
        .with("field", field));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ProgramError::invalid(
            "invalid_request",
            format!("{field} must not contain control characters"),
        )
        .with("field", field));
    }
    Ok(())
}

fn check_https_url(field: &str, value: &str) -> Result<()> {
    check_len(field, value, 500)?;
    let ok = url::Url::parse(value)
        .ok()
        .is_some_and(|u| u.scheme() == "https" && u.host_str().is_some());
    if ok {
        Ok(())
    } else {
        Err(
            ProgramError::invalid("invalid_request", format!("{field} must be an https URL"))
                .with("field", field),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Partners, members, keys, operators
// ---------------------------------------------------------------------------------------------

pub struct PartnerSpec {
    pub name: String,
    pub website: String,
    pub regions: Vec<String>,
    pub support_contact: String,
    /// The Onyx account that becomes the partner's owner.
    pub owner_email: String,
}

/// Registers a partner with its owner and a first API key (`onyx-id partners create`).
pub async fn create_partner(
    db: &Db,
    now: Timestamp,
    actor: &str,
    spec: PartnerSpec,
) -> Result<Value> {
    let name = spec.name.trim();
    if name.is_empty() {
        return Err(ProgramError::invalid(
            "invalid_request",
            "the partner name is required",
        ));
    }
    check_len("name", name, 100)?;
    check_https_url("website", &spec.website)?;
    check_len("support_contact", &spec.support_contact, 200)?;
    if spec.support_contact.trim().is_empty() {
        return Err(ProgramError::invalid(
            "invalid_request",
            "a support contact (email address or https URL) is required",
        ));
    }
    for r in &spec.regions {
        if !crate::scopes::is_region_code(r) {
            return Err(ProgramError::invalid(
                "invalid_request",
                format!("region {r:?} must be an ISO 3166-1 alpha-2 code such as GB"),
            ));
        }
    }
    let Some(owner) = users::by_email(&db.pool, &spec.owner_email).await? else {
        return Err(ProgramError::invalid(
            "invalid_request",
            format!("there is no Onyx account with email {:?}", spec.owner_email),
        ));
    };
    let mut tx = db.begin().await?;
    let partner_id = partners::create(
        &mut tx,
        NewPartner {
            name,
            website: &spec.website,
            regions: &spec.regions,
            support_contact: spec.support_contact.trim(),
        },
        now,
    )
    .await?;
    partners::set_member(&mut tx, &partner_id, &owner.id, "owner", now).await?;
    let (key_id, key) =
        partners::create_key(&mut tx, Some(&partner_id), None, "first key", now).await?;
    audit::append(
        &mut tx,
        now,
        Event {
            actor,
            partner_id: Some(&partner_id),
            client_id: None,
            action: "partner.created",
            detail: json!({ "name": name, "owner": owner.email, "key_id": key_id }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json!({
        "partner_id": partner_id,
        "name": name,
        "owner": owner.email,
        "api_key_id": key_id,
        "api_key": key,
    }))
}

/// Adds a member (owner or developer) to a partner.
pub async fn add_member(
    db: &Db,
    now: Timestamp,
    actor: &str,
    partner_id: &str,
    email: &str,
    role: &str,
) -> Result<Value> {
    if !matches!(role, "owner" | "developer") {
        return Err(ProgramError::invalid(
            "invalid_request",
            "role must be owner or developer",
        ));
    }
    if partners::by_id(&db.pool, partner_id).await?.is_none() {
        return Err(ProgramError::NotFound("partner"));
    }
    let Some(user) = users::by_email(&db.pool, email).await? else {
        return Err(ProgramError::invalid(
            "invalid_request",
            format!("there is no Onyx account with email {email:?}"),
        ));
    };
    let mut tx = db.begin().await?;
    partners::set_member(&mut tx, partner_id, &user.id, role, now).await?;
    audit::append(
        &mut tx,
        now,
        Event {
            actor,
            partner_id: Some(partner_id),
            client_id: None,
            action: "partner.member_set",
            detail: json!({ "email": user.email, "role": role }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "partner_id": partner_id, "email": user.email, "role": role }))
}

/// A partner's profile, members and keys (never the keys' text).
pub async fn partner_view(db: &Db, partner_id: &str) -> Result<Value> {
    let Some(p) = partners::by_id(&db.pool, partner_id).await? else {
        return Err(ProgramError::NotFound("partner"));
    };
    let members = partners::members(&db.pool, partner_id).await?;
    let keys = partners::keys_of_partner(&db.pool, partner_id).await?;
    Ok(json!({ "partner": p, "members": members, "api_keys": keys }))
}

pub async fn create_partner_key(
    db: &Db,
    now: Timestamp,
    actor: &str,
    partner_id: &str,
    name: &str,
) -> Result<Value> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ProgramError::invalid(
            "invalid_request",
            "a key name is required",
        ));
    }
    check_len("name", name, 100)?;
    let mut tx = db.begin().await?;
    let (key_id, key) = partners::create_key(&mut tx, Some(partner_id), None, name, now).await?;
    audit::append(
        &mut tx,
        now,
        Event {
            actor,
            partner_id: Some(partner_id),
            client_id: None,
            action: "partner.key_created",
            detail: json!({ "key_id": key_id, "name": name }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "api_key_id": key_id, "name": name, "api_key": key }))
}

pub async fn revoke_partner_key(
    db: &Db,
    now: Timestamp,
    actor: &str,
    partner_id: &str,
    key_id: &str,
) -> Result<Value> {
    let mut tx = db.begin().await?;
    if !partners::revoke_key(&mut tx, partner_id, key_id, now).await? {
        return Err(ProgramError::NotFound("API key"));
    }
    audit::append(
        &mut tx,
        now,
        Event {
            actor,
            partner_id: Some(partner_id),
            client_id: None,
            action: "partner.key_revoked",
            detail: json!({ "key_id": key_id }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "api_key_id": key_id, "revoked": true }))
}

/// Makes an account an operator and gives it an API key (`onyx-id operators create`).
pub async fn create_operator(db: &Db, now: Timestamp, actor: &str, email: &str) -> Result<Value> {
    let Some(user) = users::by_email(&db.pool, email).await? else {
        return Err(ProgramError::invalid(
            "invalid_request",
            format!("there is no Onyx account with email {email:?}"),
        ));
    };
    let mut tx = db.begin().await?;
    partners::set_operator(&mut tx, &user.id, true).await?;
    let (key_id, key) =
        partners::create_key(&mut tx, None, Some(&user.id), "operator key", now).await?;
    audit::append(
        &mut tx,
        now,
        Event {
            actor,
            partner_id: None,
            client_id: None,
            action: "operator.created",
            detail: json!({ "email": user.email, "key_id": key_id }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "user_id": user.id, "email": user.email, "api_key_id": key_id, "api_key": key }))
}

// ---------------------------------------------------------------------------------------------
// Apps and drafts
// ---------------------------------------------------------------------------------------------

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
    ] {
        if value.chars().count() > max {
            return Err(ProgramError::invalid(
                "invalid_request",
                format!("{field} must be at most {max} characters"),
            )
            .with("field", field));
        }
    }
    for (field, list) in [
        ("redirect_uris", &d.redirect_uris),
        ("origins", &d.origins),
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

/// Reads a draft (or a change to one) from JSON, naming the field that does not fit.
fn parse_draft(value: Value) -> Result<AppDraft> {
    parse_draft_raw(value).map(|mut d| {
        // Domain names are compared and fetched in lowercase.
        d.domain = d
            .domain
            .map(|x| x.trim().to_ascii_lowercase())
            .filter(|x| !x.is_empty());
        d
    })
}

fn parse_draft_raw(value: Value) -> Result<AppDraft> {
    serde_json::from_value(value.clone()).map_err(|e| {
        // Name the field: try each member on its own.
        let field = value.as_object().and_then(|m| {
            m.iter()
                .find(|(k, v)| {
                    let one: Map<String, Value> =
                        std::iter::once(((*k).clone(), (*v).clone())).collect();
                    serde_json::from_value::<AppDraft>(Value::Object(one)).is_err()
                })
                .map(|(k, _)| k.clone())
        });
        match field {
            Some(f) => ProgramError::invalid("invalid_request", format!("{f} is not valid: {e}"))
                .with("field", f),
            None => ProgramError::invalid(
                "invalid_request",
                format!("the app description is not valid: {e}"),
            ),
        }
    })
}

/// The scopes a draft asks for that the live app is not approved for.
fn pending_scopes(draft: &AppDraft, live: &[String]) -> Vec<String> {
    draft
        .scopes
        .iter()
        .filter(|s| !live.contains(s))
        .cloned()
        .collect()
}

/// Registers a partner app: a draft that works nowhere until Onyx approves it.
pub async fn create_app(
    db: &Db,
    now: Timestamp,
    actor: &str,
    partner_id: &str,
    body: Value,
) -> Result<Value> {
    let mut body = match body {
        Value::Object(m) => m,
        _ => {
            return Err(ProgramError::invalid(
                "invalid_request",
                "the body must be a JSON object",
            ));
        }
    };
    let client_type = match body.remove("client_type") {
        None => ClientType::Confidential,
        Some(Value::String(s)) if s == "confidential" => ClientType::Confidential,
        Some(Value::String(s)) if s == "public" => ClientType::Public,
        Some(_) => {
            return Err(ProgramError::invalid(
                "invalid_request",
                "client_type must be confidential or public",
            )
            .with("field", "client_type"));
        }
    };
    let draft = parse_draft(Value::Object(body))?;
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
    let pending = pending_scopes(&draft, &[]);
    let consent = ConsentProfile {
        pending_scopes: pending,
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
        },
        now,
    )
    .await?;
    audit::append(
        &mut tx,
        now,
        Event {
            actor,
            partner_id: Some(partner_id),
            client_id: Some(&client_id),
            action: "app.created",
            detail: json!({ "name": draft.name, "client_type": client_type.as_str() }),
        },
    )
    .await?;
    draft_versions::record(&mut tx, &client_id, 1, &draft, &[], actor, now).await?;
    tx.commit().await?;
    let mut out = json!({
        "client_id": client_id,
        "client_type": client_type.as_str(),
        "stage": "draft",
        "draft": draft,
        "draft_version": 1,
    });
    if let Some(secret) = secret {
        out["client_secret"] = secret.into();
    }
    Ok(out)
}

/// The draft fields a step covers, as JSON (what its approval records).
fn snapshot(step: Step, draft: &AppDraft) -> Option<Value> {
    let all = serde_json::to_value(draft).ok()?;
    let fields = step.fields();
    if fields.is_empty() {
        return None;
    }
    let picked: Map<String, Value> = fields
        .iter()
        .map(|f| {
            (
                (*f).to_string(),
                all.get(*f).cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    Some(Value::Object(picked))
}

/// Whether a step applies to this draft at all.
fn applies(step: Step, draft: &AppDraft) -> bool {
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

/// Changes a partner app's draft (JSON merge: the fields given replace the draft's). Steps of
/// the latest review whose fields changed go back to `pending`.
pub async fn update_draft(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    patch: Value,
) -> Result<Value> {
    let Value::Object(patch) = patch else {
        return Err(ProgramError::invalid(
            "invalid_request",
            "the body must be a JSON object",
        ));
    };
    let (current, version) = draft_versions::current(&db.pool, &app.client_id)
        .await?
        .ok_or(ProgramError::NotFound("app"))?;
    let current = current.unwrap_or_default();
    let mut merged =
        serde_json::to_value(&current).map_err(|e| ProgramError::Internal(e.into()))?;
    let changed: Vec<String> = patch.keys().cloned().collect();
    if let Some(m) = merged.as_object_mut() {
        for (k, v) in patch {
            m.insert(k, v);
        }
    }
    let draft = parse_draft(merged)?;
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
    let review = reviews::latest(&db.pool, &app.client_id).await?;
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
            let now_snapshot = snapshot(rec.step, &draft);
            let was_done = rec.state == StepState::Approved
                || (rec.state == StepState::NotApplicable && applies(rec.step, &draft));
            let differs = now_snapshot.is_some() && now_snapshot != rec.snapshot;
            if was_done && differs {
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
                reopened.push(rec.step.as_str());
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
    app_view(db, &app).await
}

async fn run_prechecks(db: &Db, client_id: &str, draft: &AppDraft) -> Result<Vec<Finding>> {
    let names = apps::approved_names(&db.pool, client_id).await?;
    Ok(prechecks::run(
        draft,
        &prechecks::Context {
            approved_names: &names,
        },
    ))
}

/// Submits the draft for review: runs the pre-checks and opens a review (or, when one is open,
/// records the new findings). Steps approved in the previous review whose fields did not change
/// stay approved.
pub async fn submit(db: &Db, now: Timestamp, actor: &str, app: &App) -> Result<Value> {
    let Some((Some(draft), version)) = draft_versions::current(&db.pool, &app.client_id).await?
    else {
        return Err(ProgramError::conflict(
            "not_a_partner_app",
            "this app was registered by an operator and has no draft to review",
        ));
    };
    let findings = run_prechecks(db, &app.client_id, &draft).await?;
    let previous = reviews::latest(&db.pool, &app.client_id).await?;
    let mut tx = db.begin().await?;
    match &previous {
        Some(open) if open.is_open() => {
            reviews::set_findings(&mut tx, &open.id, &findings).await?;
            app_event(
                &mut tx,
                now,
                actor,
                app,
                "review.resubmitted",
                json!({ "review": open.number, "findings": findings.len() }),
            )
            .await?;
        }
        _ => {
            let number = previous.as_ref().map_or(1, |r| r.number + 1);
            let steps: Vec<NewStep> = Step::ALL
                .iter()
                .map(|&step| {
                    let snap = snapshot(step, &draft);
                    let carried = previous.as_ref().and_then(|r| r.step(step)).filter(|rec| {
                        rec.state == StepState::Approved
                            && rec.snapshot == snap
                            && (step != Step::Production || app.stage == Stage::Production)
                    });
                    if !applies(step, &draft) {
                        NewStep {
                            step,
                            state: StepState::NotApplicable,
                            reviewer: Some("onyx-id".into()),
                            note: Some("nothing to review for this app".into()),
                            snapshot: snap,
                            draft_version: Some(version),
                        }
                    } else if let Some(rec) = carried {
                        NewStep {
                            step,
                            state: StepState::Approved,
                            reviewer: rec.reviewer.clone(),
                            note: Some(format!(
                                "approved in review {}; unchanged",
                                previous.as_ref().map_or(0, |r| r.number)
                            )),
                            snapshot: snap,
                            draft_version: rec.draft_version,
                        }
                    } else {
                        NewStep {
                            step,
                            state: StepState::Pending,
                            reviewer: None,
                            note: None,
                            snapshot: None,
                            draft_version: None,
                        }
                    }
                })
                .collect();
            reviews::open(&mut tx, &app.client_id, number, &findings, &steps, now).await?;
            app_event(
                &mut tx,
                now,
                actor,
                app,
                "review.submitted",
                json!({ "review": number, "findings": findings.len() }),
            )
            .await?;
        }
    }
    tx.commit().await?;
    review_view(db, app).await
}

/// The latest review with its findings, or 409 when the app was never submitted.
pub async fn review_view(db: &Db, app: &App) -> Result<Value> {
    let Some(review) = reviews::latest(&db.pool, &app.client_id).await? else {
        return Err(ProgramError::conflict(
            "not_submitted",
            "this app has not been submitted for review yet",
        ));
    };
    let version = draft_versions::current(&db.pool, &app.client_id)
        .await?
        .map(|(_, v)| v);
    Ok(review_json(&review, version))
}

/// The review as JSON. `draft_version` is the draft's current version: the one a decision
/// must name.
fn review_json(review: &Review, draft_version: Option<i64>) -> Value {
    let steps: Vec<Value> = review
        .steps
        .iter()
        .map(|s| {
            let blocking: Vec<&Finding> = review
                .findings
                .iter()
                .filter(|f| f.step == s.step)
                .collect();
            json!({
                "step": s.step,
                "title": s.step.title(),
                "state": s.state,
                "reviewer": s.reviewer,
                "note": s.note,
                "updated_at": s.updated_at,
                "decided_on_draft_version": s.draft_version,
                "blocking_findings": blocking.len(),
            })
        })
        .collect();
    json!({
        "review": review.number,
        "state": review.state,
        "submitted_at": review.submitted_at,
        "closed_at": review.closed_at,
        "draft_version": draft_version,
        "steps": steps,
        "findings": review.findings,
    })
}

/// Everything about an app a partner or operator reads.
pub async fn app_view(db: &Db, app: &App) -> Result<Value> {
    let (draft, version) = draft_versions::current(&db.pool, &app.client_id)
        .await?
        .unwrap_or((None, 1));
    let review = reviews::latest(&db.pool, &app.client_id).await?;
    let access = access_view(db, app).await?;
    let caps: Vec<Value> = app
        .capabilities
        .all()
        .into_iter()
        .map(|(name, c)| capability_json(name, &c))
        .collect();
    Ok(json!({
        "client_id": app.client_id,
        "partner_id": app.partner_id,
        "client_type": app.client_type.as_str(),
        "stage": app.stage,
        "trust_level": app.consent.trust_level.as_str(),
        "access": access,
        "live": {
            "name": app.name,
            "description": app.description,
            "use_case": app.use_case,
            "purpose": app.consent.purpose,
            "consent_copy": app.consent.consent_copy,
            "domain": app.live_domain,
            "redirect_uris": app.redirect_uris,
            "origins": app.origins,
            "webhooks": app.webhooks,
            "support_url": app.support_url,
            "scopes": app.scopes,
            "optional_scopes": app.consent.optional_scopes,
            "pending_scopes": app.consent.pending_scopes,
            "grant_types": app.grant_types,
        },
        "draft": draft,
        "draft_version": draft.is_some().then_some(version),
        "domain_verification": {
            "verified_domain": app.domain_verified,
            "verified_at": app.domain_verified_at,
        },
        "capabilities": caps,
        "review": review.as_ref().map(|r| review_json(r, Some(version))),
    }))
}

/// The app's effective access state and every cause it adds up from.
async fn access_view(db: &Db, app: &App) -> Result<Value> {
    let causes = access_causes::of_app(&db.pool, &app.client_id).await?;
    Ok(access_json(app, &causes))
}

fn access_json(app: &App, causes: &[AccessCause]) -> Value {
    let causes: Vec<Value> = causes
        .iter()
        .map(|c| {
            json!({
                "source": c.source,
                "reason": c.reason,
                "reason_text": c.reason.sentence(),
                "state": c.state,
                "note": c.note,
                "withdrawn_scopes": c.withdrawn_scopes,
                "actor": c.actor,
                "since": c.at,
            })
        })
        .collect();
    json!({
        "state": app.access,
        "reason": app.access_reason,
        "reason_text": app.access_reason.map(AccessReason::sentence),
        "note": app.access_note,
        "withdrawn_scopes": app.withdrawn,
        "changed_at": app.access_changed_at,
        "causes": causes,
    })
}

fn capability_json(name: &str, c: &Capability) -> Value {
    let scopes: Vec<&str> = catalogue()
        .all()
        .iter()
        .filter(|s| s.capability.as_deref() == Some(name))
        .map(|s| s.name.as_str())
        .collect();
    json!({
        "capability": name,
        "state": c.state,
        "reason": c.reason,
        "reason_text": c.sentence(name),
        "note": c.note,
        "updated_at": (c.at > 0).then_some(c.at),
        "scopes": scopes,
    })
}

pub async fn partner_apps(db: &Db, partner_id: &str) -> Result<Value> {
    let list = apps::of_partner(&db.pool, partner_id).await?;
    let out: Vec<Value> = list
        .iter()
        .map(|a| {
            json!({
                "client_id": a.client_id,
                "name": a.name,
                "stage": a.stage,
                "access_state": a.access,
            })
        })
        .collect();
    Ok(json!({ "apps": out }))
}

// ---------------------------------------------------------------------------------------------
// Review decisions
// ---------------------------------------------------------------------------------------------

/// Scopes withdrawn while part of a live app's review is reopened: those that need review.
fn review_scopes(app: &App) -> Vec<String> {
    app.scopes
        .iter()
        .filter(|s| catalogue().get(s).is_some_and(|i| i.review))
        .cloned()
        .collect()
}

/// onyx-id limits a live app on its own (`review_reopened`, `verification_lapsed`): the scopes
/// that need review are withdrawn until the cause is fixed. The cause stacks with any other
/// (an operator's limit, the other automatic one). True if it added the cause.
async fn auto_limit(
    tx: &mut crate::store::Tx<'_>,
    now: Timestamp,
    app: &App,
    reason: AccessReason,
    note: Option<&str>,
    mut detail: Value,
) -> std::result::Result<bool, sqlx::Error> {
    let withdrawn = review_scopes(app);
    if app.stage == Stage::Draft || withdrawn.is_empty() {
        return Ok(false);
    }
    access_causes::put(
        tx,
        &app.client_id,
        &AccessCause {
            source: CauseSource::Automatic,
            reason,
            state: AccessState::Limited,
            note: note.map(str::to_string),
            withdrawn_scopes: withdrawn.clone(),
            actor: "onyx-id".into(),
            at: now,
        },
    )
    .await?;
    let after = access_causes::recompute(tx, &app.client_id, now).await?;
    detail["reason"] = json!(reason);
    detail["withdrawn_scopes"] = json!(withdrawn);
    detail["access_state"] = json!(after.state);
    app_event(tx, now, "onyx-id", app, "access.limited", detail).await?;
    Ok(true)
}

/// onyx-id clears the automatic cause `reason` once it is fixed, and nothing else: the app is
/// active again only if no other cause remains. Returns the state after, if it cleared one.
async fn auto_restore(
    tx: &mut crate::store::Tx<'_>,
    now: Timestamp,
    app: &App,
    reason: AccessReason,
    mut detail: Value,
) -> std::result::Result<Option<AccessState>, sqlx::Error> {
    let cleared = access_causes::clear(
        tx,
        &app.client_id,
        Some(CauseSource::Automatic),
        Some(reason),
    )
    .await?;
    if cleared == 0 {
        return Ok(None);
    }
    let after = access_causes::recompute(tx, &app.client_id, now).await?;
    detail["cause"] = json!(reason);
    detail["access_state"] = json!(after.state);
    let action = if after.state == AccessState::Active {
        "access.restored"
    } else {
        "access.cause_cleared"
    };
    app_event(tx, now, "onyx-id", app, action, detail).await?;
    Ok(Some(after.state))
}

/// The 409 for a decision made on draft version `seen` when the draft is at `current`: what
/// changed since, field by field (before: at `seen`, after: now), and the edits in between.
async fn draft_changed(db: &Db, client_id: &str, seen: i64, current: i64) -> Result<ProgramError> {
    let versions = draft_versions::since(&db.pool, client_id, seen.clamp(1, current)).await?;
    let before = versions
        .iter()
        .find(|v| v.version == seen)
        .map(|v| serde_json::to_value(v.draft()).unwrap_or_default());
    let after = versions
        .iter()
        .find(|v| v.version == current)
        .map(|v| serde_json::to_value(v.draft()).unwrap_or_default());
    let mut changes = Vec::new();
    if let (Some(Value::Object(before)), Some(Value::Object(after))) = (&before, &after) {
        for (field, now_value) in after {
            let then = before.get(field).cloned().unwrap_or(Value::Null);
            if &then != now_value {
                changes.push(json!({ "field": field, "before": then, "after": now_value }));
            }
        }
    }
    let edits: Vec<Value> = versions
        .iter()
        .filter(|v| v.version > seen)
        .map(|v| json!({ "draft_version": v.version, "fields": v.fields(), "actor": v.actor, "at": v.at }))
        .collect();
    let fields: Vec<&str> = changes.iter().filter_map(|c| c["field"].as_str()).collect();
    let message = if seen > current || seen < 1 {
        format!("draft version {seen} does not exist; the draft is at version {current}")
    } else {
        format!(
            "the draft changed since version {seen} (now {current}{}); read the review again and decide on version {current}",
            if fields.is_empty() {
                String::new()
            } else {
                format!(": {}", fields.join(", "))
            }
        )
    };
    Ok(ProgramError::conflict("draft_changed", message)
        .with("draft_version", current)
        .with("decided_on_draft_version", seen)
        .with("changed_fields", json!(fields))
        .with("changes", json!(changes))
        .with("edits", json!(edits)))
}

/// An operator decides one step of the app's latest review, on the draft version they read
/// (`draft_version`): a decision on an older version is refused with what changed since, so an
/// approval never makes live a value the reviewer did not see.
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    step: Step,
    decision: StepState,
    note: Option<&str>,
    draft_version: Option<i64>,
) -> Result<Value> {
    let Some(review) = reviews::latest(&db.pool, &app.client_id).await? else {
        return Err(ProgramError::conflict(
            "not_submitted",
            "this app has not been submitted for review yet",
        ));
    };
    let Some((Some(draft), current_version)) =
        draft_versions::current(&db.pool, &app.client_id).await?
    else {
        return Err(ProgramError::conflict(
            "not_a_partner_app",
            "this app has no draft to review",
        ));
    };
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if let Some(n) = note {
        check_len("note", n, 2000)?;
    }
    match decision {
        StepState::Pending => {
            return Err(ProgramError::invalid(
                "invalid_request",
                "a decision is approved, changes_requested, rejected or not_applicable",
            ));
        }
        StepState::ChangesRequested | StepState::Rejected if note.is_none() => {
            return Err(ProgramError::invalid(
                "invalid_request",
                "say what must change: a note is required",
            ));
        }
        StepState::NotApplicable if applies(step, &draft) => {
            return Err(ProgramError::conflict(
                "step_applies",
                format!("the {} step applies to this app", step.as_str()),
            ));
        }
        _ => {}
    }
    let Some(seen) = draft_version else {
        return Err(ProgramError::invalid(
            "invalid_request",
            format!(
                "draft_version is required: the version of the draft the decision was made on (the review shows it; it is {current_version} now)"
            ),
        )
        .with("field", "draft_version")
        .with("draft_version", current_version));
    };
    if seen != current_version {
        return Err(draft_changed(db, &app.client_id, seen, current_version).await?);
    }
    let current = review.step_state(step);
    let reopening_live = decision == StepState::ChangesRequested
        && current == StepState::Approved
        && app.stage != Stage::Draft;
    if !review.is_open() && !reopening_live {
        return Err(ProgramError::conflict(
            "review_closed",
            format!(
                "review {} is {}; the partner must submit again",
                review.number, review.state
            ),
        )
        .with("review_state", review.state.clone()));
    }
    let mut checklist = None;
    if decision == StepState::Approved {
        let findings = run_prechecks(db, &app.client_id, &draft).await?;
        let blocking: Vec<&Finding> = findings.iter().filter(|f| f.step == step).collect();
        if !blocking.is_empty() {
            return Err(ProgramError::conflict(
                "step_blocked",
                format!(
                    "the pre-checks found {} problem(s) in the {} step; the partner must fix them first",
                    blocking.len(),
                    step.as_str()
                ),
            )
            .with("findings", serde_json::to_value(&blocking).unwrap_or_default()));
        }
        if step == Step::Domain && (draft.domain.is_none() || app.domain_verified != draft.domain) {
            return Err(ProgramError::conflict(
                "domain_not_verified",
                "the domain under review has not been verified yet",
            ));
        }
        if step == Step::Production {
            let unfinished: Vec<&str> = review
                .steps
                .iter()
                .filter(|s| s.step != Step::Production && !s.state.is_done())
                .map(|s| s.step.as_str())
                .collect();
            if !unfinished.is_empty() {
                return Err(ProgramError::conflict(
                    "review_unfinished",
                    format!(
                        "every other step must be approved first: {}",
                        unfinished.join(", ")
                    ),
                )
                .with("steps", unfinished));
            }
            let list = launch_checklist(db, app, &review, &draft).await?;
            if list.iter().any(|r| r["met"] == false) {
                return Err(ProgramError::conflict(
                    "launch_requirements_unmet",
                    "the launch checklist is not met yet",
                )
                .with("launch_checklist", list));
            }
            checklist = Some(list);
        }
    }
    let reviewer = Some(actor.to_string());
    let snap = (decision == StepState::Approved)
        .then(|| snapshot(step, &draft))
        .flatten();
    let mut tx = db.begin().await?;
    // The version is checked again under the app row's lock: an edit that landed after the
    // read above refuses the decision instead of being made live unseen.
    if let Err(current) = draft_versions::lock_version(&mut tx, &app.client_id, seen).await? {
        drop(tx);
        return Err(draft_changed(db, &app.client_id, seen, current).await?);
    }
    reviews::set_step(
        &mut tx,
        &review.id,
        &NewStep {
            step,
            state: decision,
            reviewer,
            note: note.map(str::to_string),
            snapshot: snap,
            draft_version: Some(seen),
        },
        now,
    )
    .await?;
    let mut effects = Vec::new();
    if decision == StepState::Approved {
        apps::apply_step(&mut tx, &app.client_id, step, &draft).await?;
        if step == Step::Scopes {
            // The draft's requests are now the live approval.
            apps::set_draft(&mut tx, &app.client_id, &draft, &[]).await?;
        }
        if step == Step::Production && app.stage != Stage::Production {
            apps::set_stage(&mut tx, &app.client_id, Stage::Production).await?;
            effects.push("stage: production");
        }
    }
    // The steps' states after this decision.
    let mut states: Vec<(Step, StepState)> =
        review.steps.iter().map(|s| (s.step, s.state)).collect();
    if let Some(s) = states.iter_mut().find(|(s, _)| *s == step) {
        s.1 = decision;
    }
    let done = |s: Step| states.iter().any(|(x, st)| *x == s && st.is_done());
    if app.stage == Stage::Draft
        && [Step::AppIdentity, Step::Scopes, Step::RedirectUris]
            .into_iter()
            .all(done)
    {
        apps::set_stage(&mut tx, &app.client_id, Stage::Preview).await?;
        effects.push("stage: preview");
    }
    let review_state = if decision == StepState::Rejected {
        "rejected"
    } else if states.iter().all(|(_, s)| s.is_done()) {
        "approved"
    } else {
        "open"
    };
    if review_state != review.state {
        reviews::set_state(&mut tx, &review.id, review_state, now).await?;
    }
    // A live app whose approved step is reopened loses the scopes that need review until the
    // step is approved again; approving every reopened step gives them back.
    if reopening_live
        && auto_limit(
            &mut tx,
            now,
            app,
            AccessReason::ReviewReopened,
            note,
            json!({ "step": step.as_str() }),
        )
        .await?
    {
        effects.push("access: limited (review_reopened)");
    }
    let nothing_reopened = states
        .iter()
        .all(|(s, st)| *s == Step::Production || *st != StepState::ChangesRequested);
    if decision == StepState::Approved && nothing_reopened {
        match auto_restore(
            &mut tx,
            now,
            app,
            AccessReason::ReviewReopened,
            json!({ "step": step.as_str() }),
        )
        .await?
        {
            Some(AccessState::Active) => effects.push("access: active (restored)"),
            Some(_) => effects.push("access: review_reopened cleared; other causes remain"),
            None => {}
        }
    }
    app_event(
        &mut tx,
        now,
        actor,
        app,
        "review.step_decided",
        json!({
            "review": review.number,
            "step": step.as_str(),
            "state": decision,
            "note": note,
            "effects": effects,
            "launch_checklist": checklist,
            "draft_version": seen,
        }),
    )
    .await?;
    tx.commit().await?;
    let app = any_app(db, &app.client_id).await?;
    let mut out = review_view(db, &app).await?;
    out["stage"] = json!(app.stage);
    out["access"] = access_view(db, &app).await?;
    out["effects"] = json!(effects);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Launch checklist
// ---------------------------------------------------------------------------------------------

fn requirement(key: &str, label: &str, met: bool, evidence: String) -> Value {
    json!({ "requirement": key, "label": label, "met": met, "evidence": evidence })
}

fn step_evidence(review: &Review, step: Step) -> (bool, String) {
    match review.step(step) {
        Some(rec) if rec.state == StepState::Approved => (
            true,
            format!(
                "{} approved by {} at {}",
                step.as_str(),
                rec.reviewer.as_deref().unwrap_or("an operator"),
                rec.updated_at
            ),
        ),
        Some(rec) if rec.state == StepState::NotApplicable => (
            true,
            format!("{} does not apply to this app", step.as_str()),
        ),
        Some(rec) => (
            false,
            format!("{} is {}", step.as_str(), rec.state.as_str()),
        ),
        None => (false, format!("{} has not been reviewed", step.as_str())),
    }
}

/// Every launch requirement of the product document, met or not, with its evidence.
pub async fn launch_checklist(
    db: &Db,
    app: &App,
    review: &Review,
    draft: &AppDraft,
) -> Result<Vec<Value>> {
    let _ = db;
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
    Ok(out)
}

pub async fn launch_view(db: &Db, app: &App) -> Result<Value> {
    let Some(review) = reviews::latest(&db.pool, &app.client_id).await? else {
        return Err(ProgramError::conflict(
            "not_submitted",
            "this app has not been submitted for review yet",
        ));
    };
    let draft = apps::draft(&db.pool, &app.client_id)
        .await?
        .unwrap_or_default();
    let list = launch_checklist(db, app, &review, &draft).await?;
    let ready = list.iter().all(|r| r["met"] == true);
    Ok(json!({ "stage": app.stage, "ready_for_production": ready, "requirements": list }))
}

// ---------------------------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------------------------

fn known_capability(name: &str) -> Result<()> {
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

pub fn capabilities_view(app: &App) -> Value {
    let caps: Vec<Value> = app
        .capabilities
        .all()
        .into_iter()
        .map(|(n, c)| capability_json(n, &c))
        .collect();
    json!({ "capabilities": caps })
}

/// A partner asks for a gated capability.
pub async fn request_capability(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    name: &str,
    justification: Option<&str>,
) -> Result<Value> {
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
    let mut caps = app.capabilities.clone();
    caps.0.insert(
        name.to_string(),
        Capability {
            state: CapabilityState::Requested,
            reason: "awaiting_review".into(),
            at: now,
            note: justification.map(str::to_string),
        },
    );
    let mut tx = db.begin().await?;
    apps::set_capabilities(&mut tx, &app.client_id, &caps).await?;
    app_event(
        &mut tx,
        now,
        actor,
        app,
        "capability.requested",
        json!({ "capability": name, "justification": justification }),
    )
    .await?;
    tx.commit().await?;
    Ok(capability_json(name, &caps.get(name)))
}

/// An operator's decision on one capability.
pub struct CapabilityChange<'a> {
    pub name: &'a str,
    /// `unavailable`, `requested`, `gated` or `enabled`.
    pub state: &'a str,
    /// A snake_case code (default: one for the state).
    pub reason: Option<&'a str>,
    pub note: Option<&'a str>,
}

/// An operator sets a capability's state.
pub async fn set_capability(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    change: CapabilityChange<'_>,
) -> Result<Value> {
    let CapabilityChange {
        name,
        state,
        reason,
        note,
    } = change;
    known_capability(name)?;
    let Some(state) = CapabilityState::parse(state) else {
        return Err(ProgramError::invalid(
            "invalid_request",
            "state must be unavailable, requested, gated or enabled",
        ));
    };
    let reason = reason
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
    if let Some(n) = note {
        check_len("note", n, 2000)?;
    }
    let mut caps = app.capabilities.clone();
    let old = caps.get(name);
    caps.0.insert(
        name.to_string(),
        Capability {
            state,
            reason,
            at: now,
            note: note.map(str::to_string),
        },
    );
    let mut tx = db.begin().await?;
    apps::set_capabilities(&mut tx, &app.client_id, &caps).await?;
    app_event(
        &mut tx,
        now,
        actor,
        app,
        "capability.set",
        json!({
            "capability": name,
            "from": old.state,
            "to": state,
            "reason": caps.get(name).reason,
            "note": note,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(capability_json(name, &caps.get(name)))
}

/// An operator sets how far Onyx trusts the app (scopes name the level they need).
pub async fn set_trust_level(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    level: &str,
) -> Result<Value> {
    let Some(level) = crate::scopes::TrustLevel::parse(level) else {
        return Err(ProgramError::invalid(
            "invalid_request",
            "trust_level must be basic, verified or trusted",
        ));
    };
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
    Ok(json!({ "client_id": app.client_id, "trust_level": level.as_str() }))
}

// ---------------------------------------------------------------------------------------------
// Access changes
// ---------------------------------------------------------------------------------------------

/// An operator's access decision.
pub struct AccessChange<'a> {
    /// `active`, `limited` or `suspended`.
    pub state: &'a str,
    /// An `AccessReason` code (`restored` is the default, and the only one, for `active`).
    pub reason: Option<&'a str>,
    pub note: Option<&'a str>,
    /// The scopes a limit withdraws.
    pub withdrawn: &'a [String],
    /// For `active`: the one cause to clear (its reason; it may be an automatic one, which
    /// the operator then overrides). Without it, `active` clears every operator cause and
    /// leaves the automatic ones, whose condition onyx-id still sees.
    pub cause: Option<&'a str>,
}

/// An operator limits, suspends or restores an app. A limit or suspension adds a cause (or
/// replaces the operator's cause of the same reason); causes stack, and the app is active
/// only when none remains. Takes effect on the next request.
pub async fn set_access(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    change: AccessChange<'_>,
) -> Result<Value> {
    let AccessChange {
        state,
        reason,
        note,
        withdrawn,
        cause,
    } = change;
    let Some(state) = AccessState::parse(state) else {
        return Err(ProgramError::invalid(
            "invalid_request",
            "state must be active, limited or suspended",
        ));
    };
    let reason = match (state, reason) {
        (AccessState::Active, None) => AccessReason::Restored,
        (_, Some(r)) => AccessReason::parse(r).ok_or_else(|| {
            ProgramError::invalid(
                "invalid_request",
                format!(
                    "reason {r:?} is not one of {}",
                    AccessReason::ALL.map(AccessReason::as_str).join(", ")
                ),
            )
        })?,
        (_, None) => {
            return Err(ProgramError::invalid(
                "invalid_request",
                format!(
                    "a reason is required: one of {}",
                    AccessReason::ALL.map(AccessReason::as_str).join(", ")
                ),
            ));
        }
    };
    if (state == AccessState::Active) != (reason == AccessReason::Restored) {
        return Err(ProgramError::invalid(
            "invalid_request",
            "restored is the reason for active, and only for active",
        ));
    }
    if let Some(n) = note {
        check_len("note", n, 2000)?;
    }
    let cause = match cause {
        None => None,
        Some(_) if state != AccessState::Active => {
            return Err(ProgramError::invalid(
                "invalid_request",
                "cause names what a restore (state active) clears",
            )
            .with("field", "cause"));
        }
        Some(c) => Some(
            AccessReason::parse(c)
                .filter(|r| *r != AccessReason::Restored)
                .ok_or_else(|| {
                    ProgramError::invalid(
                        "invalid_request",
                        format!("cause {c:?} is not the reason of one of the app's causes"),
                    )
                    .with("field", "cause")
                })?,
        ),
    };
    let mut withdrawn: Vec<String> = withdrawn.to_vec();
    withdrawn.sort();
    withdrawn.dedup();
    match state {
        AccessState::Limited => {
            if withdrawn.is_empty() {
                return Err(ProgramError::invalid(
                    "invalid_request",
                    "a limit withdraws at least one scope (withdrawn_scopes)",
                ));
            }
            if let Some(s) = withdrawn.iter().find(|s| !app.scopes.contains(s)) {
                return Err(ProgramError::invalid(
                    "invalid_request",
                    format!("{s} is not one of the app's approved scopes"),
                ));
            }
        }
        _ if !withdrawn.is_empty() => {
            return Err(ProgramError::invalid(
                "invalid_request",
                "withdrawn_scopes applies only to a limit",
            ));
        }
        _ => {}
    }
    let mut tx = db.begin().await?;
    let mut cleared = 0;
    if state == AccessState::Active {
        cleared = match cause {
            Some(r) => access_causes::clear(&mut tx, &app.client_id, None, Some(r)).await?,
            None => {
                access_causes::clear(&mut tx, &app.client_id, Some(CauseSource::Operator), None)
                    .await?
            }
        };
        if cause.is_some() && cleared == 0 {
            return Err(ProgramError::conflict(
                "no_such_cause",
                format!(
                    "the app is not limited or suspended for {}",
                    cause.map_or("", AccessReason::as_str)
                ),
            )
            .with("access_state", app.access.as_str()));
        }
    } else {
        access_causes::put(
            &mut tx,
            &app.client_id,
            &AccessCause {
                source: CauseSource::Operator,
                reason,
                state,
                note: note.map(str::to_string),
                withdrawn_scopes: withdrawn.clone(),
                actor: actor.to_string(),
                at: now,
            },
        )
        .await?;
    }
    let after = access_causes::recompute(&mut tx, &app.client_id, now).await?;
    let action = match (state, after.state) {
        (AccessState::Active, AccessState::Active) => "access.restored",
        (AccessState::Active, _) => "access.cause_cleared",
        (AccessState::Limited, _) => "access.limited",
        (AccessState::Suspended, _) => "access.suspended",
    };
    app_event(
        &mut tx,
        now,
        actor,
        app,
        action,
        json!({
            "from": app.access,
            "to": after.state,
            "reason": reason,
            "note": note,
            "withdrawn_scopes": withdrawn,
            "cleared_cause": cause,
            "causes_cleared": cleared,
        }),
    )
    .await?;
    tx.commit().await?;
    let app = any_app(db, &app.client_id).await?;
    Ok(json!({ "client_id": app.client_id, "access": access_view(db, &app).await? }))
}

// ---------------------------------------------------------------------------------------------
// Secrets, domain verification, test accounts
// ---------------------------------------------------------------------------------------------

/// The longest overlap a rotation may keep the old secret working.
pub const MAX_SECRET_OVERLAP: i64 = 30 * 24 * 3600;

pub async fn rotate_secret(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    overlap: Option<i64>,
) -> Result<Value> {
    if app.auth_method != AuthMethod::ClientSecret {
        return Err(ProgramError::conflict(
            "no_secret",
            "this app does not authenticate with a client secret",
        ));
    }
    let overlap = overlap.unwrap_or(24 * 3600);
    if !(0..=MAX_SECRET_OVERLAP).contains(&overlap) {
        return Err(ProgramError::invalid(
            "invalid_request",
            format!("overlap_seconds must be between 0 and {MAX_SECRET_OVERLAP}"),
        ));
    }
    let secret = random_secret();
    let mut tx = db.begin().await?;
    apps::rotate_secret(
        &mut tx,
        &app.client_id,
        &secret_hash(&secret),
        now + overlap,
    )
    .await?;
    app_event(
        &mut tx,
        now,
        actor,
        app,
        "app.secret_rotated",
        json!({ "previous_secret_valid_until": now + overlap }),
    )
    .await?;
    tx.commit().await?;
    Ok(json!({
        "client_id": app.client_id,
        "client_secret": secret,
        "previous_secret_valid_until": now + overlap,
    }))
}

/// The token the partner must publish, and where.
pub async fn domain_challenge(db: &Db, verifier: &Verifier, app: &App) -> Result<Value> {
    let draft = apps::draft(&db.pool, &app.client_id)
        .await?
        .unwrap_or_default();
    let Some(domain) = draft.domain.clone() else {
        return Err(ProgramError::conflict(
            "domain_missing",
            "set the app's domain first",
        ));
    };
    let token = match &app.domain_token {
        Some(t) => t.clone(),
        None => {
            let t = super::domain::new_token();
            let mut tx = db.begin().await?;
            apps::set_domain_token(&mut tx, &app.client_id, &t).await?;
            tx.commit().await?;
            t
        }
    };
    Ok(json!({
        "domain": domain,
        "url": verifier.url_for(&domain),
        "token": token,
        "verified": app.domain_verified.as_deref() == Some(domain.as_str()),
        "verified_at": app.domain_verified_at,
    }))
}

/// Fetches the domain's verification token now. A failure on a domain that was verified is a
/// lapse: the verification is withdrawn, and a live app is limited until it is verified again.
pub async fn verify_domain(
    db: &Db,
    verifier: &Verifier,
    now: Timestamp,
    actor: &str,
    app: &App,
) -> Result<Value> {
    let draft = apps::draft(&db.pool, &app.client_id)
        .await?
        .unwrap_or_default();
    let Some(domain) = draft.domain.clone() else {
        return Err(ProgramError::conflict(
            "domain_missing",
            "set the app's domain first",
        ));
    };
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
            json!({
                "domain": domain,
                "verified": true,
                "verified_at": now,
                "access_restored": after == Some(AccessState::Active),
                "cause_cleared": after.is_some(),
            })
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
            json!({
                "domain": domain,
                "verified": false,
                "error": e.code(),
                "error_description": e.to_string(),
                "verification_lapsed": lapsed,
                "access_limited": limited,
            })
        }
    };
    tx.commit().await?;
    Ok(out)
}

pub async fn test_accounts_view(db: &Db, app: &App) -> Result<Value> {
    let emails = apps::test_accounts(&db.pool, &app.client_id).await?;
    Ok(json!({ "stage": app.stage, "test_accounts": emails }))
}

/// Replaces the list of accounts a preview app may sign in.
pub async fn set_test_accounts(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    emails: &[String],
) -> Result<Value> {
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
        list.push(users::normalise_email(e));
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
    Ok(json!({ "stage": app.stage, "test_accounts": list }))
}

/// The operators' queue: open reviews, oldest first.
pub async fn queue(db: &Db) -> Result<Value> {
    let open = reviews::open_queue(&db.pool).await?;
    let mut out = Vec::new();
    for r in open {
        let name = apps::by_client_id(db, &r.client_id).await?.map(|a| a.name);
        let version = draft_versions::current(&db.pool, &r.client_id)
            .await?
            .map(|(_, v)| v);
        let mut v = review_json(&r, version);
        v["client_id"] = json!(r.client_id);
        v["app"] = json!(name);
        out.push(v);
    }
    Ok(json!({ "reviews": out }))
}

pub async fn audit_view(db: &Db, filter: &audit::Filter) -> Result<Value> {
    let entries = audit::read(&db.pool, filter).await?;
    Ok(json!({ "entries": entries }))
}
