//! `onyx-id apps create` (the development shortcut past review: an app approved at once) and
//! `onyx-id resource-servers create`.

use serde::Serialize;

use super::{AdminError, cli_event, invalid};
use crate::clock::Timestamp;
use crate::crypto::{random_secret, secret_hash};
use crate::keys::Algorithm;
use crate::oauth::redirect::{validate_for_registration, validate_origin};
use crate::partner::CAPABILITIES;
use crate::partner::access::{Capabilities, Capability, CapabilityState, Stage};
use crate::scopes::{Scope, TrustLevel};
use crate::store::Db;
use crate::store::apps::{
    self, AuthMethod, ClientType, ConsentProfile, LifetimeOverrides, NewApp, Profile,
};
use crate::store::logout::LogoutMetadata;
use crate::store::resource_servers;

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
    /// Where the app publishes its JWKS (RFC 7591 `jwks_uri`), instead of `jwks`: fetched
    /// through the public-address guard when an assertion needs it, and cached.
    pub jwks_uri: Option<String>,
    pub lifetimes: LifetimeOverrides,
    /// Consent screen words, optional scopes, trust and capabilities. `optional_scopes` are
    /// approved too (they need not be repeated in `scopes`).
    pub consent: ConsentProfile,
    /// Where the app may send people back after sign-out (RP-Initiated Logout 1.0 §3.1),
    /// compared exactly; checked like redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where the app's logout tokens are posted (Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_uri: Option<String>,
    /// Whether the app needs `sid` in its logout tokens (default true; onyx-id always sends it).
    pub backchannel_logout_session_required: bool,
    /// `dpop_bound_access_tokens` (RFC 9449 §5.2): tokens only with a DPoP proof.
    pub dpop_bound: bool,
    /// The app's DPoP proofs must carry a server nonce (RFC 9449 §8).
    pub dpop_nonce_required: bool,
    /// The app must push its authorization requests to `/par` first (RFC 9126).
    pub require_par: bool,
    /// The security profile the app is held to (`--profile`).
    pub profile: Option<Profile>,
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
            jwks_uri: None,
            lifetimes: LifetimeOverrides::default(),
            consent: ConsentProfile::default(),
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            backchannel_logout_session_required: true,
            dpop_bound: false,
            dpop_nonce_required: false,
            require_par: false,
            profile: None,
        }
    }
}

/// A registered app, as `apps create` prints it. Its secret (a confidential app without a
/// JWKS) is shown this once; no `Debug`, so that it is never logged.
#[derive(Serialize)]
pub struct AppCreated {
    pub client_id: String,
    pub client_type: &'static str,
    pub token_endpoint_auth_method: &'static str,
    /// Where the app's keys are fetched from, when it registered a `jwks_uri`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub id_token_signed_response_alg: Algorithm,
    pub optional_scopes: Vec<String>,
    pub pending_scopes: Vec<String>,
    pub capabilities: Vec<String>,
    pub trust_level: TrustLevel,
    pub purpose: String,
    pub consent_copy: String,
    pub domain: Option<String>,
    pub consent_ttl: Option<i64>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub dpop_bound_access_tokens: bool,
    pub dpop_nonce_required: bool,
    pub require_pushed_authorization_requests: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// The detail of `app.created`.
#[derive(Serialize)]
struct Created<'a> {
    name: &'a str,
    client_type: &'static str,
    auth_method: &'static str,
    redirect_uris: &'a [String],
    origins: &'a [String],
    scopes: &'a [String],
    optional_scopes: &'a [String],
    pending_scopes: &'a [String],
    grant_types: &'a [String],
    capabilities: &'a [String],
    trust_level: TrustLevel,
    domain: Option<&'a str>,
    require_pushed_authorization_requests: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<Profile>,
}

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

/// The app's grant types (the authorization code grant when none is given), in a fixed order,
/// checked against each other and against the redirect URIs.
fn grant_types(spec: &AppSpec) -> Result<Vec<String>, AdminError> {
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
    Ok(grant_types)
}

/// The scopes the app is approved for: the required and the optional ones (`openid` when none
/// is given), and `grants:read`, sorted.
fn approved_scopes(spec: &AppSpec) -> Result<Vec<String>, AdminError> {
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
    Ok(sorted(scopes))
}

