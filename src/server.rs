//! The one place that wires stores, layers and routers from [`Settings`].
//!
//! A request's way through, outermost first:
//! ```text
//! connection limits (listener: header-read timeout, head size 431)
//!   ─► edge (URL length 414, request id, security headers) ─► metrics (with
//!   server.admin_listen) ─► trace (sensitive headers redacted) ─► CORS (cross-origin mode only:
//!   preflights answered here, before any session lookup) ─► body limit
//!   ─► session (cookie → SHA-256 → store → user; client IP) ─► audit ─► router:
//!        {auth.base_path}/*      → request timeout ─► no-store ─► CSRF ─► api handlers
//!                                  (incl. /verify, /openapi.json)
//!        /healthz, /readyz
//!        /.well-known/jwks.json  (identity.jwt = true only)
//!        fallback: [[routes]] longest prefix → proxy: auth (401/503) ─► CSRF and WebSocket
//!                                  Origin (unless auth = "none") ─► headers ─► upstream
//!                  everything else          → SPA files / history fallback
//! ```
//! The body limit is `DefaultBodyLimit`, which only bounds extractors: proxied bodies stream,
//! bounded by a route's own `max_body`. `/metrics` is served by [`serve_on`] on the separate
//! admin listener only.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderName, HeaderValue, header};
use tower::ServiceBuilder;
use tower_http::sensitive_headers::{SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::api::AppState;
use crate::audit::AuditStore;
use crate::config::{SessionBackend, Settings, UserBackend};
use crate::http::Problem;
use crate::http::route::RouteClassifier;
use crate::password::Passwords;
use crate::proxy::Proxy;
use crate::secret;
use crate::session::{Lifetimes, SessionManager, SessionStore};
use crate::spa::Spa;
use crate::users::UserStore;
use crate::{api, csrf, db, session};

pub use crate::api::Stores;

/// Open (and migrate) the stores the configuration names.
pub async fn open_stores(settings: &Settings) -> anyhow::Result<Stores> {
    open_stores_with_clock(settings, crate::clock::SharedClock::system()).await
}

/// [`open_stores`], with the sessions' time taken from `clock` (tests move it instead of
/// sleeping).
pub async fn open_stores_with_clock(settings: &Settings, clock: crate::clock::SharedClock) -> anyhow::Result<Stores> {
    let secret = settings
        .secret_key()
        .with_context(|| format!("reading or creating {}", settings.data_dir.join("secret.key").display()))?;
    let needs_sqlite = settings.session_store == SessionBackend::Sqlite || settings.user_store == UserBackend::Sqlite;
    let sqlite = if needs_sqlite {
        let path = settings.sqlite_path();
        Some(db::open_sqlite(&path).await.with_context(|| format!("opening SQLite database {}", path.display()))?)
    } else {
        None
    };
    // One PostgreSQL pool per distinct URL (sessions and users usually share one database).
    #[cfg(feature = "postgres")]
    let mut pg: Option<(String, sqlx::PgPool)> = None;
    #[cfg(feature = "postgres")]
    let mut postgres = async |url: &str, key: &str| -> anyhow::Result<sqlx::PgPool> {
        if let Some((u, pool)) = &pg
            && u == url
        {
            return Ok(pool.clone());
        }
        let pool = db::connect_postgres(url).await.with_context(|| format!("connecting to PostgreSQL ({key})"))?;
        pg = Some((url.to_owned(), pool.clone()));
        Ok(pool)
    };
    // Each store with its SQL database, where audit rows can go: the native user store's
    // first, else the session store's.
    let (session_store, session_audit): (Arc<dyn SessionStore>, AuditStore) = match &settings.session_store {
        SessionBackend::Memory => (Arc::new(session::memory::MemoryStore::new()), AuditStore::None),
        SessionBackend::Sqlite => {
            let pool = sqlite.clone().expect("opened above");
            (Arc::new(session::sqlite::SqliteStore::new(pool.clone())), AuditStore::Sqlite(pool))
        }
        #[cfg(feature = "postgres")]
        SessionBackend::Postgres(url) => {
            let pool = postgres(url, "session.url").await?;
            (Arc::new(session::postgres::PostgresStore::new(pool.clone())), AuditStore::Postgres(pool))
        }
        #[cfg(feature = "redis")]
        SessionBackend::Redis(url) => {
            let store = session::redis::RedisStore::connect(url, &settings.session.key_prefix)
                .await
                .context("connecting to Redis (session.url)")?;
            (Arc::new(store), AuditStore::None)
        }
        #[cfg(not(all(feature = "postgres", feature = "redis")))]
        other => return Err(crate::config::not_built("session.store", other.name())),
    };
    let (users, user_audit): (Arc<dyn UserStore>, AuditStore) = match &settings.user_store {
        UserBackend::Sqlite => {
            let pool = sqlite.clone().expect("opened above");
            (Arc::new(crate::users::sqlite::SqliteUsers::new(pool.clone())), AuditStore::Sqlite(pool))
        }
        #[cfg(feature = "postgres")]
        UserBackend::Postgres(url) => {
            let pool = postgres(url, "users.url").await?;
            (Arc::new(crate::users::postgres::PostgresUsers::new(pool.clone())), AuditStore::Postgres(pool))
        }
        #[cfg(feature = "django")]
        UserBackend::Django(opts) => {
            let store = crate::users::django::DjangoUsers::connect(opts.clone())
                .await
                .context("users.store = \"django\" (users.url)")?;
            (Arc::new(store), AuditStore::None)
        }
        #[cfg(not(all(feature = "postgres", feature = "django")))]
        other => return Err(crate::config::not_built("users.store", other.name())),
    };
    let audit = if user_audit.is_none() { session_audit } else { user_audit };
    let rekeyed = users.upgrade_keys().await.context("recomputing username keys (migration 0004)")?;
    if rekeyed > 0 {
        tracing::info!(rows = rekeyed, "username and email keys recomputed with Unicode normalisation");
    }
    let lifetimes = Lifetimes { idle: settings.idle_timeout, absolute: settings.absolute_timeout };
    let passwords = Passwords::new(&settings.users.argon2)
        .map_err(|e| anyhow::anyhow!("users.argon2: {e}"))?
        .with_format(users.hash_format())
        .with_queue(settings.users.hash_queue);
    let sessions = SessionManager::with_clock(session_store, lifetimes, clock);
    Ok(Stores { sessions, users, passwords, secret, audit })
}

/// The whole gateway as one router (tests mount it in-process).
pub fn app(state: AppState) -> Router {
    let settings = state.settings.clone();
    let no_store = SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let request_timeout = settings.server.request_timeout;
    let api = api::router().layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn(move |req, next| timeout(request_timeout, req, next)))
            .layer(no_store)
            .layer(middleware::from_fn_with_state(state.csrf.clone(), csrf::layer::csrf_protect)),
    );
    let spa = Arc::new(Spa::from_settings(&settings.spa));
    let proxy = Proxy::new(&settings, state.identity.clone(), state.cookies.clone(), state.csrf.clone());
    let cors = crate::cors::CorsPolicy::new(&settings.cors_origins, &settings.cors).map(Arc::new);
    let routes = Arc::new(RouteClassifier::new(
        &settings.base_path,
        settings.routes.iter().map(|r| r.prefix.as_str()),
        crate::api::openapi::auth_paths(),
    ));
    let max_url = settings.server.max_url_bytes;

    let https = settings.https();
    let mut router = Router::new()
        .nest(&settings.base_path, api)
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz));
    if settings.identity.jwt {
        router = router.route("/.well-known/jwks.json", get(api::jwks));
    }
    let router = router.fallback(move |req: Request| {
        let (proxy, spa) = (proxy.clone(), spa.clone());
        async move {
            match proxy.handle(req).await {
                Ok(res) => res,
                Err(req) => crate::spa::serve(spa, req).await,
            }
        }
    });
    // Metrics only with an admin listener to serve them (the recorder is installed here).
    let metrics = settings.admin_listen.is_some().then(|| {
        crate::metrics::handle();
        middleware::from_fn_with_state(routes.clone(), crate::metrics::track)
    });
    // One `ServiceBuilder` stack, outermost first, wrapped around the finished router rather than
    // applied with `Router::layer`. Every `from_fn` clones its inner service per request: under
    // `Router::layer` that inner was the rest of the stack down to a boxed route, cloned anew at
    // every layer; around the router it ends in the router itself, an `Arc`. (`Router::layer`
    // per middleware was worse still: each boxes the routes again.) Measured in bench/fixes.md.
    let stack = ServiceBuilder::new()
        .layer(middleware::from_fn(move |req, next| edge(max_url, https, req, next)))
        .option_layer(metrics)
        .map_response(IntoResponse::into_response)
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::COOKIE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-csrftoken"),
        ]))
        .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // Path only: query strings may carry tokens.
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .option_layer(cors.map(|policy| middleware::from_fn_with_state(policy, crate::cors::cors)))
        .layer(DefaultBodyLimit::max(usize::try_from(settings.max_body).unwrap_or(usize::MAX)))
        .layer(middleware::from_fn_with_state(state.session_layer(), session::layer::load_session))
        .layer(middleware::from_fn_with_state((state.audit.clone(), routes), crate::audit::layer::observe));
    Router::new().fallback_service(stack.service(router.with_state(state)))
}

