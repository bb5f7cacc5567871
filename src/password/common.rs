//! The 10,000 most common passwords (the head of zxcvbn's frequency list, itself from leaked
//! password corpora), compared case-insensitively: `Password1` is as weak as `password1`.

use std::collections::HashSet;
use std::sync::OnceLock;

static LIST: &str = include_str!("common-passwords.txt");

pub fn is_common(password: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let set = SET.get_or_init(|| LIST.lines().filter(|l| !l.is_empty()).collect());
    set.contains(password.to_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    #[test]
    fn common_passwords_are_found_in_any_case() {
        assert!(super::is_common("password"));
        assert!(super::is_common("Baseball"));
        assert!(super::is_common("1qaz2wsx"));
        assert!(!super::is_common("correct horse battery staple"));
    }
}
