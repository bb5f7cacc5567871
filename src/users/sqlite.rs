//! Native user store on the embedded SQLite database (the SQL is in [`super::sql`]).

use sqlx::SqlitePool;

pub struct SqliteUsers {
    pool: SqlitePool,
}

impl SqliteUsers {
    pub fn new(pool: SqlitePool) -> Self {
        SqliteUsers { pool }
    }
}

/// Times are stored as milliseconds since the epoch.
fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

/// SQLite names the column in the message (`UNIQUE constraint failed: users.email_key`).
fn unique_violation(e: &sqlx::Error) -> Option<UserStoreError> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    Some(if db.message().contains("email") { UserStoreError::EmailTaken } else { UserStoreError::UsernameTaken })
}

super::sql::native_user_store! {
    store: SqliteUsers,
    db: sqlx::Sqlite,
    row: sqlx::sqlite::SqliteRow,
    time: i64 => (to_millis, from_millis),
    unique: unique_violation,
    deadlines: (crate::db::SQLITE_OP_TIMEOUT, crate::db::SQLITE_SCAN_TIMEOUT),
}
