//! Password change, policy, re-authentication and the sessions a credential change ends
//! (including `sessiongate user disable/remove/passwd` against a running gateway).

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Browser, Gateway, PASSWORD, USER, problem, start};

const NEW_PASSWORD: &str = "a brand new passphrase 42";

async fn change(b: &Browser, token: &str, current: &str, new: &str) -> reqwest::Response {
    b.post("/password", token, json!({ "currentPassword": current, "newPassword": new })).await
}

#[tokio::test]
async fn change_password_revokes_the_other_device_and_rotates_this_one() {
    let gw = start("").await;
    let laptop = Browser::new(&gw);
    let token = laptop.login().await;
    let phone = Browser::new(&gw);
    phone.login().await;
    let old_cookie = laptop.cookie("sessionid").unwrap();
    let old_csrf_cookie = laptop.cookie("csrftoken").unwrap();

    let res = change(&laptop, &token, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(res.status(), 200);
    let set: Vec<String> = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(set.iter().any(|c| c.starts_with("sessionid=") && c.contains("HttpOnly")), "{set:?}");
    assert!(set.iter().any(|c| c.starts_with("csrftoken=")), "CSRF rotated: {set:?}");
    let body: Value = res.json().await.unwrap();
    let new_token = body["csrfToken"].as_str().unwrap().to_owned();
    assert_eq!(new_token.len(), 64);

    let new_cookie = laptop.cookie("sessionid").unwrap();
    assert_ne!(new_cookie, old_cookie, "session token rotated");
    assert_ne!(laptop.cookie("csrftoken").unwrap(), old_csrf_cookie, "CSRF secret rotated");
    assert_eq!(laptop.whoami().await, 200, "this device stays signed in");
    assert_eq!(phone.whoami().await, 401, "the other device is signed out");

    // The old token is dead; the returned CSRF token works, the old one does not (session-bound).
    let replay = reqwest::Client::new()
        .get(laptop.api("/session"))
        .header("cookie", format!("sessionid={old_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    let (status, code, _) = problem(laptop.post("/sessions/revoke-others", &token, json!({})).await).await;
    assert_eq!((status, code.as_str()), (403, "csrf_failed"));
    let res = laptop.post("/sessions/revoke-others", &new_token, json!({})).await;
    assert_eq!(res.status(), 200);

    let me: Value = laptop.http.get(laptop.api("/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["session"]["current"], true);
    let sessions: Value = laptop.http.get(laptop.api("/sessions")).send().await.unwrap().json().await.unwrap();
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);

    assert_eq!(Browser::new(&gw).login_as(USER, PASSWORD).await.status(), 401);
    assert_eq!(Browser::new(&gw).login_as(USER, NEW_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn weak_and_wrong_passwords_are_refused_with_the_reason() {
    let gw = start("[users]\npassword_min_length = 10\n").await;
    let b = Browser::new(&gw);
    let token = b.login().await;
    let cases: [(&str, &str); 5] = [
        ("short", "at least 10 characters"),
        ("ééééééééé", "at least 10 characters"),
        ("qwertyuiop", "too common"),
        ("ALICE     ", "username"),
        (&"x".repeat(1025), "at most 1024 bytes"),
    ];
    for (password, reason) in cases {
        let (status, code, body) = problem(change(&b, &token, PASSWORD, password).await).await;
        assert_eq!((status, code.as_str()), (422, "weak_password"), "{password}");
        let got = body["errors"]["newPassword"].as_str().unwrap_or_default();
        assert!(got.contains(reason), "{password:?}: {got:?} should mention {reason:?}");
        assert!(body["detail"].as_str().unwrap().contains(reason), "{body}");
    }
    let gw2 = start("").await;
    let b2 = Browser::new(&gw2);
    let t2 = b2.login().await;
    let (status, code, body) = problem(change(&b2, &t2, PASSWORD, "Alice").await).await;
    assert_eq!((status, code.as_str()), (422, "weak_password"));
    assert!(body["errors"]["newPassword"].as_str().unwrap().contains("at least 8"));
    let (status, code, body) = problem(change(&b2, &t2, "not my password", NEW_PASSWORD).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_credentials"));
    assert_eq!(body["errors"]["currentPassword"], "incorrect");
    assert_eq!(b2.whoami().await, 200, "a wrong current password does not end the session");
}

#[tokio::test]
async fn the_username_itself_is_refused() {
    let gw = start("").await;
    let hash = gw.state.passwords.hash(PASSWORD.into()).await.unwrap();
    gw.state
        .users
        .create(sessiongate::users::NewUser { username: "longusername".into(), email: None, password_hash: hash })
        .await
        .unwrap();
    let b = Browser::new(&gw);
    let res = b.login_as("longusername", PASSWORD).await;
    let token = res.json::<Value>().await.unwrap()["csrfToken"].as_str().unwrap().to_owned();
    let (status, code, body) = problem(change(&b, &token, PASSWORD, "LongUsername").await).await;
    assert_eq!((status, code.as_str()), (422, "weak_password"));
    assert!(body["errors"]["newPassword"].as_str().unwrap().contains("username"), "{body}");
}

#[tokio::test]
async fn sensitive_changes_need_a_recent_login_then_reauth_rotates() {
    let gw = start("[auth]\nreauth_window = \"1s\"\n").await;
    let b = Browser::new(&gw);
    let token = b.login().await;
    gw.clock().advance(Duration::from_millis(1300));

    let (status, code, _) = problem(change(&b, &token, PASSWORD, NEW_PASSWORD).await).await;
    assert_eq!((status, code.as_str()), (403, "reauth_required"));
    for (path, body) in [
        ("/mfa/totp/setup", json!({})),
        ("/mfa/totp/confirm", json!({ "code": "123456" })),
        ("/mfa/totp/disable", json!({})),
        ("/email", json!({ "email": "new@example.com" })),
    ] {
        let (status, code, _) = problem(b.post(path, &token, body).await).await;
        assert_eq!((status, code.as_str()), (403, "reauth_required"), "{path}");
    }

    let (status, code, _) = problem(b.post("/reauth", &token, json!({ "password": "wrong one" })).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_credentials"));
    let (status, code, _) = problem(b.post("/reauth", &token, json!({ "code": "123456" })).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"), "no 2FA: code not accepted");
    let (status, _, _) = problem(b.post("/reauth", &token, json!({})).await).await;
    assert_eq!(status, 400);

    let old_cookie = b.cookie("sessionid").unwrap();
    let before: Value = b.http.get(b.api("/session")).send().await.unwrap().json().await.unwrap();
    let res = b.post("/reauth", &token, json!({ "password": PASSWORD })).await;
    assert_eq!(res.status(), 200);
    let new_token = res.json::<Value>().await.unwrap()["csrfToken"].as_str().unwrap().to_owned();
    assert_ne!(b.cookie("sessionid").unwrap(), old_cookie, "reauth rotates the session token");
    let after: Value = b.http.get(b.api("/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(after["session"]["id"], before["session"]["id"], "same session, new token");
    let at =
        |v: &Value| chrono::DateTime::parse_from_rfc3339(v["session"]["authenticatedAt"].as_str().unwrap()).unwrap();
    assert!(at(&after) > at(&before), "authenticatedAt refreshed");
    let replay = reqwest::Client::new()
        .get(b.api("/session"))
        .header("cookie", format!("sessionid={old_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401, "the pre-reauth token is dead");

    assert_eq!(change(&b, &new_token, PASSWORD, NEW_PASSWORD).await.status(), 200);
}

/// `sessiongate user …` against the running gateway's data directory.
fn cli(gw: &Gateway, args: &[&str]) -> std::process::Output {
    let cfg = gw.data_dir().join("cli.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n[users]\nargon2 = {{ memory_kib = 1024, iterations = 1, parallelism = 1 }}\n",
            gw.data_dir().display()
        ),
    )
    .unwrap();
    let mut all = vec!["-c", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = Command::new(env!("CARGO_BIN_EXE_sessiongate"))
        .args(&all)
        .env_remove("SESSIONGATE_SESSION__STORE")
        .stdin(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "sessiongate {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

async fn user_sessions(gw: &Gateway) -> usize {
    let user = gw.state.users.find_by_login(USER).await.unwrap().unwrap();
    gw.state.sessions.list(user.id).await.unwrap().len()
}

#[tokio::test]
async fn user_disable_remove_and_passwd_revoke_every_session() {
    let gw = start("").await;
    let (a, b) = (Browser::new(&gw), Browser::new(&gw));
    a.login().await;
    b.login().await;
    assert_eq!(user_sessions(&gw).await, 2);

    let out = cli(&gw, &["user", "disable", USER]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 session(s) revoked"));
    assert_eq!(user_sessions(&gw).await, 0, "revoked server-side, not just refused");
    assert_eq!(a.whoami().await, 401);
    assert_eq!(b.whoami().await, 401);
    assert_eq!(Browser::new(&gw).login_as(USER, PASSWORD).await.status(), 401, "disabled");

    cli(&gw, &["user", "enable", USER]);
    a.login().await;
    let out = Command::new(env!("CARGO_BIN_EXE_sessiongate"))
        .args(["-c", gw.data_dir().join("cli.toml").to_str().unwrap(), "user", "passwd", USER, "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(format!("{NEW_PASSWORD}\n").as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(a.whoami().await, 401, "user passwd revokes every session");

    let token = a.csrf().await;
    let res = a.post("/login", &token, json!({ "username": USER, "password": NEW_PASSWORD })).await;
    assert_eq!(res.status(), 200);
    cli(&gw, &["user", "remove", USER]);
    assert_eq!(a.whoami().await, 401);
    assert!(gw.state.users.find_by_login(USER).await.unwrap().is_none());
}
