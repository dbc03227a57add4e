//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, or `none` for public apps (which prove themselves with PKCE).

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::error::OAuthError;
use super::params::Params;
use crate::crypto::{Secret, ct_eq, secret_hash};
use crate::startup::AppState;
use crate::store::apps::{self, App, ClientType};

/// The credentials a request presented, before they are checked.
#[derive(Debug)]
pub enum Presented {
    Basic { client_id: String, secret: Secret },
    Post { client_id: String, secret: Secret },
    None { client_id: String },
}

impl Presented {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::None { client_id } => client_id,
        }
    }
}

/// Decodes one half of a Basic credential: form-URL-encoded before base64 (RFC 6749 §2.3.1).
fn form_decode(raw: &str) -> Result<String, OAuthError> {
    let decoded: String = url::form_urlencoded::parse(format!("x={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if decoded.contains('\u{FFFD}') {
        return Err(OAuthError::invalid_client(
            "client credentials must be UTF-8",
        ));
    }
    Ok(decoded)
}

fn parse_basic(value: &str) -> Result<(String, Secret), OAuthError> {
    let malformed = || OAuthError::invalid_client("the Basic authorization header is malformed");
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
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

/// Reads which credentials the request presents; more than one method is `invalid_request`.
pub fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| OAuthError::invalid_client("the authorization header is malformed"))?;
            if !v.to_ascii_lowercase().starts_with("basic ") {
                return Err(OAuthError::invalid_client(
                    "only HTTP Basic client authentication is supported in the authorization header",
                ));
            }
            Some(parse_basic(v)?)
        }
        None => None,
    };
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    match (basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method: HTTP Basic or client_secret in the body, not both",
        )),
        (Some((id, _)), Some(body), None) if body != id => Err(OAuthError::invalid_request(
            "client_id in the body differs from the authenticated client",
        )),
        (Some((client_id, secret)), _, None) => Ok(Presented::Basic { client_id, secret }),
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

/// Authenticates the client; every failure is the same `invalid_client` to the caller.
pub async fn authenticate(state: &AppState, presented: &Presented) -> Result<App, OAuthError> {
    let failed = || OAuthError::invalid_client("client authentication failed");
    let app = apps::by_client_id(&state.db.pool, presented.client_id())
        .await?
        .ok_or_else(failed)?;
    match (app.client_type, presented) {
        (
            ClientType::Confidential,
            Presented::Basic { secret, .. } | Presented::Post { secret, .. },
        ) => {
            let stored = app.secret_hash.as_deref().ok_or_else(failed)?;
            if ct_eq(secret_hash(secret.expose()).as_bytes(), stored.as_bytes()) {
                Ok(app)
            } else {
                Err(failed())
            }
        }
        (ClientType::Confidential, Presented::None { .. }) => Err(OAuthError::invalid_client(
            "this app is confidential: authenticate with client_secret_basic or client_secret_post",
        )),
        (ClientType::Public, Presented::None { .. }) => Ok(app),
        (ClientType::Public, _) => Err(OAuthError::invalid_client(
            "this app is public and has no client secret",
        )),
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
    }
}
