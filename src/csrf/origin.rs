//! Origins, origin patterns and the request-origin checks of SPEC §6 steps 1–3. Pure.

use std::fmt;

use url::Url;

/// A serialised origin: scheme, lower-cased host and an explicit non-default port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
}

impl Origin {
    /// Parse `scheme://host[:port]` (a trailing `/` is tolerated). `null`, paths, queries,
    /// credentials and non-http(s) schemes are refused.
    pub fn parse(s: &str) -> Option<Origin> {
        let s = s.trim();
        let url = Url::parse(s).ok()?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
            || !matches!(url.path(), "" | "/")
        {
            return None;
        }
        Self::of_url(&url)
    }

    /// The origin of any http(s) URL (used for `Referer`).
    pub fn of_url(url: &Url) -> Option<Origin> {
        let host = url.host_str()?.to_ascii_lowercase();
        Some(Origin { scheme: url.scheme().to_owned(), host, port: url.port() })
    }

    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }

    /// `localhost`, `*.localhost` and loopback addresses: browsers treat them as secure contexts.
    pub fn is_loopback(&self) -> bool {
        let h = self.host.trim_start_matches('[').trim_end_matches(']');
        h == "localhost" || h.ends_with(".localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The registrable domain ("site") of the host, per the Public Suffix List; IP addresses and
    /// single-label hosts are their own site.
    pub fn site(&self) -> String {
        registrable_domain(&self.host)
    }

    /// Schemeful same-site, as browsers decide which cookies are third-party.
    pub fn same_site(&self, other: &Origin) -> bool {
        self.scheme == other.scheme && self.site() == other.site()
    }
}

pub fn registrable_domain(host: &str) -> String {
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return host.to_owned();
    }
    match psl::domain_str(host) {
        Some(d) => d.to_owned(),
        None => host.to_owned(),
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// An allowed origin: exact, or `scheme://*.domain[:port]`, which matches the domain itself and
/// its subdomains at any depth (as Django's `CSRF_TRUSTED_ORIGINS`). The scheme and port must
/// match exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginPattern {
    Exact(Origin),
    Subdomains(Origin),
}

impl OriginPattern {
    pub fn parse(s: &str) -> Result<OriginPattern, String> {
        let s = s.trim();
        if s == "*" || s.contains("://*") && !s.contains("://*.") {
            return Err(format!(
                "`{s}`: a bare wildcard is never allowed; list origins such as \"https://app.example.com\" or \"https://*.example.com\""
            ));
        }
        if let Some((scheme, rest)) = s.split_once("://*.") {
            let base = Origin::parse(&format!("{scheme}://{rest}")).ok_or_else(|| bad(s))?;
            if base.host.contains('*') || base.host.parse::<std::net::IpAddr>().is_ok() {
                return Err(bad(s));
            }
            return Ok(OriginPattern::Subdomains(base));
        }
        if s.contains('*') {
            return Err(bad(s));
        }
        Origin::parse(s).map(OriginPattern::Exact).ok_or_else(|| bad(s))
    }

    pub fn matches(&self, o: &Origin) -> bool {
        match self {
            OriginPattern::Exact(e) => e == o,
            OriginPattern::Subdomains(base) => {
                base.scheme == o.scheme
                    && base.port == o.port
                    && (o.host == base.host || o.host.strip_suffix(&base.host).is_some_and(|p| p.ends_with('.')))
            }
        }
    }

    /// The origin this pattern is anchored on (its own host for wildcards).
    pub fn base(&self) -> &Origin {
        match self {
            OriginPattern::Exact(o) | OriginPattern::Subdomains(o) => o,
        }
    }
}

fn bad(s: &str) -> String {
    format!(
        "`{s}` is not an origin; write \"https://app.example.com\" (scheme, host, optional port, no path) or \"https://*.example.com\""
    )
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginPattern::Exact(o) => write!(f, "{o}"),
            OriginPattern::Subdomains(o) => {
                write!(f, "{}://*.{}", o.scheme, o.host)?;
                if let Some(p) = o.port {
                    write!(f, ":{p}")?;
                }
                Ok(())
            }
        }
    }
}

/// Why a request's origin was refused (SPEC §6 steps 1–3). The `Display` text is the problem's
/// `detail`, modelled on Django's reason strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginFailure {
    CrossSiteRequest { fetch_site: String, origin: Option<String> },
    UntrustedOrigin(String),
    NoReferer,
    MalformedReferer,
    InsecureReferer,
    UntrustedReferer(String),
}

