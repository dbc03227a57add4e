//! Domain verification, one of the review steps (partner-program-access.txt, "Review Steps"):
//! Onyx gives a partner a token ([`new_token`]), the partner publishes it at
//! `https://<domain>/.well-known/onyx-id-verification`, and [`Verifier::verify`] fetches that
//! URL and checks that the body, trimmed of ASCII whitespace, is exactly the token.
//!
//! The fetch is a server-side request to a URL the partner controls, so it is built against
//! server-side request forgery, through the one guarded fetch ([`crate::net::outbound`]): the
//! host is resolved and every address must be public ([`crate::net::is_public_address`]); the
//! connection is then pinned to the checked addresses so DNS cannot change between the check
//! and the connect; redirects are followed by hand, only on the same host and
//! scheme, and re-checked; the whole exchange has a deadline and the body a size cap enforced
//! while it streams in. No proxy, no cookies, only status 200 counts.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};
use url::Url;

use crate::crypto;
use crate::net::outbound::{AddressError, Guard, SHOWN_INPUT_CHARS, cause, read_at_most, shown};

/// Where, under the partner's domain, the token is published.
pub const WELL_KNOWN_PATH: &str = "/.well-known/onyx-id-verification";

/// What every token starts with, so a published file says what it is for.
pub const TOKEN_PREFIX: &str = "onyx-id-verification=";

const USER_AGENT: &str = "onyx-id-domain-verification";

/// Redirects followed before giving up (all on the partner's own host).
const MAX_REDIRECTS: usize = 3;

/// The connect timeout, unless the total timeout is shorter.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How much of a wrong body the mismatch message shows.
const SHOWN_BODY_CHARS: usize = 60;

/// How the verifier fetches. The defaults are the production settings.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Fetch private and loopback addresses too (tests and development only).
    pub allow_private: bool,
    /// `https` normally; `http` only for tests and development against a local server.
    pub insecure_http: bool,
    /// Fixed addresses for host names, like curl's --resolve ("partner.example" -> 127.0.0.1:8080);
    /// the port of the address is the port fetched. Still subject to the address check.
    pub resolve: Vec<(String, SocketAddr)>,
    /// The deadline for the whole verification: resolving, connecting, redirects and the body.
    pub timeout: Duration,
    /// The largest body accepted; a token file is a few dozen bytes.
    pub max_bytes: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            insecure_http: false,
            resolve: Vec::new(),
            timeout: Duration::from_secs(5),
            max_bytes: 4096,
        }
    }
}

/// Checks that a partner controls a domain by fetching the token it published there.
#[derive(Debug, Clone)]
pub struct Verifier {
    config: VerifierConfig,
}

impl Verifier {
    pub fn new(config: VerifierConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The URL the partner must publish the token at.
    pub fn url_for(&self, domain: &str) -> String {
        format!("{}://{domain}{WELL_KNOWN_PATH}", self.scheme())
    }

    /// Fetches and compares. Ok(()) when the published token matches.
    ///
    /// The domain is validated before any network use; nothing here panics, whatever the
    /// domain or the server's answer.
    #[tracing::instrument(name = "domain_verification", skip(self, expected_token))]
    pub async fn verify(&self, domain: &str, expected_token: &str) -> Result<(), VerifyError> {
        check_domain(domain, self.config.allow_private)?;
        let fetched = tokio::time::timeout(self.config.timeout, self.fetch(domain)).await;
        let outcome = match fetched {
            Ok(Ok((url, body))) => compare(&url, &body, expected_token),
            Ok(Err(e)) => Err(e),
            Err(_elapsed) => Err(VerifyError::Timeout {
                url: self.url_for(domain),
                after: self.config.timeout,
            }),
        };
        match &outcome {
            Ok(()) => tracing::info!("domain verified"),
            // The message holds at most a sanitised excerpt of the body, never all of it.
            Err(e) => tracing::info!(code = e.code(), "domain verification failed: {e}"),
        }
        outcome
    }

    fn scheme(&self) -> &'static str {
        if self.config.insecure_http {
            "http"
        } else {
            "https"
        }
    }

