//! The route table: longest-prefix match on the percent-decoded path, and the upstream URI.
//! Pure.
//!
//! A prefix ending in `/` (`/api/`) matches paths under it; one without (`/api`) matches the
//! path itself and paths under it (`/api`, `/api/x`) but not `/apix`. Matching happens on the
//! *decoded* path, as upstreams route on it: `/%61dmin/x` is `/admin/x`, and cannot slip past an
//! `auth = "required"` route for `/admin/` through a laxer `/` route. Paths with `.` or `..`
//! segments (also encoded, also with `\`) are refused before any route is chosen: an upstream
//! would resolve them into another route's space. Prefixes are case-sensitive; an upstream that
//! routes case-insensitively should check the identity headers itself.

use std::borrow::Cow;
use std::time::Duration;

use http::Uri;

use crate::config::{RouteAuth, RouteSettings};
use crate::csrf::origin::Origin;

/// One `[[routes]]` entry, resolved.
#[derive(Clone, Debug)]
pub struct Route {
    pub prefix: String,
    pub auth: RouteAuth,
    pub strip_prefix: bool,
    pub timeout: Duration,
    pub max_body: Option<u64>,
    /// `scheme://host[:port]` of the upstream: where requests go, and the JWT `aud`.
    pub origin: String,
    /// The upstream URL's path without its trailing `/` (`""` for a bare origin).
    base_path: String,
}

impl Route {
    pub fn new(r: &RouteSettings) -> Self {
        let origin = Origin::of_url(&r.upstream)
            .map_or_else(|| r.upstream.as_str().trim_end_matches('/').to_owned(), |o| o.to_string());
        Route {
            prefix: r.prefix.clone(),
            auth: r.auth,
            strip_prefix: r.strip_prefix,
            timeout: r.timeout,
            max_body: r.max_body,
            origin,
            base_path: r.upstream.path().trim_end_matches('/').to_owned(),
        }
    }

    fn matches(&self, decoded: &[u8]) -> bool {
        let p = self.prefix.as_bytes();
        if p.ends_with(b"/") {
            decoded.starts_with(p)
        } else {
            decoded.starts_with(p) && matches!(decoded.get(p.len()), None | Some(b'/'))
        }
    }

    /// The upstream URI for a request path (raw, as received) and query.
    pub fn upstream_uri(&self, raw_path: &str, query: Option<&str>) -> Result<Uri, http::uri::InvalidUri> {
        let rest = if self.strip_prefix {
            let keep = self.prefix.trim_end_matches('/').len();
            &raw_path[raw_offset(raw_path, keep)..]
        } else {
            raw_path
        };
        let slash = if rest.starts_with('/') { "" } else { "/" };
        let mut uri = format!("{}{}{slash}{rest}", self.origin, self.base_path);
        if let Some(q) = query {
            uri.push('?');
            uri.push_str(q);
        }
        Uri::try_from(uri)
    }
}

/// Routes, longest prefix first.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn new(settings: &[RouteSettings]) -> Self {
        let mut routes: Vec<Route> = settings.iter().map(Route::new).collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        RouteTable { routes }
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The route for a percent-decoded path.
    pub fn find(&self, decoded: &[u8]) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(decoded))
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `%XX` decoded (a `%` not followed by two hex digits stays as it is).
pub fn percent_decode(raw: &str) -> Cow<'_, [u8]> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw.as_bytes());
    }
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Where in `raw` the first `n` decoded bytes end.
fn raw_offset(raw: &str, n: usize) -> usize {
    let b = raw.as_bytes();
    let (mut i, mut decoded) = (0, 0);
    while decoded < n && i < b.len() {
        let escaped = b[i] == b'%'
            && b.get(i + 1).copied().and_then(hex).is_some()
            && b.get(i + 2).copied().and_then(hex).is_some();
        i += if escaped { 3 } else { 1 };
        decoded += 1;
    }
    i
}

