//! The native user store, written once for both SQL databases.
//!
//! The SQLite and PostgreSQL stores share their schema, their SQL (written with `$N`
//! placeholders, which sqlx's SQLite driver reads too) and their semantics. They differ only in
//! the pool and row types, how a time is stored (SQLite: milliseconds since the epoch;
//! PostgreSQL: `timestamptz`), how a unique violation names its column, and how long a call may
//! take. Each backend module states those and invokes [`native_user_store!`], which writes the
//! [`UserStore`](super::UserStore), [`AccountStore`](super::AccountStore),
//! [`SecondFactorStore`](super::SecondFactorStore) (`sql_second_factor.rs`) and
//! [`PasskeyStore`](super::PasskeyStore) (`sql_passkeys.rs`) implementations.
//!
//! A macro rather than generics over `sqlx::Database`: sqlx's generic bounds (`i64: Encode<DB>`,
//! `&Pool<DB>: Executor`, …) are not implied by a trait, so every method would repeat a dozen
//! of them, and a newcomer would have to read them to change one query.
//!
//! Changing it safely (the compiler does not catch these; the conformance suite,
//! `tests/user_store.rs`, does only with PostgreSQL up — it always is in `scripts/test`):
//! - a column: a migration of the same number in `migrations/sqlite` and `migrations/postgres`
//!   (`tests/layering.rs` checks the numbers match); never edit one that has shipped;
//! - binds: sqlx's SQLite driver binds a missing `$N` as NULL and compares mismatched types as
//!   false, silently; PostgreSQL refuses both, so test with distinct values;
//! - times: always through `$to_db`/`$from_db` (SQLite keeps milliseconds in an INTEGER; a
//!   `DateTime` bound as is would be text that never compares as expected);
//! - booleans: write `TRUE`/`FALSE`/`NOT x`, never `1`/`0` (PostgreSQL's are BOOLEAN);
//! - transactions: lock the `users` row before any child row (one order everywhere, no
//!   deadlock), and start with a write (SQLite then takes its write lock at once: no
//!   `SQLITE_BUSY_SNAPSHOT`); every call goes through `.within($op)` (or `$scan` for whole
//!   tables);
//! - the inner macros use the names this one imports (`bad_row`, `DateTime`, `Deadline`…).

