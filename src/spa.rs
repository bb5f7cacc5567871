//! Serving the single-page app: the built-in demo (embedded at compile time) or a directory.
//!
//! History-API fallback only for navigations (GET/HEAD, an extension-less last segment, and an
//! `Accept` that wants HTML): a missing `/assets/app.123.js` is a 404, never `index.html` served
//! as JavaScript. Hashed assets are cached forever; `index.html` is revalidated every time.
//!
//! From `spa.dir`, a build output directory, only the build is served: dotfiles (`.env`,
//! `.git/`) are 404 except under `/.well-known/`, so are symlinks whose target lies outside the
//! root, and paths with `//` or `\` (no directory redirect can point to `//other.host/`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use tower_http::services::ServeDir;

static DEMO: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/demo");
static CLIENT_JS: &str = include_str!("../clients/js/index.js");

/// The built-in demo's policy: everything from our own origin, nothing inline, no framing.
const DEMO_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(Clone)]
pub enum Spa {
    Off,
    Demo,
    Dir { root: PathBuf, fallback: String },
}

impl Spa {
    pub fn from_settings(spa: &crate::config::SpaSettings) -> Spa {
        use crate::config::SpaSettings;
        match spa {
            SpaSettings::Demo => Spa::Demo,
            SpaSettings::Off => Spa::Off,
            SpaSettings::Dir { root, fallback } => Spa::Dir { root: root.clone(), fallback: fallback.clone() },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Spa::Off => "no SPA".into(),
            Spa::Demo => "built-in demo SPA".into(),
            Spa::Dir { root, .. } => format!("SPA from {}", root.display()),
        }
    }
}

/// Whether a request is a browser navigation that should get `index.html` when no file matches.
pub fn is_navigation(req: &Request) -> bool {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return false;
    }
    let last = req.uri().path().rsplit('/').next().unwrap_or("");
    if last.contains('.') {
        return false;
    }
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|a| a.contains("text/html") || a.contains("*/*"))
}

/// Build-tool hashed names (`app.3f9a1c2b.js`, `index-BdJ7x3kQ.css`) never change content.
fn is_hashed_asset(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    stem.rsplit(['.', '-']).next().is_some_and(|h| {
        h.len() >= 8
            && h.len() < stem.len()
            && h.bytes().all(|b| b.is_ascii_alphanumeric())
            && h.bytes().any(|b| b.is_ascii_digit())
    })
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Not Found\n").into_response()
}

pub async fn serve(spa: Arc<Spa>, req: Request) -> Response {
    match &*spa {
        Spa::Off => not_found(),
        Spa::Demo => serve_demo(&req),
        Spa::Dir { root, fallback } => serve_dir(root, fallback, req).await,
    }
}

fn serve_demo(req: &Request) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    let path = req.uri().path().trim_start_matches('/');
    let (name, body): (&str, &'static [u8]) = if path == "_sessiongate/client.js" {
        ("client.js", CLIENT_JS.as_bytes())
    } else if let Some(f) = DEMO.get_file(if path.is_empty() { "index.html" } else { path }) {
        (f.path().to_str().unwrap_or(""), f.contents())
    } else if is_navigation(req) {
        match DEMO.get_file("index.html") {
            Some(f) => ("index.html", f.contents()),
            None => return not_found(),
        }
    } else {
        return not_found();
    };
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(body)[..12]));
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if *req.method() == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(body))
    };
    let h = res.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if !fresh {
        let ct = if mime.type_() == mime_guess::mime::TEXT || mime.subtype() == mime_guess::mime::JAVASCRIPT {
            format!("{mime}; charset=utf-8")
        } else {
            mime.to_string()
        };
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(&ct).expect("mime"));
    }
    if name.ends_with(".html") {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DEMO_CSP));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    res
}

async fn serve_dir(root: &Path, fallback: &str, req: Request) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    // As `ServeDir` decodes it; it answers invalid UTF-8 with 404 itself.
    let decoded = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy().into_owned();
    if is_hidden(&decoded) || !stays_inside(root, &decoded).await {
        return not_found();
    }
    let navigation = is_navigation(&req);
    let path = req.uri().path().to_owned();
    let dir = ServeDir::new(root).precompressed_br().precompressed_gzip().append_index_html_on_directories(true);
    let (parts, _) = req.into_parts();
    let if_none_match = parts.headers.get(header::IF_NONE_MATCH).cloned();
    let res = match dir.clone().oneshot(Request::from_parts(parts.clone(), Body::empty())).await {
        Ok(r) => with_etag(r.map(Body::new), if_none_match.as_ref()),
        Err(e) => match e {},
    };
    if leaves_origin(&res) {
        return not_found();
    }
    if res.status() == StatusCode::NOT_FOUND && navigation {
        // `/index.html`: made absolute and checked to be a URI path by config validation.
        if !stays_inside(root, fallback).await {
            return not_found();
        }
        let mut p = parts;
        p.uri = fallback.parse().expect("spa.fallback is checked by config validation");
        let res = match dir.oneshot(Request::from_parts(p, Body::empty())).await {
            Ok(r) => with_etag(r.map(Body::new), if_none_match.as_ref()),
            Err(e) => match e {},
        };
        return document_headers(res);
    }
    if res.status() == StatusCode::NOT_FOUND {
        return not_found();
    }
    let is_html = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_html {
        return document_headers(res);
    }
    let mut res = res;
    let cache = if is_hashed_asset(&path) { "public, max-age=31536000, immutable" } else { "no-cache" };
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}

