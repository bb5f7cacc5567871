//! The account guard of [`crate::ratelimit::account`] in Redis, shared by every instance.
//!
//! One hash tag per account, so one script sees and changes all of an account's state at once
//! (atomic, and Cluster-safe):
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `PREFIX rl:{login_account:H(account)}:ip:H(ip)` | hash | `c`: failures in a row from that IP, `t`: the last one (µs) | 24 h after the last failure |
//! | `PREFIX rl:{login_account:H(account)}:ceiling` | sorted set | the latest failures from all IPs (member: the attempt's ticket) | the ceiling's period |
//! | `PREFIX rl:{login_account:H(account)}:known` | sorted set | digests of IPs that logged in (score: when) | 30 days |
//!
//! `H` is a truncated SHA-256: neither names nor addresses are stored in clear. Checks fail
//! closed like the other limits.

use std::net::IpAddr;

use ::redis::Script;
use async_trait::async_trait;

use super::{NOW, Retry, Shared, digest, member, micros, verdict};
use crate::ratelimit::account::{AccountGuard, KNOWN_FOR, KNOWN_MAX, Policy};
use crate::ratelimit::{Refusal, Ticket, ip_key};

/// KEYS: strikes, ceiling, known. ARGV: window (µs), free, max lock (µs), forget after (µs),
/// ceiling period (µs), ceiling count, the IP's member in known, known for (µs), the ticket.
/// Refused (the wait in ms) while this IP is backing off, or past the ceiling from an IP the
/// account does not know; otherwise the attempt counts as a failure in both, and 0.
const RESERVE: &str = r"
local window = tonumber(ARGV[1])
local free = tonumber(ARGV[2])
local maxl = math.max(tonumber(ARGV[3]), window)
local forget = tonumber(ARGV[4])
local c = tonumber(redis.call('HGET', KEYS[1], 'c') or '0')
local t = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
if now - t >= forget then c = 0 end
if c >= free then
  local lock = math.min(window * (2 ^ math.min(c - free, 40)), maxl)
  local left = t + lock - now
  if left > 0 then return math.ceil(left / 1000) end
end
local cw = tonumber(ARGV[5])
local cc = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', int(now - cw))
local n = redis.call('ZCARD', KEYS[2])
if n >= cc then
  local s = redis.call('ZSCORE', KEYS[3], ARGV[7])
  if not (s and tonumber(s) > now - tonumber(ARGV[8])) then
    local oldest = redis.call('ZRANGE', KEYS[2], n - cc, n - cc, 'WITHSCORES')
    return math.max(1, math.ceil((tonumber(oldest[2]) + cw - now) / 1000))
  end
end
c = c + 1
redis.call('HSET', KEYS[1], 'c', c, 't', int(now))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(forget / 1000)))
redis.call('ZADD', KEYS[2], int(now), ARGV[9])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(cc + 1))
redis.call('PEXPIRE', KEYS[2], math.max(1, math.ceil(cw / 1000)))
return 0
";

/// KEYS: strikes, ceiling. ARGV: the ticket.
const REFUND: &str = r"
local c = tonumber(redis.call('HGET', KEYS[1], 'c') or '0')
if c > 0 then redis.call('HSET', KEYS[1], 'c', c - 1) end
redis.call('ZREM', KEYS[2], ARGV[1])
return 0
";

/// KEYS: strikes, ceiling, known. ARGV: the ticket (or ''), the IP's member, known for (µs),
/// how many to keep.
const SUCCEED: &str = r"
redis.call('DEL', KEYS[1])
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[2], ARGV[1]) end
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[3], int(now), ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', int(now - ttl))
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[4]) + 1))
redis.call('PEXPIRE', KEYS[3], math.max(1, math.ceil(ttl / 1000)))
return 0
";

pub struct RedisGuard {
    conn: Shared,
    prefix: String,
    policy: Policy,
    reserve: Script,
    refund: Script,
    succeed: Script,
}

/// An account's three keys, and its IP's member in `known`.
struct Keys {
    strikes: String,
    ceiling: String,
    known: String,
    ip: String,
}

impl Keys {
    fn all(&self) -> [&str; 3] {
        [&self.strikes, &self.ceiling, &self.known]
    }
}

impl RedisGuard {
    pub fn new(conn: Shared, prefix: &str, policy: Policy) -> Self {
        let script = |body: &str| Script::new(&format!("{NOW}{body}"));
        RedisGuard {
            conn,
            prefix: prefix.to_owned(),
            policy,
            reserve: script(RESERVE),
            refund: script(REFUND),
            succeed: script(SUCCEED),
        }
    }

    fn keys(&self, account: &str, ip: IpAddr) -> Keys {
        let base = format!("{}rl:{{login_account:{}}}", self.prefix, digest(account));
        let ip = digest(&ip_key(ip));
        Keys {
            strikes: format!("{base}:ip:{ip}"),
            ceiling: format!("{base}:ceiling"),
            known: format!("{base}:known"),
            ip,
        }
    }
}

#[async_trait]
impl AccountGuard for RedisGuard {
    async fn reserve(&self, account: &str, ip: IpAddr) -> Result<Ticket, Refusal> {
        let (p, k, ticket) = (&self.policy, self.keys(account, ip), Ticket::new());
        let args = [
            micros(p.window).to_string(),
            p.free.to_string(),
            micros(p.max).to_string(),
            micros(p.keep()).to_string(),
            micros(p.ceiling.per).to_string(),
            p.ceiling.count.to_string(),
            k.ip.clone(),
            micros(KNOWN_FOR).to_string(),
            member(ticket),
        ];
        verdict("login_account", self.conn.run(&self.reserve, Retry::IfNeverSent, &k.all(), &args).await)?;
        Ok(ticket)
    }

    async fn refund(&self, account: &str, ip: IpAddr, ticket: Ticket) {
        let k = self.keys(account, ip);
        let answer =
            self.conn.run(&self.refund, Retry::IfNeverSent, &[&k.strikes, &k.ceiling], &[member(ticket)]).await;
        if let Err(e) = answer {
            tracing::warn!(limit = "login_account", error = %e, "could not take back a login attempt in Redis");
        }
    }

    async fn succeed(&self, account: &str, ip: IpAddr, ticket: Option<Ticket>) {
        let k = self.keys(account, ip);
        let args = [
            ticket.map(member).unwrap_or_default(),
            k.ip.clone(),
            micros(KNOWN_FOR).to_string(),
            KNOWN_MAX.to_string(),
        ];
        // Idempotent: a retry only re-clears and re-remembers.
        if let Err(e) = self.conn.run(&self.succeed, Retry::ReadOnly, &k.all(), &args).await {
            tracing::warn!(limit = "login_account", error = %e, "could not record a successful login in Redis");
        }
    }
}
