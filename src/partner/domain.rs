//! Domain verification, one of the review steps (partner-program-access.txt, "Review Steps"):
//! Onyx gives a partner a token ([`new_token`]), the partner publishes it at
//! `https://<domain>/.well-known/onyx-id-verification`, and [`Verifier::verify`] fetches that
//! URL and checks that the body, trimmed of ASCII whitespace, is exactly the token.
//!
//! The fetch is a server-side request to a URL the partner controls, so it is built against
//! server-side request forgery: the host is resolved here and every address must be public
//! ([`crate::net::is_public_address`], the one guard every such check shares); the connection is then pinned to the checked addresses so DNS cannot change
//! between the check and the connect; redirects are followed by hand, only on the same host and
//! scheme, and re-checked; the whole exchange has a deadline and the body a size cap enforced
//! while it streams in. No proxy, no cookies, only status 200 counts.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};
use url::Url;

use crate::crypto;

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

/// How much of any other partner-supplied text (a domain, a Location) a message shows.
const SHOWN_INPUT_CHARS: usize = 100;

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

    /// The addresses to connect to, every one of them public unless private ones are allowed.
    async fn addresses(&self, domain: &str) -> Result<Vec<SocketAddr>, VerifyError> {
        let fixed: Vec<SocketAddr> = self
            .config
            .resolve
            .iter()
            .filter(|(host, _)| host.eq_ignore_ascii_case(domain))
            .map(|(_, addr)| *addr)
            .collect();
        let addrs = if fixed.is_empty() {
            let port = if self.config.insecure_http { 80 } else { 443 };
            tokio::net::lookup_host((domain, port))
                .await
                .map_err(|e| VerifyError::Resolve {
                    domain: domain.to_string(),
                    reason: shown(&e.to_string(), SHOWN_INPUT_CHARS),
                })?
                .collect()
        } else {
            fixed
        };
        if addrs.is_empty() {
            return Err(VerifyError::Resolve {
                domain: domain.to_string(),
                reason: "it has no addresses".to_string(),
            });
        }
        if !self.config.allow_private {
            // One private address is enough to refuse: which one a client connects to is not
            // ours to choose once DNS has answered.
            if let Some((addr, kind)) = crate::net::first_non_public(&addrs) {
                return Err(VerifyError::NotPublic {
                    domain: domain.to_string(),
                    addr,
                    kind,
                });
            }
        }
        Ok(addrs)
    }

    /// A client that can only reach `domain` at the checked `addrs`.
    fn client(&self, domain: &str, addrs: &[SocketAddr]) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve the name itself, past the check.
            .no_proxy()
            // The URL carries no port, so each address's own port is the one dialled.
            .resolve_to_addrs(domain, addrs)
            .https_only(!self.config.insecure_http)
            .timeout(self.config.timeout)
            .connect_timeout(self.connect_timeout())
            .user_agent(USER_AGENT)
            .referer(false)
            .build()
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
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.request_error(url, &e))?
        {
            // `body.len() <= max` holds throughout, so this cannot underflow.
            if chunk.len() > max - body.len() {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
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

/// The first `max` characters of partner-supplied text, safe to show and log: control and
/// bidirectional-formatting characters are replaced, and an ellipsis marks a cut.
fn shown(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| {
            let bidi = matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
            if c.is_control() || bidi { '\u{fffd}' } else { c }
        })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// The innermost cause of an error ("Connection refused", "invalid peer certificate: …"),
/// which says more to a partner than the outer "error sending request".
fn cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = err;
    while let Some(source) = inner.source() {
        inner = source;
    }
    shown(&inner.to_string(), SHOWN_INPUT_CHARS)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    const TOKEN: &str = "onyx-id-verification=abc123";

    /// What the test server does with a request.
    enum Reply {
        /// Writes these bytes, then closes.
        Raw(Vec<u8>),
        /// Never answers, and keeps the connection open.
        Silent,
        /// Streams 1 MB with no length and keeps the connection open afterwards, so only a
        /// client that stops early can finish in time.
        Huge,
    }

    struct Server {
        addr: SocketAddr,
        /// The head of every request received, in order.
        requests: Arc<Mutex<Vec<String>>>,
    }

    impl Server {
        fn hits(&self) -> usize {
            self.requests.lock().unwrap().len()
        }
    }

    /// A tiny HTTP/1.1 server on 127.0.0.1:0 that answers each request by its path.
    async fn serve(route: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let route = Arc::new(route);
        let log = requests.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer(socket, route.clone(), log.clone()));
            }
        });
        Server { addr, requests }
    }

    async fn answer(
        mut socket: TcpStream,
        route: Arc<impl Fn(&str) -> Reply>,
        log: Arc<Mutex<Vec<String>>>,
    ) {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        log.lock().unwrap().push(head);
        match route(&path) {
            Reply::Raw(bytes) => {
                let _ = socket.write_all(&bytes).await;
                let _ = socket.shutdown().await;
            }
            Reply::Silent => tokio::time::sleep(Duration::from_secs(60)).await,
            Reply::Huge => {
                let head =
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
                if socket.write_all(head).await.is_err() {
                    return;
                }
                let chunk = vec![b'a'; 16 * 1024];
                for _ in 0..64 {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        }
    }

    fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut out = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(body);
        Reply::Raw(bytes)
    }

    fn config_for(server: &Server) -> VerifierConfig {
        VerifierConfig {
            allow_private: true,
            insecure_http: true,
            resolve: vec![("partner.example".to_string(), server.addr)],
            ..VerifierConfig::default()
        }
    }

    fn verifier_for(server: &Server) -> Verifier {
        Verifier::new(config_for(server))
    }

    #[tokio::test]
    async fn a_published_matching_token_verifies() {
        let server = serve(|_| http("200 OK", &[], format!("\r\n  {TOKEN}\n").as_bytes())).await;
        verifier_for(&server)
            .verify("partner.example", TOKEN)
            .await
            .unwrap();
        let requests = server.requests.lock().unwrap();
        assert_eq!(requests.len(), 1);
        let head = requests[0].to_ascii_lowercase();
        assert!(head.starts_with("get /.well-known/onyx-id-verification http/1.1\r\n"));
        assert!(head.contains("user-agent: onyx-id-domain-verification\r\n"));
        assert!(head.contains("host: partner.example\r\n"));
        assert!(!head.contains("cookie"));
    }

    #[tokio::test]
    async fn a_loopback_address_is_refused_unless_private_addresses_are_allowed() {
        let server = serve(|_| http("200 OK", &[], TOKEN.as_bytes())).await;
        let verifier = Verifier::new(VerifierConfig {
            allow_private: false,
            ..config_for(&server)
        });
        let err = verifier.verify("partner.example", TOKEN).await.unwrap_err();
        assert!(matches!(err, VerifyError::NotPublic { .. }), "{err:?}");
        assert_eq!(err.code(), "address_not_public");
        assert_eq!(
            err.to_string(),
            "partner.example resolves to 127.0.0.1, a loopback address; publish the token on a public host"
        );
        assert_eq!(server.hits(), 0);
    }

    #[tokio::test]
    async fn a_different_body_is_a_mismatch_showing_only_its_start() {
        let body = format!("wrong\u{1b}[31m{}", "x".repeat(200));
        let server = serve(move |_| http("200 OK", &[], body.as_bytes())).await;
        let err = verifier_for(&server)
            .verify("partner.example", TOKEN)
            .await
            .unwrap_err();
        assert!(matches!(err, VerifyError::Mismatch { .. }), "{err:?}");
        assert_eq!(err.code(), "token_mismatch");
        let message = err.to_string();
        assert!(message.contains("\"wrong\u{fffd}[31mxxx"), "{message}");
        assert!(!message.contains('\u{1b}'));
        assert!(!message.contains(&"x".repeat(60)), "{message}");
        assert!(message.contains("publish exactly the token"));
    }

    #[tokio::test]
    async fn the_token_must_match_exactly() {
        let server = serve(|_| http("200 OK", &[], format!("{TOKEN}x").as_bytes())).await;
        let err = verifier_for(&server)
            .verify("partner.example", TOKEN)
            .await
            .unwrap_err();
        assert!(matches!(err, VerifyError::Mismatch { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn an_empty_file_never_matches() {
        let server = serve(|_| http("200 OK", &[], b"")).await;
        let verifier = verifier_for(&server);
        let err = verifier.verify("partner.example", "").await.unwrap_err();
        assert!(err.to_string().contains("serves an empty file"), "{err}");
    }

    #[tokio::test]
    async fn a_404_is_a_bad_status() {
        let server = serve(|_| http("404 Not Found", &[], TOKEN.as_bytes())).await;
        let err = verifier_for(&server)
            .verify("partner.example", TOKEN)
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::Status { status: 404, .. }),
            "{err:?}"
        );
        assert_eq!(err.code(), "bad_status");
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused_without_reading_it_all() {
        let server = serve(|_| Reply::Huge).await;
        let started = Instant::now();
        let err = verifier_for(&server)
            .verify("partner.example", TOKEN)
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::TooLarge { limit: 4096, .. }),
            "{err:?}"
        );
        assert_eq!(err.code(), "too_large");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_declared_length_over_the_cap_is_refused() {
        let server = serve(|_| http("200 OK", &[], &[b'a'; 5000])).await;
        let err = verifier_for(&server)
            .verify("partner.example", TOKEN)
            .await
            .unwrap_err();
        assert!(matches!(err, VerifyError::TooLarge { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let server = serve(|_| Reply::Silent).await;
        let verifier = Verifier::new(VerifierConfig {
            timeout: Duration::from_millis(300),
            ..config_for(&server)
        });
        let started = Instant::now();
        let err = verifier.verify("partner.example", TOKEN).await.unwrap_err();
        assert!(matches!(err, VerifyError::Timeout { .. }), "{err:?}");
        assert_eq!(err.code(), "timeout");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_redirect_to_another_host_is_refused() {
        let server = serve(|_| {
            http(
                "302 Found",
                &[(
                    "Location",
                    "http://other.example/.well-known/onyx-id-verification",
                )],
                b"",
            )
        })
        .await;
        let err = verifier_for(&server)
            .verify("partner.example", TOKEN)
            .await
            .unwrap_err();
        assert!(matches!(err, VerifyError::Redirect { .. }), "{err:?}");
        assert_eq!(err.code(), "redirect_refused");
        assert!(
            err.to_string()
                .contains("redirects to another host, other.example"),
            "{err}"
        );
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn a_redirect_to_another_scheme_is_refused() {
        let server = serve(|_| {
            http(
                "301 Moved Permanently",
                &[("Location", "https://partner.example/x")],
                b"",
            )
        })
        .await;
        let err = verifier_for(&server)
            .verify("partner.example", TOKEN)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("redirects from http to https"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_redirect_on_the_same_host_is_followed() {
        let server = serve(|path| match path {
            "/.well-known/onyx-id-verification" => http(
                "307 Temporary Redirect",
                &[("Location", "/files/token.txt")],
                b"",
            ),
            "/files/token.txt" => http("200 OK", &[], TOKEN.as_bytes()),
            _ => http("404 Not Found", &[], b""),
        })
        .await;
        verifier_for(&server)
            .verify("partner.example", TOKEN)
            .await
            .unwrap();
        assert_eq!(server.hits(), 2);
    }

    #[tokio::test]
    async fn redirects_stop_after_three_hops() {
        let server = serve(|_| http("302 Found", &[("Location", "/again")], b"")).await;
        let err = verifier_for(&server)
            .verify("partner.example", TOKEN)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("redirects more than 3 times"),
            "{err}"
        );
        assert_eq!(server.hits(), 4);
    }

    #[tokio::test]
    async fn a_body_that_is_not_utf8_is_not_text() {
        let server = serve(|_| http("200 OK", &[], &[0xff, 0xfe, 0x00])).await;
        let err = verifier_for(&server)
            .verify("partner.example", TOKEN)
            .await
            .unwrap_err();
        assert!(matches!(err, VerifyError::NotText { .. }), "{err:?}");
        assert_eq!(err.code(), "not_text");
    }

    #[tokio::test]
    async fn invalid_domains_are_refused_before_any_network_use() {
        let invalid = [
            "",
            "10.0.0.1",
            "::1",
            "[::1]",
            "a..b",
            ".example.com",
            "example.com.",
            "exa mple.com",
            "example.com:80",
            "https://example.com",
            "example.com/path",
            "Example.com",
            "example",
            "-partner.example",
            "partner.123",
            "0x7f.1",
            "localhost",
            "parté.example",
        ];
        let server = serve(|_| http("200 OK", &[], TOKEN.as_bytes())).await;
        let mut config = VerifierConfig {
            allow_private: false,
            ..config_for(&server)
        };
        config.resolve = invalid
            .iter()
            .map(|d| (d.to_string(), server.addr))
            .collect();
        let verifier = Verifier::new(config);
        for domain in invalid {
            let err = verifier.verify(domain, TOKEN).await.unwrap_err();
            assert!(
                matches!(err, VerifyError::InvalidDomain(_)),
                "{domain:?}: {err:?}"
            );
            assert_eq!(err.code(), "domain_invalid");
        }
        let long = format!("{}.example", "a".repeat(64));
        let err = verifier.verify(&long, TOKEN).await.unwrap_err();
        assert!(matches!(err, VerifyError::InvalidDomain(_)));
        assert_eq!(server.hits(), 0);
        assert_eq!(
            verifier
                .verify("example.com:80", TOKEN)
                .await
                .unwrap_err()
                .to_string(),
            "\"example.com:80\" is not a domain name Onyx can verify: remove the port"
        );
    }

    #[test]
    fn localhost_is_a_domain_only_when_private_addresses_are_allowed() {
        assert!(domain_problem("localhost", true).is_none());
        assert!(domain_problem("localhost", false).is_some());
        assert!(domain_problem("partner.example", false).is_none());
        assert!(domain_problem("xn--bcher-kva.example", false).is_none());
        assert!(domain_problem("a-1.b2.example", false).is_none());
    }

    #[test]
    fn url_for_names_the_well_known_path() {
        let verifier = Verifier::new(VerifierConfig::default());
        assert_eq!(
            verifier.url_for("partner.example"),
            "https://partner.example/.well-known/onyx-id-verification"
        );
        let insecure = Verifier::new(VerifierConfig {
            insecure_http: true,
            ..VerifierConfig::default()
        });
        assert!(insecure.url_for("partner.example").starts_with("http://"));
    }

    #[test]
    fn new_tokens_are_prefixed_random_base64url() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        let random = a.strip_prefix("onyx-id-verification=").unwrap();
        assert_eq!(random.len(), 43);
        assert!(
            random
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn shown_text_is_cut_and_cleaned() {
        assert_eq!(shown("abc", 60), "abc");
        assert_eq!(shown("abcdef", 3), "abc…");
        assert_eq!(shown("a\nb\u{202e}c", 60), "a\u{fffd}b\u{fffd}c");
        assert_eq!(shown("ééé", 2), "éé…");
    }
}
