//! PostgreSQL session store: for several gateway instances sharing one database.
//!
//! The SQLite store's statements and semantics ([`super::sql`]); times are `timestamptz`
//! (PostgreSQL keeps microseconds, so sub-microsecond parts of a [`Session`]'s times do not
//! round-trip). Open the pool with [`crate::db::connect_postgres`], which applies
//! `migrations/postgres`.

use sqlx::PgPool;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub fn new(pool: PgPool) -> Self {
        PostgresStore { pool }
    }
}

fn to_db(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

fn from_db(t: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
    Ok(t)
}

super::sql::sql_session_store! {
    store: PostgresStore,
    row: sqlx::postgres::PgRow,
    time: DateTime<Utc> => (to_db, from_db),
    // The form of the `sessions_expires` expression index.
    live: "LEAST(idle_expires_at, absolute_expires_at) > $1",
    expired: "LEAST(idle_expires_at, absolute_expires_at) <= $1",
    by_id: "id COLLATE \"C\"",
    deadlines: (crate::db::PG_OP_TIMEOUT, crate::db::PG_SCAN_TIMEOUT),
}
