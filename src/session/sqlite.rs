//! SQLite session store (the embedded default), sharing the database file with the user store.
//! The statements are in [`super::sql`]; times are Unix milliseconds.

use sqlx::SqlitePool;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub fn new(pool: SqlitePool) -> Self {
        SqliteStore { pool }
    }
}

fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| StoreError::Corrupt(format!("bad time {v}")))
}

super::sql::sql_session_store! {
    store: SqliteStore,
    row: sqlx::sqlite::SqliteRow,
    time: i64 => (to_millis, from_millis),
    // Two conditions, so `sessions_idle` serves the range.
    live: "idle_expires_at > $1 AND absolute_expires_at > $1",
    expired: "idle_expires_at <= $1 OR absolute_expires_at <= $1",
    by_id: "id",
    deadlines: (crate::db::SQLITE_OP_TIMEOUT, crate::db::SQLITE_SCAN_TIMEOUT),
}
