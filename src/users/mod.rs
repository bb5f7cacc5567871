//! User accounts: the model and the store trait (native SQLite/PostgreSQL, or an existing Django
//! `auth_user` table).

#[cfg(feature = "django")]
pub mod django;
pub mod names;
pub mod passkeys;
#[cfg(feature = "postgres")]
pub mod postgres;
mod sql;
mod sql_passkeys;
mod sql_second_factor;
pub mod sqlite;

pub use names::{account_key, login_key};
pub use passkeys::{NewPasskey, PasskeyRecord, PasskeyStore};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::password::HashFormat;

/// A stored account. `password_hash` is a PHC string (Argon2id) or a Django-encoded hash.
#[derive(Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub password_hash: String,
    pub is_active: bool,
    pub mfa: bool,
    pub created_at: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for User {
    // The hash stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

/// The public view of a user (SPEC §4 `User`).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
#[serde(rename_all = "camelCase")]
pub struct PublicUser {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub mfa: bool,
    #[serde(serialize_with = "crate::http::json::rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<&User> for PublicUser {
    fn from(u: &User) -> Self {
        PublicUser {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            mfa: u.mfa,
            created_at: u.created_at,
        }
    }
}

/// What creating a user needs; the hash is computed by the caller (off the async runtime).
#[derive(Clone)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub password_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UserStoreError {
    #[error("username already taken")]
    UsernameTaken,
    #[error("email already taken")]
    EmailTaken,
    #[error("user store unavailable: {0}")]
    Unavailable(String),
    #[error("operation not supported by this user store: {0}")]
    Unsupported(&'static str),
    #[error("passkey already registered")]
    PasskeyTaken,
}

impl From<sqlx::Error> for UserStoreError {
    fn from(e: sqlx::Error) -> Self {
        UserStoreError::Unavailable(e.to_string())
    }
}

/// Where the first start writes the bootstrap `admin`'s random password (`data_dir`-relative).
pub const INITIAL_ADMIN_FILE: &str = "initial-admin-password";

/// The bootstrap account's name.
pub const INITIAL_ADMIN: &str = "admin";

/// After `username`'s password changed: the initial admin password no longer works, so its file
/// goes (it would only mislead, and it is a secret on disk). True when a file was removed.
pub fn forget_initial_password(data_dir: &std::path::Path, username: &str) -> bool {
    if username != INITIAL_ADMIN {
        return false;
    }
    let path = data_dir.join(INITIAL_ADMIN_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "the initial admin password was changed: its file is removed");
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the initial admin password was changed, but its file could not be removed: delete it");
            false
        }
    }
}

/// The login time to claim after `seen`: `now`, but always later than `seen` (by at least the
/// millisecond stores keep). A claim that wrote the value it compared with could be made
/// again, so a pending cookie replayed within the same millisecond would open a second session.
pub fn next_login_time(seen: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
    match seen {
        Some(s) if now <= s => s + chrono::Duration::milliseconds(1),
        _ => now,
    }
}

#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Find by login identifier ([`login_key`]): an identifier with `@` names the account
    /// with that email address, else (older accounts) the one with that username; without
    /// `@`, the username. Unambiguous: new usernames with `@` must be their own address
    /// ([`names::check_username`]).
    async fn find_by_login(&self, login: &str) -> Result<Option<User>, UserStoreError>;
    async fn get(&self, id: i64) -> Result<Option<User>, UserStoreError>;
    async fn create(&self, user: NewUser) -> Result<User, UserStoreError>;
    async fn set_password(&self, id: i64, password_hash: &str) -> Result<bool, UserStoreError>;
    async fn set_active(&self, id: i64, active: bool) -> Result<bool, UserStoreError>;
    async fn record_login(&self, id: i64, at: DateTime<Utc>) -> Result<(), UserStoreError>;

    /// Recompute stored name keys written by an older release ([`names`]); run at start after
    /// the migrations. Returns how many rows changed.
    async fn upgrade_keys(&self) -> Result<u64, UserStoreError> {
        Ok(0)
    }
    async fn remove(&self, id: i64) -> Result<bool, UserStoreError>;
    async fn list(&self) -> Result<Vec<User>, UserStoreError>;
    async fn count(&self) -> Result<i64, UserStoreError>;
    async fn ping(&self) -> Result<(), UserStoreError>;

    /// The format password hashes must be written in for this store: `server::open_stores`
    /// configures [`crate::password::Passwords`] with it, so every writer (`user passwd`, resets,
    /// upgrades) produces hashes the store's other readers accept.
    fn hash_format(&self) -> HashFormat {
        HashFormat::Argon2id
    }

    /// Whether a successful login may rewrite an outdated or foreign hash
    /// ([`crate::password::Passwords::needs_rehash`]). Native stores: always. The Django store:
    /// only when configured, because Django logs a user out everywhere when their hash changes.
    fn rehash_on_login(&self) -> bool {
        true
    }

    /// Copy a user from another system (`sessiongate import-django`) with its hash as it is.
    /// The default creates the user and then disables it when inactive; stores that can keep
    /// `created_at` override it.
    async fn import(&self, user: &User) -> Result<User, UserStoreError> {
        let created = self
            .create(NewUser {
                username: user.username.clone(),
                email: user.email.clone(),
                password_hash: user.password_hash.clone(),
            })
            .await?;
        if !user.is_active {
            self.set_active(created.id, false).await?;
        }
        Ok(User { is_active: user.is_active, ..created })
    }

    // ---- capabilities ---------------------------------------------------------------------------
    // What a backend can hold beyond the core is a trait of its own, offered here or not: "not
    // supported" is a type fact (Django's `auth_user` has no such columns), not a runtime answer.

    /// Email changes and mailed one-time tokens, when this store can keep them.
    fn accounts(&self) -> Option<&dyn AccountStore> {
        None
    }

    /// TOTP, recovery codes and two-step login claims, when this store can keep them.
    fn second_factor(&self) -> Option<&dyn SecondFactorStore> {
        None
    }

    /// Passkeys, when this store can keep them.
    fn passkeys(&self) -> Option<&dyn PasskeyStore> {
        None
    }

    /// The user whose email address is `email` (case-insensitive), for password resets. The
    /// default asks [`UserStore::find_by_login`] and keeps only an exact email match.
    async fn find_by_email(&self, email: &str) -> Result<Option<User>, UserStoreError> {
        let key = login_key(email);
        Ok(self.find_by_login(email).await?.filter(|u| u.email.as_deref().map(login_key).as_deref() == Some(&key)))
    }
}

