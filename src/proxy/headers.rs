//! The proxy's header policy, pure: hop-by-hop removal (RFC 9110 §7.6.1), WebSocket upgrade
//! detection, `X-Forwarded-*`, upstream `Set-Cookie` filtering, and method overrides. Identity headers are
//! [`crate::identity::Identity::strip`]'s job.

use std::net::IpAddr;

use http::header::{CONNECTION, SET_COOKIE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::http::headers::remove_where;

/// Hop-by-hop headers that are never forwarded, whatever `Connection` says. Every `proxy-*`
/// header goes too. (Names, not strings: removing by `&str` parses the name on every request.)
const HOP_BY_HOP: [HeaderName; 7] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers about the client connection that only a trusted proxy may hand us.
const FORWARDING: &[&str] = &["forwarded", "x-real-ip"];

fn tokens(h: &HeaderMap, name: HeaderName) -> impl Iterator<Item = &str> {
    h.get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Remove the hop-by-hop headers: the fixed list, every `proxy-*`, and the names listed in
/// `Connection`.
pub fn remove_hop_by_hop(h: &mut HeaderMap) {
    if h.contains_key(CONNECTION) {
        let named: Vec<HeaderName> =
            tokens(h, CONNECTION).filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok()).collect();
        for name in named {
            h.remove(name);
        }
    }
    remove_where(h, |k| k.starts_with("proxy-"));
    for name in &HOP_BY_HOP {
        h.remove(name);
    }
}

/// A WebSocket handshake: `Connection: upgrade` and `Upgrade: websocket`. Other upgrades (such
/// as `h2c`) are not passed through: their headers are dropped as hop-by-hop.
pub fn is_websocket_upgrade(h: &HeaderMap) -> bool {
    tokens(h, CONNECTION).any(|t| t.eq_ignore_ascii_case("upgrade"))
        && tokens(h, UPGRADE).any(|t| t.eq_ignore_ascii_case("websocket"))
}

/// Put the upgrade headers (back) after [`remove_hop_by_hop`].
pub fn set_websocket_upgrade(h: &mut HeaderMap) {
    h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
}

/// Set `X-Forwarded-For/-Proto/-Host`. From a trusted proxy (`peer_trusted`) the incoming
/// values are kept and the peer appended to `X-Forwarded-For`; from anyone else every
/// `X-Forwarded-*`, `Forwarded` and `X-Real-IP` is dropped and replaced with what we saw.
pub fn set_forwarded(
    h: &mut HeaderMap,
    peer: IpAddr,
    peer_trusted: bool,
    proto: &'static str,
    host: Option<HeaderValue>,
) {
    use std::fmt::Write;
    let mut xff = String::new();
    if peer_trusted {
        for hop in tokens(h, X_FORWARDED_FOR) {
            xff.push_str(hop);
            xff.push_str(", ");
        }
    } else {
        remove_where(h, |k| k.starts_with("x-forwarded-") || FORWARDING.contains(&k));
    }
    let _ = write!(xff, "{peer}");
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert(X_FORWARDED_FOR, v);
    }
    if !h.contains_key(X_FORWARDED_PROTO) {
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if let Some(host) = host.filter(|_| !h.contains_key(X_FORWARDED_HOST)) {
        h.insert(X_FORWARDED_HOST, host);
    }
}

/// The name a browser will send a `Set-Cookie` back under. A nameless cookie (`=a=b`, or no
/// `=` at all) comes back as its bare value, so `=sessionid=x` returns as `sessionid=x`.
fn set_cookie_name(v: &HeaderValue) -> &[u8] {
    let pair = v.as_bytes().split(|&c| c == b';').next().unwrap_or_default();
    match pair.iter().position(|&c| c == b'=') {
        Some(eq) if !pair[..eq].trim_ascii().is_empty() => pair[..eq].trim_ascii(),
        Some(eq) => {
            let value = &pair[eq + 1..];
            value[..value.iter().position(|&c| c == b'=').unwrap_or(value.len())].trim_ascii()
        }
        None => pair.trim_ascii(),
    }
}

/// Remove the `Set-Cookie` headers whose cookie name `refused` says an upstream may not set (the
/// gateway's own cookies belong to the gateway alone). Returns whether any was removed.
pub fn drop_set_cookie(h: &mut HeaderMap, refused: impl Fn(&str) -> bool) -> bool {
    let sets = |v: &HeaderValue| std::str::from_utf8(set_cookie_name(v)).map_or(true, &refused);
    if !h.get_all(SET_COOKIE).iter().any(sets) {
        return false;
    }
    let kept: Vec<HeaderValue> = h.get_all(SET_COOKIE).iter().filter(|v| !sets(v)).cloned().collect();
    h.remove(SET_COOKIE);
    for v in kept {
        h.append(SET_COOKIE, v);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::http::headers::test_maps::{map, names};

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("proxy-authorization", "Basic x"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("content-type", "text/plain"),
            ("accept", "*/*"),
        ]);
        remove_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["accept", "content-type"]);
    }

    #[test]
    fn websocket_upgrade_detection() {
        assert!(is_websocket_upgrade(&map(&[("connection", "keep-alive, Upgrade"), ("upgrade", "WebSocket")])));
        assert!(!is_websocket_upgrade(&map(&[("upgrade", "websocket")])), "needs Connection: upgrade");
        assert!(!is_websocket_upgrade(&map(&[("connection", "upgrade"), ("upgrade", "h2c")])));
    }

    #[test]
    fn untrusted_peer_gets_its_own_forwarded_headers_only() {
        let mut h = map(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.test"),
            ("x-forwarded-prefix", "/admin"),
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
        ]);
        let host = HeaderValue::from_static("gw.example.com");
        set_forwarded(&mut h, "203.0.113.9".parse().unwrap(), false, "http", Some(host));
        assert_eq!(h["x-forwarded-for"], "203.0.113.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "gw.example.com");
        assert_eq!(h.len(), 3, "{h:?}");
    }

    #[test]
    fn trusted_peer_is_appended() {
        let mut h = map(&[
            ("x-forwarded-for", "198.51.100.7, 10.0.0.1"),
            ("x-forwarded-for", "10.0.0.3"),
            ("x-forwarded-proto", "https"),
        ]);
        set_forwarded(
            &mut h,
            "10.0.0.2".parse().unwrap(),
            true,
            "http",
            Some(HeaderValue::from_static("internal:8080")),
        );
        assert_eq!(h["x-forwarded-for"], "198.51.100.7, 10.0.0.1, 10.0.0.3, 10.0.0.2");
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-proto"], "https", "kept from the trusted proxy");
        assert_eq!(h["x-forwarded-host"], "internal:8080");
    }

    #[test]
    fn upstream_cannot_set_the_session_cookie() {
        let mut h = map(&[
            ("set-cookie", "sessionid=abc; Path=/"),
            ("set-cookie", "csrftoken=x; Path=/"),
            ("set-cookie", "sessionidx=1"),
            ("set-cookie", " sessionid =y"),
        ]);
        assert!(drop_set_cookie(&mut h, |n| n == "sessionid"));
        let left: Vec<_> = h.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(left, ["csrftoken=x; Path=/", "sessionidx=1"]);
        assert!(!drop_set_cookie(&mut h, |n| n == "sessionid"));
    }

    #[test]
    fn nameless_cookies_are_judged_by_the_name_they_come_back_as() {
        let name = |v: &str| String::from_utf8(set_cookie_name(&HeaderValue::from_str(v).unwrap()).to_vec()).unwrap();
        assert_eq!(name("a=1; Path=/"), "a");
        assert_eq!(name(" a =1"), "a");
        assert_eq!(name("=sessionid=x; Path=/"), "sessionid");
        assert_eq!(name("= sessionid"), "sessionid");
        assert_eq!(name("sessionid"), "sessionid");
        assert_eq!(name("sessionid; Path=/"), "sessionid");
        assert_eq!(name("=x"), "x");
    }
}
