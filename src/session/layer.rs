//! The session-loading middleware: cookie → SHA-256 → store → user (briefly cached, see
//! [`super::user_cache`]), into [`RequestContext`].
//! It also re-issues the session cookie when the idle expiry moved, and clears a cookie that
//! names no live session. Its state is a [`SessionLayer`]: the stores, the cookie policy and the
//! few settings it reads — nothing of the rest of the application.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header;

use super::{AuthState, Authenticated, RequestContext, SessionManager, SessionToken};
use crate::cookies::CookiePolicy;
use crate::http::headers::{add_vary, is_safe};
use crate::users::UserStore;

/// The session layer's state. Cheap to clone.
#[derive(Clone)]
pub struct SessionLayer(Arc<Inner>);

struct Inner {
    sessions: SessionManager,
    users: Arc<dyn UserStore>,
    cookies: CookiePolicy,
    /// `server.trusted_proxies`: whose `X-Forwarded-For` is believed.
    trusted_proxies: Vec<ipnet::IpNet>,
    /// `auth.base_path`: unsafe requests under it read the user fresh.
    base_path: String,
    /// `Max-Age` of a re-issued persistent cookie.
    idle_timeout: Duration,
}

impl SessionLayer {
    pub fn new(
        sessions: SessionManager,
        users: Arc<dyn UserStore>,
        cookies: CookiePolicy,
        settings: &crate::config::Settings,
    ) -> Self {
        SessionLayer(Arc::new(Inner {
            sessions,
            users,
            cookies,
            trusted_proxies: settings.trusted_proxies.clone(),
            base_path: settings.base_path.clone(),
            idle_timeout: settings.idle_timeout,
        }))
    }
}

