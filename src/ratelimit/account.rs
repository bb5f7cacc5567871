//! Password guessing against one account, without letting an attacker lock the real user out
//! (ASVS 6.3.1). The policy, documented for operators in `docs/security.md`:
//!
//! 1. **Back-off per (account, client IP)** — `rate_limit.login_per_account = "N/W"`: after `N`
//!    wrong passwords in a row from one IP (no right one between them, however far apart), that
//!    IP must wait `W` before its next try for that account, then `2W`, `4W`… up to
//!    `rate_limit.login_backoff_max`. A right password from that IP, or 24 hours without a
//!    failure, forgets them. (Counting only failures within `W` of each other would let a
//!    guesser who waits `W` between tries go on for ever.) IPv6 clients count per /64 (one host usually holds a whole /64).
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

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::bounded::{BoundedMap, KeyDigest};
use super::{Refusal, Ticket, Window, ip_key, millis, wait_secs_ms};
use crate::config::Rate;

/// Failures from one IP are forgotten this long after the last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How long a successful login makes its IP "known" to the account (exempt from the ceiling).
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Known IPs remembered per account (the most recent).
pub const KNOWN_MAX: usize = 16;
/// The ceiling's per-account state holds up to `M` failure times: accounts are tracked up to
/// this fraction of `rate_limit.max_keys` (10,000 by default, about 16 MB at most).
pub const ACCOUNTS_FRACTION: usize = 10;

/// The numbers of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Failures in a row from one IP before the back-off starts (`N`).
    pub free: u32,
    /// The first lock (`W`).
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
    pub fn keep(&self) -> Duration {
        FORGET_AFTER.max(self.max)
    }
}

/// The guard of password checks (login, re-authentication, password change). `account` is
/// [`crate::users::account_key`]: the resolved account, so its username and its email address
/// share one count.
#[async_trait]
pub trait AccountGuard: Send + Sync + 'static {
    /// Before checking a password for `account` from `ip`: refused while that IP must wait or
    /// the account is past its ceiling for unknown IPs; otherwise the attempt is counted as a
    /// failure now, atomically (see [`super`]), and [`succeed`](AccountGuard::succeed) takes it
    /// back.
    async fn reserve(&self, account: &str, ip: IpAddr) -> Result<Ticket, Refusal>;
    /// The attempt reached no verdict (the hasher or a store failed): take it back.
    async fn refund(&self, account: &str, ip: IpAddr, ticket: Ticket);
    /// A right password (`ticket` from its reservation), or a password reset by mailed link
    /// (`None`): forget this IP's failures and remember it as one the account uses.
    async fn succeed(&self, account: &str, ip: IpAddr, ticket: Option<Ticket>);
    fn cleanup(&self) {}
}

#[derive(Clone, Copy, Debug)]
struct Strikes {
    count: u32,
    /// When the last failure was (ms since the epoch, by the guard's clock).
    last: u64,
}

#[derive(Debug, Default)]
struct AccountState {
    /// Failures from all IPs, for the ceiling.
    ceiling: Window,
    /// Digests of [`ip_key`]s that logged in, with when (ms).
    known: Vec<(KeyDigest, u64)>,
}

impl AccountState {
    fn last_activity(&self) -> u64 {
        self.known.iter().map(|(_, t)| *t).max().unwrap_or(0).max(self.ceiling.last())
    }

    /// Eviction rank: an account with known IPs (a real user's) outranks any count of
    /// failures; otherwise the failures in the ceiling's window count.
    fn rank(&self, now: u64, per: u64) -> u64 {
        if self.known.is_empty() {
            self.ceiling.rank(now, per)
        } else {
            super::bounded::rank(u64::MAX, self.last_activity(), false)
        }
    }
}

struct State {
    /// Per (account, IP).
    strikes: BoundedMap<Strikes>,
    /// Per account.
    accounts: BoundedMap<AccountState>,
}

/// In process: both maps bounded (`rate_limit.max_keys`; accounts a tenth of it), one lock so
/// a reservation is atomic across the back-off and the ceiling.
pub struct Local {
    policy: Policy,
    clock: crate::clock::SharedClock,
    state: Mutex<State>,
}

fn strikes_key(account: &str, ip: &str) -> KeyDigest {
    KeyDigest::of(&format!("{account}\n{ip}"))
}

impl Local {
    pub fn new(policy: Policy, max_keys: usize) -> Self {
        Self::with_clock(policy, max_keys, crate::clock::SharedClock::system())
    }

    /// With the time taken from `clock` (tests move it instead of waiting out a back-off).
    pub fn with_clock(policy: Policy, max_keys: usize, clock: crate::clock::SharedClock) -> Self {
        Local {
            policy,
            clock,
            state: Mutex::new(State {
                strikes: BoundedMap::new(max_keys),
                accounts: BoundedMap::new((max_keys / ACCOUNTS_FRACTION).max(1)),
            }),
        }
    }

