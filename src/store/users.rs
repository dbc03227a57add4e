//! People with an Onyx account.

use sqlx::FromRow;

use super::Db;
use crate::clock::Timestamp;

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub email_verified: i64,
    pub created_at: Timestamp,
    pub region: Option<String>,
    pub risk_level: String,
}

impl User {
    /// What the permission model needs to know about the account.
    pub fn facts(&self) -> crate::consent::UserFacts<'_> {
        crate::consent::UserFacts {
            email_verified: self.email_verified != 0,
            region: self.region.as_deref(),
            elevated_risk: self.risk_level == "elevated",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Emails are compared case-insensitively: stored lowercased and trimmed.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

#[tracing::instrument(level = "debug", skip(db, password_hash))]
pub async fn create(
    db: &Db,
    email: &str,
    name: &str,
    password_hash: &str,
    now: Timestamp,
) -> Result<User, CreateUserError> {
    let pool = &db.writer;
    let user = User {
        id: crate::crypto::random_id(),
        email: normalise_email(email),
        name: name.trim().to_string(),
        password_hash: password_hash.to_string(),
        email_verified: 0,
        created_at: now,
        region: None,
        risk_level: "normal".into(),
    };
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, email_verified, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(&user.name)
    .bind(&user.password_hash)
    .bind(user.email_verified)
    .bind(user.created_at)
    .execute(pool)
    .await
    .map_err(|e| {
        if super::is_unique_violation(&e) {
            CreateUserError::EmailTaken
        } else {
            e.into()
        }
    })?;
    Ok(user)
}

#[tracing::instrument(level = "debug", skip(db))]
pub async fn by_email(db: &Db, email: &str) -> Result<Option<User>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as::<_, User>("SELECT * FROM users WHERE email = $1")
        .bind(normalise_email(email))
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(level = "debug", skip(db))]
pub async fn by_id(db: &Db, id: &str) -> Result<Option<User>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as::<_, User>("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Changes to an account's facts that decide eligibility and how long consent lasts.
#[derive(Debug, Default, Clone)]
pub struct UserChanges {
    pub email_verified: Option<bool>,
    /// `Some(None)` clears the region.
    pub region: Option<Option<String>>,
    pub risk_level: Option<String>,
}

/// Sets the facts `changes` names (checked by the caller) inside `tx`, so that the audit entry
/// of the change commits with it.
#[tracing::instrument(level = "debug", skip(tx))]
pub async fn update_facts(
    tx: &mut super::Tx<'_>,
    id: &str,
    changes: &UserChanges,
) -> Result<(), sqlx::Error> {
    if let Some(v) = changes.email_verified {
        sqlx::query("UPDATE users SET email_verified = $1 WHERE id = $2")
            .bind(i64::from(v))
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    if let Some(region) = &changes.region {
        sqlx::query("UPDATE users SET region = $1 WHERE id = $2")
            .bind(region.as_deref())
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    if let Some(risk) = &changes.risk_level {
        sqlx::query("UPDATE users SET risk_level = $1 WHERE id = $2")
            .bind(risk)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// `by_id` on a connection (inside a transaction).
pub async fn by_id_on(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}
