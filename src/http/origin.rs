//! Origins and origin patterns (`https://*.example.com`), with their sites per the Public Suffix
//! List: what the CSRF checks, the CORS policy, the configuration and the proxy share. Pure.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
