//! Operator commands (`onyx-id users create`, `apps create`, `keys rotate`). Each works on the
//! same database and keys folder as `serve`, also while a server runs, and returns the one JSON
//! object the CLI prints.

use serde_json::{Value, json};

use crate::config::Settings;
use crate::crypto::{hash_password, random_secret, secret_hash};
use crate::keys::{self, Algorithm};
use crate::oauth::redirect::{validate_for_registration, validate_origin};
use crate::scopes::Scope;
use crate::store::Db;
use crate::store::apps::{self, ClientType, NewApp};
use crate::store::users::{self, CreateUserError};

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
    match users::create(&db.pool, email, name, &hash, now).await {
        Ok(user) => Ok(json!({ "user_id": user.id, "email": user.email, "name": user.name })),
        Err(CreateUserError::EmailTaken) => Err(invalid(format!(
            "an account with email {:?} already exists",
            users::normalise_email(email)
        ))),
        Err(CreateUserError::Db(e)) => Err(e.into()),
    }
}

pub struct AppSpec {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub origins: Vec<String>,
    pub scopes: Vec<String>,
    pub public: bool,
    pub id_token_alg: String,
}

pub async fn create_app(db: &Db, now: i64, spec: AppSpec) -> Result<Value, AdminError> {
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("the app name must be 1 to 100 characters"));
    }
    if spec.redirect_uris.is_empty() {
        return Err(invalid("at least one --redirect-uri is required"));
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
    for s in &scopes {
        Scope::parse(s).map_err(|e| invalid(e.to_string()))?;
    }
    scopes.sort();
    scopes.dedup();
    let mut redirect_uris = spec.redirect_uris.clone();
    redirect_uris.dedup();
    let mut origins = spec.origins.clone();
    origins.sort();
    origins.dedup();
    let alg = Algorithm::parse(&spec.id_token_alg)
        .ok_or_else(|| invalid("--id-token-alg must be ES256 or RS256"))?;
    let (client_type, secret) = if spec.public {
        (ClientType::Public, None)
    } else {
        (ClientType::Confidential, Some(random_secret()))
    };
    let client_id = apps::create(
        &db.pool,
        NewApp {
            name,
            client_type,
            secret_hash: secret.as_deref().map(secret_hash),
            id_token_alg: alg.as_str(),
            redirect_uris: &redirect_uris,
            origins: &origins,
            scopes: &scopes,
            grant_types: &["authorization_code"],
        },
        now,
    )
    .await?;
    let mut out = json!({
        "client_id": client_id,
        "client_type": client_type.as_str(),
        "name": name,
        "redirect_uris": redirect_uris,
        "allowed_origins": origins,
        "scopes": scopes,
        "id_token_signed_response_alg": alg.as_str(),
    });
    if let Some(secret) = secret {
        out["client_secret"] = secret.into();
    }
    Ok(out)
}

pub fn rotate_keys(settings: &Settings, now: i64, immediately: bool) -> Result<Value, AdminError> {
    let ahead = if immediately {
        0
    } else {
        settings.key_publish_ahead
    };
    let keep_old_for = settings
        .lifetimes
        .access_token
        .max(settings.lifetimes.id_token);
    let added = keys::rotate(&settings.keys_dir, now, ahead, keep_old_for)?;
    let keys: Vec<Value> = added
        .iter()
        .map(|(kid, alg, at)| json!({ "kid": kid, "alg": alg.as_str(), "signs_from": at }))
        .collect();
    Ok(
        json!({ "rotated": true, "keys": keys, "previous_keys_published_until": now + ahead + keep_old_for }),
    )
}
