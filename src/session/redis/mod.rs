//! Redis session store: native expiry, shared by any number of gateway instances.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sessiongate::session::StoreError> {
//! use std::sync::Arc;
//! use sessiongate::session::SessionStore;
//! use sessiongate::session::redis::{DEFAULT_PREFIX, RedisStore};
//!
//! // Fails within seconds (never hangs) when Redis is down; reconnects by itself later.
//! let store: Arc<dyn SessionStore> =
//!     Arc::new(RedisStore::connect("redis://127.0.0.1:6379", DEFAULT_PREFIX).await?);
//! store.ping().await?;
//! # Ok(()) }
//! ```
//!
//! # Key layout
//!
//! With the default prefix `sessiongate:` (`U` = user id, `ID` = public session id,
//! `HASH` = [`TokenHash`]):
//!
//! | key | type | contents | expires at |
//! |---|---|---|---|
//! | `sessiongate:{u:U}:s:ID` | hash | `hash` (token hash), `data` (session JSON), `seen`, `idle` (RFC 3339) | [`Session::expires_at`] |
//! | `sessiongate:{u:U}:idx` | set | the user's session ids | the latest member's end |
//! | `sessiongate:t:HASH` | string | `U:ID` | `absolute_expires_at` |
//! | `sessiongate:i:ID` | string | `U` | `absolute_expires_at` |
//!
//! The **record** (`{u:U}:s:ID`) is the only authority: a session exists while its record exists
//! and the record's `hash` field names the token. All records and the index of one user share the
//! hash tag `{u:U}`, so they live in one Redis Cluster slot and every change to them is one Lua
//! script (atomic): create, update (rotation is a compare-and-set on the `hash` field), touch,
//! delete and delete-all.
//!
//! `get` knows only the token hash, so the token **pointer** `t:HASH` says where the record is; the
//! id pointer `i:ID` serves `delete(id, None)`. Pointers live in other slots and are written
//! around the scripts, never trusted: `get` follows the pointer, then accepts the record only if
//! its `hash` field equals the hash asked for. (Each instance remembers where a token's record
//! is — an immutable fact — so a repeated `get` skips the pointer and reads only the record: one
//! round trip instead of two, ≈ 1.3–1.4× whoami throughput, see `docs/scale-out.md`.) So:
//! - create writes the pointers first, then the record: a crash in between leaves a pointer to
//!   nothing;
//! - rotation writes the new pointer, compare-and-sets the record (from that instant the old token
//!   is dead and the new one works), then deletes the old pointer — a leftover old pointer leads
//!   to a record whose `hash` no longer matches;
//! - revocation deletes records atomically (per session or per user), then pointers best-effort.
//!
//! # Expiry
//!
//! Every key carries a native expiry (`PEXPIREAT`, so it is independent of clock differences
//! between gateway instances). The record expires at `min(idle, absolute)` and `touch` moves it;
//! the pointers expire at the absolute end, which never moves, so `touch` is a single script.
//! The per-user index is extended to its latest member's end and pruned lazily: `list` and
//! `delete_all` drop ids whose record has expired (so `delete_all` counts only sessions Redis
//! still held). [`SessionStore::gc`] has nothing to do and returns 0. Like every backend, reads
//! also compare against the caller's `now`.
//!
//! # Deployment caveats
//!
//! - Run Redis with `maxmemory-policy noeviction` (its default): every key here has a TTL, so a
//!   `volatile-*` or `allkeys-*` policy could evict a user's index and let `delete_all` miss a
//!   session.
//! - The layout is Cluster-ready (hash tags; scripts touch one slot), but the connection is a
//!   single-node [`ConnectionManager`] and `list_all` scans one node.
//! - Every call is bounded ([`OP_TIMEOUT`]): an unreachable Redis yields
//!   [`StoreError::Unavailable`] quickly, and the manager reconnects in the background.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, RedisError};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};

use super::{Session, SessionStore, StoreError, TokenHash};

pub use crate::db::redis::{KeepAlive, OP_TIMEOUT, keep_alive, never_sent};
/// Bound on `list_all`, which scans the keyspace.
const SCAN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on [`RedisStore::connect`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "sessiongate:";

mod once;
mod scripts;
use scripts::Scripts;

/// `HMGET record hash data seen idle`.
type Record = (Option<String>, Option<String>, Option<String>, Option<String>);

pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    scripts: Scripts,
    _keepalive: KeepAlive,
    locations: Locations,
}

