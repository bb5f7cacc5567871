//! Conformance of the native user stores: SQLite and PostgreSQL.
//!
//! Run with: `cargo test --test user_store`
//!
//! PostgreSQL (`postgres://postgres@127.0.0.1:5432/test`, trust auth) must be running: the test
//! fails — never skips — when it is not. Each run uses a fresh schema.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sessiongate::db::{connect_postgres, open_sqlite};
use sessiongate::secret::random_b64;
use sessiongate::users::postgres::PostgresUsers;
use sessiongate::users::sqlite::SqliteUsers;
use sessiongate::users::{NewUser, UserStore, UserStoreError};
use sqlx::postgres::PgPoolOptions;

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PG_HELP: &str = "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) \
                       main start` (user `postgres` with trust auth on 127.0.0.1, database `test`)";

fn new_user(username: &str, email: Option<&str>) -> NewUser {
    NewUser {
        username: username.into(),
        email: email.map(Into::into),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    }
}

async fn conformance(store: Arc<dyn UserStore>) {
    store.ping().await.unwrap();
    assert_eq!(store.count().await.unwrap(), 0);

    let alice = store.create(new_user(" Alice ", Some("Alice@Example.com"))).await.unwrap();
    assert!(alice.id > 0);
    assert_eq!(alice.username, "Alice", "stored trimmed, case kept");
    assert_eq!(alice.email.as_deref(), Some("Alice@Example.com"));
    assert!(alice.is_active && !alice.email_verified && alice.last_login.is_none());
    assert!((Utc::now() - alice.created_at).num_seconds().abs() < 60);

    // Case-insensitive uniqueness, each mapped to its field.
    let err = store.create(new_user("ALICE", None)).await.unwrap_err();
    assert!(matches!(err, UserStoreError::UsernameTaken), "{err:?}");
    let err = store.create(new_user("alice2", Some("alice@EXAMPLE.com"))).await.unwrap_err();
    assert!(matches!(err, UserStoreError::EmailTaken), "{err:?}");
    let err = store.create(new_user("alice", Some("alice@example.com"))).await.unwrap_err();
    assert!(matches!(err, UserStoreError::UsernameTaken | UserStoreError::EmailTaken), "{err:?}");

    // Several users without an email are fine.
    let bob = store.create(new_user("bob", None)).await.unwrap();
    let carol = store.create(new_user("carol", None)).await.unwrap();
    assert!(bob.id > alice.id && carol.id > bob.id);

    // Lookup by username in any case, or by email.
    for login in ["alice", "ALICE", " Alice", "alice@example.com", "ALICE@example.COM"] {
        let found = store.find_by_login(login).await.unwrap();
        assert_eq!(found.map(|u| u.id), Some(alice.id), "login {login:?}");
    }
    assert!(store.find_by_login("nobody").await.unwrap().is_none());
    assert!(store.find_by_login("nobody@example.com").await.unwrap().is_none());
    // An email is only matched when the login looks like one.
    assert!(store.find_by_login("example.com").await.unwrap().is_none());
    // A username that looks like an email wins over another user's email.
    let dave = store.create(new_user("dave", Some("erin@example.com"))).await.unwrap();
    let erin = store.create(new_user("erin@example.com", None)).await.unwrap();
    assert_eq!(store.find_by_login("Erin@Example.com").await.unwrap().map(|u| u.id), Some(erin.id));
    assert_ne!(dave.id, erin.id);

    assert_eq!(store.get(bob.id).await.unwrap().map(|u| u.username), Some("bob".into()));
    assert!(store.get(alice.id + 10_000).await.unwrap().is_none());

    // Password, activity and last login.
    assert!(store.set_password(bob.id, "$argon2id$new").await.unwrap());
    assert_eq!(store.get(bob.id).await.unwrap().unwrap().password_hash, "$argon2id$new");
    assert!(!store.set_password(alice.id + 10_000, "x").await.unwrap());
    assert!(store.set_active(bob.id, false).await.unwrap());
    assert!(!store.get(bob.id).await.unwrap().unwrap().is_active);
    assert!(store.set_active(bob.id, true).await.unwrap());
    assert!(store.get(bob.id).await.unwrap().unwrap().is_active);
    assert!(!store.set_active(alice.id + 10_000, false).await.unwrap());
    let at = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    store.record_login(alice.id, at).await.unwrap();
    assert_eq!(store.get(alice.id).await.unwrap().unwrap().last_login, Some(at));

    // Listing and removal.
    assert_eq!(store.count().await.unwrap(), 5);
    let listed: Vec<i64> = store.list().await.unwrap().iter().map(|u| u.id).collect();
    assert_eq!(listed, vec![alice.id, bob.id, carol.id, dave.id, erin.id]);
    assert!(store.remove(carol.id).await.unwrap());
    assert!(!store.remove(carol.id).await.unwrap());
    assert!(store.get(carol.id).await.unwrap().is_none());
    assert_eq!(store.count().await.unwrap(), 4);
    // A removed name is free again.
    store.create(new_user("Carol", None)).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 5);
}

#[tokio::test]
async fn sqlite_users() {
    let dir = tempfile::tempdir().unwrap();
    let pool = open_sqlite(&dir.path().join("sessiongate.db")).await.unwrap();
    conformance(Arc::new(SqliteUsers::new(pool))).await;
}

#[tokio::test]
async fn postgres_users() {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(PG_URL)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is not reachable at {PG_URL} ({e}): {PG_HELP}"));
    let suffix = random_b64(9).replace(['-', '_'], "x").to_lowercase();
    let schema = format!("sg_test_{}_{suffix}", Utc::now().timestamp());
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.unwrap();
    let pool = connect_postgres(&format!("{PG_URL}?options=-c%20search_path%3D{schema}"))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {PG_URL}: {e}: {PG_HELP}"));
    conformance(Arc::new(PostgresUsers::new(pool))).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin).await.unwrap();
}
