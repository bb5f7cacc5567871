//! What the integration tests share: one in-process gateway starter ([`gateway`]) on real
//! loopback TCP with a temporary data dir, cheap Argon2 and user `alice`; one cookie-keeping
//! client ([`Browser`]); [`problem`] for problem responses; and the test PostgreSQL and Redis
//! ([`pg`]). Each test binary uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod authenticator;
pub mod django;
pub mod pg;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use sessiongate::api::AppState;
use sessiongate::clock::{ManualClock, SharedClock};
use sessiongate::config::{Config, load_str};
use sessiongate::server;
use sessiongate::users::NewUser;
use tokio::net::TcpListener;

pub const USER: &str = "alice";
pub const EMAIL: &str = "alice@example.com";
pub const PASSWORD: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------------------------
// The gateway

/// A gateway configured by `toml`; see [`GatewayBuilder`] for what is filled in and what can be
/// changed, and [`GatewayBuilder::start`].
pub fn gateway(toml: &str) -> GatewayBuilder {
    GatewayBuilder {
        toml: toml.to_owned(),
        set: Vec::new(),
        edits: Vec::new(),
        clock: None,
        listener: None,
        data_dir: None,
        user: true,
        serve: Serve::Axum,
    }
}

type Edit = Box<dyn FnOnce(&mut Config) + Send>;
type ServeFn = Box<dyn FnOnce(AppState, TcpListener) -> BoxFuture<'static, ()> + Send>;

enum Serve {
    /// `axum::serve` of `server::app` with the peer address (the default).
    Axum,
    /// `server::serve_on`, as `sessiongate serve` runs: its listener with the configured limits,
    /// housekeeping, and the admin listener when asked for.
    Production { admin: bool },
    /// The test's own.
    With(ServeFn),
}

/// How a test gateway is started. Always filled in, over whatever the TOML says: `data_dir` (a
/// temp dir unless [`data_dir`](Self::data_dir)), `server.listen` (a free loopback port, or
/// [`listener`](Self::listener)'s), `server.admin_listen` (with
/// [`admin_listener`](Self::admin_listener)), cheap Argon2 (`users.argon2`) and
/// `auth.bootstrap_admin = false`. The resulting TOML is kept in the data dir as `gateway.toml`
/// ([`Gateway::config`]) for CLI runs against the same data.
pub struct GatewayBuilder {
    toml: String,
    set: Vec<(String, toml::Value)>,
    edits: Vec<Edit>,
    clock: Option<Arc<ManualClock>>,
    listener: Option<TcpListener>,
    data_dir: Option<PathBuf>,
    user: bool,
    serve: Serve,
}

impl GatewayBuilder {
    /// Set the config key `dotted` (`"server.trusted_proxies"`) to `value`, over the TOML.
    pub fn set(mut self, dotted: &str, value: impl Into<toml::Value>) -> Self {
        self.set.push((dotted.to_owned(), value.into()));
        self
    }

    /// Change the loaded config before it is validated (for what TOML cannot say conveniently);
    /// edits apply in the order given.
    pub fn edit(mut self, edit: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.edits.push(Box::new(edit));
        self
    }

