//! CSRF token parsing and unmasking (`csrf::token`, `csrf::verify_token`): never panics, and the
//! decisions agree with each other. Input: cookie, submitted token and session secret separated
//! by newlines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiongate::csrf::{self, token};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\n');
    let cookie = parts.next();
    let submitted = parts.next();
    let bound = parts.next();

    let verdict = csrf::verify_token(cookie, submitted, "the 'X-CSRFToken' HTTP header", bound);
    if verdict.is_ok() {
        // Accepted: the cookie and the token are well-formed and carry the same secret.
        let secret = csrf::cookie_secret(cookie.unwrap()).expect("accepted cookie is well-formed");
        let submitted = submitted.unwrap();
        assert!(token::check_format(submitted).is_ok());
        assert!(token::matches(submitted, &secret));
        if let Some(b) = bound {
            assert!(token::matches(submitted, b));
        }
    }
    for candidate in [cookie, submitted, bound].into_iter().flatten() {
        if token::check_format(candidate).is_ok() {
            let secret = if candidate.len() == token::TOKEN_LENGTH { token::unmask(candidate) } else { candidate.into() };
            assert_eq!(secret.len(), token::SECRET_LENGTH);
            assert!(token::check_format(&secret).is_ok());
            // Masking round-trips.
            let masked = token::mask(&secret);
            assert_eq!(token::unmask(&masked), secret);
            assert!(token::matches(&masked, &secret));
            assert!(token::matches(candidate, &secret));
        }
    }
});
