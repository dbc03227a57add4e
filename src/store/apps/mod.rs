//! Partner apps (OAuth clients): registration, and the one-row lookup that authenticates them.
//! The partner program's writes to an app (draft, review steps, stage, secret, domain, launch
//! evidence, approved names, test accounts) are in `program`, re-exported here.

mod program;

pub use program::*;

use super::fast::{self, HotRow};
use super::rows::{Columns, RowSource};
use super::{Db, Tx};
use crate::clock::Timestamp;
use crate::consent::AppFacts;
use crate::crypto::{Secret, ct_eq, secret_hash};
use crate::keys::Algorithm;
use crate::partner::access::{AccessReason, AccessState, Capabilities, Refusal, Stage};
use crate::scopes::{ScopeName, TrustLevel};
use crate::wire::{str_newtype, wire_enum};

#[derive(Debug, Clone, Default)]
struct AppRow {
    client_id: String,
    name: String,
    client_type: String,
    auth_method: String,
    secret_hash: Option<String>,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    redirect_uris: String,
    origins: String,
    scopes: String,
    grant_types: String,
    id_token_alg: String,
    access_token_ttl: Option<i64>,
    id_token_ttl: Option<i64>,
    refresh_token_idle_ttl: Option<i64>,
    refresh_token_absolute_ttl: Option<i64>,
    access_state: String,
    optional_scopes: String,
    pending_scopes: String,
    capability_states: String,
    trust_level: String,
    purpose: String,
    consent_copy: String,
    domain: Option<String>,
    consent_ttl: Option<i64>,
    partner_id: Option<String>,
    stage: String,
    description: String,
    use_case: Option<String>,
    webhooks: String,
    support_url: Option<String>,
    access_reason: Option<String>,
    access_note: Option<String>,
    access_changed_at: Option<i64>,
    withdrawn_scopes: String,
    previous_secret_hash: Option<String>,
    previous_secret_expires_at: Option<i64>,
    domain_token: Option<String>,
    domain_verified: Option<String>,
    domain_verified_at: Option<i64>,
    preview_sign_in_at: Option<i64>,
    preview_revocation_at: Option<i64>,
    dpop_bound: i64,
    dpop_nonce_required: i64,
    require_pushed_authorization_requests: i64,
    profile: Option<String>,
}

/// How an app presents itself on the consent screen and what Onyx approved it for, beyond its
/// approved scope list.
#[derive(Debug, Clone, Default)]
pub struct ConsentProfile {
    /// Approved scopes the user may untick (the others are required for the app to work).
    pub optional_scopes: Vec<String>,
    /// Scopes the app asked for that Onyx is still reviewing.
    pub pending_scopes: Vec<String>,
    /// Gated capabilities Onyx enabled for the app (the `enabled` ones of `App::capabilities`).
    pub capabilities: Vec<String>,
    pub trust_level: TrustLevel,
    /// The app's declared intended use, shown on the consent screen.
    pub purpose: String,
    /// The app's own words on the consent screen.
    pub consent_copy: String,
    /// The app's verified domain: for a partner app, only while its verification holds (a
    /// lapsed domain is never shown as verified); for an app made with `apps create`, the one
    /// the operator vouched for.
    pub domain: Option<String>,
    /// How long consent to this app lasts, seconds (`None`: only the scopes' own limits).
    pub consent_ttl: Option<i64>,
}

wire_enum! {
    /// A security profile an app is held to, beyond its own settings (`oauth::profile`).
    pub enum Profile as "snake_case" {
        /// The FAPI 2.0 Security Profile: PAR, DPoP-bound tokens, `private_key_jwt` with
        /// ES256, PS256 or EdDSA, no http redirect URIs but native loopback, refresh tokens
        /// that do not rotate.
        Fapi2,
    }
}

wire_enum! {
    /// Whether an app can keep a secret (RFC 6749 §2.1).
    pub enum ClientType as "snake_case" {
        /// A server-side app.
        Confidential,
        /// A native or browser app: PKCE is its only proof.
        Public,
    }
}

