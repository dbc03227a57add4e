//! Client authentication (RFC 6749 §2.3) at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523 §2.2) for apps that
//! registered a JWKS, and `none` for public apps, which prove themselves with PKCE. Resource
//! servers authenticate with their secret, like confidential apps.

use std::borrow::Cow;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::error::OAuthError;
use super::params::Params;
use crate::crypto::Secret;
use crate::startup::AppState;
use crate::store::apps::{self, App, AuthMethod};
use crate::store::resource_servers::{self, ResourceServer};

pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest a client assertion may live (exp − now); longer ones are refused.
const MAX_ASSERTION_LIFETIME: i64 = 600;

/// The credentials a request presented, before they are checked.
#[derive(Debug)]
pub enum Presented {
    Basic {
        client_id: String,
        secret: Secret,
    },
    Post {
        client_id: String,
        secret: Secret,
    },
    Assertion {
        client_id: String,
        assertion: Secret,
    },
    None {
        client_id: String,
    },
}

impl Presented {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::Assertion { client_id, .. }
            | Self::None { client_id } => client_id,
        }
    }

    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Self::Basic { secret, .. } | Self::Post { secret, .. } => Some(secret),
            _ => None,
        }
    }
}

/// Who called: an app or a resource server.
#[derive(Debug, Clone)]
pub enum Caller {
    App(Box<App>),
    ResourceServer(ResourceServer),
}

/// Decodes one half of a Basic credential: form-URL-encoded before base64 (RFC 6749 §2.3.1).
fn form_decode(raw: &str) -> Result<String, OAuthError> {
    super::params::decode_component(raw.as_bytes())
        .map(Cow::into_owned)
        .ok_or_else(|| OAuthError::invalid_client("client credentials must be UTF-8"))
}

fn parse_basic(value: &str) -> Result<(String, Secret), OAuthError> {
    let malformed = || OAuthError::invalid_client("the Basic authorization header is malformed");
    let encoded = value
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("basic "))
        .map(|_| &value[6..])
        .ok_or_else(malformed)?;
    let bytes = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(bytes).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok((id, Secret::new(form_decode(secret)?)))
}

/// The `iss` of an assertion, read before verification only to find the client.
fn assertion_issuer(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")?.as_str().map(str::to_string)
}

/// Reads which credentials the request presents; more than one method is `invalid_request`.
pub fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| OAuthError::invalid_client("the authorization header is malformed"))?;
            Some(parse_basic(v)?)
        }
        None => None,
    };
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let assertion = match (
        params.get("client_assertion_type"),
        params.get("client_assertion"),
    ) {
        (None, None) => None,
        (Some(JWT_BEARER_ASSERTION), Some(a)) => Some(a),
        (Some(JWT_BEARER_ASSERTION), None) => {
            return Err(OAuthError::invalid_request(
                "client_assertion is required with client_assertion_type",
            ));
        }
        (Some(_), _) => {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER_ASSERTION}"
            )));
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "client_assertion_type is required with client_assertion",
            ));
        }
    };
    let methods = usize::from(basic.is_some())
        + usize::from(body_secret.is_some())
        + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(OAuthError::invalid_request(
            "use one client authentication method: HTTP Basic, client_secret in the body, or client_assertion",
        ));
    }
    if let Some(assertion) = assertion {
        let iss = assertion_issuer(assertion)
            .ok_or_else(|| OAuthError::invalid_client("client_assertion is not a readable JWT"))?;
        if body_id.is_some_and(|id| id != iss) {
            return Err(OAuthError::invalid_client(
                "client_id differs from the assertion's issuer",
            ));
        }
        return Ok(Presented::Assertion {
            client_id: iss,
            assertion: Secret::new(assertion),
        });
    }
    match (basic, body_id, body_secret) {
        (Some((id, _)), Some(body), None) if body != id => Err(OAuthError::invalid_request(
            "client_id in the body differs from the authenticated client",
        )),
        (Some((client_id, secret)), _, _) => Ok(Presented::Basic { client_id, secret }),
        (None, Some(id), Some(secret)) => Ok(Presented::Post {
            client_id: id.to_string(),
            secret: Secret::new(secret),
        }),
        (None, Some(id), None) => Ok(Presented::None {
            client_id: id.to_string(),
        }),
        (None, None, Some(_)) => Err(OAuthError::invalid_request(
            "client_secret was sent without client_id",
        )),
        (None, None, None) => Err(OAuthError::invalid_client(
            "client authentication is required",
        )),
    }
}