/// Email addresses and mailed one-time tokens (reset, verification, change, cancel).
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Set (or clear) the email address and whether it is verified. `EmailTaken` when another
    /// user has it; false when there is no such user.
    async fn set_email(&self, id: i64, email: Option<&str>, verified: bool) -> Result<bool, UserStoreError>;

    /// Store a one-time token (only its hash).
    async fn create_token(&self, token: &AccountToken) -> Result<(), UserStoreError>;

    /// A live token: unused, not expired at `now`, for `purpose`.
    async fn find_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountToken>, UserStoreError>;

    /// Use a live token, atomically: Some exactly once, None when unknown, used or expired.
    async fn consume_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountToken>, UserStoreError>;

    /// Invalidate every unused token of the user for `purpose`; returns how many.
    async fn revoke_tokens(&self, user_id: i64, purpose: TokenPurpose) -> Result<u64, UserStoreError>;

    /// Delete tokens that expired before `now` (housekeeping).
    async fn purge_tokens(&self, now: DateTime<Utc>) -> Result<u64, UserStoreError>;
}

/// The second factor: TOTP state, recovery codes, and the compare-and-set login claim of the
/// two-step login.
#[async_trait]
pub trait SecondFactorStore: Send + Sync {
    /// [`UserStore::record_login`] only if the user's last login is still `seen` (compare and
    /// set): true exactly once per value. The second step of a two-step login claims the
    /// login this way, so its pending cookie works once, and not after any other login.
    async fn claim_login(
        &self,
        id: i64,
        seen: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Result<bool, UserStoreError>;

    /// The user's TOTP state (sealed secret, enabled, last used step); None when they have none.
    async fn totp(&self, id: i64) -> Result<Option<TotpState>, UserStoreError>;

    /// Store a new, unconfirmed TOTP secret (sealed). False when TOTP is already enabled (it must
    /// be disabled first) or there is no such user.
    async fn set_totp_pending(&self, id: i64, sealed_secret: &[u8]) -> Result<bool, UserStoreError>;

    /// Confirm the pending secret: enable TOTP with `step` as the last used time step, and
    /// replace the recovery codes by `recovery_hashes`, atomically. False when nothing is pending.
    async fn enable_totp(&self, id: i64, step: i64, recovery_hashes: &[String]) -> Result<bool, UserStoreError>;

    /// Remove the TOTP secret and every recovery code. False when there was nothing to remove.
    async fn disable_totp(&self, id: i64) -> Result<bool, UserStoreError>;

    /// Record `step` as used, atomically and only if it is later than the last used step: true
    /// means the code may be accepted (single use, RFC 6238 §5.2).
    async fn use_totp_step(&self, id: i64, step: i64) -> Result<bool, UserStoreError>;

    /// Mark the unused recovery code with this hash as used, atomically: true exactly once.
    async fn use_recovery_code(&self, id: i64, code_hash: &str, at: DateTime<Utc>) -> Result<bool, UserStoreError>;

    /// How many unused recovery codes the user has left.
    async fn recovery_codes_left(&self, id: i64) -> Result<i64, UserStoreError>;
}

impl dyn UserStore {
    /// [`UserStore::accounts`], or `Unsupported` naming what is missing.
    pub fn accounts_or_err(&self) -> Result<&dyn AccountStore, UserStoreError> {
        self.accounts().ok_or(UserStoreError::Unsupported("email changes, password resets and email verification"))
    }

