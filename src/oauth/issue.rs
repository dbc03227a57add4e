//! Minting tokens: JWT access tokens (RFC 9068) recorded by the hash of their text, and ID
//! tokens (OIDC Core §2).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::{random_id, secret_hash, sha256};
use crate::keys::Algorithm;
use crate::startup::AppState;
use crate::store::apps::App;
use crate::store::tokens::{self, AccessToken};

pub struct Issued {
    pub token: String,
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
}

pub async fn access_token(
    state: &AppState,
    app: &App,
    grant: AccessGrant<'_>,
) -> anyhow::Result<Issued> {
    let now = state.now();
    let record = AccessToken {
        jti: random_id(),
        client_id: app.client_id.clone(),
        user_id: grant.user_id.map(str::to_string),
        grant_id: grant.grant_id.map(str::to_string),
        family_id: grant.family_id.map(str::to_string),
        scope: grant.scope.to_string(),
        audience: grant.audience.to_string(),
        auth_time: grant.auth_time,
        issued_at: now,
        expires_at: now + state.settings.lifetimes.access_token,
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
    let key = state
        .keys
        .current()
        .signer(Algorithm::ES256, now)
        .ok_or_else(|| anyhow::anyhow!("no active ES256 signing key"))?;
    let token = key.sign_jwt("at+jwt", &claims)?;
    tokens::insert(&state.db.pool, &secret_hash(&token), &record).await?;
    Ok(Issued { token, record })
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
}

pub fn id_token(state: &AppState, app: &App, input: IdTokenInput<'_>) -> anyhow::Result<String> {
    let now = state.now();
    let alg = Algorithm::parse(&app.id_token_alg).unwrap_or(Algorithm::ES256);
    let mut claims = serde_json::json!({
        "iss": state.settings.issuer.as_str(),
        "sub": input.user_id,
        "aud": app.client_id,
        "iat": now,
        "exp": now + state.settings.lifetimes.id_token,
        "auth_time": input.auth_time,
        "at_hash": at_hash(input.access_token),
    });
    if let Some(n) = input.nonce {
        claims["nonce"] = n.into();
    }
    let key = state
        .keys
        .current()
        .signer(alg, now)
        .ok_or_else(|| anyhow::anyhow!("no active {} signing key", alg.as_str()))?;
    key.sign_jwt("JWT", &claims)
}
