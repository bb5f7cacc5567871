//! The client's address: the TCP peer, unless the peer is a trusted proxy; then `X-Forwarded-For`
//! is walked from the right (the hops our proxies appended) and the first hop that is not itself
//! trusted is the client. Left-most entries are whatever the client chose to send, so the walk
//! stops there. A hop that does not parse stops the walk too: the client is then the last
//! trusted hop seen (never an entry further left, which the client could have written).
//! Addresses are compared in canonical form: a dual-stack listener sees IPv4 peers as
//! `::ffff:a.b.c.d`, which an IPv4 CIDR such as `127.0.0.1/32` must still match.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut nearest = peer;
    let hops = headers.get_all("x-forwarded-for").iter().rev().flat_map(|v| {
        // A non-UTF-8 header is one unparsable hop.
        v.to_str().map_or_else(|_| vec![""], |s| s.rsplit(',').collect::<Vec<_>>())
    });
    for hop in hops {
        let Some(ip) = parse_hop(hop) else { return nearest };
        if !is_trusted(ip, trusted) {
            return ip;
        }
        nearest = ip;
    }
    nearest
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, `192.0.2.1:4711`,
/// `[2001:db8::1]:4711` (some proxies append the port).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip())).map(|ip| ip.to_canonical())
}

/// Whether `peer` may set `X-Forwarded-*` headers we believe.
pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    let canonical = peer.to_canonical();
    trusted.iter().any(|n| n.contains(&canonical) || n.contains(&peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let peer = ip("203.0.113.9");
        assert_eq!(client_ip(peer, &h("1.2.3.4"), &[]), peer);
    }

    #[test]
    fn trusted_proxy_gives_rightmost_untrusted_hop() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let peer = ip("10.0.0.2");
        assert_eq!(client_ip(peer, &h("6.6.6.6, 198.51.100.7, 10.0.0.1"), &trusted), ip("198.51.100.7"));
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer);
    }

    #[test]
    fn an_unparsable_hop_is_never_skipped() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let peer = ip("10.0.0.2");
        // The finding: the port made the real client's hop unparsable, and 6.6.6.6 won.
        assert_eq!(client_ip(peer, &h("6.6.6.6, 203.0.113.5:4444"), &trusted), ip("203.0.113.5"));
        assert_eq!(client_ip(peer, &h("6.6.6.6, [2001:db8::5]:4444"), &trusted), ip("2001:db8::5"));
        // Garbage where the client should be: the nearest trusted hop, not what lies beyond.
        assert_eq!(client_ip(peer, &h("6.6.6.6, unknown"), &trusted), peer);
        assert_eq!(client_ip(peer, &h("6.6.6.6, garbage, 10.0.0.7"), &trusted), ip("10.0.0.7"));
        assert_eq!(client_ip(peer, &h("6.6.6.6,"), &trusted), peer, "an empty hop");
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_networks() {
        let trusted = vec!["127.0.0.1/32".parse().unwrap()];
        // A dual-stack listener reports the IPv4 nginx on loopback as ::ffff:127.0.0.1.
        let peer = ip("::ffff:127.0.0.1");
        assert!(is_trusted(peer, &trusted));
        assert_eq!(client_ip(peer, &h("198.51.100.7"), &trusted), ip("198.51.100.7"));
        // A mapped hop is the same client as its IPv4 spelling (one rate-limit key, not two).
        assert_eq!(client_ip(peer, &h("::ffff:198.51.100.7"), &trusted), ip("198.51.100.7"));
        assert_eq!(client_ip(ip("::ffff:203.0.113.9"), &h("1.2.3.4"), &trusted), ip("203.0.113.9"));
        assert!(!is_trusted(ip("::ffff:127.0.0.2"), &trusted));
    }

    #[test]
    fn repeated_headers_are_one_list_in_order() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let mut hm = HeaderMap::new();
        hm.append("x-forwarded-for", "6.6.6.6".parse().unwrap());
        hm.append("x-forwarded-for", "198.51.100.7, 10.0.0.1".parse().unwrap());
        assert_eq!(client_ip(ip("10.0.0.2"), &hm, &trusted), ip("198.51.100.7"));
    }
}
