//! Partners, their members and API keys, and operators: who may call the partner program.

use serde::Serialize;
use serde_json::json;

use super::program::{ProgramError, Result, check_https_url, check_len};
use crate::clock::Timestamp;
use crate::store::Db;
use crate::store::audit::{self, Event};
use crate::store::partners::{self, KeyInfo, Member, NewPartner, Partner};
use crate::store::users;
use crate::wire::wire_enum;

wire_enum! {
    own parse;
    /// A partner's role for one of its members. Its names (serde, `FromStr`, the CLI's list of
    /// values) derive from the variants.
    pub enum Role as "snake_case" {
        Owner,
        Developer,
    }
}

impl Role {
    /// Reads a role as the API and the CLI name it.
    pub fn parse(raw: &str) -> Result<Self> {
        raw.parse().map_err(|_| {
            ProgramError::invalid("invalid_request", "role must be owner or developer")
        })
    }
}

/// A partner to register.
pub struct PartnerSpec {
    pub name: String,
    pub website: String,
    pub regions: Vec<String>,
    pub support_contact: String,
    /// The Onyx account that becomes the partner's owner.
    pub owner_email: String,
}

/// A registered partner with its first API key (the only time the key's text is shown).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PartnerCreated {
    pub partner_id: String,
    pub name: String,
    pub owner: String,
    pub api_key_id: String,
    pub api_key: String,
}

/// A member's role, as set.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberSet {
    pub partner_id: String,
    pub email: String,
    pub role: Role,
}

/// A partner's profile, members and keys (never the keys' text).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PartnerView {
    #[schema(value_type = crate::partner::api::docs::PartnerDoc)]
    pub partner: Partner,
    #[schema(value_type = Vec<crate::partner::api::docs::MemberDoc>)]
    pub members: Vec<Member>,
    #[schema(value_type = Vec<crate::partner::api::docs::KeyInfoDoc>)]
    pub api_keys: Vec<KeyInfo>,
}

/// A new API key (the only time its text is shown).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyCreated {
    pub api_key_id: String,
    pub name: String,
    pub api_key: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyRevoked {
    pub api_key_id: String,
    pub revoked: bool,
}

/// A new operator with its API key (the only time the key's text is shown).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperatorCreated {
    pub user_id: String,
    pub email: String,
    pub api_key_id: String,
    pub api_key: String,
}

fn no_account(email: &str) -> ProgramError {
    ProgramError::invalid(
        "invalid_request",
        format!("there is no Onyx account with email {email:?}"),
    )
}

/// Registers a partner with its owner and a first API key (`onyx-id partners create`).
pub async fn create_partner(
    db: &Db,
    now: Timestamp,
    actor: &str,
    spec: PartnerSpec,
) -> Result<PartnerCreated> {
    let name = spec.name.trim();
    if name.is_empty() {
        return Err(ProgramError::invalid(
            "invalid_request",
            "the partner name is required",
        ));
    }
    check_len("name", name, 100)?;
    check_https_url("website", &spec.website)?;
    check_len("support_contact", &spec.support_contact, 200)?;
    if spec.support_contact.trim().is_empty() {
        return Err(ProgramError::invalid(
            "invalid_request",
            "a support contact (email address or https URL) is required",
        ));
    }
    for r in &spec.regions {
        if !crate::scopes::is_region_code(r) {
            return Err(ProgramError::invalid(
                "invalid_request",
                format!("region {r:?} must be an ISO 3166-1 alpha-2 code such as GB"),
            ));
        }
    }
    let Some(owner) = users::by_email(db, &spec.owner_email).await? else {
        return Err(no_account(&spec.owner_email));
    };
    let mut tx = db.begin().await?;
    let partner_id = partners::create(
        &mut tx,
        NewPartner {
            name,
            website: &spec.website,
            regions: &spec.regions,
            support_contact: spec.support_contact.trim(),
        },
        now,
    )
    .await?;
    partners::set_member(&mut tx, &partner_id, &owner.id, Role::Owner.as_str(), now).await?;
    let (key_id, key) =
        partners::create_key(&mut tx, Some(&partner_id), None, "first key", now).await?;
    partner_event(
        &mut tx,
        now,
        actor,
        Some(&partner_id),
        None,
        "partner.created",
        json!({ "name": name, "owner": owner.email, "key_id": key_id }),
    )
    .await?;
    tx.commit().await?;
    Ok(PartnerCreated {
        partner_id,
        name: name.to_string(),
        owner: owner.email,
        api_key_id: key_id,
        api_key: key,
    })
}

/// Adds a member (owner or developer) to a partner.
pub async fn add_member(
    db: &Db,
    now: Timestamp,
    actor: &str,
    partner_id: &str,
    email: &str,
    role: Role,
) -> Result<MemberSet> {
    if partners::by_id(db, partner_id).await?.is_none() {
        return Err(ProgramError::NotFound("partner"));
    }
    let Some(user) = users::by_email(db, email).await? else {
        return Err(no_account(email));
    };
    let mut tx = db.begin().await?;
    keeps_an_owner(&mut tx, partner_id, &user.id, Some(role)).await?;
    partners::set_member(&mut tx, partner_id, &user.id, role.as_str(), now).await?;
    partner_event(
        &mut tx,
        now,
        actor,
        Some(partner_id),
        None,
        "partner.member_set",
        json!({ "email": user.email, "role": role }),
    )
    .await?;
    tx.commit().await?;
    Ok(MemberSet {
        partner_id: partner_id.to_string(),
        email: user.email,
        role,
    })
}

