//! Login, signup and reset rate limits.
//!
//! Two kinds of limit, each behind a trait so the same handlers work with one gateway or many:
//! - [`RateLimiter`] — every attempt from one key (a client IP) counts: GCRA, a burst of `N` then
//!   one more attempt every `DURATION / N`.
//! - [`FailureLimiter`] — only failures count (per account), in a sliding window, so a user who
//!   types their password right is never slowed down by their own successes.
//! - [`account::AccountGuard`] — wrong passwords: exponential back-off per (account, client IP)
//!   and a ceiling per account that spares the IPs the user logged in from, so an attacker
//!   cannot lock the real user out (ASVS 6.3.1; `docs/security.md`).
//!
//! Implementations: in process ([`PerKey`] with `governor`, [`Failures`]) — the default, per
//! instance — and in Redis ([`redis`]), chosen by [`Limits::for_settings`] whenever
//! `session.store = "redis"`, so the limits hold across all instances sharing that Redis.
//!
//! **Fail closed**: when the Redis limiter cannot answer (down, or no reply within
//! [`redis::OP_TIMEOUT`]), [`Refusal::Unavailable`] turns the attempt into 503 `overloaded` —
//! an attacker must not get unlimited password guesses because Redis is unreachable.

pub mod account;
pub mod redis;

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::{Rate, Settings};
use crate::http::Problem;

/// Why an attempt may not proceed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over the limit: retry after this many seconds (429 + `Retry-After`).
    Limited(u64),
    /// The shared limiter could not be asked: fail closed (503 `overloaded`).
    Unavailable,
}

impl From<Refusal> for Problem {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Limited(secs) => Problem::rate_limited(secs),
            Refusal::Unavailable => Problem::overloaded("The rate limiter is unavailable; try again shortly."),
        }
    }
}

/// Every attempt by one key counts.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Count one attempt by `key`; refused when over the limit (or when the limit is unknowable).
    async fn check(&self, key: &str) -> Result<(), Refusal>;
    /// Drop state of keys that are back to a full allowance (in-process stores only).
    fn cleanup(&self) {}
}

/// Only failures count; [`blocked`](FailureLimiter::blocked) is asked before an attempt,
/// [`fail`](FailureLimiter::fail) records a failed one, [`clear`](FailureLimiter::clear) forgets
/// them after a success.
#[async_trait]
pub trait FailureLimiter: Send + Sync + 'static {
    async fn blocked(&self, key: &str) -> Result<(), Refusal>;
    /// Best effort: a failure that cannot be recorded is logged.
    async fn fail(&self, key: &str);
    /// Best effort, like `fail`.
    async fn clear(&self, key: &str);
    fn cleanup(&self) {}
}

/// In process: every attempt from one key counts (GCRA, `governor`).
pub struct PerKey<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> PerKey<K> {
    pub fn new(rate: Rate) -> Self {
        let burst = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
        let period = rate.per / rate.count.max(1);
        let quota =
            Quota::with_period(period.max(Duration::from_nanos(1))).expect("non-zero period").allow_burst(burst);
        PerKey { limiter: governor::RateLimiter::keyed(quota) }
    }

    /// Count one attempt; `Err(seconds)` when over the limit.
    pub fn attempt(&self, key: &K) -> Result<(), u64> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

#[async_trait]
impl RateLimiter for PerKey<String> {
    async fn check(&self, key: &str) -> Result<(), Refusal> {
        self.attempt(&key.to_owned()).map_err(Refusal::Limited)
    }

    fn cleanup(&self) {
        self.limiter.retain_recent();
    }
}

/// In process: only failures count, in a sliding window of `rate.per`.
pub struct Failures {
    rate: Rate,
    map: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Failures {
    pub fn new(rate: Rate) -> Self {
        Failures { rate, map: Mutex::new(HashMap::new()) }
    }

    /// `Some(seconds to wait)` when the account has had too many recent failures.
    pub fn wait(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        let mut map = self.map.lock().expect("poisoned");
        let q = map.get_mut(key)?;
        while q.front().is_some_and(|t| now.duration_since(*t) >= self.rate.per) {
            q.pop_front();
        }
        if q.len() < self.rate.count as usize {
            return None;
        }
        let oldest = *q.front()?;
        let wait = self.rate.per.saturating_sub(now.duration_since(oldest));
        Some(wait.as_secs().max(1))
    }

    pub fn record(&self, key: &str) {
        let mut map = self.map.lock().expect("poisoned");
        let q = map.entry(key.to_owned()).or_default();
        q.push_back(Instant::now());
        // Bounded memory per key whatever an attacker does.
        while q.len() > self.rate.count as usize {
            q.pop_front();
        }
    }

    pub fn forget(&self, key: &str) {
        self.map.lock().expect("poisoned").remove(key);
    }
}

#[async_trait]
impl FailureLimiter for Failures {
    async fn blocked(&self, key: &str) -> Result<(), Refusal> {
        self.wait(key).map_or(Ok(()), |secs| Err(Refusal::Limited(secs)))
    }