fn failed() -> OAuthError {
    OAuthError::invalid_client("client authentication failed")
}

/// Authenticates an app.
pub async fn authenticate(state: &AppState, presented: &Presented) -> Result<App, OAuthError> {
    let app = apps::by_client_id(&state.db, presented.client_id())
        .await?
        .ok_or_else(failed)?;
    // Defence in depth: a profile app is registered with keys, but a secret is refused even
    // if one were stored for it.
    if app.fapi2() && !matches!(presented, Presented::Assertion { .. }) {
        return Err(OAuthError::invalid_client(format!(
            "{} private_key_jwt client authentication",
            super::profile::FAPI2_RULE
        )));
    }
    match (app.auth_method, presented) {
        (
            AuthMethod::ClientSecret,
            Presented::Basic { secret, .. } | Presented::Post { secret, .. },
        ) => {
            let stored = app.secret_hash.as_ref().ok_or_else(failed)?;
            // After a rotation the previous secret works until its overlap window ends.
            let previous = app.previous_secret_hash.as_ref().filter(|_| {
                app.previous_secret_expires_at
                    .is_some_and(|t| t > state.now())
            });
            let current_ok = stored.matches(secret);
            let previous_ok = previous.is_some_and(|p| p.matches(secret));
            if current_ok | previous_ok {
                Ok(app)
            } else {
                Err(failed())
            }
        }
        (AuthMethod::PrivateKeyJwt, Presented::Assertion { assertion, .. }) => {
            verify_assertion(state, &app, assertion.expose()).await?;
            Ok(app)
        }
        (AuthMethod::None, Presented::None { .. }) => Ok(app),
        (AuthMethod::None, _) => Err(OAuthError::invalid_client(
            "this app is public and has no client credentials",
        )),
        (AuthMethod::ClientSecret, _) => Err(OAuthError::invalid_client(
            "this app authenticates with client_secret_basic or client_secret_post",
        )),
        (AuthMethod::PrivateKeyJwt, _) => Err(OAuthError::invalid_client(
            "this app authenticates with private_key_jwt",
        )),
    }
}

/// Checks a resource server's secret (its row already loaded).
pub fn check_resource_server(presented: &Presented, rs: &ResourceServer) -> Result<(), OAuthError> {
    let secret = presented.secret().ok_or_else(|| {
        OAuthError::invalid_client(
            "resource servers authenticate with client_secret_basic or client_secret_post",
        )
    })?;
    if rs.secret_hash.matches(secret) {
        Ok(())
    } else {
        Err(failed())
    }
}

/// Authenticates the caller of introspection: a resource server or a confidential app.
pub async fn authenticate_caller(
    state: &AppState,
    presented: &Presented,
) -> Result<Caller, OAuthError> {
    if presented
        .client_id()
        .starts_with(resource_servers::ID_PREFIX)
    {
        let rs = resource_servers::by_client_id(&state.db, presented.client_id())
            .await?
            .ok_or_else(failed)?;
        check_resource_server(presented, &rs)?;
        return Ok(Caller::ResourceServer(rs));
    }
    let app = authenticate(state, presented).await?;
    if app.auth_method == AuthMethod::None {
        return Err(OAuthError::invalid_client(
            "public apps cannot call this endpoint",
        ));
    }
    Ok(Caller::App(Box::new(app)))
}

#[derive(serde::Deserialize)]
struct AssertionClaims {
    exp: i64,
    jti: Option<String>,
    nbf: Option<i64>,
}

