//! Django's password hash formats (`password::django::verify`, `identify`): any stored string
//! verifies or not, never panics. Input: password, newline, encoded hash. Strings naming a
//! cost above a few milliseconds are skipped (the verifier's own upper bounds are large, by
//! design, and unit-tested): every number in the hash must be at most 1000, and bcrypt's cost
//! at most 5.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiongate::password::django;

fn cheap(encoded: &str) -> bool {
    let bcrypt = encoded.contains("bcrypt") || encoded.contains("$2");
    encoded
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .all(|t| t.len() <= 4 && t.parse::<u32>().is_ok_and(|n| n <= if bcrypt { 5 } else { 1000 }))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (password, encoded) = text.split_once('\n').unwrap_or(("", text));
    let _ = django::identify(encoded);
    let _ = django::is_django_hash(encoded);
    if cheap(encoded) {
        let _ = django::verify(password, encoded);
    }
    // What we write always verifies.
    if password.len() <= 64 {
        let mine = django::encode_pbkdf2_sha256(password, 1);
        assert!(django::verify(password, &mine));
    }
});
