//! Minting tokens: JWT access tokens (RFC 9068) recorded by the hash of their text, opaque
//! refresh tokens, and ID tokens (OIDC Core §2). Lifetimes come from the app, or the server's
//! defaults.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::AnyConnection;

use crate::crypto::{ordered_id, random_secret, secret_hash, sha256};
use crate::keys::Algorithm;
use crate::startup::AppState;
use crate::store::apps::App;
use crate::store::refresh_tokens::{self, RefreshToken};
use crate::store::tokens::AccessToken;

/// A signed access token and its row (not yet stored).
pub struct Minted {
    pub token: String,
    /// Whether the token is bound to a DPoP key (`cnf.jkt`, RFC 9449 §6.1).
    pub bound: bool,
    pub token_hash: String,
    pub record: AccessToken,
}

/// What an access token is for.
pub struct AccessGrant<'a> {
    pub user_id: Option<&'a str>,
    pub grant_id: Option<&'a str>,
    pub family_id: Option<&'a str>,
    pub scope: &'a str,
    pub audience: &'a str,
    pub auth_time: Option<i64>,
    /// The thumbprint of the DPoP key the token is bound to (RFC 9449 §6).
    pub jkt: Option<&'a crate::oauth::dpop::Jkt>,
}

pub fn access_token_lifetime(state: &AppState, app: &App) -> i64 {
    app.lifetimes
        .access_token
        .unwrap_or(state.settings.lifetimes.access_token)
}

/// Signs an access token (ES256, `typ: at+jwt`) and builds its row; the caller stores it.
pub async fn mint_access_token(
    state: &AppState,
    app: &App,
    grant: AccessGrant<'_>,
) -> anyhow::Result<Minted> {
    let now = state.now();
    let record = AccessToken {
        jti: ordered_id(),
        client_id: app.client_id.clone(),
        user_id: grant.user_id.map(str::to_string),
        grant_id: grant.grant_id.map(str::to_string),
        family_id: grant.family_id.map(str::to_string),
        scope: grant.scope.to_string(),
        audience: grant.audience.to_string(),
        auth_time: grant.auth_time,
        issued_at: now,
        expires_at: now + access_token_lifetime(state, app),
        revoked_at: None,
    };
    let mut claims = serde_json::json!({
        "iss": state.settings.issuer.as_str(),
        "sub": grant.user_id.unwrap_or(&app.client_id),
        "aud": record.audience,
        "client_id": app.client_id,
        "scope": record.scope,
        "iat": record.issued_at,
        "exp": record.expires_at,
        "jti": record.jti,
    });
    if let Some(t) = grant.auth_time {
        claims["auth_time"] = t.into();
    }
    if let Some(jkt) = grant.jkt {
        claims["cnf"] = serde_json::json!({ "jkt": jkt.as_str() });
    }
    let key = state
        .keys
        .current()
        .await
        .signer(Algorithm::ES256, now)
        .ok_or_else(|| anyhow::anyhow!("no active ES256 signing key"))?;
    let token = key.sign_jwt("at+jwt", &claims)?;
    Ok(Minted {
        bound: grant.jkt.is_some(),
        token_hash: secret_hash(&token),
        token,
        record,
    })
}

/// Signs an access token and stores it through the group-commit writer.
pub async fn access_token(
    state: &AppState,
    app: &App,
    grant: AccessGrant<'_>,
) -> anyhow::Result<Minted> {
    let minted = mint_access_token(state, app, grant).await?;
    state
        .token_writer
        .insert(minted.token_hash.clone(), minted.record.clone())
        .await?;
    Ok(minted)
}

/// Stores a minted access token on `conn` (inside the caller's transaction).
pub async fn store_access_token(
    conn: &mut AnyConnection,
    minted: &Minted,
) -> Result<(), sqlx::Error> {
    crate::store::tokens::insert_many(conn, &[(minted.token_hash.clone(), minted.record.clone())])
        .await
}

/// The family a refresh token belongs to, and what it grants.
pub struct RefreshSeed<'a> {
    pub family_id: &'a str,
    pub user_id: &'a str,
    pub grant_id: &'a str,
    pub scope: &'a str,
    pub audience: &'a str,
    pub auth_time: i64,
    /// For a family's first token, `None`: the absolute lifetime starts now.
    pub family_expires_at: Option<i64>,
    /// The DPoP key a public app's refresh token is bound to (RFC 9449 §5).
    pub dpop_jkt: Option<&'a str>,
}

/// Makes and stores a refresh token on `conn`; returns its text.
/// When a refresh token used now lapses unless used again: the idle lifetime from now, never
/// past its family's absolute expiry.
pub fn refresh_idle_expiry(state: &AppState, app: &App, family_expires_at: i64) -> i64 {
    let idle = app
        .lifetimes
        .refresh_token_idle
        .unwrap_or(state.settings.lifetimes.refresh_token_idle);
    (state.now() + idle).min(family_expires_at)
}

pub async fn refresh_token(
    conn: &mut AnyConnection,
    state: &AppState,
    app: &App,
    seed: RefreshSeed<'_>,
) -> anyhow::Result<String> {
    let now = state.now();
    let l = &state.settings.lifetimes;
    let absolute = app
        .lifetimes
        .refresh_token_absolute
        .unwrap_or(l.refresh_token_absolute);
    let family_expires_at = seed.family_expires_at.unwrap_or(now + absolute);
    let token = random_secret();
    let record = RefreshToken {
        family_id: seed.family_id.to_string(),
        client_id: app.client_id.clone(),
        user_id: seed.user_id.to_string(),
        grant_id: seed.grant_id.to_string(),
        scope: seed.scope.to_string(),
        audience: seed.audience.to_string(),
        auth_time: seed.auth_time,
        issued_at: now,
        expires_at: refresh_idle_expiry(state, app, family_expires_at),
        family_expires_at,
        used_at: None,
        revoked_at: None,
        dpop_jkt: seed.dpop_jkt.map(str::to_string),
    };
    refresh_tokens::insert(conn, &secret_hash(&token), &record).await?;
    Ok(token)
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the SHA-256 of the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&sha256(access_token.as_bytes())[..16])
}

pub struct IdTokenInput<'a> {
    pub user_id: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub access_token: &'a str,
    /// The public id of the session the person signed in with (OIDC Back-Channel Logout 1.0
    /// §2.1): the same in every ID token of that session and in its logout tokens.
    pub sid: Option<&'a str>,
}

pub async fn id_token(
    state: &AppState,
    app: &App,
    input: IdTokenInput<'_>,
) -> anyhow::Result<String> {
    let now = state.now();
    let alg = app.id_token_alg;
    let lifetime = app
        .lifetimes
        .id_token
        .unwrap_or(state.settings.lifetimes.id_token);
    let mut claims = serde_json::json!({
        "iss": state.settings.issuer.as_str(),
        "sub": input.user_id,
        "aud": app.client_id,
        "iat": now,
        "exp": now + lifetime,
        "auth_time": input.auth_time,
        "at_hash": at_hash(input.access_token),
    });
    if let Some(n) = input.nonce {
        claims["nonce"] = n.into();
    }
    if let Some(sid) = input.sid {
        claims["sid"] = sid.into();
    }
    let key = state
        .keys
        .current()
        .await
        .signer(alg, now)
        .ok_or_else(|| anyhow::anyhow!("no active {} signing key", alg.as_str()))?;
    key.sign_jwt("JWT", &claims)
}
