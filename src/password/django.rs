//! Django password hashes.
//!
//! Lets sessiongate authenticate users straight out of an existing Django user table without
//! migrating their hashes first: every hasher Django 5.2 ships (PBKDF2-SHA256/SHA1, Argon2,
//! bcrypt, bcrypt-SHA256, scrypt, salted MD5) is verified here, and [`encode_pbkdf2_sha256`]
//! writes hashes Django itself still accepts, so both systems can share the table while it moves.
//!
//! Verification mirrors Django's own rule: re-encode with the stored parameters and compare the
//! whole encoding, so anything Django would reject (non-canonical numbers, odd padding) is
//! rejected here too. Costs come from the database, so they are capped: a tampered row can
//! slow its own login by seconds but cannot pin a thread for hours or demand unbounded memory.
//!
//! Everything is synchronous and CPU-bound; run it on a blocking thread.

use argon2::password_hash::PasswordHash;
use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD, STANDARD};
use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Which Django hasher produced a hash string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Pbkdf2Sha256,
    Pbkdf2Sha1,
    Argon2,
    BcryptSha256,
    Bcrypt,
    Scrypt,
    Md5,
}

/// Upper bounds on stored cost parameters. Generous next to Django's defaults (1M PBKDF2
/// iterations, Argon2 m=100 MiB t=2, bcrypt 12, scrypt n=2^14 r=8 p=5) yet finite: the worst
/// accepted hash costs about 10 s of one core (release build) and at most 1 GiB of memory.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
const MAX_ARGON2_MEMORY_KIB: u32 = 1 << 20;
/// Memory (KiB) times passes: 4 passes over 1 GiB, or 40 over Django's 100 MiB.
const MAX_ARGON2_WORK: u64 = 4 << 20;
const MAX_ARGON2_LANES: u32 = 255;
const MAX_BCRYPT_COST: u32 = 16;
const MAX_SCRYPT_LOG_N: u32 = 20;
const MAX_SCRYPT_R: u32 = 32;
const MAX_SCRYPT_P: u32 = 16;
const MAX_SCRYPT_MEMORY_BYTES: u64 = 1 << 30;
/// Memory times lanes (128·n·r·p bytes), as for Argon2: 4 lanes at the memory cap.
const MAX_SCRYPT_WORK_BYTES: u64 = 4 << 30;
const SCRYPT_DKLEN: usize = 64;

/// Django's `get_random_string` alphabet and the salt length its PBKDF2 hasher uses
/// (128 bits of entropy).
const SALT_ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SALT_LEN: usize = 22;

/// bcrypt's own base64 alphabet; strict about trailing bits, as pyca/bcrypt is.
const BCRYPT_B64: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::BCRYPT, NO_PAD);

/// Returns Some(algorithm) if `encoded` looks like a Django hash ("algo$..."), None otherwise
/// (including unusable passwords starting with '!').
///
/// Only the prefix is inspected; [`verify`] does the full parsing.
#[must_use]
pub fn identify(encoded: &str) -> Option<Algorithm> {
    let (prefix, _) = encoded.split_once('$')?;
    Some(match prefix {
        "pbkdf2_sha256" => Algorithm::Pbkdf2Sha256,
        "pbkdf2_sha1" => Algorithm::Pbkdf2Sha1,
        "argon2" => Algorithm::Argon2,
        "bcrypt_sha256" => Algorithm::BcryptSha256,
        "bcrypt" => Algorithm::Bcrypt,
        "scrypt" => Algorithm::Scrypt,
        "md5" => Algorithm::Md5,
        _ => return None,
    })
}