/// Refuses a change that would leave a partner with no owner: `user_id` stops being an owner
/// (`role` is `None` for a removal) while being its only one.
async fn keeps_an_owner(
    tx: &mut crate::store::Tx<'_>,
    partner_id: &str,
    user_id: &str,
    role: Option<Role>,
) -> Result<()> {
    let was_owner = partners::role_in(tx, partner_id, user_id).await?.as_deref() == Some("owner");
    if was_owner && role != Some(Role::Owner) && partners::owner_count(tx, partner_id).await? <= 1 {
        return Err(ProgramError::conflict(
            "last_owner",
            "a partner always keeps one owner: make another member an owner first",
        ));
    }
    Ok(())
}

/// A member removed from a partner.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberRemoved {
    pub partner_id: String,
    pub email: String,
    pub removed: bool,
}

/// Removes a member (never the last owner). Their API access ends at once: every page and
/// action reads the membership at each request.
pub async fn remove_member(
    db: &Db,
    now: Timestamp,
    actor: &str,
    partner_id: &str,
    user_id: &str,
) -> Result<MemberRemoved> {
    let Some(user) = users::by_id(db, user_id).await? else {
        return Err(ProgramError::NotFound("member"));
    };
    let mut tx = db.begin().await?;
    keeps_an_owner(&mut tx, partner_id, user_id, None).await?;
    if !partners::remove_member(&mut tx, partner_id, user_id).await? {
        return Err(ProgramError::NotFound("member"));
    }
    partner_event(
        &mut tx,
        now,
        actor,
        Some(partner_id),
        None,
        "partner.member_removed",
        json!({ "email": user.email }),
    )
    .await?;
    tx.commit().await?;
    Ok(MemberRemoved {
        partner_id: partner_id.to_string(),
        email: user.email,
        removed: true,
    })
}

pub async fn partner_view(db: &Db, partner_id: &str) -> Result<PartnerView> {
    let Some(partner) = partners::by_id(db, partner_id).await? else {
        return Err(ProgramError::NotFound("partner"));
    };
    let members = partners::members(db, partner_id).await?;
    let api_keys = partners::keys_of_partner(db, partner_id).await?;
    Ok(PartnerView {
        partner,
        members,
        api_keys,
    })
}

pub async fn create_partner_key(
    db: &Db,
    now: Timestamp,
    actor: &str,
    partner_id: &str,
    name: &str,
) -> Result<KeyCreated> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ProgramError::invalid(
            "invalid_request",
            "a key name is required",
        ));
    }
    check_len("name", name, 100)?;
    let mut tx = db.begin().await?;
    let (key_id, key) = partners::create_key(&mut tx, Some(partner_id), None, name, now).await?;
    partner_event(
        &mut tx,
        now,
        actor,
        Some(partner_id),
        None,
        "partner.key_created",
        json!({ "key_id": key_id, "name": name }),
    )
    .await?;
    tx.commit().await?;
    Ok(KeyCreated {
        api_key_id: key_id,
        name: name.to_string(),
        api_key: key,
    })
}

pub async fn revoke_partner_key(
    db: &Db,
    now: Timestamp,
    actor: &str,
    partner_id: &str,
    key_id: &str,
) -> Result<KeyRevoked> {
    let mut tx = db.begin().await?;
    if !partners::revoke_key(&mut tx, partner_id, key_id, now).await? {
        return Err(ProgramError::NotFound("API key"));
    }
    partner_event(
        &mut tx,
        now,
        actor,
        Some(partner_id),
        None,
        "partner.key_revoked",
        json!({ "key_id": key_id }),
    )
    .await?;
    tx.commit().await?;
    Ok(KeyRevoked {
        api_key_id: key_id.to_string(),
        revoked: true,
    })
}

/// Makes an account an operator and gives it an API key (`onyx-id operators create`).
pub async fn create_operator(
    db: &Db,
    now: Timestamp,
    actor: &str,
    email: &str,
) -> Result<OperatorCreated> {
    let Some(user) = users::by_email(db, email).await? else {
        return Err(no_account(email));
    };
    let mut tx = db.begin().await?;
    partners::set_operator(&mut tx, &user.id, true).await?;
    let (key_id, key) =
        partners::create_key(&mut tx, None, Some(&user.id), "operator key", now).await?;
    partner_event(
        &mut tx,
        now,
        actor,
        None,
        None,
        "operator.created",
        json!({ "email": user.email, "key_id": key_id }),
    )
    .await?;
    tx.commit().await?;
    Ok(OperatorCreated {
        user_id: user.id,
        email: user.email,
        api_key_id: key_id,
        api_key: key,
    })
}

/// Appends an event of the partner program to the audit log: about a partner (none for an
/// operator), and about one of its apps when `client_id` names it.
pub(super) async fn partner_event(
    tx: &mut crate::store::Tx<'_>,
    now: Timestamp,
    actor: &str,
    partner_id: Option<&str>,
    client_id: Option<&str>,
    action: &str,
    detail: serde_json::Value,
) -> std::result::Result<(), sqlx::Error> {
    audit::append(
        tx,
        now,
        Event {
            actor,
            partner_id,
            client_id,
            action,
            detail,
        },
    )
    .await
}
