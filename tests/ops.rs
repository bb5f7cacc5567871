//! Operations and hardening (issue 7): abuse protection (per-IP back-off, account ceiling,
//! bounded Argon2 queue), request hygiene (URL length, request ids, configured connection
//! limits), the audit log (rows, log lines, CLI, webhook; never a secret), metrics on the
//! admin listener only, and the OpenAPI description.
//!
//! Run with: `cargo test --test ops`
//!
//! Each test runs a real gateway (`server::serve_on`: the public listener with its connection
//! limits, and the admin listener) on loopback ports with a SQLite file in a temp dir. Client
//! IPs are simulated with `X-Forwarded-For` from a trusted proxy (`127.0.0.1/32`). Log lines
//! of every gateway in this binary are captured (at debug level) for the secret checks; the
//! test client's own crates (reqwest, its cookie jar) are left out of the capture.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

mod support;

use reqwest::{Client, Response};
use serde_json::{Value, json};
use sessiongate::audit::{AuditEvent, AuditQuery, Event, Outcome};
use sessiongate::server;
use support::{Browser, Gateway, PASSWORD, USER, problem};

const ATTACKER: &str = "203.0.113.66";
const HOME: &str = "198.51.100.7";

// ---------------------------------------------------------------------------------------------
// Log capture: one global subscriber for the whole test binary.

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> Arc<Mutex<Vec<u8>>> {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,hyper=info,hyper_util=info,h2=info,sqlx=info,tower=info,cookie_store=off,reqwest=off",
            ))
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    })
    .clone()
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------------------------------------
// A gateway on real listeners.

/// Start a gateway from `toml` as `sessiongate serve` runs it (`server::serve_on`: the public
/// listener with its connection limits, and an admin listener) with a trusted local proxy, user
/// `alice`, and a clock that stands still until a test moves it (no waiting out a back-off).
async fn start(toml: &str) -> Gateway {
    start_with(toml, true).await
}

async fn start_with(toml: &str, admin: bool) -> Gateway {
    logs();
    let gw = support::gateway(toml)
        .set("server.trusted_proxies", vec!["127.0.0.1/32"])
        .clock(sessiongate::clock::ManualClock::starting_now());
    if admin { gw.admin_listener() } else { gw.serve_on() }.start().await
}

impl Gateway {
    async fn audit(&self) -> Vec<AuditEvent> {
        assert!(self.state.audit.flush(Duration::from_secs(5)).await, "audit queue flushed");
        self.state.audit.table().query(&AuditQuery { limit: 10_000, ..Default::default() }).await.unwrap()
    }
}

/// A browser-like client from one IP (sent as `X-Forwarded-For` through the trusted proxy).
fn browser(gw: &Gateway, ip: &str) -> Browser {
    Browser::new(gw).with_ip(ip).user_agent("ops-test/1.0")
}

