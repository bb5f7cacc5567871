//! Helpers shared by the real-TCP integration tests: an in-process gateway on 127.0.0.1:0 with
//! a temporary data dir and cheap Argon2, user `alice`, and a cookie-keeping client.
//! Each test binary uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod authenticator;
pub mod pg;

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};
use sessiongate::api::AppState;
use sessiongate::config::load_str;
use sessiongate::server;
use sessiongate::users::NewUser;

pub const USER: &str = "alice";
pub const EMAIL: &str = "alice@example.com";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct Gateway {
    /// `http://127.0.0.1:PORT`, also the gateway's `public_url`.
    pub url: String,
    pub addr: SocketAddr,
    pub state: AppState,
    /// Alice's user id.
    pub user_id: i64,
    pub dir: tempfile::TempDir,
}

/// Start a gateway configured by `toml`; `data_dir`, `server.listen`, a memory session store
/// (unless `toml` names one), cheap Argon2 and no bootstrap admin are filled in.
pub async fn start_gateway(toml: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = load_str(toml).expect("test config loads");
    cfg.data_dir = dir.path().to_path_buf();
    cfg.server.listen = addr.to_string();
    if !toml.contains("[session]") {
        cfg.session.store = "memory".into();
    }
    cfg.users.argon2 = sessiongate::password::Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };
    cfg.auth.bootstrap_admin = false;
    let settings = Arc::new(cfg.validate().expect("test config valid"));
    let stores = server::open_stores(&settings).await.unwrap();
    let hash = stores.passwords.hash(PASSWORD.into()).await.unwrap();
    let user = stores
        .users
        .create(NewUser { username: USER.into(), email: Some(EMAIL.into()), password_hash: hash })
        .await
        .unwrap();
    let state = AppState::new(settings, stores);
    let app = server::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Gateway { url: format!("http://{addr}"), addr, state, user_id: user.id, dir }
}

/// A browser-like client with its own cookie jar; no redirects followed.
pub struct Client {
    pub http: reqwest::Client,
    pub jar: Arc<Jar>,
    pub base: String,
}

impl Client {
    pub fn new(gw: &Gateway) -> Self {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Client { http, jar, base: gw.url.clone() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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

    /// `GET /api/auth/csrf`: a masked token (and the cookie).
    pub async fn csrf(&self) -> String {
        let v: Value = self.http.get(self.url("/api/auth/csrf")).send().await.unwrap().json().await.unwrap();
        v["csrfToken"].as_str().unwrap().to_owned()
    }

    /// Log in as alice; returns the rotated CSRF token from the body.
    pub async fn login(&self) -> String {
        let token = self.csrf().await;
        let res = self
            .http
            .post(self.url("/api/auth/login"))
            .header("X-CSRFToken", token)
            .json(&json!({ "username": USER, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "login failed");
        let v: Value = res.json().await.unwrap();
        v["csrfToken"].as_str().unwrap().to_owned()
    }

    /// The current session's public id (`GET /api/auth/session`).
    pub async fn session_id(&self) -> String {
        let v: Value = self.http.get(self.url("/api/auth/session")).send().await.unwrap().json().await.unwrap();
        v["session"]["id"].as_str().unwrap().to_owned()
    }
}

/// Status and problem `code` of a response, asserting it is problem JSON.
/// Status, problem `code` and body of a problem response (asserting its content type).
pub async fn problem(res: reqwest::Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(ct, "application/problem+json", "problem content type for {status} {v}");
    (status, v["code"].as_str().unwrap_or("").to_owned(), v)
}
