//! An in-process gateway on a real TCP port with a real SQLite file, and a cookie-aware client.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Client, Response};
use serde_json::{Value, json};
use sessiongate::api::AppState;
use sessiongate::clock::{ManualClock, SharedClock};
use sessiongate::config::{Config, load_str};
use sessiongate::server;
use sessiongate::users::NewUser;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct Gateway {
    pub url: String,
    pub state: AppState,
    /// The sessions' and second factor's clock: it stands still at [`EPOCH`] until a test
    /// moves it (`gw.clock.advance(…)`), so no test sleeps for an expiry or a TOTP step.
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// Where every test gateway's clock starts: one second into a TOTP time step, the same for
/// the whole test binary, so codes computed from it match the server's whatever the wall clock
/// does meanwhile.
pub fn epoch() -> i64 {
    static EPOCH: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(|| chrono::Utc::now().timestamp() / 30 * 30 + 1)
}

/// Start a gateway configured by `toml` (plus a temp data dir and cheap Argon2), with user
/// `alice` created.
pub async fn start(toml: &str) -> Gateway {
    start_with(toml, |_| {}).await
}

pub async fn start_with(toml: &str, edit: impl FnOnce(&mut Config)) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = load_str(toml).expect("test config loads");
    cfg.data_dir = dir.path().to_path_buf();
    cfg.server.listen = addr.to_string();
    cfg.users.argon2 = sessiongate::password::Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };
    cfg.auth.bootstrap_admin = false;
    edit(&mut cfg);
    let settings = Arc::new(cfg.validate().expect("test config valid"));
    let clock = ManualClock::starting_at(epoch());
    let stores = server::open_stores_with_clock(&settings, SharedClock::new(clock.clone())).await.unwrap();
    let hash = stores.passwords.hash(PASSWORD.into()).await.unwrap();
    stores
        .users
        .create(NewUser { username: USER.into(), email: Some("alice@example.com".into()), password_hash: hash })
        .await
        .unwrap();
    let state = AppState::new(settings, stores);
    let app = server::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Gateway { url: format!("http://{addr}"), state, clock, _dir: dir }
}

impl Gateway {
    /// The gateway's data directory (SQLite file, secret key, default mail outbox).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

/// A browser-like client: its own cookie jar.
pub struct Browser {
    pub client: Client,
    pub jar: Arc<Jar>,
    pub base: String,
}

impl Browser {
    pub fn new(gw: &Gateway) -> Self {
        let jar = Arc::new(Jar::default());
        let client =
            Client::builder().cookie_provider(jar.clone()).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { client, jar, base: gw.url.clone() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/auth{path}", self.base)
    }

    /// The value of one of our cookies in the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = self.base.parse().unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().unwrap().split("; ").find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }

    pub fn set_cookie(&self, cookie: &str) {
        self.jar.add_cookie_str(&format!("{cookie}; Path=/"), &self.base.parse().unwrap());
    }

    pub async fn csrf(&self) -> String {
        let v: Value = self.client.get(self.url("/csrf")).send().await.unwrap().json().await.unwrap();
        v["csrfToken"].as_str().unwrap().to_owned()
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.client.post(self.url(path)).header("X-CSRFToken", token).json(&body).send().await.unwrap()
    }

    pub async fn login_as(&self, user: &str, password: &str) -> Response {
        let token = self.csrf().await;
        self.post("/login", &token, json!({ "username": user, "password": password })).await
    }

    /// Log in as alice and return the token from the body.
    pub async fn login(&self) -> String {
        let res = self.login_as(USER, PASSWORD).await;
        assert_eq!(res.status(), 200, "login failed");
        let v: Value = res.json().await.unwrap();
        v["csrfToken"].as_str().unwrap().to_owned()
    }

    pub async fn whoami(&self) -> u16 {
        self.client.get(self.url("/session")).send().await.unwrap().status().as_u16()
    }
}

pub use crate::support::problem;
