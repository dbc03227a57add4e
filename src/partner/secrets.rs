//! An app's client secret: rotation, with an overlap during which the old one still works.

use serde::Serialize;
use serde_json::json;

use super::program::{ProgramError, Result, app_event};
use crate::clock::Timestamp;
use crate::crypto::{random_secret, secret_hash};
use crate::store::Db;
use crate::store::apps::{self, App, AuthMethod};

/// The longest overlap a rotation may keep the old secret working.
pub const MAX_SECRET_OVERLAP: i64 = 30 * 24 * 3600;

/// The overlap when none is asked for: a day.
const DEFAULT_OVERLAP: i64 = 24 * 3600;

/// A new client secret (the only time its text is shown).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SecretRotated {
    pub client_id: String,
    pub client_secret: String,
    #[schema(value_type = i64)]
    pub previous_secret_valid_until: Timestamp,
}

impl std::fmt::Debug for SecretRotated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRotated")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field(
                "previous_secret_valid_until",
                &self.previous_secret_valid_until,
            )
            .finish()
    }
}

/// Gives a confidential app a new secret; the old one keeps working for `overlap` seconds
/// (a day when not given, at most `MAX_SECRET_OVERLAP`).
pub async fn rotate_secret(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    overlap: Option<i64>,
) -> Result<SecretRotated> {
    if app.auth_method != AuthMethod::ClientSecret {
        return Err(ProgramError::conflict(
            "no_secret",
            "this app does not authenticate with a client secret",
        ));
    }
    let overlap = overlap.unwrap_or(DEFAULT_OVERLAP);
    if !(0..=MAX_SECRET_OVERLAP).contains(&overlap) {
        return Err(ProgramError::invalid(
            "invalid_request",
            format!("overlap_seconds must be between 0 and {MAX_SECRET_OVERLAP}"),
        ));
    }
    let secret = random_secret();
    let valid_until = now + overlap;
    let mut tx = db.begin().await?;
    apps::rotate_secret(&mut tx, &app.client_id, &secret_hash(&secret), valid_until).await?;
    app_event(
        &mut tx,
        now,
        actor,
        app,
        "app.secret_rotated",
        json!({ "previous_secret_valid_until": valid_until }),
    )
    .await?;
    tx.commit().await?;
    Ok(SecretRotated {
        client_id: app.client_id.clone(),
        client_secret: secret,
        previous_secret_valid_until: valid_until,
    })
}
