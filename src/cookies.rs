//! Cookie names, attributes and parsing. Written by hand for exact control over attributes
//! (`__Host-`, `Partitioned`, `Max-Age=0` deletion with identical attributes). Pure.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, header};

use crate::config::CookieSettings;

/// Django's CSRF cookie lifetime (one year), so existing frontends see the same behaviour.
pub const CSRF_MAX_AGE: u64 = 31_449_600;

/// Builds `Set-Cookie` values for the session and CSRF cookies.
#[derive(Clone, Debug)]
pub struct CookiePolicy {
    pub settings: CookieSettings,
}

/// The two cookies sessiongate reads from a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestCookies {
    /// The first session cookie (browsers send the most specific first).
    pub session: Option<String>,
    /// Further session cookies of the same name, at most [`MAX_TOSSED`]: a sibling subdomain can
    /// plant one (`Domain=.example.com`, "cookie tossing"), and the real one may come second.
    pub more_sessions: Vec<String>,
    pub csrf: Option<String>,
}

/// Session cookies beyond the first that are looked at (each costs a store lookup).
pub const MAX_TOSSED: usize = 3;

/// The cookie of a two-step login's pending password step (`crate::mfa::Pending`, sealed).
pub const MFA_PENDING_COOKIE: &str = "sessiongate_mfa";

/// The cookie naming a passkey ceremony in progress (`crate::passkeys`).
pub const PASSKEY_CEREMONY_COOKIE: &str = "sessiongate_passkey";

impl CookiePolicy {
    pub fn new(settings: CookieSettings) -> Self {
        CookiePolicy { settings }
    }

    fn build(&self, name: &str, value: &str, max_age: Option<u64>, http_only: bool) -> HeaderValue {
        let s = &self.settings;
        let mut c = format!("{name}={value}; Path=/");
        if let Some(d) = &s.domain {
            c.push_str("; Domain=");
            c.push_str(d);
        }
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        if http_only {
            c.push_str("; HttpOnly");
        }
        if s.secure {
            c.push_str("; Secure");
        }
        c.push_str("; SameSite=");
        c.push_str(s.same_site.as_str());
        if s.partitioned {
            c.push_str("; Partitioned");
        }
        // Names and values are validated at config time / generated from safe alphabets.
        HeaderValue::from_str(&c).expect("cookie is valid header text")
    }

    /// The session cookie: persistent for `max_age` when remembered, else a browser-session cookie.
    pub fn session(&self, token: &str, max_age: Option<Duration>) -> HeaderValue {
        self.build(&self.settings.session_name, token, max_age.map(|d| d.as_secs()), true)
    }

    pub fn clear_session(&self) -> HeaderValue {
        self.build(&self.settings.session_name, "", Some(0), true)
    }

    /// Another cookie of ours (e.g. the pending two-step login), HttpOnly, with the same
    /// attributes as the session cookie; `max_age` 0 deletes it. `name` gets the `__Host-` prefix
    /// when the session cookie has it.
    pub fn named(&self, name: &str, value: &str, max_age: u64) -> HeaderValue {
        self.build(&self.prefixed(name), value, Some(max_age), true)
    }

    /// `name` as sent by browsers: with `__Host-` when `cookies.host_prefix` is on.
    pub fn prefixed(&self, name: &str) -> String {
        if self.settings.session_name.starts_with("__Host-") { format!("__Host-{name}") } else { name.to_owned() }
    }