/// 408 when an auth API request (body upload included) takes longer than
/// `server.request_timeout`: a client trickling its body cannot hold the request forever.
async fn timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::info!("request timed out (server.request_timeout)");
            Problem::request_timeout().into_response()
        }
    }
}

/// The outermost per-request work, in one middleware (each `from_fn` layer costs a boxed future
/// and a clone of its inner service per request):
/// - 414 for request targets longer than `server.max_url_bytes`, before any other work;
/// - the request id: a client's `X-Request-Id` is kept only when short and plain (it ends up in
///   logs), else replaced; echoed on the response;
/// - the security headers (SPEC §9) on every response.
async fn edge(max_url: u64, https: bool, mut req: Request, next: Next) -> Response {
    let name = HeaderName::from_static("x-request-id");
    let valid = req.headers().get(&name).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    });
    let id = if valid {
        req.headers().get(&name).cloned().expect("checked")
    } else {
        // Not a secret: a fast thread-local generator rather than a system call per request.
        let id: String = std::iter::repeat_with(fastrand::alphanumeric).take(16).collect();
        let id = HeaderValue::from_str(&id).expect("alphanumeric");
        req.headers_mut().insert(name.clone(), id.clone());
        id
    };
    let len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    let mut res =
        if len as u64 > max_url { Problem::uri_too_long(max_url).into_response() } else { next.run(req).await };
    let h = res.headers_mut();
    h.insert(name, id);
    crate::http::headers::add_security_headers(https, h);
    res
}

