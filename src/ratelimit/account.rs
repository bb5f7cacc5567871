//! Password guessing against one account, without letting an attacker lock the real user out
//! (ASVS 6.3.1). The policy, documented for operators in `docs/security.md`:
//!
//! 1. **Back-off per (account, client IP)** — `rate_limit.login_per_account = "N/W"`: after `N`
//!    wrong passwords in a row from one IP (each within `W` of the previous), that IP must wait
//!    `W` before its next try for that account, then `2W`, `4W`… up to
//!    `rate_limit.login_backoff_max`. A right password from that IP, or 24 hours without a
//!    failure, forgets them. IPv6 clients count per /64 (one host usually holds a whole /64).
//! 2. **Ceiling per account** — `rate_limit.login_account_ceiling = "M/P"`: more than `M`
//!    failures from all IPs together within `P` (a distributed attack) closes the account to
//!    every IP that has not logged in to it successfully in the last 30 days. IPs the user
//!    logged in from keep their own back-off only, so the attacker cannot lock them out.
//!
//! An attacker hammering from other addresses therefore only slows themselves down: the real
//! user, from their usual IP, still logs in at once.
//!
//! Implementations: [`Local`] (in process) and [`super::redis::account::RedisGuard`] (shared
//! by all instances), chosen like the other limits.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Failures, Refusal};
use crate::config::Rate;

/// Failures from one IP are forgotten this long after the last one, once they have triggered
/// a back-off (below the threshold they are forgotten after the rate's window).
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How long a successful login makes its IP "known" to the account (exempt from the ceiling).
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Known IPs remembered per account (the most recent).
pub const KNOWN_MAX: usize = 16;

/// The numbers of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Failures in a row from one IP before the back-off starts (`N`).
    pub free: u32,
    /// Most time between two failures that still counts as "in a row", and the first lock
    /// (`W`).
    pub window: Duration,
    /// Longest lock (`rate_limit.login_backoff_max`).
    pub max: Duration,
    /// `rate_limit.login_account_ceiling`.
    pub ceiling: Rate,
}

impl Policy {
    pub fn from_config(cfg: &crate::config::RateLimit) -> Self {
        Policy {
            free: cfg.login_per_account.count.max(1),
            window: cfg.login_per_account.per,
            max: cfg.login_backoff_max.0,
            ceiling: cfg.login_account_ceiling,
        }
    }

    /// How long an IP with `count` failures in a row must wait after its last one.
    pub fn lock(&self, count: u32) -> Option<Duration> {
        if count < self.free {
            return None;
        }
        let doublings = (count - self.free).min(40);
        Some(self.window.saturating_mul(1u32 << doublings.min(31)).min(self.max.max(self.window)))
    }

    /// How long to keep an IP's failures after the last one.
    pub fn keep(&self, count: u32) -> Duration {
        if count < self.free { self.window } else { FORGET_AFTER.max(self.max) }
    }
}

/// The key an IP counts under: IPv4 addresses (and IPv4-mapped IPv6) as they are, IPv6 per /64.
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

/// The guard of password checks (login, re-authentication, password change).
#[async_trait]
pub trait AccountGuard: Send + Sync + 'static {
    /// Before checking a password for `account` (a [`crate::users::login_key`]) from `ip`.
    async fn check(&self, account: &str, ip: IpAddr) -> Result<(), Refusal>;
    /// A wrong password (best effort: a failure that cannot be recorded is logged).
    async fn fail(&self, account: &str, ip: IpAddr);
    /// A right password (or a password reset by mailed link): forget this IP's failures and
    /// remember it as one the account uses.
    async fn succeed(&self, account: &str, ip: IpAddr);
    fn cleanup(&self) {}
}

#[derive(Clone, Copy, Debug)]
struct Strikes {
    count: u32,
    last: Instant,
}

/// In process.
pub struct Local {
    policy: Policy,
    strikes: Mutex<HashMap<(String, String), Strikes>>,
    ceiling: Failures,
    known: Mutex<HashMap<String, Vec<(String, Instant)>>>,
}

impl Local {
    pub fn new(policy: Policy) -> Self {
        Local {
            policy,
            strikes: Mutex::new(HashMap::new()),
            ceiling: Failures::new(policy.ceiling),
            known: Mutex::new(HashMap::new()),
        }
    }

    fn is_known(&self, account: &str, ip: &str) -> bool {
        let known = self.known.lock().expect("poisoned");
        known.get(account).is_some_and(|v| v.iter().any(|(k, t)| k == ip && t.elapsed() < KNOWN_FOR))
    }