    /// The first value of the cookie `name` (as [`CookiePolicy::prefixed`]) in the request.
    pub fn read_named(&self, headers: &HeaderMap, name: &str) -> Option<String> {
        let name = self.prefixed(name);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim().trim_matches('"').to_owned())
    }

    /// The CSRF cookie: readable by the page's JavaScript (Django's default), a year long.
    pub fn csrf(&self, secret: &str) -> HeaderValue {
        self.build(&self.settings.csrf_name, secret, Some(CSRF_MAX_AGE), false)
    }

    /// Read our two cookies from every `Cookie` header. When the CSRF cookie's name repeats (a
    /// cookie tossed in from a sibling domain or path), the first wins: browsers send the most
    /// specific first. Repeated session cookies are all kept (up to [`MAX_TOSSED`] more): the
    /// session layer uses the one that names a live session.
    pub fn read(&self, headers: &HeaderMap) -> RequestCookies {
        let mut out = RequestCookies::default();
        for h in headers.get_all(header::COOKIE) {
            let Ok(h) = h.to_str() else { continue };
            for pair in h.split(';') {
                let Some((k, v)) = pair.trim().split_once('=') else { continue };
                let v = v.trim().trim_matches('"');
                if k == self.settings.session_name {
                    if out.session.is_none() {
                        out.session = Some(v.to_owned());
                    } else if out.more_sessions.len() < MAX_TOSSED {
                        out.more_sessions.push(v.to_owned());
                    }
                } else if k == self.settings.csrf_name && out.csrf.is_none() {
                    out.csrf = Some(v.to_owned());
                }
            }
        }
        out
    }

    /// Whether `name` is the session or the pending two-step login cookie in any spelling
    /// ([`same_cookie`]): cookies only the gateway may read or set.
    pub fn is_gateway_cookie(&self, name: &str) -> bool {
        same_cookie(name, &self.settings.session_name)
            || same_cookie(name, MFA_PENDING_COOKIE)
            || same_cookie(name, PASSKEY_CEREMONY_COOKIE)
    }

    /// Whether an upstream may set the cookie `name`: never a gateway cookie, and the CSRF cookie
    /// only under its exact configured name (a Django upstream re-sends it, docs/django.md §3;
    /// another spelling would shadow it in browsers or lenient parsers).
    pub fn upstream_may_set(&self, name: &str) -> bool {
        let csrf = &self.settings.csrf_name;
        !self.is_gateway_cookie(name) && (name == csrf || !same_cookie(name, csrf))
    }

    /// The `Cookie` header without the gateway's cookies in any spelling: upstreams never see
    /// the session token or the pending 2FA login. (The CSRF cookie passes: Django checks it.)
    pub fn strip_gateway_cookies(&self, headers: &mut HeaderMap) {
        if !headers.contains_key(header::COOKIE) {
            return;
        }
        let kept: Vec<String> = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .filter(|p| !self.is_gateway_cookie(p.split_once('=').map_or(p.trim(), |(k, _)| k.trim())))
            .map(str::to_owned)
            .collect();
        headers.remove(header::COOKIE);
        if let Ok(v) = HeaderValue::from_str(&kept.join("; "))
            && !kept.is_empty()
        {
            headers.insert(header::COOKIE, v);
        }
    }
}

