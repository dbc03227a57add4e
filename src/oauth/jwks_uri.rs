//! The keys of an app that registered a `jwks_uri` (RFC 7591 §2) for `private_key_jwt`: fetched
//! through the one public-address guard ([`crate::net::outbound::Guard`]), with a timeout and a
//! size cap, and cached per instance.
//!
//! - A cached set is used for [`JwksFetchSettings::cache_ttl`]; after that the next assertion
//!   fetches it again.
//! - An assertion whose `kid` the cached set lacks (the app rotated its keys) triggers one
//!   refetch, at most once per [`JwksFetchSettings::refetch_interval`] per app: a client sending
//!   made-up `kid`s cannot make onyx-id hammer its own (or anyone's) server.
//! - A set with a private key in it (`d`, `p`, `k`, …) is refused whole: an app that publishes
//!   its private key has lost it.
//! - A failed fetch is remembered for the refetch interval: assertions meanwhile get its error
//!   without a new fetch, so a broken or slow host is not asked again at every request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

use crate::net::outbound::{self, AddressError, Guard};

/// How `jwks_uri` fetches reach the app's host, and how long their answers are kept.
#[derive(Debug, Clone)]
pub struct JwksFetchSettings {
    /// Private and loopback addresses are allowed too (tests and development only).
    pub allow_private: bool,
    /// Plain `http` is allowed (tests and development only).
    pub insecure_http: bool,
    /// Fixed addresses for host names, like curl's --resolve (tests only; still checked).
    pub resolve: Vec<(String, SocketAddr)>,
    /// CA certificates trusted beside the public roots (tests and private CAs).
    pub extra_roots: Vec<reqwest::Certificate>,
    /// The whole fetch, connection included.
    pub timeout: Duration,
    /// The largest JWKS document accepted.
    pub max_bytes: usize,
    /// How long a fetched set is used before it is fetched again.
    pub cache_ttl: Duration,
    /// The least time between two fetches of one app's set caused by an unknown `kid`.
    pub refetch_interval: Duration,
}

impl Default for JwksFetchSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            insecure_http: false,
            resolve: Vec::new(),
            extra_roots: Vec::new(),
            timeout: Duration::from_secs(5),
            max_bytes: 64 * 1024,
            cache_ttl: Duration::from_secs(300),
            refetch_interval: Duration::from_secs(60),
        }
    }
}

/// Why an app's keys could not be had, in words for the app's developers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JwksError {
    #[error("the jwks_uri {0}")]
    Url(String),
    #[error("the jwks_uri's host {0}")]
    Address(String),
    #[error("fetching the jwks_uri failed: {0}")]
    Fetch(String),
    #[error("the jwks_uri answered HTTP {0}, not 200")]
    Status(u16),
    #[error("the jwks_uri's document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the jwks_uri's document is not a JWK Set: {0}")]
    NotJwks(String),
    #[error(
        "the jwks_uri's set holds a private key (member {0:?}): it must publish public keys only"
    )]
    PrivateKey(String),
    #[error("no key of the jwks_uri's set has the kid {0:?}")]
    UnknownKid(String),
}

struct Cached {
    uri: String,
    keys: JwkSet,
    fetched_at: Instant,
}

/// The per-instance cache of fetched sets, by client_id, and when each app's set was last
/// fetched (for the refetch limit).
#[derive(Default)]
pub struct JwksCache {
    sets: Mutex<HashMap<String, Cached>>,
    /// When a `kid` miss last refetched each app's set.
    last_fetch: Mutex<HashMap<String, Instant>>,
    failed: Mutex<HashMap<String, (Instant, String, JwksError)>>,
}

/// The members that make a JWK a private (or symmetric) key.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Parses a JWK Set of public keys; a private or symmetric key anywhere refuses the whole set.
pub fn public_set(body: &[u8]) -> Result<JwkSet, JwksError> {
    let raw: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| JwksError::NotJwks(e.to_string()))?;
    let keys = raw
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| JwksError::NotJwks("it has no \"keys\" array".into()))?;
    for key in keys {
        if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| key.get(**m).is_some()) {
            return Err(JwksError::PrivateKey((*member).to_string()));
        }
    }
    serde_json::from_value(raw).map_err(|e| JwksError::NotJwks(e.to_string()))
}

