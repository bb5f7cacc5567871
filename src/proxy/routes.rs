//! The route table: which route a request path selects, and the upstream URI. Pure.
//!
//! A prefix ending in `/` (`/api/`) matches paths under it; one without (`/api`) matches the
//! path itself and paths under it (`/api`, `/api/x`) but not `/apix`. Longest prefix wins.
//!
//! ## One path, many readings
//! Upstreams do not agree on what a path means: nginx merges `//` (`merge_slashes`) and decodes
//! `%2F`, Tomcat strips `;` path parameters (`/admin;x/y`, `/..;/`), Windows and some Java
//! stacks treat `\` as `/`, Express routes case-insensitively. If the gateway read
//! `//admin/x` as "not under `/admin/`" while the upstream serves it as `/admin/x`, an
//! `auth = "required"` route for `/admin/` would be reachable anonymously through a laxer `/`.
//! So [`RouteTable::select`] considers every *reading* of the raw path, each combination of
//! - runs of `/` merged or kept,
//! - `;…` parameters stripped from every segment or kept,
//! - `%2F`/`%5C` read as separators or as data,
//! - `\` read as a separator or as data,
//!
//! every other `%XX` decoded (so `/%61dmin` is `/admin`), each reading matched both
//! case-sensitively and ASCII-case-insensitively. Then:
//! 1. any reading with a `.` or `..` segment: refused ([`Refusal::DotSegment`]) — an upstream
//!    would resolve it into another route's space;
//! 2. readings that do not all select the same route (or all none): refused
//!    ([`Refusal::Ambiguous`]);
//! 3. otherwise that route, and the path is forwarded exactly as received (`/api//x` and
//!    GitLab's `group%2Fproject` keep working: every reading selects `/api/`).
//!
//! Paths without `%`, `;`, `\` or `//` (nearly all of them) have a single reading: they cost two
//! scans of the table and no allocation. Configuration refuses prefixes that no reading could
//! select unambiguously (with `%`, `;`, `\`, `//`, or equal to another but for case).

use std::borrow::Cow;
use std::time::Duration;

use http::Uri;

use crate::config::{RouteAuth, RouteSettings};
use crate::http::origin::Origin;

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

    fn matches(&self, path: &[u8], fold_case: bool) -> bool {
        let p = self.prefix.as_bytes();
        let head = path.get(..p.len());
        let starts = if fold_case { head.is_some_and(|h| h.eq_ignore_ascii_case(p)) } else { head == Some(p) };
        starts && (p.ends_with(b"/") || matches!(path.get(p.len()), None | Some(b'/')))
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

    /// The route for one reading of a path, matched case-sensitively. Requests are routed by
    /// [`RouteTable::select`], which asks this of every reading.
    pub fn find(&self, decoded: &[u8]) -> Option<&Route> {
        self.position(decoded, false).map(|i| &self.routes[i])
    }

    fn position(&self, path: &[u8], fold_case: bool) -> Option<usize> {
        self.routes.iter().position(|r| r.matches(path, fold_case))
    }

    /// The route for a raw request path (see the module docs): `Ok(None)` when no reading
    /// selects a route.
    pub fn select(&self, raw_path: &str) -> Result<Option<&Route>, Refusal> {
        let raw = raw_path.as_bytes();
        let plain = !raw.iter().any(|c| matches!(c, b'%' | b';' | b'\\')) && !raw.windows(2).any(|w| w == b"//");
        let chosen = if plain { self.select_plain(raw) } else { self.select_read(raw) }?;
        Ok(chosen.map(|i| &self.routes[i]))
    }

    /// A path whose every reading is itself: only the case can differ.
    fn select_plain(&self, raw: &[u8]) -> Result<Option<usize>, Refusal> {
        if has_dot_segment(raw) {
            return Err(Refusal::DotSegment);
        }
        let chosen = self.position(raw, false);
        if self.position(raw, true) != chosen {
            return Err(Refusal::Ambiguous);
        }
        Ok(chosen)
    }

    /// Every reading, built one after another in one buffer.
    fn select_read(&self, raw: &[u8]) -> Result<Option<usize>, Refusal> {
        let mut chosen = None;
        let mut ambiguous = false;
        let mut reading = Vec::with_capacity(raw.len());
        for flags in 0..16u8 {
            let how = Reading {
                merge_slashes: flags & 1 != 0,
                strip_params: flags & 2 != 0,
                encoded_separators: flags & 4 != 0,
                backslash: flags & 8 != 0,
            };
            if how.read(raw, &mut reading) {
                return Err(Refusal::DotSegment);
            }
            for fold_case in [false, true] {
                let this = self.position(&reading, fold_case);
                ambiguous |= *chosen.get_or_insert(this) != this;
            }
        }
        if ambiguous {
            return Err(Refusal::Ambiguous);
        }
        Ok(chosen.flatten())
    }
}

