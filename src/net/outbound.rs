//! The one guarded outbound fetch, shared by every place where onyx-id connects to an address
//! a partner chose (domain verification, webhook deliveries).
//!
//! Built against server-side request forgery: the host is resolved here and every address must
//! be public ([`super::is_public_address`], through [`super::first_non_public`]); the client is
//! then pinned to the checked addresses ([`Guard::client`]), so DNS cannot change between the
//! check and the connect. No proxy (one from the environment would resolve the name itself,
//! past the check), no redirects followed by the client, no cookies, no referer; the response
//! body is read with a cap while it streams in ([`read_at_most`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// What partner-supplied text (a host, a Location, an error's cause) a message shows at most.
pub const SHOWN_INPUT_CHARS: usize = 100;

/// How a fetch may reach a partner's host. The production values are `false`, `false`, no
/// fixed addresses and no extra roots.
#[derive(Debug, Clone, Copy)]
pub struct Guard<'a> {
    /// Private and loopback addresses are allowed too (tests and development only).
    pub allow_private: bool,
    /// Plain `http` is allowed (tests and development only).
    pub insecure_http: bool,
    /// Fixed addresses for host names, like curl's --resolve; still subject to the check.
    pub resolve: &'a [(String, SocketAddr)],
    /// CA certificates trusted beside the public roots (tests and private CAs).
    pub extra_roots: &'a [reqwest::Certificate],
}

/// Why a host may not be fetched.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AddressError {
    #[error("{host} could not be resolved ({reason})")]
    Resolve { host: String, reason: String },
    #[error("{host} resolves to {addr}, {kind}")]
    NotPublic {
        host: String,
        addr: IpAddr,
        /// What kind of address it is, e.g. "a private address".
        kind: &'static str,
    },
}

impl Guard<'_> {
    /// The addresses to connect to for `host` (a DNS name, or an IP literal, bracketed or not),
    /// every one of them public unless private ones are allowed. `port` is the port a resolved
    /// name is given; a fixed entry carries its own.
    pub async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, AddressError> {
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .parse::<IpAddr>()
            .ok();
        let fixed: Vec<SocketAddr> = self
            .resolve
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(host))
            .map(|(_, addr)| *addr)
            .collect();
        let addrs: Vec<SocketAddr> = if let Some(ip) = literal {
            vec![SocketAddr::new(ip, port)]
        } else if !fixed.is_empty() {
            fixed
        } else {
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| AddressError::Resolve {
                    host: host.to_string(),
                    reason: shown(&e.to_string(), SHOWN_INPUT_CHARS),
                })?
                .collect()
        };
        if addrs.is_empty() {
            return Err(AddressError::Resolve {
                host: host.to_string(),
                reason: "it has no addresses".to_string(),
            });
        }
        if !self.allow_private {
            // One private address is enough to refuse: which one a client connects to is not
            // ours to choose once DNS has answered.
            if let Some((addr, kind)) = super::first_non_public(&addrs) {
                return Err(AddressError::NotPublic {
                    host: host.to_string(),
                    addr,
                    kind,
                });
            }
        }
        Ok(addrs)
    }

    /// A client that can reach `host` only at the checked `addrs`, follows no redirect and uses
    /// no proxy; https only unless plain http is allowed.
    pub fn client(
        &self,
        host: &str,
        addrs: &[SocketAddr],
        timeout: Duration,
        connect_timeout: Duration,
        user_agent: &'static str,
    ) -> reqwest::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder();
        for root in self.extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        builder
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            // An explicit port in the URL wins; otherwise each address's own port is dialled.
            .resolve_to_addrs(host, addrs)
            .https_only(!self.insecure_http)
            .timeout(timeout)
            .connect_timeout(connect_timeout.min(timeout))
            .user_agent(user_agent)
            .referer(false)
            .build()
    }
}

/// Reads at most `max` bytes of the body, chunk by chunk, and stops there; true when the body
/// had more (what is past the cap is never read).
pub async fn read_at_most(
    resp: &mut reqwest::Response,
    max: usize,
) -> reqwest::Result<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        // `body.len() <= max` holds throughout, so this cannot underflow.
        let room = max - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// The first `max` characters of partner-supplied text, safe to show and log: control and
/// bidirectional-formatting characters are replaced, and an ellipsis marks a cut.
pub fn shown(text: &str, max: usize) -> String {
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
pub fn cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = err;
    while let Some(source) = inner.source() {
        inner = source;
    }
    shown(&inner.to_string(), SHOWN_INPUT_CHARS)
}

/// The TLS error, when the handshake failed on the peer's certificate (expired, self-signed,
/// another name): a security failure, not an outage.
pub fn certificate_error<'e>(
    err: &'e (dyn std::error::Error + 'static),
) -> Option<&'e rustls::Error> {
    let about_the_certificate = |tls: &rustls::Error| {
        matches!(
            tls,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        )
    };
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return about_the_certificate(tls).then_some(tls);
        }
        next = match e.downcast_ref::<std::io::Error>() {
            // `io::Error::source` skips the error it wraps, so look inside by hand: reqwest's
            // TLS failure is a rustls error in an io::Error in another io::Error.
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard<'static> {
        Guard {
            allow_private: false,
            insecure_http: false,
            resolve: &[],
            extra_roots: &[],
        }
    }

    #[tokio::test]
    async fn an_internal_literal_is_refused_without_a_lookup() {
        for host in ["127.0.0.1", "10.1.2.3", "[::1]", "169.254.169.254"] {
            let err = guard().addresses(host, 443).await.unwrap_err();
            assert!(
                matches!(err, AddressError::NotPublic { .. }),
                "{host}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_private_addresses_are_allowed() {
        let err = guard().addresses("localhost", 443).await.unwrap_err();
        assert!(matches!(err, AddressError::NotPublic { .. }), "{err}");
        let open = Guard {
            allow_private: true,
            ..guard()
        };
        assert!(!open.addresses("localhost", 443).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn fixed_addresses_are_checked_too() {
        let fixed = [(
            "hooks.partner.example".to_string(),
            "10.0.0.1:443".parse().unwrap(),
        )];
        let g = Guard {
            resolve: &fixed,
            ..guard()
        };
        let err = g.addresses("hooks.partner.example", 443).await.unwrap_err();
        assert!(matches!(err, AddressError::NotPublic { .. }), "{err}");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("error sending request")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_certificate_failure_is_found_inside_the_io_error_that_carries_it() {
        let bad_cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let err = Outer(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            bad_cert,
        ));
        assert!(matches!(
            certificate_error(&err),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ));
        // As hyper-rustls and hyper-util hand it to reqwest.
        let nested = Outer(std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        )));
        assert!(certificate_error(&nested).is_some());
        let refused = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(certificate_error(&refused).is_none());
        let other_tls = Outer(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::DecryptError,
        ));
        assert!(certificate_error(&other_tls).is_none());
    }

    #[test]
    fn shown_text_is_cut_and_cleaned() {
        assert_eq!(shown("abc\ndef", 100), "abc\u{fffd}def");
        assert_eq!(shown("abcdef", 3), "abc…");
    }
}
