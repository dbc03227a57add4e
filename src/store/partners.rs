//! Partners (organisations in the partner program), their members (Onyx accounts with a partner
//! role) and API keys: partner keys act for one partner, operator keys for one operator account.
//! A key is shown once; only its hash is kept, and it is looked up by that hash.

use serde::Serialize;
use sqlx::FromRow;

use super::{Db, Tx};
use crate::clock::Timestamp;
use crate::crypto::{random_id, random_secret, secret_hash};

#[derive(Debug, Clone, Serialize)]
pub struct Partner {
    pub id: String,
    pub name: String,
    pub website: String,
    pub regions: Vec<String>,
    pub support_contact: String,
    pub created_at: Timestamp,
}

#[derive(FromRow)]
struct PartnerRow {
    id: String,
    name: String,
    website: String,
    regions: String,
    support_contact: String,
    created_at: Timestamp,
}

impl From<PartnerRow> for Partner {
    fn from(r: PartnerRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            website: r.website,
            regions: serde_json::from_str(&r.regions).unwrap_or_default(),
            support_contact: r.support_contact,
            created_at: r.created_at,
        }
    }
}

pub struct NewPartner<'a> {
    pub name: &'a str,
    pub website: &'a str,
    pub regions: &'a [String],
    pub support_contact: &'a str,
}

pub async fn create(
    tx: &mut Tx<'_>,
    p: NewPartner<'_>,
    now: Timestamp,
) -> Result<String, sqlx::Error> {
    let id = random_id();
    sqlx::query(
        "INSERT INTO partners (id, name, website, regions, support_contact, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(p.name)
    .bind(p.website)
    .bind(serde_json::to_string(p.regions).unwrap_or_else(|_| "[]".into()))
    .bind(p.support_contact)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<Partner>, sqlx::Error> {
    let pool = &db.pool;
    let row: Option<PartnerRow> = sqlx::query_as(
        "SELECT id, name, website, regions, support_contact, created_at FROM partners WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Partner::from))
}

pub async fn all(db: &Db) -> Result<Vec<Partner>, sqlx::Error> {
    let pool = &db.pool;
    let rows: Vec<PartnerRow> = sqlx::query_as(
        "SELECT id, name, website, regions, support_contact, created_at FROM partners
         ORDER BY created_at, id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Partner::from).collect())
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub created_at: Timestamp,
}

/// Adds (or changes the role of) a member.
pub async fn set_member(
    tx: &mut Tx<'_>,
    partner_id: &str,
    user_id: &str,
    role: &str,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO partner_members (partner_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (partner_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(partner_id)
    .bind(user_id)
    .bind(role)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn members(db: &Db, partner_id: &str) -> Result<Vec<Member>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as(
        "SELECT m.user_id, u.email, m.role, m.created_at FROM partner_members m
         JOIN users u ON u.id = m.user_id WHERE m.partner_id = $1 ORDER BY m.created_at, u.email",
    )
    .bind(partner_id)
    .fetch_all(pool)
    .await
}

/// Who a presented API key acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    Partner { partner_id: String, key_id: String },
    Operator { user_id: String, key_id: String },
}

impl KeyOwner {
    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        match self {
            Self::Partner { partner_id, key_id } => format!("partner:{partner_id}/key:{key_id}"),
            Self::Operator { user_id, key_id } => format!("operator:{user_id}/key:{key_id}"),
        }
    }
}

/// The prefix of each kind of key, so that a leaked key is recognisable (secret scanners).
pub const PARTNER_KEY_PREFIX: &str = "onyxpk_";
pub const OPERATOR_KEY_PREFIX: &str = "onyxok_";

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// Makes a key; returns its id and its text (shown once).
pub async fn create_key(
    tx: &mut Tx<'_>,
    owner_partner: Option<&str>,
    owner_operator: Option<&str>,
    name: &str,
    now: Timestamp,
) -> Result<(String, String), sqlx::Error> {
    let (kind, prefix) = if owner_partner.is_some() {
        ("partner", PARTNER_KEY_PREFIX)
    } else {
        ("operator", OPERATOR_KEY_PREFIX)
    };
    let id = random_id();
    let key = format!("{prefix}{}", random_secret());
    sqlx::query(
        "INSERT INTO api_keys (id, key_hash, kind, partner_id, user_id, name, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(secret_hash(&key))
    .bind(kind)
    .bind(owner_partner)
    .bind(owner_operator)
    .bind(name)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok((id, key))
}

#[derive(FromRow)]
struct KeyRow {
    id: String,
    kind: String,
    partner_id: Option<String>,
    user_id: Option<String>,
    operator: Option<i64>,
}

/// The owner of an unrevoked key (an operator key counts only while its account is still an
/// operator). The lookup is by the key's SHA-256: equal hashes mean equal keys, and the hash
/// of a 256-bit random key reveals nothing to time.
pub async fn key_owner(
    db: &Db,
    presented: &str,
    now: Timestamp,
) -> Result<Option<KeyOwner>, sqlx::Error> {
    if !(presented.starts_with(PARTNER_KEY_PREFIX) || presented.starts_with(OPERATOR_KEY_PREFIX))
        || presented.len() > 200
    {
        return Ok(None);
    }
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT k.id, k.kind, k.partner_id, k.user_id, u.operator FROM api_keys k
         LEFT JOIN users u ON u.id = k.user_id
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
    )
    .bind(secret_hash(presented))
    .fetch_optional(&db.pool)
    .await?;
    if let Some(r) = &row {
        // When the key was last used, to the minute: at most one write a minute per key.
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now)
        .bind(&r.id)
        .bind(now - 60)
        .execute(&db.writer)
        .await?;
    }
    Ok(
        row.and_then(|r| match (r.kind.as_str(), r.partner_id, r.user_id) {
            ("partner", Some(partner_id), _) => Some(KeyOwner::Partner {
                partner_id,
                key_id: r.id,
            }),
            ("operator", _, Some(user_id)) if r.operator == Some(1) => Some(KeyOwner::Operator {
                user_id,
                key_id: r.id,
            }),
            _ => None,
        }),
    )
}

pub async fn keys_of_partner(db: &Db, partner_id: &str) -> Result<Vec<KeyInfo>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as(
        "SELECT id, name, created_at, last_used_at, revoked_at FROM api_keys
         WHERE partner_id = $1 ORDER BY created_at, id",
    )
    .bind(partner_id)
    .fetch_all(pool)
    .await
}

