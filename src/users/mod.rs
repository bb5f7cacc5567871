//! User accounts: the model and the store trait (native SQLite/PostgreSQL, or an existing Django
//! `auth_user` table).

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

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
}
