//! Usernames and login identifiers: the rules, pure.
//!
//! - **Bounded before anything else.** A login identifier longer than a username or an email
//!   address can be (150 characters, 254 bytes) is refused with 400 before any lookup or limiter
//!   sees it ([`check_identifier`]).
//! - **One key per name.** Uniqueness and lookups use [`login_key`]: NFKC, lower case, NFKC
//!   again (Unicode's NFKC_Casefold in practice, RFC 8265's width and case mapping), so the
//!   full-width `ａｄｍｉｎ` and the Kelvin sign `K` are the same name as `admin` and `k`.
//! - **No look-alikes.** New names must be Django-shaped (letters, digits, `@ . + - _`), made of
//!   characters UTS #39 allows in identifiers, in one script (or a CJK mix with Latin,
//!   "highly restrictive"); and no two accounts may share a confusable [`skeleton`] (UTS #39:
//!   `аdmin` with a Cyrillic `а` collides with `admin`).
//! - **`@` only for the account's own address** ([`check_username`]'s `email`): a username may
//!   not be someone else's email address, so login by email is never ambiguous.

use unicode_normalization::UnicodeNormalization;
use unicode_security::{RestrictionLevel, RestrictionLevelDetection};

use super::User;

/// Django's `AbstractUser.username` length, in characters.
pub const USERNAME_MAX_CHARS: usize = 150;
/// The longest email address (RFC 5321 path limit), in bytes.
pub const EMAIL_MAX_BYTES: usize = 254;

/// The normalised form used for case-insensitive uniqueness and lookup of usernames and email
/// addresses.
pub fn login_key(s: &str) -> String {
    let folded: String = s.trim().nfkc().collect::<String>().to_lowercase();
    // `İ` lower-cases to `i` + COMBINING DOT ABOVE: a dot on a letter that already has one is
    // invisible, so it is dropped after the soft-dotted `i` and `j` (`ALİCE` is `alice`).
    let mut out = String::with_capacity(folded.len());
    for c in folded.nfkc() {
        if c == '\u{0307}' && matches!(out.chars().last(), Some('i' | 'j')) {
            continue;
        }
        out.push(c);
    }
    out
}

/// The UTS #39 confusable skeleton of a name: two names with the same skeleton look alike.
/// Logins ignore case, so a name may be shown in any case: `aIice` (capital `I`) passes for
/// `alice`, `SH0P` for `shop`, and the Greek `νινο` for `vivo`. The skeleton is therefore taken
/// of the lower-cased name (where `ν` meets `v`), then of that upper-cased (where `I`, `l`, `1`
/// and `0`, `O` meet), then of that lower-cased again (where `rn` meets `m`). This makes `i` and
/// `l` one letter for uniqueness: `ali` and `all` cannot both exist, the price of `alIce` never
/// existing beside `alice`.
pub fn skeleton(name: &str) -> String {
    let small: String = unicode_security::skeleton(&login_key(name)).collect();
    let shape: String = unicode_security::skeleton(&small.to_uppercase()).collect();
    unicode_security::skeleton(&login_key(&shape)).collect()
}

/// The version of [`login_key`] and [`skeleton`] stored rows carry; rows written by an older
/// release are re-keyed at start ([`crate::users::UserStore::upgrade_keys`]).
pub const KEY_VERSION: i32 = 4;

/// A username as stored: trimmed and NFKC-normalised (as Django's `normalize_username`).
pub fn normalize_username(name: &str) -> String {
    name.trim().nfkc().collect()
}

/// Whether a login identifier is short enough to be a username (150 characters) or, when it
/// contains `@`, an email address (254 bytes). Checked before any lookup: an attacker's 900 KB
/// "username" never becomes a key.
pub fn check_identifier(login: &str) -> Result<(), &'static str> {
    let login = login.trim();
    if login.is_empty() {
        return Err("required");
    }
    let as_username = login.chars().count() <= USERNAME_MAX_CHARS;
    let as_email = login.contains('@') && login.len() <= EMAIL_MAX_BYTES;
    if !as_username && !as_email {
        return Err("too long: a username has at most 150 characters, an email address at most 254 bytes");
    }
    Ok(())
}

