//! User accounts: the model and the store trait (native SQLite/PostgreSQL, or an existing Django
//! `auth_user` table).

pub mod django;
pub mod postgres;
pub mod sqlite;

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
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicUser {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub mfa: bool,
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
}

impl From<sqlx::Error> for UserStoreError {
    fn from(e: sqlx::Error) -> Self {
        UserStoreError::Unavailable(e.to_string())
    }
}

/// Normalised form used for case-insensitive uniqueness and lookup.
pub fn login_key(s: &str) -> String {
    s.trim().to_lowercase()
}

#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Find by username, or by email when `login` contains '@' and no username matches.
    async fn find_by_login(&self, login: &str) -> Result<Option<User>, UserStoreError>;
    async fn get(&self, id: i64) -> Result<Option<User>, UserStoreError>;
    async fn create(&self, user: NewUser) -> Result<User, UserStoreError>;
    async fn set_password(&self, id: i64, password_hash: &str) -> Result<bool, UserStoreError>;
    async fn set_active(&self, id: i64, active: bool) -> Result<bool, UserStoreError>;
    async fn record_login(&self, id: i64, at: DateTime<Utc>) -> Result<(), UserStoreError>;
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
            .create(NewUser { username: user.username.clone(), email: user.email.clone(), password_hash: user.password_hash.clone() })
            .await?;
        if !user.is_active {
            self.set_active(created.id, false).await?;
        }
        Ok(User { is_active: user.is_active, ..created })
    }
}
