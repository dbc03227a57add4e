//! Operator commands (`onyx-id users create`, `apps create`, `resource-servers create`,
//! `keys rotate`). Each works on the
//! same database and keys folder as `serve`, also while a server runs, and returns the one JSON
//! object the CLI prints.

use serde_json::{Value, json};

use crate::config::Settings;
use crate::crypto::{hash_password, random_secret, secret_hash};
use crate::keys::{self, Algorithm};
use crate::oauth::redirect::{validate_for_registration, validate_origin};
use crate::partner::access::{Capabilities, Capability, CapabilityState, Stage};
use crate::scopes::Scope;
use crate::store::Db;
use crate::store::apps::{self, AuthMethod, ClientType, ConsentProfile, LifetimeOverrides, NewApp};
use crate::store::audit::{self, Event};
use crate::store::users::{self, CreateUserError};
use crate::store::{grants, resource_servers};

/// How the audit log names an operator at the command line: `cli`; the detail of each entry
/// adds the OS account that ran the command (`os_user`), when the environment says.
pub const CLI_ACTOR: &str = "cli";

fn os_user() -> Option<String> {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|u| u.trim().chars().take(64).collect::<String>())
        .find(|u| !u.is_empty() && !u.chars().any(char::is_control))
}

/// The detail of a CLI audit entry: `detail` with the OS user.
fn cli_detail(mut detail: Value) -> Value {
    detail["os_user"] = json!(os_user());
    detail
}

/// Appends a CLI command's entry to the audit log, in the caller's transaction.
async fn cli_event(
    tx: &mut crate::store::Tx<'_>,
    now: i64,
    client_id: Option<&str>,
    action: &str,
    detail: Value,
) -> Result<(), sqlx::Error> {
    audit::append(
        tx,
        now,
        Event {
            actor: CLI_ACTOR,
            partner_id: None,
            client_id,
            action,
            detail: cli_detail(detail),
        },
    )
    .await
}

/// Records a CLI command that changed something outside the database (`keys rotate`).
pub async fn record_cli_event(
    db: &Db,
    now: i64,
    action: &str,
    detail: Value,
) -> Result<(), AdminError> {
    let mut tx = db.begin().await?;
    cli_event(&mut tx, now, None, action, detail).await?;
    tx.commit().await?;
    Ok(())
}

/// A refusal an operator can act on (bad input), as opposed to an internal failure.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AdminError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

fn invalid(msg: impl Into<String>) -> AdminError {
    AdminError::Invalid(msg.into())
}

pub fn validate_email(email: &str) -> Result<(), AdminError> {
    let email = email.trim();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("{email:?} is not an email address")))
    }
}

pub async fn create_user(
    db: &Db,
    now: i64,
    email: &str,
    name: &str,
    password: &str,
) -> Result<Value, AdminError> {
    validate_email(email)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("the name must be 1 to 200 characters"));
    }
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(invalid(
            "the password must be at least 8 characters (and at most 1024 bytes)",
        ));
    }
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AdminError::Internal(e.into()))??;
    match users::create(db, email, name, &hash, now).await {
        Ok(user) => Ok(json!({ "user_id": user.id, "email": user.email, "name": user.name })),
        Err(CreateUserError::EmailTaken) => Err(invalid(format!(
            "an account with email {:?} already exists",
            users::normalise_email(email)
        ))),
        Err(CreateUserError::Db(e)) => Err(e.into()),
    }
}

pub use crate::store::users::UserChanges;