    /// Seconds this IP must still wait for this account, if any.
    pub fn wait(&self, account: &str, ip: IpAddr) -> Option<u64> {
        let ip = ip_key(ip);
        let strikes = self.strikes.lock().expect("poisoned").get(&(account.to_owned(), ip.clone())).copied();
        if let Some(s) = strikes
            && let Some(lock) = self.policy.lock(s.count)
        {
            let left = lock.saturating_sub(s.last.elapsed());
            if !left.is_zero() {
                return Some(secs(left));
            }
        }
        match self.ceiling.wait(account) {
            Some(w) if !self.is_known(account, &ip) => Some(w),
            _ => None,
        }
    }
}

fn secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

#[async_trait]
impl AccountGuard for Local {
    async fn check(&self, account: &str, ip: IpAddr) -> Result<(), Refusal> {
        self.wait(account, ip).map_or(Ok(()), |s| Err(Refusal::Limited(s)))
    }

    async fn fail(&self, account: &str, ip: IpAddr) {
        {
            let mut map = self.strikes.lock().expect("poisoned");
            let s = map.entry((account.to_owned(), ip_key(ip))).or_insert(Strikes { count: 0, last: Instant::now() });
            if s.last.elapsed() >= self.policy.keep(s.count) {
                s.count = 0;
            }
            s.count = s.count.saturating_add(1);
            s.last = Instant::now();
        }
        self.ceiling.record(account);
    }

    async fn succeed(&self, account: &str, ip: IpAddr) {
        let ip = ip_key(ip);
        self.strikes.lock().expect("poisoned").remove(&(account.to_owned(), ip.clone()));
        let mut known = self.known.lock().expect("poisoned");
        let list = known.entry(account.to_owned()).or_default();
        list.retain(|(k, t)| *k != ip && t.elapsed() < KNOWN_FOR);
        list.push((ip, Instant::now()));
        if list.len() > KNOWN_MAX {
            list.remove(0);
        }
    }

    fn cleanup(&self) {
        self.strikes.lock().expect("poisoned").retain(|_, s| s.last.elapsed() < self.policy.keep(s.count));
        super::FailureLimiter::cleanup(&self.ceiling);
        self.known.lock().expect("poisoned").retain(|_, v| {
            v.retain(|(_, t)| t.elapsed() < KNOWN_FOR);
            !v.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(free: u32, window: u64, max: u64, ceiling: u32) -> Policy {
        Policy {
            free,
            window: Duration::from_secs(window),
            max: Duration::from_secs(max),
            ceiling: Rate { count: ceiling, per: Duration::from_secs(3600) },
        }
    }

    #[test]
    fn lock_doubles_up_to_the_maximum() {
        let p = policy(3, 60, 600, 100);
        assert_eq!(p.lock(2), None);
        let l = |n| p.lock(n).unwrap().as_secs();
        assert_eq!([l(3), l(4), l(5), l(6), l(7), l(1000)], [60, 120, 240, 480, 600, 600]);
        assert_eq!(p.keep(2), Duration::from_secs(60));
        assert_eq!(p.keep(3), FORGET_AFTER);
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_eq!(ip_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_ne!(ip_key("2001:db8:1:3::1".parse().unwrap()), ip_key(a));
    }

    #[tokio::test]
    async fn attacker_ip_backs_off_while_user_ip_gets_in() {
        let g = Local::new(policy(3, 60, 600, 100));
        let (attacker, user): (IpAddr, IpAddr) = ("203.0.113.66".parse().unwrap(), "198.51.100.7".parse().unwrap());
        for _ in 0..3 {
            assert!(g.check("alice", attacker).await.is_ok());
            g.fail("alice", attacker).await;
        }
        assert!(matches!(g.check("alice", attacker).await, Err(Refusal::Limited(s)) if (59..=60).contains(&s)));
        assert!(g.check("alice", user).await.is_ok(), "another IP is not affected");
        assert!(g.check("bob", attacker).await.is_ok(), "another account is not affected");
        g.succeed("alice", user).await;
        assert!(g.check("alice", attacker).await.is_err());
    }

    #[tokio::test]
    async fn ceiling_closes_the_account_to_unknown_ips_only() {
        let g = Local::new(policy(100, 60, 600, 5));
        let home: IpAddr = "198.51.100.7".parse().unwrap();
        g.succeed("alice", home).await;
        for i in 0..5u8 {
            g.fail("alice", IpAddr::from([203, 0, 113, i])).await;
        }
        assert!(g.check("alice", "203.0.113.200".parse().unwrap()).await.is_err(), "new IPs are refused");
        assert!(g.check("alice", home).await.is_ok(), "the user's known IP still gets in");
        assert!(g.check("bob", "203.0.113.200".parse().unwrap()).await.is_ok());
    }
}
