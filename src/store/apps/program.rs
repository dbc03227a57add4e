//! The partner program's reads and writes of an app: its draft and the review steps made live,
//! trust level and stage, secret rotation, domain verification, launch evidence, the names
//! approved apps already use, and preview test accounts.

use super::json;
use crate::clock::Timestamp;
use crate::partner::access::Stage;
use crate::partner::{AppDraft, Step};
use crate::scopes::TrustLevel;
use crate::store::Db;
use crate::store::Tx;

/// Stores the partner's draft and the scopes it asks for that Onyx has not approved yet.
pub async fn set_draft(
    tx: &mut Tx<'_>,
    client_id: &str,
    draft: &AppDraft,
    pending_scopes: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE apps SET draft = $1, pending_scopes = $2 WHERE client_id = $3")
        .bind(serde_json::to_string(draft).unwrap_or_else(|_| "{}".into()))
        .bind(json(pending_scopes))
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The partner's draft of a partner app.
pub async fn draft(db: &Db, client_id: &str) -> Result<Option<AppDraft>, sqlx::Error> {
    let pool = &db.pool;
    let raw: Option<(Option<String>,)> =
        sqlx::query_as("SELECT draft FROM apps WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(pool)
            .await?;
    Ok(raw
        .and_then(|(d,)| d)
        .and_then(|d| serde_json::from_str(&d).ok()))
}

/// Makes the draft's fields of an approved review step live.
pub async fn apply_step(
    tx: &mut Tx<'_>,
    client_id: &str,
    step: Step,
    d: &AppDraft,
) -> Result<(), sqlx::Error> {
    let q = match step {
        Step::AppIdentity => sqlx::query(
            "UPDATE apps SET name = $1, description = $2, consent_copy = $3 WHERE client_id = $4",
        )
        .bind(d.name.trim().to_string())
        .bind(d.description.trim().to_string())
        .bind(d.consent_copy.trim().to_string()),
        Step::UseCase => {
            sqlx::query("UPDATE apps SET use_case = $1, purpose = $2 WHERE client_id = $3")
                .bind(d.use_case.clone())
                .bind(d.purpose.trim().to_string())
        }
        Step::Scopes => {
            let pending: Vec<String> = vec![];
            // The review's approval of the scopes includes grants:read, which the grants API
            // needs: every reviewed app may read its own users' permission states.
            let mut scopes = d.scopes.clone();
            if !scopes.iter().any(|s| s == "grants:read") {
                scopes.push("grants:read".into());
            }
            sqlx::query(
                "UPDATE apps SET scopes = $1, optional_scopes = $2, pending_scopes = $3
                 WHERE client_id = $4",
            )
            .bind(json(&scopes))
            .bind(json(&d.optional_scopes))
            .bind(json(&pending))
        }
        Step::Domain => {
            sqlx::query("UPDATE apps SET domain = $1 WHERE client_id = $2").bind(d.domain.clone())
        }
        Step::RedirectUris => sqlx::query(
            "UPDATE apps SET redirect_uris = $1, origins = $2,
                 require_pushed_authorization_requests = $3
             WHERE client_id = $4",
        )
        .bind(json(&d.redirect_uris))
        .bind(json(&d.origins))
        .bind(i64::from(d.require_pushed_authorization_requests)),
        Step::Webhooks => sqlx::query("UPDATE apps SET webhooks = $1 WHERE client_id = $2")
            .bind(json(&d.webhooks)),
        Step::Support => sqlx::query("UPDATE apps SET support_url = $1 WHERE client_id = $2")
            .bind(d.support_url.clone()),
        Step::Company | Step::ConnectivityCatalogue | Step::PrivacySecurity | Step::Production => {
            return Ok(());
        }
    };
    q.bind(client_id).execute(&mut **tx).await?;
    if step == Step::RedirectUris {
        // The keys decide how a confidential app authenticates: with keys, private_key_jwt,
        // and its client secret stops working (it is dropped: without keys again, the partner
        // rotates a new one).
        let keyed = d.jwks.is_some() || d.jwks_uri.is_some();
        let jwks = d.jwks.as_ref().map(|j| j.to_string());
        sqlx::query(
            "UPDATE apps SET profile = $1, jwks = $2, jwks_uri = $3,
                 auth_method = CASE WHEN client_type = 'public' THEN auth_method ELSE $4 END,
                 secret_hash = CASE WHEN $5 = 1 THEN NULL ELSE secret_hash END,
                 previous_secret_hash = CASE WHEN $5 = 1 THEN NULL ELSE previous_secret_hash END
             WHERE client_id = $6",
        )
        .bind(d.profile.map(super::Profile::as_str))
        .bind(if keyed { jwks } else { None })
        .bind(if keyed { d.jwks_uri.clone() } else { None })
        .bind(if keyed {
            super::AuthMethod::PrivateKeyJwt.as_str()
        } else {
            super::AuthMethod::ClientSecret.as_str()
        })
        .bind(i64::from(keyed))
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
        let logout = crate::store::logout::LogoutMetadata {
            post_logout_redirect_uris: d.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: d.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: d
                .backchannel_logout_session_required
                .unwrap_or(true),
        };
        crate::store::logout::set_metadata(tx, client_id, &logout).await?;
        sqlx::query("DELETE FROM app_origins WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut **tx)
            .await?;
        for origin in &d.origins {
            sqlx::query("INSERT INTO app_origins (client_id, origin) VALUES ($1, $2)")
                .bind(client_id)
                .bind(origin)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

pub async fn set_trust_level(
    tx: &mut Tx<'_>,
    client_id: &str,
    level: TrustLevel,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE apps SET trust_level = $1 WHERE client_id = $2")
        .bind(level.as_str())
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn set_stage(tx: &mut Tx<'_>, client_id: &str, stage: Stage) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE apps SET stage = $1 WHERE client_id = $2")
        .bind(stage.as_str())
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Replaces the secret; the old one keeps working until `previous_until`.
pub async fn rotate_secret(
    tx: &mut Tx<'_>,
    client_id: &str,
    new_hash: &str,
    previous_until: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE apps SET previous_secret_hash = secret_hash, previous_secret_expires_at = $1,
             secret_hash = $2
         WHERE client_id = $3",
    )
    .bind(previous_until)
    .bind(new_hash)
    .bind(client_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn set_domain_token(
    tx: &mut Tx<'_>,
    client_id: &str,
    token: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE apps SET domain_token = $1 WHERE client_id = $2")
        .bind(token)
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Records which domain was verified (or `None`: verification lapsed) and when.
pub async fn set_domain_verified(
    tx: &mut Tx<'_>,
    client_id: &str,
    domain: Option<&str>,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE apps SET domain_verified = $1, domain_verified_at = $2 WHERE client_id = $3",
    )
    .bind(domain)
    .bind(domain.map(|_| now))
    .bind(client_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Launch evidence an app leaves while in preview (see `partner::launch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewEvidence {
    /// The first sign-in completed (code exchanged).
    SignIn,
    /// The first successful revocation call.
    Revocation,
}

/// Records the first time the app left `evidence` while in preview (later ones change nothing).
pub async fn record_preview(
    db: &Db,
    client_id: &str,
    evidence: PreviewEvidence,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    let column = match evidence {
        PreviewEvidence::SignIn => "preview_sign_in_at",
        PreviewEvidence::Revocation => "preview_revocation_at",
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE apps SET {column} = $1
         WHERE client_id = $2 AND stage = 'preview' AND {column} IS NULL"
    )))
    .bind(now)
    .bind(client_id)
    .execute(&db.writer)
    .await?;
    Ok(())
}

/// Live names of every app Onyx has approved (out of draft), but `except`.
pub async fn approved_names(db: &Db, except: &str) -> Result<Vec<String>, sqlx::Error> {
    let pool = &db.pool;
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM apps WHERE stage <> 'draft' AND client_id <> $1")
            .bind(except)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

/// Replaces a preview app's test accounts (emails, normalised by the caller).
pub async fn set_test_accounts(
    tx: &mut Tx<'_>,
    client_id: &str,
    emails: &[String],
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM app_test_accounts WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    for email in emails {
        sqlx::query(
            "INSERT INTO app_test_accounts (client_id, email, added_at) VALUES ($1, $2, $3)",
        )
        .bind(client_id)
        .bind(email)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub async fn test_accounts(db: &Db, client_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let pool = &db.pool;
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT email FROM app_test_accounts WHERE client_id = $1 ORDER BY email")
            .bind(client_id)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(e,)| e).collect())
}

pub async fn is_test_account(db: &Db, client_id: &str, email: &str) -> Result<bool, sqlx::Error> {
    let pool = &db.pool;
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM app_test_accounts WHERE client_id = $1 AND email = $2",
    )
    .bind(client_id)
    .bind(email)
    .fetch_one(pool)
    .await?;
    Ok(n > 0)
}