fn retry_after(res: &Response) -> u64 {
    res.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Abuse protection.

#[tokio::test]
async fn attacker_ip_backs_off_exponentially_while_the_user_logs_in_from_home() {
    let gw =
        start("[rate_limit]\nlogin_per_ip = \"1000/1m\"\nlogin_per_account = \"2/1s\"\nlogin_backoff_max = \"3s\"\n")
            .await;
    let attacker = browser(&gw, ATTACKER);
    let user = browser(&gw, HOME);

    // Two free failures, then 1 s, 2 s, then the 3 s maximum, waited out on the gateway's clock.
    // The attacker never logs in, so one CSRF token serves every try.
    let token = attacker.csrf().await;
    let try_login =
        |password: &'static str| attacker.post("/login", &token, json!({ "username": USER, "password": password }));
    for _ in 0..2 {
        assert_eq!(try_login("not the password").await.status(), 401);
    }
    let mut waits = Vec::new();
    for _ in 0..3 {
        let res = try_login(PASSWORD).await;
        assert_eq!(res.status(), 429, "locked out, even with the right password");
        let wait = retry_after(&res);
        assert_eq!(problem(res).await.1, "rate_limited");
        waits.push(wait);
        // Meanwhile the real user, from their own IP, gets in at once.
        assert_eq!(user.login_as(USER, PASSWORD).await.status(), 200, "the user is not locked out");
        gw.clock().advance(Duration::from_millis(wait * 1000 + 100));
        assert_eq!(try_login("still not it").await.status(), 401, "one more try after the wait");
    }
    assert_eq!(waits, [1, 2, 3], "exponential back-off up to login_backoff_max");
    // Other accounts are unaffected from the attacker's IP too.
    assert_eq!(attacker.login_as("bob", "whatever pw").await.status(), 401);
    // The events are in the audit log: the attacker's failures and 429s, the user's logins.
    let events = gw.audit().await;
    let from = |ip: &str, e: Event, o: Outcome| {
        events.iter().filter(|x| x.ip.as_deref() == Some(ip) && x.event == e && x.outcome == o).count()
    };
    assert!(from(ATTACKER, Event::Login, Outcome::Failure) >= 5);
    assert_eq!(from(ATTACKER, Event::RateLimited, Outcome::Failure), 3);
    assert_eq!(from(HOME, Event::Login, Outcome::Success), 3);
}

#[tokio::test]
async fn account_ceiling_closes_new_ips_but_not_the_users_known_one() {
    let gw = start(
        "[rate_limit]\nlogin_per_ip = \"1000/1m\"\nlogin_per_account = \"100/1m\"\nlogin_account_ceiling = \"5/1h\"\n",
    )
    .await;
    let home = browser(&gw, HOME);
    home.login().await;
    // A distributed attack: five IPs, one failure each, reach the account's ceiling.
    for i in 1..=5 {
        let b = browser(&gw, &format!("203.0.113.{i}"));
        assert_eq!(b.login_as(USER, "guess").await.status(), 401);
    }
    let newcomer = browser(&gw, "192.0.2.99");
    let res = newcomer.login_as(USER, PASSWORD).await;
    assert_eq!(res.status(), 429, "unknown IPs are refused past the ceiling");
    assert!(retry_after(&res) > 60);
    assert_eq!(browser(&gw, HOME).login_as(USER, PASSWORD).await.status(), 200, "the known IP gets in");
    assert_eq!(newcomer.login_as("bob", "guess").await.status(), 401, "other accounts are open");
}

#[tokio::test]
async fn a_login_flood_gets_503_overloaded_fast_instead_of_queueing() {
    // Real Argon2 cost and a queue of two: a flood of logins cannot pile up behind the hasher.
    let gw = start(
        "[rate_limit]\nlogin_per_ip = \"10000/1m\"\nlogin_per_account = \"10000/1m\"\nlogin_account_ceiling = \"10000/1h\"\n\
         [users]\nhash_queue = 2\n",
    )
    .await;
    // Stronger hashing than the harness default for this test only: rehash alice.
    let strong = sessiongate::password::Passwords::new(&sessiongate::password::Argon2Params {
        memory_kib: 19456,
        iterations: 2,
        parallelism: 1,
    })
    .unwrap();
    let user = gw.state.users.find_by_login(USER).await.unwrap().unwrap();
    gw.state.users.set_password(user.id, &strong.hash(PASSWORD.into()).await.unwrap()).await.unwrap();

    let b = Arc::new(browser(&gw, HOME));
    let token = b.csrf().await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (b, token) = (b.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let res = b.post("/login", &token, json!({ "username": USER, "password": format!("wrong {i}") })).await;
            let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let (status, code, _) = problem(res).await;
            (status, code, retry, t.elapsed())
        }));
    }
    let mut overloaded = 0;
    let mut answered = 0;
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (status, code, retry, took) = t.await.unwrap();
        slowest = slowest.max(took);
        match status {
            503 => {
                assert_eq!(code, "overloaded");
                assert_eq!(retry.as_deref(), Some("1"));
                overloaded += 1;
            }
            401 => answered += 1,
            other => panic!("unexpected {other} {code}"),
        }
    }
    assert!(overloaded > 0, "some logins were refused with 503 (queue of 2)");
    assert!(answered >= 2, "the queued ones were answered");
    assert!(slowest < Duration::from_secs(5), "no request waited long: slowest {slowest:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The hasher is free again afterwards.
    assert_eq!(b.login_as(USER, PASSWORD).await.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Request hygiene.

#[tokio::test]
async fn long_urls_get_414_and_configured_header_limits_apply() {
    let gw =
        start("[server]\nmax_url_bytes = \"1KiB\"\nmax_header_bytes = \"8KiB\"\nheader_read_timeout = \"2s\"\n").await;
    let c = Client::new();
    let long = format!("{}/api/auth/session?q={}", gw.url, "x".repeat(2000));
    let (status, code, v) = problem(c.get(&long).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (414, "uri_too_long"), "{v}");
    assert_eq!(c.get(format!("{}/?q={}", gw.url, "y".repeat(900))).send().await.unwrap().status(), 200);
    // Headers beyond server.max_header_bytes: 431 from the connection layer.
    let res = c.get(format!("{}/healthz", gw.url)).header("x-big", "z".repeat(10_000)).send().await.unwrap();
    assert_eq!(res.status(), 431);
    let limits = server::limits(&gw.state.settings);
    assert_eq!(limits.max_header_bytes, 8192);
    assert_eq!(limits.header_read_timeout, Duration::from_secs(2));
}

#[tokio::test]
async fn request_ids_are_validated_echoed_and_logged() {
    let gw = start("").await;
    let c = Client::new();
    let res = c.get(format!("{}/healthz", gw.url)).header("x-request-id", "trace-me-42").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
    for bad in ["has space", &"x".repeat(65), "semi;colon"] {
        let res = c.get(format!("{}/healthz", gw.url)).header("x-request-id", bad).send().await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 16, "replaced by a fresh id: {id}");
    }
    let res = c.get(format!("{}/healthz", gw.url)).send().await.unwrap();
    assert!(res.headers().contains_key("x-request-id"), "one is made when none is sent");

    // The id is in the request's log lines (the span) and in the audit row.
    let b = browser(&gw, HOME);
    let token = b.csrf().await;
    let res = b
        .http
        .post(b.api("/login"))
        .header("x-csrftoken", &token)
        .header("x-request-id", "req-login-7f3a")
        .json(&json!({ "username": USER, "password": "wrong password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-login-7f3a");
    assert_eq!(res.status(), 401);
    let events = gw.audit().await;
    assert!(events.iter().any(|e| e.request_id.as_deref() == Some("req-login-7f3a") && e.event == Event::Login));
    let line = log_text()
        .lines()
        .find(|l| l.contains("sessiongate::audit") && l.contains("req-login-7f3a"))
        .map(str::to_owned)
        .expect("the audit log line carries the request id");
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["fields"]["event"], "login");
    assert_eq!(v["span"]["request_id"], "req-login-7f3a", "{line}");
}

#[tokio::test]
async fn a_trickled_request_body_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = start("[server]\nrequest_timeout = \"1s\"\n").await;
    let b = browser(&gw, HOME);
    b.csrf().await;
    let secret = b.cookie("csrftoken").unwrap();
    let addr = gw.url.trim_start_matches("http://").to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\
         Cookie: csrftoken={secret}\r\nX-CSRFToken: {secret}\r\n\r\n{{\"user"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let started = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.expect("answered").unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(head.contains("request_timeout"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

// ---------------------------------------------------------------------------------------------
// Audit log.

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The token of the first link with `token=` in the newest `.eml` for `to` whose subject has
/// `subject` (quoted-printable undone).
async fn mailed_token(outbox: &std::path::Path, to: &str, subject: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for entry in std::fs::read_dir(outbox).into_iter().flatten().flatten() {
            let raw = std::fs::read_to_string(entry.path()).unwrap_or_default().replace("\r\n", "\n");
            let text = raw.replace("=\n", "").replace("=3D", "=");
            if text.contains(&format!("To: {to}"))
                && text.contains(subject)
                && let Some(i) = text.find("token=")
            {
                let token: String =
                    text[i + 6..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
                let _ = std::fs::remove_file(entry.path());
                return token;
            }
        }
        assert!(Instant::now() < deadline, "no mail to {to} about {subject:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_authentication_event_is_audited_without_secrets() {
    let gw = start("[auth]\nsignup = true\n[rate_limit]\nsignup_per_ip = \"2/1h\"\n").await;
    let outbox = gw.data_dir().join("outbox");
    let mut secrets: Vec<String> = vec![PASSWORD.into()];
    let new_password = "a different long passphrase 7";
    let newer_password = "yet another passphrase 42";
    secrets.extend([new_password.into(), newer_password.into()]);

    // signup (and its rate limit), login failed and ok.
    let bob = browser(&gw, HOME);
    let t = bob.csrf().await;
    let bob_password = "bobs own passphrase 99";
    secrets.push(bob_password.into());
    let res = bob
        .post("/signup", &t, json!({ "username": "bob", "password": bob_password, "email": "bob@example.com" }))
        .await;
    assert_eq!(res.status(), 201);
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let carol = browser(&gw, HOME);
        let t = carol.csrf().await;
        statuses.push(
            carol.post("/signup", &t, json!({ "username": "carol", "password": "carols passphrase 1" })).await.status(),
        );
    }
    assert_eq!(statuses, [201, 429], "signup_per_ip = 2/1h");
    let b = browser(&gw, HOME);
    assert_eq!(b.login_as(USER, "wrong password 1").await.status(), 401);
    let token = b.login().await;
    secrets.push(b.cookie("sessionid").unwrap());
    secrets.push(b.cookie("csrftoken").unwrap());
    secrets.push(token.clone());

    // CSRF rejections: no token, wrong token.
    let res = b.http.post(b.api("/logout")).header("x-forwarded-for", HOME).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(b.post("/sessions/revoke-others", &"a".repeat(64), json!({})).await.status(), 403);

    // reauth, password change, sessions.
    assert_eq!(b.post("/reauth", &token, json!({ "password": "wrong again" })).await.status(), 401);
    let res = b.post("/reauth", &token, json!({ "password": PASSWORD })).await;
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["csrfToken"].as_str().unwrap().to_owned();
    let other = browser(&gw, "192.0.2.5");
    other.login().await;
    secrets.push(other.cookie("sessionid").unwrap());
    let res = b.post("/password", &token, json!({ "currentPassword": PASSWORD, "newPassword": new_password })).await;
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["csrfToken"].as_str().unwrap().to_owned();
    secrets.push(b.cookie("sessionid").unwrap());
    let third = browser(&gw, "192.0.2.6");
    assert_eq!(third.login_as(USER, new_password).await.status(), 200);
    let third_id = {
        let v: Value = b.http.get(b.api("/sessions")).send().await.unwrap().json().await.unwrap();
        v["sessions"].as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(b.send(reqwest::Method::DELETE, &format!("/sessions/{third_id}"), &token, None).await.status(), 204);
    assert_eq!(b.post("/sessions/revoke-others", &token, json!({})).await.status(), 200);

    // MFA: setup, confirm (with the secret from setup), disable.
    let res = b.post("/mfa/totp/setup", &token, json!({})).await;
    assert_eq!(res.status(), 200);
    let secret = res.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned();
    secrets.push(secret.clone());
    let totp = totp_rs::Builder::new().with_secret(totp_rs::Secret::try_from_base32(&secret).unwrap()).build().unwrap();
    let code = totp.generate(now()).to_string();
    let res = b.post("/mfa/totp/confirm", &token, json!({ "code": code })).await;
    assert_eq!(res.status(), 200);
    let codes: Value = res.json().await.unwrap();
    for c in codes["recoveryCodes"].as_array().unwrap() {
        secrets.push(c.as_str().unwrap().to_owned());
    }
    assert_eq!(b.post("/mfa/totp/disable", &token, json!({})).await.status(), 204);

    // Email change and verification, password reset request and confirmation.
    assert_eq!(b.post("/email", &token, json!({ "email": "alice@example.org" })).await.status(), 202);
    let verify = mailed_token(&outbox, "alice@example.org", "onfirm").await;
    secrets.push(verify.clone());
    assert_eq!(b.post("/email/verify", &token, json!({ "token": verify })).await.status(), 200);
    let anon = browser(&gw, HOME);
    let t = anon.csrf().await;
    assert_eq!(anon.post("/password/reset", &t, json!({ "email": "alice@example.org" })).await.status(), 202);
    let reset = mailed_token(&outbox, "alice@example.org", "eset").await;
    secrets.push(reset.clone());
    let res = anon.post("/password/reset/confirm", &t, json!({ "token": reset, "newPassword": newer_password })).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        anon.post("/password/reset/confirm", &t, json!({ "token": reset, "newPassword": newer_password }))
            .await
            .status(),
        400
    );

    // Logout (of a fresh session), and a login refused by the rate limit.
    let c = browser(&gw, "192.0.2.7");
    let t = {
        let res = c.login_as(USER, newer_password).await;
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["csrfToken"].as_str().unwrap().to_owned()
    };
    secrets.push(c.cookie("sessionid").unwrap());
    assert_eq!(c.post("/logout", &t, json!({})).await.status(), 204);

    let events = gw.audit().await;
    let has = |e: Event, o: Outcome| events.iter().any(|x| x.event == e && x.outcome == o);
    for (e, o) in [
        (Event::Signup, Outcome::Success),
        (Event::RateLimited, Outcome::Failure),
        (Event::Login, Outcome::Failure),
        (Event::Login, Outcome::Success),
        (Event::CsrfRejected, Outcome::Failure),
        (Event::Reauth, Outcome::Failure),
        (Event::Reauth, Outcome::Success),
        (Event::PasswordChange, Outcome::Success),
        (Event::SessionRevoked, Outcome::Success),
        (Event::SessionsRevoked, Outcome::Success),
        (Event::MfaSetup, Outcome::Success),
        (Event::MfaEnabled, Outcome::Success),
        (Event::MfaDisabled, Outcome::Success),
        (Event::EmailChange, Outcome::Success),
        (Event::EmailVerified, Outcome::Success),
        (Event::PasswordResetRequest, Outcome::Success),
        (Event::PasswordReset, Outcome::Success),
        (Event::PasswordReset, Outcome::Failure),
        (Event::Logout, Outcome::Success),
    ] {
        assert!(has(e, o), "no {e} {o} row in {events:#?}");
    }
    // Who, from where, with what.
    let login = events.iter().find(|x| x.event == Event::Login && x.outcome == Outcome::Success).unwrap();
    assert_eq!(login.username.as_deref(), Some(USER));
    assert!(login.user_id.is_some() && login.session.is_some(), "{login:?}");
    assert_eq!(login.ip.as_deref(), Some(HOME));
    assert_eq!(login.user_agent.as_deref(), Some("ops-test/1.0"));
    let revoked = events.iter().find(|x| x.event == Event::SessionRevoked).unwrap();
    assert_eq!(revoked.session.as_deref(), Some(third_id.as_str()));
    let csrf = events.iter().find(|x| x.event == Event::CsrfRejected).unwrap();
    assert!(csrf.detail.as_deref().unwrap_or("").contains("CSRF"), "{csrf:?}");
    let failed = events.iter().find(|x| x.event == Event::Login && x.outcome == Outcome::Failure).unwrap();
    assert_eq!(failed.username.as_deref(), Some(USER), "the attempted name is recorded");

    // Never a secret, in the table or in the log.
    let table = serde_json::to_string(&events).unwrap();
    let log = log_text();
    for s in &secrets {
        assert!(!table.contains(s.as_str()), "secret {s:?} in the audit table");
        let line = log.lines().find(|l| l.contains(s.as_str()));
        assert!(line.is_none(), "secret {s:?} in the log: {}", line.unwrap_or_default());
    }

    // `sessiongate audit` reads the same rows.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessiongate"))
        .args(["-c", gw.config().to_str().unwrap(), "audit", "--user", "ALICE", "--since", "1h", "--json"])
        .env_remove("SESSIONGATE_LOG_FORMAT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Vec<AuditEvent> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(cli.iter().any(|e| e.event == Event::PasswordReset && e.outcome == Outcome::Success));
    assert!(
        cli.iter()
            .all(|e| e.username.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(USER)) || e.user_id == login.user_id)
    );
    assert!(!cli.iter().any(|e| e.username.as_deref() == Some("bob")));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessiongate"))
        .args(["-c", gw.config().to_str().unwrap(), "audit", "--since", "1h"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("TIME") && text.contains("password_reset") && text.contains("bob"), "{text}");
}

#[tokio::test]
async fn audit_rows_go_to_the_postgres_user_store_with_memory_sessions() {
    let schema = support::pg::Schema::new("sg_ops").await;
    let url = schema.url.clone();
    let gw = start(&format!("[session]\nstore = \"memory\"\n[users]\nstore = \"postgres\"\nurl = \"{url}\"\n")).await;
    assert!(matches!(gw.state.audit.table(), sessiongate::audit::AuditStore::Postgres(_)));
    let b = browser(&gw, HOME);
    assert_eq!(b.login_as(USER, "wrong password").await.status(), 401);
    b.login().await;
    let events = gw.audit().await;
    assert!(events.iter().any(|e| e.event == Event::Login && e.outcome == Outcome::Failure));
    let ok = events.iter().find(|e| e.event == Event::Login && e.outcome == Outcome::Success).unwrap();
    assert_eq!((ok.username.as_deref(), ok.ip.as_deref()), (Some(USER), Some(HOME)));
    let q = AuditQuery {
        username: Some("ALICE".into()),
        since: Some(chrono::Utc::now() - chrono::Duration::hours(1)),
        limit: 1,
        ..Default::default()
    };
    let last = gw.state.audit.table().query(&q).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].outcome, Outcome::Success, "the most recent one");
    assert_eq!(gw.state.audit.table().purge(chrono::Utc::now() + chrono::Duration::seconds(1)).await.unwrap(), 2);
    schema.drop().await;
}

#[tokio::test]
async fn audit_webhook_posts_signed_events() {
    // A receiver on loopback that records bodies and signatures.
    /// (signature header, body) of each call.
    type Calls = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    let received: Calls = Arc::default();
    let r = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
            let r = r.clone();
            async move {
                let sig =
                    headers.get("x-sessiongate-signature").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                r.lock().unwrap().push((sig, body.to_vec()));
                http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let secret = "0123456789abcdef-webhook-key";
    let gw = start(&format!("[audit]\nwebhook_url = \"http://{hook}/hook\"\nwebhook_secret = \"{secret}\"\n")).await;
    let b = browser(&gw, HOME);
    assert_eq!(b.login_as(USER, "wrong password").await.status(), 401);
    b.login().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "webhook calls arrive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (sig, body) in received.lock().unwrap().iter() {
        assert_eq!(*sig, sessiongate::audit::webhook::signature(secret.as_bytes(), body));
        let e: AuditEvent = serde_json::from_slice(body).unwrap();
        assert_eq!(e.event, Event::Login);
        assert!(!String::from_utf8_lossy(body).contains(PASSWORD));
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics.

#[tokio::test]
async fn metrics_are_served_on_the_admin_listener_only() {
    // No SPA: unknown paths are 404 (with the SPA, a navigation to /metrics gets index.html).
    // A route to an upstream that is down, for the proxy error counter.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gw = start(&format!(
        "[spa]\ndir = \"off\"\n[[routes]]\nprefix = \"/down/\"\nupstream = \"http://{dead}\"\nauth = \"none\"\n"
    ))
    .await;
    let admin = gw.admin.clone().unwrap();
    let b = browser(&gw, HOME);
    assert_eq!(b.login_as(USER, "wrong password").await.status(), 401);
    b.login().await;
    let res = b.http.post(b.api("/logout")).header("x-forwarded-for", HOME).send().await.unwrap();
    assert_eq!(res.status(), 403, "no CSRF token");
    let c = Client::new();
    let _ = c.get(format!("{}/healthz", gw.url)).send().await.unwrap();
    assert_eq!(c.get(format!("{}/down/x", gw.url)).send().await.unwrap().status(), 502);

    let body = c.get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap();
    for needle in [
        "sessiongate_http_requests_total{class=\"auth\",route=\"/login\",method=\"POST\",status=\"200\"}",
        "sessiongate_http_requests_total{class=\"health\",route=\"/healthz\",method=\"GET\",status=\"200\"}",
        "sessiongate_http_request_duration_seconds_bucket{class=\"auth\",route=\"/login\"",
        "sessiongate_logins_total{outcome=\"success\"}",
        "sessiongate_logins_total{outcome=\"failure\"}",
        "sessiongate_csrf_rejections_total{reason=\"missing_token\"}",
        "sessiongate_store_operation_duration_seconds",
        "sessiongate_active_sessions",
        "sessiongate_proxy_upstream_errors_total{route=\"/down/\",kind=\"unavailable\"}",
        "sessiongate_http_requests_total{class=\"proxy\",route=\"/down/\",method=\"GET\",status=\"502\"}",
    ] {
        assert!(body.contains(needle), "{needle} missing in\n{body}");
    }
    // Not on the public listener.
    let res = c.get(format!("{}/metrics", gw.url)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(!res.text().await.unwrap().contains("sessiongate_"));
}

// ---------------------------------------------------------------------------------------------
// OpenAPI.

#[tokio::test]
async fn openapi_describes_every_auth_endpoint() {
    let gw = start_with("", false).await;
    let res = Client::new().get(format!("{}/api/auth/openapi.json", gw.url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["servers"][0]["url"], "/api/auth");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/csrf",
        "/login",
        "/logout",
        "/session",
        "/signup",
        "/sessions",
        "/sessions/{id}",
        "/sessions/revoke-others",
        "/verify",
        "/password",
        "/password/reset",
        "/password/reset/confirm",
        "/reauth",
        "/login/mfa",
        "/mfa/totp/setup",
        "/mfa/totp/confirm",
        "/mfa/totp/disable",
        "/email",
        "/email/verify",
    ] {
        assert!(paths.contains_key(p), "{p} not described");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["paths"]["/login"]["post"]["requestBody"].is_object());
}
