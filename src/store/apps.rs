//! Partner apps (OAuth clients): registration, and the one-row lookup that authenticates them.

use sqlx::FromRow;

use rusqlite::OptionalExtension;

use super::{Db, Pool};
use crate::clock::Timestamp;

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
}

impl App {
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
             refresh_token_idle_ttl, refresh_token_absolute_ttl, access_state, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'active', $16)",
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
        refresh_token_idle_ttl, refresh_token_absolute_ttl, access_state
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
