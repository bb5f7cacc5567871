//! The SQL session store, written once for SQLite and PostgreSQL (as [`crate::users`]' native
//! store is): the same statements with `$N` placeholders; each backend module states its pool
//! and row types, how a time is stored, the expressions that differ, and the call deadlines.
//! A macro rather than generics over `sqlx::Database` for the reason given in `users/sql.rs`.

/// Writes [`SessionStore`](super::SessionStore) for `$store` (a struct with a `pool` field).
///
/// - `time`: the column type of a time, with the conversions to and from `DateTime<Utc>`
///   (`from_db` returns `Result<_, StoreError>`: a bad stored time is corrupt data);
/// - `live`: the condition "both ends after `$1`", in the form the backend's index serves;
/// - `expired`: its negation, for `gc`;
/// - `by_id`: the `ORDER BY` tail that sorts ids bytewise (PostgreSQL's default collation does
///   not);
/// - `op`/`scan`: deadlines of one call and of a whole-table call ([`crate::db::Deadline`]).
macro_rules! sql_session_store {
    (
        store: $store:ty,
        row: $row:ty,
        time: $time:ty => ($to_db:path, $from_db:path),
        live: $live:literal,
        expired: $expired:literal,
        by_id: $by_id:literal,
        deadlines: ($op:expr, $scan:expr) $(,)?
    ) => {
        use ::chrono::{DateTime, Utc};
        use ::sqlx::Row as _;
        use $crate::db::Deadline as _;
        use $crate::session::{Session, SessionStore, StoreError, TokenHash};

        fn row(r: &$row) -> Result<Session, StoreError> {
            let corrupt = |e: ::sqlx::Error| StoreError::Corrupt(e.to_string());
            let time = |name: &str| r.try_get::<$time, _>(name).map_err(corrupt).and_then($from_db);
            Ok(Session {
                id: r.try_get("id").map_err(corrupt)?,
                token_hash: TokenHash(r.try_get("token_hash").map_err(corrupt)?),
                user_id: r.try_get("user_id").map_err(corrupt)?,
                csrf_secret: r.try_get("csrf_secret").map_err(corrupt)?,
                created_at: time("created_at")?,
                last_seen_at: time("last_seen_at")?,
                idle_expires_at: time("idle_expires_at")?,
                absolute_expires_at: time("absolute_expires_at")?,
                authenticated_at: time("authenticated_at")?,
                ip: r.try_get("ip").map_err(corrupt)?,
                user_agent: r.try_get("user_agent").map_err(corrupt)?,
                remember: r.try_get("remember").map_err(corrupt)?,
                methods: $crate::session::AuthMethods::parse(r.try_get("auth_methods").map_err(corrupt)?),
            })
        }

        #[::async_trait::async_trait]
        impl SessionStore for $store {
            async fn create(&self, s: &Session) -> Result<(), StoreError> {
                ::sqlx::query(
                    "INSERT INTO sessions (id, token_hash, user_id, csrf_secret, created_at, last_seen_at,
                     idle_expires_at, absolute_expires_at, authenticated_at, ip, user_agent, remember, auth_methods)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&s.id)
                .bind(&s.token_hash.0)
                .bind(s.user_id)
                .bind(&s.csrf_secret)
                .bind($to_db(s.created_at))
                .bind($to_db(s.last_seen_at))
                .bind($to_db(s.idle_expires_at))
                .bind($to_db(s.absolute_expires_at))
                .bind($to_db(s.authenticated_at))
                .bind(&s.ip)
                .bind(&s.user_agent)
                .bind(s.remember)
                .bind(s.methods.to_string())
                .execute(&self.pool)
                .within($op)
                .await?;
                Ok(())
            }

            async fn get(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<Session>, StoreError> {
                let r = ::sqlx::query(concat!("SELECT * FROM sessions WHERE token_hash = $2 AND ", $live))
                    .bind($to_db(now))
                    .bind(&hash.0)
                    .fetch_optional(&self.pool)
                    .within($op)
                    .await?;
                r.as_ref().map(row).transpose()
            }

            async fn update(&self, old_hash: &TokenHash, s: &Session) -> Result<bool, StoreError> {
                // One statement: the token moves atomically and a concurrent revocation wins (in
                // PostgreSQL a concurrent update of the row waits for the first, then re-checks
                // the WHERE clause under READ COMMITTED and finds the old hash gone).
                let done = ::sqlx::query(
                    "UPDATE sessions SET token_hash = $1, csrf_secret = $2, last_seen_at = $3,
                     idle_expires_at = $4, absolute_expires_at = $5, authenticated_at = $6, ip = $7,
                     user_agent = $8, remember = $9, auth_methods = $10 WHERE id = $11 AND token_hash = $12",
                )
                .bind(&s.token_hash.0)
                .bind(&s.csrf_secret)
                .bind($to_db(s.last_seen_at))
                .bind($to_db(s.idle_expires_at))
                .bind($to_db(s.absolute_expires_at))
                .bind($to_db(s.authenticated_at))
                .bind(&s.ip)
                .bind(&s.user_agent)
                .bind(s.remember)
                .bind(s.methods.to_string())
                .bind(&s.id)
                .bind(&old_hash.0)
                .execute(&self.pool)
                .within($op)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn touch(
                &self,
                s: &Session,
                last_seen_at: DateTime<Utc>,
                idle_expires_at: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let done = ::sqlx::query("UPDATE sessions SET last_seen_at = $1, idle_expires_at = $2 WHERE id = $3")
                    .bind($to_db(last_seen_at))
                    .bind($to_db(idle_expires_at))
                    .bind(&s.id)
                    .execute(&self.pool)
                    .within($op)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete(&self, id: &str, owner: Option<i64>) -> Result<bool, StoreError> {
                let done =
                    ::sqlx::query("DELETE FROM sessions WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR user_id = $2)")
                        .bind(id)
                        .bind(owner)
                        .execute(&self.pool)
                        .within($op)
                        .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn list(&self, user_id: i64, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
                let rows = ::sqlx::query(concat!(
                    "SELECT * FROM sessions WHERE user_id = $2 AND ",
                    $live,
                    " ORDER BY created_at DESC, ",
                    $by_id
                ))
                .bind($to_db(now))
                .bind(user_id)
                .fetch_all(&self.pool)
                .within($op)
                .await?;
                rows.iter().map(row).collect()
            }

            async fn delete_all(&self, user_id: i64, except: Option<&str>) -> Result<u64, StoreError> {
                let done =
                    ::sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND (CAST($2 AS TEXT) IS NULL OR id <> $2)")
                        .bind(user_id)
                        .bind(except)
                        .execute(&self.pool)
                        .within($op)
                        .await?;
                Ok(done.rows_affected())
            }

            async fn list_all(&self, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
                let rows =
                    ::sqlx::query(concat!("SELECT * FROM sessions WHERE ", $live, " ORDER BY created_at DESC, ", $by_id))
                        .bind($to_db(now))
                        .fetch_all(&self.pool)
                        .within($scan)
                        .await?;
                rows.iter().map(row).collect()
            }

            async fn count(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
                let n: i64 = ::sqlx::query_scalar(concat!("SELECT COUNT(*) FROM sessions WHERE ", $live))
                    .bind($to_db(now))
                    .fetch_one(&self.pool)
                    .within($scan)
                    .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn gc(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
                let done = ::sqlx::query(concat!("DELETE FROM sessions WHERE ", $expired))
                    .bind($to_db(now))
                    .execute(&self.pool)
                    .within($scan)
                    .await?;
                let once = ::sqlx::query("DELETE FROM one_shot WHERE expires_at <= $1")
                    .bind($to_db(now))
                    .execute(&self.pool)
                    .within($scan)
                    .await?;
                Ok(done.rows_affected() + once.rows_affected())
            }

            async fn ping(&self) -> Result<(), StoreError> {
                ::sqlx::query("SELECT 1").execute(&self.pool).within($op).await?;
                Ok(())
            }

            async fn put_once(&self, key: &str, value: &[u8], expires_at: DateTime<Utc>) -> Result<(), StoreError> {
                ::sqlx::query("INSERT INTO one_shot (key, value, expires_at) VALUES ($1, $2, $3)")
                    .bind(key)
                    .bind(value)
                    .bind($to_db(expires_at))
                    .execute(&self.pool)
                    .within($op)
                    .await?;
                Ok(())
            }

            async fn take_once(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Vec<u8>>, StoreError> {
                // DELETE … RETURNING: of two concurrent takes, one deletes the row, the other
                // finds nothing (here and on any other instance sharing the database).
                let r = ::sqlx::query("DELETE FROM one_shot WHERE key = $1 RETURNING value, expires_at")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .within($op)
                    .await?;
                let Some(r) = r else { return Ok(None) };
                let expires_at = $from_db(r.try_get::<$time, _>("expires_at").map_err(|e| StoreError::Corrupt(e.to_string()))?)?;
                if expires_at <= now {
                    return Ok(None);
                }
                Ok(Some(r.try_get("value").map_err(|e| StoreError::Corrupt(e.to_string()))?))
            }
        }
    };
}

pub(crate) use sql_session_store;
