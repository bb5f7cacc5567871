//! Stored passkeys (WebAuthn credentials): what the user store keeps, not how a ceremony runs
//! (that is `crate::passkeys`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::UserStoreError;

/// One registered passkey.
#[derive(Clone, PartialEq)]
pub struct PasskeyRecord {
    pub id: i64,
    pub user_id: i64,
    /// The credential id, base64url without padding: the browser's `credential.id`.
    pub credential_id: String,
    /// The WebAuthn user handle of the account (16 random bytes, the same for all its passkeys):
    /// a discoverable login names its account by it, and it says nothing about the user.
    pub user_handle: Vec<u8>,
    /// The credential as `webauthn-rs` serialises it (public key, sign count, flags).
    pub passkey: String,
    /// Chosen by the user; shown in their list.
    pub name: String,
    /// What the browser reported at registration (`usb`, `internal`, `hybrid`, …), space-separated.
    pub transports: Option<String>,
    /// The browser's (unsigned) `credProps.rk` hint: whether the passkey can log in without a
    /// username. None when the browser did not say.
    pub discoverable: Option<bool>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for PasskeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyRecord").field("id", &self.id).field("user_id", &self.user_id).finish_non_exhaustive()
    }
}

/// What registering a passkey stores.
#[derive(Clone)]
pub struct NewPasskey {
    pub user_id: i64,
    pub credential_id: String,
    pub user_handle: Vec<u8>,
    pub passkey: String,
    pub name: String,
    pub transports: Option<String>,
    pub discoverable: Option<bool>,
}

/// Passkey storage, a capability of the native stores ([`super::UserStore::passkeys`]).
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// Store a new passkey. A credential id registered before (to anyone) is
    /// [`UserStoreError::PasskeyTaken`].
    async fn add_passkey(&self, p: &NewPasskey, at: DateTime<Utc>) -> Result<PasskeyRecord, UserStoreError>;

    /// The user's passkeys, oldest first.
    async fn passkeys_of(&self, user_id: i64) -> Result<Vec<PasskeyRecord>, UserStoreError>;

    /// The passkey with this credential id (base64url).
    async fn passkey_by_credential(&self, credential_id: &str) -> Result<Option<PasskeyRecord>, UserStoreError>;

    /// After a login with passkey `id` whose assertion carried `sign_count`: its last use, and
    /// its new state when the sign count or backup flags moved. Atomic: false when the stored
    /// count is already at or past a non-zero `sign_count` (a concurrent or cloned assertion
    /// won), or the passkey was deleted meanwhile.
    async fn record_passkey_use(
        &self,
        id: i64,
        passkey: Option<&str>,
        sign_count: u32,
        at: DateTime<Utc>,
    ) -> Result<bool, UserStoreError>;

    /// Rename the user's passkey `id`: the renamed passkey, None when the user has no such one.
    async fn rename_passkey(&self, user_id: i64, id: i64, name: &str) -> Result<Option<PasskeyRecord>, UserStoreError>;

    /// Delete the user's passkey `id`, unless it is the user's last login method: with
    /// `other_method` false (no password, no linked provider) the last passkey stays, decided
    /// atomically with concurrent deletes. `Ok(None)` when there is no such passkey,
    /// `Ok(Some(false))` when it is the last one.
    async fn remove_passkey(&self, user_id: i64, id: i64, other_method: bool) -> Result<Option<bool>, UserStoreError>;
}