/// On first start with an empty user store, create `admin` with a random password, written to
/// `data_dir/initial-admin-password` (0600) and printed once.
pub async fn bootstrap_admin(settings: &Settings, stores: &Stores) -> anyhow::Result<()> {
    // The Django store is read-only: its users come from Django.
    if !settings.auth.bootstrap_admin
        || matches!(settings.user_store, UserBackend::Django(_))
        || stores.users.count().await? > 0
    {
        return Ok(());
    }
    let password = secret::random_b64(18);
    let hash = stores.passwords.hash(password.clone()).await?;
    let admin =
        crate::users::NewUser { username: crate::users::INITIAL_ADMIN.into(), email: None, password_hash: hash };
    stores.users.create(admin).await?;
    let path = settings.data_dir.join(crate::users::INITIAL_ADMIN_FILE);
    secret::write_private(&path, format!("{password}\n").as_bytes())?;
    println!("Created user `admin` with password: {password}");
    println!("(also saved to {}; change it after logging in: the file is then removed)", path.display());
    Ok(())
}

/// Run the gateway until SIGINT/SIGTERM.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    let settings = Arc::new(settings);
    let stores = open_stores(&settings).await?;
    for w in permission_warnings(&settings) {
        tracing::warn!("{w}");
    }
    bootstrap_admin(&settings, &stores).await?;
    let audit = stores.audit.describe();
    let state = AppState::new(settings.clone(), stores);
    tracing::info!("mail: {}; audit log: {audit}", state.mailer.describe());

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {} (server.listen)", settings.listen))?;
    let admin = match settings.admin_listen {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} (server.admin_listen)"))?,
        ),
        None => None,
    };
    let addr = listener.local_addr()?;
    tracing::info!(
        "sessiongate listening on {} (public {}, mode {:?}, {}, session store {}, users {}{})",
        addr,
        settings.public_origin,
        settings.mode,
        Spa::from_settings(&settings.spa).describe(),
        settings.session_store.name(),
        settings.user_store.name(),
        admin
            .as_ref()
            .and_then(|a| a.local_addr().ok())
            .map_or(String::new(), |a| format!(", metrics on http://{a}/metrics")),
    );
    serve_on(state, listener, admin, shutdown_signal()).await?;
    tracing::info!("sessiongate stopped");
    Ok(())
}

