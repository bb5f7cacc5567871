use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::user_cache::UserCache;
use super::{Session, SessionStore, SessionToken, StoreError, TokenHash};
use crate::clock::SharedClock;
use crate::secret;

/// How long sessions live.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    /// Inactivity after which a session ends; slides forward on use.
    pub idle: Duration,
    /// Age after which a session ends whatever its activity.
    pub absolute: Duration,
}

impl Lifetimes {
    /// Activity is written at most this often per session: a write per request would cost
    /// 4–5× throughput on SQLite. A quarter of the idle timeout keeps short test timeouts exact
    /// enough while real deployments (14 days idle) write at most once a minute.
    pub fn touch_interval(&self) -> chrono::Duration {
        let quarter = self.idle / 4;
        chrono::Duration::from_std(quarter.min(Duration::from_secs(60))).unwrap_or(chrono::Duration::seconds(60))
    }

    fn idle_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.idle).unwrap_or(chrono::Duration::days(14))
    }

    fn absolute_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.absolute).unwrap_or(chrono::Duration::days(30))
    }
}

/// Who is opening a session: what `GET /sessions` shows so a user recognises their devices.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A session found for a request, and whether its expiry moved (so the cookie must be
/// re-issued with a fresh `Max-Age`).
#[derive(Clone, Debug)]
pub struct Loaded {
    pub session: Session,
    pub expiry_moved: bool,
}

/// Session semantics on top of any [`SessionStore`]: token generation, rotation, sliding idle
/// timeout with throttled writes, absolute timeout.
#[derive(Clone)]
pub struct SessionManager {
    store: Arc<dyn SessionStore>,
    lifetimes: Lifetimes,
    /// The users of recently resolved sessions (the session layer's; see [`UserCache`]).
    users: Arc<UserCache>,
    clock: SharedClock,
}

impl SessionManager {
    pub fn new(store: Arc<dyn SessionStore>, lifetimes: Lifetimes) -> Self {
        Self::with_clock(store, lifetimes, SharedClock::system())
    }