    /// Reserve an attempt; `Err(seconds)` when refused.
    pub fn try_reserve(&self, account: &str, ip: IpAddr) -> Result<Ticket, u64> {
        self.reserve_at(account, ip, self.now())
    }

    /// [`try_reserve`](Self::try_reserve) at `now` (ms since the epoch).
    pub fn reserve_at(&self, account: &str, ip: IpAddr, now: u64) -> Result<Ticket, u64> {
        let ipk = ip_key(ip);
        let (sk, ak, ipd) = (strikes_key(account, &ipk), KeyDigest::of(account), KeyDigest::of(&ipk));
        let mut st = self.state.lock().expect("poisoned");
        let p = &self.policy;
        if let Some(s) = st.strikes.get(&sk)
            && now.saturating_sub(s.last) < millis(p.keep())
            && let Some(lock) = p.lock(s.count)
        {
            let left = (s.last + millis(lock)).saturating_sub(now);
            if left > 0 {
                return Err(wait_secs_ms(left));
            }
        }
        if let Some(a) = st.accounts.get_mut(&ak) {
            let wait = a.ceiling.wait(p.ceiling, now);
            let known = a.known.iter().any(|(d, t)| *d == ipd && now.saturating_sub(*t) < millis(KNOWN_FOR));
            if wait > 0 && !known {
                return Err(wait_secs_ms(wait));
            }
        }
        let ticket = Ticket::new();
        let strikes_rank =
            |s: &Strikes| super::bounded::rank(s.count.into(), s.last, now.saturating_sub(s.last) >= millis(p.keep()));
        let s = st.strikes.entry(sk, || Strikes { count: 0, last: now }, strikes_rank);
        if now.saturating_sub(s.last) >= millis(p.keep()) {
            s.count = 0;
        }
        s.count = s.count.saturating_add(1);
        s.last = now;
        let per = millis(p.ceiling.per);
        st.accounts.entry(ak, AccountState::default, |a| a.rank(now, per)).ceiling.push(p.ceiling, now, ticket);
        Ok(ticket)
    }

    fn take_back(&self, account: &str, ip: IpAddr, ticket: Ticket) {
        let sk = strikes_key(account, &ip_key(ip));
        let mut st = self.state.lock().expect("poisoned");
        if let Some(s) = st.strikes.get_mut(&sk) {
            s.count = s.count.saturating_sub(1);
        }
        if let Some(a) = st.accounts.get_mut(&KeyDigest::of(account)) {
            a.ceiling.take_back(ticket);
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0)
    }

    fn success(&self, account: &str, ip: IpAddr, ticket: Option<Ticket>) {
        let now = self.now();
        let ipk = ip_key(ip);
        let ipd = KeyDigest::of(&ipk);
        let mut st = self.state.lock().expect("poisoned");
        st.strikes.remove(&strikes_key(account, &ipk));
        let per = millis(self.policy.ceiling.per);
        let a = st.accounts.entry(KeyDigest::of(account), AccountState::default, |a| a.rank(now, per));
        if let Some(t) = ticket {
            a.ceiling.take_back(t);
        }
        a.known.retain(|(d, t)| *d != ipd && now.saturating_sub(*t) < millis(KNOWN_FOR));
        a.known.push((ipd, now));
        if a.known.len() > KNOWN_MAX {
            a.known.remove(0);
        }
    }

    /// (strikes, accounts) tracked now.
    pub fn len(&self) -> (usize, usize) {
        let st = self.state.lock().expect("poisoned");
        (st.strikes.len(), st.accounts.len())
    }
}

#[async_trait]
impl AccountGuard for Local {
    async fn reserve(&self, account: &str, ip: IpAddr) -> Result<Ticket, Refusal> {
        self.try_reserve(account, ip).map_err(Refusal::Limited)
    }

    async fn refund(&self, account: &str, ip: IpAddr, ticket: Ticket) {
        self.take_back(account, ip, ticket);
    }

    async fn succeed(&self, account: &str, ip: IpAddr, ticket: Option<Ticket>) {
        self.success(account, ip, ticket);
    }

