//! Method overrides: the headers and the `_method` parameter that frameworks (Express
//! `method-override`, Rails, Symfony, ASP.NET, Spring's `HiddenHttpMethodFilter`) read to run a
//! request as another method. A cross-site `GET` an upstream would run as a `DELETE` has passed
//! no CSRF check: the proxy strips them from safe requests, forward auth treats an unsafe one as
//! an unsafe request. Pure.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};

/// Headers that frameworks (Express `method-override`, Rails, Symfony, ASP.NET, Spring's
/// `HiddenHttpMethodFilter` for `_method`) read to turn a request into another method.
const METHOD_OVERRIDES: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// Remove every method-override header, in any case and with `_` for `-` (WSGI and CGI map both
/// to one variable). Used on safe requests: a cross-site `GET` that an upstream would run as a
/// `DELETE` has passed no CSRF check.
pub fn strip_method_override(h: &mut HeaderMap) {
    for name in &METHOD_OVERRIDES {
        h.remove(name);
    }
    if h.keys().any(|k| k.as_str().contains('_')) {
        super::headers::remove_where(h, |k| {
            METHOD_OVERRIDES.iter().any(|o| o.as_str().bytes().eq(k.bytes().map(|c| if c == b'_' { b'-' } else { c })))
        });
    }
}

/// Whether a method-override header in `h` names a method that needs CSRF checks (an
/// unparsable one counts as unsafe).
pub fn overrides_to_unsafe(h: &HeaderMap) -> bool {
    METHOD_OVERRIDES
        .iter()
        .flat_map(|n| h.get_all(n))
        .any(|v| http::Method::from_bytes(v.as_bytes().trim_ascii()).map_or(true, |m| !super::headers::is_safe(&m)))
}

/// Whether `query` has a `_method` parameter (spelled as [`strip_method_override_param`] reads
/// it).
pub fn has_method_override_param(query: &str) -> bool {
    !matches!(strip_method_override_param(query), Some(Cow::Borrowed(_))) && !query.is_empty()
}

/// `query` without `_method` parameters (name compared decoded and case-insensitively, also
/// `_method[…]` as PHP-style parsers read it); `None` when nothing is left.
pub fn strip_method_override_param(query: &str) -> Option<Cow<'_, str>> {
    let is_override = |pair: &str| {
        let name = pair.split('=').next().unwrap_or_default();
        let decoded = percent_encoding::percent_decode_str(name).collect::<Vec<u8>>();
        let name = decoded.as_slice().trim_ascii();
        let stem = name.iter().position(|&c| c == b'[').map_or(name, |i| &name[..i]);
        stem.eq_ignore_ascii_case(b"_method")
    };
    // `_` and its escape `%5F` are the only ways to spell the name: most queries stop here.
    if !query.bytes().any(|c| c == b'_' || c == b'%') || !query.split('&').any(is_override) {
        return (!query.is_empty()).then_some(Cow::Borrowed(query));
    }
    let kept: Vec<&str> = query.split('&').filter(|p| !is_override(p)).collect();
    (!kept.is_empty()).then(|| Cow::Owned(kept.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::http::headers::test_maps::{map, names};

    #[test]
    fn method_override_headers_go_in_every_spelling() {
        let mut h = map(&[
            ("x-http-method-override", "DELETE"),
            ("X-HTTP-Method", "PUT"),
            ("x-method-override", "PATCH"),
            ("x_http_method_override", "DELETE"),
            ("X_Method_Override", "DELETE"),
            ("x-http-method-overrides", "keep"),
            ("x_request_id", "keep"),
            ("accept", "*/*"),
        ]);
        assert!(overrides_to_unsafe(&h));
        strip_method_override(&mut h);
        assert_eq!(names(&h), ["accept", "x-http-method-overrides", "x_request_id"]);
        assert!(!overrides_to_unsafe(&h));
        // Method names are case-sensitive: `head` is some other method, so it gets the checks.
        for (v, unsafe_) in [
            ("GET", false),
            (" HEAD ", false),
            ("OPTIONS", false),
            ("post", true),
            ("head", true),
            ("", true),
            ("G E T", true),
        ] {
            assert_eq!(overrides_to_unsafe(&map(&[("x-http-method", v)])), unsafe_, "{v:?}");
        }
    }

    #[test]
    fn method_override_parameters_go() {
        let strip = |q: &str| strip_method_override_param(q).map(Cow::into_owned);
        assert_eq!(strip("a=1&b=2").as_deref(), Some("a=1&b=2"));
        assert_eq!(strip("").as_deref(), None);
        assert_eq!(strip("_method=DELETE").as_deref(), None);
        assert_eq!(strip("a=1&_method=DELETE&b=%20").as_deref(), Some("a=1&b=%20"));
        for spelling in
            ["_METHOD", "_Method", "%5Fmethod", "%5fMETHOD", "_%6Dethod", "_method[]", "_method[0]", "_method"]
        {
            assert_eq!(strip(&format!("x=1&{spelling}=PUT")).as_deref(), Some("x=1"), "{spelling}");
        }
        assert_eq!(strip("_method&x").as_deref(), Some("x"), "no value is still the name");
        assert_eq!(strip("_methods=1&x_method=2&method=3").as_deref(), Some("_methods=1&x_method=2&method=3"));
        assert!(matches!(strip_method_override_param("a=1&x_y=2"), Some(Cow::Borrowed(_))));
        assert!(has_method_override_param("a=1&_Method=DELETE") && has_method_override_param("%5fmethod=PUT"));
        assert!(!has_method_override_param("a=1&x_y=2") && !has_method_override_param(""));
    }
}
