//! The native stores' [`SecondFactorStore`](super::SecondFactorStore) (TOTP, recovery codes, the
//! two-step login claim), written once for SQLite and PostgreSQL; invoked by
//! [`super::sql`]'s macro with the same backend facts, inside the same module (it uses the
//! names that macro imports).

macro_rules! native_second_factor_store {
    (
        store: $store:ty,
        time: $time:ty => ($to_db:path, $from_db:path),
        deadlines: ($op:expr, $scan:expr) $(,)?
    ) => {
        #[::async_trait::async_trait]
        impl SecondFactorStore for $store {
            async fn claim_login(
                &self,
                id: i64,
                seen: Option<DateTime<Utc>>,
                at: DateTime<Utc>,
            ) -> Result<bool, UserStoreError> {
                let done =
                    ::sqlx::query("UPDATE users SET last_login = $1 WHERE id = $2 AND last_login IS NOT DISTINCT FROM $3")
                        .bind($to_db(at))
                        .bind(id)
                        .bind(seen.map($to_db))
                        .execute(&self.pool)
                        .within($op)
                        .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn totp(&self, id: i64) -> Result<Option<TotpState>, UserStoreError> {
                let r = ::sqlx::query(
                    "SELECT totp_secret, totp_enabled, totp_last_step FROM users
                     WHERE id = $1 AND totp_secret IS NOT NULL",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .within($op)
                .await?;
                r.map(|r| {
                    Ok(TotpState {
                        sealed_secret: r.try_get("totp_secret").map_err(bad_row)?,
                        enabled: r.try_get("totp_enabled").map_err(bad_row)?,
                        last_step: r.try_get("totp_last_step").map_err(bad_row)?,
                    })
                })
                .transpose()
            }

            async fn set_totp_pending(&self, id: i64, sealed: &[u8]) -> Result<bool, UserStoreError> {
                let sql = "UPDATE users SET totp_secret = $1, totp_last_step = NULL WHERE NOT totp_enabled AND id = $2";
                self.update(sql, id, |q| q.bind(sealed)).await
            }

            async fn enable_totp(&self, id: i64, step: i64, recovery_hashes: &[String]) -> Result<bool, UserStoreError> {
                // The first statement writes, so SQLite's transaction takes the write lock at
                // once (no read-then-write upgrade, no SQLITE_BUSY_SNAPSHOT).
                let work = async {
                    let mut tx = self.pool.begin().await?;
                    let done = ::sqlx::query(
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
                    ::sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
                    for h in recovery_hashes {
                        ::sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                            .bind(id)
                            .bind(h)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok::<bool, ::sqlx::Error>(true)
                };
                Ok(Box::pin(work).within($op).await?)
            }

            async fn disable_totp(&self, id: i64) -> Result<bool, UserStoreError> {
                let work = async {
                    let mut tx = self.pool.begin().await?;
                    let done = ::sqlx::query(
                        "UPDATE users SET totp_secret = NULL, totp_enabled = FALSE, totp_last_step = NULL
                         WHERE id = $1 AND totp_secret IS NOT NULL",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    ::sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok::<bool, ::sqlx::Error>(done.rows_affected() == 1)
                };
                Ok(Box::pin(work).within($op).await?)
            }

            async fn use_totp_step(&self, id: i64, step: i64) -> Result<bool, UserStoreError> {
                // One conditional UPDATE: concurrent uses of one code serialise on the row (lock)
                // and only the first still sees the older step.
                let sql = "UPDATE users SET totp_last_step = $1
                           WHERE totp_enabled AND (totp_last_step IS NULL OR totp_last_step < $1) AND id = $2";
                self.update(sql, id, |q| q.bind(step)).await
            }

            async fn use_recovery_code(&self, id: i64, code_hash: &str, at: DateTime<Utc>) -> Result<bool, UserStoreError> {
                let done = ::sqlx::query(
                    "UPDATE recovery_codes SET used_at = $1 WHERE used_at IS NULL AND id = (
                         SELECT id FROM recovery_codes WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL LIMIT 1)",
                )
                .bind($to_db(at))
                .bind(id)
                .bind(code_hash)
                .execute(&self.pool)
                .within($op)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn recovery_codes_left(&self, id: i64) -> Result<i64, UserStoreError> {
                Ok(::sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                    .bind(id)
                    .fetch_one(&self.pool)
                    .within($op)
                    .await?)
            }
        }
    };
}

pub(crate) use native_second_factor_store;