/// Whether two cookie names are the same cookie to some reader: ASCII case ignored (many
/// frameworks and proxies compare so), and a leading `__Host-`/`__Secure-` (any case) ignored
/// (a prefixed and an unprefixed cookie of one name shadow each other in lenient parsers).
pub fn same_cookie(a: &str, b: &str) -> bool {
    fn bare(name: &str) -> &str {
        for prefix in ["__host-", "__secure-"] {
            if name.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix)) {
                return &name[prefix.len()..];
            }
        }
        name
    }
    bare(a).eq_ignore_ascii_case(bare(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SameSite;

    fn policy(
        secure: bool,
        same_site: SameSite,
        domain: Option<&str>,
        prefix: bool,
        partitioned: bool,
    ) -> CookiePolicy {
        let p = if prefix { "__Host-" } else { "" };
        CookiePolicy::new(CookieSettings {
            session_name: format!("{p}sessionid"),
            csrf_name: format!("{p}csrftoken"),
            secure,
            same_site,
            domain: domain.map(str::to_owned),
            partitioned,
        })
    }

    #[test]
    fn session_cookie_is_httponly_lax_and_persistent_when_remembered() {
        let p = policy(false, SameSite::Lax, None, false, false);
        assert_eq!(
            p.session("tok", Some(Duration::from_secs(60))),
            "sessionid=tok; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"
        );
        assert_eq!(p.session("tok", None), "sessionid=tok; Path=/; HttpOnly; SameSite=Lax");
        assert_eq!(p.clear_session(), "sessionid=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    }

    #[test]
    fn csrf_cookie_is_readable_by_js() {
        let p = policy(true, SameSite::None, Some("example.com"), false, true);
        assert_eq!(
            p.csrf("s3cret"),
            "csrftoken=s3cret; Path=/; Domain=example.com; Max-Age=31449600; Secure; SameSite=None; Partitioned"
        );
    }

    #[test]
    fn host_prefix_names() {
        let p = policy(true, SameSite::Lax, None, true, false);
        assert!(p.session("t", None).to_str().unwrap().starts_with("__Host-sessionid=t; Path=/;"));
    }

    #[test]
    fn reading_takes_first_of_duplicates_and_ignores_others() {
        let p = policy(false, SameSite::Lax, None, false, false);
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; csrftoken=first; sessionid=abc".parse().unwrap());
        h.append(header::COOKIE, "csrftoken=second".parse().unwrap());
        assert_eq!(
            p.read(&h),
            RequestCookies { session: Some("abc".into()), more_sessions: vec![], csrf: Some("first".into()) }
        );
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "sessionid=tossed; sessionid=real; sessionid=3; sessionid=4; sessionid=5".parse().unwrap(),
        );
        let c = p.read(&h);
        assert_eq!((c.session.as_deref(), c.more_sessions.len()), (Some("tossed"), MAX_TOSSED), "bounded");
    }

    #[test]
    fn stripping_removes_only_the_session_cookie() {
        let p = policy(false, SameSite::Lax, None, false, false);
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; sessionid=abc; csrftoken=x".parse().unwrap());
        h.append(header::COOKIE, "sessionid=again".parse().unwrap());
        p.strip_gateway_cookies(&mut h);
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(h[header::COOKIE], "a=1; csrftoken=x");
    }

    #[test]
    fn gateway_cookies_are_recognised_in_every_spelling() {
        for prefix in [false, true] {
            let p = policy(prefix, SameSite::Lax, None, prefix, false);
            for name in [
                "sessionid",
                "SessionID",
                "__Host-sessionid",
                "__host-SESSIONID",
                "__Secure-sessionid",
                "sessiongate_mfa",
                "__Host-Sessiongate_MFA",
            ] {
                assert!(p.is_gateway_cookie(name), "{name}");
                assert!(!p.upstream_may_set(name), "{name}");
            }
            for name in ["sessionid_hint", "xsessionid", "__Host-", "__Other-sessionid", "theme", ""] {
                assert!(!p.is_gateway_cookie(name), "{name}");
                assert!(p.upstream_may_set(name), "{name}");
            }
            // The CSRF cookie: its exact name only.
            let csrf = p.settings.csrf_name.clone();
            assert!(p.upstream_may_set(&csrf));
            let others = ["csrftoken", "CSRFToken", "__Host-csrftoken", "__Secure-csrftoken", "__HOST-CSRFTOKEN"];
            for name in others.iter().filter(|n| **n != csrf) {
                assert!(!p.upstream_may_set(name), "{name} (configured {csrf})");
            }
        }
    }

    #[test]
    fn stripping_removes_the_pending_login_and_other_spellings() {
        let p = policy(true, SameSite::Lax, None, true, false);
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "sessiongate_mfa=a; __Host-sessiongate_mfa=b; SESSIONID=c; __Host-sessionid=d; theme=1; __Host-csrftoken=t"
                .parse()
                .unwrap(),
        );
        p.strip_gateway_cookies(&mut h);
        assert_eq!(h[header::COOKIE], "theme=1; __Host-csrftoken=t");
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "sessionid=only".parse().unwrap());
        p.strip_gateway_cookies(&mut h);
        assert!(!h.contains_key(header::COOKIE), "an empty Cookie header is not sent");
    }
}
