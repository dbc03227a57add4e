//! `onyx-id users create | update`: accounts, and the facts that decide what they may grant.

use serde::Serialize;

use super::{AdminError, cli_event, invalid, no_account};
use crate::clock::Timestamp;
use crate::crypto::hash_password;
use crate::store::Db;
use crate::store::users::{self, CreateUserError, RiskLevel, User};

pub use crate::store::users::UserChanges;

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

/// A new account.
#[derive(Debug, Serialize)]
pub struct UserCreated {
    pub user_id: String,
    pub email: String,
    pub name: String,
}

pub async fn create_user(
    db: &Db,
    now: Timestamp,
    email: &str,
    name: &str,
    password: &str,
) -> Result<UserCreated, AdminError> {
    validate_email(email)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("the name must be 1 to 200 characters"));
    }
    if users::password_rule(password).is_err() {
        return Err(invalid(
            "the password must be at least 8 characters (and at most 1024 bytes)",
        ));
    }
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AdminError::Internal(e.into()))??;
    match users::create(db, email, name, &hash, now).await {
        Ok(user) => Ok(UserCreated {
            user_id: user.id,
            email: user.email,
            name: user.name,
        }),
        Err(CreateUserError::EmailTaken) => Err(invalid(format!(
            "an account with email {:?} already exists",
            users::normalise_email(email)
        ))),
        Err(CreateUserError::Db(e)) => Err(e.into()),
    }
}

/// An account's facts, as `users update` prints them.
#[derive(Debug, Serialize)]
pub struct UserFacts {
    pub user_id: String,
    pub email: String,
    pub email_verified: bool,
    pub region: Option<String>,
    pub risk_level: RiskLevel,
}

impl UserFacts {
    fn of(user: &User) -> Self {
        Self {
            user_id: user.id.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified,
            region: user.region.clone(),
            risk_level: user.risk_level,
        }
    }
}

/// One fact's change, in the audit entry.
#[derive(Serialize)]
struct Change<T> {
    from: T,
    to: T,
}

fn change<T: PartialEq>(from: T, to: T) -> Option<Change<T>> {
    (from != to).then_some(Change { from, to })
}

/// The facts that changed (only those), in the audit entry.
#[derive(Serialize)]
struct FactChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<Change<bool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Change<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_level: Option<Change<RiskLevel>>,
}

impl FactChanges {
    fn between(before: UserFacts, after: &UserFacts) -> Self {
        Self {
            email_verified: change(before.email_verified, after.email_verified),
            region: change(before.region, after.region.clone()),
            risk_level: change(before.risk_level, after.risk_level),
        }
    }

    fn is_empty(&self) -> bool {
        self.email_verified.is_none() && self.region.is_none() && self.risk_level.is_none()
    }
}

/// The detail of `user.updated`.
#[derive(Serialize)]
struct Updated<'a> {
    user_id: &'a str,
    email: &'a str,
    changes: FactChanges,
}

/// Applies `changes` to the account with this email. Answers the account's facts.
pub async fn update_user(
    db: &Db,
    email: &str,
    changes: &UserChanges,
) -> Result<UserFacts, AdminError> {
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
        return Err(no_account(email));
    };
    let before = UserFacts::of(&user);
    // The change and its audit entry commit together.
    let mut tx = db.begin().await?;
    users::update_facts(&mut tx, &user.id, changes).await?;
    let user = users::by_id_on(&mut tx, &user.id)
        .await?
        .ok_or_else(|| invalid("the account was deleted meanwhile"))?;
    let after = UserFacts::of(&user);
    let changes = FactChanges::between(before, &after);
    if !changes.is_empty() {
        let detail = Updated {
            user_id: &after.user_id,
            email: &after.email,
            changes,
        };
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        cli_event(&mut tx, now, None, "user.updated", &detail).await?;
    }
    tx.commit().await?;
    Ok(after)
}