/// Writes the three store traits for `$store` (a struct with a `pool` field).
///
/// - `db`, `row`: the sqlx database and its row type;
/// - `time`: the column type of a time, with the conversions to and from `DateTime<Utc>`;
/// - `unique`: `fn(&sqlx::Error) -> Option<UserStoreError>`, `EmailTaken`/`UsernameTaken`
///   from a unique violation;
/// - `op`/`scan`: deadlines of one call and of a whole-table call ([`crate::db::Deadline`]).
macro_rules! native_user_store {
    (
        store: $store:ty,
        db: $db:ty,
        row: $row:ty,
        time: $time:ty => ($to_db:path, $from_db:path),
        unique: $unique:path,
        deadlines: ($op:expr, $scan:expr) $(,)?
    ) => {
        use ::chrono::{DateTime, Utc};
        use ::sqlx::Row as _;
        use $crate::db::Deadline as _;
        use $crate::users::names::{KEY_VERSION, keys_of, normalize_username, skeleton};
        use $crate::users::{
            AccountStore, AccountToken, NewUser, SecondFactorStore, TokenPurpose, TotpState, User, UserStore,
            UserStoreError, login_key, purpose_from_str,
        };

        type SqlQuery<'q> = ::sqlx::query::Query<'q, $db, <$db as ::sqlx::Database>::Arguments<'q>>;

        fn bad_row(e: ::sqlx::Error) -> UserStoreError {
            UserStoreError::Unavailable(format!("unexpected row: {e}"))
        }

        fn user_row(r: &$row) -> Result<User, UserStoreError> {
            Ok(User {
                id: r.try_get("id").map_err(bad_row)?,
                username: r.try_get("username").map_err(bad_row)?,
                email: r.try_get("email").map_err(bad_row)?,
                email_verified: r.try_get("email_verified").map_err(bad_row)?,
                password_hash: r.try_get("password_hash").map_err(bad_row)?,
                is_active: r.try_get("is_active").map_err(bad_row)?,
                mfa: r.try_get("totp_enabled").map_err(bad_row)?,
                created_at: $from_db(r.try_get::<$time, _>("created_at").map_err(bad_row)?),
                last_login: r.try_get::<Option<$time>, _>("last_login").map_err(bad_row)?.map($from_db),
            })
        }

        /// `None` for a row whose purpose this version does not know (it is not a valid token).
        fn token_row(r: &$row) -> Result<Option<AccountToken>, UserStoreError> {
            let Some(purpose) = purpose_from_str(r.try_get("purpose").map_err(bad_row)?) else { return Ok(None) };
            Ok(Some(AccountToken {
                token_hash: r.try_get("token_hash").map_err(bad_row)?,
                purpose,
                user_id: r.try_get("user_id").map_err(bad_row)?,
                email: r.try_get("email").map_err(bad_row)?,
                created_at: $from_db(r.try_get::<$time, _>("created_at").map_err(bad_row)?),
                expires_at: $from_db(r.try_get::<$time, _>("expires_at").map_err(bad_row)?),
                used_at: r.try_get::<Option<$time>, _>("used_at").map_err(bad_row)?.map($from_db),
                session_id: r.try_get("session_id").map_err(bad_row)?,
                password_fp: r.try_get("password_fp").map_err(bad_row)?,
            }))
        }

        impl $store {
            /// `EmailTaken` when `email` is another account's username: a username may be an
            /// address (its owner's, when it was made), and that address must not log anyone
            /// else in.
            async fn refuse_username_as_email(&self, email: Option<&str>, except: i64) -> Result<(), UserStoreError> {
                let Some(key) = email.map(login_key) else { return Ok(()) };
                let clash = ::sqlx::query("SELECT 1 FROM users WHERE username_key = $1 AND id <> $2")
                    .bind(key)
                    .bind(except)
                    .fetch_optional(&self.pool)
                    .within($op)
                    .await?;
                if clash.is_some() { Err(UserStoreError::EmailTaken) } else { Ok(()) }
            }

            async fn insert(
                &self,
                u: &NewUser,
                active: bool,
                created_at: DateTime<Utc>,
            ) -> Result<User, UserStoreError> {
                if u.email.as_deref().map(login_key) != Some(login_key(&u.username)) {
                    self.refuse_username_as_email(u.email.as_deref(), 0).await?;
                }
                let r = ::sqlx::query(
                    "INSERT INTO users (username, username_key, username_skeleton, key_version, email, email_key,
                                        password_hash, is_active, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
                )
                .bind(normalize_username(&u.username))
                .bind(login_key(&u.username))
                .bind(skeleton(&u.username))
                .bind(KEY_VERSION)
                .bind(&u.email)
                .bind(u.email.as_deref().map(login_key))
                .bind(&u.password_hash)
                .bind(active)
                .bind($to_db(created_at))
                .fetch_one(&self.pool)
                .within($op)
                .await
                .map_err(|e| $unique(&e).unwrap_or_else(|| e.into()))?;
                user_row(&r)
            }

            /// The token `query` finds, if it is one this version knows.
            async fn one_token(&self, query: SqlQuery<'_>) -> Result<Option<AccountToken>, UserStoreError> {
                let r = query.fetch_optional(&self.pool).within($op).await?;
                Ok(r.as_ref().map(token_row).transpose()?.flatten())
            }

            /// Runs `sql` with the values `bind` adds, then `id` as the last parameter; whether
            /// it changed that row.
            async fn update<'q>(
                &self,
                sql: &'q str,
                id: i64,
                bind: impl FnOnce(SqlQuery<'q>) -> SqlQuery<'q>,
            ) -> Result<bool, UserStoreError> {
                let done = bind(::sqlx::query(sql)).bind(id).execute(&self.pool).within($op).await?;
                Ok(done.rows_affected() == 1)
            }
        }

        #[::async_trait::async_trait]
        impl UserStore for $store {
            async fn find_by_login(&self, login: &str) -> Result<Option<User>, UserStoreError> {
                // An address logs in by its email key; its owner's username wins over another's.
                let r = ::sqlx::query(
                    "SELECT * FROM users WHERE username_key = $1 OR ($1 LIKE '%@%' AND email_key = $1)
                     ORDER BY coalesce(email_key = $1, FALSE) DESC LIMIT 1",
                )
                .bind(login_key(login))
                .fetch_optional(&self.pool)
                .within($op)
                .await?;
                r.as_ref().map(user_row).transpose()
            }

            async fn get(&self, id: i64) -> Result<Option<User>, UserStoreError> {
                let r = ::sqlx::query("SELECT * FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .within($op)
                    .await?;
                r.as_ref().map(user_row).transpose()
            }

            async fn create(&self, u: NewUser) -> Result<User, UserStoreError> {
                self.insert(&u, true, Utc::now()).await
            }

            /// Keeps the imported user's `created_at` (Django's `date_joined`) and active flag.
            async fn import(&self, u: &User) -> Result<User, UserStoreError> {
                let new = NewUser {
                    username: u.username.clone(),
                    email: u.email.clone(),
                    password_hash: u.password_hash.clone(),
                };
                self.insert(&new, u.is_active, u.created_at).await
            }

            async fn set_password(&self, id: i64, hash: &str) -> Result<bool, UserStoreError> {
                self.update("UPDATE users SET password_hash = $1 WHERE id = $2", id, |q| q.bind(hash)).await
            }

            async fn set_active(&self, id: i64, active: bool) -> Result<bool, UserStoreError> {
                self.update("UPDATE users SET is_active = $1 WHERE id = $2", id, |q| q.bind(active)).await
            }

            async fn record_login(&self, id: i64, at: DateTime<Utc>) -> Result<(), UserStoreError> {
                self.update("UPDATE users SET last_login = $1 WHERE id = $2", id, |q| q.bind($to_db(at))).await?;
                Ok(())
            }

            async fn upgrade_keys(&self) -> Result<u64, UserStoreError> {
                let rows = ::sqlx::query("SELECT id, username, email FROM users WHERE key_version < $1")
                    .bind(KEY_VERSION)
                    .fetch_all(&self.pool)
                    .within($scan)
                    .await?;
                let mut changed = 0;
                for r in rows {
                    let id: i64 = r.try_get("id").map_err(bad_row)?;
                    let username: String = r.try_get("username").map_err(bad_row)?;
                    let email: Option<String> = r.try_get("email").map_err(bad_row)?;
                    let keys = keys_of(&username, email.as_deref());
                    for (k, e, sk) in keys.attempts() {
                        let done = ::sqlx::query(
                            "UPDATE users SET username_key = coalesce($1, username_key),
                             email_key = coalesce($2, email_key), username_skeleton = $3, key_version = $4
                             WHERE id = $5",
                        )
                        .bind(k)
                        .bind(e)
                        .bind(sk)
                        .bind(KEY_VERSION)
                        .bind(id)
                        .execute(&self.pool)
                        .within($op)
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
                self.update("DELETE FROM users WHERE id = $1", id, |q| q).await
            }

            async fn list(&self) -> Result<Vec<User>, UserStoreError> {
                let rows = ::sqlx::query("SELECT * FROM users ORDER BY id").fetch_all(&self.pool).within($scan).await?;
                rows.iter().map(user_row).collect()
            }

            async fn count(&self) -> Result<i64, UserStoreError> {
                Ok(::sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).within($scan).await?)
            }

            async fn ping(&self) -> Result<(), UserStoreError> {
                ::sqlx::query("SELECT 1").execute(&self.pool).within($op).await?;
                Ok(())
            }

            async fn find_by_email(&self, email: &str) -> Result<Option<User>, UserStoreError> {
                let r = ::sqlx::query("SELECT * FROM users WHERE email_key = $1")
                    .bind(login_key(email))
                    .fetch_optional(&self.pool)
                    .within($op)
                    .await?;
                r.as_ref().map(user_row).transpose()
            }

            fn accounts(&self) -> Option<&dyn AccountStore> {
                Some(self)
            }

            fn second_factor(&self) -> Option<&dyn SecondFactorStore> {
                Some(self)
            }

            fn passkeys(&self) -> Option<&dyn $crate::users::PasskeyStore> {
                Some(self)
            }
        }

        $crate::users::sql_passkeys::native_passkey_store! {
            store: $store,
            row: $row,
            time: $time => ($to_db, $from_db),
            deadlines: ($op, $scan),
        }

        #[::async_trait::async_trait]
        impl AccountStore for $store {
            async fn set_email(&self, id: i64, email: Option<&str>, verified: bool) -> Result<bool, UserStoreError> {
                let email = email.map(str::trim);
                self.refuse_username_as_email(email, id).await?;
                let done =
                    ::sqlx::query("UPDATE users SET email = $1, email_key = $2, email_verified = $3 WHERE id = $4")
                        .bind(email)
                        .bind(email.map(login_key))
                        .bind(verified && email.is_some())
                        .bind(id)
                        .execute(&self.pool)
                        .within($op)
                        .await
                        .map_err(|e| $unique(&e).unwrap_or_else(|| e.into()))?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_token(&self, t: &AccountToken) -> Result<(), UserStoreError> {
                ::sqlx::query(
                    "INSERT INTO account_tokens (token_hash, purpose, user_id, email, created_at, expires_at,
                                                 session_id, password_fp)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&t.token_hash)
                .bind(t.purpose.as_str())
                .bind(t.user_id)
                .bind(&t.email)
                .bind($to_db(t.created_at))
                .bind($to_db(t.expires_at))
                .bind(&t.session_id)
                .bind(&t.password_fp)
                .execute(&self.pool)
                .within($op)
                .await?;
                Ok(())
            }

            async fn find_token(
                &self,
                hash: &str,
                purpose: TokenPurpose,
                now: DateTime<Utc>,
            ) -> Result<Option<AccountToken>, UserStoreError> {
                let r = ::sqlx::query(
                    "SELECT * FROM account_tokens
                     WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
                )
                .bind(hash)
                .bind(purpose.as_str())
                .bind($to_db(now));
                self.one_token(r).await
            }

            async fn consume_token(
                &self,
                hash: &str,
                purpose: TokenPurpose,
                now: DateTime<Utc>,
            ) -> Result<Option<AccountToken>, UserStoreError> {
                let r = ::sqlx::query(
                    "UPDATE account_tokens SET used_at = $1
                     WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1
                     RETURNING *",
                )
                .bind($to_db(now))
                .bind(hash)
                .bind(purpose.as_str());
                self.one_token(r).await
            }

            async fn revoke_tokens(&self, user_id: i64, purpose: TokenPurpose) -> Result<u64, UserStoreError> {
                let done = ::sqlx::query(
                    "UPDATE account_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
                )
                .bind($to_db(Utc::now()))
                .bind(user_id)
                .bind(purpose.as_str())
                .execute(&self.pool)
                .within($op)
                .await?;
                Ok(done.rows_affected())
            }

            async fn purge_tokens(&self, now: DateTime<Utc>) -> Result<u64, UserStoreError> {
                let done = ::sqlx::query("DELETE FROM account_tokens WHERE expires_at <= $1")
                    .bind($to_db(now))
                    .execute(&self.pool)
                    .within($scan)
                    .await?;
                Ok(done.rows_affected())
            }
        }

        $crate::users::sql_second_factor::native_second_factor_store! {
            store: $store,
            time: $time => ($to_db, $from_db),
            deadlines: ($op, $scan),
        }
    };
}

pub(crate) use native_user_store;