/// A key's name, revoked or not (how the audit log's pages name the key an actor used).
pub async fn key_name(db: &Db, key_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM api_keys WHERE id = $1")
        .bind(key_id)
        .fetch_optional(&db.pool)
        .await
}

/// Revokes a partner's key; false when the partner has no such unrevoked key.
pub async fn revoke_key(
    tx: &mut Tx<'_>,
    partner_id: &str,
    key_id: &str,
    now: Timestamp,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1
         WHERE id = $2 AND partner_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(key_id)
    .bind(partner_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks an account as an operator (or not).
pub async fn set_operator(
    tx: &mut Tx<'_>,
    user_id: &str,
    operator: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET operator = $1 WHERE id = $2")
        .bind(i64::from(operator))
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A partner a person belongs to, with their role there.
#[derive(Debug, Clone, FromRow)]
pub struct Membership {
    pub partner_id: String,
    pub partner_name: String,
    pub role: String,
}

/// Every partner `user_id` is a member of, by name.
pub async fn memberships(db: &Db, user_id: &str) -> Result<Vec<Membership>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.partner_id, p.name AS partner_name, m.role FROM partner_members m
         JOIN partners p ON p.id = m.partner_id WHERE m.user_id = $1 ORDER BY p.name, p.id",
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await
}

/// The role `user_id` holds at `partner_id`, read in the caller's transaction.
pub async fn role_in(
    tx: &mut Tx<'_>,
    partner_id: &str,
    user_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT role FROM partner_members WHERE partner_id = $1 AND user_id = $2")
            .bind(partner_id)
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(|r| r.0))
}

/// How many owners `partner_id` has, in the caller's transaction.
pub async fn owner_count(tx: &mut Tx<'_>, partner_id: &str) -> Result<i64, sqlx::Error> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM partner_members WHERE partner_id = $1 AND role = 'owner'",
    )
    .bind(partner_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(n)
}

/// Removes a member; whether there was one.
pub async fn remove_member(
    tx: &mut Tx<'_>,
    partner_id: &str,
    user_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM partner_members WHERE partner_id = $1 AND user_id = $2")
        .bind(partner_id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether the account is an operator now (read at every request that needs it).
pub async fn is_operator(db: &Db, user_id: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT operator FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.is_some_and(|r| r.0 == 1))
}
