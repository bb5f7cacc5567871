//! The real binary: first start, CLI user and session management against a real data dir,
//! config errors with exit code 2.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_sessiongate");

fn config(dir: &Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("sessiongate.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"{}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n[users]\nargon2 = {{ memory_kib = 1024, iterations = 1, parallelism = 1 }}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

fn sg(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(port: u16) {
    for _ in 0..100 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server on {port} did not become ready");
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn first_start_with_no_config_bootstraps_admin() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("SESSIONGATE_USERS__ARGON2__MEMORY_KIB", "1024")
        .env("SESSIONGATE_USERS__ARGON2__ITERATIONS", "1")
        .env_remove("NO_COLOR") // the colour decision must come from stderr not being a terminal
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let server = Server(child);
    wait_ready(port).await;
    let data = dir.path().join("sessiongate-data");
    let password = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    assert_eq!(mode(&data.join("initial-admin-password")), 0o600);
    assert_eq!(mode(&data.join("secret.key")), 0o600);
    // Private whatever the umask (issue 13): the directory, the database and its WAL files.
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("sessiongate.db")), 0o600);
    for side in ["sessiongate.db-wal", "sessiongate.db-shm"] {
        if data.join(side).exists() {
            assert_eq!(mode(&data.join(side)), 0o600, "{side}");
        }
    }

    // The demo SPA and the auth API answer; the printed password logs in.
    let page = reqwest::get(format!("http://127.0.0.1:{port}/")).await.unwrap();
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let base = format!("http://127.0.0.1:{port}/api/auth");
    let t: serde_json::Value = client.get(format!("{base}/csrf")).send().await.unwrap().json().await.unwrap();
    let res = client
        .post(format!("{base}/login"))
        .header("X-CSRFToken", t["csrfToken"].as_str().unwrap())
        .json(&serde_json::json!({ "username": "admin", "password": password.trim() }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Changing that password removes its file (issue 17: it would only mislead), and says so.
    let token = res.json::<serde_json::Value>().await.unwrap()["csrfToken"].as_str().unwrap().to_owned();
    let res = client
        .post(format!("{base}/password"))
        .header("X-CSRFToken", token)
        .json(&serde_json::json!({ "currentPassword": password.trim(), "newPassword": "the admin's own passphrase 1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(!data.join("initial-admin-password").exists(), "the initial password's file is gone");
    drop(server);
    let printed = std::io::read_to_string(out).unwrap();
    assert!(printed.contains(password.trim()), "the password is printed once: {printed}");
    // The log (stderr, not a terminal here as under systemd or in a file): plain text without
    // colour codes, the login's audit line with its request id, and never the password.
    let logged = std::io::read_to_string(err).unwrap();
    assert!(!logged.contains('\u{1b}'), "no ANSI escape codes when stderr is not a terminal: {logged:?}");
    assert!(logged.lines().any(|l| l.contains("audit login success") && l.contains("request_id=")), "{logged}");
    assert!(!logged.contains(password.trim()), "the password never reaches the log");
    assert!(logged.contains("the initial admin password was changed: its file is removed"), "{logged}");
}

#[test]
fn user_commands_against_a_real_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), free_port());
    let c = cfg.to_str().unwrap();

    let o = sg(
        dir.path(),
        &["-c", c, "user", "add", "bob", "--email", "bob@example.com", "--password-stdin"],
        Some("a long enough passphrase\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sg(dir.path(), &["-c", c, "user", "add", "BOB", "--password-stdin"], Some("another passphrase\n"));
    assert_eq!(o.status.code(), Some(1), "duplicate (case-insensitive)");
    let o = sg(dir.path(), &["-c", c, "user", "add", "weak", "--password-stdin"], Some("password\n"));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("too common"), "{}", stderr(&o));

    // No stdin password and no terminal: one is generated and printed.
    let o = sg(dir.path(), &["-c", c, "user", "add", "carol"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("password: "));

    let o = sg(dir.path(), &["-c", c, "user", "list", "--json"], None);
    let users: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = users.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["bob", "carol"]);
    assert!(!stdout(&o).contains("argon2"), "hashes never printed");

    assert!(
        sg(dir.path(), &["-c", c, "user", "passwd", "bob", "--password-stdin"], Some("a different passphrase\n"))
            .status
            .success()
    );
    assert!(sg(dir.path(), &["-c", c, "user", "disable", "bob"], None).status.success());
    let o = sg(dir.path(), &["-c", c, "user", "list", "--json"], None);
    assert!(stdout(&o).contains("\"active\": false"));
    assert!(sg(dir.path(), &["-c", c, "user", "enable", "bob"], None).status.success());
    assert!(sg(dir.path(), &["-c", c, "user", "remove", "carol"], None).status.success());
    let o = sg(dir.path(), &["-c", c, "user", "remove", "carol"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no user named `carol`"));
}

/// An administrator lists a user's passkeys and removes one (a lost device), the last one too.
#[tokio::test]
async fn user_passkeys_list_and_remove() {
    use sessiongate::users::{NewPasskey, UserStore};
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), free_port());
    let c = cfg.to_str().unwrap();
    let o = sg(dir.path(), &["-c", c, "user", "add", "dora", "--password-stdin"], Some("a long enough passphrase\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    let id = {
        let pool = sessiongate::db::open_sqlite(&dir.path().join("data/sessiongate.db")).await.unwrap();
        let users = sessiongate::users::sqlite::SqliteUsers::new(pool.clone());
        let dora = users.find_by_login("dora").await.unwrap().unwrap();
        let key = NewPasskey {
            user_id: dora.id,
            credential_id: "cred-dora".into(),
            user_handle: vec![1; 16],
            passkey: "{}".into(),
            name: "Phone \u{1b}[31m".into(),
            transports: None,
            discoverable: Some(true),
        };
        let id = users.passkeys().unwrap().add_passkey(&key, chrono::Utc::now()).await.unwrap().id;
        pool.close().await;
        id
    };
    let o = sg(dir.path(), &["-c", c, "user", "passkeys", "dora", "--json"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let keys: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(keys[0]["id"], id);
    let o = sg(dir.path(), &["-c", c, "user", "passkeys", "dora"], None);
    assert!(!stdout(&o).contains('\u{1b}'), "names are shown escaped: {}", stdout(&o));
    let o = sg(dir.path(), &["-c", c, "user", "passkey-remove", "dora", "999"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no passkey 999"), "{}", stderr(&o));
    let o = sg(dir.path(), &["-c", c, "user", "passkey-remove", "dora", &id.to_string()], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sg(dir.path(), &["-c", c, "user", "passkeys", "dora", "--json"], None);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap(), serde_json::json!([]));
    let o = sg(dir.path(), &["-c", c, "audit", "--user", "dora", "--json"], None);
    assert!(stdout(&o).contains("passkey_removed"), "{}", stdout(&o));
}

#[tokio::test]
async fn session_commands_revoke_a_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port);
    let c = cfg.to_str().unwrap().to_owned();
    assert!(
        sg(dir.path(), &["-c", &c, "user", "add", "dave", "--password-stdin"], Some("dave's passphrase\n"))
            .status
            .success()
    );
    let server = Server(
        Command::new(BIN).args(["-c", &c, "serve"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap(),
    );
    wait_ready(port).await;

    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let base = format!("http://127.0.0.1:{port}/api/auth");
    let t: serde_json::Value = client.get(format!("{base}/csrf")).send().await.unwrap().json().await.unwrap();
    let res = client
        .post(format!("{base}/login"))
        .header("X-CSRFToken", t["csrfToken"].as_str().unwrap())
        .json(&serde_json::json!({ "username": "dave", "password": "dave's passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let o = sg(dir.path(), &["-c", &c, "session", "list", "--user", "dave", "--json"], None);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["user"], "dave");
    // The table's columns line up (each as wide as its longest value).
    let o = sg(dir.path(), &["-c", &c, "session", "list"], None);
    let table = stdout(&o);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines.len() >= 2, "{table}");
    let col = |l: &str, name: &str| l.find(name).unwrap();
    let (user_at, ip_at) = (col(lines[0], "USER"), col(lines[0], "IP"));
    for l in &lines[1..] {
        assert_eq!(l.char_indices().nth(user_at).map(|(_, ch)| ch != ' '), Some(true), "{table}");
        assert_eq!(&l[ip_at - 2..ip_at], "  ", "{table}");
    }

    let o = sg(dir.path(), &["-c", &c, "session", "revoke", &id], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("INFO"), "a command's log lines stay below warn: {}", stderr(&o));
    assert_eq!(client.get(format!("{base}/session")).send().await.unwrap().status(), 401, "revoked from the CLI");
    let o = sg(dir.path(), &["-c", &c, "session", "revoke", &id], None);
    assert_eq!(o.status.code(), Some(1));
    drop(server);
}

#[test]
fn config_errors_exit_2_and_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[session]\nidle_timout = \"1h\"\n").unwrap();
    let o = sg(dir.path(), &["-c", path.to_str().unwrap(), "check"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`session.idle_timout`"), "{}", stderr(&o));

    std::fs::write(
        &path,
        "mode = \"cross-origin\"\npublic_url = \"http://api.example.com\"\n[cors]\nallowed_origins = [\"*\"]\n",
    )
    .unwrap();
    let o = sg(dir.path(), &["-c", path.to_str().unwrap(), "check"], None);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("`public_url`") && err.contains("`cors.allowed_origins`"), "every problem at once: {err}");

    let o = Command::new(BIN)
        .current_dir(dir.path())
        .args(["check"])
        .env("SESSIONGATE_SESSION__IDLE_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("session.idle_timeout"), "{}", stderr(&o));

    let o = sg(dir.path(), &["-c", "missing.toml", "check"], None);
    assert_eq!(o.status.code(), Some(2));
    let o = sg(dir.path(), &["frobnicate"], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn init_writes_a_valid_config_once() {
    let dir = tempfile::tempdir().unwrap();
    let o = sg(dir.path(), &["init", "--mode", "cross-origin"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.path().join("sessiongate.toml")).unwrap();
    assert!(text.contains("mode = \"cross-origin\"") && text.contains("secret_key = \""));
    assert_eq!(mode(&dir.path().join("sessiongate.toml")), 0o600, "it holds the secret key");
    let o = sg(dir.path(), &["init"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--force"));
    assert!(sg(dir.path(), &["init", "--force"], None).status.success());
    // The written file validates (check reads ./sessiongate.toml by default).
    let o = sg(dir.path(), &["check"], None);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[cfg(unix)]
#[test]
fn check_warns_about_a_data_dir_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sessiongate-data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("sessiongate.db"), "").unwrap();
    std::fs::set_permissions(data.join("sessiongate.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN).current_dir(dir.path()).arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sessiongate-data is mode 0755") && text.contains("chmod 700"), "{text}");
    assert!(text.contains("sessiongate.db is mode 0644") && text.contains("chmod 600"), "{text}");
}

/// Every option and argument of the user and session commands says what it is (issue 17), and a
/// bare `session revoke` names both ways to call it.
#[test]
fn user_and_session_options_have_help() {
    let dir = tempfile::tempdir().unwrap();
    for (args, wanted) in [
        (
            &["user", "add", "--help"][..],
            &["<NAME>  The username", "--email <ADDRESS>  The account's email", "--password-stdin   Read the password"]
                [..],
        ),
        (&["user", "list", "--help"][..], &["--json", "One JSON array"][..]),
        (&["session", "list", "--help"][..], &["--user <NAME>  Only this user's", "--json"][..]),
        (
            &["session", "revoke", "--help"][..],
            &["<ID>", "The session's public id", "--user <NAME>  Revoke every session"][..],
        ),
    ] {
        let o = sg(dir.path(), args, None);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        // Column widths vary with the longest option: compare with single spaces.
        let help = stdout(&o).split_whitespace().collect::<Vec<_>>().join(" ");
        for w in wanted {
            let w = w.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(help.contains(&w), "{args:?} --help lacks {w:?}:\n{help}");
        }
    }
    let o = sg(dir.path(), &["session", "revoke"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("session revoke --user <NAME>"), "{}", stderr(&o));
    assert!(!dir.path().join("sessiongate-data").exists(), "help and usage errors write nothing");
}

/// `sessiongate check` on a fresh directory checks the stores without creating the data dir,
/// the database or the secret key (issue 17: a check writes nothing).
#[test]
fn check_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = sg(dir.path(), &["check"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("has no database yet"), "{}", stdout(&o));
    assert!(stdout(&o).contains("configuration ok"), "{}", stdout(&o));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written next to the config");
}
