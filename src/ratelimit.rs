//! Login, signup and reset rate limits (in process). Per client IP: GCRA via `governor`, every
//! attempt counts. Per account: only failures count, in a sliding window, so a user who types
//! their password right is never slowed down by their own successes.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Rate;

/// Every attempt from one key counts.
pub struct PerKey<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> PerKey<K> {
    pub fn new(rate: Rate) -> Self {
        let burst = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
        let period = rate.per / rate.count.max(1);
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .expect("non-zero period")
            .allow_burst(burst);
        PerKey { limiter: RateLimiter::keyed(quota) }
    }

    /// Count one attempt; `Err(seconds)` when over the limit.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    pub fn cleanup(&self) {
        self.limiter.retain_recent();
    }
}

/// Only failures count; `blocked` is checked before an attempt, `fail` records one.
pub struct Failures {
    rate: Rate,
    map: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Failures {
    pub fn new(rate: Rate) -> Self {
        Failures { rate, map: Mutex::new(HashMap::new()) }
    }

    /// `Some(seconds to wait)` when the account has had too many recent failures.
    pub fn blocked(&self, key: &str) -> Option<u64> {
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

    pub fn fail(&self, key: &str) {
        let mut map = self.map.lock().expect("poisoned");
        let q = map.entry(key.to_owned()).or_default();
        q.push_back(Instant::now());
        // Bounded memory per key whatever an attacker does.
        while q.len() > self.rate.count as usize {
            q.pop_front();
        }
    }

    pub fn clear(&self, key: &str) {
        self.map.lock().expect("poisoned").remove(key);
    }

    pub fn cleanup(&self) {
        let now = Instant::now();
        self.map
            .lock()
            .expect("poisoned")
            .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < self.rate.per));
    }
}

/// All limits of the auth API.
pub struct Limits {
    pub login_ip: PerKey<IpAddr>,
    pub login_account: Failures,
    pub signup_ip: PerKey<IpAddr>,
    pub reset_ip: PerKey<IpAddr>,
}

impl Limits {
    pub fn new(cfg: &crate::config::RateLimit) -> Self {
        Limits {
            login_ip: PerKey::new(cfg.login_per_ip),
            login_account: Failures::new(cfg.login_per_account),
            signup_ip: PerKey::new(cfg.signup_per_ip),
            reset_ip: PerKey::new(cfg.reset_per_ip),
        }
    }

    pub fn cleanup(&self) {
        self.login_ip.cleanup();
        self.login_account.cleanup();
        self.signup_ip.cleanup();
        self.reset_ip.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_key_allows_burst_then_refuses_with_wait() {
        let l = PerKey::new(Rate { count: 3, per: Duration::from_secs(60) });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(&ip).is_ok());
        }
        let wait = l.check(&ip).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(l.check(&"192.0.2.2".parse().unwrap()).is_ok(), "other keys unaffected");
    }

    #[test]
    fn failures_block_after_limit_and_clear_on_success() {
        let f = Failures::new(Rate { count: 2, per: Duration::from_secs(60) });
        assert_eq!(f.blocked("bob"), None);
        f.fail("bob");
        assert_eq!(f.blocked("bob"), None);
        f.fail("bob");
        assert!(f.blocked("bob").is_some_and(|s| s > 50));
        f.clear("bob");
        assert_eq!(f.blocked("bob"), None);
    }
}
