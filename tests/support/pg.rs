//! The test PostgreSQL (127.0.0.1:5432, trust auth, database `test`; `scripts/test` starts it)
//! and Redis (127.0.0.1:6379), and fresh schemas to run a test in. A missing service is a
//! failure that says how to start it, never a skip.

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const PG_HELP: &str = "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) \
                           main start` (user `postgres` with trust auth on 127.0.0.1, database `test`)";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const REDIS_HELP: &str = "start it with `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\"`";

/// A connection to the test database as its owner.
pub async fn admin() -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(PG_URL)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is not reachable at {PG_URL} ({e}): {PG_HELP}"))
}

/// A new, empty schema `{tag}_{unix time}_{random}`; schemas of the same tag older than an hour
/// (left by killed runs) are dropped first.
pub struct Schema {
    pub admin: PgPool,
    pub name: String,
    /// `PG_URL` with `search_path` set to the schema: what a store under test connects to.
    pub url: String,
}

impl Schema {
    pub async fn new(tag: &str) -> Schema {
        let admin = admin().await;
        let now = chrono::Utc::now().timestamp();
        let old: Vec<(String,)> = sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE $1")
            .bind(format!("{tag}\\_%"))
            .fetch_all(&admin)
            .await
            .unwrap_or_default();
        for (s,) in old {
            let born = s.rsplit('_').nth(1).and_then(|t| t.parse::<i64>().ok()).unwrap_or(now);
            if born < now - 3600 {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {s} CASCADE")).execute(&admin).await;
            }
        }
        let random = sessiongate::secret::random_b64(9).to_lowercase().replace(['-', '_'], "x");
        let name = format!("{tag}_{now}_{random}");
        sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&admin).await.expect("create test schema");
        let url = format!("{PG_URL}?options=-c%20search_path%3D{name}");
        Schema { admin, name, url }
    }

    pub async fn drop(self) {
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name)).execute(&self.admin).await.unwrap();
    }
}