wire_enum! {
    /// How an app authenticates at the token, introspection and revocation endpoints.
    pub enum AuthMethod as "snake_case" {
        /// `client_secret_basic` or `client_secret_post` (RFC 6749 §2.3.1).
        ClientSecret,
        /// `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9) with the app's registered JWKS.
        PrivateKeyJwt,
        /// Public apps.
        None,
    }
}

wire_enum! {
    /// A grant an app may use at the token endpoint (RFC 6749 §1.3), as stored in its
    /// `grant_types` list.
    pub enum GrantType as "snake_case" {
        /// RFC 6749 §4.1, with PKCE (RFC 7636).
        AuthorizationCode,
        /// RFC 6749 §6.
        RefreshToken,
        /// RFC 6749 §4.4: the app's own token, for its app scopes.
        ClientCredentials,
    }
}

/// A redirect URI as the app registered it (RFC 6749 §3.1.2). A request's `redirect_uri` is
/// compared with it as the same string, byte for byte, never normalised (RFC 9700 §4.1.3,
/// `oauth::redirect::match_registered`), so it keeps the registered text exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// A URI read back from the app's row (checked when it was registered).
    pub fn registered(uri: String) -> Self {
        Self(uri)
    }
}

str_newtype!(RedirectUri);

/// The stored hash of an app's client secret (`crypto::secret_hash`). It prints redacted and
/// has no equality: a presented secret is checked with [`SecretHash::matches`], in constant
/// time.
#[derive(Clone)]
pub struct SecretHash(String);

impl SecretHash {
    /// A hash read back from the app's row.
    pub fn stored(hash: String) -> Self {
        Self(hash)
    }

    /// Whether `presented` is the secret this is the hash of (compared in constant time).
    pub fn matches(&self, presented: &Secret) -> bool {
        ct_eq(
            secret_hash(presented.expose()).as_bytes(),
            self.0.as_bytes(),
        )
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash([redacted])")
    }
}

/// Token lifetimes an app overrides (seconds); `None` takes the server's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct LifetimeOverrides {
    pub access_token: Option<i64>,
    pub id_token: Option<i64>,
    pub refresh_token_idle: Option<i64>,
    pub refresh_token_absolute: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct App {
    pub client_id: String,
    pub name: String,
    pub client_type: ClientType,
    pub auth_method: AuthMethod,
    /// `secret_hash()` of the client secret, for `ClientSecret` apps.
    pub secret_hash: Option<SecretHash>,
    /// The public JWKS (JSON), for `PrivateKeyJwt` apps.
    pub jwks: Option<String>,
    /// Where a `PrivateKeyJwt` app publishes its JWKS instead (`oauth::jwks_uri`).
    pub jwks_uri: Option<String>,
    /// The algorithm of the app's ID tokens.
    pub id_token_alg: Algorithm,
    /// The partner that owns the app (`None` for apps made with `onyx-id apps create`).
    pub partner_id: Option<String>,
    pub stage: Stage,
    pub access: AccessState,
    pub access_reason: Option<AccessReason>,
    pub access_note: Option<String>,
    pub access_changed_at: Option<Timestamp>,
    /// Scopes withdrawn while access is limited.
    pub withdrawn: Vec<String>,
    pub capabilities: Capabilities,
    /// The secret before the last rotation, accepted until `previous_secret_expires_at`.
    pub previous_secret_hash: Option<SecretHash>,
    pub previous_secret_expires_at: Option<Timestamp>,
    pub description: String,
    pub use_case: Option<String>,
    pub webhooks: Vec<String>,
    pub support_url: Option<String>,
    /// The token the partner must publish, and the domain it was last verified for (and when).
    pub domain_token: Option<String>,
    pub domain_verified: Option<String>,
    pub domain_verified_at: Option<Timestamp>,
    /// The domain Onyx approved for the live app, verified or not (`consent.domain` is the
    /// one to show people).
    pub live_domain: Option<String>,
    /// Launch evidence: a sign-in completed in preview, a revocation call made in preview.
    pub preview_sign_in_at: Option<Timestamp>,
    pub preview_revocation_at: Option<Timestamp>,
    pub redirect_uris: Vec<RedirectUri>,
    pub origins: Vec<String>,
    /// The scopes Onyx approved for the app.
    pub scopes: Vec<ScopeName>,
    pub grant_types: Vec<GrantType>,
    pub lifetimes: LifetimeOverrides,
    pub consent: ConsentProfile,
    /// `dpop_bound_access_tokens` (RFC 9449 §5.2): the token endpoint refuses a request of
    /// this app without a DPoP proof.
    pub dpop_bound: bool,
    /// The app's DPoP proofs must carry a server nonce (RFC 9449 §8).
    pub dpop_nonce_required: bool,
    /// The app must push its authorization requests (RFC 9126 §6,
    /// `require_pushed_authorization_requests`): `/authorize` takes only a `request_uri`.
    pub require_par: bool,
    /// The security profile the app is held to, if any.
    pub profile: Option<Profile>,
}