/// Whether a decoded path has a `.` or `..` segment (`/` or `\` separated).
pub fn has_dot_segment(decoded: &[u8]) -> bool {
    decoded.split(|&c| c == b'/' || c == b'\\').any(|s| s == b"." || s == b"..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &[(&str, &str, bool)]) -> RouteTable {
        let settings: Vec<RouteSettings> = routes
            .iter()
            .map(|(prefix, upstream, strip)| RouteSettings {
                prefix: (*prefix).into(),
                upstream: url::Url::parse(upstream).unwrap(),
                auth: RouteAuth::Required,
                strip_prefix: *strip,
                timeout: Duration::from_secs(30),
                max_body: None,
            })
            .collect();
        RouteTable::new(&settings)
    }

    fn prefix_for(t: &RouteTable, path: &str) -> Option<String> {
        t.find(&percent_decode(path)).map(|r| r.prefix.clone())
    }

    #[test]
    fn longest_prefix_wins_on_segment_boundaries() {
        let t = table(&[("/", "http://a", false), ("/api/", "http://b", false), ("/api/admin", "http://c", false)]);
        assert_eq!(prefix_for(&t, "/api/x").as_deref(), Some("/api/"));
        assert_eq!(prefix_for(&t, "/api/admin").as_deref(), Some("/api/admin"));
        assert_eq!(prefix_for(&t, "/api/admin/users").as_deref(), Some("/api/admin"));
        assert_eq!(prefix_for(&t, "/api/administrators").as_deref(), Some("/api/"), "not a segment boundary");
        assert_eq!(prefix_for(&t, "/api").as_deref(), Some("/"), "`/api/` needs the slash");
        assert_eq!(prefix_for(&t, "/other").as_deref(), Some("/"));
    }

    #[test]
    fn prefix_without_slash() {
        let t = table(&[("/api", "http://b", false)]);
        assert!(prefix_for(&t, "/api").is_some());
        assert!(prefix_for(&t, "/api/x").is_some());
        assert!(prefix_for(&t, "/apix").is_none());
        assert!(prefix_for(&t, "/").is_none());
    }

    #[test]
    fn matching_uses_the_decoded_path() {
        let t = table(&[("/", "http://a", false), ("/admin/", "http://a", false)]);
        assert_eq!(prefix_for(&t, "/%61dmin/x").as_deref(), Some("/admin/"));
        assert_eq!(prefix_for(&t, "/admin%2Fx").as_deref(), Some("/admin/"));
    }

    #[test]
    fn dot_segments_are_spotted_encoded_or_not() {
        for p in ["/a/../b", "/a/./b", "/a/..", "/a/%2e%2e/b", "/a/.%2E/b", "/a%2F..%2Fb", "/a/..\\b", "/a%5C..%5Cb"] {
            assert!(has_dot_segment(&percent_decode(p)), "{p}");
        }
        for p in ["/a/b", "/a/..b/c", "/a/.well-known/x", "/a/b.", "/%zz/x"] {
            assert!(!has_dot_segment(&percent_decode(p)), "{p}");
        }
    }

    #[test]
    fn upstream_uris() {
        let t = table(&[
            ("/api/", "http://127.0.0.1:8000", false),
            ("/s/", "http://Up.Example:81/base/", true),
            ("/n", "https://x.test", true),
        ]);
        let uri =
            |p: &str, q: Option<&str>| t.find(&percent_decode(p)).unwrap().upstream_uri(p, q).unwrap().to_string();
        assert_eq!(uri("/api/x", Some("a=1&b")), "http://127.0.0.1:8000/api/x?a=1&b");
        assert_eq!(uri("/s/x/y", None), "http://up.example:81/base/x/y");
        assert_eq!(uri("/s/", None), "http://up.example:81/base/");
        assert_eq!(uri("/%73/x", None), "http://up.example:81/base/x", "strips the decoded prefix");
        assert_eq!(uri("/n", None), "https://x.test/");
        assert_eq!(uri("/n/deep", None), "https://x.test/deep");
        assert_eq!(t.find(b"/api/x").unwrap().origin, "http://127.0.0.1:8000");
    }
}
