//! Native user store on the embedded SQLite database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool, sqlite::SqliteRow};

use super::names::{KEY_VERSION, normalize_username, skeleton};
use super::{
    AccountStore, AccountToken, NewUser, SecondFactorStore, TokenPurpose, TotpState, User, UserStore, UserStoreError,
    login_key, purpose_from_str,
};

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
        mfa: r.get("totp_enabled"),
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
    /// `EmailTaken` when `email` is another account's username: a username may be an address
    /// (its owner's, when it was made), and that address must not log anyone else in.
    async fn refuse_username_as_email(&self, email: Option<&str>, except: i64) -> Result<(), UserStoreError> {
        let Some(key) = email.map(login_key) else { return Ok(()) };
        let clash = sqlx::query("SELECT 1 FROM users WHERE username_key = ? AND id <> ?")
            .bind(key)
            .bind(except)
            .fetch_optional(&self.pool)
            .await?;
        if clash.is_some() { Err(UserStoreError::EmailTaken) } else { Ok(()) }
    }

    async fn insert(&self, u: &NewUser, active: bool, created_at: DateTime<Utc>) -> Result<User, UserStoreError> {
        if u.email.as_deref().map(login_key) != Some(login_key(&u.username)) {
            self.refuse_username_as_email(u.email.as_deref(), 0).await?;
        }
        let r = sqlx::query(
            "INSERT INTO users (username, username_key, username_skeleton, key_version, email, email_key,
                                password_hash, is_active, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(normalize_username(&u.username))
        .bind(login_key(&u.username))
        .bind(skeleton(&u.username))
        .bind(KEY_VERSION)
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
             ORDER BY coalesce(email_key = ?1, 0) DESC LIMIT 1",
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

    async fn upgrade_keys(&self) -> Result<u64, UserStoreError> {
        let rows = sqlx::query("SELECT id, username, email FROM users WHERE key_version < ?")
            .bind(KEY_VERSION)
            .fetch_all(&self.pool)
            .await?;
        let mut changed = 0;
        for r in rows {
            let (id, username, email): (i64, String, Option<String>) = (r.get("id"), r.get("username"), r.get("email"));
            let keys = super::names::keys_of(&username, email.as_deref());
            for (k, e, sk) in keys.attempts() {
                let done = sqlx::query(
                    "UPDATE users SET username_key = coalesce(?, username_key), email_key = coalesce(?, email_key),
                     username_skeleton = ?, key_version = ? WHERE id = ?",
                )
                .bind(k)
                .bind(e)
                .bind(sk)
                .bind(KEY_VERSION)
                .bind(id)
                .execute(&self.pool)
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

    async fn find_by_email(&self, email: &str) -> Result<Option<User>, UserStoreError> {
        let r = sqlx::query("SELECT * FROM users WHERE email_key = ?")
            .bind(login_key(email))
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.as_ref().map(row))
    }

    fn accounts(&self) -> Option<&dyn AccountStore> {
        Some(self)
    }

    fn second_factor(&self) -> Option<&dyn SecondFactorStore> {
        Some(self)
    }
}

#[async_trait]
impl AccountStore for SqliteUsers {
    async fn set_email(&self, id: i64, email: Option<&str>, verified: bool) -> Result<bool, UserStoreError> {
        let email = email.map(str::trim);
        self.refuse_username_as_email(email, id).await?;
        let done = sqlx::query("UPDATE users SET email = ?, email_key = ?, email_verified = ? WHERE id = ?")
            .bind(email)
            .bind(email.map(login_key))
            .bind(verified && email.is_some())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| unique_violation(&e).unwrap_or_else(|| e.into()))?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_token(&self, t: &AccountToken) -> Result<(), UserStoreError> {
        sqlx::query(
            "INSERT INTO account_tokens (token_hash, purpose, user_id, email, created_at, expires_at, session_id,
                                         password_fp)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.token_hash)
        .bind(t.purpose.as_str())
        .bind(t.user_id)
        .bind(&t.email)
        .bind(t.created_at.timestamp_millis())
        .bind(t.expires_at.timestamp_millis())
        .bind(&t.session_id)
        .bind(&t.password_fp)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_token(
        &self,
        hash: &str,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountToken>, UserStoreError> {
        let r = sqlx::query(
            "SELECT * FROM account_tokens
             WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(hash)
        .bind(purpose.as_str())
        .bind(now.timestamp_millis())
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.as_ref().and_then(token_row))
    }

    async fn consume_token(
        &self,
        hash: &str,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<AccountToken>, UserStoreError> {
        let r = sqlx::query(
            "UPDATE account_tokens SET used_at = ?1
             WHERE token_hash = ?2 AND purpose = ?3 AND used_at IS NULL AND expires_at > ?1
             RETURNING *",
        )
        .bind(now.timestamp_millis())
        .bind(hash)
        .bind(purpose.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.as_ref().and_then(token_row))
    }

    async fn revoke_tokens(&self, user_id: i64, purpose: TokenPurpose) -> Result<u64, UserStoreError> {
        let done =
            sqlx::query("UPDATE account_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL")
                .bind(Utc::now().timestamp_millis())
                .bind(user_id)
                .bind(purpose.as_str())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    async fn purge_tokens(&self, now: DateTime<Utc>) -> Result<u64, UserStoreError> {
        let done = sqlx::query("DELETE FROM account_tokens WHERE expires_at <= ?")
            .bind(now.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SecondFactorStore for SqliteUsers {
    async fn claim_login(
        &self,
        id: i64,
        seen: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Result<bool, UserStoreError> {
        let done = sqlx::query("UPDATE users SET last_login = ? WHERE id = ? AND last_login IS ?")
            .bind(at.timestamp_millis())
            .bind(id)
            .bind(seen.map(|t| t.timestamp_millis()))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn totp(&self, id: i64) -> Result<Option<TotpState>, UserStoreError> {
        let r = sqlx::query(
            "SELECT totp_secret, totp_enabled, totp_last_step FROM users WHERE id = ? AND totp_secret IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.map(|r| TotpState {
            sealed_secret: r.get("totp_secret"),
            enabled: r.get("totp_enabled"),
            last_step: r.get("totp_last_step"),
        }))
    }

    async fn set_totp_pending(&self, id: i64, sealed: &[u8]) -> Result<bool, UserStoreError> {
        let done =
            sqlx::query("UPDATE users SET totp_secret = ?, totp_last_step = NULL WHERE id = ? AND totp_enabled = 0")
                .bind(sealed)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn enable_totp(&self, id: i64, step: i64, recovery_hashes: &[String]) -> Result<bool, UserStoreError> {
        // The first statement writes, so the transaction takes the write lock at once (no
        // read-then-write upgrade, no SQLITE_BUSY_SNAPSHOT).
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET totp_enabled = 1, totp_last_step = ?
             WHERE id = ? AND totp_secret IS NOT NULL AND totp_enabled = 0",
        )
        .bind(step)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?").bind(id).execute(&mut *tx).await?;
        for h in recovery_hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)")
                .bind(id)
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn disable_totp(&self, id: i64) -> Result<bool, UserStoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET totp_secret = NULL, totp_enabled = 0, totp_last_step = NULL
             WHERE id = ? AND totp_secret IS NOT NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn use_totp_step(&self, id: i64, step: i64) -> Result<bool, UserStoreError> {
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = ?1
             WHERE id = ?2 AND totp_enabled = 1 AND (totp_last_step IS NULL OR totp_last_step < ?1)",
        )
        .bind(step)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn use_recovery_code(&self, id: i64, code_hash: &str, at: DateTime<Utc>) -> Result<bool, UserStoreError> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = ? WHERE id = (
                 SELECT id FROM recovery_codes WHERE user_id = ? AND code_hash = ? AND used_at IS NULL LIMIT 1)",
        )
        .bind(at.timestamp_millis())
        .bind(id)
        .bind(code_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn recovery_codes_left(&self, id: i64) -> Result<i64, UserStoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL")
            .bind(id)
            .fetch_one(&self.pool)
            .await?)
    }
}

fn token_row(r: &SqliteRow) -> Option<AccountToken> {
    Some(AccountToken {
        token_hash: r.get("token_hash"),
        purpose: purpose_from_str(r.get("purpose"))?,
        user_id: r.get("user_id"),
        email: r.get("email"),
        created_at: time(r.get("created_at")),
        expires_at: time(r.get("expires_at")),
        used_at: r.get::<Option<i64>, _>("used_at").map(time),
        session_id: r.get("session_id"),
        password_fp: r.get("password_fp"),
    })
}