fn check_lifetimes(lifetimes: &LifetimeOverrides) -> Result<(), AdminError> {
    for (flag, v) in [
        ("--app-access-token-ttl", lifetimes.access_token),
        ("--app-id-token-ttl", lifetimes.id_token),
        ("--refresh-token-idle-ttl", lifetimes.refresh_token_idle),
        (
            "--refresh-token-absolute-ttl",
            lifetimes.refresh_token_absolute,
        ),
    ] {
        if v.is_some_and(|v| v <= 0) {
            return Err(invalid(format!(
                "{flag} must be a positive number of seconds"
            )));
        }
    }
    Ok(())
}

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

/// Checks a registered `jwks_uri`: https, or http on a loopback host (development).
fn validate_jwks_uri(uri: &str) -> Result<(), AdminError> {
    let url =
        crate::oauth::jwks_uri::check_uri(uri, true).map_err(|e| invalid(format!("--{e}")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() == "http" && !loopback {
        return Err(invalid(
            "--jwks-uri must be an https URL (http only on a loopback host)",
        ));
    }
    Ok(())
}

/// How the app authenticates: a JWKS or a JWKS URI, nothing (public), or a new secret.
fn credentials(spec: &AppSpec) -> Result<(ClientType, AuthMethod, Option<String>), AdminError> {
    if let Some(uri) = &spec.jwks_uri {
        if spec.jwks.is_some() {
            return Err(invalid("give --jwks-file or --jwks-uri, not both"));
        }
        if spec.public {
            return Err(invalid("a public app cannot register --jwks-uri"));
        }
        validate_jwks_uri(uri)?;
        return Ok((ClientType::Confidential, AuthMethod::PrivateKeyJwt, None));
    }
    Ok(match (&spec.jwks, spec.public) {
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
    })
}

/// The development shortcut: what `--capability` names is enabled at once.
fn enabled(capabilities: &[String], now: Timestamp) -> Capabilities {
    Capabilities(
        capabilities
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
    )
}

pub async fn create_app(db: &Db, now: Timestamp, spec: AppSpec) -> Result<AppCreated, AdminError> {
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("the app name must be 1 to 100 characters"));
    }
    let grant_types = grant_types(&spec)?;
    for uri in &spec.redirect_uris {
        validate_for_registration(uri).map_err(invalid)?;
    }
    for origin in &spec.origins {
        validate_origin(origin).map_err(invalid)?;
    }
    let scopes = approved_scopes(&spec)?;
    let consent = validate_consent_profile(&spec.consent, &scopes)?;
    let mut redirect_uris = spec.redirect_uris.clone();
    redirect_uris.dedup();
    let logout = logout_metadata(&spec)?;
    let origins = sorted(spec.origins.clone());
    let alg = Algorithm::parse(&spec.id_token_alg)
        .ok_or_else(|| invalid("--id-token-alg must be ES256 or RS256"))?;
    check_lifetimes(&spec.lifetimes)?;
    let (client_type, auth_method, secret) = credentials(&spec)?;
    if spec.profile == Some(Profile::Fapi2) {
        crate::oauth::profile::check_fapi2(&crate::oauth::profile::Fapi2Facts {
            redirect_uris: &redirect_uris,
            auth_method,
            id_token_alg: alg,
        })
        .map_err(|e| invalid(format!("--profile fapi2: {e}")))?;
    }
    let capabilities = enabled(&consent.capabilities, now);
    let mut tx = db.begin().await?;
    let client_id = apps::create_in(
        &mut tx,
        NewApp {
            name,
            client_type,
            auth_method,
            secret_hash: secret.as_deref().map(secret_hash),
            jwks: spec.jwks.clone(),
            jwks_uri: spec.jwks_uri.clone(),
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
            require_par: spec.require_par,
            profile: spec.profile,
        },
        now,
    )
    .await?;
    crate::store::logout::set_metadata(&mut tx, &client_id, &logout).await?;
    if spec.dpop_bound || spec.dpop_nonce_required {
        apps::set_dpop(
            &mut tx,
            &client_id,
            spec.dpop_bound,
            spec.dpop_nonce_required,
        )
        .await?;
    }
    let detail = Created {
        name,
        client_type: client_type.as_str(),
        auth_method: auth_method.as_str(),
        redirect_uris: &redirect_uris,
        origins: &origins,
        scopes: &scopes,
        optional_scopes: &consent.optional_scopes,
        pending_scopes: &consent.pending_scopes,
        grant_types: &grant_types,
        capabilities: &consent.capabilities,
        trust_level: consent.trust_level,
        domain: consent.domain.as_deref(),
        require_pushed_authorization_requests: spec.require_par,
        profile: spec.profile,
    };
    cli_event(&mut tx, now, Some(&client_id), "app.created", &detail).await?;
    tx.commit().await?;
    Ok(AppCreated {
        client_id,
        client_type: client_type.as_str(),
        token_endpoint_auth_method: match auth_method {
            AuthMethod::ClientSecret => "client_secret_basic",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        },
        jwks_uri: spec.jwks_uri.clone(),
        name: name.to_string(),
        redirect_uris,
        allowed_origins: origins,
        scopes,
        grant_types,
        id_token_signed_response_alg: alg,
        optional_scopes: consent.optional_scopes,
        pending_scopes: consent.pending_scopes,
        capabilities: consent.capabilities,
        trust_level: consent.trust_level,
        purpose: consent.purpose,
        consent_copy: consent.consent_copy,
        domain: consent.domain,
        consent_ttl: consent.consent_ttl,
        post_logout_redirect_uris: logout.post_logout_redirect_uris,
        backchannel_logout_uri: logout.backchannel_logout_uri,
        backchannel_logout_session_required: logout.backchannel_logout_session_required,
        dpop_bound_access_tokens: spec.dpop_bound,
        dpop_nonce_required: spec.dpop_nonce_required,
        require_pushed_authorization_requests: spec.require_par,
        profile: spec.profile,
        client_secret: secret,
    })
}

