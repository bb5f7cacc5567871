//! Password policy (SPEC §9, NIST SP 800-63B): a minimum length, a generous maximum, no
//! composition rules, and no password equal to the username or the email address (or the part
//! before its `@`: what an attacker who knows the account tries first). Pure.

/// Longest password accepted, in bytes: long passphrases are fine, megabyte bodies are not.
pub const MAX_BYTES: usize = 1024;

/// Why a password was refused; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weak(pub String);

pub fn check(password: &str, username: &str, email: Option<&str>, min_chars: usize) -> Result<(), Weak> {
    let chars = password.chars().count();
    if chars < min_chars {
        return Err(Weak(format!("must be at least {min_chars} characters")));
    }
    if password.len() > MAX_BYTES {
        return Err(Weak(format!("must be at most {MAX_BYTES} bytes")));
    }
    let same = |other: &str| !other.trim().is_empty() && password.trim().to_lowercase() == other.trim().to_lowercase();
    if same(username) {
        return Err(Weak("must not be the same as the username".into()));
    }
    if let Some(email) = email
        && (same(email) || email.rsplit_once('@').is_some_and(|(local, _)| same(local)))
    {
        return Err(Weak("must not be the email address or the part before its @".into()));
    }
    if crate::password::common::is_common(password) {
        return Err(Weak("is too common: it appears in lists of leaked passwords".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds_count_characters_not_bytes() {
        assert!(check("short", "bob", None, 8).is_err());
        assert!(check("ééééééé", "bob", None, 8).is_err());
        assert!(check("éééééééé", "bob", None, 8).is_ok());
        assert!(check(&"x".repeat(1025), "bob", None, 8).is_err());
        assert!(check(&"xy".repeat(512), "bob", None, 8).is_ok());
    }

    #[test]
    fn no_truncation_and_no_composition_rules() {
        assert!(check("all lowercase words here", "bob", None, 8).is_ok());
    }

    #[test]
    fn username_refused() {
        assert_eq!(
            check("AliceInWonder", "aliceinwonder", None, 8),
            Err(Weak("must not be the same as the username".into()))
        );
    }

    #[test]
    fn email_refused() {
        let email = Some("Sherlock.Holmes@Example.com");
        assert!(check("sherlock.holmes@example.com", "sh", email, 8).is_err());
        assert!(check("SHERLOCK.HOLMES", "sh", email, 8).is_err(), "the part before @");
        assert!(check("sherlock holmes 221b", "sh", email, 8).is_ok());
    }
}