/// Verify `password` against a Django-encoded hash. Returns false for unusable ("!..."),
/// malformed or unknown formats — never panics, whatever the input (fuzzers will hit it).
/// All digest comparisons in constant time (`subtle::ConstantTimeEq`).
///
/// Stored costs above this module's bounds are refused (false) rather than computed.
#[must_use]
pub fn verify(password: &str, encoded: &str) -> bool {
    let (Some(algorithm), Some((_, rest))) = (identify(encoded), encoded.split_once('$')) else {
        return false;
    };
    let password = password.as_bytes();
    match algorithm {
        Algorithm::Pbkdf2Sha256 | Algorithm::Pbkdf2Sha1 => verify_pbkdf2(algorithm, password, rest),
        Algorithm::Argon2 => verify_argon2(password, rest),
        // Django pre-hashes so bcrypt's 72-byte truncation cannot bite.
        Algorithm::BcryptSha256 => verify_bcrypt(hex_lower(&Sha256::digest(password)).as_bytes(), rest),
        Algorithm::Bcrypt => verify_bcrypt(password, rest),
        Algorithm::Scrypt => verify_scrypt(password, rest),
        Algorithm::Md5 => verify_md5(password, rest),
    }
}

/// Encode `password` as Django's `pbkdf2_sha256` with `iterations` and a fresh random 22-char salt
/// (Django's salt alphabet a-zA-Z0-9), format `"pbkdf2_sha256$<iter>$<salt>$<base64 std digest>"`.
///
/// `iterations` is clamped to `1..=10_000_000`, the range [`verify`] accepts, so the result
/// always verifies.
///
/// # Panics
///
/// If the operating system's random number generator fails; there is no safe salt without it.
#[must_use]
pub fn encode_pbkdf2_sha256(password: &str, iterations: u32) -> String {
    let iterations = iterations.clamp(1, MAX_PBKDF2_ITERATIONS);
    let salt = random_salt();
    let digest = pbkdf2_digest(Algorithm::Pbkdf2Sha256, password.as_bytes(), &salt, iterations);
    format!("pbkdf2_sha256${iterations}${salt}${}", STANDARD.encode(digest))
}

/// True when `encoded` is in one of the Django formats this module reads, i.e.
/// `identify(encoded).is_some()`. Callers use it to rehash into sessiongate's native format
/// after a successful [`verify`].
#[must_use]
pub fn is_django_hash(encoded: &str) -> bool {
    identify(encoded).is_some()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Parses a decimal exactly as Django's `"%d"` writes it: Django compares whole re-encoded
/// strings, so "+5", "05" or " 5" never verify there and must not here.
fn parse_canonical_u32(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    s.parse().ok()
}

fn random_salt() -> String {
    let mut salt = String::with_capacity(SALT_LEN);
    let mut buf = [0u8; 32];
    while salt.len() < SALT_LEN {
        getrandom::fill(&mut buf).expect("OS random number generator failed");
        // 248 = 4 * 62: dropping bytes above it keeps every character equally likely.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if salt.len() == SALT_LEN {
                break;
            }
            salt.push(char::from(SALT_ALPHABET[usize::from(b % 62)]));
        }
    }
    salt
}

/// ring's PBKDF2: a non-generic, always-optimised implementation. (The generic `pbkdf2` crate is
/// monomorphised into this crate, so unoptimised builds took ~5 s for Django's 1,000,000
/// iterations instead of ~0.3 s.)
fn pbkdf2_digest(algorithm: Algorithm, password: &[u8], salt: &str, iterations: u32) -> Vec<u8> {
    let (prf, len) = if algorithm == Algorithm::Pbkdf2Sha1 {
        (ring::pbkdf2::PBKDF2_HMAC_SHA1, 20)
    } else {
        (ring::pbkdf2::PBKDF2_HMAC_SHA256, 32)
    };
    let mut out = vec![0u8; len];
    let Some(iterations) = std::num::NonZeroU32::new(iterations) else {
        return out; // callers refuse 0 first; never a valid digest
    };
    ring::pbkdf2::derive(prf, iterations, salt.as_bytes(), password, &mut out);
    out
}

