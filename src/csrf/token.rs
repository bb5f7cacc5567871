//! Django's CSRF token format, written by hand because it must match Django byte for byte:
//! a 32-character secret over `a-zA-Z0-9` lives in the `csrftoken` cookie, and pages get masked
//! 64-character tokens (`mask + (secret + mask) mod 62`) so that the token in a response body
//! differs every time (BREACH). Either form is accepted in the header. Pure.

use std::fmt;

use subtle::ConstantTimeEq;

pub const ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
pub const SECRET_LENGTH: usize = 32;
pub const TOKEN_LENGTH: usize = 64;

/// Why a cookie or token could not be used, in Django's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    IncorrectLength,
    InvalidCharacters,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FormatError::IncorrectLength => "has incorrect length",
            FormatError::InvalidCharacters => "has invalid characters",
        })
    }
}

fn index(c: u8) -> Option<usize> {
    match c {
        b'a'..=b'z' => Some((c - b'a') as usize),
        b'A'..=b'Z' => Some((c - b'A') as usize + 26),
        b'0'..=b'9' => Some((c - b'0') as usize + 52),
        _ => None,
    }
}

/// Django's `_check_token_format`: 32 or 64 characters, all from the alphabet.
pub fn check_format(token: &str) -> Result<(), FormatError> {
    if token.len() != SECRET_LENGTH && token.len() != TOKEN_LENGTH {
        return Err(FormatError::IncorrectLength);
    }
    if !token.bytes().all(|c| index(c).is_some()) {
        return Err(FormatError::InvalidCharacters);
    }
    Ok(())
}

fn random_chars(n: usize) -> String {
    // 62 does not divide 256: reject bytes ≥ 248 (= 4 × 62) to keep the choice uniform.
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in crate::secret::random_bytes::<64>() {
            if b < 248 && out.len() < n {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// A fresh CSRF secret (the cookie value).
pub fn new_secret() -> String {
    random_chars(SECRET_LENGTH)
}

/// Mask `secret` with a fresh random mask (Django's `_mask_cipher_secret`).
pub fn mask(secret: &str) -> String {
    mask_with(secret, &random_chars(SECRET_LENGTH))
}

fn mask_with(secret: &str, mask: &str) -> String {
    let cipher: String = secret
        .bytes()
        .zip(mask.bytes())
        .map(|(s, m)| {
            let (s, m) = (index(s).unwrap_or(0), index(m).unwrap_or(0));
            ALPHABET[(s + m) % 62] as char
        })
        .collect();
    format!("{mask}{cipher}")
}

/// Django's `_unmask_cipher_token`. The caller has checked the format.
pub fn unmask(token: &str) -> String {
    let (mask, cipher) = token.split_at(SECRET_LENGTH);
    cipher
        .bytes()
        .zip(mask.bytes())
        .map(|(c, m)| {
            let (c, m) = (index(c).unwrap_or(0), index(m).unwrap_or(0));
            ALPHABET[(c + 62 - m) % 62] as char
        })
        .collect()
}

/// Whether `token` (raw 32 or masked 64, format already checked) carries `secret`; constant time.
pub fn matches(token: &str, secret: &str) -> bool {
    let candidate = if token.len() == TOKEN_LENGTH { unmask(token) } else { token.to_owned() };
    candidate.len() == secret.len() && bool::from(candidate.as_bytes().ct_eq(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From Django's own test suite (tests/csrf_tests/tests.py).
    #[test]
    fn django_unit_vectors() {
        assert_eq!(
            unmask("1bcdefghij2bcdefghij3bcdefghij4bcdefghij5bcdefghij6bcdefghijABCD"),
            "lcccccccX2kcccccccY2jcccccccssIC"
        );
        assert_eq!(unmask(&"a".repeat(64)), "a".repeat(32));
        assert_eq!(
            mask_with("lcccccccX2kcccccccY2jcccccccssIC", "1bcdefghij2bcdefghij3bcdefghij4b"),
            "1bcdefghij2bcdefghij3bcdefghij4bcdefghij5bcdefghij6bcdefghijABCD"
        );
    }

    /// Tokens masked by a real Django 5.2 (shared/vectors/django.json).
    #[test]
    fn real_django_tokens_unmask() {
        let vectors = [
            ("Olizgf4c5dMrs969UdsFa5miq0oEthhH", "UJT4GcSfy8oQ35qgPp1GKAwamMdSczJ9yU1tMhMhtb07l4mfzsjbKvIiCCrmvGQG"),
            ("9M8LB9dUyZdU68nAJwpaH7JP3Hpuz31j", "b71aOXTKuIKCNNX28TAVnJuhF620rvVWaJZLfWWuSxNmJLasHfPVUG3WyDhkQoM5"),
            ("uVXp8txRJmXUjAYcVDKfgWJ2sQ76y9e2", "OagYQKSG87ULL1JDY9QKDPGxZPmcRyPt8V3dO3fnHjHvUrxFJCqPJBfphvj8fxTl"),
            ("BnIl4fmxOxdSTBIDWJqmBViiWJyzAqiY", "mABI629GhrHUITIsfBrUTXYzJx5ZcFpbNN9T07l3VOKCrkgV1aH6kI6Hv6toCVxZ"),
            ("GRyYevSQBtQjZ2MzKFiwedPrGuBrPeY9", "Im3HlKHy8fA5TeOwKwQq0x6BZuNuYauEe3rvp5pezygeI6qVk1YM4ALSvOeLDeiD"),
            ("84LRbxVwCGymZp45BGPjjQwPwViGyUwQ", "pQ7pr20tSPtaXH2dQEnEMh4QH4SMlDIOnKI6spLPklRmMWW8ha2NVXqv3P0iJn4u"),
            ("vuLZXZzQX3AondUzpPkRtRNLwLgeicVN", "Ya0i4xIYINcrsswbpny37yqDP8BGs0Y6juB7Rm7EvGCFFvgAE2IKqf3ebJHKA2JJ"),
            ("FBsVOUTFsEt9MRyQaEe2xmpwRYJdH3Vn", "8lLCkPle31jX4MQyE8eJ4TBejs3Kj8DrDM3nYz4JlvCWGteeECiBr5QA0gCNQ1oE"),
        ];
        for (secret, token) in vectors {
            assert_eq!(check_format(token), Ok(()));
            assert_eq!(unmask(token), secret);
            assert!(matches(token, secret));
            assert!(matches(secret, secret), "raw secret accepted too");
        }
    }

    #[test]
    fn mask_roundtrips_and_differs_each_time() {
        let s = new_secret();
        assert_eq!(check_format(&s), Ok(()));
        let (a, b) = (mask(&s), mask(&s));
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_LENGTH);
        assert_eq!(unmask(&a), s);
        assert!(matches(&b, &s));
        assert!(!matches(&mask(&new_secret()), &s));
    }

    #[test]
    fn format_errors() {
        assert_eq!(check_format("short"), Err(FormatError::IncorrectLength));
        assert_eq!(check_format(&"a".repeat(33)), Err(FormatError::IncorrectLength));
        assert_eq!(check_format(&format!("{}!", "a".repeat(31))), Err(FormatError::InvalidCharacters));
        assert_eq!(check_format(&"é".repeat(16)), Err(FormatError::InvalidCharacters));
    }
}
