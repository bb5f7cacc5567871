//! Native user store on PostgreSQL (same schema and semantics as the SQLite store).
//!
//! Open the pool with [`crate::db::connect_postgres`], which applies `migrations/postgres`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row, postgres::PgRow};

use crate::db::{Deadline, PG_OP_TIMEOUT, PG_SCAN_TIMEOUT};

use super::names::{KEY_VERSION, normalize_username, skeleton};
use super::{AccountStore, NewUser, SecondFactorStore, User, UserStore, UserStoreError, login_key};

pub struct PostgresUsers {
    pool: PgPool,
}

impl PostgresUsers {
    pub fn new(pool: PgPool) -> Self {
        PostgresUsers { pool }
    }

    /// `EmailTaken` when `email` is another account's username: a username may be an address
    /// (its owner's, when it was made), and that address must not log anyone else in.
    async fn refuse_username_as_email(&self, email: Option<&str>, except: i64) -> Result<(), UserStoreError> {
        let Some(key) = email.map(login_key) else { return Ok(()) };
        let clash = sqlx::query("SELECT 1 FROM users WHERE username_key = $1 AND id <> $2")
            .bind(key)
            .bind(except)
            .fetch_optional(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await?;
        if clash.is_some() { Err(UserStoreError::EmailTaken) } else { Ok(()) }
    }
}

fn row(r: &PgRow) -> Result<User, UserStoreError> {
    let bad = |e: sqlx::Error| UserStoreError::Unavailable(format!("unexpected users row: {e}"));
    Ok(User {
        id: r.try_get("id").map_err(bad)?,
        username: r.try_get("username").map_err(bad)?,
        email: r.try_get("email").map_err(bad)?,
        email_verified: r.try_get("email_verified").map_err(bad)?,
        password_hash: r.try_get("password_hash").map_err(bad)?,
        is_active: r.try_get("is_active").map_err(bad)?,
        mfa: r.try_get("totp_enabled").map_err(bad)?,
        created_at: r.try_get("created_at").map_err(bad)?,
        last_login: r.try_get("last_login").map_err(bad)?,
    })
}

/// Map a unique violation to the field it concerns, by constraint name (see the migration).
fn unique_violation(e: &sqlx::Error) -> Option<UserStoreError> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    Some(match db.constraint() {
        Some("users_email_key_unique") => UserStoreError::EmailTaken,
        _ => UserStoreError::UsernameTaken,
    })
}

#[async_trait]
impl UserStore for PostgresUsers {
    async fn find_by_login(&self, login: &str) -> Result<Option<User>, UserStoreError> {
        let key = login_key(login);
        let r = sqlx::query(
            "SELECT * FROM users WHERE username_key = $1
             OR (strpos($1, '@') > 0 AND email_key = $1)
             ORDER BY coalesce(email_key = $1, false) DESC LIMIT 1",
        )
        .bind(&key)
        .fetch_optional(&self.pool)
        .within(PG_OP_TIMEOUT)
        .await?;
        r.as_ref().map(row).transpose()
    }

    async fn get(&self, id: i64) -> Result<Option<User>, UserStoreError> {
        let r = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await?;
        r.as_ref().map(row).transpose()
    }

    async fn create(&self, u: NewUser) -> Result<User, UserStoreError> {
        if u.email.as_deref().map(login_key) != Some(login_key(&u.username)) {
            self.refuse_username_as_email(u.email.as_deref(), 0).await?;
        }
        let r = sqlx::query(
            "INSERT INTO users (username, username_key, username_skeleton, key_version, email, email_key,
                                password_hash, created_at)
             VALUES ($1, $2, $3, $8, $4, $5, $6, $7) RETURNING *",
        )
        .bind(normalize_username(&u.username))
        .bind(login_key(&u.username))
        .bind(skeleton(&u.username))
        .bind(&u.email)
        .bind(u.email.as_deref().map(login_key))
        .bind(&u.password_hash)
        .bind(Utc::now())
        .bind(KEY_VERSION)
        .fetch_one(&self.pool)
        .within(PG_OP_TIMEOUT)
        .await
        .map_err(|e| unique_violation(&e).unwrap_or_else(|| e.into()))?;
        row(&r)
    }

    async fn set_password(&self, id: i64, hash: &str) -> Result<bool, UserStoreError> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id)
            .execute(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_active(&self, id: i64, active: bool) -> Result<bool, UserStoreError> {
        let done = sqlx::query("UPDATE users SET is_active = $1 WHERE id = $2")
            .bind(active)
            .bind(id)
            .execute(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_login(&self, id: i64, at: DateTime<Utc>) -> Result<(), UserStoreError> {
        sqlx::query("UPDATE users SET last_login = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await?;
        Ok(())
    }

    async fn upgrade_keys(&self) -> Result<u64, UserStoreError> {
        let rows = sqlx::query("SELECT id, username, email FROM users WHERE key_version < $1")
            .bind(KEY_VERSION)
            .fetch_all(&self.pool)
            .within(PG_SCAN_TIMEOUT)
            .await?;
        let mut changed = 0;
        for r in rows {
            let bad = |e: sqlx::Error| UserStoreError::Unavailable(format!("unexpected users row: {e}"));
            let id: i64 = r.try_get("id").map_err(bad)?;
            let (username, email): (String, Option<String>) =
                (r.try_get("username").map_err(bad)?, r.try_get("email").map_err(bad)?);
            let keys = super::names::keys_of(&username, email.as_deref());
            for (k, e, sk) in keys.attempts() {
                let done = sqlx::query(
                    "UPDATE users SET username_key = coalesce($1, username_key), email_key = coalesce($2, email_key),
                     username_skeleton = $3, key_version = $5 WHERE id = $4",
                )
                .bind(k)
                .bind(e)
                .bind(sk)
                .bind(id)
                .bind(KEY_VERSION)
                .execute(&self.pool)
                .within(PG_OP_TIMEOUT)
                .await;
                match done {
                    Ok(_) => {
                        keys.report(id, k.is_some(), sk.is_some());
                        changed += 1;
                        break;
                    }
                    Err(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(changed)
    }

    async fn remove(&self, id: i64) -> Result<bool, UserStoreError> {
        let done =
            sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&self.pool).within(PG_OP_TIMEOUT).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list(&self) -> Result<Vec<User>, UserStoreError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY id").fetch_all(&self.pool).within(PG_SCAN_TIMEOUT).await?;
        rows.iter().map(row).collect()
    }

    async fn count(&self) -> Result<i64, UserStoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).within(PG_SCAN_TIMEOUT).await?)
    }

    async fn ping(&self) -> Result<(), UserStoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).within(PG_OP_TIMEOUT).await?;
        Ok(())
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<User>, UserStoreError> {
        let r = sqlx::query("SELECT * FROM users WHERE email_key = $1")
            .bind(login_key(email))
            .fetch_optional(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await?;
        r.as_ref().map(row).transpose()
    }

    fn accounts(&self) -> Option<&dyn AccountStore> {
        Some(self)
    }

    fn second_factor(&self) -> Option<&dyn SecondFactorStore> {
        Some(self)
    }
}

mod capabilities;
