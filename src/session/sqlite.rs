//! SQLite session store (the embedded default), sharing the database file with the user store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool, sqlite::SqliteRow};

use super::{Session, SessionStore, StoreError, TokenHash};

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub fn new(pool: SqlitePool) -> Self {
        SqliteStore { pool }
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| StoreError::Corrupt(format!("bad time {v}")))
}

fn row(r: &SqliteRow) -> Result<Session, StoreError> {
    Ok(Session {
        id: r.get("id"),
        token_hash: TokenHash(r.get("token_hash")),
        user_id: r.get("user_id"),
        csrf_secret: r.get("csrf_secret"),
        created_at: time(r.get("created_at"))?,
        last_seen_at: time(r.get("last_seen_at"))?,
        idle_expires_at: time(r.get("idle_expires_at"))?,
        absolute_expires_at: time(r.get("absolute_expires_at"))?,
        authenticated_at: time(r.get("authenticated_at"))?,
        ip: r.get("ip"),
        user_agent: r.get("user_agent"),
        remember: r.get("remember"),
    })
}

const LIVE: &str = "idle_expires_at > ?1 AND absolute_expires_at > ?1";

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create(&self, s: &Session) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, csrf_secret, created_at, last_seen_at,
             idle_expires_at, absolute_expires_at, authenticated_at, ip, user_agent, remember)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.token_hash.0)
        .bind(s.user_id)
        .bind(&s.csrf_secret)
        .bind(ms(s.created_at))
        .bind(ms(s.last_seen_at))
        .bind(ms(s.idle_expires_at))
        .bind(ms(s.absolute_expires_at))
        .bind(ms(s.authenticated_at))
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(s.remember)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<Session>, StoreError> {
        let r = sqlx::query(&format!("SELECT * FROM sessions WHERE token_hash = ?2 AND {LIVE}"))
            .bind(ms(now))
            .bind(&hash.0)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(row).transpose()
    }

    async fn update(&self, old_hash: &TokenHash, s: &Session) -> Result<bool, StoreError> {
        // One statement: the token moves atomically and a concurrent revocation wins.
        let done = sqlx::query(
            "UPDATE sessions SET token_hash = ?, csrf_secret = ?, last_seen_at = ?,
             idle_expires_at = ?, absolute_expires_at = ?, authenticated_at = ?, ip = ?,
             user_agent = ?, remember = ? WHERE id = ? AND token_hash = ?",
        )
        .bind(&s.token_hash.0)
        .bind(&s.csrf_secret)
        .bind(ms(s.last_seen_at))
        .bind(ms(s.idle_expires_at))
        .bind(ms(s.absolute_expires_at))
        .bind(ms(s.authenticated_at))
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(s.remember)
        .bind(&s.id)
        .bind(&old_hash.0)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch(
        &self,
        s: &Session,
        last_seen_at: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE sessions SET last_seen_at = ?, idle_expires_at = ? WHERE id = ?")
            .bind(ms(last_seen_at))
            .bind(ms(idle_expires_at))
            .bind(&s.id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete(&self, id: &str, owner: Option<i64>) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = ? AND (? IS NULL OR user_id = ?)")
            .bind(id)
            .bind(owner)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list(&self, user_id: i64, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT * FROM sessions WHERE user_id = ?2 AND {LIVE} ORDER BY created_at DESC, id"))
                .bind(ms(now))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(row).collect()
    }

    async fn delete_all(&self, user_id: i64, except: Option<&str>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND (? IS NULL OR id <> ?)")
            .bind(user_id)
            .bind(except)
            .bind(except)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn list_all(&self, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(&format!("SELECT * FROM sessions WHERE {LIVE} ORDER BY created_at DESC, id"))
            .bind(ms(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row).collect()
    }

    async fn count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM sessions WHERE {LIVE}"))
            .bind(ms(now))
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn gc(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE idle_expires_at <= ?1 OR absolute_expires_at <= ?1")
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