/// The shape of an email address sessiongate accepts: what a browser's `<input type=email>`
/// accepts (the WHATWG rule, a deliberate subset of RFC 5322), with a dot in the domain. No
/// quoted local parts, comments, `[ip]` literals, second `@`, commas, spaces or control
/// characters: each of those has been used to make one address mean two (a parser that sends
/// to one part, a lookup that matches another). Internationalised domains are accepted in their
/// `xn--` form. Hand-written because mail crates accept the whole RFC 5322 grammar on purpose.
pub fn check_email(addr: &str) -> Result<(), &'static str> {
    const WHY: &str = "not a valid email address (at most 254 bytes, like name@example.com)";
    if addr.len() > EMAIL_MAX_BYTES {
        return Err(WHY);
    }
    let Some((local, domain)) = addr.split_once('@') else { return Err(WHY) };
    // `=?…?=` is an RFC 2047 encoded word: a mailer that decodes it would send elsewhere.
    let local_ok = !local.is_empty()
        && !local.contains("=?")
        && local.len() <= 64
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let tld_ok = labels.last().is_some_and(|t| !t.bytes().all(|b| b.is_ascii_digit()));
    if local_ok && labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok { Ok(()) } else { Err(WHY) }
}

/// The rule for new usernames (signup, `sessiongate user add`), on the normalised name. `email`
/// is the address the account will have: a name containing `@` must be exactly that address.
pub fn check_username(name: &str, email: Option<&str>) -> Result<(), &'static str> {
    let n = name.chars().count();
    if n == 0 || n > USERNAME_MAX_CHARS || !name.chars().all(|c| c.is_alphanumeric() || "@.+-_".contains(c)) {
        return Err("use 1 to 150 letters, digits and @ . + - _");
    }
    let letters: String = name.chars().filter(|c| !"@.+-_".contains(*c)).collect();
    if !letters.as_str().check_restriction_level(RestrictionLevel::HighlyRestrictive) {
        return Err("mixes scripts or uses characters that can pass for others; use one script");
    }
    if name.contains('@') && email.map(login_key) != Some(login_key(name)) {
        return Err("may contain @ only when it is the account's own email address");
    }
    Ok(())
}

/// The key the per-account limits count under: the resolved account when there is one (so its
/// username and its email address share one count), else the normalised identifier typed.
pub fn account_key(user: Option<&User>, typed: &str) -> String {
    match user {
        Some(u) => format!("user:{}", u.id),
        None => format!("name:{}", login_key(typed)),
    }
}

/// The keys [`crate::users::UserStore::upgrade_keys`] writes for a row of an older release.
pub struct RowKeys {
    pub username_key: String,
    pub email_key: Option<String>,
    pub skeleton: String,
}

pub fn keys_of(username: &str, email: Option<&str>) -> RowKeys {
    RowKeys { username_key: login_key(username), email_key: email.map(login_key), skeleton: skeleton(username) }
}

impl RowKeys {
    /// What to write, best first: everything; the keys without the skeleton (confusable with
    /// another account); nothing new (the new key itself collides: the two accounts were
    /// already look-alikes before this rule existed).
    pub fn attempts(&self) -> [(Option<&str>, Option<&str>, Option<&str>); 3] {
        let (k, e) = (Some(self.username_key.as_str()), self.email_key.as_deref());
        [(k, e, Some(self.skeleton.as_str())), (k, e, None), (None, None, None)]
    }