/// Why a path is refused before any route is chosen; both are 400 `invalid_request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Some reading has a `.` or `..` segment.
    DotSegment,
    /// The readings select different routes.
    Ambiguous,
}

impl Refusal {
    /// The problem `detail`. Never the path: it is the attacker's text.
    pub fn detail(self) -> &'static str {
        match self {
            Refusal::DotSegment => "The path has '.' or '..' segments.",
            Refusal::Ambiguous => {
                "The path is ambiguous: servers that merge slashes, strip ';' parameters, decode '%2F' or ignore case would route it differently."
            }
        }
    }
}

/// Stands for `%2F`/`%5C` read as data: a byte no UTF-8 prefix contains, one per escape like
/// every other decoded escape (so [`raw_offset`] still maps reading bytes to raw ones).
const ENCODED_SEPARATOR: u8 = 0xFF;

/// One way an upstream may read a path.
#[derive(Clone, Copy)]
struct Reading {
    merge_slashes: bool,
    strip_params: bool,
    encoded_separators: bool,
    backslash: bool,
}

impl Reading {
    /// Write this reading of `raw` into `out` (`/`-separated); whether it has a dot segment.
    fn read(self, raw: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        let mut dot = false;
        let (mut seg_start, mut in_params) = (0, false);
        let mut i = 0;
        loop {
            let (byte, separator, len) =
                match (raw.get(i), raw.get(i + 1).copied().and_then(hex), raw.get(i + 2).copied().and_then(hex)) {
                    (None, _, _) => (None, true, 0),
                    (Some(b'/'), _, _) => (None, true, 1),
                    (Some(b'\\'), _, _) if self.backslash => (None, true, 1),
                    // Parameters are split off before decoding (Tomcat), so only a raw
                    // separator ends them: `;x%2F..` is all parameter.
                    (Some(b'%'), Some(_), Some(_)) if in_params => (None, false, 3),
                    (Some(b'%'), Some(h), Some(l)) => match h << 4 | l {
                        b'/' | b'\\' if self.encoded_separators => (None, true, 3),
                        b'/' | b'\\' => (Some(ENCODED_SEPARATOR), false, 3),
                        // Decoded `;` is data, for the same reason.
                        c => (Some(c), false, 3),
                    },
                    (Some(b';'), _, _) if self.strip_params => {
                        in_params = true;
                        (None, false, 1)
                    }
                    (Some(&c), _, _) => (Some(c), false, 1),
                };
            if let Some(c) = byte.filter(|_| !in_params) {
                out.push(c);
            }
            if separator {
                let seg = &out[seg_start..];
                dot |= seg == b"." || seg == b"..";
                in_params = false;
                if i >= raw.len() {
                    return dot;
                }
                let empty = out.len() == seg_start && out.last() == Some(&b'/');
                if !(self.merge_slashes && empty) {
                    out.push(b'/');
                }
                seg_start = out.len();
            }
            i += len;
        }
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
    percent_encoding::percent_decode_str(raw).into()
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

    fn guarded(routes: &[(&str, RouteAuth)]) -> RouteTable {
        let settings: Vec<RouteSettings> = routes
            .iter()
            .map(|(prefix, auth)| RouteSettings {
                prefix: (*prefix).into(),
                upstream: url::Url::parse("http://up").unwrap(),
                auth: *auth,
                strip_prefix: false,
                timeout: Duration::from_secs(30),
                max_body: None,
            })
            .collect();
        RouteTable::new(&settings)
    }

    fn decision<'t>(t: &'t RouteTable, raw: &str) -> Result<Option<&'t str>, Refusal> {
        t.select(raw).map(|r| r.map(|r| r.prefix.as_str()))
    }

    const PUBLIC_AND_ADMIN: &[(&str, RouteAuth)] = &[("/", RouteAuth::None), ("/admin/", RouteAuth::Required)];

    #[test]
    fn spellings_that_upstreams_read_as_a_protected_prefix_are_refused() {
        let t = guarded(PUBLIC_AND_ADMIN);
        for p in [
            "//admin/x",
            "/admin;x/y",
            "/\\admin/x",
            "/%2fadmin/x",
            "/%5Cadmin/x",
            "/ADMIN/x",
            "/aDmIn/x",
            "/%41dmin/x",
            "/;/admin/x",
            "/admin;/x",
            "/admin%2Fx",
            "/admin\\x",
        ] {
            assert_eq!(decision(&t, p), Err(Refusal::Ambiguous), "{p}");
        }
        // Tomcat strips `;x%2f%61` whole, then decodes the first `%2f`: `//admin/`.
        assert_eq!(decision(&t, "/%2f;x%2f%61/admin/"), Err(Refusal::Ambiguous));
        for p in ["/..;/admin/x", "/x/..;/admin/x", "/x/%2e%2E;v/admin/x", "/x%2f..%2fadmin/x", "/x\\..\\admin/x"] {
            assert_eq!(decision(&t, p), Err(Refusal::DotSegment), "{p}");
        }
        // Without a `/` route the plain reading selects nothing: still not a way around it.
        let t = guarded(&[("/admin/", RouteAuth::Required)]);
        for p in ["//admin/x", "/ADMIN/x", "/admin;x/y", "/%2fadmin/x"] {
            assert_eq!(decision(&t, p), Err(Refusal::Ambiguous), "{p}");
        }
        assert_eq!(decision(&t, "/x/../admin/y"), Err(Refusal::DotSegment));
    }

    #[test]
    fn odd_paths_that_every_reading_routes_alike_keep_their_route() {
        let t = guarded(&[("/", RouteAuth::None), ("/admin/", RouteAuth::Required), ("/api/", RouteAuth::Required)]);
        for (p, want) in [
            ("/admin/x", "/admin/"),
            ("/admin//x", "/admin/"),
            ("/api//x", "/api/"),
            ("/api/projects/group%2Fproject", "/api/"),
            ("/admin/a;v=1/b", "/admin/"),
            ("/admin/a\\b", "/admin/"),
            ("/%61dmin/x", "/admin/"),
            ("/other/%2F;x//y", "/"),
            ("/administrators", "/"),
            ("/a%3Bdmin/x", "/"),
            ("/%zz/x", "/"),
        ] {
            assert_eq!(decision(&t, p), Ok(Some(want)), "{p}");
        }
        let t = guarded(&[("/admin", RouteAuth::Required)]);
        assert_eq!(decision(&t, "/admin"), Ok(Some("/admin")));
        assert_eq!(decision(&t, "/admin;x"), Err(Refusal::Ambiguous), "Tomcat reads `/admin`, others not");
        assert_eq!(decision(&t, "/adminx"), Ok(None));
        assert_eq!(decision(&t, "/other//x"), Ok(None));
        assert_eq!(decision(&t, "/Admin"), Err(Refusal::Ambiguous));
    }

    #[test]
    fn refusals_never_quote_the_path() {
        for r in [Refusal::DotSegment, Refusal::Ambiguous] {
            assert!(!r.detail().contains("admin"));
        }
        assert!(Refusal::Ambiguous.detail().contains("ambiguous"));
    }

    /// Models of how real servers turn a raw path into the one they route on.
    mod upstreams {
        fn decode(raw: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < raw.len() {
                match (
                    raw[i],
                    raw.get(i + 1).copied().and_then(super::hex),
                    raw.get(i + 2).copied().and_then(super::hex),
                ) {
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
            out
        }

        /// RFC 3986 §5.2.4 on `/`-separated segments, and `//` merged when asked.
        fn resolve(path: &[u8], merge: bool) -> Vec<u8> {
            let mut segs: Vec<&[u8]> = Vec::new();
            let parts: Vec<&[u8]> = path.split(|&c| c == b'/').skip(1).collect();
            let last = parts.len().saturating_sub(1);
            for (i, s) in parts.iter().enumerate() {
                match *s {
                    b"." => {}
                    b".." => {
                        segs.pop();
                    }
                    b"" if merge && i != last => {}
                    s => segs.push(s),
                }
                if i == last && matches!(*s, b"." | b"..") {
                    segs.push(b"");
                }
            }
            let mut out = Vec::new();
            for s in segs {
                out.push(b'/');
                out.extend_from_slice(s);
            }
            if out.is_empty() {
                out.push(b'/');
            }
            out
        }

        /// nginx: decode every escape, merge slashes, resolve dot segments.
        pub fn nginx(raw: &str) -> Vec<u8> {
            resolve(&decode(raw.as_bytes()), true)
        }

        /// Tomcat: strip `;` parameters from each raw segment, then decode and resolve
        /// (so `..;` is `..`), `//` merged.
        pub fn tomcat(raw: &str) -> Vec<u8> {
            let stripped: Vec<&[u8]> =
                raw.as_bytes().split(|&c| c == b'/').map(|s| s.split(|&c| c == b';').next().unwrap()).collect();
            resolve(&decode(&stripped.join(&b'/')), true)
        }

        /// Express: decoded, routed ignoring case (the caller folds).
        pub fn express(raw: &str) -> Vec<u8> {
            decode(raw.as_bytes())
        }

        /// A server that treats `\` (also decoded) as `/`.
        pub fn backslash(raw: &str) -> Vec<u8> {
            let d: Vec<u8> = decode(raw.as_bytes()).into_iter().map(|c| if c == b'\\' { b'/' } else { c }).collect();
            resolve(&d, true)
        }
    }

    const PIECES: &[&str] = &[
        "/", "//", ";x", ";", "\\", "%2f", "%2F", "%5c", "%5C", "%2e", "%2E", ".", "..", "..;", "%61", "%41", "admin",
        "ADMIN", "Admin", "api", "x", "%", "%zz", "%3b", "public", "/admin/", "/api/",
    ];

    fn arb_path() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(proptest::sample::select(PIECES), 0..10).prop_map(|p| format!("/{}", p.concat()))
    }

    /// Segments without `%`, `;`, `\` or empty ones; the last may be empty (a trailing `/`).
    fn arb_plain_path() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let segment =
            proptest::sample::select(&["admin", "ADMIN", "Admin", "api", "x", ".", "..", "public", "a.b"][..]);
        (proptest::collection::vec(segment, 0..6), any::<bool>()).prop_map(|(segs, slash)| {
            let mut p: String = segs.iter().map(|s| format!("/{s}")).collect();
            if slash || p.is_empty() {
                p.push('/');
            }
            p
        })
    }

    const TABLES: &[&[(&str, RouteAuth)]] = &[
        PUBLIC_AND_ADMIN,
        &[("/admin/", RouteAuth::Required), ("/api/", RouteAuth::None)],
        &[("/api/", RouteAuth::Required), ("/api/public/", RouteAuth::None), ("/", RouteAuth::Optional)],
        &[("/admin", RouteAuth::Required), ("/api/admin/", RouteAuth::Required), ("/api/", RouteAuth::None)],
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whenever some upstream would serve a path from a protected route, the gateway picks
        /// that route or refuses: never a laxer route, never the SPA.
        #[test]
        fn no_upstream_reading_escapes_a_protected_route(raw in arb_path()) {
            for routes in TABLES {
                let t = guarded(routes);
                let ours = t.select(&raw).map(|r| r.map(|r| r.prefix.clone()));
                let models: [(&str, Vec<u8>, bool); 4] = [
                    ("nginx", upstreams::nginx(&raw), false),
                    ("tomcat", upstreams::tomcat(&raw), false),
                    ("express", upstreams::express(&raw), true),
                    ("backslash", upstreams::backslash(&raw), false),
                ];
                for (name, path, fold) in models {
                    let Some(i) = t.position(&path, fold) else { continue };
                    let theirs = &t.routes[i];
                    if theirs.auth != RouteAuth::Required {
                        continue;
                    }
                    proptest::prop_assert!(
                        ours.is_err() || ours.as_ref().ok().and_then(|o| o.as_deref()) == Some(theirs.prefix.as_str()),
                        "{raw:?}: {name} reads {:?} into {}, we chose {ours:?}",
                        String::from_utf8_lossy(&path),
                        theirs.prefix
                    );
                }
            }
        }

        /// The allocation-free path for plain paths decides exactly as the full enumeration.
        #[test]
        fn plain_paths_take_the_short_cut_to_the_same_answer(raw in arb_plain_path()) {
            for routes in TABLES {
                let t = guarded(routes);
                proptest::prop_assert_eq!(t.select_plain(raw.as_bytes()), t.select_read(raw.as_bytes()), "{}", raw);
            }
        }
    }
}
