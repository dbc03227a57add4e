//! One delivery attempt (Standard Webhooks 1.0): a signed POST through the one guarded fetch
//! ([`crate::net::outbound`]), and what its answer means ([`classify`]).
//!
//! The host is resolved and checked at every attempt, and the request goes to the checked
//! addresses only; a client (and its connections) is kept per host and address set, so
//! deliveries to one endpoint reuse their connections while its DNS answer stays the same.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use url::Url;

use super::secrets::{SigningSecret, signature_header};
use super::settings::WebhookSettings;
use crate::clock::{Clock, SystemClock};
use crate::net::outbound::{self, AddressError, Guard, SHOWN_INPUT_CHARS, shown};

/// 2xx within this long is a delivery.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// The connect part of it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Read at most this much of an answer.
pub const MAX_RESPONSE_BYTES: usize = 4096;
/// A `Retry-After` longer than this is read as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How much of a failed answer's body an attempt's error shows.
const SHOWN_BODY_CHARS: usize = 200;
const USER_AGENT: &str = "onyx-id-webhooks";
/// Clients kept at most (one per host and address set); past it the cache starts over.
const MAX_CLIENTS: usize = 512;

/// What an attempt's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx within the timeout.
    Delivered,
    /// Anything else: retried on the schedule, or after `retry_after` (429 and 503).
    Failed { retry_after: Option<Duration> },
    /// 410 Gone: the endpoint is disabled.
    Gone,
    /// A security check failed (a non-public address, an invalid certificate): the endpoint
    /// disables itself and the app is limited (`webhook_security_failure`).
    SecurityFailure,
}

impl Outcome {
    /// The stored name of the outcome.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed { .. } => "failed",
            Self::Gone => "gone",
            Self::SecurityFailure => "security_failure",
        }
    }
}

/// One attempt, as it is logged.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub latency: Duration,
    /// Why it failed, in words a partner can act on.
    pub error: Option<String>,
}

impl Attempt {
    fn without_answer(outcome: Outcome, started: Instant, error: String) -> Self {
        Self {
            outcome,
            status: None,
            latency: started.elapsed(),
            error: Some(error),
        }
    }
}

/// What an HTTP answer means: 2xx delivered; 410 gone; 429 and 503 retried after their
/// `Retry-After`; 3xx (never followed) and anything else failed and retried. `now` is the
/// wall-clock time a `Retry-After` date is measured from.
pub fn classify(status: u16, retry_after: Option<&str>, now: i64) -> (Outcome, Option<String>) {
    match status {
        200..=299 => (Outcome::Delivered, None),
        410 => (
            Outcome::Gone,
            Some("answered 410 Gone: the endpoint is disabled".to_string()),
        ),
        429 | 503 => (
            Outcome::Failed {
                retry_after: retry_after.and_then(|r| parse_retry_after(r, now)),
            },
            Some(format!("answered {status}; retried later")),
        ),
        300..=399 => (
            Outcome::Failed { retry_after: None },
            Some(format!(
                "answered {status}, a redirect; webhooks never follow redirects, so give the final URL"
            )),
        ),
        _ => (
            Outcome::Failed { retry_after: None },
            Some(format!(
                "answered {status}; only a 2xx answer is a delivery"
            )),
        ),
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): seconds, or an HTTP date; at most 24 hours.
pub fn parse_retry_after(raw: &str, now: i64) -> Option<Duration> {
    let raw = raw.trim();
    let secs = match raw.parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => {
            let rfc2822 = raw.replace(" GMT", " +0000");
            let at = time::OffsetDateTime::parse(
                &rfc2822,
                &time::format_description::well_known::Rfc2822,
            )
            .ok()?
            .unix_timestamp();
            u64::try_from(at.saturating_sub(now)).unwrap_or(0)
        }
    };
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    host: String,
    addrs: Vec<SocketAddr>,
}

/// Posts deliveries. Cheap to clone; clones share their connections.
#[derive(Clone)]
pub struct Deliverer {
    settings: Arc<WebhookSettings>,
    clients: Arc<Mutex<HashMap<ClientKey, reqwest::Client>>>,
}

