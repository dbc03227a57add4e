//! The one guard against internal addresses. Every place where onyx-id itself connects to an
//! address a partner chose (domain verification today, webhook deliveries next) and every
//! pre-check that judges such an address asks [`is_public_address`], so that a form one of them
//! refuses cannot get through another.
//!
//! A public address is one of the global unicast Internet. Refused: loopback, unspecified,
//! "this network" (0/8), private (RFC 1918), shared CGNAT (100.64/10), link-local, the IETF
//! protocol block 192.0.0/24, documentation, benchmarking, multicast, broadcast and the reserved
//! 240/4 in IPv4; in IPv6 the same kinds plus unique-local, site-local, discard-only, ORCHID and
//! everything outside the global unicast block 2000::/3. IPv6 forms that carry an IPv4 address a
//! packet ends up at are decoded and that address is judged: IPv4-mapped (`::ffff:a.b.c.d`),
//! IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, RFC 6052; the local-use
//! `64:ff9b:1::/48`, RFC 8215, in each RFC 6052 layout that fits it), 6to4 (`2002::/16`,
//! RFC 3056) and Teredo (`2001::/32`, RFC 4380: its server and its client).
//!
//! A host name is judged by resolving it and checking every address ([`first_non_public`]): one
//! internal address is enough to refuse, since which one a client connects to is not ours to
//! choose once DNS has answered. The caller then connects only to the addresses it checked:
//! [`outbound`] is the one guarded, pinned fetch that does both, for every such connection.

pub mod outbound;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether onyx-id may connect to `ip` on a partner's behalf: a global unicast address, after
/// decoding the IPv4 address that an IPv6 transition form carries (see the module doc).
pub fn is_public_address(ip: IpAddr) -> bool {
    non_public_kind(ip).is_none()
}

/// The first address in `addrs` that is not public, and what kind it is; `None` when all are.
pub fn first_non_public(addrs: &[SocketAddr]) -> Option<(IpAddr, &'static str)> {
    addrs
        .iter()
        .find_map(|a| non_public_kind(a.ip()).map(|kind| (a.ip(), kind)))
}

const PRIVATE: &str = "a private address";
const DOCUMENTATION: &str = "a documentation address";
const RESERVED: &str = "a reserved address";
const BENCHMARKING: &str = "a benchmarking address";
const MULTICAST: &str = "a multicast address";
const LINK_LOCAL: &str = "a link-local address";

