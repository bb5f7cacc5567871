//! PostgreSQL session store: for several gateway instances sharing one database.
//!
//! Same statements and semantics as the SQLite store; times are `timestamptz` (PostgreSQL keeps
//! microseconds, so sub-microsecond parts of a [`Session`]'s times do not round-trip). Open the
//! pool with [`crate::db::connect_postgres`], which applies `migrations/postgres`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row, postgres::PgRow};

use crate::db::{Deadline, PG_OP_TIMEOUT, PG_SCAN_TIMEOUT};

use super::{Session, SessionStore, StoreError, TokenHash};

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub fn new(pool: PgPool) -> Self {
        PostgresStore { pool }
    }
}

fn row(r: &PgRow) -> Result<Session, StoreError> {
    let corrupt = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    Ok(Session {
        id: r.try_get("id").map_err(corrupt)?,
        token_hash: TokenHash(r.try_get("token_hash").map_err(corrupt)?),
        user_id: r.try_get("user_id").map_err(corrupt)?,
        csrf_secret: r.try_get("csrf_secret").map_err(corrupt)?,
        created_at: r.try_get("created_at").map_err(corrupt)?,
        last_seen_at: r.try_get("last_seen_at").map_err(corrupt)?,
        idle_expires_at: r.try_get("idle_expires_at").map_err(corrupt)?,
        absolute_expires_at: r.try_get("absolute_expires_at").map_err(corrupt)?,
        authenticated_at: r.try_get("authenticated_at").map_err(corrupt)?,
        ip: r.try_get("ip").map_err(corrupt)?,
        user_agent: r.try_get("user_agent").map_err(corrupt)?,
        remember: r.try_get("remember").map_err(corrupt)?,
    })
}

/// A session is live while both of its ends are after `$1`.
const LIVE: &str = "LEAST(idle_expires_at, absolute_expires_at) > $1";

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create(&self, s: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, csrf_secret, created_at, last_seen_at,
             idle_expires_at, absolute_expires_at, authenticated_at, ip, user_agent, remember)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&s.id)
        .bind(&s.token_hash.0)
        .bind(s.user_id)
        .bind(&s.csrf_secret)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.idle_expires_at)
        .bind(s.absolute_expires_at)
        .bind(s.authenticated_at)
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(s.remember)
        .execute(&self.pool)
        .within(PG_OP_TIMEOUT)
        .await?;
        Ok(())
    }

    async fn get(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<Session>, StoreError> {
        let r = sqlx::query(&format!("SELECT * FROM sessions WHERE token_hash = $2 AND {LIVE}"))
            .bind(now)
            .bind(&hash.0)
            .fetch_optional(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await?;
        r.as_ref().map(row).transpose()
    }

    async fn update(&self, old_hash: &TokenHash, s: &Session) -> Result<bool, StoreError> {
        // One statement: the token moves atomically and a concurrent revocation wins (a
        // concurrent update of the same row waits for the first, then re-checks the WHERE clause
        // under READ COMMITTED and finds the old hash gone).
        let done = sqlx::query(
            "UPDATE sessions SET token_hash = $1, csrf_secret = $2, last_seen_at = $3,
             idle_expires_at = $4, absolute_expires_at = $5, authenticated_at = $6, ip = $7,
             user_agent = $8, remember = $9 WHERE id = $10 AND token_hash = $11",
        )
        .bind(&s.token_hash.0)
        .bind(&s.csrf_secret)
        .bind(s.last_seen_at)
        .bind(s.idle_expires_at)
        .bind(s.absolute_expires_at)
        .bind(s.authenticated_at)
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(s.remember)
        .bind(&s.id)
        .bind(&old_hash.0)
        .execute(&self.pool)
        .within(PG_OP_TIMEOUT)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch(
        &self,
        s: &Session,
        last_seen_at: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE sessions SET last_seen_at = $1, idle_expires_at = $2 WHERE id = $3")
            .bind(last_seen_at)
            .bind(idle_expires_at)
            .bind(&s.id)
            .execute(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete(&self, id: &str, owner: Option<i64>) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = $1 AND ($2::BIGINT IS NULL OR user_id = $2)")
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list(&self, user_id: i64, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM sessions WHERE user_id = $2 AND {LIVE} ORDER BY created_at DESC, id COLLATE \"C\""
        ))
        .bind(now)
        .bind(user_id)
        .fetch_all(&self.pool)
        .within(PG_OP_TIMEOUT)
        .await?;
        rows.iter().map(row).collect()
    }

    async fn delete_all(&self, user_id: i64, except: Option<&str>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2::TEXT IS NULL OR id <> $2)")
            .bind(user_id)
            .bind(except)
            .execute(&self.pool)
            .within(PG_OP_TIMEOUT)
            .await?;
        Ok(done.rows_affected())
    }

    async fn list_all(&self, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT * FROM sessions WHERE {LIVE} ORDER BY created_at DESC, id COLLATE \"C\""))
                .bind(now)
                .fetch_all(&self.pool)
                .within(PG_SCAN_TIMEOUT)
                .await?;
        rows.iter().map(row).collect()
    }

    async fn count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM sessions WHERE {LIVE}"))
            .bind(now)
            .fetch_one(&self.pool)
            .within(PG_SCAN_TIMEOUT)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn gc(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE LEAST(idle_expires_at, absolute_expires_at) <= $1")
            .bind(now)
            .execute(&self.pool)
            .within(PG_SCAN_TIMEOUT)
            .await?;
        Ok(done.rows_affected())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).within(PG_OP_TIMEOUT).await?;
        Ok(())
    }
}
