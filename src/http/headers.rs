//! Security headers on every response (SPEC §9).

use http::{HeaderMap, HeaderValue, header};

/// `nosniff` and `Referrer-Policy: same-origin` on every response; HSTS when served over HTTPS.
pub fn add_security_headers(https: bool, h: &mut HeaderMap) {
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("same-origin"));
    if https {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
}
