//! Interoperability with a real Django 5.2 (docs/django.md).
//!
//! `tests/django/setup.sh` creates (or reuses) a Python virtualenv with Django, argon2-cffi,
//! bcrypt, gunicorn and psycopg from PyPI, and a small Django project whose users Django itself
//! created, one password hasher each. Then:
//! - `users.store = "django"` logs each of them in through the gateway (SQLite and PostgreSQL);
//! - the Django app runs under gunicorn behind the gateway: its views see `request.user` from
//!   `X-Auth-User`, POSTs pass both the gateway's and Django's own CSRF checks with the token
//!   from the gateway, and spoofed identity headers never reach Django;
//! - passwords changed through sessiongate verify in Django;
//! - `sessiongate import-django` copies the users into a native store, where their Django hashes
//!   verify and are upgraded to Argon2id at the next login.
//!
//! Nothing is skipped: without python3, PyPI or PostgreSQL (`postgres://postgres@127.0.0.1:5432/test`,
//! as for `tests/user_store.rs`) these tests fail and say why.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Client, Response};
use serde_json::{Value, json};
use sessiongate::api::AppState;
use sessiongate::config::load_str;
use sessiongate::server;

const BIN: &str = env!("CARGO_BIN_EXE_sessiongate");
const HASHERS: [&str; 7] = ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "bcrypt", "scrypt", "md5"];
mod support;

use support::pg::PG_URL;

/// The password `create_users.py` gave each user.
fn password_of(username: &str) -> String {
    format!("{username}-Tr0ub4dor&3-staple")
}

// ---------------------------------------------------------------------------------------------
// The Django side

/// The prepared project (shared, read-only) and its virtualenv.
struct Django {
    project: PathBuf,
    python: PathBuf,
    /// How long setup.sh took in this run.
    setup: Duration,
}