/// Where the record of a token lives: token hash → (user id, session id).
///
/// This in-process cache saves `get` the round trip to the token pointer and needs no
/// invalidation, because it holds only facts that never change — a token hash names one session
/// for ever (rotation makes a new hash; ids are never reused). Whether the session still exists
/// and still belongs to that token is read from its record on every request, as without the
/// cache, so a revocation or rotation on any instance takes effect on the very next request.
/// Bounded: emptied when full.
struct Locations(std::sync::Mutex<HashMap<String, (i64, String)>>);

/// Entries kept by [`Locations`] (≈ 200 bytes each).
const LOCATIONS_MAX: usize = 100_000;

impl Locations {
    fn get(&self, hash: &TokenHash) -> Option<(i64, String)> {
        self.0.lock().expect("poisoned").get(&hash.0).cloned()
    }

    fn put(&self, hash: &TokenHash, user: i64, id: &str) {
        let mut map = self.0.lock().expect("poisoned");
        if map.len() >= LOCATIONS_MAX {
            map.clear();
        }
        map.insert(hash.0.clone(), (user, id.to_owned()));
    }

    fn forget(&self, hash: &TokenHash) {
        self.0.lock().expect("poisoned").remove(&hash.0);
    }
}

fn unavailable(e: RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

/// Run one store operation under a deadline, so a dead or stalled Redis never hangs a request.
async fn bounded<T>(limit: Duration, op: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(limit, op)
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable(format!("redis: no answer within {limit:?}"))))
}

/// `PEXPIREAT`/`PXAT` argument: Redis refuses 0 and negatives; 1 (1970) means "already gone".
fn at_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis().max(1)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad time {s:?}: {e}")))
}

/// Rebuild a session from its record fields (`touch` updates `seen`/`idle` without the JSON).
fn decode(data: &str, seen: Option<&str>, idle: Option<&str>) -> Result<Session, StoreError> {
    let mut s: Session = serde_json::from_str(data).map_err(|e| StoreError::Corrupt(format!("session json: {e}")))?;
    if let Some(seen) = seen {
        s.last_seen_at = parse_time(seen)?;
    }
    if let Some(idle) = idle {
        s.idle_expires_at = parse_time(idle)?;
    }
    Ok(s)
}

fn encode(s: &Session) -> Result<String, StoreError> {
    serde_json::to_string(s).map_err(|e| StoreError::Corrupt(format!("session json: {e}")))
}

fn sorted(mut v: Vec<Session>) -> Vec<Session> {
    v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
    v
}