impl App {
    /// Whether the app is held to the FAPI 2.0 Security Profile.
    pub fn fapi2(&self) -> bool {
        self.profile == Some(Profile::Fapi2)
    }

    /// What the permission model needs to know about the app.
    pub fn facts(&self) -> AppFacts<'_> {
        AppFacts {
            approved: &self.scopes,
            pending: &self.consent.pending_scopes,
            trust: self.consent.trust_level,
            capabilities: &self.consent.capabilities,
            withdrawn: &self.withdrawn,
            consent_ttl: self.consent.consent_ttl,
        }
    }

    /// The version of the consent copy users answer (see `consent::copy_version`).
    pub fn copy_version(&self) -> String {
        crate::consent::copy_version(&self.consent.purpose, &self.consent.consent_copy)
    }

    pub fn is_optional(&self, scope: &str) -> bool {
        self.consent.optional_scopes.iter().any(|s| s == scope)
    }

    pub fn allows_grant(&self, grant_type: GrantType) -> bool {
        self.grant_types.contains(&grant_type)
    }

    /// Whether Onyx lets the app sign people in and get tokens now, or the refusal that names
    /// the state and its reason.
    pub fn gate(&self) -> Result<(), Refusal> {
        crate::partner::access::gate(self.stage, self.access, self.access_reason)
    }

    pub fn approved_for(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

fn list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

impl From<AppRow> for App {
    fn from(r: AppRow) -> Self {
        let capabilities = Capabilities::parse(&r.capability_states);
        let shown_domain = match (&r.partner_id, &r.domain) {
            (None, d) => d.clone(),
            (Some(_), Some(d)) if r.domain_verified.as_deref() == Some(d.as_str()) => {
                Some(d.clone())
            }
            (Some(_), _) => None,
        };
        Self {
            // What is not `public` is confidential, and what is not another method is a client
            // secret: the safe side, as the row has always been read.
            client_type: ClientType::parse(&r.client_type).unwrap_or(ClientType::Confidential),
            auth_method: AuthMethod::parse(&r.auth_method).unwrap_or(AuthMethod::ClientSecret),
            redirect_uris: list(&r.redirect_uris)
                .into_iter()
                .map(RedirectUri::registered)
                .collect(),
            origins: list(&r.origins),
            scopes: list(&r.scopes).into_iter().map(ScopeName::stored).collect(),
            // A name onyx-id does not know is no grant the app may use.
            grant_types: list(&r.grant_types)
                .iter()
                .filter_map(|g| GrantType::parse(g))
                .collect(),
            consent: ConsentProfile {
                optional_scopes: list(&r.optional_scopes),
                pending_scopes: list(&r.pending_scopes),
                capabilities: capabilities.enabled(),
                trust_level: TrustLevel::parse(&r.trust_level).unwrap_or_default(),
                purpose: r.purpose,
                consent_copy: r.consent_copy,
                domain: shown_domain,
                consent_ttl: r.consent_ttl,
            },
            lifetimes: LifetimeOverrides {
                access_token: r.access_token_ttl,
                id_token: r.id_token_ttl,
                refresh_token_idle: r.refresh_token_idle_ttl,
                refresh_token_absolute: r.refresh_token_absolute_ttl,
            },
            client_id: r.client_id,
            name: r.name,
            secret_hash: r.secret_hash.map(SecretHash::stored),
            jwks: r.jwks,
            jwks_uri: r.jwks_uri,
            // An unknown name signs with the default algorithm.
            id_token_alg: Algorithm::parse(&r.id_token_alg).unwrap_or(Algorithm::ES256),
            partner_id: r.partner_id,
            // An unreadable stage or state fails closed.
            stage: Stage::parse(&r.stage).unwrap_or(Stage::Draft),
            access: AccessState::parse(&r.access_state).unwrap_or(AccessState::Suspended),
            access_reason: r.access_reason.as_deref().and_then(AccessReason::parse),
            access_note: r.access_note,
            access_changed_at: r.access_changed_at,
            withdrawn: list(&r.withdrawn_scopes),
            capabilities,
            previous_secret_hash: r.previous_secret_hash.map(SecretHash::stored),
            previous_secret_expires_at: r.previous_secret_expires_at,
            description: r.description,
            use_case: r.use_case,
            webhooks: list(&r.webhooks),
            support_url: r.support_url,
            domain_token: r.domain_token,
            domain_verified: r.domain_verified,
            domain_verified_at: r.domain_verified_at,
            live_domain: r.domain,
            preview_sign_in_at: r.preview_sign_in_at,
            preview_revocation_at: r.preview_revocation_at,
            dpop_bound: r.dpop_bound != 0,
            dpop_nonce_required: r.dpop_nonce_required != 0,
            require_par: r.require_pushed_authorization_requests != 0,
            profile: r.profile.as_deref().and_then(Profile::parse),
        }
    }
}

pub struct NewApp<'a> {
    pub name: &'a str,
    pub client_type: ClientType,
    pub auth_method: AuthMethod,
    pub secret_hash: Option<String>,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub id_token_alg: &'a str,
    pub redirect_uris: &'a [String],
    pub origins: &'a [String],
    pub scopes: &'a [String],
    pub grant_types: &'a [String],
    pub lifetimes: LifetimeOverrides,
    pub consent: &'a ConsentProfile,
    pub capabilities: &'a Capabilities,
    pub partner_id: Option<&'a str>,
    pub stage: Stage,
    pub description: &'a str,
    pub use_case: Option<&'a str>,
    pub webhooks: &'a [String],
    pub support_url: Option<&'a str>,
    /// The partner's draft (JSON), for partner apps.
    pub draft: Option<&'a str>,
    /// The app must use pushed authorization requests.
    pub require_par: bool,
    /// The security profile the app is held to.
    pub profile: Option<Profile>,
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

#[tracing::instrument(level = "debug", skip_all, fields(name = new.name))]
pub async fn create(db: &Db, new: NewApp<'_>, now: Timestamp) -> Result<String, sqlx::Error> {
    let pool = &db.writer;
    let mut tx = pool.begin().await?;
    let client_id = create_in(&mut tx, new, now).await?;
    tx.commit().await?;
    Ok(client_id)
}

/// `create`, inside the caller's transaction.
pub async fn create_in(
    tx: &mut Tx<'_>,
    new: NewApp<'_>,
    now: Timestamp,
) -> Result<String, sqlx::Error> {
    let client_id = crate::crypto::random_id();
    sqlx::query(
        "INSERT INTO apps (client_id, name, client_type, auth_method, secret_hash, jwks, redirect_uris,
             origins, scopes, grant_types, id_token_alg, access_token_ttl, id_token_ttl,
             refresh_token_idle_ttl, refresh_token_absolute_ttl, access_state, created_at,
             optional_scopes, pending_scopes, capability_states, trust_level, purpose,
             consent_copy, domain, consent_ttl, partner_id, stage, description, use_case,
             webhooks, support_url, draft, jwks_uri, require_pushed_authorization_requests,
             profile)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'active', $16,
                 $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34)",
    )
    .bind(&client_id)
    .bind(new.name)
    .bind(new.client_type.as_str())
    .bind(new.auth_method.as_str())
    .bind(new.secret_hash.as_deref())
    .bind(new.jwks.as_deref())
    .bind(json(new.redirect_uris))
    .bind(json(new.origins))
    .bind(json(new.scopes))
    .bind(json(new.grant_types))
    .bind(new.id_token_alg)
    .bind(new.lifetimes.access_token)
    .bind(new.lifetimes.id_token)
    .bind(new.lifetimes.refresh_token_idle)
    .bind(new.lifetimes.refresh_token_absolute)
    .bind(now)
    .bind(json(&new.consent.optional_scopes))
    .bind(json(&new.consent.pending_scopes))
    .bind(new.capabilities.to_json())
    .bind(new.consent.trust_level.as_str())
    .bind(&new.consent.purpose)
    .bind(&new.consent.consent_copy)
    .bind(new.consent.domain.as_deref())
    .bind(new.consent.consent_ttl)
    .bind(new.partner_id)
    .bind(new.stage.as_str())
    .bind(new.description)
    .bind(new.use_case)
    .bind(json(new.webhooks))
    .bind(new.support_url)
    .bind(new.draft)
    .bind(new.jwks_uri.as_deref())
    .bind(i64::from(new.require_par))
    .bind(new.profile.map(Profile::as_str))
    .execute(&mut **tx)
    .await?;
    for origin in new.origins {
        sqlx::query("INSERT INTO app_origins (client_id, origin) VALUES ($1, $2)")
            .bind(&client_id)
            .bind(origin)
            .execute(&mut **tx)
            .await?;
    }
    Ok(client_id)
}