    fn cleanup(&self) {
        let now = self.now();
        let p = self.policy;
        let mut st = self.state.lock().expect("poisoned");
        st.strikes.retain(|_, s| now.saturating_sub(s.last) < millis(p.keep()));
        st.accounts.retain(|_, a| {
            a.ceiling.wait(p.ceiling, now);
            a.known.retain(|(_, t)| now.saturating_sub(*t) < millis(KNOWN_FOR));
            !a.ceiling.is_empty() || !a.known.is_empty()
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
        assert_eq!(p.keep(), FORGET_AFTER);
    }

    /// Adversarial finding: failures spaced just over `W` apart never added up, so one IP
    /// could guess every 61 s for ever (1,440 a day instead of about 40).
    #[test]
    fn failures_spaced_beyond_the_window_still_add_up() {
        let g = Local::new(policy(10, 60, 3600, 1_000_000), 1000);
        let ip: IpAddr = "203.0.113.66".parse().unwrap();
        let mut now = 1_000_000_000u64;
        let mut granted = 0;
        // One try every 61 s for a day, whenever allowed.
        while now < 1_000_000_000 + 24 * 3600 * 1000 {
            if g.reserve_at("alice", ip, now).is_ok() {
                granted += 1;
            }
            now += 61_000;
        }
        assert!((30..=45).contains(&granted), "{granted} guesses in a day");
        // A day of quiet forgets them.
        now += FORGET_AFTER.as_millis() as u64;
        assert!(g.reserve_at("alice", ip, now).is_ok());
    }

    #[tokio::test]
    async fn attacker_ip_backs_off_while_user_ip_gets_in() {
        let g = Local::new(policy(3, 60, 600, 100), 1000);
        let (attacker, user): (IpAddr, IpAddr) = ("203.0.113.66".parse().unwrap(), "198.51.100.7".parse().unwrap());
        for _ in 0..3 {
            assert!(g.reserve("alice", attacker).await.is_ok());
        }
        assert!(matches!(g.reserve("alice", attacker).await, Err(Refusal::Limited(s)) if (59..=60).contains(&s)));
        let t = g.reserve("alice", user).await.expect("another IP is not affected");
        assert!(g.reserve("bob", attacker).await.is_ok(), "another account is not affected");
        g.succeed("alice", user, Some(t)).await;
        assert!(g.reserve("alice", attacker).await.is_err());
    }

    #[tokio::test]
    async fn success_and_refund_take_the_reservation_back() {
        let g = Local::new(policy(2, 60, 600, 100), 1000);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = g.reserve("alice", ip).await.unwrap();
        g.refund("alice", ip, t).await;
        let t = g.reserve("alice", ip).await.unwrap();
        g.succeed("alice", ip, Some(t)).await;
        g.reserve("alice", ip).await.unwrap();
        g.reserve("alice", ip).await.unwrap();
        assert!(g.reserve("alice", ip).await.is_err(), "two failures in a row, then the back-off");
    }

    #[tokio::test]
    async fn ceiling_closes_the_account_to_unknown_ips_only() {
        let g = Local::new(policy(100, 60, 600, 5), 1000);
        let home: IpAddr = "198.51.100.7".parse().unwrap();
        g.succeed("alice", home, None).await;
        for i in 0..5u8 {
            g.reserve("alice", IpAddr::from([203, 0, 113, i])).await.unwrap();
        }
        assert!(g.reserve("alice", "203.0.113.200".parse().unwrap()).await.is_err(), "new IPs are refused");
        assert!(g.reserve("alice", home).await.is_ok(), "the user's known IP still gets in");
        assert!(g.reserve("bob", "203.0.113.200".parse().unwrap()).await.is_ok());
    }

    #[test]
    fn parallel_guesses_from_one_ip_get_exactly_the_free_tries() {
        let g = std::sync::Arc::new(Local::new(policy(10, 60, 600, 1000), 1000));
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || g.try_reserve("alice", "203.0.113.9".parse().unwrap()).is_ok())
            })
            .collect();
        let granted = handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count();
        assert_eq!(granted, 10);
    }

    #[test]
    fn unique_long_usernames_stay_within_the_bound() {
        let g = Local::new(policy(10, 60, 600, 100), 1000);
        for i in 0..5000u32 {
            let name = format!("{i}{}", "u".repeat(10_000));
            g.try_reserve(&name, IpAddr::from([198, 51, 100, (i % 250) as u8])).unwrap();
        }
        let (strikes, accounts) = g.len();
        assert!(strikes <= 1000 && accounts <= 100, "{strikes} {accounts}");
    }

    #[test]
    fn a_flood_of_fresh_names_does_not_evict_a_back_off() {
        let g = Local::new(policy(3, 60, 600, 100), 1000);
        let attacker: IpAddr = "203.0.113.66".parse().unwrap();
        for _ in 0..3 {
            g.try_reserve("user:1", attacker).unwrap();
        }
        for i in 0..20_000u32 {
            let _ = g.try_reserve(&format!("name:ghost{i}"), attacker);
        }
        assert!(g.try_reserve("user:1", attacker).is_err(), "still backing off");
    }
}