impl JwksCache {
    /// The app's keys for an assertion with `kid`: the cached set while it is fresh and holds
    /// the `kid` (any set, without a `kid`), else a fetch, within the refetch limit.
    pub async fn keys(
        &self,
        settings: &JwksFetchSettings,
        client_id: &str,
        uri: &str,
        kid: Option<&str>,
    ) -> Result<JwkSet, JwksError> {
        let has = |set: &JwkSet| kid.is_none_or(|k| set.find(k).is_some());
        let cached = {
            let sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
            sets.get(client_id)
                .filter(|c| c.uri == uri && c.fetched_at.elapsed() < settings.cache_ttl)
                .map(|c| c.keys.clone())
        };
        if let Some(set) = &cached {
            if has(set) {
                return Ok(set.clone());
            }
            // A kid the fresh set lacks: one refetch, unless one was made just now.
            let recent = {
                let last = self.last_fetch.lock().unwrap_or_else(|p| p.into_inner());
                last.get(client_id)
                    .is_some_and(|at| at.elapsed() < settings.refetch_interval)
            };
            if recent {
                return Err(JwksError::UnknownKid(kid.unwrap_or_default().to_string()));
            }
        }
        {
            let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, failed_uri, e)) = failed.get(client_id)
                && failed_uri == uri
                && at.elapsed() < settings.refetch_interval
            {
                return Err(e.clone());
            }
        }
        if cached.is_some() {
            // This fetch is the kid miss's refetch: the next one waits the interval.
            self.last_fetch
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(client_id.to_string(), Instant::now());
        }
        let set = match fetch(settings, uri).await {
            Ok(set) => {
                self.failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(client_id);
                set
            }
            Err(e) => {
                self.failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(
                        client_id.to_string(),
                        (Instant::now(), uri.to_string(), e.clone()),
                    );
                return Err(e);
            }
        };
        self.sets.lock().unwrap_or_else(|p| p.into_inner()).insert(
            client_id.to_string(),
            Cached {
                uri: uri.to_string(),
                keys: set.clone(),
                fetched_at: Instant::now(),
            },
        );
        if !has(&set) {
            return Err(JwksError::UnknownKid(kid.unwrap_or_default().to_string()));
        }
        Ok(set)
    }
}

/// Checks a `jwks_uri` as registered: an absolute https URL (http only when allowed) with a
/// host, no credentials and no fragment.
pub fn check_uri(uri: &str, insecure_http: bool) -> Result<url::Url, JwksError> {
    let url = url::Url::parse(uri).map_err(|e| JwksError::Url(format!("is not a URL ({e})")))?;
    match url.scheme() {
        "https" => {}
        "http" if insecure_http => {}
        _ => return Err(JwksError::Url("must be an https URL".into())),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(JwksError::Url("has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(JwksError::Url("must not carry credentials".into()));
    }
    if url.fragment().is_some() {
        return Err(JwksError::Url("must not have a fragment".into()));
    }
    Ok(url)
}

/// One guarded GET of the set.
async fn fetch(settings: &JwksFetchSettings, uri: &str) -> Result<JwkSet, JwksError> {
    let url = check_uri(uri, settings.insecure_http)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let guard = Guard {
        allow_private: settings.allow_private,
        insecure_http: settings.insecure_http,
        resolve: &settings.resolve,
        extra_roots: &settings.extra_roots,
    };
    let addrs = guard.addresses(&host, port).await.map_err(|e| match e {
        AddressError::Resolve { reason, .. } => {
            JwksError::Address(format!("could not be resolved ({reason})"))
        }
        AddressError::NotPublic { addr, kind, .. } => {
            JwksError::Address(format!("resolves to {addr}, {kind}"))
        }
    })?;
    let client = guard
        .client(
            &host,
            &addrs,
            settings.timeout,
            settings.timeout,
            "onyx-id jwks_uri fetch",
        )
        .map_err(|e| JwksError::Fetch(outbound::cause(&e)))?;
    let fetch = async {
        let mut resp = client
            .get(url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    JwksError::Fetch(format!("no answer within {:?}", settings.timeout))
                } else {
                    JwksError::Fetch(outbound::cause(&e))
                }
            })?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(JwksError::Status(resp.status().as_u16()));
        }
        let (body, more) = outbound::read_at_most(&mut resp, settings.max_bytes)
            .await
            .map_err(|e| JwksError::Fetch(outbound::cause(&e)))?;
        if more {
            return Err(JwksError::TooLarge(settings.max_bytes));
        }
        public_set(&body)
    };
    // The client's timeout covers the body too; this bounds a server that trickles it.
    tokio::time::timeout(settings.timeout, fetch)
        .await
        .unwrap_or_else(|_| {
            Err(JwksError::Fetch(format!(
                "no complete answer within {:?}",
                settings.timeout
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn a_public_set_parses_and_a_private_key_refuses_it_whole() {
        let set = public_set(format!(r#"{{"keys":[{EC}]}}"#).as_bytes()).unwrap();
        assert!(set.find("a").is_some());
        let private = EC.replace(
            r#""kid":"a""#,
            r#""kid":"b","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI""#,
        );
        let err = public_set(format!(r#"{{"keys":[{EC},{private}]}}"#).as_bytes()).unwrap_err();
        assert!(
            matches!(err, JwksError::PrivateKey(ref m) if m == "d"),
            "{err}"
        );
        let symmetric = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
        assert!(matches!(
            public_set(symmetric.as_bytes()),
            Err(JwksError::PrivateKey(_))
        ));
        assert!(matches!(public_set(b"[]"), Err(JwksError::NotJwks(_))));
        assert!(matches!(
            public_set(b"not json"),
            Err(JwksError::NotJwks(_))
        ));
    }

    #[test]
    fn only_https_urls_with_a_host_and_no_credentials_are_registered() {
        assert!(check_uri("https://app.example/jwks.json", false).is_ok());
        assert!(check_uri("http://app.example/jwks.json", false).is_err());
        assert!(check_uri("http://app.example/jwks.json", true).is_ok());
        assert!(check_uri("https://user:pw@app.example/jwks", false).is_err());
        assert!(check_uri("https://app.example/jwks#keys", false).is_err());
        assert!(check_uri("file:///etc/passwd", true).is_err());
        assert!(check_uri("jwks.json", false).is_err());
    }
}