    /// Fetches the token file, following same-host redirects; returns the final URL and the
    /// body of its 200 answer.
    async fn fetch(&self, domain: &str) -> Result<(Url, Vec<u8>), VerifyError> {
        let mut url = Url::parse(&self.url_for(domain))
            .map_err(|e| invalid_domain(domain, &format!("it does not form a URL ({e})")))?;
        // The URL parser must see the very host that was validated and will be resolved.
        if url.host_str() != Some(domain) {
            return Err(invalid_domain(
                domain,
                "it does not form a URL with that host",
            ));
        }
        let mut redirects = 0;
        loop {
            // Resolved and checked again on every hop: an earlier answer proves nothing now.
            let addrs = self.addresses(domain).await?;
            let port = match addrs[0].port() {
                0 => url.port_or_known_default().unwrap_or(0),
                p => p,
            };
            let client = self
                .client(domain, &addrs)
                .map_err(|e| VerifyError::Connect {
                    url: url.to_string(),
                    reason: cause(&e),
                })?;
            let resp = client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| self.request_error(&url, &e))?;
            let status = resp.status();
            if is_followed_redirect(status) {
                if redirects == MAX_REDIRECTS {
                    return Err(VerifyError::Redirect {
                        url: url.to_string(),
                        reason: format!("redirects more than {MAX_REDIRECTS} times"),
                    });
                }
                redirects += 1;
                let next = same_host_location(&url, domain, port, resp.headers())?;
                tracing::debug!(from = %url, to = %next, "following a same-host redirect");
                url = next;
                continue;
            }
            if status != StatusCode::OK {
                return Err(VerifyError::Status {
                    url: url.to_string(),
                    status: status.as_u16(),
                });
            }
            let body = self.read_capped(resp, &url).await?;
            return Ok((url, body));
        }
    }

    /// How fetches may reach the partner's host (the one guard every outbound fetch shares).
    fn guard(&self) -> Guard<'_> {
        Guard {
            allow_private: self.config.allow_private,
            insecure_http: self.config.insecure_http,
            resolve: &self.config.resolve,
            // Domain verification trusts the public roots only.
            extra_roots: &[],
        }
    }

    /// The addresses to connect to, every one of them public unless private ones are allowed.
    async fn addresses(&self, domain: &str) -> Result<Vec<SocketAddr>, VerifyError> {
        let port = if self.config.insecure_http { 80 } else { 443 };
        self.guard()
            .addresses(domain, port)
            .await
            .map_err(|e| match e {
                AddressError::Resolve { host, reason } => VerifyError::Resolve {
                    domain: host,
                    reason,
                },
                AddressError::NotPublic { host, addr, kind } => VerifyError::NotPublic {
                    domain: host,
                    addr,
                    kind,
                },
            })
    }

    /// A client that can only reach `domain` at the checked `addrs`.
    fn client(&self, domain: &str, addrs: &[SocketAddr]) -> reqwest::Result<reqwest::Client> {
        self.guard().client(
            domain,
            addrs,
            self.config.timeout,
            self.connect_timeout(),
            USER_AGENT,
        )
    }

    fn connect_timeout(&self) -> Duration {
        self.config.timeout.min(MAX_CONNECT_TIMEOUT)
    }

    fn request_error(&self, url: &Url, err: &reqwest::Error) -> VerifyError {
        if err.is_timeout() {
            let after = if err.is_connect() {
                self.connect_timeout()
            } else {
                self.config.timeout
            };
            VerifyError::Timeout {
                url: url.to_string(),
                after,
            }
        } else {
            VerifyError::Connect {
                url: url.to_string(),
                reason: cause(err),
            }
        }
    }

    /// Reads the body chunk by chunk and stops as soon as it passes the cap.
    async fn read_capped(
        &self,
        mut resp: reqwest::Response,
        url: &Url,
    ) -> Result<Vec<u8>, VerifyError> {
        let max = self.config.max_bytes;
        let too_large = || VerifyError::TooLarge {
            url: url.to_string(),
            limit: max,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX))
        {
            return Err(too_large());
        }
        let (body, cut) = read_at_most(&mut resp, max)
            .await
            .map_err(|e| self.request_error(url, &e))?;
        if cut {
            return Err(too_large());
        }
        Ok(body)
    }
}