/// `<iterations>$<salt>$<b64 digest>`
fn verify_pbkdf2(algorithm: Algorithm, password: &[u8], rest: &str) -> bool {
    let mut parts = rest.splitn(3, '$');
    let (Some(iterations), Some(salt), Some(stored)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Some(iterations) = parse_canonical_u32(iterations) else {
        return false;
    };
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS || salt.is_empty() {
        return false;
    }
    let computed = STANDARD.encode(pbkdf2_digest(algorithm, password, salt, iterations));
    ct_eq(computed.as_bytes(), stored.as_bytes())
}

/// `<salt>$<hex md5(salt + password)>`
fn verify_md5(password: &[u8], rest: &str) -> bool {
    let Some((salt, stored)) = rest.split_once('$') else {
        return false;
    };
    // Empty salt is the old unsalted_md5 form, which Django 5.x no longer accepts.
    if salt.is_empty() {
        return false;
    }
    let digest = Md5::new_with_prefix(salt.as_bytes()).chain_update(password).finalize();
    ct_eq(hex_lower(&digest).as_bytes(), stored.as_bytes())
}

/// `<n>$<salt>$<r>$<p>$<b64 of 64-byte key>` (Django's order: n comes before the salt).
fn verify_scrypt(password: &[u8], rest: &str) -> bool {
    let fields: Vec<&str> = rest.split('$').collect();
    let [n, salt, r, p, stored] = fields[..] else {
        return false;
    };
    let (Some(n), Some(r), Some(p)) = (parse_canonical_u32(n), parse_canonical_u32(r), parse_canonical_u32(p)) else {
        return false;
    };
    // OpenSSL, which Django goes through, requires n to be a power of two above 1.
    if n < 2 || !n.is_power_of_two() || salt.is_empty() {
        return false;
    }
    let log_n = n.trailing_zeros();
    if log_n > MAX_SCRYPT_LOG_N
        || !(1..=MAX_SCRYPT_R).contains(&r)
        || !(1..=MAX_SCRYPT_P).contains(&p)
        || 128 * u64::from(n) * u64::from(r) > MAX_SCRYPT_MEMORY_BYTES
        || 128 * u64::from(n) * u64::from(r) * u64::from(p) > MAX_SCRYPT_WORK_BYTES
    {
        return false;
    }
    let Ok(log_n) = u8::try_from(log_n) else {
        return false;
    };
    let Ok(params) = scrypt::Params::new(log_n, r, p, SCRYPT_DKLEN) else {
        return false;
    };
    let mut key = [0u8; SCRYPT_DKLEN];
    if scrypt::scrypt(password, salt.as_bytes(), &params, &mut key).is_err() {
        return false;
    }
    ct_eq(STANDARD.encode(key).as_bytes(), stored.as_bytes())
}

/// `$2b$<cost>$<22-char salt><31-char hash>`. Rebuilds the string the way pyca/bcrypt's
/// `hashpw` does (same crate underneath) and compares it whole, as Django does.
fn verify_bcrypt(password: &[u8], data: &str) -> bool {
    let b = data.as_bytes();
    if b.len() != 60 || b[0] != b'$' || b[3] != b'$' || b[6] != b'$' {
        return false;
    }
    let version = match &b[1..3] {
        b"2a" => bcrypt::Version::TwoA,
        b"2b" => bcrypt::Version::TwoB,
        b"2x" => bcrypt::Version::TwoX,
        b"2y" => bcrypt::Version::TwoY,
        _ => return false,
    };
    if !b[4].is_ascii_digit() || !b[5].is_ascii_digit() {
        return false;
    }
    let cost = u32::from(b[4] - b'0') * 10 + u32::from(b[5] - b'0');
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return false;
    }
    let Ok(salt) = BCRYPT_B64.decode(&b[7..29]) else {
        return false;
    };
    let Ok(salt) = <[u8; 16]>::try_from(salt) else {
        return false;
    };
    // Truncates at 72 bytes, like the pyca/bcrypt releases that wrote these hashes.
    let Ok(parts) = bcrypt::hash_with_salt(password, cost, salt) else {
        return false;
    };
    ct_eq(parts.format_for_version(version).as_bytes(), b)
}

