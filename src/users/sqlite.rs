//! Native user store on the embedded SQLite database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool, sqlite::SqliteRow};

use super::{NewUser, User, UserStore, UserStoreError, login_key};

pub struct SqliteUsers {
    pool: SqlitePool,
}

impl SqliteUsers {
    pub fn new(pool: SqlitePool) -> Self {
        SqliteUsers { pool }
    }
}

fn time(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

fn row(r: &SqliteRow) -> User {
    User {
        id: r.get("id"),
        username: r.get("username"),
        email: r.get("email"),
        email_verified: r.get("email_verified"),
        password_hash: r.get("password_hash"),
        is_active: r.get("is_active"),
        mfa: false,
        created_at: time(r.get("created_at")),
        last_login: r.get::<Option<i64>, _>("last_login").map(time),
    }
}

fn unique_violation(e: &sqlx::Error) -> Option<UserStoreError> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    Some(if db.message().contains("email") { UserStoreError::EmailTaken } else { UserStoreError::UsernameTaken })
}

impl SqliteUsers {
    async fn insert(&self, u: &NewUser, active: bool, created_at: DateTime<Utc>) -> Result<User, UserStoreError> {
        let r = sqlx::query(
            "INSERT INTO users (username, username_key, email, email_key, password_hash, is_active, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(u.username.trim())
        .bind(login_key(&u.username))
        .bind(&u.email)
        .bind(u.email.as_deref().map(login_key))
        .bind(&u.password_hash)
        .bind(active)
        .bind(created_at.timestamp_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(|e| unique_violation(&e).unwrap_or_else(|| e.into()))?;
        Ok(row(&r))
    }
}

#[async_trait]
impl UserStore for SqliteUsers {
    async fn find_by_login(&self, login: &str) -> Result<Option<User>, UserStoreError> {
        let key = login_key(login);
        let r = sqlx::query(
            "SELECT * FROM users WHERE username_key = ?1
             OR (instr(?1, '@') > 0 AND email_key = ?1)
             ORDER BY username_key = ?1 DESC LIMIT 1",
        )
        .bind(&key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.as_ref().map(row))
    }

    async fn get(&self, id: i64) -> Result<Option<User>, UserStoreError> {
        let r = sqlx::query("SELECT * FROM users WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        Ok(r.as_ref().map(row))
    }

    async fn create(&self, u: NewUser) -> Result<User, UserStoreError> {
        self.insert(&u, true, Utc::now()).await
    }

    /// Keeps the imported user's `created_at` (Django's `date_joined`) and active flag.
    async fn import(&self, u: &User) -> Result<User, UserStoreError> {
        let new =
            NewUser { username: u.username.clone(), email: u.email.clone(), password_hash: u.password_hash.clone() };
        self.insert(&new, u.is_active, u.created_at).await
    }

    async fn set_password(&self, id: i64, hash: &str) -> Result<bool, UserStoreError> {
        let done = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(hash)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_active(&self, id: i64, active: bool) -> Result<bool, UserStoreError> {
        let done = sqlx::query("UPDATE users SET is_active = ? WHERE id = ?")
            .bind(active)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_login(&self, id: i64, at: DateTime<Utc>) -> Result<(), UserStoreError> {
        sqlx::query("UPDATE users SET last_login = ? WHERE id = ?")
            .bind(at.timestamp_millis())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn remove(&self, id: i64) -> Result<bool, UserStoreError> {
        let done = sqlx::query("DELETE FROM users WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list(&self) -> Result<Vec<User>, UserStoreError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY id").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(row).collect())
    }

    async fn count(&self) -> Result<i64, UserStoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }

    async fn ping(&self) -> Result<(), UserStoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
