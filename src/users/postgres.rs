//! Native user store on PostgreSQL: the SQLite store's schema, SQL and semantics
//! ([`super::sql`]), with `timestamptz` times and a deadline on every call.
//!
//! Open the pool with [`crate::db::connect_postgres`], which applies `migrations/postgres`.

use sqlx::PgPool;

pub struct PostgresUsers {
    pool: PgPool,
}

impl PostgresUsers {
    pub fn new(pool: PgPool) -> Self {
        PostgresUsers { pool }
    }
}

fn same(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

/// Map a unique violation to the field it concerns, by constraint name (see the migration).
fn unique_violation(e: &sqlx::Error) -> Option<UserStoreError> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    Some(match db.constraint() {
        Some("users_email_key_unique") => UserStoreError::EmailTaken,
        _ => UserStoreError::UsernameTaken,
    })
}

super::sql::native_user_store! {
    store: PostgresUsers,
    db: sqlx::Postgres,
    row: sqlx::postgres::PgRow,
    time: DateTime<Utc> => (same, same),
    unique: unique_violation,
    deadlines: (crate::db::PG_OP_TIMEOUT, crate::db::PG_SCAN_TIMEOUT),
}