/// A fresh verification token: `onyx-id-verification=` followed by 32 random bytes, base64url.
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", crypto::random_token(32))
}

/// Why a verification failed, each with a sentence a partner can act on.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The domain is not a lowercase DNS name this verifier may fetch; the sentence says why.
    #[error("{0}")]
    InvalidDomain(String),
    #[error("{domain} could not be resolved ({reason}); check its DNS records")]
    Resolve { domain: String, reason: String },
    #[error("{domain} resolves to {addr}, {kind}; publish the token on a public host")]
    NotPublic {
        domain: String,
        addr: IpAddr,
        /// What kind of address it is, e.g. "a private address".
        kind: &'static str,
    },
    #[error(
        "could not fetch {url} ({reason}); check that the host serves HTTPS with a valid certificate"
    )]
    Connect { url: String, reason: String },
    #[error("{url} did not answer within {after:?}; check that the host is up and reachable")]
    Timeout { url: String, after: Duration },
    #[error("{url} answered with status {status}; serve the token there with status 200")]
    Status { url: String, status: u16 },
    #[error("{url} {reason}; serve the token at that URL on the domain itself")]
    Redirect {
        url: String,
        /// What was wrong with the redirect, e.g. "redirects to another host, other.example".
        reason: String,
    },
    #[error("{url} serves more than {limit} bytes; the file should hold only the token")]
    TooLarge { url: String, limit: usize },
    #[error("{url} does not serve UTF-8 text; the file should hold only the token")]
    NotText { url: String },
    #[error(
        "{url} serves {} instead of the token; publish exactly the token Onyx gave you",
        describe_published(.published)
    )]
    Mismatch {
        url: String,
        /// The first characters of what is published, control characters replaced.
        published: String,
    },
}

impl VerifyError {
    /// A stable, machine-readable name for the failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidDomain(_) => "domain_invalid",
            Self::Resolve { .. } => "resolve_failed",
            Self::NotPublic { .. } => "address_not_public",
            Self::Connect { .. } => "connect_failed",
            Self::Timeout { .. } => "timeout",
            Self::Status { .. } => "bad_status",
            Self::Redirect { .. } => "redirect_refused",
            Self::TooLarge { .. } => "too_large",
            Self::NotText { .. } => "not_text",
            Self::Mismatch { .. } => "token_mismatch",
        }
    }
}

fn describe_published(published: &str) -> String {
    if published.is_empty() {
        "an empty file".to_string()
    } else {
        format!("\"{published}\"")
    }
}

fn compare(url: &Url, body: &[u8], expected: &str) -> Result<(), VerifyError> {
    let text = std::str::from_utf8(body).map_err(|_| VerifyError::NotText {
        url: url.to_string(),
    })?;
    let published = text.trim_ascii();
    // An empty expected token must never match an empty file.
    if !expected.is_empty() && crypto::ct_eq(published.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch {
            url: url.to_string(),
            published: shown(published, SHOWN_BODY_CHARS),
        })
    }
}

fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The redirect target, if it stays on the same scheme, host and port; a readable refusal
/// naming where it leads otherwise.
fn same_host_location(
    from: &Url,
    domain: &str,
    port: u16,
    headers: &HeaderMap,
) -> Result<Url, VerifyError> {
    let refuse = |reason: String| VerifyError::Redirect {
        url: from.to_string(),
        reason,
    };
    let raw = headers
        .get(LOCATION)
        .ok_or_else(|| refuse("redirects without a Location header".to_string()))?;
    let raw = raw
        .to_str()
        .map_err(|_| refuse("redirects to a Location that is not text".to_string()))?;
    let mut next = from.join(raw).map_err(|_| {
        refuse(format!(
            "redirects to an invalid Location, \"{}\"",
            shown(raw, SHOWN_INPUT_CHARS)
        ))
    })?;
    if next.scheme() != from.scheme() {
        return Err(refuse(format!(
            "redirects from {} to {}",
            from.scheme(),
            shown(next.scheme(), SHOWN_INPUT_CHARS)
        )));
    }
    match next.host_str() {
        Some(host) if host == domain => {}
        Some(host) => {
            return Err(refuse(format!(
                "redirects to another host, {}",
                shown(host, SHOWN_INPUT_CHARS)
            )));
        }
        None => return Err(refuse("redirects to a URL without a host".to_string())),
    }
    if let Some(other) = next.port()
        && other != port
    {
        return Err(refuse(format!("redirects to another port, {other}")));
    }
    // The port stays the pinned address's own; credentials and fragments have no business here.
    if next.set_port(None).is_err()
        || next.set_username("").is_err()
        || next.set_password(None).is_err()
    {
        return Err(refuse(
            "redirects to a URL that cannot be fetched".to_string(),
        ));
    }
    next.set_fragment(None);
    Ok(next)
}

fn invalid_domain(domain: &str, why: &str) -> VerifyError {
    VerifyError::InvalidDomain(format!(
        "\"{}\" is not a domain name Onyx can verify: {why}",
        shown(domain, SHOWN_INPUT_CHARS)
    ))
}

/// Accepts a lowercase DNS name with at least one dot (or `localhost`, when private addresses
/// are allowed): no scheme, port, path or IP literal.
fn check_domain(domain: &str, allow_private: bool) -> Result<(), VerifyError> {
    match domain_problem(domain, allow_private) {
        None => Ok(()),
        Some(why) => Err(invalid_domain(domain, why)),
    }
}

/// What makes `domain` a name no verification could accept, whatever the verifier's settings
/// (`localhost` is left to the verifier, which allows it only with private addresses): the
/// partner program refuses such a domain when it is written, not at verification.
pub fn unverifiable_domain(domain: &str) -> Option<String> {
    domain_problem(domain, true).map(|why| match invalid_domain(domain, why) {
        VerifyError::InvalidDomain(message) => message,
        other => other.to_string(),
    })
}

fn domain_problem(domain: &str, allow_private: bool) -> Option<&'static str> {
    if domain.is_empty() {
        return Some("it is empty");
    }
    if domain == "localhost" {
        return (!allow_private).then_some("localhost is not a public host");
    }
    if domain.parse::<IpAddr>().is_ok() || domain.starts_with('[') {
        return Some("it is an IP address; give a domain name");
    }
    if domain.contains('/') {
        return Some("give the domain alone, without a scheme or a path");
    }
    if domain.contains(':') {
        return Some("remove the port");
    }
    if domain.len() > 253 {
        return Some("it is longer than 253 characters");
    }
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("write it in lowercase");
    }
    if domain.ends_with('.') {
        return Some("remove the trailing dot");
    }
    if !domain.contains('.') {
        return Some("it needs at least one dot, like partner.example");
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Some("it has an empty label (a leading dot or two dots in a row)");
        }
        if label.len() > 63 {
            return Some("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Some(
                "use only letters a-z, digits, hyphens and dots (international names in their xn-- form)",
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("a label starts or ends with a hyphen");
        }
    }
    // URL parsers read a name ending in a number ("127.1", "0x7f.1") as an IPv4 address.
    let tld = domain.rsplit('.').next().unwrap_or(domain);
    if !tld.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Some("its last label must start with a letter");
    }
    None
}

#[cfg(test)]
#[path = "domain_tests.rs"]
mod tests;
