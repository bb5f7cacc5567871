//! `[server]`: addresses, TLS, trusted proxies and request hygiene.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use crate::config::{AuditSettings, AuditWebhook, Config, ServerSettings};

/// `server.listen`, `server.admin_listen`, and the `(cert, key)` of `server.tls_*`.
pub(super) fn addresses(
    c: &Config,
    err: &mut dyn FnMut(&str, String),
) -> (SocketAddr, Option<SocketAddr>, Option<(PathBuf, PathBuf)>) {
    let listen: SocketAddr = c.server.listen.parse().unwrap_or_else(|_| {
        err(
            "server.listen",
            format!("`{}` is not an address; write e.g. \"127.0.0.1:8080\" or \"0.0.0.0:8080\"", c.server.listen),
        );
        ([127, 0, 0, 1], 8080).into()
    });
    let admin_listen = match c.server.admin_listen.as_str() {
        "" => None,
        a => a.parse().map(Some).unwrap_or_else(|_| {
            err(
                "server.admin_listen",
                format!("`{a}` is not an address; write e.g. \"127.0.0.1:9090\" or leave it empty"),
            );
            None
        }),
    };
    let tls = match (c.server.tls_cert.as_str(), c.server.tls_key.as_str()) {
        ("", "") => None,
        (c, k) if !c.is_empty() && !k.is_empty() => Some((PathBuf::from(c), PathBuf::from(k))),
        _ => {
            err(
                "server.tls_cert",
                "set both server.tls_cert and server.tls_key (PEM files) to serve HTTPS, or neither".into(),
            );
            None
        }
    };
    (listen, admin_listen, tls)
}

/// `server.trusted_proxies`: addresses or CIDRs.
pub(super) fn trusted_proxies(c: &Config, err: &mut dyn FnMut(&str, String)) -> Vec<IpNet> {
    c.server
        .trusted_proxies
        .iter()
        .filter_map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(ipv4_form)
                .map_err(|_| {
                    err("server.trusted_proxies", format!("`{s}` is not an IP address or CIDR such as \"10.0.0.0/8\""))
                })
                .ok()
        })
        .collect()
}

/// Request hygiene: the connection timeouts and the request head limits.
pub(super) fn hygiene(c: &Config, err: &mut dyn FnMut(&str, String)) -> ServerSettings {
    let s = &c.server;
    for (key, d) in [
        ("server.header_read_timeout", s.header_read_timeout.0),
        ("server.idle_timeout", s.idle_timeout.0),
        ("server.request_timeout", s.request_timeout.0),
    ] {
        nonzero(key, d, err);
    }
    if s.max_header_bytes.0 < 4096 {
        err(
            "server.max_header_bytes",
            "must be at least 4KiB (browsers send several KiB of cookies and headers); the default is \"64KiB\"".into(),
        );
    }
    if s.max_url_bytes.0 < 256 {
        err("server.max_url_bytes", "must be at least 256 bytes; the default is \"8KiB\"".into());
    }
    ServerSettings {
        header_read_timeout: s.header_read_timeout.0,
        idle_timeout: s.idle_timeout.0,
        request_timeout: s.request_timeout.0,
        max_header_bytes: s.max_header_bytes.0,
        max_url_bytes: s.max_url_bytes.0,
    }
}

fn nonzero(key: &str, d: std::time::Duration, err: &mut dyn FnMut(&str, String)) {
    if d.is_zero() {
        err(key, "must be longer than zero, e.g. \"10s\"".into());
    }
}

/// The back-off maximum, limiter memory, and `[audit]`: the queue and the webhook.
pub(super) fn operations(c: &Config, err: &mut dyn FnMut(&str, String)) -> AuditSettings {
    nonzero("rate_limit.login_backoff_max", c.rate_limit.login_backoff_max.0, err);
    nonzero("audit.retention", c.audit.retention.0, err);
    if c.rate_limit.max_keys < 1000 {
        err(
            "rate_limit.max_keys",
            format!(
                "`{}` is too small: the limits would forget attackers within seconds; use at least 1000 (the default is 100000)",
                c.rate_limit.max_keys
            ),
        );
    }
    if c.audit.queue == 0 {
        err("audit.queue", "must be at least 1 (the default is 4096)".into());
    }
    let mut webhook = None;
    if !c.audit.webhook_url.is_empty() {
        // Checked as a URL, and as the request target the webhook sends to.
        let url = match url::Url::parse(&c.audit.webhook_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                c.audit.webhook_url.parse::<http::Uri>().ok()
            }
            _ => None,
        };
        match url {
            Some(url) => webhook = Some(AuditWebhook::new(url, &c.audit.webhook_secret)),
            None => err(
                "audit.webhook_url",
                format!("`{}` is not an http(s) URL such as \"https://siem.example.com/hook\"", c.audit.webhook_url),
            ),
        }
        if c.audit.webhook_secret.len() < 16 {
            err(
                "audit.webhook_secret",
                "set at least 16 characters (e.g. `openssl rand -hex 32`) with audit.webhook_url: the receiver checks the HMAC-SHA256 signature made with it".into(),
            );
        }
    }
    AuditSettings { store: c.audit.store, retention: c.audit.retention.0, queue: c.audit.queue, webhook }
}

/// `::ffff:10.0.0.0/104` as `10.0.0.0/8`: peers are compared in canonical (IPv4) form, so an
/// IPv4-mapped network written in IPv6 must be too.
fn ipv4_form(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        _ => net,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    const HOOK: &str = "[audit]\nwebhook_secret = \"0123456789abcdef0123\"\n";

    #[test]
    fn audit_webhook_is_parsed_once_as_the_request_target() {
        let s = load_str("").unwrap().validate().unwrap();
        assert!(s.audit.webhook.is_none() && s.audit.store && s.audit.queue == 4096);
        let s =
            load_str(&format!("{HOOK}webhook_url = \"https://siem.example.com/hook\"\n")).unwrap().validate().unwrap();
        let hook = s.audit.webhook.expect("a webhook");
        assert_eq!(hook.url.to_string(), "https://siem.example.com/hook");
        assert_eq!(hook.secret(), b"0123456789abcdef0123");
        // url::Url would encode the space; the request target cannot hold it.
        for bad in ["https://siem.example.com/a hook", "ftp://siem.example.com/", "siem"] {
            let p = load_str(&format!("{HOOK}webhook_url = \"{bad}\"\n")).unwrap().validate().unwrap_err();
            assert!(p.iter().any(|p| p.key == "audit.webhook_url" && p.message.contains(bad)), "{bad}: {p:?}");
        }
    }

    #[test]
    fn mapped_networks_are_read_as_ipv4() {
        let net = |s: &str| super::ipv4_form(s.parse().unwrap()).to_string();
        assert_eq!(net("::ffff:127.0.0.1/128"), "127.0.0.1/32");
        assert_eq!(net("::ffff:10.0.0.0/104"), "10.0.0.0/8");
        assert_eq!(net("2001:db8::/32"), "2001:db8::/32");
        assert_eq!(net("10.0.0.0/8"), "10.0.0.0/8");
    }
}
