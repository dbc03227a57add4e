//! The URL rules of the pre-checks (`prechecks.rs`): parsing a URL exactly as written, and
//! what its host is (under the partner's domain, loopback, public). Pure functions.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Parses an absolute URL exactly as written. `Url::parse` quietly trims surrounding spaces and
/// drops tabs and newlines, but the registered string is what gets compared later, so a value
/// with any of them would never match.
pub(crate) fn parse_absolute(raw: &str) -> Result<Url, &'static str> {
    if raw.trim().is_empty() {
        return Err("it is empty");
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces or control characters");
    }
    Url::parse(raw).map_err(|_| "it is not an absolute URL (it needs a scheme, such as https://)")
}

/// `url` drops an empty userinfo (`https://@host/`), so the raw authority is checked as well.
pub(crate) fn has_userinfo(raw: &str, url: &Url) -> bool {
    if !url.username().is_empty() || url.password().is_some() {
        return true;
    }
    raw.split_once(':')
        .and_then(|(_, rest)| rest.strip_prefix("//"))
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .is_some_and(|authority| authority.contains('@'))
}

/// Whether the URL's host is `domain` or under it.
pub(crate) fn host_within(url: &Url, domain: &str) -> bool {
    matches!(url.host(), Some(Host::Domain(host)) if within(host, domain))
}

pub(crate) fn within(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|sub| sub.ends_with('.'))
}

/// `http://127.0.0.1…` or `http://[::1]…` spelled out as such: the token endpoint lets only these
/// exact strings vary their port (RFC 8252 §7.3), so `http://127.1/` would never match.
pub(crate) fn is_loopback_literal(raw: &str, url: &Url) -> bool {
    is_loopback_ip(url)
        && ["http://127.0.0.1", "http://[::1]"].iter().any(|prefix| {
            raw.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/', '?']))
        })
}

pub(crate) fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip == Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == Ipv6Addr::LOCALHOST,
        _ => false,
    }
}

pub(crate) fn is_localhost<S: AsRef<str>>(host: &Host<S>) -> bool {
    match host {
        Host::Domain(name) => {
            let name = name.as_ref().trim_end_matches('.');
            name == "localhost" || name.ends_with(".localhost")
        }
        _ => false,
    }
}

/// A host Onyx may connect to from inside its network: a dotted name (its addresses are
/// checked when Onyx connects), or a public IP address ([`crate::net::is_public_address`], the
/// same guard the connection uses).
pub(crate) fn is_public_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.contains('.') && !is_localhost(&Host::Domain(name)),
        Some(Host::Ipv4(ip)) => crate::net::is_public_address(ip.into()),
        Some(Host::Ipv6(ip)) => crate::net::is_public_address(ip.into()),
        None => false,
    }
}

/// A private-use scheme is the reverse of a domain name the partner controls (RFC 8252 §7.1),
/// so two apps cannot claim the same one. Without a usable domain only the shape is checked.
pub(crate) fn is_reverse_domain_scheme(scheme: &str, domain: Option<&str>) -> bool {
    if !scheme.contains('.') || scheme.split('.').any(str::is_empty) {
        return false;
    }
    domain.is_none_or(|domain| within(&reverse_labels(scheme), domain))
}

pub(crate) fn reverse_labels(name: &str) -> String {
    name.rsplit('.').collect::<Vec<_>>().join(".")
}