impl fmt::Display for OriginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginFailure::CrossSiteRequest { fetch_site, origin } => write!(
                f,
                "Origin checking failed - Sec-Fetch-Site is {fetch_site} and Origin {} is not a trusted origin.",
                origin.as_deref().unwrap_or("is missing, so it")
            ),
            OriginFailure::UntrustedOrigin(o) => {
                write!(f, "Origin checking failed - {o} does not match any trusted origins.")
            }
            OriginFailure::NoReferer => f.write_str("Referer checking failed - no Referer."),
            OriginFailure::MalformedReferer => f.write_str("Referer checking failed - Referer is malformed."),
            OriginFailure::InsecureReferer => {
                f.write_str("Referer checking failed - Referer is insecure while host is secure.")
            }
            OriginFailure::UntrustedReferer(r) => {
                write!(f, "Referer checking failed - {r} does not match any trusted origins.")
            }
        }
    }
}

impl OriginFailure {
    /// A short label for metrics and the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            OriginFailure::CrossSiteRequest { .. } => "cross_site",
            OriginFailure::UntrustedOrigin(_) => "untrusted_origin",
            OriginFailure::NoReferer => "no_referer",
            OriginFailure::MalformedReferer => "malformed_referer",
            OriginFailure::InsecureReferer => "insecure_referer",
            OriginFailure::UntrustedReferer(_) => "untrusted_referer",
        }
    }
}

/// The origin policy: the gateway's own public origin plus trusted origins.
#[derive(Clone, Debug)]
pub struct OriginPolicy {
    pub public: Origin,
    pub trusted: Vec<OriginPattern>,
}

/// The request headers the origin checks read.
#[derive(Clone, Copy, Debug, Default)]
pub struct OriginHeaders<'a> {
    pub sec_fetch_site: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub referer: Option<&'a str>,
}

impl OriginPolicy {
    fn allowed(&self, o: &Origin) -> bool {
        *o == self.public || self.trusted.iter().any(|p| p.matches(o))
    }

    fn trusted_origin(&self, raw: Option<&str>) -> bool {
        raw.and_then(Origin::parse).is_some_and(|o| self.allowed(&o))
    }

    /// A WebSocket handshake is a GET, so the token steps do not apply, but a browser always
    /// sends `Origin` on it: a foreign one is refused (cross-site WebSocket hijacking). Without
    /// `Origin` the client is not a browser and carries no ambient cookies to abuse.
    pub fn check_handshake(&self, origin: Option<&str>) -> Result<(), OriginFailure> {
        match origin {
            Some(o) if !self.trusted_origin(Some(o)) => Err(OriginFailure::UntrustedOrigin(o.to_owned())),
            _ => Ok(()),
        }
    }

