//! The PostgreSQL user store's capabilities: email changes and mailed tokens
//! ([`AccountStore`]), the second factor ([`SecondFactorStore`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Row, postgres::PgRow};

use super::{PostgresUsers, unique_violation};
use crate::db::{Deadline, PG_OP_TIMEOUT, PG_SCAN_TIMEOUT};
use crate::users::{
    AccountStore, AccountToken, SecondFactorStore, TokenPurpose, TotpState, UserStoreError, login_key, purpose_from_str,
};

#[async_trait]
impl AccountStore for PostgresUsers {
    async fn set_email(&self, id: i64, email: Option<&str>, verified: bool) -> Result<bool, UserStoreError> {
        let email = email.map(str::trim);
        self.refuse_username_as_email(email, id).await?;
        let done = sqlx::query("UPDATE users SET email = $1, email_key = $2, email_verified = $3 WHERE id = $4")
            .bind(email)
            .bind(email.map(login_key))
            .bind(verified && email.is_some())
            .bind(id)
            .execute(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await
            .map_err(|e| unique_violation(&e).unwrap_or_else(|| e.into()))?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_token(&self, t: &AccountToken) -> Result<(), UserStoreError> {
        sqlx::query(
            "INSERT INTO account_tokens (token_hash, purpose, user_id, email, created_at, expires_at, session_id,
                                         password_fp)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.token_hash)
        .bind(t.purpose.as_str())
        .bind(t.user_id)
        .bind(&t.email)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(&t.session_id)
        .bind(&t.password_fp)
        .execute(&self.pool)
        .within(PG_OP_TIMEOUT)
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
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(&self.pool)
        .within(PG_OP_TIMEOUT)
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
            "UPDATE account_tokens SET used_at = $1
             WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1
             RETURNING *",
        )
        .bind(now)
        .bind(hash)
        .bind(purpose.as_str())
        .fetch_optional(&self.pool)
        .within(PG_OP_TIMEOUT)
        .await?;
        Ok(r.as_ref().and_then(token_row))
    }

    async fn revoke_tokens(&self, user_id: i64, purpose: TokenPurpose) -> Result<u64, UserStoreError> {
        let done = sqlx::query(
            "UPDATE account_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
        )
        .bind(Utc::now())
        .bind(user_id)
        .bind(purpose.as_str())
        .execute(&self.pool)
        .within(PG_OP_TIMEOUT)
        .await?;
        Ok(done.rows_affected())
    }

    async fn purge_tokens(&self, now: DateTime<Utc>) -> Result<u64, UserStoreError> {
        let done = sqlx::query("DELETE FROM account_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .within(PG_SCAN_TIMEOUT)
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SecondFactorStore for PostgresUsers {
    async fn claim_login(
        &self,
        id: i64,
        seen: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Result<bool, UserStoreError> {
        let done = sqlx::query("UPDATE users SET last_login = $1 WHERE id = $2 AND last_login IS NOT DISTINCT FROM $3")
            .bind(at)
            .bind(id)
            .bind(seen)
            .execute(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn totp(&self, id: i64) -> Result<Option<TotpState>, UserStoreError> {
        let r = sqlx::query(
            "SELECT totp_secret, totp_enabled, totp_last_step FROM users WHERE id = $1 AND totp_secret IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .within(PG_OP_TIMEOUT)
        .await?;
        let bad = |e: sqlx::Error| UserStoreError::Unavailable(format!("unexpected users row: {e}"));
        r.map(|r| {
            Ok(TotpState {
                sealed_secret: r.try_get("totp_secret").map_err(bad)?,
                enabled: r.try_get("totp_enabled").map_err(bad)?,
                last_step: r.try_get("totp_last_step").map_err(bad)?,
            })
        })
        .transpose()
    }

    async fn set_totp_pending(&self, id: i64, sealed: &[u8]) -> Result<bool, UserStoreError> {
        let done =
            sqlx::query("UPDATE users SET totp_secret = $1, totp_last_step = NULL WHERE id = $2 AND NOT totp_enabled")
                .bind(sealed)
                .bind(id)
                .execute(&self.pool)
                .within(PG_OP_TIMEOUT)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn enable_totp(&self, id: i64, step: i64, recovery_hashes: &[String]) -> Result<bool, UserStoreError> {
        let work = async {
            let mut tx = self.pool.begin().await?;
            let done = sqlx::query(
                "UPDATE users SET totp_enabled = TRUE, totp_last_step = $1
                 WHERE id = $2 AND totp_secret IS NOT NULL AND NOT totp_enabled",
            )
            .bind(step)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) SELECT $1, unnest($2::text[])")
                .bind(id)
                .bind(recovery_hashes)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(true)
        };
        Ok(Box::pin(work).within(PG_OP_TIMEOUT).await?)
    }

    async fn disable_totp(&self, id: i64) -> Result<bool, UserStoreError> {
        let work = async {
            let mut tx = self.pool.begin().await?;
            let done = sqlx::query(
                "UPDATE users SET totp_secret = NULL, totp_enabled = FALSE, totp_last_step = NULL
                 WHERE id = $1 AND totp_secret IS NOT NULL",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(done.rows_affected() == 1)
        };
        Ok(Box::pin(work).within(PG_OP_TIMEOUT).await?)
    }

    async fn use_totp_step(&self, id: i64, step: i64) -> Result<bool, UserStoreError> {
        // One conditional UPDATE: concurrent uses of one code serialise on the row lock and only
        // the first still sees the older step.
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = $1
             WHERE id = $2 AND totp_enabled AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(id)
        .execute(&self.pool)
        .within(PG_OP_TIMEOUT)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn use_recovery_code(&self, id: i64, code_hash: &str, at: DateTime<Utc>) -> Result<bool, UserStoreError> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE used_at IS NULL AND id = (
                 SELECT id FROM recovery_codes WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL LIMIT 1)",
        )
        .bind(at)
        .bind(id)
        .bind(code_hash)
        .execute(&self.pool)
        .within(PG_OP_TIMEOUT)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn recovery_codes_left(&self, id: i64) -> Result<i64, UserStoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
            .bind(id)
            .fetch_one(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await?)
    }
}

fn token_row(r: &PgRow) -> Option<AccountToken> {
    Some(AccountToken {
        token_hash: r.try_get("token_hash").ok()?,
        purpose: purpose_from_str(r.try_get("purpose").ok()?)?,
        user_id: r.try_get("user_id").ok()?,
        email: r.try_get("email").ok()?,
        created_at: r.try_get("created_at").ok()?,
        expires_at: r.try_get("expires_at").ok()?,
        used_at: r.try_get("used_at").ok()?,
        session_id: r.try_get("session_id").ok()?,
        password_fp: r.try_get("password_fp").ok()?,
    })
}
