//! The request-origin checks of SPEC §6 steps 1–3. Pure.

use std::fmt;

use url::Url;

use crate::http::origin::{Origin, OriginPattern};

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
