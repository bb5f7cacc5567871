//! Server-side sessions: the model, its lifetimes, and the store trait every backend implements.
//!
//! A session is identified by an opaque 256-bit token that lives only in the client's cookie.
//! Stores never see the token: they key sessions by its SHA-256 ([`TokenHash`]), so a leaked
//! store (backup, replica, `KEYS *`) does not hand out live sessions. Each session also has a
//! random public [`Session::id`] that is safe to show in listings and to use in revocation URLs.
//!
//! Stores are deliberately dumb persistence with expiry; the semantics (token generation,
//! rotation, sliding idle timeout with throttled writes, absolute timeout) live in
//! [`SessionManager`] so every backend behaves the same.

pub mod context;
pub mod layer;
mod manager;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
mod sql;
pub mod sqlite;
pub mod user_cache;

pub use context::{AuthState, Authenticated, RequestContext};
pub use manager::{ClientInfo, Lifetimes, Loaded, SessionManager};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secret;

/// SHA-256 of a session token, hex-encoded: the only form of the token a store ever sees.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenHash(pub String);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        // Every request with a cookie hashes it: encode into a buffer (`hex::encode` goes char
        // by char through an iterator).
        let mut buf = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(token.as_bytes()), &mut buf).expect("64 bytes for 32");
        TokenHash(std::str::from_utf8(&buf).expect("hex is ASCII").to_owned())
    }
}

impl std::fmt::Debug for TokenHash {
    // Even the hash stays out of logs: it is the store key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// A session token as sent in the cookie. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// 256 bits from the OS CSPRNG, base64url without padding (43 characters).
    pub fn generate() -> Self {
        SessionToken(secret::random_b64(32))
    }

    /// Accepts only strings that could be one of our tokens, so garbage never reaches a store.
    pub fn parse(raw: &str) -> Option<Self> {
        secret::is_random_b64(raw, 32).then(|| SessionToken(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(..)")
    }
}

/// One server-side session as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Public identifier (128 random bits, base64url); never the cookie token.
    pub id: String,
    pub token_hash: TokenHash,
    pub user_id: i64,
    /// The Django CSRF secret bound to this session (see `csrf`): a cookie planted by a sibling
    /// subdomain cannot match it.
    pub csrf_secret: String,
    #[serde(serialize_with = "crate::http::json::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::http::json::rfc3339")]
    pub last_seen_at: DateTime<Utc>,
    /// When the idle timeout ends unless the session is used again.
    #[serde(serialize_with = "crate::http::json::rfc3339")]
    pub idle_expires_at: DateTime<Utc>,
    /// Hard end of the session; never moves.
    #[serde(serialize_with = "crate::http::json::rfc3339")]
    pub absolute_expires_at: DateTime<Utc>,
    /// Last time the user proved knowledge of a credential (login or reauth).
    #[serde(serialize_with = "crate::http::json::rfc3339")]
    pub authenticated_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub remember: bool,
    /// How the user proved who they are when the session was opened (a reauthentication adds
    /// nothing): empty for sessions older than this field.
    #[serde(default)]
    pub methods: AuthMethods,
}

/// One way of proving who one is, as recorded in a session (SPEC `authenticationMethods`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Password,
    Totp,
    RecoveryCode,
    Passkey,
    /// A login through the configured OpenID Connect provider of this name.
    Oidc(String),
}

impl AuthMethod {
    /// The stored spelling: `password`, `totp`, `recovery_code`, `passkey`, `oidc:NAME`.
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "password" => AuthMethod::Password,
            "totp" => AuthMethod::Totp,
            "recovery_code" => AuthMethod::RecoveryCode,
            "passkey" => AuthMethod::Passkey,
            w => AuthMethod::Oidc(w.strip_prefix("oidc:").filter(|n| !n.is_empty())?.to_owned()),
        })
    }

    /// The method's name without its provider (`oidc` for every provider).
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::Totp => "totp",
            AuthMethod::RecoveryCode => "recovery_code",
            AuthMethod::Passkey => "passkey",
            AuthMethod::Oidc(_) => "oidc",
        }
    }

    pub fn provider(&self) -> Option<&str> {
        if let AuthMethod::Oidc(p) = self { Some(p) } else { None }
    }
}

/// The methods of one login, in the order they were used, stored as space-separated words
/// (one column in SQL, one field in Redis's JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct AuthMethods(Vec<AuthMethod>);

impl AuthMethods {
    pub fn of(methods: impl IntoIterator<Item = AuthMethod>) -> Self {
        AuthMethods(methods.into_iter().collect())
    }

