//! The account guard of [`crate::ratelimit::account`] in Redis, shared by every instance.
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `PREFIX rl:{login_account:H(account, ip)}` | hash | `c`: failures in a row from that IP, `t`: the last one (µs) | the rate's window, or 24 h once the back-off started |
//! | `PREFIX rl:{login_ceiling:H(account)}` | sorted set | the latest failures from all IPs ([`super::RedisFailures`]) | the ceiling's period |
//! | `PREFIX rl:{login_known:H(account)}` | sorted set | digests of IPs that logged in (score: when) | 30 days |
//!
//! `H` is a truncated SHA-256: neither names nor addresses are stored in clear. Checks fail
//! closed like the other limits.

use std::net::IpAddr;

use ::redis::Script;
use async_trait::async_trait;

use super::{NOW, RedisFailures, Retry, Shared, digest, key_for, micros, verdict};
use crate::ratelimit::account::{AccountGuard, KNOWN_FOR, KNOWN_MAX, Policy, ip_key};
use crate::ratelimit::{FailureLimiter, Refusal};

/// KEYS: strikes. ARGV: window (µs), free, max lock (µs). Returns 0 or the wait (ms).
const CHECK: &str = r"
local c = tonumber(redis.call('HGET', KEYS[1], 'c') or '0')
local free = tonumber(ARGV[2])
if c < free then return 0 end
local t = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
local window = tonumber(ARGV[1])
local max = math.max(tonumber(ARGV[3]), window)
local lock = math.min(window * (2 ^ math.min(c - free, 40)), max)
local left = t + lock - now
if left > 0 then return math.ceil(left / 1000) end
return 0
";

/// KEYS: strikes. ARGV: window (µs), free, forget after (µs). Returns the new count.
const FAIL: &str = r"
local window = tonumber(ARGV[1])
local free = tonumber(ARGV[2])
local forget = tonumber(ARGV[3])
local c = tonumber(redis.call('HGET', KEYS[1], 'c') or '0')
local t = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
local keep = window
if c >= free then keep = forget end
if now - t >= keep then c = 0 end
c = c + 1
redis.call('HSET', KEYS[1], 'c', c, 't', int(now))
local ttl = window
if c >= free then ttl = forget end
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(ttl / 1000)))
return c
";

/// KEYS: known. ARGV: member, ttl (µs). Returns 1 when known.
const KNOWN: &str = r"
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) > now - tonumber(ARGV[2]) then return 1 end
return 0
";

/// KEYS: strikes, then known is a separate call (different slots). ARGV: none.
const FORGET: &str = r"
redis.call('DEL', KEYS[1])
return 0
";

/// KEYS: known. ARGV: member, ttl (µs), how many to keep.
const REMEMBER: &str = r"
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], int(now), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now - ttl))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(ttl / 1000)))
return 1
";

pub struct RedisGuard {
    conn: Shared,
    prefix: String,
    policy: Policy,
    ceiling: RedisFailures,
    check: Script,
    fail: Script,
    known: Script,
    forget: Script,
    remember: Script,
}

impl RedisGuard {
    pub fn new(conn: Shared, prefix: &str, policy: Policy) -> Self {
        let script = |body: &str| Script::new(&format!("{NOW}{body}"));
        RedisGuard {
            ceiling: RedisFailures::new(conn.clone(), prefix, "login_ceiling", policy.ceiling),
            conn,
            prefix: prefix.to_owned(),
            policy,
            check: script(CHECK),
            fail: script(FAIL),
            known: script(KNOWN),
            forget: script(FORGET),
            remember: script(REMEMBER),
        }
    }

    fn strikes_key(&self, account: &str, ip: IpAddr) -> String {
        key_for(&self.prefix, "login_account", &digest(&format!("{account}\n{}", ip_key(ip))))
    }

    fn known_key(&self, account: &str) -> String {
        key_for(&self.prefix, "login_known", &digest(account))
    }
}

#[async_trait]
impl AccountGuard for RedisGuard {
    async fn check(&self, account: &str, ip: IpAddr) -> Result<(), Refusal> {
        let p = &self.policy;
        let args = [micros(p.window).to_string(), p.free.to_string(), micros(p.max).to_string()];
        let answer = self.conn.run(&self.check, Retry::ReadOnly, &self.strikes_key(account, ip), &args).await;
        verdict("login_account", answer)?;
        let Err(refusal) = self.ceiling.blocked(account).await else { return Ok(()) };
        let member = digest(&ip_key(ip));
        let args = [member, micros(KNOWN_FOR).to_string()];
        match self.conn.run(&self.known, Retry::ReadOnly, &self.known_key(account), &args).await {
            Ok(1) => Ok(()),
            Ok(_) => Err(refusal),
            Err(e) => {
                tracing::warn!(limit = "login_known", error = %e, "redis rate limiter unavailable; failing closed");
                Err(Refusal::Unavailable)
            }
        }
    }

    async fn fail(&self, account: &str, ip: IpAddr) {
        let p = &self.policy;
        let forget = micros(p.keep(p.free));
        let args = [micros(p.window).to_string(), p.free.to_string(), forget.to_string()];
        if let Err(e) = self.conn.run(&self.fail, Retry::IfNeverSent, &self.strikes_key(account, ip), &args).await {
            tracing::warn!(limit = "login_account", error = %e, "could not record a failed login in Redis");
        }
        self.ceiling.fail(account).await;
    }

    async fn succeed(&self, account: &str, ip: IpAddr) {
        if let Err(e) = self.conn.run(&self.forget, Retry::ReadOnly, &self.strikes_key(account, ip), &[]).await {
            tracing::warn!(limit = "login_account", error = %e, "could not clear failed logins in Redis");
        }
        let args = [digest(&ip_key(ip)), micros(KNOWN_FOR).to_string(), KNOWN_MAX.to_string()];
        if let Err(e) = self.conn.run(&self.remember, Retry::IfNeverSent, &self.known_key(account), &args).await {
            tracing::warn!(limit = "login_known", error = %e, "could not remember a login's IP in Redis");
        }
    }
}