    /// [`UserStore::passkeys`], or `Unsupported`.
    pub fn passkeys_or_err(&self) -> Result<&dyn PasskeyStore, UserStoreError> {
        self.passkeys().ok_or(UserStoreError::Unsupported("passkeys"))
    }

    /// [`UserStore::second_factor`], or `Unsupported`.
    pub fn second_factor_or_err(&self) -> Result<&dyn SecondFactorStore, UserStoreError> {
        self.second_factor().ok_or(UserStoreError::Unsupported("two-factor authentication"))
    }
}

/// A user's TOTP state as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpState {
    /// The secret, sealed with [`crate::mfa::Keys`] (never stored in clear).
    pub sealed_secret: Vec<u8>,
    /// False while enrollment awaits its first code.
    pub enabled: bool,
    /// The last accepted time step: codes for it or earlier steps are refused.
    pub last_step: Option<i64>,
}

impl std::fmt::Debug for TotpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpState").field("enabled", &self.enabled).field("last_step", &self.last_step).finish()
    }
}

/// What a mailed one-time token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    /// `POST /password/reset` → `/password/reset/confirm`.
    PasswordReset,
    /// Verify the account's current address (signup, or `POST /email` with it) →
    /// `/email/verify`.
    Email,
    /// Change to a new address (`POST /email`) → `/email/verify`. Bound to the requesting
    /// session and the password at that moment ([`AccountToken::session_id`],
    /// [`AccountToken::password_fp`]).
    EmailChange,
    /// The link in the notice to the old address that cancels pending changes →
    /// `/email/cancel`.
    EmailCancel,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::Email => "email",
            TokenPurpose::EmailChange => "email_change",
            TokenPurpose::EmailCancel => "email_cancel",
        }
    }
}

/// A one-time token as stored: the SHA-256 of the 256-bit random token mailed to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountToken {
    /// Hex SHA-256 of the token ([`AccountToken::hash`]).
    pub token_hash: String,
    pub purpose: TokenPurpose,
    pub user_id: i64,
    /// The address the token was sent to (for `Email`, the address being verified).
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// The public id of the session that asked for it (email changes): refused once that
    /// session is gone.
    pub session_id: Option<String>,
    /// [`crate::password::password_fingerprint`] when it was asked for (email changes): refused
    /// once the password changed.
    pub password_fp: Option<String>,
}

impl AccountToken {
    /// A fresh token: 32 bytes from the OS CSPRNG, base64url (43 characters), and the record to
    /// store (with only its hash).
    pub fn generate(
        purpose: TokenPurpose,
        user_id: i64,
        email: Option<String>,
        ttl: std::time::Duration,
        now: DateTime<Utc>,
    ) -> (String, AccountToken) {
        let token = crate::secret::random_b64(32);
        // Millisecond precision: what every store keeps.
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or_default();
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(30));
        let record = AccountToken {
            token_hash: Self::hash(&token),
            purpose,
            user_id,
            email,
            created_at: now,
            expires_at: now + ttl,
            used_at: None,
            session_id: None,
            password_fp: None,
        };
        (token, record)
    }

    /// Bind the token to the session that asked for it and to the password at that moment.
    pub fn bound(mut self, session_id: &str, password_hash: &str) -> Self {
        self.session_id = Some(session_id.to_owned());
        self.password_fp = Some(crate::password::password_fingerprint(password_hash));
        self
    }

    /// Hex SHA-256 of a token as received (garbage just hashes to an unknown value).
    pub fn hash(token: &str) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(token.trim().as_bytes()))
    }
}

pub(crate) fn purpose_from_str(s: &str) -> Option<TokenPurpose> {
    match s {
        "password_reset" => Some(TokenPurpose::PasswordReset),
        "email" => Some(TokenPurpose::Email),
        "email_change" => Some(TokenPurpose::EmailChange),
        "email_cancel" => Some(TokenPurpose::EmailCancel),
        _ => None,
    }
}

#[cfg(test)]
mod login_time_tests {
    use super::*;

    /// Found by the frozen test clock: a claim of the very value it compared with could be
    /// repeated, so the pending cookie's single use depended on the clock having moved.
    #[test]
    fn a_claimed_login_time_is_always_later_than_the_last() {
        let t = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        assert_eq!(next_login_time(None, t), t);
        assert_eq!(next_login_time(Some(t), t), t + chrono::Duration::milliseconds(1));
        let earlier = t - chrono::Duration::seconds(5);
        assert_eq!(next_login_time(Some(t), earlier), t + chrono::Duration::milliseconds(1));
        assert_eq!(next_login_time(Some(earlier), t), t);
    }
}
