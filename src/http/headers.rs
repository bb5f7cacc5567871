//! Header helpers every layer uses: security headers on every response (SPEC §9), `Vary`, and
//! which methods are safe.

use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, header};

/// `nosniff` and `Referrer-Policy: same-origin` on every response; HSTS when served over HTTPS.
pub fn add_security_headers(https: bool, h: &mut HeaderMap) {
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("same-origin"));
    if https {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
}

/// Methods that never need a CSRF token (RFC 9110 safe methods).
pub fn is_safe(method: &http::Method) -> bool {
    matches!(*method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::TRACE)
}

/// Add `value` to the response's `Vary` header unless already present.
pub fn add_vary(res: &mut Response, value: &'static str) {
    let present = res
        .headers()
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(value));
    if !present {
        res.headers_mut().append(header::VARY, HeaderValue::from_static(value));
    }
}

/// Remove the named headers (collected first: the map cannot change while borrowed).
pub fn remove_where(h: &mut HeaderMap, pred: impl Fn(&str) -> bool) {
    if h.keys().any(|k| pred(k.as_str())) {
        let names: Vec<HeaderName> = h.keys().filter(|k| pred(k.as_str())).cloned().collect();
        for name in names {
            h.remove(name);
        }
    }
}

/// Header maps for unit tests of what rewrites headers.
#[cfg(test)]
pub(crate) mod test_maps {
    use http::{HeaderMap, HeaderName, HeaderValue};

    pub fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// The names in `h`, sorted.
    pub fn names(h: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        n.sort_unstable();
        n
    }
}