/// `argon2id$v=19$m=..,t=..,p=..$<salt>$<hash>`: Django's "argon2" prefix followed by an
/// argon2-cffi PHC string whose leading '$' is the separator already consumed.
fn verify_argon2(password: &[u8], rest: &str) -> bool {
    let phc = format!("${rest}");
    let Ok(hash) = PasswordHash::new(&phc) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    // No "v=" means a pre-1.3 hash; libargon2 (behind argon2-cffi) reads that as 0x10.
    let version = match hash.version.map(argon2::Version::try_from) {
        None => argon2::Version::V0x10,
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    // libargon2's parser knows only m, t, p; keyid/data would change the hash if let through.
    if hash.params.iter().any(|(name, _)| !matches!(name.as_str(), "m" | "t" | "p")) {
        return false;
    }
    let Ok(params) = argon2::Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_ARGON2_MEMORY_KIB
        || u64::from(params.m_cost()) * u64::from(params.t_cost()) > MAX_ARGON2_WORK
        || params.p_cost() > MAX_ARGON2_LANES
    {
        return false;
    }
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let expected = expected.as_bytes();
    let mut computed = vec![0u8; expected.len()];
    let argon2 = argon2::Argon2::new(algorithm, version, params);
    if argon2.hash_password_into(password, salt, &mut computed).is_err() {
        return false;
    }
    ct_eq(&computed, expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    // From /work/shared/vectors/django.json, produced by Django 5.2.19.
    const PASSWORD: &str = "correct horse battery staple";
    const WRONG_PASSWORD: &str = "correct horse battery staple!";
    const PBKDF2_SHA256: &str =
        "pbkdf2_sha256$1000000$Faey3fjgK8VeGWYcIHrKbQ$hfUmua5mZzqQ2Fj2pXf4klExZcDwWHSNXQvzK3P6unY=";
    const ARGON2: &str = "argon2$argon2id$v=19$m=102400,t=2,p=8$eHZ4Mklzc2ZPV0lPRE1UR3JCYkFtQg$5aBs/3dU3/YudnntfnBYIHo6qqrTd85dkkWUUM5N0Xw";
    const BCRYPT_SHA256: &str = "bcrypt_sha256$$2b$12$px6iWEsUT5L5RcTDOMfXFOrbcIPzlf6X1F3oXm5pgbO49vFfUioUC";
    const SCRYPT: &str = "scrypt$16384$xfGueIpioWje5PLHx57BeQ$8$5$ZR+rfp6UUXMik86cZAsFh2Fs7YpVrJX7OLr4ZXNyHJJnFtmiUiW2uVqqWei0MTR/7GI4dst3WYUcK2DgAZ0Qhg==";
    const PBKDF2_SHA1: &str = "pbkdf2_sha1$100000$seasalt1234567890abcde$8D2Vl/WTKu+ZWPaLCNDSrrchRAI=";
    const MD5: &str = "md5$seasalt1234567890abcde$72452284d1e205e34f9cbe6b4848e235";
    const BCRYPT: &str = "bcrypt$$2b$12$VItRuLpsFn6/buw7xhkageI4hNGfUoC2aHEm3AlLGlEv4xP9WpvTa";
    const UNUSABLE: &str = "!fkEkQv2B68FUUMnzXQwXmFawHDjJeZh6SWrCO0ue";

    // From Django's own test suite (tests/auth_tests/test_hashers.py), non-ASCII password.
    const LETMEIN: &str = "lètmein";
    const DJANGO_SUITE_LETMEIN: [&str; 3] = [
        "pbkdf2_sha256$600000$seasalt2$OSllgFdJjYQjb0RfMzrx8u0XYl4Fkt+wKpI1yq4lZlo=",
        "pbkdf2_sha1$600000$seasalt2$2CLsaL1MZhq6JOG6QOHtVbiopHE=",
        "md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3",
    ];
    // Same suite, password "secret": argon2i without and with a version field.
    const ARGON2I_NO_VERSION: &str = "argon2$argon2i$m=8,t=1,p=1$c29tZXNhbHQ$gwQOXSNhxiOxPOA0+PY10P9QFO4NAYysnqRt1GSQLE55m+2GYDt9FEjPMHhP2Cuf0nOEXXMocVrsJAtNSsKyfg";
    const ARGON2I_V19: &str = "argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q";

    fn assert_vector(encoded: &str, algorithm: Algorithm) {
        assert_eq!(identify(encoded), Some(algorithm));
        assert!(is_django_hash(encoded));
        assert!(verify(PASSWORD, encoded), "{encoded} should verify");
        assert!(!verify(WRONG_PASSWORD, encoded), "{encoded} accepted the wrong password");
    }

    #[test]
    fn django_pbkdf2_sha256() {
        assert_vector(PBKDF2_SHA256, Algorithm::Pbkdf2Sha256);
    }

    #[test]
    fn django_pbkdf2_sha1() {
        assert_vector(PBKDF2_SHA1, Algorithm::Pbkdf2Sha1);
    }

    #[test]
    fn django_argon2() {
        assert_vector(ARGON2, Algorithm::Argon2);
    }

    #[test]
    fn django_bcrypt_sha256() {
        assert_vector(BCRYPT_SHA256, Algorithm::BcryptSha256);
    }

    #[test]
    fn django_bcrypt() {
        assert_vector(BCRYPT, Algorithm::Bcrypt);
    }

    #[test]
    fn django_scrypt() {
        assert_vector(SCRYPT, Algorithm::Scrypt);
    }

    #[test]
    fn django_md5() {
        assert_vector(MD5, Algorithm::Md5);
    }

    #[test]
    fn django_suite_vectors() {
        for encoded in DJANGO_SUITE_LETMEIN {
            assert!(verify(LETMEIN, encoded), "{encoded}");
            assert!(!verify("lètmeinz", encoded), "{encoded}");
        }
        for encoded in [ARGON2I_NO_VERSION, ARGON2I_V19] {
            assert!(verify("secret", encoded), "{encoded}");
            assert!(!verify("wrong", encoded), "{encoded}");
        }
        // An explicit v=19 where the hash was made with 0x10 must not verify.
        let forced = ARGON2I_NO_VERSION.replacen("argon2i$", "argon2i$v=19$", 1);
        assert!(!verify("secret", &forced));
    }

    #[test]
    fn unusable_never_verifies() {
        assert_eq!(identify(UNUSABLE), None);
        assert!(!is_django_hash(UNUSABLE));
        for password in ["", PASSWORD, UNUSABLE, "!"] {
            assert!(!verify(password, UNUSABLE));
        }
        let bang_prefixed = format!("!{PBKDF2_SHA1}");
        assert!(!verify(PASSWORD, &bang_prefixed));
    }

    #[test]
    fn identify_formats() {
        assert_eq!(identify("bcrypt$$2b$04$x"), Some(Algorithm::Bcrypt));
        assert_eq!(identify("bcrypt_sha256$x"), Some(Algorithm::BcryptSha256));
        assert_eq!(identify("argon2$"), Some(Algorithm::Argon2));
        assert_eq!(identify("pbkdf2_sha256"), None);
        assert_eq!(identify("sha1$seasalt$cff36ea83f5706ce9aa7454e63e431fc726b2dc8"), None);
        assert_eq!(identify("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q"), None);
        assert_eq!(identify("PBKDF2_SHA256$1$a$b"), None);
        assert_eq!(identify(""), None);
    }

    #[test]
    fn encode_round_trip() {
        let encoded = encode_pbkdf2_sha256(PASSWORD, 1000);
        let parts: Vec<&str> = encoded.split('$').collect();
        assert_eq!(parts.len(), 4, "{encoded}");
        assert_eq!(parts[0], "pbkdf2_sha256");
        assert_eq!(parts[1], "1000");
        assert_eq!(parts[2].len(), SALT_LEN);
        assert!(parts[2].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(STANDARD.decode(parts[3]).map(|d| d.len()), Ok(32));
        assert_eq!(identify(&encoded), Some(Algorithm::Pbkdf2Sha256));
        assert!(verify(PASSWORD, &encoded));
        assert!(!verify(WRONG_PASSWORD, &encoded));

        let unicode = encode_pbkdf2_sha256(LETMEIN, 1000);
        assert!(verify(LETMEIN, &unicode));
        assert!(!verify("letmein", &unicode));

        let other = encode_pbkdf2_sha256(PASSWORD, 1000);
        assert_ne!(encoded, other, "salts must differ");

        assert!(encode_pbkdf2_sha256("x", 0).starts_with("pbkdf2_sha256$1$"));
        assert!(verify("x", &encode_pbkdf2_sha256("x", 0)));
    }

    /// A Django-format scrypt string with small costs, for cheap tests.
    fn cheap_scrypt(password: &str, salt: &str, log_n: u8, r: u32, p: u32) -> String {
        let params = scrypt::Params::new(log_n, r, p, 64).unwrap();
        let mut key = [0u8; 64];
        scrypt::scrypt(password.as_bytes(), salt.as_bytes(), &params, &mut key).unwrap();
        format!("scrypt${}${salt}${r}${p}${}", 1u32 << log_n, STANDARD.encode(key))
    }

    fn cheap_bcrypt(password: &[u8]) -> String {
        let parts = bcrypt::hash_with_result(password, 4).unwrap();
        format!("bcrypt${}", parts.format_for_version(bcrypt::Version::TwoB))
    }

    fn cheap_bcrypt_sha256(password: &str) -> String {
        let prehashed = hex_lower(&Sha256::digest(password.as_bytes()));
        let parts = bcrypt::hash_with_result(prehashed, 4).unwrap();
        format!("bcrypt_sha256${}", parts.format_for_version(bcrypt::Version::TwoB))
    }

    #[test]
    fn bcrypt_truncation_matches_django() {
        let long = "x".repeat(100);
        // Legacy bcrypt: only the first 72 bytes count.
        let plain = cheap_bcrypt(long.as_bytes());
        assert!(verify(&long, &plain));
        assert!(verify(&long[..72], &plain));
        assert!(!verify(&long[..71], &plain));
        // bcrypt_sha256: the whole password counts.
        let prehashed = cheap_bcrypt_sha256(&long);
        assert!(verify(&long, &prehashed));
        assert!(!verify(&long[..72], &prehashed));
    }

    #[test]
    fn bcrypt_versions_and_strictness() {
        let parts = bcrypt::hash_with_result("pw", 4).unwrap();
        for version in [bcrypt::Version::TwoA, bcrypt::Version::TwoB, bcrypt::Version::TwoX, bcrypt::Version::TwoY] {
            let encoded = format!("bcrypt${}", parts.format_for_version(version));
            assert!(verify("pw", &encoded), "{encoded}");
            assert!(!verify("pW", &encoded), "{encoded}");
        }
        let cheap = format!("bcrypt${}", parts.format_for_version(bcrypt::Version::TwoB));
        // Django compares whole strings, so a changed version or cost never verifies.
        assert!(!verify("pw", &cheap.replacen("$04$", "$05$", 1)));
        assert!(!verify("pw", &cheap.replacen("$04$", "$4$", 1)));
        assert!(!verify("pw", &cheap.replacen("$2b$", "$2c$", 1)));
        assert!(!verify("pw", &format!("{cheap}x")));
        assert!(!verify("pw", &cheap[..cheap.len() - 1]));
    }

    #[test]
    fn scrypt_self_made() {
        let encoded = cheap_scrypt("pw", "salty", 4, 8, 1);
        assert!(verify("pw", &encoded));
        assert!(!verify("pW", &encoded));
        assert!(!verify("pw", &encoded.replacen("$16$", "$32$", 1)));
        assert!(!verify("pw", &encoded.replacen("$16$", "$016$", 1)));
    }

    fn assert_rejected_fast(encoded: &str) {
        let start = Instant::now();
        assert!(!verify(PASSWORD, encoded), "{encoded:?} verified");
        assert!(!verify("", encoded), "{encoded:?} verified");
        assert!(start.elapsed() < Duration::from_secs(2), "{encoded:?} was not refused up front");
    }

    #[test]
    fn garbage_is_rejected() {
        let cases = [
            "",
            "$",
            "$$",
            "!",
            "pbkdf2_sha256",
            "pbkdf2_sha256$",
            "pbkdf2_sha256$$$",
            "pbkdf2_sha256$abc$salt$x",
            "pbkdf2_sha256$1000$salt",
            "pbkdf2_sha256$1000$$x",
            "pbkdf2_sha256$-1$salt$x",
            "pbkdf2_sha256$+1000$salt$x",
            "pbkdf2_sha256$1000 $salt$x",
            "pbkdf2_sha256$0$salt$x",
            "pbkdf2_sha256$99999999999999999999$salt$x",
            "pbkdf2_sha256$4294967295$salt$x",
            "pbkdf2_sha256$4294967296$salt$x",
            "pbkdf2_sha256$10000001$salt$x",
            "pbkdf2_sha1$4294967295$salt$x",
            "pbkdf2_sha256$1$\u{e9}\u{0}\u{fffd}$\u{1F600}",
            "argon2$",
            "argon2$$",
            "argon2$argon2id",
            "argon2$argon2id$v=19$m=102400,t=2,p=8$$",
            "argon2$argon2id$v=19$m=2097152,t=1,p=1$c29tZXNhbHQ$YC9+jJCrQhs5R6db7LlN8Q",
            "argon2$argon2id$v=19$m=1048577,t=1,p=1$c29tZXNhbHQ$YC9+jJCrQhs5R6db7LlN8Q",
            "argon2$argon2id$v=19$m=1048576,t=5,p=1$c29tZXNhbHQ$YC9+jJCrQhs5R6db7LlN8Q",
            "argon2$argon2id$v=19$m=8,t=4294967295,p=1$c29tZXNhbHQ$YC9+jJCrQhs5R6db7LlN8Q",
            "argon2$argon2id$v=19$m=4096,t=1,p=256$c29tZXNhbHQ$YC9+jJCrQhs5R6db7LlN8Q",
            "argon2$argon2id$v=18$m=8,t=1,p=1$c29tZXNhbHQ$YC9+jJCrQhs5R6db7LlN8Q",
            "argon2$argon2x$v=19$m=8,t=1,p=1$c29tZXNhbHQ$YC9+jJCrQhs5R6db7LlN8Q",
            "argon2$argon2i$v=19$m=8,t=1,p=1,data=c29tZXNhbHQ$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q",
            "argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ",
            "argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q$extra",
            "argon2$$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q",
            "scrypt$",
            "scrypt$a$3$8$1$xx",
            "scrypt$3$salt$8$1$xx",
            "scrypt$1$salt$8$1$xx",
            "scrypt$0$salt$8$1$xx",
            "scrypt$16384$salt$0$1$xx",
            "scrypt$16384$salt$8$0$xx",
            "scrypt$16384$salt$8$17$xx",
            "scrypt$16384$salt$33$1$xx",
            "scrypt$2097152$salt$8$1$xx",
            "scrypt$1048576$salt$16$1$xx",
            "scrypt$1048576$salt$8$5$xx",
            "scrypt$524288$salt$8$16$xx",
            "scrypt$2147483648$salt$8$1$xx",
            "scrypt$16384$$8$1$xx",
            "scrypt$16$salt$1$1$xx",
            "scrypt$16$salt$8$1",
            "scrypt$16$salt$8$1$xx$yy",
            "bcrypt$",
            "bcrypt$$",
            "bcrypt$$garbage",
            "bcrypt$$2b$31$VItRuLpsFn6/buw7xhkageI4hNGfUoC2aHEm3AlLGlEv4xP9WpvTa",
            "bcrypt$$2b$17$VItRuLpsFn6/buw7xhkageI4hNGfUoC2aHEm3AlLGlEv4xP9WpvTa",
            "bcrypt$$2b$03$VItRuLpsFn6/buw7xhkageI4hNGfUoC2aHEm3AlLGlEv4xP9WpvTa",
            "bcrypt$$2b$1a$VItRuLpsFn6/buw7xhkageI4hNGfUoC2aHEm3AlLGlEv4xP9WpvTa",
            "bcrypt$$2b$12$VItRuLpsFn6/buw7xhkageI4hNGfUoC2aHEm3AlLGlEv4xP9WpvT",
            "bcrypt$$2b$12$VItRuLpsFn6/buw7xhkag\u{e9}4hNGfUoC2aHEm3AlLGlEv4xP9Wpv",
            "bcrypt$2b$12$VItRuLpsFn6/buw7xhkageI4hNGfUoC2aHEm3AlLGlEv4xP9WpvTa",
            "bcrypt_sha256$",
            "bcrypt_sha256$$2b$12$",
            "md5$",
            "md5$$",
            "md5$$72452284d1e205e34f9cbe6b4848e235",
            "md5$salt",
            "\u{0}",
            "\u{fffd}$\u{fffd}",
            "pbkdf2_sha256\u{0}$1$a$b",
            "unknown$1$salt$hash",
        ];
        for encoded in cases {
            assert_rejected_fast(encoded);
        }
        // Valid vectors with a flipped digest character.
        let cheap_pbkdf2 = encode_pbkdf2_sha256(PASSWORD, 10);
        for encoded in [cheap_pbkdf2.as_str(), MD5, ARGON2I_V19] {
            let mut bytes = encoded.as_bytes().to_vec();
            let last = bytes.len() - 2;
            bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(!verify(PASSWORD, &tampered) && !verify(LETMEIN, &tampered));
            assert!(!verify("secret", &tampered));
        }
    }

    fn random_bytes(n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        getrandom::fill(&mut buf).unwrap();
        buf
    }

    #[test]
    fn random_encoded_never_panics() {
        let prefixes = [
            "",
            "!",
            "$",
            "pbkdf2_sha256$",
            "pbkdf2_sha1$",
            "argon2$",
            "argon2$argon2id$",
            "argon2$argon2id$v=19$",
            "bcrypt$",
            "bcrypt$$2b$",
            "bcrypt_sha256$$2b$04$",
            "scrypt$",
            "scrypt$16$",
            "md5$",
            "md5$salt$",
        ];
        for round in 0..4000 {
            let bytes = random_bytes(usize::from(random_bytes(1)[0]));
            let tail = String::from_utf8_lossy(&bytes);
            let encoded = format!("{}{tail}", prefixes[round % prefixes.len()]);
            assert!(!verify(PASSWORD, &encoded), "{encoded:?}");
        }
    }

    #[test]
    fn mutated_hashes_never_panic() {
        // Mutations never add digits, so stored costs can only shrink and every attempt stays cheap.
        const FILLERS: [char; 12] = ['$', '!', '=', '+', '/', '.', ',', 'a', 'Z', 'é', '\0', '-'];
        let seeds = [
            encode_pbkdf2_sha256("pw", 100),
            MD5.to_owned(),
            ARGON2I_V19.to_owned(),
            cheap_scrypt("pw", "salty", 4, 8, 1),
            cheap_bcrypt(b"pw"),
            cheap_bcrypt_sha256("pw"),
        ];
        for seed in &seeds {
            for _ in 0..150 {
                let mut chars: Vec<char> = seed.chars().collect();
                for _ in 0..=random_bytes(1)[0] % 3 {
                    let r = random_bytes(3);
                    let at = usize::from(r[0]) * chars.len() / 256;
                    let filler = FILLERS[usize::from(r[2]) % FILLERS.len()];
                    match r[1] % 4 {
                        0 => chars.truncate(at),
                        1 if at < chars.len() => {
                            chars.remove(at);
                        }
                        2 => chars.insert(at, filler),
                        _ if at < chars.len() => chars[at] = filler,
                        _ => {}
                    }
                }
                let mutated: String = chars.into_iter().collect();
                let _ = verify("pw", &mutated);
                let _ = verify("secret", &mutated);
            }
        }
    }
}