/// Escape Redis glob metacharacters so a prefix matches literally in `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisStore {
    /// Connect to `url` (`redis://[user:pass@]host:port[/db]`, or `rediss://`) with key prefix
    /// `prefix` ([`DEFAULT_PREFIX`] is the usual choice). Fails within about five seconds when
    /// Redis is unreachable; after that the connection reconnects by itself.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        if prefix.contains(['{', '}']) {
            return Err(StoreError::Unavailable(format!(
                "redis key prefix {prefix:?} must not contain '{{' or '}}' (they would change the \
                 Redis Cluster hash tag)"
            )));
        }
        let client = ::redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(OP_TIMEOUT)
            .set_response_timeout(OP_TIMEOUT)
            .set_number_of_retries(0);
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, ConnectionManager::new_with_config(client, config))
            .await
            .map_err(|_| StoreError::Unavailable(format!("redis: no connection within {CONNECT_TIMEOUT:?}")))?
            .map_err(unavailable)?;
        let _keepalive = keep_alive(&conn);
        Ok(RedisStore {
            conn,
            prefix: prefix.to_owned(),
            scripts: Scripts::new(),
            _keepalive,
            locations: Locations(Default::default()),
        })
    }

    /// The record key of a session (for operators and tests; see the module docs).
    pub fn session_key(&self, user_id: i64, id: &str) -> String {
        format!("{}{{u:{user_id}}}:s:{id}", self.prefix)
    }

    /// The per-user index key.
    pub fn index_key(&self, user_id: i64) -> String {
        format!("{}{{u:{user_id}}}:idx", self.prefix)
    }

    /// The pointer key for a token hash.
    pub fn token_key(&self, hash: &TokenHash) -> String {
        format!("{}t:{}", self.prefix, hash.0)
    }

    fn id_key(&self, id: &str) -> String {
        format!("{}i:{id}", self.prefix)
    }

    fn record_base(&self, user_id: i64) -> String {
        format!("{}{{u:{user_id}}}:s:", self.prefix)
    }

    /// Write the pointers for `s` (before its record: see the module docs).
    async fn write_pointers(&self, s: &Session) -> Result<(), StoreError> {
        let at = at_ms(s.absolute_expires_at);
        let mut conn = self.conn.clone();
        ::redis::pipe()
            .cmd("SET")
            .arg(self.token_key(&s.token_hash))
            .arg(format!("{}:{}", s.user_id, s.id))
            .arg("PXAT")
            .arg(at)
            .ignore()
            .cmd("SET")
            .arg(self.id_key(&s.id))
            .arg(s.user_id)
            .arg("PXAT")
            .arg(at)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    /// Delete keys that are no longer trusted anyway; failure only delays their expiry.
    async fn forget(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let mut conn = self.conn.clone();
        if let Err(e) = conn.del::<_, ()>(keys).await {
            tracing::debug!(error = %e, "redis: stale session pointers left to expire");
        }
    }

    async fn get_once(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<Session>, StoreError> {
        let mut conn = self.conn.clone();
        let (user, id) = match self.locations.get(hash) {
            Some(known) => known,
            None => {
                let ptr: Option<String> = conn.get(self.token_key(hash)).await.map_err(unavailable)?;
                let Some((user, id)) = ptr.as_deref().and_then(|p| p.split_once(':')) else {
                    return Ok(None);
                };
                let user: i64 = user.parse().map_err(|_| StoreError::Corrupt(format!("bad token pointer {ptr:?}")))?;
                self.locations.put(hash, user, id);
                (user, id.to_owned())
            }
        };
        let (stored, data, seen, idle): Record = ::redis::cmd("HMGET")
            .arg(self.session_key(user, &id))
            .arg(&["hash", "data", "seen", "idle"])
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        // The record is the authority: gone (revoked, expired) or now naming another token
        // (rotated), the token is dead — whatever the pointer or the cache said.
        if stored.as_deref() != Some(hash.0.as_str()) {
            self.locations.forget(hash);
            return Ok(None);
        }
        let Some(data) = data else { return Ok(None) };
        let s = decode(&data, seen.as_deref(), idle.as_deref())?;
        Ok((!s.is_expired(now)).then_some(s))
    }

    async fn delete_in(&self, user_id: i64, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let hash: Option<String> = self
            .scripts
            .delete
            .key(self.session_key(user_id, id))
            .key(self.index_key(user_id))
            .arg(id)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let Some(hash) = hash else { return Ok(false) };
        self.forget(vec![self.token_key(&TokenHash(hash)), self.id_key(id)]).await;
        Ok(true)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, s: &Session) -> Result<(), StoreError> {
        bounded(OP_TIMEOUT, async {
            self.write_pointers(s).await?;
            let mut conn = self.conn.clone();
            self.scripts
                .create
                .key(self.session_key(s.user_id, &s.id))
                .key(self.index_key(s.user_id))
                .arg(&s.token_hash.0)
                .arg(encode(s)?)
                .arg(rfc3339(s.last_seen_at))
                .arg(rfc3339(s.idle_expires_at))
                .arg(at_ms(s.expires_at()))
                .arg(&s.id)
                .invoke_async::<()>(&mut conn)
                .await
                .map_err(unavailable)
        })
        .await
    }

    async fn get(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<Session>, StoreError> {
        // Read-only, so a failure on a connection that just broke is retried once on the
        // manager's fresh one (within the same bound): the first request after Redis comes
        // back succeeds instead of answering 503.
        bounded(OP_TIMEOUT, async {
            match self.get_once(hash, now).await {
                Err(StoreError::Unavailable(_)) => self.get_once(hash, now).await,
                done => done,
            }
        })
        .await
    }

    async fn update(&self, old_hash: &TokenHash, s: &Session) -> Result<bool, StoreError> {
        bounded(OP_TIMEOUT, async {
            let rotated = *old_hash != s.token_hash;
            self.write_pointers(s).await?;
            let mut conn = self.conn.clone();
            let done: i64 = self
                .scripts
                .update
                .key(self.session_key(s.user_id, &s.id))
                .key(self.index_key(s.user_id))
                .arg(&old_hash.0)
                .arg(&s.token_hash.0)
                .arg(encode(s)?)
                .arg(rfc3339(s.last_seen_at))
                .arg(rfc3339(s.idle_expires_at))
                .arg(at_ms(s.expires_at()))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if rotated {
                let stale = if done == 1 { old_hash } else { &s.token_hash };
                self.forget(vec![self.token_key(stale)]).await;
            }
            Ok(done == 1)
        })
        .await
    }

    async fn touch(
        &self,
        s: &Session,
        last_seen_at: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        bounded(OP_TIMEOUT, async {
            let mut conn = self.conn.clone();
            let done: i64 = self
                .scripts
                .touch
                .key(self.session_key(s.user_id, &s.id))
                .key(self.index_key(s.user_id))
                .arg(rfc3339(last_seen_at))
                .arg(rfc3339(idle_expires_at))
                .arg(at_ms(idle_expires_at.min(s.absolute_expires_at)))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            Ok(done == 1)
        })
        .await
    }

    async fn delete(&self, id: &str, owner: Option<i64>) -> Result<bool, StoreError> {
        bounded(OP_TIMEOUT, async {
            let user = match owner {
                Some(user) => user,
                None => {
                    let mut conn = self.conn.clone();
                    let user: Option<i64> = conn.get(self.id_key(id)).await.map_err(unavailable)?;
                    match user {
                        Some(user) => user,
                        None => return Ok(false),
                    }
                }
            };
            self.delete_in(user, id).await
        })
        .await
    }

    async fn list(&self, user_id: i64, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        bounded(OP_TIMEOUT, async {
            let mut conn = self.conn.clone();
            let flat: Vec<Option<String>> = self
                .scripts
                .list
                .key(self.index_key(user_id))
                .arg(self.record_base(user_id))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let mut out = Vec::with_capacity(flat.len() / 3);
            for f in flat.chunks(3) {
                let [Some(data), seen, idle] = f else {
                    return Err(StoreError::Corrupt("session record without data".into()));
                };
                let s = decode(data, seen.as_deref(), idle.as_deref())?;
                if !s.is_expired(now) {
                    out.push(s);
                }
            }
            Ok(sorted(out))
        })
        .await
    }

    async fn delete_all(&self, user_id: i64, except: Option<&str>) -> Result<u64, StoreError> {
        bounded(OP_TIMEOUT, async {
            let mut conn = self.conn.clone();
            let flat: Vec<String> = self
                .scripts
                .delete_all
                .key(self.index_key(user_id))
                .arg(self.record_base(user_id))
                .arg(except.unwrap_or(""))
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let mut stale = Vec::with_capacity(flat.len());
            for pair in flat.chunks(2) {
                if let [id, hash] = pair {
                    stale.push(self.id_key(id));
                    stale.push(self.token_key(&TokenHash(hash.clone())));
                }
            }
            self.forget(stale).await;
            Ok((flat.len() / 2) as u64)
        })
        .await
    }

    async fn list_all(&self, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        bounded(SCAN_TIMEOUT, async {
            let mut conn = self.conn.clone();
            let pattern = format!("{}{{u:*}}:s:*", glob_escape(&self.prefix));
            let mut keys = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            keys.sort_unstable();
            keys.dedup();
            let mut found = HashMap::new();
            for chunk in keys.chunks(500) {
                let mut pipe = ::redis::pipe();
                for k in chunk {
                    pipe.cmd("HMGET").arg(k).arg("data").arg("seen").arg("idle");
                }
                let rows: Vec<(Option<String>, Option<String>, Option<String>)> =
                    pipe.query_async(&mut conn).await.map_err(unavailable)?;
                for (data, seen, idle) in rows {
                    // Expired between SCAN and HMGET.
                    let Some(data) = data else { continue };
                    let s = decode(&data, seen.as_deref(), idle.as_deref())?;
                    if !s.is_expired(now) {
                        found.insert(s.id.clone(), s);
                    }
                }
            }
            Ok(sorted(found.into_values().collect()))
        })
        .await
    }

    async fn gc(&self, _now: DateTime<Utc>) -> Result<u64, StoreError> {
        // Native expiry removes records and pointers; indexes are pruned on `list`.
        Ok(0)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        bounded(OP_TIMEOUT, async {
            let mut conn = self.conn.clone();
            ::redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ()).map_err(unavailable)
        })
        .await
    }

    async fn put_once(&self, key: &str, value: &[u8], expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        self.put_one_shot(key, value, expires_at).await
    }

    async fn take_once(&self, key: &str, _now: DateTime<Utc>) -> Result<Option<Vec<u8>>, StoreError> {
        self.take_one_shot(key).await
    }
}