    /// With the time taken from `clock` (tests move it instead of sleeping).
    pub fn with_clock(store: Arc<dyn SessionStore>, lifetimes: Lifetimes, clock: SharedClock) -> Self {
        SessionManager { store, lifetimes, users: Arc::default(), clock }
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Recently resolved users, for the session layer.
    pub fn user_cache(&self) -> &UserCache {
        &self.users
    }

    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    pub fn lifetimes(&self) -> Lifetimes {
        self.lifetimes
    }

    /// Open a new session for `user_id`. Always a new token: there is no way to adopt a token the
    /// client brought (no fixation).
    pub async fn create(
        &self,
        user_id: i64,
        client: ClientInfo,
        remember: bool,
        csrf_secret: String,
        methods: super::AuthMethods,
    ) -> Result<(SessionToken, Session), StoreError> {
        let now = self.clock.now();
        let token = SessionToken::generate();
        let session = Session {
            id: secret::random_b64(16),
            token_hash: token.hash(),
            user_id,
            csrf_secret,
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now + self.lifetimes.idle_chrono(),
            absolute_expires_at: now + self.lifetimes.absolute_chrono(),
            authenticated_at: now,
            ip: client.ip,
            user_agent: client.user_agent,
            remember,
            methods,
        };
        self.store.create(&session).await?;
        Ok((token, session))
    }

    /// Find the live session for a cookie token, sliding its idle timeout when the last recorded
    /// activity is older than the touch interval.
    pub async fn load(&self, token: &SessionToken) -> Result<Option<Loaded>, StoreError> {
        let now = self.clock.now();
        let Some(session) = self.store.get(&token.hash(), now).await? else {
            return Ok(None);
        };
        if session.is_expired(now) {
            return Ok(None);
        }
        self.slide(session, now).await
    }

    async fn slide(&self, mut session: Session, now: DateTime<Utc>) -> Result<Option<Loaded>, StoreError> {
        if now - session.last_seen_at < self.lifetimes.touch_interval() {
            return Ok(Some(Loaded { session, expiry_moved: false }));
        }
        let idle_expires_at = now + self.lifetimes.idle_chrono();
        if !self.store.touch(&session, now, idle_expires_at).await? {
            return Ok(None);
        }
        session.last_seen_at = now;
        session.idle_expires_at = idle_expires_at;
        Ok(Some(Loaded { session, expiry_moved: true }))
    }

    /// Give `session` a new token (and optionally a new CSRF secret and a fresh
    /// `authenticated_at`); the old token stops working at once. Returns None if the session was
    /// revoked meanwhile.
    pub async fn rotate(
        &self,
        session: &Session,
        csrf_secret: Option<String>,
        reauthenticated: bool,
    ) -> Result<Option<(SessionToken, Session)>, StoreError> {
        let now = self.clock.now();
        let token = SessionToken::generate();
        let mut next = session.clone();
        next.token_hash = token.hash();
        if let Some(secret) = csrf_secret {
            next.csrf_secret = secret;
        }
        if reauthenticated {
            next.authenticated_at = now;
        }
        next.last_seen_at = now;
        next.idle_expires_at = now + self.lifetimes.idle_chrono();
        if !self.store.update(&session.token_hash, &next).await? {
            return Ok(None);
        }
        Ok(Some((token, next)))
    }

    /// Bind a new CSRF secret to the session without changing its token.
    pub async fn set_csrf_secret(&self, session: &Session, csrf_secret: String) -> Result<bool, StoreError> {
        let mut next = session.clone();
        next.csrf_secret = csrf_secret;
        self.store.update(&session.token_hash, &next).await
    }

    pub async fn delete_by_token(&self, session: &Session) -> Result<bool, StoreError> {
        self.store.delete(&session.id, Some(session.user_id)).await
    }

    pub async fn revoke(&self, id: &str, owner: Option<i64>) -> Result<bool, StoreError> {
        self.store.delete(id, owner).await
    }

    pub async fn revoke_all(&self, user_id: i64, except: Option<&str>) -> Result<u64, StoreError> {
        self.store.delete_all(user_id, except).await
    }

    pub async fn list(&self, user_id: i64) -> Result<Vec<Session>, StoreError> {
        self.store.list(user_id, self.clock.now()).await
    }

    pub async fn list_all(&self) -> Result<Vec<Session>, StoreError> {
        self.store.list_all(self.clock.now()).await
    }

    pub async fn gc(&self) -> Result<u64, StoreError> {
        self.store.gc(self.clock.now()).await
    }

    /// Hash used by stores for a token (exposed for tests and tools).
    pub fn hash(token: &SessionToken) -> TokenHash {
        token.hash()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;
    use crate::session::memory::MemoryStore;

    fn manager(idle: u64, absolute: u64) -> (SessionManager, Arc<ManualClock>) {
        let clock = ManualClock::starting_now();
        let lifetimes = Lifetimes { idle: Duration::from_secs(idle), absolute: Duration::from_secs(absolute) };
        let m = SessionManager::with_clock(Arc::new(MemoryStore::new()), lifetimes, SharedClock::new(clock.clone()));
        (m, clock)
    }

    async fn open(m: &SessionManager) -> (SessionToken, Session) {
        m.create(7, ClientInfo::default(), true, "secret".into(), Default::default()).await.unwrap()
    }

    #[tokio::test]
    async fn idle_timeout_slides_with_use_but_absolute_does_not() {
        let (m, clock) = manager(60, 150);
        let (token, _) = open(&m).await;
        // Within the touch interval (a quarter of idle, at most a minute): nothing is written.
        clock.advance(Duration::from_secs(10));
        assert!(!m.load(&token).await.unwrap().unwrap().expiry_moved);
        // Past it: the idle expiry moves (and the cookie must be re-issued).
        clock.advance(Duration::from_secs(10));
        assert!(m.load(&token).await.unwrap().unwrap().expiry_moved);
        for _ in 0..5 {
            clock.advance(Duration::from_secs(50));
            if m.load(&token).await.unwrap().is_none() {
                break;
            }
        }
        // 20 s + up to 250 s of use: the absolute timeout (150 s) ended it whatever the activity.
        assert!(m.load(&token).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_unused_session_ends_at_its_idle_timeout() {
        let (m, clock) = manager(60, 3600);
        let (token, _) = open(&m).await;
        clock.advance(Duration::from_secs(59));
        assert!(m.load(&token).await.unwrap().is_some());
        let (token, _) = open(&m).await;
        clock.advance(Duration::from_secs(61));
        assert!(m.load(&token).await.unwrap().is_none());
        assert!(m.gc().await.unwrap() >= 1, "expired sessions are collected");
    }

    #[tokio::test]
    async fn rotation_kills_the_old_token_and_keeps_the_session() {
        let (m, clock) = manager(600, 3600);
        let (old, session) = open(&m).await;
        clock.advance(Duration::from_secs(30));
        let (new, next) = m.rotate(&session, Some("fresh".into()), true).await.unwrap().unwrap();
        assert_eq!(next.id, session.id);
        assert_eq!(next.csrf_secret, "fresh");
        assert_eq!((next.authenticated_at - session.authenticated_at).num_seconds(), 30);
        assert!(m.load(&old).await.unwrap().is_none(), "the old token stops working at once");
        assert!(m.load(&new).await.unwrap().is_some());
        // Rotating a session revoked meanwhile gives nothing.
        assert!(m.revoke(&next.id, Some(7)).await.unwrap());
        assert!(m.rotate(&next, None, false).await.unwrap().is_none());
        assert!(m.load(&new).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn revoke_all_spares_only_the_named_session() {
        let (m, _) = manager(600, 3600);
        let (a, sa) = open(&m).await;
        let (b, _) = open(&m).await;
        let (c, _) = open(&m).await;
        assert_eq!(m.revoke_all(7, Some(&sa.id)).await.unwrap(), 2);
        assert!(m.load(&a).await.unwrap().is_some());
        assert!(m.load(&b).await.unwrap().is_none() && m.load(&c).await.unwrap().is_none());
        assert!(!m.revoke(&sa.id, Some(8)).await.unwrap(), "another user cannot revoke it");
        assert_eq!(m.list(7).await.unwrap().len(), 1);
    }
}
