//! People with an Onyx account.

use sqlx::FromRow;

use super::Db;
use crate::clock::Timestamp;
use crate::wire::wire_enum;

/// A person's Onyx account.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: PasswordHash,
    pub email_verified: bool,
    pub created_at: Timestamp,
    /// ISO 3166-1 alpha-2.
    pub region: Option<String>,
    pub risk_level: RiskLevel,
}

impl User {
    /// What the permission model needs to know about the account.
    pub fn facts(&self) -> crate::consent::UserFacts<'_> {
        crate::consent::UserFacts {
            email_verified: self.email_verified,
            region: self.region.as_deref(),
            elevated_risk: self.risk_level == RiskLevel::Elevated,
        }
    }
}

wire_enum! {
    /// How much Onyx worries about an account: an elevated risk shortens how long consent
    /// lasts (`scopes.toml`, `expiry.elevated_risk_max_days`).
    pub enum RiskLevel as "snake_case" {
        Normal,
        Elevated,
    }
}

/// An account's password, hashed (argon2id, a PHC string: `crypto::hash_password`). It prints
/// redacted and has no equality: a password is checked against it with
/// `crypto::verify_password`, off the request's thread.
#[derive(Clone)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The PHC string, for `crypto::verify_password`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

/// How a password breaks the one rule every password meets (`users create`, the Security
/// page's password change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    TooLong,
}

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// At least 8 characters and at most 1024 bytes.
pub fn password_rule(password: &str) -> Result<(), PasswordProblem> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        Err(PasswordProblem::TooShort)
    } else if password.len() > MAX_PASSWORD_BYTES {
        Err(PasswordProblem::TooLong)
    } else {
        Ok(())
    }
}

/// A `users` row as stored.
#[derive(FromRow)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    password_hash: String,
    email_verified: i64,
    created_at: Timestamp,
    region: Option<String>,
    risk_level: String,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        Self {
            id: r.id,
            email: r.email,
            name: r.name,
            password_hash: PasswordHash(r.password_hash),
            email_verified: r.email_verified != 0,
            created_at: r.created_at,
            region: r.region,
            // Only `elevated` shortens consent; anything else reads as normal.
            risk_level: RiskLevel::parse(&r.risk_level).unwrap_or(RiskLevel::Normal),
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
        password_hash: PasswordHash(password_hash.to_string()),
        email_verified: false,
        created_at: now,
        region: None,
        risk_level: RiskLevel::Normal,
    };
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, email_verified, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(&user.name)
    .bind(password_hash)
    .bind(i64::from(user.email_verified))
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
    sqlx::query_as::<_, UserRow>("SELECT * FROM users WHERE email = $1")
        .bind(normalise_email(email))
        .fetch_optional(pool)
        .await
        .map(|r| r.map(User::from))
}

#[tracing::instrument(level = "debug", skip(db))]
pub async fn by_id(db: &Db, id: &str) -> Result<Option<User>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as::<_, UserRow>("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map(|r| r.map(User::from))
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

/// Replaces the account's password hash inside `tx` (a password change ends the person's other
/// sessions in the same transaction).
#[tracing::instrument(level = "debug", skip(tx, password_hash))]
pub async fn set_password_in(
    tx: &mut super::Tx<'_>,
    id: &str,
    password_hash: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// `by_id` on a connection (inside a transaction).
pub async fn by_id_on(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map(|r| r.map(User::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_prints_its_password_hash_redacted() {
        let user = User::from(UserRow {
            id: "u1".into(),
            email: "ada@example.com".into(),
            name: "Ada".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            email_verified: 1,
            created_at: 0,
            region: Some("GB".into()),
            risk_level: "elevated".into(),
        });
        let printed = format!("{user:?}");
        assert!(!printed.contains("argon2id"), "{printed}");
        assert!(!printed.contains("aGFzaA"), "{printed}");
        assert!(printed.contains("PasswordHash([redacted])"), "{printed}");
        assert!(user.email_verified);
        assert_eq!(user.risk_level, RiskLevel::Elevated);
        assert_eq!(
            user.password_hash.expose(),
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
        );
    }

    #[test]
    fn a_stored_risk_level_other_than_elevated_reads_as_normal() {
        let read = |risk: &str| {
            User::from(UserRow {
                id: "u1".into(),
                email: "ada@example.com".into(),
                name: "Ada".into(),
                password_hash: String::new(),
                email_verified: 0,
                created_at: 0,
                region: None,
                risk_level: risk.into(),
            })
        };
        assert_eq!(read("normal").risk_level, RiskLevel::Normal);
        assert_eq!(read("").risk_level, RiskLevel::Normal);
        assert!(!read("normal").facts().elevated_risk);
        assert!(read("elevated").facts().elevated_risk);
        assert!(!read("normal").email_verified);
        assert_eq!(RiskLevel::Elevated.as_str(), "elevated");
    }
}
