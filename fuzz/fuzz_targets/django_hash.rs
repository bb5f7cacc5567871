//! Django's password hash formats (`password::django::verify`, `identify`): any stored string
//! verifies or not, never panics. Input: password, newline, encoded hash. Strings naming a
//! cost above a few milliseconds are skipped (the verifier's own upper bounds are large, by
//! design, and unit-tested) — judged on the cost fields only, so salts and digests may hold any
//! digits: PBKDF2 iterations and scrypt's N, r, p at most 1000, bcrypt's cost at most 5,
//! Argon2's m at most 1024 KiB and t, p at most 4.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessiongate::password::django;

fn cheap(encoded: &str) -> bool {
    let fields: Vec<&str> = encoded.split('$').collect();
    let small = |f: &str, max: u32| f.len() <= 4 && f.parse::<u32>().is_ok_and(|n| n <= max);
    let algorithm = fields[0];
    if algorithm.starts_with("pbkdf2") {
        fields.get(1).is_none_or(|f| small(f, 1000))
    } else if algorithm == "scrypt" {
        [1, 3, 4].iter().all(|&i| fields.get(i).is_none_or(|f| small(f, 1000)))
    } else if algorithm.starts_with("bcrypt") {
        // `bcrypt$$2b$12$…`: the cost follows the `2a`/`2b`/`2y` field.
        fields.windows(2).filter(|w| w[0].len() == 2 && w[0].starts_with('2')).all(|w| small(w[1], 5))
    } else if algorithm == "argon2" {
        // `argon2$argon2id$v=19$m=…,t=…,p=…$salt$hash`
        fields.iter().filter(|f| f.contains('=')).flat_map(|f| f.split(',')).all(|kv| match kv.split_once('=') {
            Some(("m", v)) => small(v, 1024),
            Some(("t" | "p", v)) => small(v, 4),
            _ => true,
        })
    } else {
        true
    }
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
