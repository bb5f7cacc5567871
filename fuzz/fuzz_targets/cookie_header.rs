//! `Cookie` header parsing (`cookies::CookiePolicy::read`, `read_named`, `strip_gateway_cookies`):
//! never panics whatever the bytes, and stripping removes exactly the session cookie.
#![no_main]

use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use sessiongate::cookies::CookiePolicy;

fn policy() -> &'static CookiePolicy {
    static P: OnceLock<CookiePolicy> = OnceLock::new();
    P.get_or_init(|| {
        let settings = sessiongate::config::load_str("").unwrap().validate().unwrap();
        CookiePolicy::new(settings.cookies)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    // Several Cookie headers (HTTP/2 splits them): one per NUL-separated chunk.
    for chunk in data.split(|b| *b == 0) {
        if let Ok(v) = HeaderValue::from_bytes(chunk) {
            headers.append(header::COOKIE, v);
        }
    }
    let p = policy();
    let read = p.read(&headers);
    let _ = p.read_named(&headers, "sessiongate_mfa");
    let mut stripped = headers.clone();
    p.strip_gateway_cookies(&mut stripped);
    let after = p.read(&stripped);
    assert_eq!(after.session, None, "the session cookie never survives stripping");
    assert_eq!(after.csrf, read.csrf, "stripping keeps the CSRF cookie");
});
