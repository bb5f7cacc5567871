//! Rate limits in Redis, shared by every gateway instance that uses the same Redis and key
//! prefix (chosen automatically with `session.store = "redis"`).
//!
//! Each check is one Lua script on one key, so it is atomic, and Cluster-safe (one slot per
//! script; the keys are hash-tagged all the same). Times come from the Redis server's clock
//! (`TIME`), never from the instances', so instances with skewed clocks agree.
//!
//! | key | type | algorithm | expires |
//! |---|---|---|---|
//! | `PREFIX rl:{login_ip:IP}`, `rl:{signup_ip:IP}`, `rl:{reset_ip:IP}`, `rl:{passkey_ip:IP}`, `rl:{reset_address:H}` | string | GCRA: the theoretical arrival time (µs) | when the allowance is full again (≤ the rate's period) |
//! | `PREFIX rl:{mfa_account:H}` | sorted set | the latest `N` failure times (µs) | the window after the last failure |
//! | `PREFIX rl:{login_account:H}:…` | see [`account`] | back-off, ceiling, known IPs | |
//!
//! `IP` is [`super::ip_key`] (IPv6 per /64), kept readable so operators can find a block; `H`
//! is the first 32 hex digits of the SHA-256 of the limiter's key (the account key of
//! [`crate::users::account_key`], a normalised address): names and addresses are never stored
//! in Redis, and every key has a bounded size whatever the client sent. To lift a block by hand:
//! `DEL` the key.
//!
//! Same semantics as the in-process limiters ([`super::PerKey`], [`super::Failures`]): a burst
//! of `N` then one attempt every `DURATION / N`; `N` failures within `DURATION` block the account
//! until the oldest of them is `DURATION` old, an attempt being reserved (counted) before it is
//! made, in the same script that checks the limit.
//!
//! Every call is bounded by [`OP_TIMEOUT`] (connecting included). When Redis cannot answer,
//! checks return [`Refusal::Unavailable`] (fail closed: 503 `overloaded`); recording a failure or
//! a success is best effort and only logged.

pub mod account;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Script};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{FailureLimiter, RateLimiter, Refusal, Ticket};
use crate::config::Rate;
use crate::db::redis::{KeepAlive, keep_alive, never_sent};

/// Bound on every limiter call, the same as the Redis session store's.
pub const OP_TIMEOUT: Duration = crate::db::redis::OP_TIMEOUT;

/// The current time in µs from the server, as `now`.
const NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function int(x) return string.format('%.0f', x) end
";

/// GCRA. KEYS: the key. ARGV: emission interval (µs), burst. Returns 0 (allowed) or the wait (ms).
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return math.ceil((allow_at - now) / 1000)
end
redis.call('SET', KEYS[1], int(new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return 0
";

/// KEYS: the key. ARGV: window (µs), count, the ticket (a unique member). Counts the attempt
/// unless `count` failures are already within the window. Returns 0 (reserved) or the wait (ms).
const RESERVE: &str = r"
local window = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now - window))
local n = redis.call('ZCARD', KEYS[1])
if n >= count then
  local oldest = redis.call('ZRANGE', KEYS[1], n - count, n - count, 'WITHSCORES')
  return math.max(1, math.ceil((tonumber(oldest[2]) + window - now) / 1000))
end
redis.call('ZADD', KEYS[1], int(now), ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(count + 1))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(window / 1000)))
return 0
";

/// One lazily opened, self-reconnecting connection shared by all limiters of a process.
#[derive(Clone)]
pub struct Shared(Arc<SharedInner>);

struct SharedInner {
    client: Result<Client, String>,
    conn: OnceCell<(ConnectionManager, KeepAlive)>,
}

/// Whether a script may run again after a failure: always for read-only ones, else only when
/// it was never sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    ReadOnly,
    IfNeverSent,
}

impl Shared {
    /// Never connects here (construction is synchronous); the first check does.
    pub fn new(url: &str) -> Self {
        Shared(Arc::new(SharedInner { client: Client::open(url).map_err(|e| e.to_string()), conn: OnceCell::new() }))
    }

    async fn conn(&self) -> Result<ConnectionManager, String> {
        let client = self.0.client.as_ref().map_err(Clone::clone)?;
        let (conn, _) = self
            .0
            .conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(OP_TIMEOUT)
                    .set_response_timeout(OP_TIMEOUT)
                    .set_number_of_retries(0);
                let conn =
                    ConnectionManager::new_with_config(client.clone(), config).await.map_err(|e| e.to_string())?;
                let keepalive = keep_alive(&conn);
                Ok::<_, String>((conn, keepalive))
            })
            .await?;
        Ok(conn.clone())
    }

    /// Run `script` on `keys` (all in one hash slot) under [`OP_TIMEOUT`]; the answer is a
    /// wait in ms (0 = go ahead). A failure on a connection that just broke is retried once
    /// (per `retry`) on the manager's fresh one, so the first attempt after Redis comes back is
    /// not refused.
    async fn run(&self, script: &Script, retry: Retry, keys: &[&str], args: &[String]) -> Result<u64, String> {
        bounded(async {
            let mut conn = self.conn().await?;
            let mut call = script.prepare_invoke();
            for k in keys {
                call.key(*k);
            }
            for a in args {
                call.arg(a);
            }
            match call.invoke_async::<u64>(&mut conn).await {
                Err(e) if retry == Retry::ReadOnly || never_sent(&e) => {
                    call.invoke_async::<u64>(&mut conn).await.map_err(|e| e.to_string())
                }
                done => done.map_err(|e| e.to_string()),
            }
        })
        .await
    }
}

