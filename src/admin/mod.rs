//! Operator commands (`onyx-id users create`, `apps create`, `resource-servers create`,
//! `keys rotate`, `grants show | revoke`). Each works on the same database (and key encryption key) as
//! `serve`, also while a server runs, and returns a typed outcome that the CLI prints as its one
//! JSON object.
//!
//! One file per aggregate: `users`, `apps` (and resource servers), `keys`, `grants`. A change
//! and its audit entry (actor `cli`) commit in one transaction.

mod apps;
mod grants;
mod keys;
mod users;

use serde::Serialize;

use crate::clock::Timestamp;
use crate::store::audit::{self, Event};
use crate::store::{Db, Tx};

pub use apps::{AppCreated, AppSpec, ResourceServerCreated, create_app, create_resource_server};
pub use grants::{GrantRevoked, UserGrant, UserGrants, revoke_grant, show_grants};
pub use keys::{KeyAdded, KeysRotated, rotate_keys};
pub use users::{UserChanges, UserCreated, UserFacts, create_user, update_user, validate_email};

/// How the audit log names an operator at the command line: `cli`; the detail of each entry
/// adds the OS account that ran the command (`os_user`), when the environment says.
pub const CLI_ACTOR: &str = "cli";

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

/// The message for an email no account has.
fn no_account(email: &str) -> AdminError {
    invalid(format!("there is no account with email {email:?}"))
}

fn os_user() -> Option<String> {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|u| u.trim().chars().take(64).collect::<String>())
        .find(|u| !u.is_empty() && !u.chars().any(char::is_control))
}

/// The detail of a CLI audit entry: the command's own detail (an object), with the OS user.
#[derive(Serialize)]
struct CliDetail<'a, T: Serialize> {
    #[serde(flatten)]
    detail: &'a T,
    os_user: Option<String>,
}

/// Appends a CLI command's entry to the audit log, in the caller's transaction.
async fn cli_event<T: Serialize>(
    tx: &mut Tx<'_>,
    now: Timestamp,
    client_id: Option<&str>,
    action: &str,
    detail: &T,
) -> Result<(), AdminError> {
    let detail = serde_json::to_value(CliDetail {
        detail,
        os_user: os_user(),
    })
    .map_err(anyhow::Error::from)?;
    audit::append(
        tx,
        now,
        Event {
            actor: CLI_ACTOR,
            partner_id: None,
            client_id,
            action,
            detail,
        },
    )
    .await?;
    Ok(())
}

/// Records a CLI command that changed something outside the database (`keys rotate`), with
/// what it answered as the detail.
pub async fn record_cli_event<T: Serialize>(
    db: &Db,
    now: Timestamp,
    action: &str,
    detail: &T,
) -> Result<(), AdminError> {
    let mut tx = db.begin().await?;
    cli_event(&mut tx, now, None, action, detail).await?;
    tx.commit().await?;
    Ok(())
}
