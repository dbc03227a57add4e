//! Partner apps (OAuth clients): registration, and the one-row lookup that authenticates them.

use sqlx::FromRow;

use rusqlite::OptionalExtension;

use super::{Db, Pool};
use crate::clock::Timestamp;
use crate::consent::AppFacts;
use crate::scopes::TrustLevel;

#[derive(Debug, Clone, FromRow)]
struct AppRow {
    client_id: String,
    name: String,
    client_type: String,
    auth_method: String,
    secret_hash: Option<String>,
    jwks: Option<String>,
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
    capabilities: String,
    trust_level: String,
    purpose: String,
    consent_copy: String,
    domain: Option<String>,
    consent_ttl: Option<i64>,
}

/// How an app presents itself on the consent screen and what Onyx approved it for, beyond its
/// approved scope list.
#[derive(Debug, Clone, Default)]
pub struct ConsentProfile {
    /// Approved scopes the user may untick (the others are required for the app to work).
    pub optional_scopes: Vec<String>,
    /// Scopes the app asked for that Onyx is still reviewing.
    pub pending_scopes: Vec<String>,
    /// Gated capabilities Onyx enabled for the app.
    pub capabilities: Vec<String>,
    pub trust_level: TrustLevel,
    /// The app's declared intended use, shown on the consent screen.
    pub purpose: String,
    /// The app's own words on the consent screen.
    pub consent_copy: String,
    /// The app's verified domain.
    pub domain: Option<String>,
    /// How long consent to this app lasts, seconds (`None`: only the scopes' own limits).
    pub consent_ttl: Option<i64>,
}

/// Whether an app can keep a secret (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    /// A server-side app.
    Confidential,
    /// A native or browser app: PKCE is its only proof.
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }
}

/// How an app authenticates at the token, introspection and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `client_secret_basic` or `client_secret_post` (RFC 6749 §2.3.1).
    ClientSecret,
    /// `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9) with the app's registered JWKS.
    PrivateKeyJwt,
    /// Public apps.
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecret => "client_secret",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "private_key_jwt" => Self::PrivateKeyJwt,
            "none" => Self::None,
            _ => Self::ClientSecret,
        }
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
    pub secret_hash: Option<String>,
    /// The public JWKS (JSON), for `PrivateKeyJwt` apps.
    pub jwks: Option<String>,
    pub id_token_alg: String,
    pub access_state: String,
    pub redirect_uris: Vec<String>,
    pub origins: Vec<String>,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub lifetimes: LifetimeOverrides,
    pub consent: ConsentProfile,
}