    /// Sessions, second factor, rate limits and recent-authentication checks read `clock`
    /// (which stands still until the test moves it) instead of the system's.
    pub fn clock(mut self, clock: Arc<ManualClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Serve on `listener` (bound by the test, which needed the address earlier).
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Keep the data in `dir` (owned by the test) instead of a temp dir of the gateway's own.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Do not create user `alice` (read-only user stores, stores filled by the test).
    pub fn without_user(mut self) -> Self {
        self.user = false;
        self
    }

    /// Serve as `sessiongate serve` does (`server::serve_on`), without an admin listener.
    pub fn serve_on(mut self) -> Self {
        self.serve = Serve::Production { admin: false };
        self
    }

    /// Serve as `sessiongate serve` does, with an admin listener on another free port
    /// ([`Gateway::admin`]).
    pub fn admin_listener(mut self) -> Self {
        self.serve = Serve::Production { admin: true };
        self
    }

    /// Serve with `serve(state, listener)` (spawned) instead.
    pub fn serve_with<F>(mut self, serve: impl FnOnce(AppState, TcpListener) -> F + Send + 'static) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.serve = Serve::With(Box::new(move |state, listener| Box::pin(serve(state, listener))));
        self
    }

    pub async fn start(self) -> Gateway {
        let (temp, data_dir) = match self.data_dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().unwrap();
                let d = t.path().to_owned();
                (Some(t), d)
            }
        };
        let listener = match self.listener {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let addr = listener.local_addr().unwrap();
        let admin = match self.serve {
            Serve::Production { admin: true } => Some(TcpListener::bind("127.0.0.1:0").await.unwrap()),
            _ => None,
        };
        let admin_addr = admin.as_ref().map(|l| l.local_addr().unwrap());

        let mut table: toml::Table = self.toml.parse().unwrap_or_else(|e| panic!("test config is TOML: {e}"));
        let argon2 = toml::Table::from_iter([
            ("memory_kib".to_owned(), toml::Value::from(1024)),
            ("iterations".to_owned(), 1.into()),
            ("parallelism".to_owned(), 1.into()),
        ]);
        let mut set = vec![
            ("data_dir".to_owned(), data_dir.display().to_string().into()),
            ("server.listen".to_owned(), addr.to_string().into()),
            ("users.argon2".to_owned(), argon2.into()),
            ("auth.bootstrap_admin".to_owned(), false.into()),
        ];
        if let Some(a) = admin_addr {
            set.push(("server.admin_listen".to_owned(), a.to_string().into()));
        }
        for (key, value) in set.into_iter().chain(self.set) {
            set_key(&mut table, &key, value);
        }
        let text = toml::to_string(&table).unwrap();
        let mut cfg = load_str(&text).unwrap_or_else(|e| panic!("test config loads: {e}\n{text}"));
        for edit in self.edits {
            edit(&mut cfg);
        }
        let settings = Arc::new(cfg.validate().expect("test config valid"));
        let shared = self.clock.clone().map_or_else(SharedClock::system, |c| SharedClock::new(c));
        let stores = server::open_stores_with_clock(&settings, shared).await.unwrap();
        let config = data_dir.join("gateway.toml");
        std::fs::write(&config, &text).unwrap();
        let user_id = if self.user {
            let hash = stores.passwords.hash(PASSWORD.into()).await.unwrap();
            let user = stores
                .users
                .create(NewUser { username: USER.into(), email: Some(EMAIL.into()), password_hash: hash })
                .await
                .unwrap();
            Some(user.id)
        } else {
            None
        };
        let state = AppState::new(settings, stores);
        let s = state.clone();
        match self.serve {
            Serve::Axum => {
                let app = server::app(s).into_make_service_with_connect_info::<SocketAddr>();
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            }
            Serve::Production { .. } => {
                tokio::spawn(async move { server::serve_on(s, listener, admin, std::future::pending()).await });
            }
            Serve::With(serve) => {
                tokio::spawn(serve(s, listener));
            }
        }
        Gateway {
            url: format!("http://{addr}"),
            addr,
            admin: admin_addr.map(|a| format!("http://{a}")),
            state,
            user_id,
            clock: self.clock,
            data_dir,
            config,
            _temp: temp,
        }
    }
}

/// `table.a.b = value` for `dotted` = `"a.b"`, creating the tables on the way.
fn set_key(table: &mut toml::Table, dotted: &str, value: toml::Value) {
    let mut keys: Vec<&str> = dotted.split('.').collect();
    let last = keys.pop().unwrap();
    let mut t = table;
    for k in keys {
        t = t
            .entry(k)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap_or_else(|| panic!("`{k}` of `{dotted}` is not a table in the test config"));
    }
    t.insert(last.to_owned(), value);
}

