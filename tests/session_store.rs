//! One conformance suite for every `SessionStore` backend: memory, SQLite, PostgreSQL and Redis.
//!
//! Run with: `cargo test --test session_store`
//!
//! PostgreSQL (`postgres://postgres@127.0.0.1:5432/test`, trust auth) and Redis
//! (`redis://127.0.0.1:6379`) must be running: their tests fail — never skip — when they are not,
//! and the message says how to start them. Each test gets its own store (a temporary SQLite file,
//! a fresh PostgreSQL schema, a random Redis key prefix), so tests run in parallel.
//!
//! Times are controlled: every case passes `now` explicitly, relative to a base instant. The base
//! is the real clock (truncated to milliseconds, the coarsest precision of any backend) because
//! Redis expires keys natively on its own clock; cases keep their expiry offsets in minutes so a
//! slow run never races Redis.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::redis::AsyncCommands;
use chrono::{DateTime, TimeDelta, Utc};
use sessiongate::db::{connect_postgres, open_sqlite};
use sessiongate::secret::random_b64;
use sessiongate::session::memory::MemoryStore;
use sessiongate::session::postgres::PostgresStore;
use sessiongate::session::redis::RedisStore;
use sessiongate::session::sqlite::SqliteStore;
use sessiongate::session::{AuthMethod, AuthMethods, Session, SessionStore, SessionToken, TokenHash};
use sqlx::PgPool;

mod support;

use support::pg::{PG_HELP, PG_URL, REDIS_HELP, REDIS_URL, Schema};

// ---------------------------------------------------------------------------------------------
// Backends

#[derive(Clone, Copy, Debug)]
enum Kind {
    Memory,
    Sqlite,
    Postgres,
    Redis,
}

/// What a case sees: the store, and whether it expires natively (Redis: `gc` returns 0).
#[derive(Clone)]
struct Ctx {
    store: Arc<dyn SessionStore>,
    native_expiry: bool,
}

/// Resources to release after a passing case (a failing one leaves them to the sweep below or
/// to their native expiry).
enum Cleanup {
    Nothing,
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin: PgPool, schema: String },
    Redis { prefix: String },
}

fn unique() -> String {
    random_b64(9).replace(['-', '_'], "x").to_lowercase()
}

/// A pool on a fresh schema (migrated by `connect_postgres`); the admin pool and the schema's
/// name, to drop it.
async fn fresh_pg_schema() -> (PgPool, PgPool, String) {
    let schema = Schema::new("sg_test").await;
    let pool = connect_postgres(&schema.url).await.unwrap_or_else(|e| panic!("PostgreSQL at {PG_URL}: {e}: {PG_HELP}"));
    (schema.admin, pool, schema.name)
}

async fn redis_store(prefix: &str) -> RedisStore {
    RedisStore::connect(REDIS_URL, prefix)
        .await
        .unwrap_or_else(|e| panic!("Redis is not reachable at {REDIS_URL} ({e}): {REDIS_HELP}"))
}

async fn raw_redis() -> ::redis::aio::MultiplexedConnection {
    let client = ::redis::Client::open(REDIS_URL).expect("redis url");
    tokio::time::timeout(Duration::from_secs(5), client.get_multiplexed_async_connection())
        .await
        .unwrap_or_else(|_| panic!("Redis at {REDIS_URL} did not answer: {REDIS_HELP}"))
        .unwrap_or_else(|e| panic!("Redis is not reachable at {REDIS_URL} ({e}): {REDIS_HELP}"))
}

fn redis_prefix() -> String {
    format!("sgtest:{}:", unique())
}

async fn setup(kind: Kind) -> (Ctx, Cleanup) {
    let (store, cleanup): (Arc<dyn SessionStore>, Cleanup) = match kind {
        Kind::Memory => (Arc::new(MemoryStore::new()), Cleanup::Nothing),
        Kind::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let pool = open_sqlite(&dir.path().join("sessiongate.db")).await.expect("open sqlite");
            (Arc::new(SqliteStore::new(pool)), Cleanup::Dir(dir))
        }
        Kind::Postgres => {
            let (admin, pool, schema) = fresh_pg_schema().await;
            (Arc::new(PostgresStore::new(pool)), Cleanup::Postgres { admin, schema })
        }
        Kind::Redis => {
            let prefix = redis_prefix();
            (Arc::new(redis_store(&prefix).await), Cleanup::Redis { prefix })
        }
    };
    let ctx = Ctx { store, native_expiry: matches!(kind, Kind::Redis) };
    (ctx, cleanup)
}