/// The app's sign-out metadata, checked: post-logout redirect URIs as redirect URIs are (kept
/// in the order given, each once), and the back-channel URI absolute, https (or http on a
/// loopback host, for development: delivering to it then needs `--webhook-insecure-http`),
/// with no credentials and no fragment.
fn logout_metadata(spec: &AppSpec) -> Result<LogoutMetadata, AdminError> {
    let mut uris: Vec<String> = Vec::new();
    for uri in &spec.post_logout_redirect_uris {
        validate_for_registration(uri)
            .map_err(|e| invalid(format!("--post-logout-redirect-uri: {e}")))?;
        if !uris.contains(uri) {
            uris.push(uri.clone());
        }
    }
    if let Some(uri) = &spec.backchannel_logout_uri {
        let loopback = url::Url::parse(uri).is_ok_and(|u| crate::config::is_loopback_host(&u));
        crate::webhooks::delivery::check_url(uri, loopback)
            .map_err(|e| invalid(format!("--backchannel-logout-uri {e}")))?;
    }
    Ok(LogoutMetadata {
        post_logout_redirect_uris: uris,
        backchannel_logout_uri: spec.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: spec.backchannel_logout_session_required,
    })
}

/// A registered resource server and the credentials it introspects with (the secret shown this
/// once; no `Debug`).
#[derive(Serialize)]
pub struct ResourceServerCreated {
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub audience: String,
}

pub async fn create_resource_server(
    db: &Db,
    now: Timestamp,
    name: &str,
    audience: &str,
) -> Result<ResourceServerCreated, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid(
            "the resource server name must be 1 to 100 characters",
        ));
    }
    crate::config::validate_audience(audience).map_err(|e| invalid(format!("--audience {e}")))?;
    let secret = random_secret();
    match resource_servers::create(db, name, audience, &secret_hash(&secret), now).await {
        Ok(client_id) => Ok(ResourceServerCreated {
            client_id,
            client_secret: secret,
            name: name.to_string(),
            audience: audience.to_string(),
        }),
        Err(resource_servers::CreateError::AudienceTaken) => Err(invalid(format!(
            "a resource server for audience {audience:?} already exists"
        ))),
        Err(resource_servers::CreateError::Db(e)) => Err(e.into()),
    }
}
