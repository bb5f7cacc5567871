//! Opening the embedded SQLite database shared by the native user and session stores.

#[cfg(feature = "redis")]
pub mod redis;
pub mod timing;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Open (creating if needed) the SQLite file and apply migrations.
///
/// WAL lets readers proceed during writes; every write the stores issue is a single statement or
/// a transaction whose first statement writes, so no deferred transaction ever upgrades from
/// read to write (the `SQLITE_BUSY_SNAPSHOT` trap);
/// `busy_timeout` covers plain writer contention. Connections to a local file cannot go stale, so
/// the pool does not ping one before handing it out (sqlx's default): that was a second trip
/// through the connection's worker thread for every query (bench/fixes.md).
pub async fn open_sqlite(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    crate::secret::private_file(path).map_err(sqlx::Error::Io)?;
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .connect_with(opts)
        .await?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    Ok(pool)
}

/// How long PostgreSQL may take to accept a connection (at start and for every pool checkout).
#[cfg(feature = "postgres")]
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Connect to PostgreSQL (shared by the native user and session stores) and apply migrations.
///
/// Fails within about three seconds when the server is down or unreachable, instead of waiting
/// for the operating system's TCP timeout, and says why (refused, unknown database, bad
/// credentials...): `sessiongate check` and start-up report it at once. The same bound applies
/// to every later checkout from the pool, so a dead database turns requests into errors (fail
/// closed), never into hangs.
#[cfg(feature = "postgres")]
pub async fn connect_postgres(url: &str) -> Result<sqlx::PgPool, sqlx::Error> {
    use sqlx::{ConnectOptions, Connection};
    let opts: sqlx::postgres::PgConnectOptions = url.parse()?;
    // One direct connection first: a pool that cannot connect only reports `PoolTimedOut`.
    let probe = async { opts.connect().await?.close().await };
    tokio::time::timeout(PG_CONNECT_TIMEOUT, probe).await.map_err(|_| {
        sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("PostgreSQL did not answer within {PG_CONNECT_TIMEOUT:?}"),
        ))
    })??;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(PG_CONNECT_TIMEOUT)
        .connect_with(opts)
        .await?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(pool)
}

/// Bound on one PostgreSQL store call, pool checkout included: a dead or unreachable database
/// (even one that stops answering without closing connections) turns requests into errors —
/// 503 `overloaded`, fail closed — within this time, never into hangs.
pub const PG_OP_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on calls that scan a whole table (`list_all`, `gc`, user listings).
pub const PG_SCAN_TIMEOUT: Duration = Duration::from_secs(30);

/// The same bounds for the SQLite stores, above `busy_timeout` (5 s) so that writer contention
/// is still waited out as before; they catch only a stuck call.
pub const SQLITE_OP_TIMEOUT: Duration = Duration::from_secs(10);
pub const SQLITE_SCAN_TIMEOUT: Duration = Duration::from_secs(60);

type Flatten<T> = fn(Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>) -> Result<T, sqlx::Error>;

fn flatten<T>(r: Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>) -> Result<T, sqlx::Error> {
    r.unwrap_or_else(|_| {
        Err(sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, "the database did not answer in time")))
    })
}

/// `.within(limit)` on any sqlx future: its result, or a `TimedOut` I/O error after `limit`.
/// (A concrete future type, so `async_trait` methods stay `Send`.)
pub trait Deadline<T>: std::future::Future<Output = Result<T, sqlx::Error>> + Sized {
    fn within(self, limit: Duration) -> futures_util::future::Map<tokio::time::Timeout<Self>, Flatten<T>> {
        use futures_util::FutureExt;
        tokio::time::timeout(limit, self).map(flatten::<T> as Flatten<T>)
    }
}

impl<T, F: std::future::Future<Output = Result<T, sqlx::Error>>> Deadline<T> for F {}
