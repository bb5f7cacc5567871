//! Scale-out: two `sessiongate serve` processes sharing Redis (sessions, rate limits) and
//! PostgreSQL (users), and what they do when one of those servers goes away.
//!
//! Run with: `cargo test --test scale_out`
//!
//! Needs PostgreSQL (`postgres://postgres@127.0.0.1:5432/test`, trust auth) and Redis
//! (`redis://127.0.0.1:6379`); the tests fail — never skip — when they are not running. Both are
//! shared with other tests, so nothing here stops, flushes or reconfigures them: every test uses
//! a fresh PostgreSQL schema, a random Redis key prefix and unique usernames, and outages are
//! simulated by a [`Forwarder`] — a TCP relay owned by the test, sitting between the gateways and
//! the server, that can cut every connection (and refuse new ones) or stall them (a black hole),
//! then let traffic through again.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::redis::AsyncCommands;
use reqwest::cookie::Jar;
use reqwest::{Client, Response};
use serde_json::{Value, json};
use sessiongate::db::connect_postgres;
use sessiongate::password::{Argon2Params, Passwords};
use sessiongate::secret::random_b64;
use sessiongate::users::postgres::PostgresUsers;
use sessiongate::users::{NewUser, UserStore};
use sqlx::PgPool;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;

mod support;

use support::pg::{REDIS_HELP, Schema};

const PG: &str = "127.0.0.1:5432";
const REDIS: &str = "127.0.0.1:6379";
const PASSWORD: &str = "correct horse battery staple";
/// Upper bound for one request while a store is down. Stores answer "unavailable" within 2–3 s;
/// this is a hang check with room for a loaded 2-core machine, not a benchmark.
const FAIL_FAST: Duration = Duration::from_secs(6);

fn unique() -> String {
    random_b64(9).replace(['-', '_'], "x").to_lowercase()
}

// ---------------------------------------------------------------------------------------------
// A TCP relay the test can cut, stall and restore.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Relay bytes both ways.
    Open,
    /// Drop every live connection; accept new ones and close them at once (like a stopped server).
    Cut,
    /// Keep connections open but relay nothing, and hold new ones likewise (a black hole).
    /// Leaving this mode drops them.
    Stall,
}

struct Forwarder {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl Forwarder {
    async fn start(target: &str) -> Forwarder {
        let target: SocketAddr = target.parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, _) = watch::channel(Mode::Open);
        let modes = mode.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let mut rx = modes.subscribe();
                tokio::spawn(async move { relay(client, target, &mut rx).await });
            }
        });
        Forwarder { addr, mode }
    }

    fn set(&self, m: Mode) {
        self.mode.send_replace(m);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // Ends every relay; the accept loop then closes new connections at once.
        self.mode.send_replace(Mode::Cut);
    }
}

async fn relay(mut client: TcpStream, target: SocketAddr, mode: &mut watch::Receiver<Mode>) {
    let first = *mode.borrow_and_update();
    match first {
        Mode::Cut => return,
        Mode::Stall => {
            let _ = mode.changed().await;
            return;
        }
        Mode::Open => {}
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else { return };
    let next = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => return,
        m = async {
            loop {
                if mode.changed().await.is_err() {
                    return Mode::Cut;
                }
                let m = *mode.borrow_and_update();
                if m != Mode::Open {
                    return m;
                }
            }
        } => m,
    };
    // The copy has stopped. A stall holds both sockets silent until the mode changes again.
    if next == Mode::Stall {
        let _ = mode.changed().await;
    }
    drop((client, upstream));
}

// ---------------------------------------------------------------------------------------------
// Shared servers, isolated per test.

struct Pg {
    admin: PgPool,
    schema: String,
    /// A pool on the test's schema (migrated), for creating users.
    pool: PgPool,
}

impl Pg {
    /// A fresh schema, migrated (`support::pg::Schema`: test schemas left behind over an hour
    /// ago are dropped first).
    async fn fresh() -> Pg {
        let schema = Schema::new("sg_scale").await;
        let pool = connect_postgres(&schema.url).await.unwrap_or_else(|e| panic!("PostgreSQL at {PG}: {e}"));
        Pg { admin: schema.admin, schema: schema.name, pool }
    }

