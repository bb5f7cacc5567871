//! The native stores' [`PasskeyStore`](super::PasskeyStore), written once for SQLite and
//! PostgreSQL like the rest of the native store ([`super::sql`], whose macro invokes this one
//! with the same backend facts).

macro_rules! native_passkey_store {
    (
        store: $store:ty,
        row: $row:ty,
        time: $time:ty => ($to_db:path, $from_db:path),
        deadlines: ($op:expr, $scan:expr) $(,)?
    ) => {
        fn passkey_row(r: &$row) -> Result<$crate::users::PasskeyRecord, UserStoreError> {
            Ok($crate::users::PasskeyRecord {
                id: r.try_get("id").map_err(bad_row)?,
                user_id: r.try_get("user_id").map_err(bad_row)?,
                credential_id: r.try_get("credential_id").map_err(bad_row)?,
                user_handle: r.try_get("user_handle").map_err(bad_row)?,
                passkey: r.try_get("passkey").map_err(bad_row)?,
                name: r.try_get("name").map_err(bad_row)?,
                transports: r.try_get("transports").map_err(bad_row)?,
                discoverable: r.try_get("discoverable").map_err(bad_row)?,
                created_at: $from_db(r.try_get::<$time, _>("created_at").map_err(bad_row)?),
                last_used_at: r.try_get::<Option<$time>, _>("last_used_at").map_err(bad_row)?.map($from_db),
            })
        }

        #[::async_trait::async_trait]
        impl $crate::users::PasskeyStore for $store {
            async fn add_passkey(
                &self,
                p: &$crate::users::NewPasskey,
                at: DateTime<Utc>,
            ) -> Result<$crate::users::PasskeyRecord, UserStoreError> {
                let r = ::sqlx::query(
                    "INSERT INTO passkeys (user_id, credential_id, user_handle, passkey, name, transports,
                                           discoverable, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
                )
                .bind(p.user_id)
                .bind(&p.credential_id)
                .bind(&p.user_handle)
                .bind(&p.passkey)
                .bind(&p.name)
                .bind(&p.transports)
                .bind(p.discoverable)
                .bind($to_db(at))
                .fetch_one(&self.pool)
                .within($op)
                .await
                .map_err(|e| match e.as_database_error() {
                    Some(d) if d.is_unique_violation() => UserStoreError::PasskeyTaken,
                    _ => e.into(),
                })?;
                passkey_row(&r)
            }

            async fn passkeys_of(&self, user_id: i64) -> Result<Vec<$crate::users::PasskeyRecord>, UserStoreError> {
                let rows = ::sqlx::query("SELECT * FROM passkeys WHERE user_id = $1 ORDER BY id")
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .within($op)
                    .await?;
                rows.iter().map(passkey_row).collect()
            }

            async fn passkey_by_credential(
                &self,
                credential_id: &str,
            ) -> Result<Option<$crate::users::PasskeyRecord>, UserStoreError> {
                let r = ::sqlx::query("SELECT * FROM passkeys WHERE credential_id = $1")
                    .bind(credential_id)
                    .fetch_optional(&self.pool)
                    .within($op)
                    .await?;
                r.as_ref().map(passkey_row).transpose()
            }

            async fn record_passkey_use(
                &self,
                id: i64,
                passkey: Option<&str>,
                sign_count: u32,
                at: DateTime<Utc>,
            ) -> Result<bool, UserStoreError> {
                // One conditional UPDATE: of two assertions with one counter, the second finds
                // the count already there.
                // A 0 (an authenticator that does not count) never moves a stored count back.
                let sql = "UPDATE passkeys SET passkey = coalesce($1, passkey), last_used_at = $2,
                           sign_count = CASE WHEN $3 = 0 THEN sign_count ELSE $3 END
                           WHERE ($3 = 0 OR sign_count < $3) AND id = $4";
                self.update(sql, id, |q| q.bind(passkey).bind($to_db(at)).bind(i64::from(sign_count))).await
            }

            async fn rename_passkey(
                &self,
                user_id: i64,
                id: i64,
                name: &str,
            ) -> Result<Option<$crate::users::PasskeyRecord>, UserStoreError> {
                let r = ::sqlx::query("UPDATE passkeys SET name = $1 WHERE user_id = $2 AND id = $3 RETURNING *")
                    .bind(name)
                    .bind(user_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .within($op)
                    .await?;
                r.as_ref().map(passkey_row).transpose()
            }

            async fn remove_passkey(
                &self,
                user_id: i64,
                id: i64,
                other_method: bool,
            ) -> Result<Option<bool>, UserStoreError> {
                let work = async {
                    let mut tx = self.pool.begin().await?;
                    // Lock the account first (a row lock in PostgreSQL, the write lock in
                    // SQLite): two concurrent deletes of a passwordless user's last two
                    // passkeys then count one after the other, and one is refused.
                    ::sqlx::query("UPDATE users SET key_version = key_version WHERE id = $1")
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                    let mine: Option<i64> =
                        ::sqlx::query_scalar("SELECT id FROM passkeys WHERE id = $1 AND user_id = $2")
                            .bind(id)
                            .bind(user_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if mine.is_none() {
                        return Ok(None);
                    }
                    let count: i64 = ::sqlx::query_scalar("SELECT COUNT(*) FROM passkeys WHERE user_id = $1")
                        .bind(user_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    if !other_method && count <= 1 {
                        return Ok(Some(false));
                    }
                    ::sqlx::query("DELETE FROM passkeys WHERE id = $1").bind(id).execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok::<Option<bool>, ::sqlx::Error>(Some(true))
                };
                Ok(Box::pin(work).within($op).await?)
            }
        }
    };
}

pub(crate) use native_passkey_store;