/// The connection limits `[server]` configures.
pub fn limits(settings: &Settings) -> crate::listener::Limits {
    let server = &settings.server;
    crate::listener::Limits {
        header_read_timeout: server.header_read_timeout,
        idle_timeout: server.idle_timeout,
        max_header_bytes: usize::try_from(server.max_header_bytes).unwrap_or(usize::MAX),
        ..crate::listener::Limits::default()
    }
}

/// Serve `state` on `listener` (HTTPS when `server.tls_*` are set) and, when given, the admin
/// router (`/metrics`) on `admin`, until `shutdown` resolves; then finish in-flight requests and
/// flush the audit queue. Housekeeping (rate-limit cleanup, session gc, audit retention) and
/// metrics upkeep run meanwhile.
pub async fn serve_on(
    state: AppState,
    listener: tokio::net::TcpListener,
    admin: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let settings = state.settings.clone();
    let tls = match &settings.tls {
        Some((cert, key)) => Some(crate::listener::ReloadableTls::load(cert, key)?),
        None => None,
    };
    let limits = limits(&settings);
    spawn_housekeeping(state.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let admin_task = admin.map(|admin| {
        crate::metrics::spawn_upkeep(state.sessions.clone());
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let until = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            crate::listener::serve(admin, crate::metrics::admin_router(), None, limits, until).await
        })
    });
    let app = app(state.clone());
    crate::listener::serve(listener, app, tls, limits, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await?;
    if let Some(t) = admin_task {
        let _ = t.await;
    }
    if !state.audit.flush(Duration::from_secs(5)).await {
        tracing::warn!("audit events still queued at shutdown were not all written");
    }
    Ok(())
}

fn spawn_housekeeping(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let mut n = 0u64;
        loop {
            tick.tick().await;
            state.limits.cleanup();
            if n.is_multiple_of(10) {
                match state.sessions.gc().await {
                    Ok(0) => {}
                    Ok(k) => tracing::debug!(removed = k, "expired sessions removed"),
                    Err(e) => tracing::warn!(error = %e, "session gc failed"),
                }
                let purged = match state.users.accounts() {
                    Some(accounts) => accounts.purge_tokens(chrono::Utc::now()).await,
                    None => Ok(0),
                };
                match purged {
                    Ok(0) => {}
                    Ok(k) => tracing::debug!(removed = k, "expired one-time tokens removed"),
                    Err(e) => tracing::warn!(error = %e, "one-time token cleanup failed"),
                }
            }
            if n.is_multiple_of(60) {
                let retention =
                    chrono::Duration::from_std(state.settings.audit.retention).unwrap_or(chrono::Duration::days(90));
                match state.audit.table().purge(chrono::Utc::now() - retention).await {
                    Ok(0) => {}
                    Ok(k) => tracing::debug!(removed = k, "audit rows past audit.retention removed"),
                    Err(e) => tracing::warn!(error = %e, "audit retention cleanup failed"),
                }
            }
            n += 1;
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
/// Warnings for files and directories of `data_dir` that others may read (created by an older
/// release, or by hand): shown by `sessiongate check` and logged at start.
pub fn permission_warnings(settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut look = |path: &std::path::Path, want: u32| {
            let Ok(meta) = std::fs::metadata(path) else { return };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                out.push(format!(
                    "{} is mode {mode:04o}: other users of this machine can read it; run `chmod {want:o} {}`",
                    path.display(),
                    path.display()
                ));
            }
        };
        look(&settings.data_dir, 0o700);
        for file in
            ["sessiongate.db", "sessiongate.db-wal", "sessiongate.db-shm", "secret.key", "initial-admin-password"]
        {
            look(&settings.data_dir.join(file), 0o600);
        }
    }
    out
}
