//! Opening the embedded SQLite database shared by the native user and session stores.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// Open (creating if needed) the SQLite file and apply migrations.
///
/// WAL lets readers proceed during writes; every write the stores issue is a single statement, so
/// no deferred transaction ever upgrades from read to write (the `SQLITE_BUSY_SNAPSHOT` trap);
/// `busy_timeout` covers plain writer contention.
pub async fn open_sqlite(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts)
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    Ok(pool)
}

/// Connect to PostgreSQL (shared by the native user and session stores) and apply migrations.
///
/// Fails within about three seconds when the server is down or unreachable, instead of waiting
/// for the operating system's TCP timeout: `sessiongate check` and start-up report it at once.
/// The same bound applies to every later checkout from the pool, so a dead database turns
/// requests into errors (fail closed), never into hangs.
pub async fn connect_postgres(url: &str) -> Result<sqlx::PgPool, sqlx::Error> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(3))
        .connect(url)
        .await?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(pool)
}
