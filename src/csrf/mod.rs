//! CSRF protection compatible with Django's wire format (SPEC §6).
//!
//! Unsafe requests (anything but GET, HEAD, OPTIONS, TRACE) pass, in order:
//! 1. Fetch metadata: `Sec-Fetch-Site: same-origin|none` passes; `same-site|cross-site` only with
//!    a trusted `Origin`.
//! 2. Else `Origin`: the gateway's public origin or a trusted origin.
//! 3. Else, over HTTPS: a `Referer` that is https and same-origin or trusted.
//! 4. The token: the `csrftoken` cookie (Django's 32-character secret) must be present and the
//!    `X-CSRFToken` header (or `csrfmiddlewaretoken` form field) must carry the same secret, raw
//!    or masked, compared in constant time.
//! 5. Once logged in, the secret must also equal the one bound to the server-side session, so a
//!    cookie planted by a sibling subdomain or over plain HTTP cannot pass (double-submit alone
//!    is not enough).
//!
//! [`origin`] and [`token`] are pure; [`layer`] is the axum middleware.

pub mod layer;
pub mod origin;
pub mod token;

use std::fmt;

pub use token::{mask, new_secret};

/// Why the token step failed; `Display` is the problem's `detail` (Django's wording).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenFailure {
    NoCookie,
    BadCookie(token::FormatError),
    Missing,
    BadToken { source: String, why: token::FormatError },
    Incorrect { source: String },
    NotBoundToSession,
}

impl fmt::Display for TokenFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenFailure::NoCookie => f.write_str("CSRF cookie not set."),
            TokenFailure::BadCookie(why) => write!(f, "CSRF cookie {why}."),
            TokenFailure::Missing => f.write_str("CSRF token missing."),
            TokenFailure::BadToken { source, why } => write!(f, "CSRF token from {source} {why}."),
            TokenFailure::Incorrect { source } => write!(f, "CSRF token from {source} incorrect."),
            TokenFailure::NotBoundToSession => {
                f.write_str("CSRF token does not belong to this session; fetch a new one from the csrf endpoint.")
            }
        }
    }
}

impl TokenFailure {
    /// A short label for metrics and the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenFailure::NoCookie => "no_cookie",
            TokenFailure::BadCookie(_) => "bad_cookie",
            TokenFailure::Missing => "missing_token",
            TokenFailure::BadToken { .. } => "bad_token",
            TokenFailure::Incorrect { .. } => "incorrect_token",
            TokenFailure::NotBoundToSession => "not_bound_to_session",
        }
    }
}

/// The secret a well-formed cookie carries (a 64-character masked cookie, as older Django wrote,
/// is unmasked).
pub fn cookie_secret(cookie: &str) -> Result<String, token::FormatError> {
    token::check_format(cookie)?;
    Ok(if cookie.len() == token::TOKEN_LENGTH { token::unmask(cookie) } else { cookie.to_owned() })
}

/// Step 4 and 5: does the submitted token carry the cookie's secret (and the session's)?
/// `source` names where the token came from, for the message.
pub fn verify_token(
    cookie: Option<&str>,
    submitted: Option<&str>,
    source: &str,
    session_secret: Option<&str>,
) -> Result<(), TokenFailure> {
    let cookie = cookie.ok_or(TokenFailure::NoCookie)?;
    let secret = cookie_secret(cookie).map_err(TokenFailure::BadCookie)?;
    let submitted = submitted.filter(|s| !s.is_empty()).ok_or(TokenFailure::Missing)?;
    token::check_format(submitted).map_err(|why| TokenFailure::BadToken { source: source.into(), why })?;
    if !token::matches(submitted, &secret) {
        return Err(TokenFailure::Incorrect { source: source.into() });
    }
    if let Some(bound) = session_secret
        && !token::matches(submitted, bound)
    {
        return Err(TokenFailure::NotBoundToSession);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::headers::is_safe;

    const SECRET: &str = "Olizgf4c5dMrs969UdsFa5miq0oEthhH";
    const MASKED: &str = "UJT4GcSfy8oQ35qgPp1GKAwamMdSczJ9yU1tMhMhtb07l4mfzsjbKvIiCCrmvGQG";
    const SRC: &str = "the 'X-CSRFToken' HTTP header";

    #[test]
    fn accepts_raw_and_masked() {
        assert_eq!(verify_token(Some(SECRET), Some(SECRET), SRC, None), Ok(()));
        assert_eq!(verify_token(Some(SECRET), Some(MASKED), SRC, None), Ok(()));
        assert_eq!(verify_token(Some(SECRET), Some(MASKED), SRC, Some(SECRET)), Ok(()));
    }

    #[test]
    fn each_failure_has_its_reason() {
        assert_eq!(verify_token(None, Some(MASKED), SRC, None), Err(TokenFailure::NoCookie));
        assert_eq!(
            verify_token(Some("short"), Some(MASKED), SRC, None),
            Err(TokenFailure::BadCookie(token::FormatError::IncorrectLength))
        );
        assert_eq!(verify_token(Some(SECRET), None, SRC, None), Err(TokenFailure::Missing));
        assert!(matches!(
            verify_token(Some(SECRET), Some("abc"), SRC, None),
            Err(TokenFailure::BadToken { why: token::FormatError::IncorrectLength, .. })
        ));
        assert!(matches!(
            verify_token(Some(SECRET), Some(&"!".repeat(64)), SRC, None),
            Err(TokenFailure::BadToken { why: token::FormatError::InvalidCharacters, .. })
        ));
        assert!(matches!(
            verify_token(Some(SECRET), Some(&"a".repeat(64)), SRC, None),
            Err(TokenFailure::Incorrect { .. })
        ));
        let other = new_secret();
        assert_eq!(verify_token(Some(SECRET), Some(MASKED), SRC, Some(&other)), Err(TokenFailure::NotBoundToSession));
        assert_eq!(
            TokenFailure::Incorrect { source: SRC.into() }.to_string(),
            "CSRF token from the 'X-CSRFToken' HTTP header incorrect."
        );
    }

    #[test]
    fn safe_methods_are_exactly_four() {
        use http::Method;
        for m in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert!(is_safe(&m));
        }
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::CONNECT] {
            assert!(!is_safe(&m));
        }
        assert!(!is_safe(&Method::from_bytes(b"PROPFIND").unwrap()));
    }
}