pub async fn load_session(State(layer): State<SessionLayer>, mut req: Request, next: Next) -> Response {
    let state = &*layer.0;
    let peer =
        req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let client_ip = crate::http::client_ip(peer, req.headers(), &state.trusted_proxies);
    let cookies = state.cookies.read(req.headers());
    // Unsafe auth API requests may check or change the user: they read it fresh and clear the
    // user cache when done (see `user_cache`).
    let user_changes = !is_safe(req.method()) && req.uri().path().starts_with(&state.base_path);

    let mut reissue = None;
    let mut auth = AuthState::Anonymous;
    // Cookie tossing: with several session cookies (one planted by a sibling subdomain), the
    // one that names a live session counts, and none is cleared — clearing sets our own cookie,
    // which may be the real one. Two *live* sessions mean someone planted their own (a browser
    // sends the longer path first, so "first wins" would log the victim into the attacker's
    // account): then neither counts. `cookies.host_prefix` stops the planting itself.
    let tossed = !cookies.more_sessions.is_empty();
    let mut clear = false;
    for raw in cookies.session.iter().chain(&cookies.more_sessions) {
        let Some(token) = SessionToken::parse(raw) else {
            clear = !tossed;
            continue;
        };
        match bounded_resolve(state, &token, !user_changes).await {
            Ok(Some((found, moved))) => {
                if let AuthState::Authenticated(first) = &auth {
                    if first.session.id != found.session.id {
                        tracing::warn!(
                            %client_ip,
                            "several live session cookies in one request (cookie tossing?): none is used"
                        );
                        auth = AuthState::Anonymous;
                        reissue = None;
                        break;
                    }
                    continue;
                }
                if moved && found.session.remember {
                    reissue = Some(token);
                }
                auth = AuthState::Authenticated(Arc::new(found));
                clear = false;
                if !tossed {
                    break;
                }
            }
            Ok(None) => clear = clear || !tossed,
            Err(()) => {
                auth = AuthState::Unavailable;
                clear = false;
                break;
            }
        }
    }
    if matches!(auth, AuthState::Authenticated(_)) {
        clear = false;
    }

    req.extensions_mut().insert(RequestContext { cookies, client_ip, auth });
    let mut res = next.run(req).await;
    if user_changes {
        state.sessions.user_cache().clear();
    }

    // Handlers that log in or out set the cookie themselves; theirs wins.
    let name = &state.cookies.settings.session_name;
    let handler_set = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(name.as_bytes()) && v.as_bytes().get(name.len()) == Some(&b'='));
    if !handler_set {
        let value = match (reissue, clear) {
            (Some(token), _) => Some(state.cookies.session(token.as_str(), Some(state.idle_timeout))),
            (None, true) => Some(state.cookies.clear_session()),
            _ => None,
        };
        if let Some(v) = value {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    if res.headers().contains_key(header::SET_COOKIE) {
        add_vary(&mut res, "Cookie");
    }
    res
}

/// Bound on the whole lookup (session, sliding touch, user): past it the request fails closed
/// (503 `overloaded`) instead of waiting on a store that stopped answering. Every store call is
/// bounded on its own too (Redis 2 s, PostgreSQL 3 s); this caps their sum.
pub const LOOKUP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

async fn bounded_resolve(
    state: &Inner,
    token: &SessionToken,
    cached_user: bool,
) -> Result<Option<(Authenticated, bool)>, ()> {
    tokio::time::timeout(LOOKUP_DEADLINE, resolve(state, token, cached_user)).await.unwrap_or_else(|_| {
        tracing::warn!("session lookup took longer than {LOOKUP_DEADLINE:?}; failing closed");
        Err(())
    })
}

/// The session (always from the store) and its user (from the user cache when `cached_user`).
async fn resolve(state: &Inner, token: &SessionToken, cached_user: bool) -> Result<Option<(Authenticated, bool)>, ()> {
    let started = std::time::Instant::now();
    let loaded = state.sessions.load(token).await.map_err(|e| {
        tracing::warn!(error = %e, "session lookup failed; failing closed");
    });
    crate::db::timing::record("sessions", "load", started.elapsed());
    let loaded = loaded?;
    let Some(loaded) = loaded else { return Ok(None) };
    let cache = state.sessions.user_cache();
    let user = match cached_user.then(|| cache.get(loaded.session.user_id)).flatten() {
        Some(user) => Some(user),
        None => {
            let generation = cache.generation();
            let started = std::time::Instant::now();
            let user = state.users.get(loaded.session.user_id).await.map_err(|e| {
                tracing::warn!(error = %e, "user lookup failed; failing closed");
            });
            crate::db::timing::record("users", "get", started.elapsed());
            let user = user?;
            if let Some(u) = &user {
                cache.put(generation, u.clone());
            }
            user
        }
    };
    match user {
        Some(user) if user.is_active => {
            Ok(Some((Authenticated { session: loaded.session, user }, loaded.expiry_moved)))
        }
        _ => Ok(None),
    }
}

/// The layer in process (`tower::ServiceExt::oneshot`) over a real SQLite user store and the
/// memory session store, with a manual clock.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::Extension;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;
    use crate::clock::{ManualClock, SharedClock};
    use crate::session::manager::{ClientInfo, Lifetimes};
    use crate::users::{NewUser, sqlite::SqliteUsers};

    struct Fixture {
        app: Router,
        sessions: SessionManager,
        clock: Arc<ManualClock>,
        user_id: i64,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let users: Arc<dyn UserStore> = Arc::new(SqliteUsers::new(pool));
        let user =
            users.create(NewUser { username: "alice".into(), email: None, password_hash: "x".into() }).await.unwrap();
        let clock = ManualClock::starting_now();
        let lifetimes = Lifetimes { idle: Duration::from_secs(60), absolute: Duration::from_secs(3600) };
        let store = Arc::new(crate::session::memory::MemoryStore::new());
        let sessions = SessionManager::with_clock(store, lifetimes, SharedClock::new(clock.clone()));
        let toml = "[session]\nidle_timeout = \"60s\"\nabsolute_timeout = \"1h\"\n";
        let settings = crate::config::load_str(toml).unwrap().validate().unwrap();
        let cookies = CookiePolicy::new(settings.cookies.clone());
        let layer = SessionLayer::new(sessions.clone(), users, cookies, &settings);
        let app = Router::new()
            .route(
                "/who",
                get(|Extension(ctx): Extension<RequestContext>| async move {
                    match ctx.auth {
                        AuthState::Authenticated(a) => a.user.username.clone(),
                        AuthState::Anonymous => "anonymous".into(),
                        AuthState::Unavailable => "unavailable".into(),
                    }
                }),
            )
            .layer(axum::middleware::from_fn_with_state(layer, load_session));
        Fixture { app, sessions, clock, user_id: user.id, _dir: dir }
    }

    /// (who the handler saw, the Set-Cookie for the session if any)
    async fn who(f: &Fixture, cookie: Option<String>) -> (String, Option<String>) {
        let mut req = Request::builder().uri("/who");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let res = f.app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let set = res.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        (String::from_utf8_lossy(&body).into_owned(), set)
    }

    async fn login(f: &Fixture) -> String {
        let (token, _) =
            f.sessions.create(f.user_id, ClientInfo::default(), true, "s".into(), Default::default()).await.unwrap();
        token.as_str().to_owned()
    }

    #[tokio::test]
    async fn a_live_cookie_names_its_user_and_a_dead_one_is_cleared() {
        let f = fixture().await;
        assert_eq!(who(&f, None).await, ("anonymous".into(), None));
        let token = login(&f).await;
        assert_eq!(who(&f, Some(format!("sessionid={token}"))).await, ("alice".into(), None));
        let (seen, set) = who(&f, Some(format!("sessionid={}", "A".repeat(43)))).await;
        assert_eq!(seen, "anonymous");
        assert!(set.unwrap().starts_with("sessionid=; "), "a dead cookie is cleared");
        // Past the idle timeout by the clock: anonymous and cleared, no sleeping.
        f.clock.advance(Duration::from_secs(61));
        let (seen, set) = who(&f, Some(format!("sessionid={token}"))).await;
        assert_eq!(seen, "anonymous");
        assert!(set.is_some());
    }

    #[tokio::test]
    async fn use_past_the_touch_interval_reissues_the_cookie() {
        let f = fixture().await;
        let token = login(&f).await;
        f.clock.advance(Duration::from_secs(20));
        let (seen, set) = who(&f, Some(format!("sessionid={token}"))).await;
        assert_eq!(seen, "alice");
        assert!(set.unwrap().contains("Max-Age=60"), "the sliding expiry moved");
    }

    #[tokio::test]
    async fn tossed_cookies_never_clear_and_two_live_sessions_count_as_none() {
        let f = fixture().await;
        let (a, b) = (login(&f).await, login(&f).await);
        let dead = "A".repeat(43);
        assert_eq!(who(&f, Some(format!("sessionid={dead}; sessionid={a}"))).await, ("alice".into(), None));
        assert_eq!(who(&f, Some(format!("sessionid={a}; sessionid={b}"))).await, ("anonymous".into(), None));
    }
}
