//! Bounded in-process state for the limiters: keys are fixed-size digests and every map has a
//! ceiling on its entry count, so unauthenticated input (usernames, addresses, client IPs)
//! cannot grow memory without bound.
//!
//! At the bound, inserting a new key first evicts the lowest-ranked tenth of the entries. Each
//! map ranks by what an entry is worth keeping ([`rank`]): failure counters by how many
//! failures they hold, then by their last one (expired entries first of all); GCRA by the
//! theoretical arrival time (the entry closest to a full allowance goes first). A flood of
//! fresh keys — one failure each — therefore pushes out its own kind, not an account that is
//! backing off, and an attacker gains at most what the evicted entries had counted.

use std::collections::HashMap;
use std::sync::Mutex;

use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use sha2::{Digest, Sha256};

/// 128 bits of the SHA-256 of a limiter key: names and addresses of any length become 16
/// bytes, and collisions cost 2⁶⁴ work to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 16]);

impl KeyDigest {
    pub fn of(key: &str) -> Self {
        let full = Sha256::digest(key.as_bytes());
        let mut d = [0u8; 16];
        d.copy_from_slice(&full[..16]);
        KeyDigest(d)
    }
}

/// The eviction rank of a failure counter: `weight` (how many failures it holds) first, then
/// the time of its last activity; 0 once it has expired.
pub fn rank(weight: u64, last_ms: u64, expired: bool) -> u64 {
    if expired { 0 } else { (weight.min(0xFFFF) << 48) | (last_ms & ((1 << 48) - 1)) }
}

/// A map with at most `cap` entries; see the module docs for what happens at the bound.
pub struct BoundedMap<V> {
    cap: usize,
    map: HashMap<KeyDigest, V>,
}

impl<V> BoundedMap<V> {
    pub fn new(cap: usize) -> Self {
        BoundedMap { cap: cap.max(1), map: HashMap::new() }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, key: &KeyDigest) -> Option<&V> {
        self.map.get(key)
    }

    pub fn get_mut(&mut self, key: &KeyDigest) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    pub fn remove(&mut self, key: &KeyDigest) -> Option<V> {
        self.map.remove(key)
    }

    pub fn retain(&mut self, keep: impl FnMut(&KeyDigest, &mut V) -> bool) {
        self.map.retain(keep);
    }

    /// The entry for `key`, created by `make` when absent; a new key at the bound first evicts
    /// the tenth of the entries with the lowest `rank`.
    pub fn entry(&mut self, key: KeyDigest, make: impl FnOnce() -> V, rank: impl Fn(&V) -> u64) -> &mut V {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.evict(rank);
        }
        self.map.entry(key).or_insert_with(make)
    }

    fn evict(&mut self, rank: impl Fn(&V) -> u64) {
        let n = (self.cap / 10).max(1).min(self.map.len());
        let mut ranked: Vec<(u64, KeyDigest)> = self.map.iter().map(|(k, v)| (rank(v), *k)).collect();
        ranked.select_nth_unstable_by_key(n - 1, |(r, _)| *r);
        for (_, k) in &ranked[..n] {
            self.map.remove(k);
        }
    }
}

/// governor's keyed state, bounded: GCRA stays governor's, the map is ours. Entries ranked by
/// their theoretical arrival time, so the evicted ones are those nearest a full allowance.
pub struct BoundedStore {
    inner: Mutex<BoundedMap<Nanos>>,
}

impl BoundedStore {
    pub fn new(cap: usize) -> Self {
        BoundedStore { inner: Mutex::new(BoundedMap::new(cap)) }
    }
}

impl StateStore for BoundedStore {
    type Key = KeyDigest;

    fn measure_and_replace<T, F, E>(&self, key: &KeyDigest, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut map = self.inner.lock().expect("poisoned");
        // Measured before inserting, so a refused first attempt never takes a slot.
        let (out, tat) = f(map.get(key).copied())?;
        *map.entry(*key, || tat, |t| t.as_u64()) = tat;
        Ok(out)
    }
}

impl ShrinkableKeyedStateStore<KeyDigest> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        self.inner.lock().expect("poisoned").retain(|_, tat| *tat >= drop_below);
    }

    fn len(&self) -> usize {
        self.inner.lock().expect("poisoned").len()
    }

    fn is_empty(&self) -> bool {
        self.inner.lock().expect("poisoned").is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_fixed_size_whatever_the_key() {
        assert_eq!(KeyDigest::of(&"x".repeat(900_000)), KeyDigest::of(&"x".repeat(900_000)));
        assert_ne!(KeyDigest::of("alice"), KeyDigest::of("alice "));
        assert_eq!(std::mem::size_of::<KeyDigest>(), 16);
    }

    #[test]
    fn at_the_bound_the_lowest_ranked_tenth_goes() {
        let mut m: BoundedMap<u64> = BoundedMap::new(100);
        for i in 0..100u64 {
            m.entry(KeyDigest::of(&i.to_string()), || i, |v| *v);
        }
        assert_eq!(m.len(), 100);
        m.entry(KeyDigest::of("new"), || 1000, |v| *v);
        assert_eq!(m.len(), 91, "ten evicted, one added");
        for i in 0..10u64 {
            assert!(m.get(&KeyDigest::of(&i.to_string())).is_none(), "{i} was among the oldest");
        }
        assert!(m.get(&KeyDigest::of("10")).is_some());
        // An existing key never evicts anything.
        let before = m.len();
        *m.entry(KeyDigest::of("50"), || 0, |v| *v) += 1;
        assert_eq!(m.len(), before);
    }

    #[test]
    fn a_flood_of_keys_stays_within_the_bound() {
        let mut m: BoundedMap<u64> = BoundedMap::new(1000);
        for i in 0..100_000u64 {
            m.entry(KeyDigest::of(&i.to_string()), || i, |v| *v);
            assert!(m.len() <= 1000);
        }
        assert!(m.get(&KeyDigest::of("99999")).is_some(), "the newest stay");
    }

    #[test]
    fn ranks_weigh_failures_before_age() {
        assert!(rank(2, 10, false) > rank(1, 1_000_000, false), "more failures outrank fresher ones");
        assert!(rank(1, 20, false) > rank(1, 10, false));
        assert_eq!(rank(50, 10, true), 0, "expired goes first");
    }
}