    /// The URL of this schema through `addr` (the server itself, or a forwarder).
    fn url(&self, addr: impl std::fmt::Display) -> String {
        pg_url(addr, &self.schema)
    }

    async fn add_user(&self, name: &str) {
        let passwords = Passwords::new(&cheap_argon2()).unwrap();
        let hash = passwords.hash(PASSWORD.into()).await.unwrap();
        PostgresUsers::new(self.pool.clone())
            .create(NewUser { username: name.into(), email: None, password_hash: hash })
            .await
            .unwrap();
    }

    async fn drop_schema(&self) {
        self.pool.close().await;
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)).execute(&self.admin).await;
    }
}

/// A URL whose connections use `schema` (tables isolated per test).
fn pg_url(addr: impl std::fmt::Display, schema: &str) -> String {
    format!("postgres://postgres@{addr}/test?options=-c%20search_path%3D{schema}")
}

fn cheap_argon2() -> Argon2Params {
    Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 }
}

async fn raw_redis() -> ::redis::aio::MultiplexedConnection {
    let client = ::redis::Client::open(format!("redis://{REDIS}")).unwrap();
    tokio::time::timeout(Duration::from_secs(5), client.get_multiplexed_async_connection())
        .await
        .unwrap_or_else(|_| panic!("Redis at {REDIS} did not answer: {REDIS_HELP}"))
        .unwrap_or_else(|e| panic!("Redis is not reachable at {REDIS} ({e}): {REDIS_HELP}"))
}

async fn redis_keys(prefix: &str) -> Vec<String> {
    let mut conn = raw_redis().await;
    let mut keys: Vec<String> = conn.keys(format!("{prefix}*")).await.unwrap();
    keys.sort();
    keys
}

/// Move the Redis limiters' clock forward by `by` without waiting: every time they stored under
/// `prefix` (see the key tables of `sessiongate::ratelimit::redis`) moves back instead — the
/// failure hashes' `t`, the sorted sets' scores, the GCRA instants — all in µs. Redis's own
/// clock (`TIME`, shared by every instance) is what the scripts read, so it is the state that
/// ages, as it would after `by` had passed.
/// Returns how many keys it aged.
async fn age_redis_limits(prefix: &str, by: Duration) -> usize {
    let us = i64::try_from(by.as_micros()).unwrap();
    let mut conn = raw_redis().await;
    let keys: Vec<String> = conn.keys(format!("{prefix}rl:*")).await.unwrap();
    let aged = keys.len();
    for key in keys {
        let kind: String = ::redis::cmd("TYPE").arg(&key).query_async(&mut conn).await.unwrap();
        match kind.as_str() {
            "hash" => {
                let _: i64 = conn.hincr(&key, "t", -us).await.unwrap();
            }
            "zset" => {
                let members: Vec<(String, f64)> = conn.zrange_withscores(&key, 0, -1).await.unwrap();
                for (m, score) in members {
                    let _: i64 = conn.zadd(&key, m, score - us as f64).await.unwrap();
                }
            }
            "string" => {
                let _: i64 = conn.decr(&key, us).await.unwrap();
            }
            other => panic!("unexpected {other} at {key}"),
        }
    }
    aged
}