impl App {
    /// What the permission model needs to know about the app.
    pub fn facts(&self) -> AppFacts<'_> {
        AppFacts {
            approved: &self.scopes,
            pending: &self.consent.pending_scopes,
            trust: self.consent.trust_level,
            capabilities: &self.consent.capabilities,
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

    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    pub fn is_active(&self) -> bool {
        self.access_state == "active"
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
        Self {
            client_type: if r.client_type == "public" {
                ClientType::Public
            } else {
                ClientType::Confidential
            },
            auth_method: AuthMethod::parse(&r.auth_method),
            redirect_uris: list(&r.redirect_uris),
            origins: list(&r.origins),
            scopes: list(&r.scopes),
            grant_types: list(&r.grant_types),
            consent: ConsentProfile {
                optional_scopes: list(&r.optional_scopes),
                pending_scopes: list(&r.pending_scopes),
                capabilities: list(&r.capabilities),
                trust_level: TrustLevel::parse(&r.trust_level).unwrap_or_default(),
                purpose: r.purpose,
                consent_copy: r.consent_copy,
                domain: r.domain,
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
            secret_hash: r.secret_hash,
            jwks: r.jwks,
            id_token_alg: r.id_token_alg,
            access_state: r.access_state,
        }
    }
}

pub struct NewApp<'a> {
    pub name: &'a str,
    pub client_type: ClientType,
    pub auth_method: AuthMethod,
    pub secret_hash: Option<String>,
    pub jwks: Option<String>,
    pub id_token_alg: &'a str,
    pub redirect_uris: &'a [String],
    pub origins: &'a [String],
    pub scopes: &'a [String],
    pub grant_types: &'a [String],
    pub lifetimes: LifetimeOverrides,
    pub consent: &'a ConsentProfile,
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

#[tracing::instrument(level = "debug", skip_all, fields(name = new.name))]
pub async fn create(pool: &Pool, new: NewApp<'_>, now: Timestamp) -> Result<String, sqlx::Error> {
    let client_id = crate::crypto::random_id();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO apps (client_id, name, client_type, auth_method, secret_hash, jwks, redirect_uris,
             origins, scopes, grant_types, id_token_alg, access_token_ttl, id_token_ttl,
             refresh_token_idle_ttl, refresh_token_absolute_ttl, access_state, created_at,
             optional_scopes, pending_scopes, capabilities, trust_level, purpose, consent_copy,
             domain, consent_ttl)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'active', $16,
                 $17, $18, $19, $20, $21, $22, $23, $24)",
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
    .bind(json(&new.consent.capabilities))
    .bind(new.consent.trust_level.as_str())
    .bind(&new.consent.purpose)
    .bind(&new.consent.consent_copy)
    .bind(new.consent.domain.as_deref())
    .bind(new.consent.consent_ttl)
    .execute(&mut *tx)
    .await?;
    for origin in new.origins {
        sqlx::query("INSERT INTO app_origins (client_id, origin) VALUES ($1, $2)")
            .bind(&client_id)
            .bind(origin)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(client_id)
}

const BY_CLIENT_ID: &str = "SELECT client_id, name, client_type, auth_method, secret_hash, jwks,
        redirect_uris, origins, scopes, grant_types, id_token_alg, access_token_ttl, id_token_ttl,
        refresh_token_idle_ttl, refresh_token_absolute_ttl, access_state, optional_scopes,
        pending_scopes, capabilities, trust_level, purpose, consent_copy, domain, consent_ttl
 FROM apps WHERE client_id = $1";

impl AppRow {
    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            client_id: r.get("client_id")?,
            name: r.get("name")?,
            client_type: r.get("client_type")?,
            auth_method: r.get("auth_method")?,
            secret_hash: r.get("secret_hash")?,
            jwks: r.get("jwks")?,
            redirect_uris: r.get("redirect_uris")?,
            origins: r.get("origins")?,
            scopes: r.get("scopes")?,
            grant_types: r.get("grant_types")?,
            id_token_alg: r.get("id_token_alg")?,
            access_token_ttl: r.get("access_token_ttl")?,
            id_token_ttl: r.get("id_token_ttl")?,
            refresh_token_idle_ttl: r.get("refresh_token_idle_ttl")?,
            refresh_token_absolute_ttl: r.get("refresh_token_absolute_ttl")?,
            access_state: r.get("access_state")?,
            optional_scopes: r.get("optional_scopes")?,
            pending_scopes: r.get("pending_scopes")?,
            capabilities: r.get("capabilities")?,
            trust_level: r.get("trust_level")?,
            purpose: r.get("purpose")?,
            consent_copy: r.get("consent_copy")?,
            domain: r.get("domain")?,
            consent_ttl: r.get("consent_ttl")?,
        })
    }
}

/// The app row, read at every request that names a client (no cache: an access change is seen
/// by the next request).
#[tracing::instrument(level = "debug", skip(db))]
pub async fn by_client_id(db: &Db, client_id: &str) -> Result<Option<App>, sqlx::Error> {
    let row = match &db.direct {
        Some(direct) => direct.read(|c| {
            c.prepare_cached(BY_CLIENT_ID)?
                .query_row(
                    rusqlite::named_params! { "$1": client_id },
                    AppRow::from_sqlite,
                )
                .optional()
        })?,
        None => {
            sqlx::query_as::<_, AppRow>(BY_CLIENT_ID)
                .bind(client_id)
                .fetch_optional(&db.pool)
                .await?
        }
    };
    Ok(row.map(App::from))
}

/// Sets an app's access state (`active`, `limited`, `suspended`); true if the app exists.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn set_access_state(
    pool: &Pool,
    client_id: &str,
    state: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE apps SET access_state = $1 WHERE client_id = $2")
        .bind(state)
        .bind(client_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether any app registered `origin` (a CORS preflight cannot say which app it is for).
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn origin_is_registered(pool: &Pool, origin: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM app_origins WHERE origin = $1")
        .bind(origin)
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}
