//! Password policy (SPEC §9, NIST SP 800-63B): a minimum length, a generous maximum, no
//! composition rules, and no password equal to the username. Pure.

/// Longest password accepted, in bytes: long passphrases are fine, megabyte bodies are not.
pub const MAX_BYTES: usize = 1024;

/// Why a password was refused; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weak(pub String);

pub fn check(password: &str, username: &str, min_chars: usize) -> Result<(), Weak> {
    let chars = password.chars().count();
    if chars < min_chars {
        return Err(Weak(format!("must be at least {min_chars} characters")));
    }
    if password.len() > MAX_BYTES {
        return Err(Weak(format!("must be at most {MAX_BYTES} bytes")));
    }
    if !username.is_empty() && password.trim().to_lowercase() == username.trim().to_lowercase() {
        return Err(Weak("must not be the same as the username".into()));
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
        assert!(check("short", "bob", 8).is_err());
        assert!(check("ééééééé", "bob", 8).is_err());
        assert!(check("éééééééé", "bob", 8).is_ok());
        assert!(check(&"x".repeat(1025), "bob", 8).is_err());
        assert!(check(&"xy".repeat(512), "bob", 8).is_ok());
    }

    #[test]
    fn no_truncation_and_no_composition_rules() {
        assert!(check("all lowercase words here", "bob", 8).is_ok());
    }

    #[test]
    fn username_refused() {
        assert_eq!(
            check("AliceInWonder", "aliceinwonder", 8),
            Err(Weak("must not be the same as the username".into()))
        );
    }
}
