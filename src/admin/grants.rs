//! `onyx-id grants show | revoke`: an account's grants as Onyx sees them, and Onyx removing an
//! app's access.

use serde::Serialize;

use super::{AdminError, cli_event, invalid, no_account};
use crate::clock::Timestamp;
use crate::consent::{Reason, View};
use crate::store::Db;
use crate::store::grants::{self, HistoryEntry};
use crate::store::{apps, users};

/// One grant of the account: the app's permissions as the app sees them now.
#[derive(Debug, Serialize)]
pub struct UserGrant {
    pub grant_id: String,
    pub client_id: String,
    /// The app's name.
    pub app: String,
    pub status: String,
    pub ended_reason: Option<String>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub permissions: Vec<View>,
}

/// Every grant of an account, and its permission history.
#[derive(Debug, Serialize)]
pub struct UserGrants {
    pub user_id: String,
    pub email: String,
    pub grants: Vec<UserGrant>,
    pub history: Vec<HistoryEntry>,
}

/// Every grant of the account with this email: each app's permissions as the app sees them now,
/// and the history. (`onyx-id grants show --user E`.)
pub async fn show_grants(db: &Db, now: Timestamp, email: &str) -> Result<UserGrants, AdminError> {
    let Some(user) = users::by_email(db, email).await? else {
        return Err(no_account(email));
    };
    let mut out = Vec::new();
    for grant in grants::of_user(db, &user.id).await? {
        let Some(app) = apps::by_client_id(db, &grant.client_id).await? else {
            continue;
        };
        let permissions = grants::views(db, &grant.id, &app.facts(), &user.facts(), now).await?;
        out.push(UserGrant {
            grant_id: grant.id,
            client_id: grant.client_id,
            app: app.name,
            status: grant.status,
            ended_reason: grant.ended_reason,
            created_at: grant.created_at,
            last_used_at: grant.last_used_at,
            permissions,
        });
    }
    let history = grants::history(db, &user.id, None).await?;
    Ok(UserGrants {
        user_id: user.id,
        email: user.email,
        grants: out,
        history,
    })
}

/// What `grants revoke` removed: the scopes named (none: all of them), and whether the grant
/// ended.
#[derive(Debug, Serialize)]
pub struct GrantRevoked {
    pub grant_id: String,
    pub revoked: Vec<String>,
    pub grant_ended: bool,
}

/// The detail of `grant.revoked`.
#[derive(Serialize)]
struct Revoked<'a> {
    user_id: &'a str,
    email: &'a str,
    grant_id: &'a str,
    #[serde(serialize_with = "all_or_listed")]
    scopes: &'a [String],
    grant_ended: bool,
}

/// The scopes of a revocation in its audit entry: `"all"` when none was named.
fn all_or_listed<S: serde::Serializer>(scopes: &&[String], s: S) -> Result<S::Ok, S::Error> {
    if scopes.is_empty() {
        s.serialize_str("all")
    } else {
        scopes.serialize(s)
    }
}

/// Onyx removes an app's access for one account (one scope, or all). (`onyx-id grants revoke`.)
pub async fn revoke_grant(
    db: &Db,
    now: Timestamp,
    email: &str,
    client_id: &str,
    scope: Option<&str>,
) -> Result<GrantRevoked, AdminError> {
    let Some(user) = users::by_email(db, email).await? else {
        return Err(no_account(email));
    };
    let Some(grant) = grants::current(db, &user.id, client_id).await? else {
        return Err(invalid(format!(
            "{email} has no current grant for app {client_id}"
        )));
    };
    let scopes: Vec<String> = scope.map(|s| vec![s.to_string()]).unwrap_or_default();
    // The revocation and its audit entry commit together.
    let mut tx = db.begin().await?;
    let ended = grants::revoke_in(
        &mut tx,
        &grant.id,
        &scopes,
        Reason::RevokedByOnyx,
        grants::Actor::Onyx,
        now,
    )
    .await?;
    let detail = Revoked {
        user_id: &user.id,
        email: &user.email,
        grant_id: &grant.id,
        scopes: &scopes,
        grant_ended: ended,
    };
    cli_event(&mut tx, now, Some(client_id), "grant.revoked", &detail).await?;
    tx.commit().await?;
    Ok(GrantRevoked {
        grant_id: grant.id,
        revoked: scopes,
        grant_ended: ended,
    })
}