/// RFC 7523 §3: signed by a key of the app's JWKS, `iss` = `sub` = client_id, unexpired,
/// short-lived, a `jti` never seen before, and `aud` the issuer identifier (a string, or an
/// array that contains it). An endpoint URL is not accepted as `aud`: an assertion made for
/// another server's endpoint, or one this server could be tricked into naming, cannot be
/// replayed here (the audience-injection class RFC 7523bis closes).
async fn verify_assertion(state: &AppState, app: &App, assertion: &str) -> Result<(), OAuthError> {
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};

    let bad = |why: &str| OAuthError::invalid_client(format!("client assertion rejected: {why}"));
    let header = decode_header(assertion).map_err(|_| bad("malformed JWT header"))?;
    let jwks: JwkSet = match &app.jwks_uri {
        // Fetched (or cached) for this kid: an unknown kid refetches once, rate-limited.
        Some(uri) => state
            .jwks_cache
            .keys(
                &state.settings.jwks_fetch,
                &app.client_id,
                uri,
                header.kid.as_deref(),
            )
            .await
            .map_err(|e| bad(&e.to_string()))?,
        None => app
            .jwks
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or_else(|| bad("the app has no usable JWKS registered"))?,
    };
    let allowed = [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::EdDSA,
    ];
    if !allowed.contains(&header.alg) {
        return Err(bad("the signing algorithm must be asymmetric"));
    }
    if app.fapi2() && !super::profile::FAPI2_ASSERTION_ALGS.contains(&header.alg) {
        return Err(OAuthError::invalid_client(format!(
            "client assertion rejected: {} ES256, PS256 or EdDSA, not {:?}",
            super::profile::FAPI2_RULE,
            header.alg
        )));
    }
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(|| bad("no registered key matches the assertion's kid"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| bad("the registered key cannot verify"))?;
    let mut v = Validation::new(header.alg);
    v.set_audience(&[state.settings.issuer.as_str()]);
    v.set_issuer(&[&app.client_id]);
    v.sub = Some(app.client_id.clone());
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    // Time is checked below against the server's clock.
    v.validate_exp = false;
    v.validate_nbf = false;
    let claims = decode::<AssertionClaims>(assertion, &key, &v)
        .map_err(|e| bad(describe(&e)))?
        .claims;
    let now = state.now();
    const LEEWAY: i64 = 30;
    if claims.exp + LEEWAY < now {
        return Err(bad("expired"));
    }
    if claims.exp - now > MAX_ASSERTION_LIFETIME {
        return Err(bad("exp is too far in the future (at most 10 minutes)"));
    }
    if claims.nbf.is_some_and(|nbf| nbf - LEEWAY > now) {
        return Err(bad("not valid yet"));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| bad("jti is required"))?;
    let first_use =
        crate::store::assertions::record_jti(&state.db, &app.client_id, &jti, claims.exp + LEEWAY)
            .await?;
    if !first_use {
        return Err(bad("this assertion was already used (jti replay)"));
    }
    Ok(())
}

/// Why an assertion failed, in words for the client's developers.
fn describe(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAudience => "aud must be the issuer identifier",
        ErrorKind::InvalidIssuer => "iss must be the client_id",
        ErrorKind::InvalidSubject => "sub must be the client_id",
        ErrorKind::MissingRequiredClaim(_) => "a required claim (exp, iss, sub, aud) is missing",
        ErrorKind::InvalidAlgorithm => "the key does not fit the algorithm",
        _ => "malformed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_url_decoded() {
        // "my-app" encoded the way strict clients encode it, and a secret with a '+' sign.
        let header = format!("Basic {}", STANDARD.encode("my%2Dapp:s%2Bcret%3A1"));
        let (id, secret) = parse_basic(&header).unwrap();
        assert_eq!(id, "my-app");
        assert_eq!(secret.expose(), "s+cret:1");
    }

    #[test]
    fn malformed_basic_headers_are_refused() {
        assert!(parse_basic("Basic !!!").is_err());
        assert!(parse_basic(&format!("Basic {}", STANDARD.encode("no-colon"))).is_err());
        assert!(parse_basic("Bearer x").is_err());
        assert!(parse_basic("Basic").is_err());
    }
}