    async fn fail(&self, key: &str) {
        self.record(key);
    }

    async fn clear(&self, key: &str) {
        self.forget(key);
    }

    fn cleanup(&self) {
        let now = Instant::now();
        self.map
            .lock()
            .expect("poisoned")
            .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < self.rate.per));
    }
}

/// All limits of the auth API. Keys: the client IP as text for the `*_ip` limits,
/// [`crate::users::login_key`] of the submitted username (and the client IP) for
/// `login_account`.
pub struct Limits {
    pub login_ip: Box<dyn RateLimiter>,
    /// Wrong passwords per account: back-off per (account, IP) and a ceiling per account that
    /// spares the user's known IPs ([`account`]).
    pub login_account: Box<dyn account::AccountGuard>,
    pub signup_ip: Box<dyn RateLimiter>,
    pub reset_ip: Box<dyn RateLimiter>,
    /// Reset mails per address (key: [`crate::users::login_key`] of the address).
    pub reset_address: Box<dyn RateLimiter>,
    /// Wrong second-factor codes per account (key: `user:{id}`).
    pub mfa_account: Box<dyn FailureLimiter>,
    /// Where the counters live: `"memory"` (this process) or `"redis"` (shared).
    pub backend: &'static str,
}

impl Limits {
    /// In-process limits (one instance, or stores other than Redis).
    pub fn new(cfg: &crate::config::RateLimit) -> Self {
        Limits {
            login_ip: Box::new(PerKey::<String>::new(cfg.login_per_ip)),
            login_account: Box::new(account::Local::new(account::Policy::from_config(cfg))),
            signup_ip: Box::new(PerKey::<String>::new(cfg.signup_per_ip)),
            reset_ip: Box::new(PerKey::<String>::new(cfg.reset_per_ip)),
            reset_address: Box::new(PerKey::<String>::new(cfg.reset_per_address)),
            mfa_account: Box::new(Failures::new(cfg.mfa_per_account)),
            backend: "memory",
        }
    }

    /// Limits shared through Redis at `url`, keys under `prefix` (see [`redis`]). Connects
    /// lazily and reconnects by itself, so this never blocks or fails; an unusable URL makes
    /// every check fail closed.
    pub fn redis(cfg: &crate::config::RateLimit, url: &str, prefix: &str) -> Self {
        let conn = redis::Shared::new(url);
        let ip = |name: &'static str, rate| -> Box<dyn RateLimiter> {
            Box::new(redis::RedisRate::new(conn.clone(), prefix, name, rate))
        };
        Limits {
            login_ip: ip("login_ip", cfg.login_per_ip),
            login_account: Box::new(redis::account::RedisGuard::new(
                conn.clone(),
                prefix,
                account::Policy::from_config(cfg),
            )),
            signup_ip: ip("signup_ip", cfg.signup_per_ip),
            reset_ip: ip("reset_ip", cfg.reset_per_ip),
            reset_address: ip("reset_address", cfg.reset_per_address),
            mfa_account: Box::new(redis::RedisFailures::new(conn.clone(), prefix, "mfa_account", cfg.mfa_per_account)),
            backend: "redis",
        }
    }

    /// Redis-backed when `session.store = "redis"` (same URL and key prefix as the sessions),
    /// in process otherwise.
    pub fn for_settings(settings: &Settings) -> Self {
        let raw = &settings.raw;
        if raw.session.store == "redis" {
            Limits::redis(&raw.rate_limit, &raw.session.url, &raw.session.key_prefix)
        } else {
            Limits::new(&raw.rate_limit)
        }
    }

    pub fn cleanup(&self) {
        self.login_ip.cleanup();
        self.login_account.cleanup();
        self.signup_ip.cleanup();
        self.reset_ip.cleanup();
        self.reset_address.cleanup();
        self.mfa_account.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn per_key_allows_burst_then_refuses_with_wait() {
        let l = PerKey::new(Rate { count: 3, per: Duration::from_secs(60) });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.attempt(&ip).is_ok());
        }
        let wait = l.attempt(&ip).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(l.attempt(&"192.0.2.2".parse::<IpAddr>().unwrap()).is_ok(), "other keys unaffected");
    }

    #[test]
    fn failures_block_after_limit_and_clear_on_success() {
        let f = Failures::new(Rate { count: 2, per: Duration::from_secs(60) });
        assert_eq!(f.wait("bob"), None);
        f.record("bob");
        assert_eq!(f.wait("bob"), None);
        f.record("bob");
        assert!(f.wait("bob").is_some_and(|s| s > 50));
        f.forget("bob");
        assert_eq!(f.wait("bob"), None);
    }
}
