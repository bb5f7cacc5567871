//! In-process session store: for tests and single-instance deployments that accept losing
//! sessions on restart.

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Session, SessionStore, StoreError, TokenHash};

#[derive(Default)]
pub struct MemoryStore {
    // Public id → session; the hash index points into it.
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Session>,
    by_hash: HashMap<TokenHash, String>,
    once: HashMap<String, (Vec<u8>, DateTime<Utc>)>,
}

impl Inner {
    fn remove(&mut self, id: &str) -> Option<Session> {
        let s = self.by_id.remove(id)?;
        self.by_hash.remove(&s.token_hash);
        Some(s)
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn sorted(mut v: Vec<Session>) -> Vec<Session> {
    v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
    v
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let mut g = self.inner.write().expect("poisoned");
        g.by_hash.insert(session.token_hash.clone(), session.id.clone());
        g.by_id.insert(session.id.clone(), session.clone());
        Ok(())
    }

    async fn get(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Option<Session>, StoreError> {
        let g = self.inner.read().expect("poisoned");
        Ok(g.by_hash.get(hash).and_then(|id| g.by_id.get(id)).filter(|s| !s.is_expired(now)).cloned())
    }

    async fn update(&self, old_hash: &TokenHash, session: &Session) -> Result<bool, StoreError> {
        let mut g = self.inner.write().expect("poisoned");
        if g.by_hash.get(old_hash) != Some(&session.id) {
            return Ok(false);
        }
        g.by_hash.remove(old_hash);
        g.by_hash.insert(session.token_hash.clone(), session.id.clone());
        g.by_id.insert(session.id.clone(), session.clone());
        Ok(true)
    }

    async fn touch(
        &self,
        session: &Session,
        last_seen_at: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut g = self.inner.write().expect("poisoned");
        match g.by_id.get_mut(&session.id) {
            Some(s) => {
                s.last_seen_at = last_seen_at;
                s.idle_expires_at = idle_expires_at;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete(&self, id: &str, owner: Option<i64>) -> Result<bool, StoreError> {
        let mut g = self.inner.write().expect("poisoned");
        match g.by_id.get(id) {
            Some(s) if owner.is_none_or(|o| o == s.user_id) => Ok(g.remove(id).is_some()),
            _ => Ok(false),
        }
    }

    async fn list(&self, user_id: i64, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let g = self.inner.read().expect("poisoned");
        Ok(sorted(g.by_id.values().filter(|s| s.user_id == user_id && !s.is_expired(now)).cloned().collect()))
    }

    async fn delete_all(&self, user_id: i64, except: Option<&str>) -> Result<u64, StoreError> {
        let mut g = self.inner.write().expect("poisoned");
        let ids: Vec<String> = g
            .by_id
            .values()
            .filter(|s| s.user_id == user_id && Some(s.id.as_str()) != except)
            .map(|s| s.id.clone())
            .collect();
        for id in &ids {
            g.remove(id);
        }
        Ok(ids.len() as u64)
    }

    async fn list_all(&self, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let g = self.inner.read().expect("poisoned");
        Ok(sorted(g.by_id.values().filter(|s| !s.is_expired(now)).cloned().collect()))
    }

    async fn gc(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut g = self.inner.write().expect("poisoned");
        let ids: Vec<String> = g.by_id.values().filter(|s| s.is_expired(now)).map(|s| s.id.clone()).collect();
        for id in &ids {
            g.remove(id);
        }
        let before = g.once.len();
        g.once.retain(|_, (_, at)| *at > now);
        Ok((ids.len() + before - g.once.len()) as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn put_once(&self, key: &str, value: &[u8], expires_at: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.write().expect("poisoned").once.insert(key.to_owned(), (value.to_vec(), expires_at));
        Ok(())
    }

    async fn take_once(&self, key: &str, now: DateTime<Utc>) -> Result<Option<Vec<u8>>, StoreError> {
        let taken = self.inner.write().expect("poisoned").once.remove(key);
        Ok(taken.filter(|(_, at)| *at > now).map(|(v, _)| v))
    }
}