async fn drop_redis_keys(prefix: &str) {
    let keys = redis_keys(prefix).await;
    if !keys.is_empty() {
        let _: Result<(), _> = raw_redis().await.del(keys).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway processes.

struct Gateway {
    url: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Where one gateway finds its stores.
struct Stores<'a> {
    session_store: &'a str,
    session_url: String,
    prefix: &'a str,
    users_url: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Gateway {
    /// `sessiongate serve` on its own port with these stores; `extra` is appended to the config.
    async fn spawn(stores: &Stores<'_>, extra: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let Argon2Params { memory_kib, iterations, parallelism } = cheap_argon2();
        let config = format!(
            r#"public_url = "{url}"
data_dir = "{data}"
secret_key = "scale-out-test-shared-secret-0123456789"

[server]
listen = "127.0.0.1:{port}"

[auth]
bootstrap_admin = false

[session]
store = "{session_store}"
url = "{session_url}"
key_prefix = "{prefix}"
idle_timeout = "1h"
absolute_timeout = "1h"

[users]
store = "postgres"
url = "{users_url}"
argon2 = {{ memory_kib = {memory_kib}, iterations = {iterations}, parallelism = {parallelism} }}
{extra}
"#,
            data = dir.path().display(),
            session_store = stores.session_store,
            session_url = stores.session_url,
            prefix = stores.prefix,
            users_url = stores.users_url,
        );
        let path = dir.path().join("sessiongate.toml");
        std::fs::write(&path, config).unwrap();
        let log = dir.path().join("gateway.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sessiongate"))
            .args(["serve", "-c"])
            .arg(&path)
            .env("RUST_LOG", "sessiongate=info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sessiongate");
        let mut gw = Gateway { url, child, log, _dir: dir };
        gw.wait_ready().await;
        gw
    }

    async fn wait_ready(&mut self) {
        let client = Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("gateway exited ({status}) during start:\n{}", self.log_text());
            }
            if let Ok(res) = client.get(format!("{}/healthz", self.url)).send().await
                && res.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "gateway did not start:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of the log, for failure messages.
    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        format!("gateway log (tail):\n{}", lines[lines.len().saturating_sub(30)..].join("\n"))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Still running and never panicked.
    fn assert_alive(&mut self) {
        assert!(self.child.try_wait().unwrap().is_none(), "gateway exited:\n{}", self.log_text());
        let log = self.log_text();
        assert!(!log.contains("panicked"), "gateway panicked:\n{log}");
    }
}

// ---------------------------------------------------------------------------------------------
// A browser-like client. Cookies do not depend on the port, so one jar serves both gateways
// (127.0.0.1:A and 127.0.0.1:B), as one browser behind a load balancer would.

#[derive(Clone)]
struct Browser {
    client: Client,
}

impl Browser {
    fn new() -> Browser {
        let client = Client::builder()
            .cookie_provider(Arc::new(Jar::default()))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Browser { client }
    }

    async fn csrf(&self, gw: &Gateway) -> String {
        let v: Value = self.client.get(format!("{}/api/auth/csrf", gw.url)).send().await.unwrap().json().await.unwrap();
        v["csrfToken"].as_str().unwrap().to_owned()
    }

    async fn send(&self, gw: &Gateway, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
        let token = self.csrf(gw).await;
        let mut req = self.client.request(method, format!("{}/api/auth{path}", gw.url)).header("X-CSRFToken", token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    async fn login(&self, gw: &Gateway, user: &str, password: &str) -> Response {
        self.send(gw, reqwest::Method::POST, "/login", Some(json!({ "username": user, "password": password }))).await
    }

    async fn login_ok(&self, gw: &Gateway, user: &str) {
        let res = self.login(gw, user, PASSWORD).await;
        let status = res.status();
        assert_eq!(status, 200, "login as {user} on {}: {:?}\n{}", gw.url, res.text().await, gw.log_tail());
    }

    async fn whoami(&self, gw: &Gateway) -> Response {
        self.client.get(format!("{}/api/auth/session", gw.url)).send().await.unwrap()
    }

    async fn whoami_status(&self, gw: &Gateway) -> u16 {
        self.whoami(gw).await.status().as_u16()
    }

    /// The public id of this browser's session.
    async fn session_id(&self, gw: &Gateway) -> String {
        let v: Value = self.whoami(gw).await.json().await.unwrap();
        v["session"]["id"].as_str().expect("logged in").to_owned()
    }
}

/// Status and problem `code` of a response.
async fn problem(res: Response) -> (u16, String) {
    let status = res.status().as_u16();
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(ct, "application/problem+json", "problem content type for {status} {v}");
    (status, v["code"].as_str().unwrap_or("").to_owned())
}

/// Run `f`, asserting it answers within [`FAIL_FAST`].
async fn fast<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let start = Instant::now();
    let out =
        tokio::time::timeout(FAIL_FAST, f).await.unwrap_or_else(|_| panic!("{what}: no answer within {FAIL_FAST:?}"));
    assert!(start.elapsed() < FAIL_FAST, "{what} took {:?}", start.elapsed());
    out
}

/// Poll until `whoami` answers 200 (recovery without restart).
async fn until_whoami_ok(b: &Browser, gw: &Gateway, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let status = b.whoami_status(gw).await;
        if status == 200 {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "no recovery within {within:?}: whoami still {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A test's isolated environment: schema, prefix, and the two gateways' stores.
struct Env {
    pg: Pg,
    prefix: String,
}

impl Env {
    async fn new() -> Env {
        let _ = raw_redis().await;
        Env { pg: Pg::fresh().await, prefix: format!("sgtest:{}:", unique()) }
    }

    fn stores(&self, redis: impl std::fmt::Display, pg: impl std::fmt::Display) -> Stores<'_> {
        Stores {
            session_store: "redis",
            session_url: format!("redis://{redis}"),
            prefix: &self.prefix,
            users_url: self.pg.url(pg),
        }
    }

    async fn cleanup(self) {
        drop_redis_keys(&self.prefix).await;
        self.pg.drop_schema().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Two instances, one state.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_revocations_are_shared_between_instances() {
    let env = Env::new().await;
    let user = format!("u{}", unique());
    env.pg.add_user(&user).await;
    let stores = env.stores(REDIS, PG);
    let (a, b) = tokio::join!(Gateway::spawn(&stores, ""), Gateway::spawn(&stores, ""));

    // Log in on A, known on B.
    let laptop = Browser::new();
    laptop.login_ok(&a, &user).await;
    assert_eq!(laptop.whoami_status(&b).await, 200, "a session made on A is valid on B");
    let laptop_id = laptop.session_id(&b).await;

    // A second device, on B; it sees both sessions from either instance.
    let phone = Browser::new();
    phone.login_ok(&b, &user).await;
    let list: Value = phone.send(&a, reqwest::Method::GET, "/sessions", None).await.json().await.unwrap();
    let ids: Vec<&str> = list["sessions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(ids.contains(&laptop_id.as_str()));

    // Revoke the laptop's session on B: A rejects it on the very next request.
    let res = phone.send(&b, reqwest::Method::DELETE, &format!("/sessions/{laptop_id}"), None).await;
    assert_eq!(res.status(), 204);
    let (status, code) = problem(laptop.whoami(&a).await).await;
    assert_eq!((status, code.as_str()), (401, "not_authenticated"), "A honours B's revocation at once");

    // Sessions live in the shared Redis under the configured prefix.
    let keys = redis_keys(&env.prefix).await;
    assert!(keys.iter().any(|k| k.ends_with(":idx")), "session keys under the prefix: {keys:?}");

    // revoke-others on B: A rejects at once.
    laptop.login_ok(&a, &user).await;
    assert_eq!(laptop.whoami_status(&a).await, 200);
    let res = phone.send(&b, reqwest::Method::POST, "/sessions/revoke-others", Some(json!({}))).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["revoked"], 1, "{v}");
    assert_eq!(laptop.whoami_status(&a).await, 401, "A honours B's revoke-others at once");
    assert_eq!(phone.whoami_status(&a).await, 200, "the revoking session stays");

    // Logout on A ends the session on B.
    let res = phone.send(&a, reqwest::Method::POST, "/logout", None).await;
    assert_eq!(res.status(), 204);
    assert_eq!(phone.whoami_status(&b).await, 401);

    let (mut a, mut b) = (a, b);
    a.assert_alive();
    b.assert_alive();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_shared_between_instances() {
    let env = Env::new().await;
    let (target, other) = (format!("u{}", unique()), format!("u{}", unique()));
    env.pg.add_user(&target).await;
    env.pg.add_user(&other).await;
    let limits = "[rate_limit]\nlogin_per_account = \"3/1m\"\nlogin_per_ip = \"7/10m\"\n";
    let stores = env.stores(REDIS, PG);
    let (a, b) = tokio::join!(Gateway::spawn(&stores, limits), Gateway::spawn(&stores, limits));
    let gws = [&a, &b];
    let browser = Browser::new();

    // Per account: three failures spread over A and B lock the account on both.
    for i in 0..3 {
        let (status, code) = problem(browser.login(gws[i % 2], &target, "wrong password!").await).await;
        assert_eq!((status, code.as_str()), (401, "invalid_credentials"), "failure {i}");
    }
    for gw in gws {
        let res = browser.login(gw, &target, PASSWORD).await;
        let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        let (status, code) = problem(res).await;
        assert_eq!((status, code.as_str()), (429, "rate_limited"), "account locked on {}", gw.url);
    }

    // Per IP: 5 attempts so far; two more pass (on either instance), the next is refused.
    for gw in gws {
        let (status, _) = problem(browser.login(gw, &other, "wrong password!").await).await;
        assert_eq!(status, 401);
    }
    for gw in gws {
        let (status, code) = problem(browser.login(gw, &other, PASSWORD).await).await;
        assert_eq!((status, code.as_str()), (429, "rate_limited"), "IP limit reached across instances");
    }

    // The counters are in Redis under the session store's prefix, hash-tagged.
    let keys = redis_keys(&env.prefix).await;
    let ip_key = format!("{}rl:{{login_ip:127.0.0.1}}", env.prefix);
    assert!(keys.contains(&ip_key), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with(&format!("{}rl:{{login_account:", env.prefix))), "{keys:?}");
    let ttl: i64 = raw_redis().await.pttl(&ip_key).await.unwrap();
    assert!(ttl > 0 && ttl <= 600_000, "limiter keys expire with the rate's period: {ttl}");

    let (mut a, mut b) = (a, b);
    a.assert_alive();
    b.assert_alive();
    env.cleanup().await;
}

/// Adversarial finding: in Redis, too, failures spaced beyond the window used to start again
/// from zero, so a guesser who waited `W` between tries never backed off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spaced_failures_still_add_up_in_redis() {
    let env = Env::new().await;
    let target = format!("u{}", unique());
    env.pg.add_user(&target).await;
    let limits = "[rate_limit]\nlogin_per_account = \"2/1s\"\nlogin_per_ip = \"1000/1m\"\n";
    let stores = env.stores(REDIS, PG);
    let (a, b) = tokio::join!(Gateway::spawn(&stores, limits), Gateway::spawn(&stores, limits));
    let browser = Browser::new();
    assert_eq!(problem(browser.login(&a, &target, "wrong password!").await).await.0, 401);
    assert!(age_redis_limits(&env.prefix, Duration::from_millis(1300)).await > 0, "the failure is in Redis");
    assert_eq!(problem(browser.login(&b, &target, "wrong password!").await).await.0, 401);
    let (status, code) = problem(browser.login(&a, &target, PASSWORD).await).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"), "two failures in a row, 1.3 s apart");
    let (mut a, mut b) = (a, b);
    a.assert_alive();
    b.assert_alive();
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// Outages: fail closed, fast; recover without restart; lose nothing acknowledged.

/// Requests a client keeps sending during an outage: (status, duration) of each, or a transport
/// error (which would mean a crashed or hung gateway).
fn background_load(
    b: Browser,
    gw_url: String,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Vec<Result<(u16, Duration), String>>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while !*stop.borrow() {
            let start = Instant::now();
            let r = b.client.get(format!("{gw_url}/api/auth/session")).send().await;
            seen.push(r.map(|r| (r.status().as_u16(), start.elapsed())).map_err(|e| e.to_string()));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seen
    })
}

/// What the outage scenario checks, for whichever store `fwd` carries.
async fn outage_scenario(what: &str, fwd: &Forwarder, a: &mut Gateway, b: &mut Gateway, user: &str) {
    let main = Browser::new();
    main.login_ok(a, user).await;
    assert_eq!(main.whoami_status(b).await, 200);

    // Sessions to revoke while the store goes away, and the revoker.
    let victims: Vec<Browser> = (0..6).map(|_| Browser::new()).collect();
    for v in &victims {
        v.login_ok(a, user).await;
    }
    let mut victim_ids = Vec::new();
    for v in &victims {
        victim_ids.push(v.session_id(a).await);
    }
    // Pre-fetch CSRF tokens so the racing requests are a single round trip each.
    let (stop_tx, stop_rx) = watch::channel(false);
    let load = [
        background_load(main.clone(), a.url.clone(), stop_rx.clone()),
        background_load(main.clone(), b.url.clone(), stop_rx),
    ];

    // Race revocations and logins against the cut: each one is either acknowledged (and must
    // hold after recovery) or refused.
    let revoker = main.clone();
    let token = revoker.csrf(a).await;
    let mut racing = Vec::new();
    for (i, id) in victim_ids.iter().enumerate() {
        let (client, url, token) = (
            revoker.client.clone(),
            format!("{}/api/auth/sessions/{id}", if i % 2 == 0 { &a.url } else { &b.url }),
            token.clone(),
        );
        racing.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(15 * i as u64)).await;
            client.delete(url).header("X-CSRFToken", token).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
        }));
    }
    let newcomers: Vec<Browser> = (0..4).map(|_| Browser::new()).collect();
    let mut logins = Vec::new();
    for (i, n) in newcomers.iter().enumerate() {
        let (n, gw_url, token, user) =
            (n.clone(), if i % 2 == 0 { a.url.clone() } else { b.url.clone() }, n.csrf(a).await, user.to_owned());
        logins.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 * i as u64)).await;
            n.client
                .post(format!("{gw_url}/api/auth/login"))
                .header("X-CSRFToken", token)
                .json(&json!({ "username": user, "password": PASSWORD }))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }));
    }
    tokio::time::sleep(Duration::from_millis(40)).await;
    fwd.set(Mode::Cut);
    let mut revoked = Vec::new();
    for (i, r) in racing.into_iter().enumerate() {
        let status = r.await.unwrap();
        assert!([204, 503].contains(&status), "{what}: revocation during the cut answered {status}");
        if status == 204 {
            revoked.push(i);
        }
    }
    let mut logged_in = Vec::new();
    for (i, r) in logins.into_iter().enumerate() {
        let status = r.await.unwrap();
        assert!([200, 503].contains(&status), "{what}: login during the cut answered {status}");
        if status == 200 {
            logged_in.push(i);
        }
    }

    for (mode, gw) in [(Mode::Cut, &*a), (Mode::Stall, &*b)] {
        fwd.set(mode);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ctx = format!("{what} {mode:?} on {}", gw.url);
        // Authenticated requests: 503 overloaded, fast.
        let (status, code) = fast(&ctx, async { problem(main.whoami(gw).await).await }).await;
        assert_eq!((status, code.as_str()), (503, "overloaded"), "{ctx}: whoami");
        let url = |path: &str| format!("{}/api/auth{path}", gw.url);
        let (status, code) =
            fast(&ctx, async { problem(main.client.get(url("/sessions")).send().await.unwrap()).await }).await;
        assert_eq!((status, code.as_str()), (503, "overloaded"), "{ctx}: list sessions");
        // Logout cannot be acknowledged without the store.
        let logout = main.client.post(url("/logout")).header("X-CSRFToken", &token);
        let (status, code) = fast(&ctx, async { problem(logout.send().await.unwrap()).await }).await;
        assert_eq!((status, code.as_str()), (503, "overloaded"), "{ctx}: logout");
        // Login attempts fail closed (limiter or store unavailable).
        let stranger = Browser::new();
        let (status, code) = fast(&ctx, async { problem(stranger.login(gw, user, PASSWORD).await).await }).await;
        assert_eq!((status, code.as_str()), (503, "overloaded"), "{ctx}: login");
        // Readiness says so.
        let res = fast(&ctx, async { stranger.client.get(format!("{}/readyz", gw.url)).send().await.unwrap() }).await;
        assert_eq!(res.status(), 503, "{ctx}: readyz");
        // The SPA still loads, for anonymous visitors and (after the failed lookup) for users.
        let res = fast(&ctx, async { stranger.client.get(format!("{}/", gw.url)).send().await.unwrap() }).await;
        assert_eq!(res.status(), 200, "{ctx}: anonymous GET /");
        assert!(res.text().await.unwrap().contains("<html"), "{ctx}: SPA html");
        let res = fast(&ctx, async { main.client.get(format!("{}/", gw.url)).send().await.unwrap() }).await;
        assert_eq!(res.status(), 200, "{ctx}: GET / with a session cookie");
    }

    // Back: everything recovers without a restart.
    fwd.set(Mode::Open);
    let took = until_whoami_ok(&main, a, Duration::from_secs(15)).await;
    until_whoami_ok(&main, b, Duration::from_secs(15)).await;
    eprintln!(
        "{what}: recovered {took:?} after restore; {} of 6 revocations and {} of 4 logins acknowledged during the cut",
        revoked.len(),
        logged_in.len()
    );
    for gw in [&*a, &*b] {
        assert_eq!(Client::new().get(format!("{}/readyz", gw.url)).send().await.unwrap().status(), 200);
    }
    stop_tx.send_replace(true);
    for l in load {
        let seen = l.await.unwrap();
        assert!(seen.len() > 5, "{what}: background load ran");
        for r in &seen {
            let (status, took) =
                r.as_ref().unwrap_or_else(|e| panic!("{what}: request failed at transport level: {e}"));
            assert!([200, 503].contains(status), "{what}: background whoami answered {status}");
            assert!(*took < FAIL_FAST, "{what}: background whoami took {took:?}");
        }
        assert!(seen.iter().any(|r| matches!(r, Ok((503, _)))), "{what}: the outage was seen");
        let slowest = seen.iter().filter_map(|r| r.as_ref().ok()).map(|(_, d)| *d).max().unwrap_or_default();
        let refused = seen.iter().filter(|r| matches!(r, Ok((503, _)))).count();
        eprintln!("{what}: background whoami: {} requests, {refused} × 503, slowest {slowest:?}", seen.len());
    }

    // Nothing acknowledged was lost.
    for i in revoked {
        for gw in [&*a, &*b] {
            assert_eq!(
                victims[i].whoami_status(gw).await,
                401,
                "{what}: acknowledged revocation {i} holds on {}",
                gw.url
            );
        }
    }
    for i in logged_in {
        for gw in [&*a, &*b] {
            assert_eq!(newcomers[i].whoami_status(gw).await, 200, "{what}: acknowledged login {i} holds on {}", gw.url);
        }
    }
    // And new work goes through again.
    let later = Browser::new();
    later.login_ok(b, user).await;
    assert_eq!(later.whoami_status(a).await, 200);
    a.assert_alive();
    b.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_closed_and_recovers() {
    let env = Env::new().await;
    let user = format!("u{}", unique());
    env.pg.add_user(&user).await;
    let fwd = Forwarder::start(REDIS).await;
    let stores = env.stores(fwd.addr, PG);
    let (mut a, mut b) = tokio::join!(Gateway::spawn(&stores, ""), Gateway::spawn(&stores, ""));
    outage_scenario("redis", &fwd, &mut a, &mut b, &user).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_fails_closed_and_recovers() {
    let env = Env::new().await;
    let user = format!("u{}", unique());
    env.pg.add_user(&user).await;
    let fwd = Forwarder::start(PG).await;
    let stores = env.stores(REDIS, fwd.addr);
    let (mut a, mut b) = tokio::join!(Gateway::spawn(&stores, ""), Gateway::spawn(&stores, ""));
    outage_scenario("postgres users", &fwd, &mut a, &mut b, &user).await;
    env.cleanup().await;
}

/// Sessions and users both in PostgreSQL (no Redis): the same guarantees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sessions_outage_fails_closed_and_recovers() {
    let env = Env::new().await;
    let user = format!("u{}", unique());
    env.pg.add_user(&user).await;
    let fwd = Forwarder::start(PG).await;
    let stores = Stores { session_store: "postgres", session_url: env.pg.url(fwd.addr), ..env.stores(REDIS, fwd.addr) };
    let (mut a, mut b) = tokio::join!(Gateway::spawn(&stores, ""), Gateway::spawn(&stores, ""));
    outage_scenario("postgres sessions+users", &fwd, &mut a, &mut b, &user).await;
    env.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// The Redis limiters on their own: same semantics as the in-process ones, and fail closed.

mod limiter {
    use std::time::{Duration, Instant};

    use sessiongate::config::RateLimit;
    use sessiongate::ratelimit::{Limits, Refusal};

    use super::{REDIS, age_redis_limits, drop_redis_keys, unique};

    fn rate(s: &str) -> sessiongate::config::Rate {
        sessiongate::config::types::parse_rate(s).unwrap()
    }

    fn config() -> RateLimit {
        RateLimit { login_per_ip: rate("3/1m"), login_per_account: rate("2/1m"), ..RateLimit::default() }
    }

    /// The same checks against the in-process and the Redis limiters.
    async fn semantics(limits: &Limits) {
        let ip = "192.0.2.7";
        for i in 0..3 {
            assert_eq!(limits.login_ip.check(ip).await, Ok(()), "attempt {i} within the burst");
        }
        match limits.login_ip.check(ip).await {
            // One attempt back every 20 s.
            Err(Refusal::Limited(wait)) => assert!((1..=20).contains(&wait), "Retry-After {wait}"),
            other => panic!("over the burst: {other:?}"),
        }
        assert_eq!(limits.login_ip.check("192.0.2.8").await, Ok(()), "other IPs unaffected");

        // Wrong passwords back off per (account, client IP): see `sessiongate::ratelimit::account`.
        // An attempt is reserved (counted as a failure) before the password is checked.
        let account = "name:bob@example.com";
        let (ip, other_ip) = ("192.0.2.7".parse().unwrap(), "198.51.100.7".parse().unwrap());
        assert!(limits.login_account.reserve(account, ip).await.is_ok());
        assert!(limits.login_account.reserve(account, ip).await.is_ok(), "one failure of two allowed");
        match limits.login_account.reserve(account, ip).await {
            Err(Refusal::Limited(wait)) => assert!((50..=60).contains(&wait), "blocked for the window: {wait}"),
            other => panic!("after two failures: {other:?}"),
        }
        let t = limits.login_account.reserve(account, other_ip).await;
        assert!(t.is_ok(), "the user's own IP is not locked out");
        assert!(limits.login_account.reserve("name:carol", ip).await.is_ok(), "other accounts unaffected");
        limits.login_account.succeed(account, other_ip, t.ok()).await;
        limits.login_account.succeed(account, ip, None).await;
        let t = limits.login_account.reserve(account, ip).await;
        assert!(t.is_ok(), "a success clears the failures");
        limits.login_account.refund(account, ip, t.unwrap()).await;

        // 100 guesses released at once get exactly the allowance (reserve, then verify).
        let race =
            |n: usize| futures_util::future::join_all((0..n).map(|_| limits.login_account.reserve("name:race", ip)));
        let granted = race(100).await.into_iter().filter(Result::is_ok).count();
        assert_eq!(granted, 2, "parallel password guesses");
        let mfa = futures_util::future::join_all((0..100).map(|_| limits.mfa_account.reserve("user:42"))).await;
        assert_eq!(mfa.into_iter().filter(Result::is_ok).count(), 5, "parallel second-factor guesses");
    }

    #[tokio::test]
    async fn in_process_and_redis_limiters_agree() {
        semantics(&Limits::new(&config())).await;
        let prefix = format!("sgtest:{}:", unique());
        let limits = Limits::redis(&config(), &format!("redis://{REDIS}"), &prefix);
        assert_eq!(limits.backend, "redis");
        semantics(&limits).await;
        drop_redis_keys(&prefix).await;
    }

    #[tokio::test]
    async fn failures_slide_out_of_the_window() {
        let mut cfg = config();
        cfg.login_per_account = rate("2/2s");
        let prefix = format!("sgtest:{}:", unique());
        let limits = Limits::redis(&cfg, &format!("redis://{REDIS}"), &prefix);
        let ip = "192.0.2.7".parse().unwrap();
        limits.login_account.reserve("dave", ip).await.unwrap();
        limits.login_account.reserve("dave", ip).await.unwrap();
        assert!(matches!(limits.login_account.reserve("dave", ip).await, Err(Refusal::Limited(1..=2))));
        assert!(age_redis_limits(&prefix, Duration::from_millis(2100)).await > 0);
        assert!(limits.login_account.reserve("dave", ip).await.is_ok(), "the back-off is over");
        drop_redis_keys(&prefix).await;
    }

    #[tokio::test]
    async fn unreachable_redis_fails_closed_fast() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let limits = Limits::redis(&config(), &format!("redis://127.0.0.1:{port}"), "sgtest:");
        let start = Instant::now();
        assert_eq!(limits.login_ip.check("192.0.2.9").await, Err(Refusal::Unavailable));
        let ip = "192.0.2.9".parse().unwrap();
        assert_eq!(limits.login_account.reserve("erin", ip).await, Err(Refusal::Unavailable));
        assert_eq!(limits.mfa_account.reserve("user:1").await, Err(Refusal::Unavailable));
        limits.login_account.succeed("erin", ip, None).await; // logged, not fatal
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
        let bad = Limits::redis(&config(), "not a url", "sgtest:");
        assert_eq!(bad.signup_ip.check("192.0.2.9").await, Err(Refusal::Unavailable));
    }
}