    /// Log what a row got when it did not get everything.
    pub fn report(&self, id: i64, keyed: bool, skeleton: bool) {
        if !keyed {
            tracing::warn!(
                user_id = id,
                "this account's name is the same as another account's under Unicode normalisation; it keeps its old key (rename one of them)"
            );
        } else if !skeleton {
            tracing::warn!(
                user_id = id,
                "this account's name looks like another account's (UTS #39 confusables); both stay, new look-alikes are refused"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_width_case_and_compatibility_forms() {
        assert_eq!(login_key("ａｄｍｉｎ"), "admin");
        assert_eq!(login_key("\u{212A}evin"), "kevin", "Kelvin sign");
        assert_eq!(login_key(" Alice "), "alice");
        assert_eq!(login_key("ZOË"), login_key("zoë"));
        assert_eq!(login_key("Zoe\u{0308}"), login_key("Zoë"), "combining diaeresis composes");
        assert_eq!(login_key("ALİCE"), "alice", "Turkish dotted capital I");
    }

    #[test]
    fn confusables_share_a_skeleton() {
        assert_eq!(skeleton("\u{0430}dmin"), skeleton("admin"), "Cyrillic a");
        assert_eq!(skeleton("ADMIN"), skeleton("admin"));
        assert_ne!(skeleton("alice"), skeleton("bob"));
        // Adversarial finding: ASCII look-alikes that only case and digits tell apart.
        assert_eq!(skeleton("aIice"), skeleton("alice"), "capital I for l");
        assert_eq!(skeleton("SH0P"), skeleton("shop"), "zero for O");
        assert_eq!(skeleton("paypa1"), skeleton("paypal"), "one for l");
        assert_eq!(skeleton("ALlCE"), skeleton("ALICE"));
        assert_eq!(skeleton("ａlice"), skeleton("alice"), "full width");
        assert_eq!(skeleton("rnodern"), skeleton("modern"), "rn for m");
        // Second adversarial pass: small Greek letters whose capitals look like nothing Latin.
        assert_eq!(skeleton("νινο"), skeleton("vivo"));
        assert_eq!(skeleton("νυ"), skeleton("vu"));
        assert_eq!(skeleton("υνυ"), skeleton("uvu"));
        assert_ne!(skeleton("alice"), skeleton("alicia"));
        assert_ne!(skeleton("bob"), skeleton("rob"));
    }

    #[test]
    fn usernames() {
        for ok in ["alice.b+1", "Zoë", "田中tanaka", "андрей", "bob_smith-2"] {
            assert_eq!(check_username(ok, None), Ok(()), "{ok}");
        }
        for bad in ["", "has space", "\u{0430}dmin", "pаypal", "a\u{200B}b", "x/y"] {
            assert!(check_username(bad, None).is_err(), "{bad}");
        }
        assert!(check_username(&"a".repeat(151), None).is_err());
        assert!(check_username(&"a".repeat(150), None).is_ok());
    }

    #[test]
    fn at_sign_only_for_the_own_address() {
        assert!(check_username("bob@example.com", None).is_err());
        assert!(check_username("bob@example.com", Some("alice@example.com")).is_err());
        assert!(check_username("Bob@Example.com", Some("bob@example.com")).is_ok());
    }

    #[test]
    fn identifiers_are_bounded() {
        assert!(check_identifier(&"u".repeat(150)).is_ok());
        assert!(check_identifier(&format!("{}@example.com", "u".repeat(200))).is_ok(), "an email up to 254 bytes");
        assert!(check_identifier(&"u".repeat(900_000)).is_err());
        assert!(check_identifier(&format!("{}@x.io", "u".repeat(300))).is_err());
        assert!(check_identifier("  ").is_err());
        // Adversarial finding: 151–254 ASCII characters without `@` are neither.
        assert!(check_identifier(&"u".repeat(151)).is_err());
        assert!(check_identifier(&"u".repeat(254)).is_err());
        assert!(check_identifier(&"é".repeat(150)).is_ok(), "150 characters, 300 bytes");
    }

    #[test]
    fn email_addresses() {
        for ok in ["a@b.io", "first.last+tag@example.co.uk", "o'brien@x.org", "x@xn--bcher-kva.example"] {
            assert_eq!(check_email(ok), Ok(()), "{ok}");
        }
        // Adversarial finding: each of these was accepted.
        for bad in [
            "a@b@x.io",
            "a\0@x.io",
            "a\u{0}b@x.io",
            "a,b@x.io",
            "a@[127.0.0.1]",
            "\"a b\"@x.io",
            "a(comment)@x.io",
            "a@x.io,b@y.io",
            "a <b@x.io>",
            "a@localhost",
            "a@1.2.3.4",
            "a@-x.io",
            "a@x..io",
            "@x.io",
            "a@",
            "a@x.io\r\nBcc: c@y.io",
            "ａ@x.io",
            "=?utf-8?q?x?=@example.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
        assert!(check_email(&format!("{}@x.io", "a".repeat(65))).is_err(), "local part over 64");
    }

    #[test]
    fn account_keys() {
        assert_eq!(account_key(None, " Bob "), "name:bob");
    }
}
