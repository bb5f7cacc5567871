//! Interoperability with a real Django 5.2 (docs/django.md).
//!
//! `support::django` prepares a real Django project (tests/django/setup.sh: a virtualenv from
//! PyPI, users Django itself created, one password hasher each). Then:
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
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, Response};
use serde_json::{Value, json};
use sessiongate::api::AppState;

const BIN: &str = env!("CARGO_BIN_EXE_sessiongate");
mod support;

use support::django::{Db, HASHERS, django, django_authenticates, django_user, password_of};
use support::{Browser, Gateway, GatewayBuilder};

// ---------------------------------------------------------------------------------------------
// The Django app under gunicorn

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

/// A gateway configured by `toml`, its data in `data_dir`, no user of its own, and relaxed login
/// rate limits (these tests log in many times from one address).
fn gateway(toml: &str, data_dir: &Path) -> GatewayBuilder {
    support::gateway(toml)
        .data_dir(data_dir)
        .without_user()
        .set("rate_limit.login_per_ip", "1000/1m")
        .set("rate_limit.login_per_account", "1000/1m")
}

async fn django_store_gateway(db: &Db, extra_users: &str, data_dir: &Path) -> Gateway {
    let toml = format!("[users]\nstore = \"django\"\nurl = \"{}\"\n{extra_users}", db.url());
    gateway(&toml, data_dir).start().await
}

/// Log in through `b`: the status and the JSON body.
async fn login(b: &Browser, username: &str, password: &str) -> (u16, Value) {
    let res = b.login_as(username, password).await;
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// `GET path` (from the root) through `b`.
async fn get(b: &Browser, path: &str) -> Response {
    b.http.get(b.url(path)).send().await.unwrap()
}

async fn login_status(gw: &Gateway, username: &str, password: &str) -> u16 {
    login(&Browser::new(gw), username, password).await.0
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
        let b = Browser::new(&gw);
        let (status, body) = login(&b, &user, &password_of(&user)).await;
        assert_eq!(status, 200, "{user}: {body}");
        assert_eq!(body["user"]["username"], user.as_str());
        assert_eq!(body["user"]["email"], format!("{h}@example.com"));
        assert_eq!(
            (body["user"]["emailVerified"].as_bool(), body["user"]["mfa"].as_bool()),
            (Some(false), Some(false))
        );
        assert_eq!(get(&b, "/api/auth/session").await.status(), 200);
        assert_eq!(login_status(&gw, &user, &format!("{}x", password_of(&user))).await, 401, "{user}: wrong password");
    }
    for (user, why) in [
        ("nopass", "unusable password"),
        ("inactive", "is_active = False"),
        ("carol", "usernames are case-sensitive"),
        ("nobody", "unknown"),
    ] {
        assert_eq!(login_status(&gw, user, &password_of(user)).await, 401, "{user}: {why}");
    }
    assert_eq!(login_status(&gw, "Carol", &password_of("Carol")).await, 200);
    assert_eq!(
        login_status(&gw, "alice@example.com", &password_of("alice")).await,
        401,
        "email login is off by default"
    );

    let b = Browser::new(&gw);
    let before = chrono::Utc::now();
    assert_eq!(login(&b, " alice ", &password_of("alice")).await.0, 200, "trimmed like Django's login form");
    let session: Value = get(&b, "/api/auth/session").await.json().await.unwrap();
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
    assert_eq!(login_status(&gw, "CAROL@example.com", &password_of("Carol")).await, 200);
    assert_eq!(
        login_status(&gw, "shared@example.com", &password_of("shared1")).await,
        401,
        "address shared by two accounts"
    );
    assert_eq!(login_status(&gw, "u_md5", &password_of("u_md5")).await, 200);
    let h = stored_hash_when(&gw.state, "u_md5", |h| h.starts_with("pbkdf2_sha256$")).await;
    assert!(h.starts_with("pbkdf2_sha256$120000$"), "rewritten as Django's own login would: {h}");
    assert_eq!(django_authenticates(&db, &[("u_md5", &password_of("u_md5"))]), [true]);
    assert_eq!(login_status(&gw, "u_md5", &password_of("u_md5")).await, 200);
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
    let gw = gateway(&toml, dir.path()).listener(listener).start().await;
    let b = Browser::new(&gw);

    assert_eq!(get(&b, "/api/whoami").await.status(), 401, "auth = required");
    let (status, body) = login(&b, "alice", &password_of("alice")).await;
    assert_eq!(status, 200, "{body}");
    let token = body["csrfToken"].as_str().unwrap().to_owned();
    let secret = b.cookie("csrftoken").unwrap();

    // request.user comes from X-Auth-User.
    let who: Value = get(&b, "/api/whoami").await.json().await.unwrap();
    assert_eq!(who["username"], "alice", "{who}");
    assert_eq!(who["identityHeaders"]["HTTP_X_AUTH_USER"], "alice");

    // A POST with the gateway's token passes the gateway's CSRF checks and Django's own
    // (Origin in CSRF_TRUSTED_ORIGINS, csrftoken cookie + X-CSRFToken header).
    let echo = |token: Option<&str>, origin: &str| {
        let mut req = b.http.post(format!("{}/api/echo", gw.url)).header("Origin", origin).json(&json!({ "x": 1 }));
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
    let form: Value = get(&b, "/api/form").await.json().await.unwrap();
    assert_eq!(b.cookie("csrftoken").as_deref(), Some(secret.as_str()), "Django kept the gateway's secret");
    let res = b
        .http
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
    let who: Value = spoof("/api/whoami", &b.http, &gw.url).await.unwrap().json().await.unwrap();
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
    let zoe = Browser::new(&gw);
    assert_eq!(login(&zoe, "zoë", &password_of("zoë")).await.0, 200);
    let who: Value = get(&zoe, "/api/whoami").await.json().await.unwrap();
    assert_eq!(who["username"], "zoë", "{who}");

    // Logging out of the gateway logs out of Django at once (the middleware is stateless).
    let res = b
        .http
        .post(format!("{}/api/auth/logout", gw.url))
        .header("X-CSRFToken", &token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(get(&b, "/api/whoami").await.status(), 401);
    let who: Value = get(&b, "/public/whoami").await.json().await.unwrap();
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
    assert_eq!(login_status(&gw, "u_bcrypt", new).await, 200);
    assert_eq!(login_status(&gw, "u_bcrypt", &old).await, 401);

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

    let gw = gateway("", &dir.join("data")).start().await;
    for h in HASHERS {
        let user = format!("u_{h}");
        let before = gw.state.users.find_by_login(&user).await.unwrap().unwrap().password_hash;
        assert!(before.starts_with(&format!("{h}$")), "imported as is: {before}");
        assert_eq!(login_status(&gw, &user, &password_of(&user)).await, 200, "{user}");
        let after = stored_hash_when(&gw.state, &user, |h| h.starts_with("$argon2id$")).await;
        assert!(after.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{user} upgraded: {after}");
        assert_eq!(login_status(&gw, &user, &password_of(&user)).await, 200, "{user} after the upgrade");
        assert_eq!(login_status(&gw, &user, "wrong-password-1").await, 401);
    }
    assert_eq!(login_status(&gw, "inactive", &password_of("inactive")).await, 401);
    assert_eq!(login_status(&gw, "nopass", &password_of("nopass")).await, 401);
    let b = Browser::new(&gw);
    assert_eq!(login(&b, "alice@example.com", &password_of("alice")).await.0, 200, "native stores log in by email");
    let session: Value = get(&b, "/api/auth/session").await.json().await.unwrap();
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
    let (db, schema) = Db::postgres("django").await;
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

    schema.drop().await;
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
