//! A short-lived cache of the users the session layer resolves, so that a logged-in request does
//! not pay a user-store round trip on top of the session lookup. (Measured in `bench/`: with the
//! SQLite user store, that round trip was most of the cost of a whoami or a proxied request.)
//!
//! Freshness:
//! - An entry lives [`USER_TTL`]. Sessions are never cached: revocation, logout and expiry take
//!   effect on the very next request everywhere.
//! - Unsafe requests to the auth API (login, password, email, 2FA… anything that may change or
//!   check a user) read the user from the store, bypassing the cache, and clear the whole cache
//!   when they finish; a lookup that overlapped a clear is not cached. So this process's own
//!   changes show on the next request, and credential checks always see the stored hash.
//! - Changes made elsewhere (the CLI, another instance, Django's admin with
//!   `users.store = "django"`) show within [`USER_TTL`]. Those that must act at once — disable,
//!   remove, password change — also revoke the user's sessions.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use crate::users::User;

/// How long a cached user is used before it is read from the store again.
pub const USER_TTL: Duration = Duration::from_secs(1);

/// Bound on cached users; past it, expired entries are dropped (and all of them if none had).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct UserCache {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Bumped by every [`UserCache::clear`].
    generation: u64,
    entries: HashMap<i64, (User, Instant)>,
}

impl UserCache {
    /// The cached user `id`, if read from the store less than [`USER_TTL`] ago.
    pub fn get(&self, id: i64) -> Option<User> {
        let g = self.inner.read().expect("poisoned");
        g.entries.get(&id).filter(|(_, at)| at.elapsed() < USER_TTL).map(|(u, _)| u.clone())
    }

    /// Take before reading from the store; hand to [`UserCache::put`].
    pub fn generation(&self) -> u64 {
        self.inner.read().expect("poisoned").generation
    }

    /// Cache `user`, read from the store after [`UserCache::generation`] returned `generation`,
    /// unless the cache was cleared meanwhile (the read may predate a change).
    pub fn put(&self, generation: u64, user: User) {
        let mut g = self.inner.write().expect("poisoned");
        if g.generation != generation {
            return;
        }
        if g.entries.len() >= MAX_ENTRIES {
            g.entries.retain(|_, (_, at)| at.elapsed() < USER_TTL);
            if g.entries.len() >= MAX_ENTRIES {
                g.entries.clear();
            }
        }
        g.entries.insert(user.id, (user, Instant::now()));
    }

    /// Forget every user (after anything that may have changed one).
    pub fn clear(&self) {
        let mut g = self.inner.write().expect("poisoned");
        g.generation += 1;
        g.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, name: &str) -> User {
        User {
            id,
            username: name.into(),
            email: None,
            email_verified: false,
            password_hash: String::new(),
            is_active: true,
            mfa: false,
            created_at: chrono::Utc::now(),
            last_login: None,
        }
    }

    #[test]
    fn caches_until_cleared() {
        let c = UserCache::default();
        assert!(c.get(1).is_none());
        c.put(c.generation(), user(1, "alice"));
        assert_eq!(c.get(1).unwrap().username, "alice");
        c.clear();
        assert!(c.get(1).is_none());
    }

    #[test]
    fn a_read_overlapping_a_clear_is_not_cached() {
        let c = UserCache::default();
        let generation = c.generation();
        c.clear(); // e.g. a password change finished while the read was in flight
        c.put(generation, user(1, "stale"));
        assert!(c.get(1).is_none());
    }
}
