//! Partner apps (OAuth clients): their registered redirect URIs, origins, scopes and grants.

use sqlx::FromRow;

use super::Pool;
use crate::clock::Timestamp;

#[derive(Debug, Clone, FromRow)]
struct AppRow {
    client_id: String,
    name: String,
    client_type: String,
    secret_hash: Option<String>,
    id_token_alg: String,
    access_state: String,
}

/// How an app authenticates at the token endpoint (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    /// Holds a secret (a server-side app).
    Confidential,
    /// Cannot keep a secret (a native or browser app): PKCE is its only proof.
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

#[derive(Debug, Clone)]
pub struct App {
    pub client_id: String,
    pub name: String,
    pub client_type: ClientType,
    /// `secret_hash()` of the client secret; `None` for public apps.
    pub secret_hash: Option<String>,
    pub id_token_alg: String,
    pub access_state: String,
    pub redirect_uris: Vec<String>,
    pub origins: Vec<String>,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
}

impl App {
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    pub fn is_active(&self) -> bool {
        self.access_state == "active"
    }
}

pub struct NewApp<'a> {
    pub name: &'a str,
    pub client_type: ClientType,
    pub secret_hash: Option<String>,
    pub id_token_alg: &'a str,
    pub redirect_uris: &'a [String],
    pub origins: &'a [String],
    pub scopes: &'a [String],
    pub grant_types: &'a [&'a str],
}

#[tracing::instrument(skip_all, fields(name = new.name))]
pub async fn create(pool: &Pool, new: NewApp<'_>, now: Timestamp) -> Result<String, sqlx::Error> {
    let client_id = crate::crypto::random_id();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO apps (client_id, name, client_type, secret_hash, id_token_alg, access_state, created_at)
         VALUES ($1, $2, $3, $4, $5, 'active', $6)",
    )
    .bind(&client_id)
    .bind(new.name)
    .bind(new.client_type.as_str())
    .bind(new.secret_hash.as_deref())
    .bind(new.id_token_alg)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for uri in new.redirect_uris {
        sqlx::query("INSERT INTO app_redirect_uris (client_id, uri) VALUES ($1, $2)")
            .bind(&client_id)
            .bind(uri)
            .execute(&mut *tx)
            .await?;
    }
    for origin in new.origins {
        sqlx::query("INSERT INTO app_origins (client_id, origin) VALUES ($1, $2)")
            .bind(&client_id)
            .bind(origin)
            .execute(&mut *tx)
            .await?;
    }
    for scope in new.scopes {
        sqlx::query("INSERT INTO app_scopes (client_id, scope) VALUES ($1, $2)")
            .bind(&client_id)
            .bind(scope)
            .execute(&mut *tx)
            .await?;
    }
    for grant_type in new.grant_types {
        sqlx::query("INSERT INTO app_grant_types (client_id, grant_type) VALUES ($1, $2)")
            .bind(&client_id)
            .bind(grant_type)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(client_id)
}

async fn strings(
    pool: &Pool,
    sql: &'static str,
    client_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar::<_, String>(sql)
        .bind(client_id)
        .fetch_all(pool)
        .await
}

#[tracing::instrument(skip(pool))]
pub async fn by_client_id(pool: &Pool, client_id: &str) -> Result<Option<App>, sqlx::Error> {
    let Some(row) = sqlx::query_as::<_, AppRow>(
        "SELECT client_id, name, client_type, secret_hash, id_token_alg, access_state
         FROM apps WHERE client_id = $1",
    )
    .bind(client_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let redirect_uris = strings(
        pool,
        "SELECT uri FROM app_redirect_uris WHERE client_id = $1 ORDER BY uri",
        client_id,
    )
    .await?;
    let origins = strings(
        pool,
        "SELECT origin FROM app_origins WHERE client_id = $1 ORDER BY origin",
        client_id,
    )
    .await?;
    let scopes = strings(
        pool,
        "SELECT scope FROM app_scopes WHERE client_id = $1 ORDER BY scope",
        client_id,
    )
    .await?;
    let grant_types = strings(
        pool,
        "SELECT grant_type FROM app_grant_types WHERE client_id = $1 ORDER BY grant_type",
        client_id,
    )
    .await?;
    Ok(Some(App {
        client_type: if row.client_type == "public" {
            ClientType::Public
        } else {
            ClientType::Confidential
        },
        client_id: row.client_id,
        name: row.name,
        secret_hash: row.secret_hash,
        id_token_alg: row.id_token_alg,
        access_state: row.access_state,
        redirect_uris,
        origins,
        scopes,
        grant_types,
    }))
}

/// Whether any app registered `origin` (a CORS preflight cannot say which app it is for).
#[tracing::instrument(skip(pool))]
pub async fn origin_is_registered(pool: &Pool, origin: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM app_origins WHERE origin = $1")
        .bind(origin)
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}