impl Cleanup {
    async fn run(self) {
        match self {
            Cleanup::Nothing | Cleanup::Dir(_) => {}
            Cleanup::Postgres { admin, schema } => {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&admin).await;
            }
            Cleanup::Redis { prefix } => {
                let mut conn = raw_redis().await;
                let keys: Vec<String> = conn.keys(format!("{prefix}*")).await.unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<(), _> = conn.del(keys).await;
                }
            }
        }
    }
}

async fn run<F, Fut>(kind: Kind, case: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let (ctx, cleanup) = setup(kind).await;
    case(ctx).await;
    cleanup.run().await;
}

/// Every case, on every backend.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        conformance!(@backend memory, Memory, $($case),*);
        conformance!(@backend sqlite, Sqlite, $($case),*);
        conformance!(@backend postgres, Postgres, $($case),*);
        conformance!(@backend redis, Redis, $($case),*);
    };
    (@backend $module:ident, $kind:ident, $($case:ident),*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $case() {
                    super::run(super::Kind::$kind, super::$case).await;
                }
            )*
        }
    };
}

conformance!(
    create_then_get,
    idle_timeout_expires,
    absolute_timeout_caps_idle,
    update_rotates_token_atomically,
    update_refuses_stale_hash,
    concurrent_rotations_have_one_winner,
    touch_slides_idle_not_absolute,
    delete_checks_owner,
    delete_all_keeps_except,
    list_is_newest_first_and_live_only,
    list_all_covers_every_user,
    gc_removes_expired,
    ping_answers,
    one_shot_is_taken_once,
    one_shot_expires,
);

// ---------------------------------------------------------------------------------------------
// Fixtures

/// The real clock, truncated to milliseconds (every backend round-trips that exactly).
fn base() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now")
}