impl Deliverer {
    pub fn new(settings: WebhookSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            clients: Arc::default(),
        }
    }

    fn guard(&self) -> Guard<'_> {
        Guard {
            allow_private: self.settings.allow_private,
            insecure_http: self.settings.insecure_http,
            resolve: &self.settings.resolve,
            extra_roots: &self.settings.extra_roots,
        }
    }

    /// Posts `body` to `url`, signed by each of `secrets`, with `event_id` as `webhook-id`.
    #[tracing::instrument(name = "webhook_delivery", skip(self, body, secrets))]
    pub async fn deliver(
        &self,
        url: &str,
        event_id: &str,
        body: &str,
        secrets: &[SigningSecret],
    ) -> Attempt {
        self.post(url, |req, timestamp| {
            let signature = signature_header(secrets, event_id, timestamp, body.as_bytes());
            req.header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("webhook-id", event_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(body.to_string())
        })
        .await
    }

    /// Posts a form-encoded `body` to `url` (a back-channel logout token), through the same
    /// guard, client cache, timeouts and classification as a webhook.
    #[tracing::instrument(name = "backchannel_delivery", skip(self, body))]
    pub async fn post_form(&self, url: &str, body: String) -> Attempt {
        self.post(url, |req, _| {
            req.header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
        })
        .await
    }

    /// The guarded POST: the URL checked, the host resolved and checked, the request built by
    /// `build` (given the wall-clock time) sent to the checked addresses only, and the answer
    /// classified.
    async fn post(
        &self,
        url: &str,
        build: impl FnOnce(reqwest::RequestBuilder, i64) -> reqwest::RequestBuilder,
    ) -> Attempt {
        let started = Instant::now();
        let failed = Outcome::Failed { retry_after: None };
        let url = match check_url(url, self.settings.insecure_http) {
            Ok(url) => url,
            Err(why) => return Attempt::without_answer(failed, started, why),
        };
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs = match self.guard().addresses(&host, port).await {
            Ok(addrs) => addrs,
            Err(e @ AddressError::NotPublic { .. }) => {
                return Attempt::without_answer(
                    Outcome::SecurityFailure,
                    started,
                    format!("{e}: webhooks go to public addresses only"),
                );
            }
            Err(e) => return Attempt::without_answer(failed, started, e.to_string()),
        };
        let client = match self.client(&host, addrs) {
            Ok(c) => c,
            Err(e) => return Attempt::without_answer(failed, started, outbound::cause(&e)),
        };
        let timestamp = SystemClock.now();
        let sent = build(client.post(url), timestamp).send().await;
        let mut resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                if let Some(tls) = outbound::certificate_error(&e) {
                    return Attempt::without_answer(
                        Outcome::SecurityFailure,
                        started,
                        certificate_refused(tls, &host),
                    );
                }
                let why = if e.is_timeout() {
                    format!("no answer within {} s", TIMEOUT.as_secs())
                } else {
                    format!("could not post ({})", outbound::cause(&e))
                };
                return Attempt::without_answer(failed, started, why);
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // Read (at most 4 KiB) so the connection can be reused, and to show a failure's body.
        let read = outbound::read_at_most(&mut resp, MAX_RESPONSE_BYTES).await;
        let (outcome, mut error) = classify(status, retry_after.as_deref(), timestamp);
        if outcome != Outcome::Delivered
            && let Ok((bytes, _)) = &read
            && !bytes.is_empty()
        {
            let excerpt = shown(&String::from_utf8_lossy(bytes), SHOWN_BODY_CHARS);
            error = error.map(|e| format!("{e}: {excerpt}"));
        }
        Attempt {
            outcome,
            status: Some(status),
            latency: started.elapsed(),
            error,
        }
    }

    fn client(&self, host: &str, mut addrs: Vec<SocketAddr>) -> reqwest::Result<reqwest::Client> {
        addrs.sort();
        let key = ClientKey {
            host: host.to_string(),
            addrs,
        };
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let client = self
            .guard()
            .client(host, &key.addrs, TIMEOUT, CONNECT_TIMEOUT, USER_AGENT)?;
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// Why the endpoint's certificate was refused, in words a partner can act on (rustls names the
/// problem, e.g. `UnknownIssuer`, and its own text may be cut).
fn certificate_refused(tls: &rustls::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    let host = shown(host, SHOWN_INPUT_CHARS);
    let why = match tls {
        rustls::Error::NoCertificatesPresented => "it presented none".to_string(),
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "it is not issued by a certificate authority onyx-id trusts (a \
                 self-signed certificate, or a chain without its intermediate certificates)"
                .to_string(),
            C::NotValidForNameContext { presented, .. } => format!(
                "it is not valid for {host} (it names {})",
                shown(&presented.join(", "), SHOWN_INPUT_CHARS)
            ),
            C::NotValidForName => format!("it is not valid for {host}"),
            C::Expired | C::ExpiredContext { .. } => "it has expired".to_string(),
            C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".to_string(),
            C::Revoked => "it has been revoked".to_string(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "it is not a certificate for a TLS server".to_string()
            }
            other => shown(&other.to_string(), SHOWN_INPUT_CHARS),
        },
        other => shown(&other.to_string(), SHOWN_INPUT_CHARS),
    };
    format!("the endpoint's TLS certificate is not valid: {why}")
}

/// An endpoint URL onyx-id may post to: https (or http when allowed), with a host, no
/// credentials and no fragment. The sentence says what is wrong.
pub fn check_url(raw: &str, insecure_http: bool) -> Result<Url, String> {
    let shown_url = shown(raw, SHOWN_INPUT_CHARS);
    let url = Url::parse(raw).map_err(|_| format!("{shown_url:?} is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if insecure_http => {}
        _ => return Err(format!("{shown_url:?} must use https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown_url:?} has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{shown_url:?} must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(format!("{shown_url:?} must not have a fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16, retry_after: Option<&str>) -> Outcome {
        classify(status, retry_after, 1_000_000).0
    }

    #[test]
    fn answers_are_classified_as_the_issue_says() {
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(outcome(s, None), Outcome::Delivered, "{s}");
        }
        assert_eq!(outcome(410, None), Outcome::Gone);
        for s in [301, 302, 303, 307, 308, 400, 401, 404, 500, 502, 504] {
            assert_eq!(
                outcome(s, None),
                Outcome::Failed { retry_after: None },
                "{s}"
            );
        }
        assert!(classify(302, None, 0).1.unwrap().contains("never follow"));
        assert_eq!(
            outcome(429, Some("120")),
            Outcome::Failed {
                retry_after: Some(Duration::from_secs(120))
            }
        );
        assert_eq!(
            outcome(503, Some("7")),
            Outcome::Failed {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(outcome(429, None), Outcome::Failed { retry_after: None });
        // A Retry-After on another status is not honoured.
        assert_eq!(
            outcome(500, Some("60")),
            Outcome::Failed { retry_after: None }
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        assert_eq!(parse_retry_after("0", 0), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("999999", 0),
            Some(Duration::from_secs(24 * 3600))
        );
        // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_480 - 30),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_480 + 30),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
    }

    #[test]
    fn endpoint_urls_are_https_with_a_host_and_nothing_else() {
        assert!(check_url("https://hooks.partner.example/onyx", false).is_ok());
        assert!(check_url("http://hooks.partner.example/onyx", false).is_err());
        assert!(check_url("http://127.0.0.1:9/onyx", true).is_ok());
        assert!(check_url("ftp://hooks.partner.example/onyx", true).is_err());
        assert!(check_url("https://u:p@hooks.partner.example/onyx", false).is_err());
        assert!(check_url("https://hooks.partner.example/onyx#x", false).is_err());
        assert!(check_url("hooks.partner.example", false).is_err());
    }

    #[test]
    fn a_refused_certificate_is_told_in_words() {
        use rustls::CertificateError as C;
        let said = |c: C| certificate_refused(&rustls::Error::InvalidCertificate(c), "localhost");
        assert!(
            said(C::UnknownIssuer).contains("not issued by a certificate authority onyx-id trusts")
        );
        let other = C::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            presented: vec!["DnsName(\"hooks.other.example\")".into()],
        };
        let s = said(other);
        assert!(s.contains("not valid for localhost"), "{s}");
        assert!(s.contains("hooks.other.example"), "{s}");
        assert!(said(C::Expired).ends_with("it has expired"));
        assert!(certificate_refused(&rustls::Error::NoCertificatesPresented, "h").contains("none"));
        for s in [said(C::BadSignature), said(C::Revoked)] {
            assert!(
                s.starts_with("the endpoint's TLS certificate is not valid: "),
                "{s}"
            );
        }
    }
}