/// Paths never served from `spa.dir`: any segment starting with `.` (`.env`, `.git/`; `..`
/// too) except a leading `/.well-known/`, and any `//` or `\` — `ServeDir` would redirect the
/// directory `//host` to `//host/`, a protocol-relative URL to another site.
fn is_hidden(decoded: &str) -> bool {
    decoded.contains("//")
        || decoded.contains('\\')
        || decoded.split('/').enumerate().any(|(i, seg)| seg.starts_with('.') && !(i == 1 && seg == ".well-known"))
}

/// Whether what `ServeDir` would open for `decoded` (the file, its `.br`/`.gz` siblings, a
/// directory's `index.html`) really lies under the root once symlinks are resolved. Links
/// inside the root are fine; a link to `/etc/passwd` is not. On the blocking pool: it is all
/// file-system calls. (A race with someone rewriting links inside the root is not covered:
/// whoever can write there can also just copy the file in.)
async fn stays_inside(root: &Path, decoded: &str) -> bool {
    let (root, rel) = (root.to_path_buf(), decoded.trim_start_matches('/').to_owned());
    let check = move || {
        let Ok(root) = std::fs::canonicalize(&root) else { return true }; // nothing to serve anyway
        let mut file = root.join(&rel);
        match std::fs::canonicalize(&file) {
            Ok(real) if !real.starts_with(&root) => return false,
            Ok(real) if real.is_dir() => file = real.join("index.html"),
            _ => {}
        }
        let sibling = |ext: &str| {
            let mut name = file.clone().into_os_string();
            name.push(ext);
            PathBuf::from(name)
        };
        [file.clone(), sibling(".br"), sibling(".gz")]
            .iter()
            .all(|f| std::fs::canonicalize(f).map_or(true, |real| real.starts_with(&root)))
    };
    tokio::task::spawn_blocking(check).await.unwrap_or(false)
}

/// A `Location` a browser would take for another host (`//evil`, `/\evil`).
fn leaves_origin(res: &Response) -> bool {
    res.headers().get(header::LOCATION).is_some_and(|l| {
        let l = l.as_bytes();
        l.starts_with(b"//") || l.starts_with(b"/\\")
    })
}

/// `ServeDir` validates with `Last-Modified` only; add a weak `ETag` from size, modification time
/// and encoding, and answer `If-None-Match` with 304.
fn with_etag(mut res: Response, if_none_match: Option<&HeaderValue>) -> Response {
    if res.status() != StatusCode::OK {
        return res;
    }
    let h = res.headers();
    let get = |n: header::HeaderName| h.get(n).map(|v| v.as_bytes().to_vec()).unwrap_or_default();
    let mut hasher = Sha256::new();
    for part in [get(header::LAST_MODIFIED), get(header::CONTENT_LENGTH), get(header::CONTENT_ENCODING)] {
        hasher.update(&part);
        hasher.update([0]);
    }
    let etag = format!("W/\"{}\"", hex::encode(&hasher.finalize()[..8]));
    let matches = if_none_match
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag.trim_start_matches("W/")));
    let value = HeaderValue::from_str(&etag).expect("hex");
    if matches {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        not_modified.headers_mut().insert(header::ETAG, value);
        return not_modified;
    }
    res.headers_mut().insert(header::ETAG, value);
    res
}

fn document_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static("frame-ancestors 'none'"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, path: &str, accept: Option<&str>) -> Request {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(a) = accept {
            b = b.header(header::ACCEPT, a);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn navigations_only_for_extensionless_html_gets() {
        assert!(is_navigation(&req(Method::GET, "/settings/profile", Some("text/html,*/*"))));
        assert!(!is_navigation(&req(Method::GET, "/assets/app.123.js", Some("*/*"))));
        assert!(!is_navigation(&req(Method::GET, "/settings", Some("application/json"))));
        assert!(!is_navigation(&req(Method::POST, "/settings", Some("text/html"))));
    }

    #[test]
    fn dotfiles_and_doubled_separators_are_hidden() {
        for p in
            ["/.env", "/a/.git/config", "/.well-known/../.env", "/a/..", "/.well-known/.x", "//sub", "/a\\b", "/a//"]
        {
            assert!(is_hidden(p), "{p}");
        }
        for p in ["/", "/index.html", "/.well-known/security.txt", "/assets/app.3f9a1c2b.js", "/a/b.c/d"] {
            assert!(!is_hidden(p), "{p}");
        }
        assert!(is_hidden("/a/.well-known"), "only a leading /.well-known/");
    }

    #[test]
    fn hashed_assets() {
        assert!(is_hashed_asset("/assets/index-BdJ7x3kQ.js"));
        assert!(is_hashed_asset("/static/app.3f9a1c2b.css"));
        assert!(!is_hashed_asset("/favicon.ico"));
        assert!(!is_hashed_asset("/app.js"));
        assert!(!is_hashed_asset("/assets/components.js"));
    }
}