    /// Steps 1–3 of SPEC §6 for an unsafe request. Non-browser clients (no `Sec-Fetch-Site`,
    /// no `Origin`) pass over plain HTTP and still need the token.
    pub fn check(&self, h: OriginHeaders<'_>) -> Result<(), OriginFailure> {
        if let Some(site) = h.sec_fetch_site {
            let site = site.trim().to_ascii_lowercase();
            tracing::trace!(%site, "csrf: fetch metadata");
            return match site.as_str() {
                "same-origin" | "none" => Ok(()),
                _ if self.trusted_origin(h.origin) => Ok(()),
                _ => Err(OriginFailure::CrossSiteRequest { fetch_site: site, origin: h.origin.map(str::to_owned) }),
            };
        }
        if let Some(origin) = h.origin {
            tracing::trace!(origin, "csrf: origin header");
            return if self.trusted_origin(Some(origin)) {
                Ok(())
            } else {
                Err(OriginFailure::UntrustedOrigin(origin.to_owned()))
            };
        }
        if self.public.is_https() {
            // Without Origin, only the Referer can show a secure request came from us: a
            // man-in-the-middle on plain HTTP could otherwise plant a cookie and forge a post.
            let referer = h.referer.ok_or(OriginFailure::NoReferer)?;
            let url = Url::parse(referer).map_err(|_| OriginFailure::MalformedReferer)?;
            if url.scheme() != "https" {
                return Err(OriginFailure::InsecureReferer);
            }
            let o = Origin::of_url(&url).ok_or(OriginFailure::MalformedReferer)?;
            if !self.allowed(&o) {
                return Err(OriginFailure::UntrustedReferer(referer.to_owned()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(public: &str, trusted: &[&str]) -> OriginPolicy {
        OriginPolicy {
            public: Origin::parse(public).unwrap(),
            trusted: trusted.iter().map(|t| OriginPattern::parse(t).unwrap()).collect(),
        }
    }

    fn h<'a>(site: Option<&'a str>, origin: Option<&'a str>, referer: Option<&'a str>) -> OriginHeaders<'a> {
        OriginHeaders { sec_fetch_site: site, origin, referer }
    }

    #[test]
    fn origin_parsing_normalises() {
        let o = Origin::parse("HTTPS://App.Example.COM:443").unwrap();
        assert_eq!(o.to_string(), "https://app.example.com");
        assert_eq!(Origin::parse("http://127.0.0.1:8080/").unwrap().to_string(), "http://127.0.0.1:8080");
        for bad in ["null", "", "app.example.com", "ftp://x.com", "https://x.com/path", "https://u:p@x.com"] {
            assert!(Origin::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn wildcard_matches_apex_and_any_depth_but_not_lookalikes() {
        let p = OriginPattern::parse("https://*.example.com").unwrap();
        for ok in ["https://example.com", "https://app.example.com", "https://a.b.example.com"] {
            assert!(p.matches(&Origin::parse(ok).unwrap()), "{ok}");
        }
        for no in [
            "http://app.example.com",
            "https://evilexample.com",
            "https://example.com.evil.net",
            "https://app.example.com:8443",
        ] {
            assert!(!p.matches(&Origin::parse(no).unwrap()), "{no}");
        }
    }

    #[test]
    fn bare_wildcards_refused() {
        for bad in ["*", "https://*", "https://app.*.com", "null"] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fetch_metadata_step() {
        let p = policy("https://api.example.com", &["https://app.example.com"]);
        assert!(p.check(h(Some("same-origin"), None, None)).is_ok());
        assert!(p.check(h(Some("none"), None, None)).is_ok());
        assert!(p.check(h(Some("same-site"), Some("https://app.example.com"), None)).is_ok());
        assert!(matches!(
            p.check(h(Some("cross-site"), Some("https://evil.test"), None)),
            Err(OriginFailure::CrossSiteRequest { .. })
        ));
        assert!(p.check(h(Some("same-site"), Some("https://other.example.com"), None)).is_err());
        assert!(p.check(h(Some("cross-site"), None, None)).is_err());
    }

    #[test]
    fn origin_step() {
        let p = policy("http://127.0.0.1:8080", &[]);
        assert!(p.check(h(None, Some("http://127.0.0.1:8080"), None)).is_ok());
        assert_eq!(p.check(h(None, Some("null"), None)), Err(OriginFailure::UntrustedOrigin("null".into())));
        assert!(p.check(h(None, Some("http://localhost:8080"), None)).is_err());
        // Non-browser clients over plain HTTP pass to the token step.
        assert!(p.check(h(None, None, None)).is_ok());
    }

    #[test]
    fn websocket_handshake_origin() {
        let p = policy("https://example.com", &["https://*.example.org"]);
        assert!(p.check_handshake(Some("https://example.com")).is_ok());
        assert!(p.check_handshake(Some("https://ws.example.org")).is_ok());
        assert!(p.check_handshake(None).is_ok(), "non-browser clients send no Origin");
        assert_eq!(
            p.check_handshake(Some("https://evil.test")),
            Err(OriginFailure::UntrustedOrigin("https://evil.test".into()))
        );
        assert!(p.check_handshake(Some("null")).is_err());
    }

    #[test]
    fn referer_step_over_https() {
        let p = policy("https://example.com", &["https://*.example.org"]);
        assert_eq!(p.check(h(None, None, None)), Err(OriginFailure::NoReferer));
        assert_eq!(p.check(h(None, None, Some("::"))), Err(OriginFailure::MalformedReferer));
        assert_eq!(p.check(h(None, None, Some("http://example.com/x"))), Err(OriginFailure::InsecureReferer));
        assert!(p.check(h(None, None, Some("https://example.com/page"))).is_ok());
        assert!(p.check(h(None, None, Some("https://a.example.org/"))).is_ok());
        assert!(matches!(p.check(h(None, None, Some("https://evil.com/"))), Err(OriginFailure::UntrustedReferer(_))));
    }

    #[test]
    fn sites() {
        let a = Origin::parse("https://app.example.com").unwrap();
        let b = Origin::parse("https://api.example.com").unwrap();
        let c = Origin::parse("https://app.other.test").unwrap();
        let d = Origin::parse("https://a.github.io").unwrap();
        let e = Origin::parse("https://b.github.io").unwrap();
        assert!(a.same_site(&b));
        assert!(!a.same_site(&c));
        assert!(!d.same_site(&e), "github.io is a public suffix");
        assert!(!Origin::parse("http://app.example.com").unwrap().same_site(&a), "schemeful");
    }
}
