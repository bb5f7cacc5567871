//! Login, signup and reset rate limits.
//!
//! Three kinds of limit, each behind a trait so the same handlers work with one gateway or many:
//! - [`RateLimiter`] — every attempt from one key (a client IP, per /64 for IPv6: [`ip_key`])
//!   counts: GCRA, a burst of `N` then one more attempt every `DURATION / N`.
//! - [`FailureLimiter`] — only failures count (per account), in a sliding window, so a user who
//!   types their code right is never slowed down by their own successes.
//! - [`account::AccountGuard`] — wrong passwords: exponential back-off per (account, client IP)
//!   and a ceiling per account that spares the IPs the user logged in from, so an attacker
//!   cannot lock the real user out (ASVS 6.3.1; `docs/security.md`).
//!
//! **Reserve, then verify.** Failure-counting limits count an attempt *before* the password or
//! code is checked, atomically, and take it back on success: 100 guesses released at once get
//! exactly the allowance, not 100 checks that all ran before the first failure was recorded.
//!
//! **Bounded.** Keys are fixed-size digests and every in-process map holds at most
//! `rate_limit.max_keys` keys ([`bounded`]); Redis keys expire on their own.
//!
//! Implementations: in process ([`PerKey`] with `governor`, [`Failures`]) — the default, per
//! instance — and in Redis ([`redis`]), chosen by [`Limits::for_settings`] whenever
//! `session.store = "redis"`, so the limits hold across all instances sharing that Redis.
//!
//! **Fail closed**: when the Redis limiter cannot answer (down, or no reply within
//! [`redis::OP_TIMEOUT`]), [`Refusal::Unavailable`] turns the attempt into 503 `overloaded` —
//! an attacker must not get unlimited password guesses because Redis is unreachable.

pub mod account;
pub mod bounded;
#[cfg(feature = "redis")]
pub mod redis;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::{Quota, RateLimiter as Gcra};

use crate::config::{Rate, Settings};
use crate::http::Problem;
use bounded::{BoundedMap, BoundedStore, KeyDigest};

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

/// The key a client IP counts under: IPv4 addresses (and IPv4-mapped IPv6) as they are, IPv6
/// per /64 — one host usually holds a whole /64, so counting per address would give it 2⁶⁴
/// allowances.
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds to wait, rounded up, at least 1.
fn wait_secs_ms(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

/// Names one reserved attempt, so that it can be taken back ([`FailureLimiter::refund`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(pub(crate) u64);

impl Ticket {
    fn new() -> Self {
        Ticket(fastrand::u64(..))
    }
}

/// Every attempt by one key counts.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Count one attempt by `key`, atomically; refused when over the limit (or when the limit
    /// is unknowable).
    async fn check(&self, key: &str) -> Result<(), Refusal>;
    /// Drop state of keys that are back to a full allowance (in-process stores only).
    fn cleanup(&self) {}
}

/// Only failures count. An attempt is **reserved** before it is made — counted as a failure,
/// atomically, so parallel attempts cannot all pass a check made before any of them is
/// recorded — and [`clear`](FailureLimiter::clear)ed when it succeeds.
#[async_trait]
pub trait FailureLimiter: Send + Sync + 'static {
    /// Refused when `N` failures are already within the window; else counts this attempt.
    async fn reserve(&self, key: &str) -> Result<Ticket, Refusal>;
    /// The attempt reached no verdict (a store failed): take it back. Best effort.
    async fn refund(&self, key: &str, ticket: Ticket);
    /// The attempt succeeded: forget the key's failures. Best effort.
    async fn clear(&self, key: &str);
    fn cleanup(&self) {}
}

/// In process: every attempt from one key counts (GCRA, `governor`), in a bounded map.
pub struct PerKey {
    limiter: Gcra<KeyDigest, BoundedStore, DefaultClock, NoOpMiddleware<<DefaultClock as Clock>::Instant>>,
}

