//! `onyx-id keys rotate`: new signing keys, and how long the old ones stay published.

use serde::Serialize;

use super::AdminError;
use crate::clock::Timestamp;
use crate::config::Settings;
use crate::keys::{self, Algorithm};
use crate::store::Db;
use crate::store::apps;

/// A key the rotation added.
#[derive(Debug, Serialize)]
pub struct KeyAdded {
    pub kid: String,
    pub alg: Algorithm,
    pub signs_from: Timestamp,
}

/// What `keys rotate` did.
#[derive(Debug, Serialize)]
pub struct KeysRotated {
    /// Always `true`: the answer of a rotation that happened.
    pub rotated: bool,
    pub keys: Vec<KeyAdded>,
    pub previous_keys_revoked: bool,
    pub previous_keys_published_until: Timestamp,
}

pub async fn rotate_keys(
    db: &Db,
    settings: &Settings,
    now: Timestamp,
    immediately: bool,
    revoke_old: bool,
) -> Result<KeysRotated, AdminError> {
    let ahead = if immediately {
        0
    } else {
        settings.key_publish_ahead
    };
    // The old keys stay published until the longest-lived token they may still sign has
    // expired: the server's lifetimes and every app's own.
    let (app_access, app_id) = apps::longest_token_lifetimes(db).await?;
    let keep_old_for = [
        Some(settings.lifetimes.access_token),
        Some(settings.lifetimes.id_token),
        app_access,
        app_id,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);
    let retire = if revoke_old {
        keys::Retire::Now
    } else {
        keys::Retire::After(keep_old_for)
    };
    let kek = keys::KeyEncryptionKey::resolve(settings)?;
    let added = keys::rotate(db, &kek, &settings.keys_dir, now, ahead, retire)
        .await
        .map_err(|e| match e {
            // The operator's to fix, and said as it is.
            keys::KeysError::WrongKek => AdminError::Invalid(e.to_string()),
            other => AdminError::Internal(other.into()),
        })?;
    Ok(KeysRotated {
        rotated: true,
        keys: added
            .into_iter()
            .map(|(kid, alg, signs_from)| KeyAdded {
                kid,
                alg,
                signs_from,
            })
            .collect(),
        previous_keys_revoked: revoke_old,
        previous_keys_published_until: if revoke_old {
            now
        } else {
            now + ahead + keep_old_for
        },
    })
}
