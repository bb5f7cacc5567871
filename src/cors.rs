//! CORS for cross-origin mode: an origin allowlist with credentials.
//!
//! Written here rather than with tower-http's `CorsLayer` because that layer answers *every*
//! `OPTIONS` itself, so a proxied upstream that needs real `OPTIONS` requests would never see
//! them; here only true preflights (`OPTIONS` + `Access-Control-Request-Method`) are answered.
//!
//! Rules: exact origins or `https://*.example.com` patterns (scheme and port must match), never
//! `*` and never `null` unless listed; `Access-Control-Allow-Credentials: true` only for allowed
//! origins; `Vary: Origin` on every response; preflights answered before authentication;
//! disallowed origins get no CORS headers at all (the browser then blocks the response — CORS is
//! not a CSRF defence, the CSRF layer is). Private Network Access only when asked.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::http::origin::{Origin, OriginPattern};

const METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

#[derive(Clone, Debug)]
pub struct CorsPolicy {
    allowed: Vec<OriginPattern>,
    allow_null: bool,
    allow_headers: HeaderValue,
    expose_headers: Option<HeaderValue>,
    max_age: HeaderValue,
}

impl CorsPolicy {
    /// `None` when no origin is allowed (same-origin mode): the layer is then not installed.
    pub fn new(allowed: &[OriginPattern], cors: &crate::config::CorsSettings) -> Option<Self> {
        if allowed.is_empty() && !cors.allow_null {
            return None;
        }
        let join = |v: &[http::HeaderName]| {
            let list = v.iter().map(http::HeaderName::as_str).collect::<Vec<_>>().join(", ");
            HeaderValue::from_str(&list).expect("header names joined by \", \"")
        };
        Some(CorsPolicy {
            allowed: allowed.to_vec(),
            allow_null: cors.allow_null,
            allow_headers: join(&cors.allow_headers),
            expose_headers: Some(join(&cors.expose_headers)).filter(|v| !v.is_empty()),
            max_age: HeaderValue::from(Duration::as_secs(&cors.max_age)),
        })
    }

    /// The request's `Origin` when it is allowed.
    pub fn allowed_origin<'a>(&self, headers: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let raw = headers.get(header::ORIGIN)?;
        let s = raw.to_str().ok()?;
        if s == "null" {
            return self.allow_null.then_some(raw);
        }
        let o = Origin::parse(s)?;
        self.allowed.iter().any(|p| p.matches(&o)).then_some(raw)
    }

    fn is_preflight(req: &Request) -> bool {
        req.method() == Method::OPTIONS
            && req.headers().contains_key(header::ORIGIN)
            && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    fn preflight(&self, req: &Request) -> Response {
        let mut res = StatusCode::NO_CONTENT.into_response();
        let h = res.headers_mut();
        h.insert(
            header::VARY,
            HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        );
        if let Some(origin) = self.allowed_origin(req.headers()) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(METHODS));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, self.allow_headers.clone());
            h.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
            if req.headers().get("access-control-request-private-network").is_some_and(|v| v == "true") {
                h.insert("access-control-allow-private-network", HeaderValue::from_static("true"));
            }
        }
        res
    }

    fn decorate(&self, origin: Option<HeaderValue>, res: &mut Response) {
        crate::http::headers::add_vary(res, "Origin");
        let Some(origin) = origin else { return };
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        if let Some(e) = &self.expose_headers {
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, e.clone());
        }
    }
}

/// The middleware, mounted in cross-origin mode only (same-origin has no policy): outermost, so
/// preflights never need a session and every response — 401, 403, 404, 502 and proxied ones
/// included — carries the headers.
pub async fn cors(State(policy): State<std::sync::Arc<CorsPolicy>>, req: Request, next: Next) -> Response {
    if CorsPolicy::is_preflight(&req) {
        return policy.preflight(&req);
    }
    let origin = policy.allowed_origin(req.headers()).cloned();
    let mut res = next.run(req).await;
    // An upstream's own CORS headers must not widen our policy.
    for name in [
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
    ] {
        res.headers_mut().remove(name);
    }
    policy.decorate(origin, &mut res);
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CorsSettings;

    /// The default `[cors]` settings, with `null` allowed or not.
    fn settings(allow_null: bool) -> CorsSettings {
        CorsSettings { allow_null, ..crate::config::load_str("").unwrap().validate().unwrap().cors }
    }

    fn policy(origins: &[&str]) -> CorsPolicy {
        let patterns: Vec<_> =
            origins.iter().filter(|o| **o != "null").map(|o| OriginPattern::parse(o).unwrap()).collect();
        CorsPolicy::new(&patterns, &settings(origins.contains(&"null"))).unwrap()
    }

    fn headers(origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, origin.parse().unwrap());
        h
    }

    #[test]
    fn allowlist_matching() {
        let p = policy(&["https://app.example.com", "https://*.example.org"]);
        assert!(p.allowed_origin(&headers("https://app.example.com")).is_some());
        assert!(p.allowed_origin(&headers("https://x.y.example.org")).is_some());
        assert!(p.allowed_origin(&headers("http://app.example.com")).is_none(), "scheme must match");
        assert!(p.allowed_origin(&headers("https://evil.com")).is_none());
        assert!(p.allowed_origin(&headers("null")).is_none(), "null only when listed");
        assert!(policy(&["null", "https://a.example.com"]).allowed_origin(&headers("null")).is_some());
    }

    #[test]
    fn no_policy_without_origins() {
        assert!(CorsPolicy::new(&[], &settings(false)).is_none());
    }
}