/// Every column of an app row, in `AppRow` order.
macro_rules! app_columns {
    () => {
        "client_id, name, client_type, auth_method, secret_hash, jwks, jwks_uri, redirect_uris,
        origins, scopes, grant_types, id_token_alg, access_token_ttl, id_token_ttl, refresh_token_idle_ttl,
        refresh_token_absolute_ttl, access_state, optional_scopes, pending_scopes,
        capability_states, trust_level, purpose, consent_copy, domain, consent_ttl, partner_id,
        stage, description, use_case, webhooks, support_url, access_reason, access_note,
        access_changed_at, withdrawn_scopes, previous_secret_hash, previous_secret_expires_at,
        domain_token, domain_verified, domain_verified_at, preview_sign_in_at,
        preview_revocation_at, dpop_bound, dpop_nonce_required,
        require_pushed_authorization_requests, profile"
    };
}

const BY_CLIENT_ID: &str = concat!("SELECT ", app_columns!(), " FROM apps WHERE client_id = $1");

/// The one decoder of an app row, on every path (the pool's rows, rusqlite's, tokio-postgres's).
impl HotRow for AppRow {
    fn read_at<R: RowSource>(r: &R, offset: usize) -> Result<Self, R::Error> {
        let mut c = Columns::at(r, offset);
        Ok(Self {
            client_id: c.get("client_id")?,
            name: c.get("name")?,
            client_type: c.get("client_type")?,
            auth_method: c.get("auth_method")?,
            secret_hash: c.get("secret_hash")?,
            jwks: c.get("jwks")?,
            jwks_uri: c.get("jwks_uri")?,
            redirect_uris: c.get("redirect_uris")?,
            origins: c.get("origins")?,
            scopes: c.get("scopes")?,
            grant_types: c.get("grant_types")?,
            id_token_alg: c.get("id_token_alg")?,
            access_token_ttl: c.get("access_token_ttl")?,
            id_token_ttl: c.get("id_token_ttl")?,
            refresh_token_idle_ttl: c.get("refresh_token_idle_ttl")?,
            refresh_token_absolute_ttl: c.get("refresh_token_absolute_ttl")?,
            access_state: c.get("access_state")?,
            optional_scopes: c.get("optional_scopes")?,
            pending_scopes: c.get("pending_scopes")?,
            capability_states: c.get("capability_states")?,
            trust_level: c.get("trust_level")?,
            purpose: c.get("purpose")?,
            consent_copy: c.get("consent_copy")?,
            domain: c.get("domain")?,
            consent_ttl: c.get("consent_ttl")?,
            partner_id: c.get("partner_id")?,
            stage: c.get("stage")?,
            description: c.get("description")?,
            use_case: c.get("use_case")?,
            webhooks: c.get("webhooks")?,
            support_url: c.get("support_url")?,
            access_reason: c.get("access_reason")?,
            access_note: c.get("access_note")?,
            access_changed_at: c.get("access_changed_at")?,
            withdrawn_scopes: c.get("withdrawn_scopes")?,
            previous_secret_hash: c.get("previous_secret_hash")?,
            previous_secret_expires_at: c.get("previous_secret_expires_at")?,
            domain_token: c.get("domain_token")?,
            domain_verified: c.get("domain_verified")?,
            domain_verified_at: c.get("domain_verified_at")?,
            preview_sign_in_at: c.get("preview_sign_in_at")?,
            preview_revocation_at: c.get("preview_revocation_at")?,
            dpop_bound: c.get("dpop_bound")?,
            dpop_nonce_required: c.get("dpop_nonce_required")?,
            require_pushed_authorization_requests: c
                .get("require_pushed_authorization_requests")?,
            profile: c.get("profile")?,
        })
    }
}

