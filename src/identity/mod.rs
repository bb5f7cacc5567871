//! What upstreams learn about the user: identity headers and, optionally, a signed assertion.
//!
//! With the default `identity.header_prefix = "X-Auth-"`, a request from a logged-in user reaches
//! a proxied upstream (and a forward-auth `200` answers) with:
//!
//! | header | value |
//! |---|---|
//! | `X-Auth-User-Id` | the user's numeric id |
//! | `X-Auth-User` | the username (UTF-8 bytes as they are) |
//! | `X-Auth-Email` | the email address, when the account has one |
//! | `X-Auth-Email-Verified` | `true` or `false`, beside `X-Auth-Email`: whether the owner proved the address by a mailed link. An unverified address is only what the user typed: never link accounts by it |
//! | `X-Auth-Session` | the session's public id (as in `GET {base}/sessions`), never the cookie token |
//! | `X-Auth-Methods` | how the user logged in, space-separated: `password`, `totp`, `recovery_code`, `passkey` (e.g. `password totp`); absent for sessions older than that record |
//! | `X-Auth-Assertion` | with `identity.jwt = true`: an EdDSA JWT, see [`jwt`] |
//!
//! Every header in that namespace that a *client* sent is removed first, on every route, in
//! every spelling: case-insensitively and with `_` read as `-` (`x_auth_user`, `X-AUTH-USER`,
//! repeated headers…). Backends such as WSGI/CGI servers fold `_` into `-`, which is how
//! oauth2-proxy (GHSA-vjrc-mh2v-45x6) and Caddy (GHSA-7r4p-vjf4-gxv4) were fooled.

pub mod jwt;

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::Settings;
use crate::session::Authenticated;

/// How long a signing key is current; the previous key stays published for one more period.
pub const KEY_PERIOD: Duration = Duration::from_secs(30 * 86400);

/// The identity header names and, with `identity.jwt`, the signing keys.
pub struct Identity {
    /// The prefix lower-cased with `_` folded to `-`: the form names are compared in.
    prefix: Vec<u8>,
    pub user_id: HeaderName,
    pub user: HeaderName,
    pub email: HeaderName,
    pub email_verified: HeaderName,
    pub session: HeaderName,
    pub methods: HeaderName,
    pub assertion: HeaderName,
    pub keys: Option<jwt::KeyRing>,
    issuer: String,
}

fn fold(b: u8) -> u8 {
    if b == b'_' { b'-' } else { b.to_ascii_lowercase() }
}

impl Identity {
    pub fn new(settings: &Settings) -> Self {
        let prefix = &settings.identity.header_prefix;
        let name = |suffix: &str| prefix.header(suffix);
        Identity {
            prefix: prefix.folded().as_bytes().to_vec(),
            user_id: name("User-Id"),
            user: name("User"),
            email: name("Email"),
            email_verified: name("Email-Verified"),
            session: name("Session"),
            methods: name("Methods"),
            assertion: name("Assertion"),
            keys: settings.identity.jwt.then(|| jwt::KeyRing::new(settings.data_dir.join("jwt-keys"), KEY_PERIOD)),
            issuer: settings.public_origin.to_string(),
        }
    }

    /// Whether `name` is in the identity namespace, in any spelling.
    pub fn is_identity_header(&self, name: &str) -> bool {
        let n = name.as_bytes();
        n.len() >= self.prefix.len() && n.iter().zip(&self.prefix).all(|(a, p)| fold(*a) == *p)
    }

    /// Remove every client-supplied identity header (all values of each).
    pub fn strip(&self, headers: &mut HeaderMap) {
        let spoofed: Vec<HeaderName> =
            headers.keys().filter(|n| self.is_identity_header(n.as_str())).cloned().collect();
        for name in spoofed {
            headers.remove(&name);
        }
    }