/// Applies `changes` to the account with this email. Prints the account's facts.
pub async fn update_user(db: &Db, email: &str, changes: &UserChanges) -> Result<Value, AdminError> {
    if let Some(Some(r)) = &changes.region
        && !crate::scopes::is_region_code(r)
    {
        return Err(invalid(format!(
            "--region {r:?} must be an ISO 3166-1 alpha-2 code such as GB (or none)"
        )));
    }
    if let Some(r) = &changes.risk_level
        && !matches!(r.as_str(), "normal" | "elevated")
    {
        return Err(invalid("--risk must be normal or elevated"));
    }
    let Some(user) = users::by_email(db, email).await? else {
        return Err(invalid(format!("there is no account with email {email:?}")));
    };
    let facts = |u: &users::User| {
        json!({
            "email_verified": u.email_verified,
            "region": u.region,
            "risk_level": u.risk_level,
        })
    };
    let before = facts(&user);
    // The change and its audit entry commit together.
    let mut tx = db.begin().await?;
    users::update_facts(&mut tx, &user.id, changes).await?;
    let user = users::by_id_on(&mut tx, &user.id)
        .await?
        .ok_or_else(|| invalid("the account was deleted meanwhile"))?;
    let after = facts(&user);
    let changed: serde_json::Map<String, Value> = after
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| before.get(k.as_str()) != Some(*v))
        .map(|(k, v)| (k.clone(), json!({ "from": before[k.as_str()], "to": v })))
        .collect();
    if !changed.is_empty() {
        cli_event(
            &mut tx,
            crate::clock::Clock::now(&crate::clock::SystemClock),
            None,
            "user.updated",
            json!({ "user_id": user.id, "email": user.email, "changes": changed }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(json!({
        "user_id": user.id,
        "email": user.email,
        "email_verified": user.email_verified,
        "region": user.region,
        "risk_level": user.risk_level,
    }))
}

pub struct AppSpec {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub origins: Vec<String>,
    pub scopes: Vec<String>,
    pub public: bool,
    pub id_token_alg: String,
    /// Grants besides the authorization code grant's default: `refresh_token`,
    /// `client_credentials` (and `authorization_code` itself).
    pub grant_types: Vec<String>,
    /// A public JWKS (JSON): the app authenticates with `private_key_jwt` instead of a secret.
    pub jwks: Option<String>,
    pub lifetimes: LifetimeOverrides,
    /// Consent screen words, optional scopes, trust and capabilities. `optional_scopes` are
    /// approved too (they need not be repeated in `scopes`).
    pub consent: ConsentProfile,
}

impl AppSpec {
    /// A confidential app using the authorization code grant, with nothing else set.
    pub fn new(name: &str, redirect_uris: &[&str], scopes: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            origins: vec![],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            public: false,
            id_token_alg: "ES256".into(),
            grant_types: vec![],
            jwks: None,
            lifetimes: LifetimeOverrides::default(),
            consent: ConsentProfile::default(),
        }
    }
}

pub use crate::partner::CAPABILITIES;

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// Checks the consent profile of an app approved for `approved`, and normalises its lists.
fn validate_consent_profile(
    p: &ConsentProfile,
    approved: &[String],
) -> Result<ConsentProfile, AdminError> {
    for s in &p.optional_scopes {
        if s == "openid" {
            return Err(invalid(
                "openid cannot be optional: it is what signs the user in",
            ));
        }
        if Scope::parse(s).is_ok_and(|s| s.is_app_scope()) {
            return Err(invalid(format!(
                "--optional-scope {s}: app-level scopes are never shown to a person"
            )));
        }
    }
    for s in &p.pending_scopes {
        Scope::parse(s).map_err(|e| invalid(format!("--pending-scope: {e}")))?;
        if approved.contains(s) {
            return Err(invalid(format!(
                "--pending-scope {s} is also approved (--scope)"
            )));
        }
    }
    for c in &p.capabilities {
        if !CAPABILITIES.contains(&c.as_str()) {
            return Err(invalid(format!(
                "--capability {c:?} is not one of {}",
                CAPABILITIES.join(", ")
            )));
        }
    }
    let purpose = p.purpose.trim().to_string();
    if purpose.chars().count() > 500 {
        return Err(invalid("--purpose must be at most 500 characters"));
    }
    let copy = p.consent_copy.trim().to_string();
    if copy.chars().count() > 1000 {
        return Err(invalid("--consent-copy must be at most 1000 characters"));
    }
    if let Some(d) = &p.domain {
        let ok = url::Url::parse(&format!("https://{d}/"))
            .ok()
            .and_then(|u| u.host_str().map(|h| h == d.to_ascii_lowercase()))
            .unwrap_or(false);
        if !ok || !d.contains('.') {
            return Err(invalid(format!("--domain {d:?} is not a domain name")));
        }
    }
    if p.consent_ttl.is_some_and(|t| t <= 0) {
        return Err(invalid(
            "--consent-ttl must be a positive number of seconds",
        ));
    }
    Ok(ConsentProfile {
        optional_scopes: sorted(p.optional_scopes.clone()),
        pending_scopes: sorted(p.pending_scopes.clone()),
        capabilities: sorted(p.capabilities.clone()),
        trust_level: p.trust_level,
        purpose,
        consent_copy: copy,
        domain: p.domain.as_ref().map(|d| d.to_ascii_lowercase()),
        consent_ttl: p.consent_ttl,
    })
}

const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

/// Checks a registered JWKS: JSON with at least one public, asymmetric signing key.
fn validate_jwks(jwks: &str) -> Result<(), AdminError> {
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(jwks).map_err(|e| invalid(format!("--jwks is not a JWK Set: {e}")))?;
    if set.keys.is_empty() {
        return Err(invalid("--jwks has no key"));
    }
    let raw: serde_json::Value = serde_json::from_str(jwks).map_err(|e| invalid(e.to_string()))?;
    for key in raw["keys"].as_array().into_iter().flatten() {
        if ["d", "p", "q", "k"].iter().any(|p| key.get(p).is_some()) {
            return Err(invalid(
                "--jwks must hold public keys only (it carries private parameters)",
            ));
        }
        if key["kty"] == "oct" {
            return Err(invalid("--jwks must hold asymmetric keys"));
        }
    }
    Ok(())
}

pub async fn create_app(db: &Db, now: i64, spec: AppSpec) -> Result<Value, AdminError> {
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("the app name must be 1 to 100 characters"));
    }
    let mut grant_types = vec!["authorization_code".to_string()];
    if !spec.grant_types.is_empty() {
        grant_types = spec.grant_types.clone();
        grant_types.sort_by_key(|g| GRANT_TYPES.iter().position(|k| k == g));
        grant_types.dedup();
    }
    if let Some(g) = grant_types
        .iter()
        .find(|g| !GRANT_TYPES.contains(&g.as_str()))
    {
        return Err(invalid(format!(
            "grant type {g:?} is not supported (use {})",
            GRANT_TYPES.join(", ")
        )));
    }
    let code_flow = grant_types.iter().any(|g| g == "authorization_code");
    if code_flow && spec.redirect_uris.is_empty() {
        return Err(invalid(
            "at least one --redirect-uri is required for the authorization code grant",
        ));
    }
    if spec.public && grant_types.iter().any(|g| g == "client_credentials") {
        return Err(invalid("a public app cannot use client_credentials"));
    }
    if grant_types.iter().any(|g| g == "refresh_token") && !code_flow {
        return Err(invalid(
            "the refresh_token grant needs the authorization_code grant",
        ));
    }
    for uri in &spec.redirect_uris {
        validate_for_registration(uri).map_err(invalid)?;
    }
    for origin in &spec.origins {
        validate_origin(origin).map_err(invalid)?;
    }
    let mut scopes = if spec.scopes.is_empty() {
        vec!["openid".to_string()]
    } else {
        spec.scopes.clone()
    };
    scopes.extend(spec.consent.optional_scopes.iter().cloned());
    // The grants API needs grants:read; every app made here holds it (an operator takes it
    // away with `apps access --state limited --withdraw-scope grants:read`).
    scopes.push("grants:read".to_string());
    for s in &scopes {
        Scope::parse(s).map_err(|e| invalid(e.to_string()))?;
    }
    scopes.sort();
    scopes.dedup();
    let consent = validate_consent_profile(&spec.consent, &scopes)?;
    let mut redirect_uris = spec.redirect_uris.clone();
    redirect_uris.dedup();
    let mut origins = spec.origins.clone();
    origins.sort();
    origins.dedup();
    let alg = Algorithm::parse(&spec.id_token_alg)
        .ok_or_else(|| invalid("--id-token-alg must be ES256 or RS256"))?;
    for (flag, v) in [
        ("--app-access-token-ttl", spec.lifetimes.access_token),
        ("--app-id-token-ttl", spec.lifetimes.id_token),
        (
            "--refresh-token-idle-ttl",
            spec.lifetimes.refresh_token_idle,
        ),
        (
            "--refresh-token-absolute-ttl",
            spec.lifetimes.refresh_token_absolute,
        ),
    ] {
        if v.is_some_and(|v| v <= 0) {
            return Err(invalid(format!(
                "{flag} must be a positive number of seconds"
            )));
        }
    }
    let (client_type, auth_method, secret) = match (&spec.jwks, spec.public) {
        (Some(_), true) => return Err(invalid("a public app cannot register --jwks")),
        (Some(jwks), false) => {
            validate_jwks(jwks)?;
            (ClientType::Confidential, AuthMethod::PrivateKeyJwt, None)
        }
        (None, true) => (ClientType::Public, AuthMethod::None, None),
        (None, false) => (
            ClientType::Confidential,
            AuthMethod::ClientSecret,
            Some(random_secret()),
        ),
    };
    // The development shortcut: what `--capability` names is enabled at once.
    let capabilities = Capabilities(
        consent
            .capabilities
            .iter()
            .map(|c| {
                (
                    c.clone(),
                    Capability {
                        state: CapabilityState::Enabled,
                        reason: "enabled_by_onyx".into(),
                        at: now,
                        note: None,
                    },
                )
            })
            .collect(),
    );
    let mut tx = db.begin().await?;
    let client_id = apps::create_in(
        &mut tx,
        NewApp {
            name,
            client_type,
            auth_method,
            secret_hash: secret.as_deref().map(secret_hash),
            jwks: spec.jwks.clone(),
            id_token_alg: alg.as_str(),
            redirect_uris: &redirect_uris,
            origins: &origins,
            scopes: &scopes,
            grant_types: &grant_types,
            lifetimes: spec.lifetimes,
            consent: &consent,
            capabilities: &capabilities,
            partner_id: None,
            stage: Stage::Production,
            description: "",
            use_case: None,
            webhooks: &[],
            support_url: None,
            draft: None,
        },
        now,
    )
    .await?;
    cli_event(
        &mut tx,
        now,
        Some(&client_id),
        "app.created",
        json!({
            "name": name,
            "client_type": client_type.as_str(),
            "auth_method": auth_method.as_str(),
            "redirect_uris": redirect_uris,
            "origins": origins,
            "scopes": scopes,
            "optional_scopes": consent.optional_scopes,
            "pending_scopes": consent.pending_scopes,
            "grant_types": grant_types,
            "capabilities": consent.capabilities,
            "trust_level": consent.trust_level.as_str(),
            "domain": consent.domain,
        }),
    )
    .await?;
    tx.commit().await?;
    let method = match auth_method {
        AuthMethod::ClientSecret => "client_secret_basic",
        AuthMethod::PrivateKeyJwt => "private_key_jwt",
        AuthMethod::None => "none",
    };
    let mut out = json!({
        "client_id": client_id,
        "client_type": client_type.as_str(),
        "token_endpoint_auth_method": method,
        "name": name,
        "redirect_uris": redirect_uris,
        "allowed_origins": origins,
        "scopes": scopes,
        "grant_types": grant_types,
        "id_token_signed_response_alg": alg.as_str(),
        "optional_scopes": consent.optional_scopes,
        "pending_scopes": consent.pending_scopes,
        "capabilities": consent.capabilities,
        "trust_level": consent.trust_level.as_str(),
        "purpose": consent.purpose,
        "consent_copy": consent.consent_copy,
        "domain": consent.domain,
        "consent_ttl": consent.consent_ttl,
    });
    if let Some(secret) = secret {
        out["client_secret"] = secret.into();
    }
    Ok(out)
}