    /// Unknown words (from a newer version sharing the store) are left out.
    pub fn parse(stored: &str) -> Self {
        AuthMethods(stored.split_ascii_whitespace().filter_map(AuthMethod::parse).collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &AuthMethod> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[AuthMethod] {
        &self.0
    }

    /// Whether the login used two factors, or one that is phishing-resistant and bound to a
    /// device with user verification (a passkey).
    pub fn strong(&self) -> bool {
        self.0.iter().any(|m| matches!(m, AuthMethod::Passkey)) || self.0.len() >= 2
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// RFC 8176 `amr` values: `pwd` (password), `otp` (TOTP or a recovery code), `pop` and
    /// `user` (a passkey: proof of possession of a key, with user verification), `mfa` when
    /// [`strong`](Self::strong). A provider login contributes nothing of its own (its `amr` is
    /// the provider's to state).
    pub fn amr(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for m in &self.0 {
            let values: &[&'static str] = match m {
                AuthMethod::Password => &["pwd"],
                AuthMethod::Totp | AuthMethod::RecoveryCode => &["otp"],
                AuthMethod::Passkey => &["pop", "user"],
                AuthMethod::Oidc(_) => &[],
            };
            for v in values {
                if !out.contains(v) {
                    out.push(*v);
                }
            }
        }
        if self.strong() {
            out.push("mfa");
        }
        out
    }
}

#[cfg(test)]
mod methods_tests {
    use super::{AuthMethod, AuthMethods};

    #[test]
    fn stored_words_round_trip_and_unknown_ones_are_dropped() {
        let m = AuthMethods::of([AuthMethod::Password, AuthMethod::Totp, AuthMethod::Oidc("corp".into())]);
        assert_eq!(m.to_string(), "password totp oidc:corp");
        assert_eq!(AuthMethods::parse(&m.to_string()), m);
        assert_eq!(AuthMethods::parse("  passkey  webauthn-v9 oidc: "), AuthMethods::of([AuthMethod::Passkey]));
        assert!(AuthMethods::parse("").is_empty());
    }

    #[test]
    fn amr_follows_rfc_8176() {
        assert_eq!(AuthMethods::of([AuthMethod::Password]).amr(), ["pwd"]);
        assert_eq!(AuthMethods::of([AuthMethod::Password, AuthMethod::RecoveryCode]).amr(), ["pwd", "otp", "mfa"]);
        assert_eq!(AuthMethods::of([AuthMethod::Passkey]).amr(), ["pop", "user", "mfa"]);
        assert!(AuthMethods::default().amr().is_empty());
    }
}

impl std::fmt::Display for AuthMethods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match m {
                AuthMethod::Oidc(p) => write!(f, "oidc:{p}")?,
                m => f.write_str(m.name())?,
            }
        }
        Ok(())
    }
}

impl From<String> for AuthMethods {
    fn from(s: String) -> Self {
        AuthMethods::parse(&s)
    }
}

impl From<AuthMethods> for String {
    fn from(m: AuthMethods) -> Self {
        m.to_string()
    }
}

impl Session {
    /// The moment the session stops being valid: the earlier of the idle and absolute ends.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.idle_expires_at.min(self.absolute_expires_at)
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at() <= now
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing server could not be reached or answered with an error. Callers fail closed.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    #[error("session store data corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// Persistence for sessions. Every backend passes the same conformance suite
/// (`tests/session_store.rs`). `now` is passed in so expiry is testable without sleeping.
///
/// Implementations must treat a session whose [`Session::expires_at`] is at or before `now` as
/// absent, and may drop it at any time after that.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Store a new session. Its `id` and `token_hash` are fresh random values.
    async fn create(&self, session: &Session) -> Result<(), StoreError>;

    /// Look a session up by the hash of its token.
    async fn get(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<Session>, StoreError>;

    /// Replace the stored session with the same `id`, atomically moving it from `old_hash` to
    /// `session.token_hash` (they are equal when the token is not rotated). Returns false when the
    /// session no longer exists (revoked concurrently): the caller must then treat it as gone.
    async fn update(&self, old_hash: &TokenHash, session: &Session) -> Result<bool, StoreError>;

    /// Record activity: move `last_seen_at` and `idle_expires_at`. Returns false if gone.
    async fn touch(
        &self,
        session: &Session,
        last_seen_at: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Delete one session by public id; with `owner`, only if it belongs to that user (so a user
    /// cannot revoke someone else's session by guessing ids). Returns whether it was deleted.
    async fn delete(&self, id: &str, owner: Option<i64>) -> Result<bool, StoreError>;

    /// Live sessions of one user, newest first.
    async fn list(&self, user_id: i64, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError>;

    /// Delete every session of a user except the one with public id `except`. Returns the count.
    async fn delete_all(&self, user_id: i64, except: Option<&str>) -> Result<u64, StoreError>;

    /// Every live session (admin listing), newest first.
    async fn list_all(&self, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError>;

    /// How many sessions are live (the `sessiongate_active_sessions` gauge). The default lists
    /// them; SQL stores count.
    async fn count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(self.list_all(now).await?.len() as u64)
    }

    /// Delete expired sessions. Returns how many were removed (backends with native expiry may
    /// return 0).
    async fn gc(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Keep `value` under `key` (server-chosen and random, e.g. a passkey ceremony) until
    /// `expires_at`, for exactly one [`SessionStore::take_once`]. A key is never reused.
    async fn put_once(&self, key: &str, value: &[u8], expires_at: DateTime<Utc>) -> Result<(), StoreError>;

    /// The value under `key`, removed atomically: of two takes, on any instances sharing the
    /// store, one gets it. None when absent, taken or expired at `now`.
    async fn take_once(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Vec<u8>>, StoreError>;
}