    /// The headers that describe `auth` to an upstream whose origin is `audience` (the JWT's
    /// `aud`). Fails (logged here) only when `identity.jwt` is on and no key can be read or
    /// written; callers answer 500, as the upstream would refuse the request anyway.
    pub fn headers(&self, auth: &Authenticated, audience: &str) -> std::io::Result<Vec<(HeaderName, HeaderValue)>> {
        let mut out = vec![(self.user_id.clone(), HeaderValue::from(auth.user.id))];
        let mut text = |name: &HeaderName, value: &str| match HeaderValue::from_bytes(value.as_bytes()) {
            Ok(v) => out.push((name.clone(), v)),
            Err(_) => {
                tracing::warn!(header = %name, user_id = auth.user.id, "identity value not representable in a header; omitted")
            }
        };
        text(&self.user, &auth.user.username);
        if let Some(email) = &auth.user.email {
            text(&self.email, email);
        }
        text(&self.session, &auth.session.id);
        if let Some(v) = methods_value(&auth.session.methods) {
            out.push((self.methods.clone(), v));
        }
        if auth.user.email.is_some() {
            let verified = HeaderValue::from_static(if auth.user.email_verified { "true" } else { "false" });
            out.push((self.email_verified.clone(), verified));
        }
        if let Some(keys) = &self.keys {
            let claims = jwt::Claims::new(&self.issuer, auth, audience, chrono::Utc::now().timestamp());
            let token = keys.sign(&claims).inspect_err(|e| {
                tracing::error!(error = %e, "identity.jwt: cannot read or create the signing key");
            })?;
            out.push((self.assertion.clone(), HeaderValue::from_str(&token).expect("JWT is base64url and dots")));
        }
        Ok(out)
    }
}

/// `X-Auth-Methods` for `m`: the usual logins as static values (every proxied request sends
/// one; no formatting or allocation for them), others spelled out. None for an empty record.
fn methods_value(m: &crate::session::AuthMethods) -> Option<HeaderValue> {
    use crate::session::AuthMethod::{Passkey, Password, RecoveryCode, Totp};
    let fixed = match m.as_slice() {
        [] => return None,
        [Password] => "password",
        [Passkey] => "passkey",
        [Password, Totp] => "password totp",
        [Password, RecoveryCode] => "password recovery_code",
        _ => return HeaderValue::from_str(&m.to_string()).ok(),
    };
    Some(HeaderValue::from_static(fixed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(prefix: &str) -> Identity {
        let cfg = crate::config::load_str(&format!("[identity]\nheader_prefix = \"{prefix}\"\n")).unwrap();
        Identity::new(&cfg.validate().unwrap())
    }

    #[test]
    fn methods_values_spell_the_stored_words() {
        use crate::session::{AuthMethod as M, AuthMethods};
        for m in [
            vec![M::Password],
            vec![M::Passkey],
            vec![M::Password, M::Totp],
            vec![M::Password, M::RecoveryCode],
            vec![M::Oidc("corp".into()), M::Totp],
        ] {
            let m = AuthMethods::of(m);
            assert_eq!(methods_value(&m).unwrap().to_str().unwrap(), m.to_string());
        }
        assert!(methods_value(&AuthMethods::default()).is_none());
    }

    #[test]
    fn names_follow_the_prefix() {
        let id = identity("X-Auth-");
        assert_eq!(id.user_id, "x-auth-user-id");
        assert_eq!(id.user, "x-auth-user");
        assert_eq!(id.email, "x-auth-email");
        assert_eq!(id.session, "x-auth-session");
        assert_eq!(id.assertion, "x-auth-assertion");
        assert!(id.keys.is_none());
    }

    #[test]
    fn every_spelling_is_stripped() {
        let id = identity("X-Auth-");
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-auth-user", "a"),
            ("X-AUTH-USER", "b"),
            ("x_auth_user", "c"),
            ("X_Auth-User_Id", "1"),
            ("x-auth-anything-else", "d"),
            ("x-authority", "keep"),
            ("x-auth", "keep"),
            ("x-csrftoken", "keep"),
            ("cookie", "keep"),
        ] {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_static(v));
        }
        h.append("x-auth-email", HeaderValue::from_static("dup1"));
        h.append("x-auth-email", HeaderValue::from_static("dup2"));
        id.strip(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["cookie", "x-auth", "x-authority", "x-csrftoken"]);
    }

    #[test]
    fn prefix_with_underscores_is_folded_too() {
        let id = identity("X_Remote_");
        assert!(id.is_identity_header("x-remote-user"));
        assert!(id.is_identity_header("X_REMOTE_USER"));
        assert!(!id.is_identity_header("x-remotely"));
    }
}