pub async fn create_resource_server(
    db: &Db,
    now: i64,
    name: &str,
    audience: &str,
) -> Result<Value, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid(
            "the resource server name must be 1 to 100 characters",
        ));
    }
    crate::config::validate_audience(audience).map_err(|e| invalid(format!("--audience {e}")))?;
    let secret = random_secret();
    match resource_servers::create(db, name, audience, &secret_hash(&secret), now).await {
        Ok(client_id) => Ok(json!({
            "client_id": client_id,
            "client_secret": secret,
            "name": name,
            "audience": audience,
        })),
        Err(resource_servers::CreateError::AudienceTaken) => Err(invalid(format!(
            "a resource server for audience {audience:?} already exists"
        ))),
        Err(resource_servers::CreateError::Db(e)) => Err(e.into()),
    }
}

pub async fn rotate_keys(
    db: &Db,
    settings: &Settings,
    now: i64,
    immediately: bool,
    revoke_old: bool,
) -> Result<Value, AdminError> {
    let ahead = if immediately {
        0
    } else {
        settings.key_publish_ahead
    };
    // The old keys stay published until the longest-lived token they may still sign has
    // expired: the server's lifetimes and every app's own.
    let (app_access, app_id) = apps::longest_token_lifetimes(db).await?;
    let keep_old_for = [
        Some(settings.lifetimes.access_token),
        Some(settings.lifetimes.id_token),
        app_access,
        app_id,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);
    let retire = if revoke_old {
        keys::Retire::Now
    } else {
        keys::Retire::After(keep_old_for)
    };
    let added = keys::rotate(&settings.keys_dir, now, ahead, retire)?;
    let keys: Vec<Value> = added
        .iter()
        .map(|(kid, alg, at)| json!({ "kid": kid, "alg": alg.as_str(), "signs_from": at }))
        .collect();
    let until = if revoke_old {
        now
    } else {
        now + ahead + keep_old_for
    };
    Ok(json!({
        "rotated": true,
        "keys": keys,
        "previous_keys_revoked": revoke_old,
        "previous_keys_published_until": until,
    }))
}

