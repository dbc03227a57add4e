//! The client address of a request: what rate limits, the caps on pending requests and the logs
//! use. It is the peer's address, unless the peer is a trusted proxy (`--trusted-proxy`): then it
//! is the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy. From any other
//! peer the header is ignored, since anyone can send it.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::config::TrustedProxies;
use crate::startup::AppState;

pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self(resolve(
            peer,
            &parts.headers,
            &state.settings.trusted_proxies,
        )))
    }
}

/// The client address of a request from `peer` carrying `headers`.
pub fn resolve(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !trusted.contains(peer) {
        return Some(peer);
    }
    // Each proxy appends the address it received the request from, so the entries right of
    // the client are all trusted proxies; anything further left was written by the client.
    // Several header lines are one list, in order (RFC 9110 §5.3).
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let mut last_trusted = peer;
    for entry in entries.iter().rev() {
        match parse_entry(entry) {
            Some(ip) if trusted.contains(ip) => last_trusted = ip,
            Some(ip) => return Some(ip),
            // A trusted proxy wrote something that is not an address: whatever lies further
            // left cannot be trusted either, so the last trusted hop is the client.
            None => return Some(last_trusted),
        }
    }
    // Every hop is a trusted proxy: the leftmost is the client (say, a health check).
    Some(last_trusted)
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse::<Ipv6Addr>().ok())
        .map(|ip| IpAddr::V6(ip).to_canonical())
}

/// The network a limit counts an address under: an IPv4 address itself, an IPv6 address's /64
/// (one subscriber usually gets a whole /64, so its addresses are one client).
pub fn network_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&nets.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn with_xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_header_is_ignored_from_an_untrusted_peer() {
        let h = with_xff(&["198.51.100.7"]);
        assert_eq!(resolve(ip("192.0.2.1"), &h, &trusted(&[])), ip("192.0.2.1"));
        assert_eq!(
            resolve(ip("192.0.2.1"), &h, &trusted(&["10.0.0.0/8"])),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = with_xff(&["203.0.113.5, 198.51.100.7", "10.1.1.1"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &t), ip("198.51.100.7"));
        let h = with_xff(&["[2001:db8::1]:4711, 10.2.2.2:80"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &t), ip("2001:db8::1"));
        assert_eq!(
            resolve(ip("10.0.0.1"), &HeaderMap::new(), &t),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn all_trusted_entries_give_the_leftmost_and_a_malformed_one_stops_the_walk() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = with_xff(&["10.3.3.3, 10.2.2.2"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &t), ip("10.3.3.3"));
        let h = with_xff(&["198.51.100.7, unknown, 10.2.2.2"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &t), ip("10.2.2.2"));
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        assert_eq!(
            network_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            network_key("2001:db8:1:2:ffff::9".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            network_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1"
        );
        assert_eq!(network_key("192.0.2.1".parse().unwrap()), "192.0.2.1");
    }
}