/// What kind of non-public address `ip` is, in words ("a private address"), or `None` for a
/// public one. For an IPv6 form carrying an IPv4 address, the kind of that IPv4 address.
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        _ if ip.is_unspecified() => "an unspecified address",
        (0, ..) => "a \"this network\" address",
        (127, ..) => "a loopback address",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => PRIVATE,
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (169, 254, _) => LINK_LOCAL,
        (192, 0, 0) => RESERVED,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => DOCUMENTATION,
        // The 6to4 relay anycast block (RFC 7526 deprecated it): a relay, not a host.
        (192, 88, 99) => RESERVED,
        (198, 18..=19, _) => BENCHMARKING,
        (224..=239, ..) => MULTICAST,
        _ if ip == Ipv4Addr::BROADCAST => "the broadcast address",
        (240..=255, ..) => RESERVED,
        _ => return None,
    };
    Some(kind)
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    let seg = ip.segments();
    let o = ip.octets();
    let v4 = |bytes: [u8; 4]| Ipv4Addr::from(bytes);
    // Mapped ::ffff:a.b.c.d, the deprecated compatible ::a.b.c.d, and well-known NAT64
    // 64:ff9b::a.b.c.d all reach the IPv4 address in their last 32 bits.
    if seg[..6] == [0, 0, 0, 0, 0, 0xffff]
        || seg[..6] == [0; 6]
        || seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        return v4_kind(v4([o[12], o[13], o[14], o[15]]));
    }
    // Local-use NAT64 (RFC 8215): the translator may use any RFC 6052 prefix length inside the
    // /48, so every layout that fits is decoded and each must be public.
    if seg[..3] == [0x64, 0xff9b, 0x1] {
        let layouts = [
            v4([o[6], o[7], o[9], o[10]]),    // /48
            v4([o[7], o[9], o[10], o[11]]),   // /56
            v4([o[9], o[10], o[11], o[12]]),  // /64
            v4([o[12], o[13], o[14], o[15]]), // /96
        ];
        return layouts.into_iter().find_map(v4_kind);
    }
    // 6to4 (RFC 3056): 2002:a.b.c.d::/48 is the IPv4 host a.b.c.d's network.
    if seg[0] == 0x2002 {
        return v4_kind(v4([o[2], o[3], o[4], o[5]]));
    }
    // Teredo (RFC 4380 §4): the server's IPv4 address in bits 32-63, the client's (obfuscated
    // by XOR with all ones) in the last 32; a packet goes through both.
    if seg[..2] == [0x2001, 0] {
        let server = v4([o[4], o[5], o[6], o[7]]);
        let client = v4([!o[12], !o[13], !o[14], !o[15]]);
        return v4_kind(server).or_else(|| v4_kind(client));
    }
    let kind = match seg {
        [s, ..] if s & 0xff00 == 0 => RESERVED,
        [0x0100, 0, 0, 0, ..] => "a discard-only address",
        [s, ..] if s & 0xfe00 == 0xfc00 => "a private (unique local) address",
        [s, ..] if s & 0xffc0 == 0xfe80 => LINK_LOCAL,
        [s, ..] if s & 0xffc0 == 0xfec0 => "a site-local address",
        [s, ..] if s & 0xff00 == 0xff00 => MULTICAST,
        [0x2001, 0x0db8, ..] => DOCUMENTATION,
        [0x3fff, s, ..] if s & 0xf000 == 0 => DOCUMENTATION,
        [0x2001, 0x0002, 0, ..] => BENCHMARKING,
        // ORCHID and ORCHIDv2 (RFC 4843, RFC 7343): identifiers, not routable.
        [0x2001, s, ..] if s & 0xfff0 == 0x0010 || s & 0xfff0 == 0x0020 => RESERVED,
        // Outside 2000::/3 nothing is allocated for global unicast.
        [s, ..] if s & 0xe000 != 0x2000 => RESERVED,
        _ => return None,
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(raw: &str) -> bool {
        is_public_address(raw.parse().unwrap())
    }

    #[track_caller]
    fn refused(raw: &str, kind: &str) {
        assert_eq!(non_public_kind(raw.parse().unwrap()), Some(kind), "{raw}");
    }

    #[test]
    fn global_unicast_addresses_are_public() {
        for raw in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.17.0.1",
            "223.255.255.254",
            "2606:4700::1111",
            "2a00:1450:4009::200e",
            "2001:4860:4860::8888",
        ] {
            assert!(public(raw), "{raw}");
        }
    }

    #[test]
    fn internal_ipv4_addresses_are_refused_by_kind() {
        refused("0.0.0.0", "an unspecified address");
        refused("0.1.2.3", "a \"this network\" address");
        refused("127.0.0.1", "a loopback address");
        refused("127.255.0.9", "a loopback address");
        for raw in ["10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1"] {
            refused(raw, PRIVATE);
        }
        refused("100.64.0.1", "a shared (carrier-grade NAT) address");
        refused("100.127.255.255", "a shared (carrier-grade NAT) address");
        refused("169.254.169.254", LINK_LOCAL);
        refused("192.0.0.8", RESERVED);
        for raw in ["192.0.2.1", "198.51.100.1", "203.0.113.1"] {
            refused(raw, DOCUMENTATION);
        }
        refused("192.88.99.1", RESERVED);
        refused("198.18.0.1", BENCHMARKING);
        refused("198.19.255.255", BENCHMARKING);
        refused("224.0.0.1", MULTICAST);
        refused("239.255.255.250", MULTICAST);
        refused("240.0.0.1", RESERVED);
        refused("254.1.2.3", RESERVED);
        refused("255.255.255.255", "the broadcast address");
    }

    #[test]
    fn internal_ipv6_addresses_are_refused_by_kind() {
        refused("::", "an unspecified address");
        refused("::1", "a loopback address");
        refused("fc00::1", "a private (unique local) address");
        refused("fd12:3456:789a::1", "a private (unique local) address");
        refused("fe80::1", LINK_LOCAL);
        refused("febf::1", LINK_LOCAL);
        refused("fec0::1", "a site-local address");
        refused("ff02::1", MULTICAST);
        refused("ff0e::1", MULTICAST);
        refused("2001:db8::1", DOCUMENTATION);
        refused("2001:db8:ffff::1", DOCUMENTATION);
        refused("3fff::1", DOCUMENTATION);
        refused("100::1", "a discard-only address");
        refused("2001:2::1", BENCHMARKING);
        refused("2001:10::1", RESERVED);
        refused("2001:20::1", RESERVED);
        refused("4000::1", RESERVED);
        refused("1234::1", RESERVED);
        refused("64:ff9c::1", RESERVED);
    }

    #[test]
    fn ipv4_mapped_addresses_are_judged_by_their_ipv4_address() {
        assert!(public("::ffff:8.8.8.8"));
        refused("::ffff:127.0.0.1", "a loopback address");
        refused("::ffff:10.0.0.1", PRIVATE);
        refused("::ffff:169.254.169.254", LINK_LOCAL);
        refused("::ffff:224.0.0.1", MULTICAST);
        refused("::ffff:240.0.0.1", RESERVED);
    }

    #[test]
    fn ipv4_compatible_addresses_are_judged_by_their_ipv4_address() {
        assert!(public("::8.8.8.8"));
        refused("::127.0.0.1", "a loopback address");
        refused("::10.0.0.1", PRIVATE);
        refused("::0.0.0.2", "a \"this network\" address");
    }

    #[test]
    fn well_known_nat64_addresses_are_judged_by_their_ipv4_address() {
        assert!(public("64:ff9b::808:808"));
        assert!(public("64:ff9b::8.8.8.8"));
        refused("64:ff9b::7f00:1", "a loopback address");
        refused("64:ff9b::a00:1", PRIVATE);
        refused("64:ff9b::a9fe:a9fe", LINK_LOCAL);
        refused("64:ff9b::e000:1", MULTICAST);
        // Inside 64:ff9b::/32 but not the /96: no NAT64 prefix, and in the reserved ::/8.
        refused("64:ff9b:0:1::808:808", RESERVED);
    }

    #[test]
    fn local_use_nat64_addresses_are_judged_in_every_layout_that_fits() {
        // 8.8.8.8 in every layout.
        assert!(public("64:ff9b:1:808:8:808:808:808"));
        // 127.0.0.1 in the /48 layout (octets 6, 7, 9, 10).
        refused("64:ff9b:1:7f00:0:100::", "a loopback address");
        // 10.0.0.1 in the /56 layout (octets 7, 9, 10, 11), public in the others.
        refused("64:ff9b:1:80a:0:1:808:808", PRIVATE);
        // 10.0.0.1 in the /64 layout (octets 9 to 12), public in the others.
        refused("64:ff9b:1:808:a:0:108:808", PRIVATE);
        // 10.0.0.1 in the /96 layout (the last 32 bits), public in the others.
        refused("64:ff9b:1:808:8:808:a00:1", PRIVATE);
        // 8.8.8.8 written for a /96 translator reads 0.0.0.0 to a /48 one: refused, since which
        // layout the translator uses is not in the address.
        refused("64:ff9b:1::808:808", "an unspecified address");
    }

    #[test]
    fn six_to_four_addresses_are_judged_by_their_ipv4_address() {
        assert!(public("2002:808:808::1"));
        refused("2002:7f00:1::1", "a loopback address");
        refused("2002:a00:1::", PRIVATE);
        refused("2002:c0a8:101::1", PRIVATE);
        refused("2002:a9fe:a9fe::1", LINK_LOCAL);
        refused("2002:e000:1::1", MULTICAST);
        refused("2002:f000:1::1", RESERVED);
    }

    #[test]
    fn teredo_addresses_are_judged_by_their_server_and_their_client() {
        // Server 8.8.8.8; client 8.8.4.4 XOR all ones = f7f7:fbfb.
        assert!(public("2001:0:808:808:0:0:f7f7:fbfb"));
        // Client 127.0.0.1 (80ff:fffe) behind a public server.
        refused("2001:0:808:808::80ff:fffe", "a loopback address");
        // Client 10.0.0.1 (f5ff:fffe).
        refused("2001:0:808:808::f5ff:fffe", PRIVATE);
        // Server 192.168.0.1 with a public client.
        refused("2001:0:c0a8:1::f7f7:fbfb", PRIVATE);
        // Server 0.0.0.0, client 255.255.255.255: both internal.
        refused("2001::", "an unspecified address");
    }

    #[test]
    fn a_host_is_refused_when_any_of_its_addresses_is_internal() {
        let addr = |raw: &str| SocketAddr::new(raw.parse().unwrap(), 443);
        assert_eq!(
            first_non_public(&[addr("8.8.8.8"), addr("2606:4700::1111")]),
            None
        );
        assert_eq!(
            first_non_public(&[addr("8.8.8.8"), addr("2002:7f00:1::1"), addr("10.0.0.1")]),
            Some(("2002:7f00:1::1".parse().unwrap(), "a loopback address"))
        );
    }
}