impl PerKey {
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        let burst = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
        let period = rate.per / rate.count.max(1);
        let quota =
            Quota::with_period(period.max(Duration::from_nanos(1))).expect("non-zero period").allow_burst(burst);
        PerKey { limiter: Gcra::new(quota, BoundedStore::new(max_keys), DefaultClock::default()) }
    }

    /// Count one attempt; `Err(seconds)` when over the limit.
    pub fn attempt(&self, key: &str) -> Result<(), u64> {
        self.limiter.check_key(&KeyDigest::of(key)).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

#[async_trait]
impl RateLimiter for PerKey {
    async fn check(&self, key: &str) -> Result<(), Refusal> {
        self.attempt(key).map_err(Refusal::Limited)
    }

    fn cleanup(&self) {
        self.limiter.retain_recent();
    }
}

/// A sliding window of failure times (ms since the epoch, by the limiter's clock) with the
/// tickets that reserved them.
#[derive(Debug, Default)]
pub(crate) struct Window {
    times: VecDeque<(u64, Ticket)>,
}

impl Window {
    fn prune(&mut self, now: u64, per: u64) {
        while self.times.front().is_some_and(|(t, _)| now.saturating_sub(*t) >= per) {
            self.times.pop_front();
        }
    }

    /// Milliseconds until there is room for one more failure, 0 when there is.
    pub(crate) fn wait(&mut self, rate: Rate, now: u64) -> u64 {
        let per = millis(rate.per);
        self.prune(now, per);
        let count = rate.count as usize;
        if count == 0 {
            return per.max(1);
        }
        if self.times.len() < count {
            return 0;
        }
        let Some(&(oldest, _)) = self.times.get(self.times.len() - count) else { return 0 };
        (oldest + per).saturating_sub(now).max(1)
    }

    pub(crate) fn push(&mut self, rate: Rate, now: u64, ticket: Ticket) {
        self.times.push_back((now, ticket));
        // Bounded memory per key whatever an attacker does.
        while self.times.len() > rate.count.max(1) as usize {
            self.times.pop_front();
        }
    }

    pub(crate) fn take_back(&mut self, ticket: Ticket) {
        self.times.retain(|(_, t)| *t != ticket);
    }

    /// The last failure.
    pub(crate) fn last(&self) -> u64 {
        self.times.back().map_or(0, |(t, _)| *t)
    }

    /// Eviction rank ([`bounded::rank`]): failures within the window `per`, then the last one.
    pub(crate) fn rank(&self, now: u64, per: u64) -> u64 {
        let live = self.times.iter().filter(|(t, _)| now.saturating_sub(*t) < per).count() as u64;
        bounded::rank(live, self.last(), live == 0)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

/// In process: only failures count, in a sliding window of `rate.per`, in a bounded map.
pub struct Failures {
    rate: Rate,
    clock: crate::clock::SharedClock,
    map: Mutex<BoundedMap<Window>>,
}

impl Failures {
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self::with_clock(rate, max_keys, crate::clock::SharedClock::system())
    }

    pub fn with_clock(rate: Rate, max_keys: usize, clock: crate::clock::SharedClock) -> Self {
        Failures { rate, clock, map: Mutex::new(BoundedMap::new(max_keys)) }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0)
    }

    /// Reserve one failure for `key`; `Err(seconds to wait)` when the window is full.
    pub fn try_reserve(&self, key: &str) -> Result<Ticket, u64> {
        let now = self.now();
        let d = KeyDigest::of(key);
        let mut map = self.map.lock().expect("poisoned");
        let wait = map.get_mut(&d).map_or_else(|| Window::default().wait(self.rate, now), |w| w.wait(self.rate, now));
        if wait > 0 {
            return Err(wait_secs_ms(wait));
        }
        let ticket = Ticket::new();
        let per = millis(self.rate.per);
        map.entry(d, Window::default, |w| w.rank(now, per)).push(self.rate, now, ticket);
        Ok(ticket)
    }

    pub fn take_back(&self, key: &str, ticket: Ticket) {
        if let Some(w) = self.map.lock().expect("poisoned").get_mut(&KeyDigest::of(key)) {
            w.take_back(ticket);
        }
    }

    pub fn forget(&self, key: &str) {
        self.map.lock().expect("poisoned").remove(&KeyDigest::of(key));
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.map.lock().expect("poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl FailureLimiter for Failures {
    async fn reserve(&self, key: &str) -> Result<Ticket, Refusal> {
        self.try_reserve(key).map_err(Refusal::Limited)
    }

    async fn refund(&self, key: &str, ticket: Ticket) {
        self.take_back(key, ticket);
    }

    async fn clear(&self, key: &str) {
        self.forget(key);
    }

    fn cleanup(&self) {
        let (now, per) = (self.now(), millis(self.rate.per));
        self.map.lock().expect("poisoned").retain(|_, w| {
            w.prune(now, per);
            !w.is_empty()
        });
    }
}

/// All limits of the auth API. Keys: [`ip_key`] for the `*_ip` limits, the account's key
/// ([`crate::users::account_key`]) for `login_account` and `mfa_account`, the normalised
/// address for `reset_address`.
pub struct Limits {
    pub login_ip: Box<dyn RateLimiter>,
    /// Wrong passwords per account: back-off per (account, IP) and a ceiling per account that
    /// spares the user's known IPs ([`account`]).
    pub login_account: Box<dyn account::AccountGuard>,
    pub signup_ip: Box<dyn RateLimiter>,
    pub reset_ip: Box<dyn RateLimiter>,
    /// Reset mails per address.
    pub reset_address: Box<dyn RateLimiter>,
    /// Wrong second-factor codes per account.
    pub mfa_account: Box<dyn FailureLimiter>,
    /// Passkey ceremony starts per IP (finishes count as logins, `login_ip`).
    pub passkey_ip: Box<dyn RateLimiter>,
    /// Where the counters live: `"memory"` (this process) or `"redis"` (shared).
    pub backend: &'static str,
}

impl Limits {
    /// In-process limits (one instance, or stores other than Redis); each map holds at most
    /// `rate_limit.max_keys` keys (see [`bounded`]).
    pub fn new(cfg: &crate::config::RateLimit) -> Self {
        Self::with_clock(cfg, crate::clock::SharedClock::system())
    }

    /// [`Limits::new`] with the failure counters' time taken from `clock` (the GCRA limits of
    /// `governor` keep their own monotonic clock).
    pub fn with_clock(cfg: &crate::config::RateLimit, clock: crate::clock::SharedClock) -> Self {
        let max = cfg.max_keys;
        Limits {
            login_ip: Box::new(PerKey::new(cfg.login_per_ip, max)),
            login_account: Box::new(account::Local::with_clock(account::Policy::from_config(cfg), max, clock.clone())),
            signup_ip: Box::new(PerKey::new(cfg.signup_per_ip, max)),
            reset_ip: Box::new(PerKey::new(cfg.reset_per_ip, max)),
            reset_address: Box::new(PerKey::new(cfg.reset_per_address, max)),
            mfa_account: Box::new(Failures::with_clock(cfg.mfa_per_account, max, clock)),
            passkey_ip: Box::new(PerKey::new(cfg.passkey_start_per_ip, max)),
            backend: "memory",
        }
    }

    /// Limits shared through Redis at `url`, keys under `prefix` (see [`redis`]). Connects
    /// lazily and reconnects by itself, so this never blocks or fails; an unusable URL makes
    /// every check fail closed.
    #[cfg(feature = "redis")]
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
            passkey_ip: ip("passkey_ip", cfg.passkey_start_per_ip),
            backend: "redis",
        }
    }

    /// Redis-backed when `session.store = "redis"` (same URL and key prefix as the sessions),
    /// in process otherwise.
    pub fn for_settings(settings: &Settings, clock: crate::clock::SharedClock) -> Self {
        match &settings.session_store {
            #[cfg(feature = "redis")]
            crate::config::SessionBackend::Redis(url) => {
                Limits::redis(&settings.rate_limit, url, &settings.session.key_prefix)
            }
            _ => Limits::with_clock(&settings.rate_limit, clock),
        }
    }

    pub fn cleanup(&self) {
        self.login_ip.cleanup();
        self.login_account.cleanup();
        self.signup_ip.cleanup();
        self.reset_ip.cleanup();
        self.reset_address.cleanup();
        self.mfa_account.cleanup();
        self.passkey_ip.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_key_allows_burst_then_refuses_with_wait() {
        let l = PerKey::new(Rate { count: 3, per: Duration::from_secs(60) }, 100);
        for _ in 0..3 {
            assert!(l.attempt("192.0.2.1").is_ok());
        }
        let wait = l.attempt("192.0.2.1").unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(l.attempt("192.0.2.2").is_ok(), "other keys unaffected");
    }

    #[test]
    fn per_key_map_is_bounded_and_keeps_the_limited_keys() {
        let l = PerKey::new(Rate { count: 2, per: Duration::from_secs(3600) }, 1000);
        assert!(l.attempt("attacker").is_ok() && l.attempt("attacker").is_ok());
        assert!(l.attempt("attacker").is_err());
        // A flood of fresh keys, one attempt each: they sit nearer a full allowance than the
        // exhausted key, so they are what gets evicted.
        for i in 0..20_000 {
            let _ = l.attempt(&format!("flood-{i}"));
            assert!(l.len() <= 1000);
        }
        assert!(l.attempt("attacker").is_err(), "the exhausted key survived the flood");
    }

    #[test]
    fn failures_reserve_then_clear_on_success() {
        let f = Failures::new(Rate { count: 2, per: Duration::from_secs(60) }, 100);
        let t1 = f.try_reserve("bob").unwrap();
        f.try_reserve("bob").unwrap();
        assert!(f.try_reserve("bob").is_err_and(|s| s > 50));
        f.take_back("bob", t1);
        assert!(f.try_reserve("bob").is_ok(), "a refunded attempt frees its slot");
        f.forget("bob");
        assert!(f.try_reserve("bob").is_ok());
    }

    #[test]
    fn parallel_reservations_never_exceed_the_limit() {
        let f = std::sync::Arc::new(Failures::new(Rate { count: 5, per: Duration::from_secs(300) }, 100));
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let f = f.clone();
                std::thread::spawn(move || f.try_reserve("user:1").is_ok())
            })
            .collect();
        let granted = handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count();
        assert_eq!(granted, 5);
    }

    #[test]
    fn failures_map_is_bounded() {
        let f = Failures::new(Rate { count: 3, per: Duration::from_secs(60) }, 500);
        for i in 0..10_000 {
            f.try_reserve(&format!("{i}{}", "x".repeat(1000))).unwrap();
            assert!(f.len() <= 500);
        }
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_eq!(ip_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_ne!(ip_key("2001:db8:1:3::1".parse().unwrap()), ip_key(a));
        assert!(ip_key(a).parse::<ipnet::IpNet>().is_ok(), "readable as a network");
    }
}