/// Run `tests/django/setup.sh` once per test binary.
fn django() -> &'static Django {
    static DJANGO: OnceLock<Django> = OnceLock::new();
    DJANGO.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Leftovers of earlier runs (each run has its own directory).
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(3600));
                if e.file_name().to_string_lossy().starts_with("django-") && old {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let project = root.join(format!("django-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&project);
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/django/setup.sh"))
            .arg(&project)
            .stdin(Stdio::null())
            .output()
            .expect("bash runs tests/django/setup.sh");
        let setup = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tests/django/setup.sh failed ({}): it needs python3 with venv and PyPI.\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let python =
            stdout.lines().find_map(|l| l.strip_prefix("python=")).expect("setup.sh prints python=PATH").into();
        // Django hashed each user with the hasher named in the username.
        let prefixes: Value = stdout
            .lines()
            .find(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .expect("user summary");
        for h in HASHERS {
            assert_eq!(prefixes[format!("u_{h}")], h, "{prefixes}");
        }
        assert!(prefixes["nopass"].as_str().unwrap().starts_with('!'), "{prefixes}");
        eprintln!("tests/django/setup.sh took {setup:.1?}");
        Django { project, python, setup }
    })
}

/// Where a test's Django database lives.
#[derive(Clone)]
enum Db {
    Sqlite(PathBuf),
    /// A schema of the test database: (schema, users.url for sessiongate).
    Postgres(String, String),
}

impl Db {
    /// A private copy of the prepared SQLite database.
    fn sqlite_copy(dir: &Path) -> Db {
        let path = dir.join("db.sqlite3");
        std::fs::copy(django().project.join("db.sqlite3"), &path).unwrap();
        Db::Sqlite(path)
    }

    fn url(&self) -> String {
        match self {
            Db::Sqlite(p) => format!("sqlite://{}", p.display()),
            Db::Postgres(_, url) => url.clone(),
        }
    }

    fn env(&self, cmd: &mut Command) {
        match self {
            Db::Sqlite(p) => cmd.env("GATETEST_DB", p),
            Db::Postgres(schema, _) => cmd.env(
                "GATETEST_PG",
                json!({
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": "test", "USER": "postgres", "HOST": "127.0.0.1", "PORT": "5432",
                    "OPTIONS": { "options": format!("-c search_path={schema}") },
                })
                .to_string(),
            ),
        };
    }
}

/// `manage.py ARGS` in the shared project against `db`; panics with the output on failure.
fn manage(db: &Db, args: &[&str]) -> String {
    let dj = django();
    let mut cmd = Command::new(&dj.python);
    cmd.current_dir(&dj.project).arg("manage.py").args(args).stdin(Stdio::null());
    db.env(&mut cmd);
    let out = cmd.output().expect("the virtualenv's python runs");
    assert!(
        out.status.success(),
        "manage.py {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Run Python in `manage.py shell` and parse the JSON it prints last.
fn django_shell(db: &Db, code: &str) -> Value {
    let out = manage(db, &["shell", "--no-imports", "-c", code]);
    serde_json::from_str(out.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// What Django's own `authenticate()` (ModelBackend, Django's hashers) says of these passwords.
fn django_authenticates(db: &Db, pairs: &[(&str, &str)]) -> Vec<bool> {
    let code = format!(
        "import json\nfrom django.contrib.auth import authenticate\n\
         print(json.dumps([authenticate(username=u, password=p) is not None for u, p in {}]))",
        serde_json::to_string(&pairs.iter().map(|(u, p)| [u, p]).collect::<Vec<_>>()).unwrap()
    );
    serde_json::from_value(django_shell(db, &code)).unwrap()
}

/// Stored hash and last login of `username`, as Django reads them.
fn django_user(db: &Db, username: &str) -> Value {
    django_shell(
        db,
        &format!(
            "import json\nfrom django.contrib.auth.models import User\nu = User.objects.get(username={})\n\
             print(json.dumps({{'password': u.password, 'last_login': u.last_login.isoformat() if u.last_login else None}}))",
            json!(username)
        ),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The Django test app under gunicorn, stopped on drop (its log is printed if the test failed).
struct Gunicorn {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Gunicorn {
    /// Start on a free port. `--header-map dangerous` makes gunicorn pass `X_Auth_User` on as
    /// `HTTP_X_AUTH_USER` (as older gunicorn and other WSGI servers do), so only the gateway's
    /// stripping stands between a client and a spoofed identity.
    async fn start(db: &Db, trusted_origin: &str, log: PathBuf) -> Gunicorn {
        let dj = django();
        let port = free_port();
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(&dj.python);
        cmd.current_dir(&dj.project)
            .args(["-m", "gunicorn", "gatetest.wsgi", "--bind", &format!("127.0.0.1:{port}"), "--workers", "1"])
            .args(["--header-map", "dangerous", "--log-level", "warning"])
            .env("DJANGO_CSRF_TRUSTED_ORIGINS", trusted_origin)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        db.env(&mut cmd);
        let child = cmd.spawn().expect("gunicorn starts");
        let g = Gunicorn { child, url: format!("http://127.0.0.1:{port}"), log };
        for _ in 0..150 {
            if reqwest::get(format!("{}/public/whoami", g.url)).await.is_ok_and(|r| r.status() == 200) {
                return g;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("gunicorn did not answer on {}", g.url);
    }
}

impl Drop for Gunicorn {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- gunicorn log ----\n{}", std::fs::read_to_string(&self.log).unwrap_or_default());
        }
        // SIGTERM lets the master stop its worker; SIGKILL if it lingers.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        for _ in 0..50 {
            if self.child.try_wait().is_ok_and(|s| s.is_some()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway side

struct Gateway {
    url: String,
    state: AppState,
}

/// An in-process gateway on `listener` configured by `toml` plus a data dir, cheap Argon2 and
/// relaxed login rate limits (these tests log in many times from one address).
async fn gateway(listener: tokio::net::TcpListener, toml: &str, data_dir: &Path) -> Gateway {
    let addr = listener.local_addr().unwrap();
    let toml = format!("{toml}\n[rate_limit]\nlogin_per_ip = \"1000/1m\"\nlogin_per_account = \"1000/1m\"\n");
    let mut cfg = load_str(&toml).expect("test config loads");
    cfg.data_dir = data_dir.to_path_buf();
    cfg.server.listen = addr.to_string();
    cfg.users.argon2 = sessiongate::password::Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };
    cfg.auth.bootstrap_admin = false;
    let settings = Arc::new(cfg.validate().expect("test config valid"));
    let stores = server::open_stores(&settings).await.expect("stores open");
    let state = AppState::new(settings, stores);
    let app = server::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Gateway { url: format!("http://{addr}"), state }
}

async fn django_store_gateway(db: &Db, extra_users: &str, data_dir: &Path) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let toml = format!("[users]\nstore = \"django\"\nurl = \"{}\"\n{extra_users}", db.url());
    gateway(listener, &toml, data_dir).await
}

/// A browser-like client with its own cookie jar.
struct Browser {
    client: Client,
    jar: Arc<Jar>,
    base: String,
}

impl Browser {
    fn new(base: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let client =
            Client::builder().cookie_provider(jar.clone()).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { client, jar, base: base.to_owned() }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        let header = self.jar.cookies(&self.base.parse().unwrap())?;
        header.to_str().unwrap().split("; ").find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }

    async fn login(&self, username: &str, password: &str) -> (u16, Value) {
        let v: Value =
            self.client.get(format!("{}/api/auth/csrf", self.base)).send().await.unwrap().json().await.unwrap();
        let res = self
            .client
            .post(format!("{}/api/auth/login", self.base))
            .header("X-CSRFToken", v["csrfToken"].as_str().unwrap())
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Response {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap()
    }
}

async fn login_status(base: &str, username: &str, password: &str) -> u16 {
    Browser::new(base).login(username, password).await.0
}

/// Wait for the background hash upgrade after a login.
async fn stored_hash_when(state: &AppState, username: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = state.users.find_by_login(username).await.unwrap().unwrap().password_hash;
        if done(&h) || Instant::now() > deadline {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sg(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

// ---------------------------------------------------------------------------------------------
// The tests

/// Every Django hasher, wrong passwords, unusable and inactive users, exact usernames,
/// `last_login` as Django reads it, `date_joined` as `createdAt`, hashes left alone.
async fn django_store_logins(db: &Db, data_dir: &Path) {
    let gw = django_store_gateway(db, "", data_dir).await;
    for h in HASHERS {
        let user = format!("u_{h}");
        let b = Browser::new(&gw.url);
        let (status, body) = b.login(&user, &password_of(&user)).await;
        assert_eq!(status, 200, "{user}: {body}");
        assert_eq!(body["user"]["username"], user.as_str());
        assert_eq!(body["user"]["email"], format!("{h}@example.com"));
        assert_eq!(
            (body["user"]["emailVerified"].as_bool(), body["user"]["mfa"].as_bool()),
            (Some(false), Some(false))
        );
        assert_eq!(b.get("/api/auth/session").await.status(), 200);
        assert_eq!(
            login_status(&gw.url, &user, &format!("{}x", password_of(&user))).await,
            401,
            "{user}: wrong password"
        );
    }
    for (user, why) in [
        ("nopass", "unusable password"),
        ("inactive", "is_active = False"),
        ("carol", "usernames are case-sensitive"),
        ("nobody", "unknown"),
    ] {
        assert_eq!(login_status(&gw.url, user, &password_of(user)).await, 401, "{user}: {why}");
    }
    assert_eq!(login_status(&gw.url, "Carol", &password_of("Carol")).await, 200);
    assert_eq!(
        login_status(&gw.url, "alice@example.com", &password_of("alice")).await,
        401,
        "email login is off by default"
    );

    let b = Browser::new(&gw.url);
    let before = chrono::Utc::now();
    assert_eq!(b.login(" alice ", &password_of("alice")).await.0, 200, "trimmed like Django's login form");
    let session: Value = b.get("/api/auth/session").await.json().await.unwrap();
    assert_eq!(session["user"]["createdAt"], "2020-01-02T03:04:05.678901Z", "date_joined");

    // Django reads the last_login sessiongate wrote; hashes were not rewritten (no rehash by default).
    let alice = django_user(db, "alice");
    let last: chrono::DateTime<chrono::Utc> = alice["last_login"].as_str().expect("last_login set").parse().unwrap();
    assert!(last >= before - chrono::Duration::seconds(1) && last <= chrono::Utc::now(), "{alice}");
    assert!(django_user(db, "u_md5")["password"].as_str().unwrap().starts_with("md5$"));
}

#[tokio::test]
async fn every_django_hasher_logs_in_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite_copy(dir.path());
    django_store_logins(&db, dir.path()).await;
}

#[tokio::test]
async fn email_login_and_opt_in_rehash() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite_copy(dir.path());
    let extra = "django_login_with_email = true\ndjango_rehash_on_login = true\ndjango_hash_iterations = 120000\n";
    let gw = django_store_gateway(&db, extra, dir.path()).await;
    assert_eq!(login_status(&gw.url, "CAROL@example.com", &password_of("Carol")).await, 200);
    assert_eq!(
        login_status(&gw.url, "shared@example.com", &password_of("shared1")).await,
        401,
        "address shared by two accounts"
    );
    assert_eq!(login_status(&gw.url, "u_md5", &password_of("u_md5")).await, 200);
    let h = stored_hash_when(&gw.state, "u_md5", |h| h.starts_with("pbkdf2_sha256$")).await;
    assert!(h.starts_with("pbkdf2_sha256$120000$"), "rewritten as Django's own login would: {h}");
    assert_eq!(django_authenticates(&db, &[("u_md5", &password_of("u_md5"))]), [true]);
    assert_eq!(login_status(&gw.url, "u_md5", &password_of("u_md5")).await, 200);
}

#[tokio::test]
async fn django_app_behind_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite_copy(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    // The gateway sends the upstream's Host, so Django needs the gateway's origin trusted.
    let app = Gunicorn::start(&db, &public, dir.path().join("gunicorn.log")).await;
    let toml = format!(
        "[users]\nstore = \"django\"\nurl = \"{}\"\n\
         [[routes]]\nprefix = \"/api/\"\nupstream = \"{up}\"\nauth = \"required\"\n\
         [[routes]]\nprefix = \"/public/\"\nupstream = \"{up}\"\nauth = \"none\"\n",
        db.url(),
        up = app.url
    );
    let gw = gateway(listener, &toml, dir.path()).await;
    let b = Browser::new(&gw.url);

    assert_eq!(b.get("/api/whoami").await.status(), 401, "auth = required");
    let (status, body) = b.login("alice", &password_of("alice")).await;
    assert_eq!(status, 200, "{body}");
    let token = body["csrfToken"].as_str().unwrap().to_owned();
    let secret = b.cookie("csrftoken").unwrap();

    // request.user comes from X-Auth-User.
    let who: Value = b.get("/api/whoami").await.json().await.unwrap();
    assert_eq!(who["username"], "alice", "{who}");
    assert_eq!(who["identityHeaders"]["HTTP_X_AUTH_USER"], "alice");

    // A POST with the gateway's token passes the gateway's CSRF checks and Django's own
    // (Origin in CSRF_TRUSTED_ORIGINS, csrftoken cookie + X-CSRFToken header).
    let echo = |token: Option<&str>, origin: &str| {
        let mut req = b.client.post(format!("{}/api/echo", gw.url)).header("Origin", origin).json(&json!({ "x": 1 }));
        if let Some(t) = token {
            req = req.header("X-CSRFToken", t);
        }
        req.send()
    };
    let res = echo(Some(&token), &public).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({ "ok": true, "username": "alice" }));
    let res = echo(None, &public).await.unwrap();
    assert_eq!(res.status(), 403, "no token: the gateway refuses before Django");
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "csrf_failed");
    assert_eq!(echo(Some(&token), "http://evil.example").await.unwrap().status(), 403, "foreign Origin");

    // Django's CSRF protection is really on: straight to Django, only a matching cookie and
    // token from a trusted origin pass.
    let direct = Client::new();
    let post_direct = |cookie: String, token: String, origin: &str| {
        direct
            .post(format!("{}/api/echo", app.url))
            .header("X-Auth-User", "alice")
            .header("Cookie", cookie)
            .header("X-CSRFToken", token)
            .header("Origin", origin)
            .body("{}")
            .send()
    };
    assert_eq!(post_direct(format!("csrftoken={secret}"), token.clone(), &public).await.unwrap().status(), 200);
    assert_eq!(post_direct(String::new(), token.clone(), &public).await.unwrap().status(), 403, "no cookie");
    assert_eq!(
        post_direct(format!("csrftoken={secret}"), "x".repeat(64), &public).await.unwrap().status(),
        403,
        "bad token"
    );
    assert_eq!(
        post_direct(format!("csrftoken={secret}"), token.clone(), "http://evil.example").await.unwrap().status(),
        403
    );

    // A server-rendered form's token ({% csrf_token %}) works through the gateway too, and
    // Django re-sends the same secret: the gateway's session binding stays intact.
    let form: Value = b.get("/api/form").await.json().await.unwrap();
    assert_eq!(b.cookie("csrftoken").as_deref(), Some(secret.as_str()), "Django kept the gateway's secret");
    let res = b
        .client
        .post(format!("{}/api/echo", gw.url))
        .header("Origin", &public)
        .form(&[("csrfmiddlewaretoken", form["csrfmiddlewaretoken"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "form field token");
    assert_eq!(echo(Some(&token), &public).await.unwrap().status(), 200, "the login token still works");
    assert_eq!(b.cookie("csrftoken").as_deref(), Some(secret.as_str()), "never rotated by Django");

    // Spoofed identity headers never reach Django, in any spelling, on any route.
    let spoof = |path: &str, client: &Client, base: &str| {
        client
            .get(format!("{base}{path}"))
            .header("X-Auth-User", "admin")
            .header("X_Auth_User", "admin")
            .header("x-auth-user-id", "1")
            .header("X-AUTH-EMAIL", "admin@example.com")
            .send()
    };
    let who: Value = spoof("/api/whoami", &b.client, &gw.url).await.unwrap().json().await.unwrap();
    assert_eq!(who["username"], "alice", "{who}");
    assert!(!who.to_string().contains("admin"), "{who}");
    let anon = Client::new();
    let who: Value = spoof("/public/whoami", &anon, &gw.url).await.unwrap().json().await.unwrap();
    assert_eq!(who, json!({ "username": null, "identityHeaders": {} }), "auth = none route");
    // Control: sent straight to Django, the underscore spelling would have worked.
    let who: Value = anon
        .get(format!("{}/api/whoami", app.url))
        .header("X_Auth_User", "admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["username"], "admin", "gunicorn maps X_Auth_User to HTTP_X_AUTH_USER: {who}");

    // Non-ASCII usernames arrive intact (UTF-8 through the header, latin-1 in WSGI, undone).
    let zoe = Browser::new(&gw.url);
    assert_eq!(zoe.login("zoë", &password_of("zoë")).await.0, 200);
    let who: Value = zoe.get("/api/whoami").await.json().await.unwrap();
    assert_eq!(who["username"], "zoë", "{who}");

    // Logging out of the gateway logs out of Django at once (the middleware is stateless).
    let res = b
        .client
        .post(format!("{}/api/auth/logout", gw.url))
        .header("X-CSRFToken", &token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(b.get("/api/whoami").await.status(), 401);
    let who: Value = b.get("/public/whoami").await.json().await.unwrap();
    assert_eq!(who["username"], Value::Null);
}

#[tokio::test]
async fn password_changed_by_sessiongate_verifies_in_django() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite_copy(dir.path());
    std::fs::write(
        dir.path().join("sessiongate.toml"),
        format!(
            "data_dir = \"{}\"\n[users]\nstore = \"django\"\nurl = \"{}\"\ndjango_hash_iterations = 600000\n",
            dir.path().join("data").display(),
            db.url()
        ),
    )
    .unwrap();
    let new = "a-New-Pa55word-for-Django";
    let out = sg(dir.path(), &["user", "passwd", "u_bcrypt", "--password-stdin"], Some(&format!("{new}\n")));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("password changed for `u_bcrypt`"), "{}", text(&out));
    let hash = django_user(&db, "u_bcrypt")["password"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("pbkdf2_sha256$600000$"), "{hash}");
    let old = password_of("u_bcrypt");
    assert_eq!(django_authenticates(&db, &[("u_bcrypt", new), ("u_bcrypt", &old)]), [true, false]);

    let gw = django_store_gateway(&db, "", &dir.path().join("gw")).await;
    assert_eq!(login_status(&gw.url, "u_bcrypt", new).await, 200);
    assert_eq!(login_status(&gw.url, "u_bcrypt", &old).await, 401);

    // Everything else is Django's business: clear errors, exit code 2.
    for args in [
        &["user", "add", "newbie", "--password-stdin"][..],
        &["user", "remove", "alice"],
        &["user", "disable", "alice"],
        &["user", "enable", "inactive"],
        &["import-django", "--from", "sqlite://x.db"],
    ] {
        let out = sg(dir.path(), args, Some("Another-Pa55word-here\n"));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("users.store = \"django\""), "{args:?}: {}", text(&out));
    }
    let out = sg(dir.path(), &["check"], None);
    assert!(out.status.success() && text(&out).contains("configuration ok"), "{}", text(&out));
    let toml = std::fs::read_to_string(dir.path().join("sessiongate.toml")).unwrap();
    std::fs::write(dir.path().join("wrong-table.toml"), format!("{toml}django_table = \"accounts_user\"\n")).unwrap();
    let out = sg(dir.path(), &["-c", "wrong-table.toml", "check"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("accounts_user"), "names the table: {}", text(&out));
    let out = sg(dir.path(), &["user", "list", "--json"], None);
    assert!(out.status.success() && text(&out).contains("\"u_argon2\""), "{}", text(&out));
    assert!(django_user(&db, "alice")["password"].as_str().unwrap().starts_with("pbkdf2_sha256$1000000$"), "untouched");
}

/// `import-django` from `db` into a fresh native SQLite store; then each user logs in and is
/// upgraded to Argon2id.
async fn import_then_upgrade(db: &Db, dir: &Path) {
    let config = dir.join("sessiongate.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[users]\nargon2 = {{ memory_kib = 1024, iterations = 1, parallelism = 1 }}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let out = sg(dir, &["import-django", "--from", &db.url()], None);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("imported 15 of 15 users from auth_user (1 inactive, 1 without a usable password)"), "{t}");
    assert!(t.contains("imported without email (address already used by another user): shared2"), "{t}");
    let again = sg(dir, &["import-django", "--from", &db.url()], None);
    assert!(
        again.status.success() && text(&again).contains("imported 0 of 15") && text(&again).contains("skipped 15"),
        "{}",
        text(&again)
    );
    let bad = sg(dir, &["import-django", "--from", &db.url(), "--table", "auth_user;"], None);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway(listener, "", &dir.join("data")).await;
    for h in HASHERS {
        let user = format!("u_{h}");
        let before = gw.state.users.find_by_login(&user).await.unwrap().unwrap().password_hash;
        assert!(before.starts_with(&format!("{h}$")), "imported as is: {before}");
        assert_eq!(login_status(&gw.url, &user, &password_of(&user)).await, 200, "{user}");
        let after = stored_hash_when(&gw.state, &user, |h| h.starts_with("$argon2id$")).await;
        assert!(after.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{user} upgraded: {after}");
        assert_eq!(login_status(&gw.url, &user, &password_of(&user)).await, 200, "{user} after the upgrade");
        assert_eq!(login_status(&gw.url, &user, "wrong-password-1").await, 401);
    }
    assert_eq!(login_status(&gw.url, "inactive", &password_of("inactive")).await, 401);
    assert_eq!(login_status(&gw.url, "nopass", &password_of("nopass")).await, 401);
    let b = Browser::new(&gw.url);
    assert_eq!(b.login("alice@example.com", &password_of("alice")).await.0, 200, "native stores log in by email");
    let session: Value = b.get("/api/auth/session").await.json().await.unwrap();
    // The native store keeps milliseconds.
    assert_eq!(session["user"]["createdAt"], "2020-01-02T03:04:05.678Z", "date_joined kept");
}

#[tokio::test]
async fn import_django_copies_users_and_upgrades_hashes_on_login() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite_copy(dir.path());
    import_then_upgrade(&db, dir.path()).await;
}

/// The same against a Django project on PostgreSQL (psycopg), in a fresh schema.
#[tokio::test]
async fn django_on_postgresql() {
    let admin = sqlx::PgPool::connect(PG_URL).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is not reachable at {PG_URL} ({e}): start it (user `postgres` with trust auth on 127.0.0.1, database `test`)")
    });
    let schema = format!("django_{}", sessiongate::secret::random_b64(9).to_lowercase().replace(['-', '_'], "x"));
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.unwrap();
    let url = format!("{PG_URL}?options=-c%20search_path%3D{schema}");
    let db = Db::Postgres(schema.clone(), url);
    let _ = django();
    manage(&db, &["migrate", "--noinput", "-v", "0"]);
    let script = std::fs::read_to_string(django().project.join("create_users.py")).unwrap();
    manage(&db, &["shell", "--no-imports", "-c", &script]);

    let dir = tempfile::tempdir().unwrap();
    django_store_logins(&db, dir.path()).await;
    let import_dir = tempfile::tempdir().unwrap();
    import_then_upgrade(&db, import_dir.path()).await;
    // A password written through the store (as `user passwd` does) verifies in Django.
    let gw = django_store_gateway(&db, "", &dir.path().join("gw")).await;
    let id = gw.state.users.find_by_login("u_scrypt").await.unwrap().unwrap().id;
    let hash = gw.state.passwords.hash("Pg-Changed-Pa55word".into()).await.unwrap();
    assert!(hash.starts_with("pbkdf2_sha256$1000000$"), "{hash}");
    assert!(gw.state.users.set_password(id, &hash).await.unwrap());
    assert_eq!(django_authenticates(&db, &[("u_scrypt", "Pg-Changed-Pa55word")]), [true]);

    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin).await.unwrap();
}

#[test]
fn setup_is_reused() {
    let first = django().setup;
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/django/setup.sh"))
        .arg("--venv-only")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("creating the Django virtualenv"),
        "the virtualenv was reused"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("python={}", django().python.display())));
    eprintln!(
        "setup.sh: {first:.1?} for the project in this run; {:.1?} to check the cached virtualenv",
        started.elapsed()
    );
}