/// The app row, read at every request that names a client, so an access change is seen by the
/// next request (on SQLite, from a cache that any commit anywhere empties: `fast::direct`).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn by_client_id(db: &Db, client_id: &str) -> Result<Option<App>, sqlx::Error> {
    fn first(rows: Vec<AppRow>) -> Option<App> {
        rows.into_iter().next().map(App::from)
    }
    fast::rows_then(db, BY_CLIENT_ID, None, &[client_id], first).await
}

/// Sets an app's DPoP requirements: bound access tokens (`dpop_bound_access_tokens`), and
/// server nonces in its proofs.
pub async fn set_dpop(
    tx: &mut Tx<'_>,
    client_id: &str,
    bound: bool,
    nonce_required: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE apps SET dpop_bound = $1, dpop_nonce_required = $2 WHERE client_id = $3")
        .bind(i64::from(bound))
        .bind(i64::from(nonce_required))
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sets an app's access state, with its reason, the operator's note and the scopes a limit
/// withdraws; true if the app exists.
pub async fn set_access(
    tx: &mut Tx<'_>,
    client_id: &str,
    state: AccessState,
    reason: AccessReason,
    note: Option<&str>,
    withdrawn: &[String],
    now: Timestamp,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE apps SET access_state = $1, access_reason = $2, access_note = $3,
             withdrawn_scopes = $4, access_changed_at = $5
         WHERE client_id = $6",
    )
    .bind(state.as_str())
    .bind(reason.as_str())
    .bind(note)
    .bind(json(withdrawn))
    .bind(now)
    .bind(client_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_capabilities(
    tx: &mut Tx<'_>,
    client_id: &str,
    caps: &Capabilities,
) -> Result<(), sqlx::Error> {
    let before: String =
        sqlx::query_scalar("SELECT capability_states FROM apps WHERE client_id = $1")
            .bind(client_id)
            .fetch_one(&mut **tx)
            .await?;
    let before = Capabilities::parse(&before);
    for (name, cap) in &caps.0 {
        if before.get(name).state != cap.state {
            // Partners hear of the change in the transaction that makes it.
            let data = crate::webhooks::events::CapabilityUpdatedData {
                client_id: client_id.to_string(),
                capability: name.clone(),
                state: cap.state,
            };
            let kind = crate::webhooks::EventKind::AppCapabilityUpdated(data);
            let event = crate::webhooks::Event::new(kind, cap.at);
            let _ = crate::webhooks::enqueue(tx, client_id, &event, cap.at).await?;
        }
    }
    sqlx::query("UPDATE apps SET capability_states = $1 WHERE client_id = $2")
        .bind(caps.to_json())
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A partner's apps.
pub async fn of_partner(db: &Db, partner_id: &str) -> Result<Vec<App>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query(concat!(
        "SELECT ",
        app_columns!(),
        " FROM apps WHERE partner_id = $1 ORDER BY created_at, client_id"
    ))
    .bind(partner_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| AppRow::read(r).map(App::from))
    .collect()
}

/// Whether any app registered `origin` (a CORS preflight cannot say which app it is for).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn origin_is_registered(db: &Db, origin: &str) -> Result<bool, sqlx::Error> {
    let pool = &db.pool;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM app_origins WHERE origin = $1")
        .bind(origin)
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}

/// The longest access and ID token lifetimes any app sets for itself (seconds), if any app
/// overrides the server's: a retired signing key stays published that long.
pub async fn longest_token_lifetimes(db: &Db) -> Result<(Option<i64>, Option<i64>), sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as("SELECT MAX(access_token_ttl), MAX(id_token_ttl) FROM apps")
        .fetch_one(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> AppRow {
        AppRow {
            client_id: "c1".into(),
            client_type: "confidential".into(),
            auth_method: "client_secret".into(),
            secret_hash: Some("current-secret-hash-7Qx".into()),
            previous_secret_hash: Some("previous-secret-hash-9Zy".into()),
            redirect_uris: r#"["https://app.example/cb","http://127.0.0.1/cb"]"#.into(),
            scopes: r#"["openid","profile"]"#.into(),
            grant_types: r#"["authorization_code","refresh_token"]"#.into(),
            id_token_alg: "RS256".into(),
            stage: "production".into(),
            access_state: "active".into(),
            ..AppRow::default()
        }
    }

    #[test]
    fn an_app_prints_its_secret_hashes_redacted() {
        let app = App::from(row());
        let printed = format!("{app:?}");
        assert!(!printed.contains("current-secret-hash"), "{printed}");
        assert!(!printed.contains("previous-secret-hash"), "{printed}");
        assert_eq!(printed.matches("SecretHash([redacted])").count(), 2);
    }

    #[test]
    fn a_secret_matches_only_its_own_hash() {
        let hash = SecretHash::stored(secret_hash("s3cret"));
        assert!(hash.matches(&Secret::new("s3cret")));
        assert!(!hash.matches(&Secret::new("s3cret ")));
        assert!(!hash.matches(&Secret::new("")));
    }

    #[test]
    fn the_row_is_read_into_typed_fields() {
        let app = App::from(row());
        assert_eq!(app.client_type, ClientType::Confidential);
        assert_eq!(app.auth_method, AuthMethod::ClientSecret);
        assert_eq!(app.id_token_alg, Algorithm::RS256);
        assert_eq!(
            app.redirect_uris
                .iter()
                .map(RedirectUri::as_str)
                .collect::<Vec<_>>(),
            ["https://app.example/cb", "http://127.0.0.1/cb"]
        );
        assert!(app.approved_for("profile"));
        assert!(!app.approved_for("email"));
        assert!(app.allows_grant(GrantType::AuthorizationCode));
        assert!(app.allows_grant(GrantType::RefreshToken));
        assert!(!app.allows_grant(GrantType::ClientCredentials));
        assert_eq!(GrantType::ClientCredentials.as_str(), "client_credentials");
    }

    #[test]
    fn unreadable_values_fall_back_as_they_always_have() {
        let app = App::from(AppRow {
            client_type: "public".into(),
            auth_method: "none".into(),
            ..row()
        });
        assert_eq!(app.client_type, ClientType::Public);
        assert_eq!(app.auth_method, AuthMethod::None);
        let app = App::from(AppRow {
            client_type: "unknown".into(),
            auth_method: "unknown".into(),
            id_token_alg: "HS256".into(),
            grant_types: r#"["authorization_code","password"]"#.into(),
            stage: "unknown".into(),
            access_state: "unknown".into(),
            ..row()
        });
        assert_eq!(app.client_type, ClientType::Confidential);
        assert_eq!(app.auth_method, AuthMethod::ClientSecret);
        assert_eq!(app.id_token_alg, Algorithm::ES256);
        assert_eq!(app.grant_types, [GrantType::AuthorizationCode]);
        assert_eq!(app.stage, Stage::Draft);
        assert_eq!(app.access, AccessState::Suspended);
        assert_eq!(AuthMethod::PrivateKeyJwt.as_str(), "private_key_jwt");
    }
}