fn mins(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// A session of `user_id` created at `created`, ending at `idle` / `absolute`.
fn session(
    user_id: i64,
    created: DateTime<Utc>,
    idle: DateTime<Utc>,
    absolute: DateTime<Utc>,
) -> (SessionToken, Session) {
    let token = SessionToken::generate();
    let s = Session {
        id: random_b64(16),
        token_hash: token.hash(),
        user_id,
        csrf_secret: random_b64(24),
        created_at: created,
        last_seen_at: created,
        idle_expires_at: idle,
        absolute_expires_at: absolute,
        authenticated_at: created,
        ip: Some("192.0.2.7".into()),
        user_agent: Some("conformance/1.0 (\"quoted\"; ünïcode)".into()),
        remember: true,
        methods: AuthMethods::of([AuthMethod::Password, AuthMethod::Totp, AuthMethod::Oidc("corp".into())]),
    };
    (token, s)
}

/// A live session created at `created`: idle end in an hour, absolute end in two.
fn live(user_id: i64, created: DateTime<Utc>) -> Session {
    let b = base();
    session(user_id, created, b + mins(60), b + mins(120)).1
}

fn ids(v: &[Session]) -> Vec<&str> {
    v.iter().map(|s| s.id.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// Cases

async fn create_then_get(t: Ctx) {
    let b = base();
    let (token, s) = session(1, b, b + mins(10), b + mins(60));
    t.store.create(&s).await.unwrap();
    assert_eq!(t.store.get(&token.hash(), b).await.unwrap(), Some(s.clone()));

    let (_, mut bare) = session(1, b, b + mins(10), b + mins(60));
    bare.ip = None;
    bare.user_agent = None;
    bare.remember = false;
    t.store.create(&bare).await.unwrap();
    assert_eq!(t.store.get(&bare.token_hash, b).await.unwrap(), Some(bare));

    assert_eq!(t.store.get(&TokenHash::of("not a token"), b).await.unwrap(), None);
    // The store is keyed by the hash, never the token itself.
    assert_eq!(t.store.get(&TokenHash(token.as_str().to_owned()), b).await.unwrap(), None);
}

async fn idle_timeout_expires(t: Ctx) {
    let b = base();
    let (_, s) = session(1, b, b + mins(10), b + mins(60));
    t.store.create(&s).await.unwrap();
    let h = &s.token_hash;
    assert!(t.store.get(h, b + mins(10) - secs(1)).await.unwrap().is_some());
    assert_eq!(t.store.get(h, b + mins(10)).await.unwrap(), None, "expired at its idle end");
    assert_eq!(t.store.get(h, b + mins(10) + secs(1)).await.unwrap(), None);
    assert!(t.store.list(1, b + mins(11)).await.unwrap().is_empty());
}

async fn absolute_timeout_caps_idle(t: Ctx) {
    let b = base();
    let (_, s) = session(1, b, b + mins(120), b + mins(60));
    t.store.create(&s).await.unwrap();
    let h = &s.token_hash;
    assert!(t.store.get(h, b + mins(59)).await.unwrap().is_some());
    assert_eq!(t.store.get(h, b + mins(60)).await.unwrap(), None, "absolute end wins");
    assert_eq!(t.store.get(h, b + mins(90)).await.unwrap(), None);
    assert!(t.store.list(1, b + mins(90)).await.unwrap().is_empty());
    assert!(t.store.list_all(b + mins(90)).await.unwrap().is_empty());
}

async fn update_rotates_token_atomically(t: Ctx) {
    let b = base();
    let (old_token, s) = session(1, b, b + mins(10), b + mins(60));
    t.store.create(&s).await.unwrap();

    let new_token = SessionToken::generate();
    let mut next = s.clone();
    next.token_hash = new_token.hash();
    next.csrf_secret = random_b64(24);
    next.authenticated_at = b + mins(1);
    next.last_seen_at = b + mins(1);
    next.idle_expires_at = b + mins(11);
    assert!(t.store.update(&old_token.hash(), &next).await.unwrap());

    let now = b + mins(2);
    assert_eq!(t.store.get(&old_token.hash(), now).await.unwrap(), None, "old token dead");
    assert_eq!(t.store.get(&new_token.hash(), now).await.unwrap(), Some(next.clone()));
    assert_eq!(t.store.list(1, now).await.unwrap(), vec![next.clone()]);
    // The moved idle end is honoured.
    assert!(t.store.get(&new_token.hash(), b + mins(10) + secs(30)).await.unwrap().is_some());

    // Updating without rotation (same hash on both sides) changes the data in place.
    let mut same = next.clone();
    same.csrf_secret = random_b64(24);
    assert!(t.store.update(&next.token_hash, &same).await.unwrap());
    assert_eq!(t.store.get(&new_token.hash(), now).await.unwrap(), Some(same));
}

async fn update_refuses_stale_hash(t: Ctx) {
    let b = base();
    let (_, s) = session(1, b, b + mins(10), b + mins(60));
    t.store.create(&s).await.unwrap();
    let mut rotated = s.clone();
    rotated.token_hash = SessionToken::generate().hash();
    assert!(t.store.update(&s.token_hash, &rotated).await.unwrap());

    // A second request still holding the old token loses.
    let mut late = s.clone();
    late.token_hash = SessionToken::generate().hash();
    assert!(!t.store.update(&s.token_hash, &late).await.unwrap());
    assert_eq!(t.store.get(&late.token_hash, b).await.unwrap(), None);
    assert_eq!(t.store.get(&rotated.token_hash, b).await.unwrap(), Some(rotated.clone()));

    // A revoked session cannot be revived by an update.
    assert!(t.store.delete(&s.id, None).await.unwrap());
    let mut revived = rotated.clone();
    revived.token_hash = SessionToken::generate().hash();
    assert!(!t.store.update(&rotated.token_hash, &revived).await.unwrap());
    assert!(!t.store.update(&rotated.token_hash, &rotated).await.unwrap());
    assert_eq!(t.store.get(&revived.token_hash, b).await.unwrap(), None);
    assert_eq!(t.store.get(&rotated.token_hash, b).await.unwrap(), None);
    assert!(t.store.list(1, b).await.unwrap().is_empty());
}

async fn concurrent_rotations_have_one_winner(t: Ctx) {
    let b = base();
    let (_, s) = session(1, b, b + mins(10), b + mins(60));
    t.store.create(&s).await.unwrap();
    let attempts: Vec<Session> = (0..8)
        .map(|_| {
            let mut n = s.clone();
            n.token_hash = SessionToken::generate().hash();
            n
        })
        .collect();
    let tasks: Vec<_> = attempts
        .iter()
        .cloned()
        .map(|n| {
            let store = t.store.clone();
            let old = s.token_hash.clone();
            tokio::spawn(async move { store.update(&old, &n).await.unwrap() })
        })
        .collect();
    let mut won = Vec::new();
    for (task, n) in tasks.into_iter().zip(&attempts) {
        if task.await.unwrap() {
            won.push(n.clone());
        }
    }
    assert_eq!(won.len(), 1, "exactly one rotation from the same token succeeds");
    for n in &attempts {
        let found = t.store.get(&n.token_hash, b).await.unwrap();
        assert_eq!(found.is_some(), n.token_hash == won[0].token_hash);
    }
    assert_eq!(t.store.get(&s.token_hash, b).await.unwrap(), None);
    assert_eq!(t.store.list(1, b).await.unwrap(), won);
}

async fn touch_slides_idle_not_absolute(t: Ctx) {
    let b = base();
    let (_, s) = session(1, b, b + mins(10), b + mins(60));
    t.store.create(&s).await.unwrap();

    assert!(t.store.touch(&s, b + mins(5), b + mins(15)).await.unwrap());
    let got = t.store.get(&s.token_hash, b + mins(12)).await.unwrap().expect("idle end moved");
    let mut expected = s.clone();
    expected.last_seen_at = b + mins(5);
    expected.idle_expires_at = b + mins(15);
    assert_eq!(got, expected);
    assert_eq!(t.store.list(1, b + mins(12)).await.unwrap(), vec![expected.clone()]);

    // Sliding past the absolute end does not extend the session.
    assert!(t.store.touch(&s, b + mins(50), b + mins(90)).await.unwrap());
    assert!(t.store.get(&s.token_hash, b + mins(59)).await.unwrap().is_some());
    assert_eq!(t.store.get(&s.token_hash, b + mins(60)).await.unwrap(), None);

    // A full update afterwards keeps what it is given.
    let mut next = s.clone();
    next.token_hash = SessionToken::generate().hash();
    assert!(t.store.update(&s.token_hash, &next).await.unwrap());
    assert_eq!(t.store.get(&next.token_hash, b).await.unwrap(), Some(next.clone()));

    assert!(t.store.delete(&s.id, Some(1)).await.unwrap());
    assert!(!t.store.touch(&s, b + mins(6), b + mins(16)).await.unwrap(), "gone");
    assert_eq!(t.store.get(&next.token_hash, b).await.unwrap(), None, "touch revives nothing");
}

async fn delete_checks_owner(t: Ctx) {
    let b = base();
    let (_, s) = session(1, b, b + mins(10), b + mins(60));
    let (_, other) = session(1, b, b + mins(10), b + mins(60));
    t.store.create(&s).await.unwrap();
    t.store.create(&other).await.unwrap();

    assert!(!t.store.delete(&s.id, Some(2)).await.unwrap(), "not user 2's session");
    assert!(t.store.get(&s.token_hash, b).await.unwrap().is_some());
    assert!(t.store.delete(&s.id, Some(1)).await.unwrap());
    assert_eq!(t.store.get(&s.token_hash, b).await.unwrap(), None);
    assert!(!t.store.delete(&s.id, Some(1)).await.unwrap(), "already gone");
    assert!(!t.store.delete(&s.id, None).await.unwrap());

    assert!(t.store.delete(&other.id, None).await.unwrap(), "admin revocation by id");
    assert_eq!(t.store.get(&other.token_hash, b).await.unwrap(), None);
    assert!(!t.store.delete("no-such-session", None).await.unwrap());
    assert!(t.store.list(1, b).await.unwrap().is_empty());
}

async fn delete_all_keeps_except(t: Ctx) {
    let b = base();
    let a = live(1, b - mins(3));
    let keep = live(1, b - mins(2));
    let c = live(1, b - mins(1));
    let theirs = live(2, b);
    for s in [&a, &keep, &c, &theirs] {
        t.store.create(s).await.unwrap();
    }

    assert_eq!(t.store.delete_all(1, Some(&keep.id)).await.unwrap(), 2);
    assert_eq!(t.store.list(1, b).await.unwrap(), vec![keep.clone()]);
    assert_eq!(t.store.get(&a.token_hash, b).await.unwrap(), None);
    assert_eq!(t.store.get(&c.token_hash, b).await.unwrap(), None);
    assert!(t.store.get(&keep.token_hash, b).await.unwrap().is_some());
    assert_eq!(t.store.get(&theirs.token_hash, b).await.unwrap(), Some(theirs.clone()));

    assert_eq!(t.store.delete_all(1, None).await.unwrap(), 1);
    assert_eq!(t.store.get(&keep.token_hash, b).await.unwrap(), None);
    assert_eq!(t.store.delete_all(1, None).await.unwrap(), 0);
    assert_eq!(t.store.delete_all(3, None).await.unwrap(), 0, "user without sessions");
    assert_eq!(t.store.list(2, b).await.unwrap(), vec![theirs]);
}

async fn list_is_newest_first_and_live_only(t: Ctx) {
    let b = base();
    let old = live(1, b - mins(3));
    let mid = live(1, b - mins(2));
    let new = live(1, b - mins(1));
    let (_, expired) = session(1, b - mins(4), b + mins(1), b + mins(60));
    let theirs = live(2, b);
    for s in [&mid, &expired, &new, &theirs, &old] {
        t.store.create(s).await.unwrap();
    }
    let now = b + mins(2);
    assert_eq!(t.store.list(1, now).await.unwrap(), vec![new.clone(), mid.clone(), old.clone()]);
    assert_eq!(t.store.list(2, now).await.unwrap(), vec![theirs]);
    assert!(t.store.list(3, now).await.unwrap().is_empty());
    // Before its idle end the fourth one is listed too.
    assert_eq!(
        ids(&t.store.list(1, b).await.unwrap()),
        vec![new.id.as_str(), mid.id.as_str(), old.id.as_str(), expired.id.as_str()]
    );
}

async fn list_all_covers_every_user(t: Ctx) {
    let b = base();
    let a = live(1, b - mins(2));
    let z = live(2, b - mins(1));
    let (_, expired) = session(3, b - mins(3), b + secs(30), b + mins(60));
    for s in [&a, &expired, &z] {
        t.store.create(s).await.unwrap();
    }
    assert_eq!(t.store.list_all(b + mins(1)).await.unwrap(), vec![z, a]);
    // `count` (the active-sessions gauge) agrees with the listing, expired ones left out.
    assert_eq!(t.store.count(b + mins(1)).await.unwrap(), 2);
}

async fn gc_removes_expired(t: Ctx) {
    let b = base();
    // Already over by the real clock (Redis drops it at once)...
    let (_, dead) = session(1, b - mins(120), b - mins(60), b + mins(60));
    // ...over by the time gc runs...
    let (_, soon) = session(1, b, b + mins(1), b + mins(60));
    // ...and alive throughout.
    let keep = live(2, b);
    for s in [&dead, &soon, &keep] {
        t.store.create(s).await.unwrap();
    }
    assert_eq!(t.store.get(&dead.token_hash, b).await.unwrap(), None);

    let removed = t.store.gc(b + mins(2)).await.unwrap();
    if t.native_expiry {
        assert_eq!(removed, 0, "native expiry: nothing for gc to do");
    } else {
        assert_eq!(removed, 2);
        // Really deleted, not merely filtered: even an earlier `now` finds nothing.
        assert_eq!(t.store.get(&soon.token_hash, b).await.unwrap(), None);
        assert_eq!(t.store.gc(b + mins(2)).await.unwrap(), 0);
    }
    // Gone on every backend (Redis expired it natively).
    assert_eq!(t.store.get(&dead.token_hash, b - mins(90)).await.unwrap(), None);
    assert_eq!(t.store.get(&soon.token_hash, b + mins(2)).await.unwrap(), None);
    assert_eq!(t.store.get(&keep.token_hash, b + mins(2)).await.unwrap(), Some(keep.clone()));
    assert_eq!(t.store.list_all(b + mins(2)).await.unwrap(), vec![keep]);
}

async fn ping_answers(t: Ctx) {
    t.store.ping().await.unwrap();
}

async fn one_shot_is_taken_once(t: Ctx) {
    let b = base();
    let key = random_b64(16);
    t.store.put_once(&key, b"ceremony \x00\xff", b + mins(5)).await.unwrap();
    // Parallel takes (two instances racing on a replayed request): exactly one wins.
    let takes = (0..8).map(|_| {
        let (store, key) = (t.store.clone(), key.clone());
        tokio::spawn(async move { store.take_once(&key, b).await.unwrap() })
    });
    let got: Vec<Option<Vec<u8>>> =
        futures_util::future::join_all(takes).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(got.iter().flatten().collect::<Vec<_>>(), vec![&b"ceremony \x00\xff".to_vec()]);
    assert_eq!(t.store.take_once(&key, b).await.unwrap(), None);
    assert_eq!(t.store.take_once(&random_b64(16), b).await.unwrap(), None, "never stored");
}

async fn one_shot_expires(t: Ctx) {
    let b = base();
    let key = random_b64(16);
    // Already over by the real clock too, so Redis's native expiry agrees.
    t.store.put_once(&key, b"late", b - secs(1)).await.unwrap();
    assert_eq!(t.store.take_once(&key, b).await.unwrap(), None);
    let kept = random_b64(16);
    t.store.put_once(&kept, b"kept", b + mins(5)).await.unwrap();
    t.store.gc(b).await.unwrap();
    assert_eq!(t.store.take_once(&kept, b).await.unwrap(), Some(b"kept".to_vec()), "gc keeps live values");
}

// ---------------------------------------------------------------------------------------------
// Redis: native expiry, key hygiene, bounded failure

mod redis_native {
    use super::*;

    async fn pttl(conn: &mut ::redis::aio::MultiplexedConnection, key: &str) -> i64 {
        conn.pttl(key).await.unwrap()
    }

    #[tokio::test]
    async fn ttl_follows_session_expiry() {
        let prefix = redis_prefix();
        let store = redis_store(&prefix).await;
        let mut raw = raw_redis().await;
        let b = base();

        let (_, s) = session(7, b, b + mins(10), b + mins(60));
        store.create(&s).await.unwrap();
        let rec = store.session_key(7, &s.id);
        let ttl = pttl(&mut raw, &rec).await;
        assert!(ttl > 0 && ttl <= 10 * 60_000, "record TTL {ttl} ms, want ≤ 10 min");
        let ttl = pttl(&mut raw, &store.index_key(7)).await;
        assert!(ttl > 0 && ttl <= 10 * 60_000, "index TTL {ttl} ms, want ≤ 10 min");
        let ttl = pttl(&mut raw, &store.token_key(&s.token_hash)).await;
        assert!(ttl > 50 * 60_000 && ttl <= 60 * 60_000, "pointer TTL {ttl} ms, want the absolute end");

        // Touch extends the record and the index.
        assert!(store.touch(&s, b + mins(1), b + mins(30)).await.unwrap());
        let ttl = pttl(&mut raw, &rec).await;
        assert!(ttl > 10 * 60_000 && ttl <= 30 * 60_000, "touched record TTL {ttl} ms");
        let ttl = pttl(&mut raw, &store.index_key(7)).await;
        assert!(ttl > 10 * 60_000 && ttl <= 30 * 60_000, "touched index TTL {ttl} ms");

        // The absolute end caps the TTL whatever the idle end says.
        let (_, capped) = session(7, b, b + mins(120), b + mins(20));
        store.create(&capped).await.unwrap();
        let ttl = pttl(&mut raw, &store.session_key(7, &capped.id)).await;
        assert!(ttl > 0 && ttl <= 20 * 60_000, "capped record TTL {ttl} ms");
        // The index lives as long as its longest-lived member.
        let ttl = pttl(&mut raw, &store.index_key(7)).await;
        assert!(ttl > 20 * 60_000 && ttl <= 30 * 60_000, "index TTL {ttl} ms");

        Cleanup::Redis { prefix }.run().await;
    }

    #[tokio::test]
    async fn expired_sessions_leave_no_record_and_are_pruned() {
        let prefix = redis_prefix();
        let store = redis_store(&prefix).await;
        let mut raw = raw_redis().await;
        let b = base();

        let (_, dead) = session(8, b - mins(10), b - mins(5), b + mins(60));
        let keep = live(8, b);
        store.create(&dead).await.unwrap();
        store.create(&keep).await.unwrap();
        let exists: bool = raw.exists(store.session_key(8, &dead.id)).await.unwrap();
        assert!(!exists, "a record past its end is never kept");
        assert_eq!(store.list(8, b).await.unwrap(), vec![keep.clone()]);
        let member: bool = raw.sismember(store.index_key(8), &dead.id).await.unwrap();
        assert!(!member, "list prunes ids of expired records from the index");
        let member: bool = raw.sismember(store.index_key(8), &keep.id).await.unwrap();
        assert!(member);

        Cleanup::Redis { prefix }.run().await;
    }

    #[tokio::test]
    async fn revocation_and_rotation_remove_pointers() {
        let prefix = redis_prefix();
        let store = redis_store(&prefix).await;
        let mut raw = raw_redis().await;
        let b = base();

        let (_, s) = session(9, b, b + mins(10), b + mins(60));
        store.create(&s).await.unwrap();
        let mut next = s.clone();
        next.token_hash = SessionToken::generate().hash();
        assert!(store.update(&s.token_hash, &next).await.unwrap());
        let old: bool = raw.exists(store.token_key(&s.token_hash)).await.unwrap();
        assert!(!old, "old token pointer deleted after rotation");
        // Pointers are never trusted: one left behind (cleanup failed, or a read raced the
        // rotation) leads to a record that names another token.
        let stale = format!("{}:{}", s.user_id, s.id);
        let _: () = raw.set_ex(store.token_key(&s.token_hash), stale, 600).await.unwrap();
        assert_eq!(store.get(&s.token_hash, b).await.unwrap(), None, "stale pointer ignored");
        assert!(store.get(&next.token_hash, b).await.unwrap().is_some());
        let _: () = raw.del(store.token_key(&s.token_hash)).await.unwrap();

        let other = live(9, b);
        store.create(&other).await.unwrap();
        assert!(store.delete(&next.id, None).await.unwrap());
        assert_eq!(store.delete_all(9, None).await.unwrap(), 1);
        let left: Vec<String> = raw.keys(format!("{prefix}*")).await.unwrap();
        assert!(left.is_empty(), "keys left after revoking everything: {left:?}");
    }

    #[tokio::test]
    async fn prefixes_isolate_stores() {
        let (p1, p2) = (redis_prefix(), redis_prefix());
        let (one, two) = (redis_store(&p1).await, redis_store(&p2).await);
        let b = base();
        let s = live(1, b);
        one.create(&s).await.unwrap();
        assert_eq!(two.get(&s.token_hash, b).await.unwrap(), None);
        assert!(two.list_all(b).await.unwrap().is_empty());
        assert_eq!(one.list_all(b).await.unwrap(), vec![s]);
        Cleanup::Redis { prefix: p1 }.run().await;
    }

    #[tokio::test]
    async fn prefix_with_braces_is_refused() {
        assert!(RedisStore::connect(REDIS_URL, "app:{x}:").await.is_err());
    }

    #[tokio::test]
    async fn unreachable_redis_fails_fast() {
        let started = Instant::now();
        assert!(RedisStore::connect("redis://127.0.0.1:1", "x:").await.is_err());
        assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());

        // A server that accepts connections but never answers.
        let (addr, _hold) = black_hole().await;
        let started = Instant::now();
        assert!(RedisStore::connect(&format!("redis://{addr}"), "x:").await.is_err());
        assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    }
}

mod postgres_connect {
    use super::*;

    #[tokio::test]
    async fn unreachable_postgres_fails_fast() {
        let started = Instant::now();
        assert!(connect_postgres("postgres://postgres@127.0.0.1:1/test").await.is_err());
        assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());

        let (addr, _hold) = black_hole().await;
        let started = Instant::now();
        assert!(connect_postgres(&format!("postgres://postgres@{addr}/test")).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    }
}

/// A TCP listener that accepts connections and never answers; dropped with the returned handle.
async fn black_hole() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    (addr, task)
}