async fn bounded<T>(op: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(OP_TIMEOUT, op).await.unwrap_or_else(|_| Err(format!("no answer within {OP_TIMEOUT:?}")))
}

fn key_for(prefix: &str, name: &str, key: &str) -> String {
    format!("{prefix}rl:{{{name}:{key}}}")
}

/// The first 32 hex digits of the SHA-256 of `key`: names and addresses stay out of Redis.
fn digest(key: &str) -> String {
    let mut hex = hex::encode(Sha256::digest(key.as_bytes()));
    hex.truncate(32);
    hex
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Wait in ms → `Retry-After` seconds (rounded up, at least 1).
fn wait_secs(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

fn verdict(name: &str, answer: Result<u64, String>) -> Result<(), Refusal> {
    match answer {
        Ok(0) => Ok(()),
        Ok(ms) => Err(Refusal::Limited(wait_secs(ms))),
        Err(e) => {
            tracing::warn!(limit = name, error = %e, "redis rate limiter unavailable; failing closed");
            Err(Refusal::Unavailable)
        }
    }
}

/// Every attempt counts (GCRA), per key (client IP).
pub struct RedisRate {
    conn: Shared,
    prefix: String,
    name: &'static str,
    script: Script,
    interval_us: u64,
    burst: u32,
}

impl RedisRate {
    pub fn new(conn: Shared, prefix: &str, name: &'static str, rate: Rate) -> Self {
        let burst = rate.count.max(1);
        RedisRate {
            conn,
            prefix: prefix.to_owned(),
            name,
            script: Script::new(&format!("{NOW}{GCRA}")),
            interval_us: (micros(rate.per) / u64::from(burst)).max(1),
            burst,
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRate {
    async fn check(&self, key: &str) -> Result<(), Refusal> {
        // Client IPs (and IPv6 /64s) are kept readable (operators look for them); anything else
        // (an email address, a username) is stored hashed.
        let readable = key.parse::<std::net::IpAddr>().is_ok() || key.parse::<ipnet::IpNet>().is_ok();
        let key = if readable {
            key_for(&self.prefix, self.name, key)
        } else {
            key_for(&self.prefix, self.name, &digest(key))
        };
        let answer = self
            .conn
            .run(&self.script, Retry::IfNeverSent, &[&key], &[self.interval_us.to_string(), self.burst.to_string()])
            .await;
        verdict(self.name, answer)
    }
}

/// Only failures count, per account, in a sliding window.
pub struct RedisFailures {
    conn: Shared,
    prefix: String,
    name: &'static str,
    reserve: Script,
    window_us: u64,
    count: u32,
}

impl RedisFailures {
    pub fn new(conn: Shared, prefix: &str, name: &'static str, rate: Rate) -> Self {
        RedisFailures {
            conn,
            prefix: prefix.to_owned(),
            name,
            reserve: Script::new(&format!("{NOW}{RESERVE}")),
            window_us: micros(rate.per),
            count: rate.count,
        }
    }

    fn key(&self, account: &str) -> String {
        key_for(&self.prefix, self.name, &digest(account))
    }

    /// A one-command change, retried once on any failure (it is idempotent).
    async fn idempotent(&self, cmd: ::redis::Cmd, what: &str) {
        let done = bounded(async {
            let mut conn = self.conn.conn().await?;
            match cmd.query_async::<()>(&mut conn).await {
                Err(_) => cmd.query_async::<()>(&mut conn).await.map_err(|e| e.to_string()),
                done => done.map_err(|e| e.to_string()),
            }
        })
        .await;
        if let Err(e) = done {
            tracing::warn!(limit = self.name, error = %e, "could not {what} in Redis");
        }
    }
}

/// The sorted-set member a ticket is stored as.
pub(crate) fn member(ticket: Ticket) -> String {
    format!("{:016x}", ticket.0)
}

#[async_trait]
impl FailureLimiter for RedisFailures {
    async fn reserve(&self, key: &str) -> Result<Ticket, Refusal> {
        let ticket = Ticket::new();
        let args = [self.window_us.to_string(), self.count.to_string(), member(ticket)];
        verdict(self.name, self.conn.run(&self.reserve, Retry::IfNeverSent, &[&self.key(key)], &args).await)?;
        Ok(ticket)
    }

    async fn refund(&self, key: &str, ticket: Ticket) {
        self.idempotent(::redis::cmd("ZREM").arg(self.key(key)).arg(member(ticket)).clone(), "take back an attempt")
            .await;
    }

    async fn clear(&self, key: &str) {
        self.idempotent(::redis::cmd("DEL").arg(self.key(key)).clone(), "clear failed attempts").await;
    }
}