pub struct Gateway {
    /// `http://127.0.0.1:PORT`, also the gateway's `public_url` unless the TOML sets one.
    pub url: String,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` of the admin listener, when started with one.
    pub admin: Option<String>,
    pub state: AppState,
    user_id: Option<i64>,
    clock: Option<Arc<ManualClock>>,
    data_dir: PathBuf,
    config: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Gateway {
    /// Alice's user id.
    pub fn user_id(&self) -> i64 {
        self.user_id.expect("the gateway was started without user alice")
    }

    /// The gateway's clock, to move time forward instead of sleeping.
    pub fn clock(&self) -> &ManualClock {
        self.clock.as_deref().expect("the gateway was started on the system clock (no `.clock(…)`)")
    }

    /// The data directory (SQLite file, secret key, default mail outbox, `gateway.toml`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The gateway's configuration as TOML (`-c` of CLI runs against its data).
    pub fn config(&self) -> &Path {
        &self.config
    }
}

// ---------------------------------------------------------------------------------------------
// The client

/// A browser-like client with its own cookie jar; no redirects followed. [`url`](Self::url)
/// takes a path from the root, [`api`](Self::api) and the request helpers one under
/// `/api/auth`. [`with_ip`](Self::with_ip) makes the helpers send `X-Forwarded-For` (for
/// gateways that trust the loopback proxy).
pub struct Browser {
    pub http: reqwest::Client,
    pub jar: Arc<Jar>,
    pub base: String,
    ip: Option<String>,
}

impl Browser {
    pub fn new(gw: &Gateway) -> Self {
        let jar = Arc::new(Jar::default());
        Browser { http: http_client(&jar, None), jar, base: gw.url.clone(), ip: None }
    }

    /// The helpers' requests come from `ip`, as told by a trusted proxy.
    pub fn with_ip(mut self, ip: &str) -> Self {
        self.ip = Some(ip.to_owned());
        self
    }

    /// Send `User-Agent: agent`.
    pub fn user_agent(mut self, agent: &str) -> Self {
        self.http = http_client(&self.jar, Some(agent));
        self
    }

    /// `path` (from the root) on the gateway.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `path` of the auth API (under `/api/auth`).
    pub fn api(&self, path: &str) -> String {
        format!("{}/api/auth{path}", self.base)
    }

    /// The `Cookie` header the jar would send to the gateway.
    pub fn cookie_header(&self) -> Option<String> {
        self.jar.cookies(&self.base.parse().unwrap()).map(|v| v.to_str().unwrap().to_owned())
    }

    /// The value of one cookie in the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookie_header()?.split("; ").find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }

    pub fn set_cookie(&self, cookie: &str) {
        self.jar.add_cookie_str(&format!("{cookie}; Path=/"), &self.base.parse().unwrap());
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, self.api(path));
        match &self.ip {
            Some(ip) => req.header("x-forwarded-for", ip),
            None => req,
        }
    }

    /// `GET /api/auth/csrf`: a masked token (and the cookie).
    pub async fn csrf(&self) -> String {
        let v: Value = self.request(Method::GET, "/csrf").send().await.unwrap().json().await.unwrap();
        v["csrfToken"].as_str().unwrap().to_owned()
    }

    /// `method /api/auth{path}` with the CSRF `token` and, if any, the JSON `body`.
    pub async fn send(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Response {
        let mut req = self.request(method, path).header("X-CSRFToken", token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn login_as(&self, user: &str, password: &str) -> Response {
        let token = self.csrf().await;
        self.post("/login", &token, json!({ "username": user, "password": password })).await
    }

    /// Log in as alice; returns the rotated CSRF token from the body.
    pub async fn login(&self) -> String {
        let res = self.login_as(USER, PASSWORD).await;
        assert_eq!(res.status(), 200, "login failed (from {:?})", self.ip);
        let v: Value = res.json().await.unwrap();
        v["csrfToken"].as_str().unwrap().to_owned()
    }

    /// The status of `GET /api/auth/session`.
    pub async fn whoami(&self) -> u16 {
        self.request(Method::GET, "/session").send().await.unwrap().status().as_u16()
    }

    /// The current session's public id (`GET /api/auth/session`).
    pub async fn session_id(&self) -> String {
        let v: Value = self.request(Method::GET, "/session").send().await.unwrap().json().await.unwrap();
        v["session"]["id"].as_str().unwrap().to_owned()
    }
}

fn http_client(jar: &Arc<Jar>, agent: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().cookie_provider(jar.clone()).redirect(reqwest::redirect::Policy::none());
    if let Some(a) = agent {
        b = b.user_agent(a.to_owned());
    }
    b.build().unwrap()
}

/// Status, problem `code` and body of a problem response (asserting its content type).
pub async fn problem(res: Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(ct, "application/problem+json", "problem content type for {status} {v}");
    (status, v["code"].as_str().unwrap_or("").to_owned(), v)
}
