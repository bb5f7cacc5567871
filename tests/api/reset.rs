//! Password reset by mail, through a real SMTP server (aiosmtpd): single-use links built from
//! `public_url`, expiry, no account enumeration (same answer, same timing), per-address limit,
//! and the development `.eml` outbox.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Browser, PASSWORD, USER, problem, start};
use crate::smtp::{Smtp, wait_for_in};

const NEW_PASSWORD: &str = "a brand new passphrase 42";

fn smtp_config(smtp: &Smtp, extra: &str) -> String {
    format!("[mail]\nsmtp_url = \"{}\"\nfrom = \"Gate <gate@example.org>\"\n{extra}", smtp.url())
}

async fn request_reset(b: &Browser, email: &str) -> reqwest::Response {
    let token = b.csrf().await;
    b.post("/password/reset", &token, json!({ "email": email })).await
}

async fn confirm(b: &Browser, token: &str, password: &str) -> reqwest::Response {
    let csrf = b.csrf().await;
    b.post("/password/reset/confirm", &csrf, json!({ "token": token, "newPassword": password })).await
}

#[tokio::test]
async fn reset_link_over_smtp_is_single_use_and_revokes_every_session() {
    let smtp = Smtp::start().await;
    let gw = start(&smtp_config(&smtp, "")).await;
    let laptop = Browser::new(&gw);
    laptop.login().await;
    let phone = Browser::new(&gw);
    phone.login().await;

    // The link comes from public_url, never from Host / X-Forwarded-Host.
    let anon = Browser::new(&gw);
    let csrf = anon.csrf().await;
    let res = anon
        .http
        .post(anon.api("/password/reset"))
        .header("X-CSRFToken", &csrf)
        .header("Host", "evil.example")
        .header("X-Forwarded-Host", "evil.example")
        .json(&json!({ "email": "ALICE@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(res.headers()["cache-control"], "no-store");

    let mail = smtp.wait_for("alice@example.com", "Reset your password").await;
    assert!(mail.from.contains("gate@example.org"), "{}", mail.from);
    let header = |name: &str| mail.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    assert!(header("Content-Type").unwrap().starts_with("multipart/alternative"), "plain text and HTML");
    assert!(header("Date").is_some() && header("Message-ID").is_some());
    let prefix = format!("{}/#/reset?token=", gw.url);
    let token = mail.token_after(&prefix);
    assert_eq!(token.len(), 43, "256-bit token, base64url");
    assert!(!mail.text.contains("evil.example") && !mail.html.contains("evil.example"));
    assert!(mail.html.contains(&format!("{prefix}{token}")), "the HTML part carries the same link");
    assert!(mail.text.contains("30 minutes"), "{}", mail.text);
    // The store keeps only the token's SHA-256.
    let db = std::fs::read(gw.data_dir().join("sessiongate.db")).unwrap();
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()), "raw token not stored");

    // A weak password is refused with the reason, and the link keeps working.
    let (status, code, body) = problem(confirm(&anon, &token, "password").await).await;
    assert_eq!((status, code.as_str()), (422, "weak_password"));
    assert!(body["errors"]["newPassword"].as_str().unwrap().contains("too common"), "{body}");

    let res = confirm(&anon, &token, NEW_PASSWORD).await;
    assert_eq!(res.status(), 200);
    assert_eq!(laptop.whoami().await, 401, "every session revoked");
    assert_eq!(phone.whoami().await, 401, "every session revoked");

    // Single use.
    let (status, code, body) = problem(confirm(&anon, &token, "yet another passphrase 7").await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    assert!(body["errors"]["token"].is_string(), "{body}");
    let (status, _, _) = problem(confirm(&anon, "not-a-token", NEW_PASSWORD).await).await;
    assert_eq!(status, 400);

    assert_eq!(Browser::new(&gw).login_as(USER, PASSWORD).await.status(), 401, "old password gone");
    assert_eq!(Browser::new(&gw).login_as(USER, NEW_PASSWORD).await.status(), 200);
    let me: Value = {
        let b = Browser::new(&gw);
        b.login_as(USER, NEW_PASSWORD).await.json().await.unwrap()
    };
    assert_eq!(me["user"]["emailVerified"], true, "using the mailed link proved the address");

    let notice = smtp.wait_for("alice@example.com", "was changed").await;
    assert!(notice.text.contains("password-reset link"), "{}", notice.text);
}

#[tokio::test]
async fn reset_link_expires() {
    let smtp = Smtp::start().await;
    let gw = start(&smtp_config(&smtp, "[auth]\nreset_token_ttl = \"1s\"\n")).await;
    let b = Browser::new(&gw);
    assert_eq!(request_reset(&b, "alice@example.com").await.status(), 202);
    let mail = smtp.wait_for("alice@example.com", "Reset your password").await;
    let token = mail.token_after("token=");
    gw.clock().advance(Duration::from_millis(1300));
    let (status, code, _) = problem(confirm(&b, &token, NEW_PASSWORD).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"), "expired");
    assert_eq!(Browser::new(&gw).login_as(USER, PASSWORD).await.status(), 200, "password unchanged");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

// Multi-threaded: the gateway's background work (lookup, token, SMTP) must not share a thread
// with the measuring client, as it would not in production either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_address_gets_the_same_answer_and_timing() {
    let smtp = Smtp::start().await;
    let limits = "[rate_limit]\nreset_per_ip = \"1000/1m\"\nreset_per_address = \"1000/1h\"\n";
    let gw = start(&smtp_config(&smtp, limits)).await;
    let b = Browser::new(&gw);
    let csrf = b.csrf().await;
    let send = |email: &'static str| {
        let (b, csrf) = (&b, csrf.clone());
        async move {
            let t = Instant::now();
            let res = b.post("/password/reset", &csrf, json!({ "email": email })).await;
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            let elapsed = t.elapsed();
            // Let the background work (lookup, token, SMTP) finish before the next request, so
            // it does not land on the other path's measurement.
            tokio::time::sleep(Duration::from_millis(60)).await;
            (elapsed, status, body)
        }
    };
    // Warm up both paths once, then alternate so load hits both alike.
    send("alice@example.com").await;
    send("nobody@example.com").await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    let mut bodies = std::collections::BTreeSet::new();
    for _ in 0..12 {
        let (d, status, body) = send("alice@example.com").await;
        assert_eq!(status, 202);
        bodies.insert(body);
        known.push(d);
        let (d, status, body) = send("nobody@example.com").await;
        assert_eq!(status, 202);
        bodies.insert(body);
        unknown.push(d);
    }
    assert_eq!(bodies.len(), 1, "identical bodies: {bodies:?}");
    let (k, u) = (median(known), median(unknown));
    let ratio = k.as_secs_f64() / u.as_secs_f64();
    eprintln!("password reset timing: median known {k:?}, unknown {u:?}, ratio {ratio:.2}");
    assert!((0.5..=2.0).contains(&ratio), "median known {k:?} vs unknown {u:?}: ratio {ratio:.2}");

    // Mail went only to the real account (13 requests).
    let _ = smtp.wait_for("alice@example.com", "Reset").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while smtp.messages().len() < 13 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mails = smtp.messages();
    assert_eq!(mails.len(), 13, "one mail per request for the known address");
    assert!(mails.iter().all(|m| m.to.contains("alice@example.com")));
}

#[tokio::test]
async fn limits_per_ip_answer_429_and_per_address_silently_send_nothing() {
    let smtp = Smtp::start().await;
    let gw = start(&smtp_config(&smtp, "[rate_limit]\nreset_per_ip = \"3/1h\"\nreset_per_address = \"1/1h\"\n")).await;
    let b = Browser::new(&gw);
    assert_eq!(request_reset(&b, "alice@example.com").await.status(), 202);
    assert_eq!(request_reset(&b, "alice@example.com").await.status(), 202, "per address: silent");
    assert_eq!(request_reset(&b, "nobody@example.com").await.status(), 202);
    let res = request_reset(&b, "nobody@example.com").await;
    let retry = res.headers().get("retry-after").cloned();
    let (status, code, _) = problem(res).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    assert!(retry.is_some());
    let _ = smtp.wait_for("alice@example.com", "Reset").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1, "the second request for the address sent nothing");
}

#[tokio::test]
async fn development_outbox_writes_eml_files() {
    let outbox = tempfile::tempdir().unwrap();
    let cfg = format!("[mail]\noutbox_dir = \"{}\"\n", outbox.path().display());
    let gw = start(&cfg).await;
    let b = Browser::new(&gw);
    assert_eq!(request_reset(&b, "alice@example.com").await.status(), 202);
    let mail = wait_for_in(outbox.path(), "alice@example.com", "Reset your password").await;
    assert!(mail.from.contains("noreply@localhost"), "default From: {}", mail.from);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&mail.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the file holds a live link");
    }
    let token = mail.token_after("token=");
    assert_eq!(confirm(&b, &token, NEW_PASSWORD).await.status(), 200);
    assert_eq!(Browser::new(&gw).login_as(USER, NEW_PASSWORD).await.status(), 200);
}