/// Every grant of the account with this email: each app's permissions as the app sees them now,
/// and the history. (`onyx-id grants show --user E`.)
pub async fn show_grants(db: &Db, now: i64, email: &str) -> Result<Value, AdminError> {
    let Some(user) = users::by_email(db, email).await? else {
        return Err(invalid(format!("there is no account with email {email:?}")));
    };
    let mut out = Vec::new();
    for grant in grants::of_user(db, &user.id).await? {
        let Some(app) = apps::by_client_id(db, &grant.client_id).await? else {
            continue;
        };
        let views = grants::views(db, &grant.id, &app.facts(), &user.facts(), now).await?;
        out.push(json!({
            "grant_id": grant.id,
            "client_id": grant.client_id,
            "app": app.name,
            "status": grant.status,
            "ended_reason": grant.ended_reason,
            "created_at": grant.created_at,
            "last_used_at": grant.last_used_at,
            "permissions": views,
        }));
    }
    let history = grants::history(db, &user.id, None).await?;
    Ok(json!({ "user_id": user.id, "email": user.email, "grants": out, "history": history }))
}

/// Onyx removes an app's access for one account (one scope, or all). (`onyx-id grants revoke`.)
pub async fn revoke_grant(
    db: &Db,
    now: i64,
    email: &str,
    client_id: &str,
    scope: Option<&str>,
) -> Result<Value, AdminError> {
    let Some(user) = users::by_email(db, email).await? else {
        return Err(invalid(format!("there is no account with email {email:?}")));
    };
    let Some(grant) = grants::current(db, &user.id, client_id).await? else {
        return Err(invalid(format!(
            "{email} has no current grant for app {client_id}"
        )));
    };
    let scopes: Vec<String> = scope.map(|s| vec![s.to_string()]).unwrap_or_default();
    // The revocation and its audit entry commit together.
    let mut tx = db.begin().await?;
    let ended = grants::revoke_in(
        &mut tx,
        &grant.id,
        &scopes,
        crate::consent::Reason::RevokedByOnyx,
        grants::Actor::Onyx,
        now,
    )
    .await?;
    cli_event(
        &mut tx,
        now,
        Some(client_id),
        "grant.revoked",
        json!({
            "user_id": user.id,
            "email": user.email,
            "grant_id": grant.id,
            "scopes": if scopes.is_empty() { json!("all") } else { json!(scopes) },
            "grant_ended": ended,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "grant_id": grant.id, "revoked": scopes, "grant_ended": ended }))
}
