//! TOTP two-factor authentication: enrollment, two-step login with codes computed here
//! (totp-rs), single use, recovery codes, rate limits, disabling.

use serde_json::{Value, json};

use crate::harness::{Browser, Gateway, PASSWORD, USER, problem, start};

/// The test gateways' time (see `harness::epoch`): one second into a TOTP step.
pub(crate) fn now() -> u64 {
    crate::harness::epoch() as u64
}

fn totp_for(secret_b32: &str) -> totp_rs::Totp {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32 secret");
    totp_rs::Builder::new().with_secret(secret).build().expect("a valid TOTP")
}

/// The code for `steps` time steps from now (-1, 0, +1).
pub(crate) fn code(t: &totp_rs::Totp, steps: i64) -> String {
    t.generate((now() as i64 + steps * 30) as u64).to_string()
}

/// Enroll alice on `b` (logged in): confirm with the previous step's code. Returns the TOTP and
/// the recovery codes.
pub(crate) async fn enroll(b: &Browser, token: &str) -> (totp_rs::Totp, Vec<String>) {
    let res = b.post("/mfa/totp/setup", token, json!({})).await;
    assert_eq!(res.status(), 200);
    let setup: Value = res.json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap();
    let t = totp_for(secret);
    let res = b.post("/mfa/totp/confirm", token, json!({ "code": code(&t, -1) })).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let codes = body["recoveryCodes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    (t, codes)
}

/// `/login` for an account with 2FA: `{mfaRequired: true}`, no session yet.
pub(crate) async fn first_step(gw: &Gateway) -> Browser {
    let b = Browser::new(gw);
    let res = b.login_as(USER, PASSWORD).await;
    assert_eq!(res.status(), 200);
    let pending = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("sessiongate_mfa="))
        .expect("pending cookie");
    assert!(pending.contains("HttpOnly") && pending.contains("Max-Age=300"), "{pending}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({ "mfaRequired": true }));
    assert!(b.cookie("sessionid").is_none(), "no session before the second factor");
    assert_eq!(b.whoami().await, 401);
    b
}

pub(crate) async fn second_step(b: &Browser, body: Value) -> reqwest::Response {
    let token = b.csrf().await;
    b.post("/login/mfa", &token, body).await
}

#[tokio::test]
async fn totp_enrollment_login_single_use_codes_and_recovery_codes() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let other = Browser::new(&gw);
    other.login().await;
    let token = b.login().await;

    // Setup: secret, otpauth URL and an SVG QR code; nothing enabled until confirmed.
    let res = b.post("/mfa/totp/setup", &token, json!({})).await;
    assert_eq!(res.status(), 200);
    let setup: Value = res.json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "160-bit secret in base32");
    let url = setup["otpauthUrl"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/127.0.0.1:alice?"), "{url}");
    assert!(url.contains(&format!("secret={secret}")) && url.contains("issuer=127.0.0.1"), "{url}");
    let svg = setup["qrSvg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
    let me: Value = b.http.get(b.api("/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["user"]["mfa"], false);
    // The secret is sealed in the database, never stored in clear.
    let db = std::fs::read(gw.data_dir().join("sessiongate.db")).unwrap();
    let raw = totp_rs::Secret::try_from_base32(&secret).unwrap();
    assert!(!db.windows(20).any(|w| w == raw.as_ref()), "TOTP secret not stored in clear");

    let t = totp_for(&secret);
    let wrong = if code(&t, -1) == "000000" { "111111" } else { "000000" };
    let (status, code_, body) = problem(b.post("/mfa/totp/confirm", &token, json!({ "code": wrong })).await).await;
    assert_eq!((status, code_.as_str()), (400, "invalid_request"));
    assert!(body["errors"]["code"].is_string());
    let res = b.post("/mfa/totp/confirm", &token, json!({ "code": code(&t, -1) })).await;
    assert_eq!(res.status(), 200);
    let recovery: Vec<String> = res.json::<Value>().await.unwrap()["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    assert!(recovery.iter().all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'), "{recovery:?}");
    assert_eq!(recovery.iter().collect::<std::collections::BTreeSet<_>>().len(), 10);
    let me: Value = b.http.get(b.api("/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["user"]["mfa"], true);
    assert_eq!(b.whoami().await, 200, "the enrolling session stays");
    assert_eq!(other.whoami().await, 401, "sessions opened without the second factor are revoked");
    let (status, _, _) = problem(b.post("/mfa/totp/setup", &token, json!({})).await).await;
    assert_eq!(status, 400, "already on");

    // Login: two steps; the current code works once.
    let phone = first_step(&gw).await;
    let now_code = code(&t, 0);
    let res = second_step(&phone, json!({ "code": now_code })).await;
    assert_eq!(res.status(), 200);
    let cleared =
        res.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("sessiongate_mfa=;"));
    assert!(cleared, "pending cookie deleted");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["username"], USER);
    assert_eq!(body["csrfToken"].as_str().unwrap().len(), 64);
    assert_eq!(phone.whoami().await, 200);

    let thief = first_step(&gw).await;
    let (status, code_, _) = problem(second_step(&thief, json!({ "code": now_code })).await).await;
    assert_eq!((status, code_.as_str()), (401, "invalid_credentials"), "a code is accepted once");
    assert_eq!(thief.whoami().await, 401);
    // An older step than the last used one is refused too.
    let (status, _, _) = problem(second_step(&thief, json!({ "code": code(&t, -1) })).await).await;
    assert_eq!(status, 401);

    // A recovery code works exactly once (case and dashes don't matter).
    let tablet = first_step(&gw).await;
    let rc = recovery[3].to_uppercase().replace('-', " ");
    assert_eq!(second_step(&tablet, json!({ "recoveryCode": rc })).await.status(), 200);
    assert_eq!(tablet.whoami().await, 200);
    let again = first_step(&gw).await;
    let (status, _, _) = problem(second_step(&again, json!({ "recoveryCode": recovery[3] })).await).await;
    assert_eq!(status, 401, "recovery codes are single use");
    assert_eq!(second_step(&again, json!({ "recoveryCode": recovery[4] })).await.status(), 200);

    // Reauth with the next code.
    let res = phone.post("/reauth", &phone.csrf().await, json!({ "code": code(&t, 1) })).await;
    assert_eq!(res.status(), 200);

    // No pending login: 401; neither or both fields: 400.
    let stranger = Browser::new(&gw);
    let (status, code_, _) = problem(second_step(&stranger, json!({ "code": code(&t, 1) })).await).await;
    assert_eq!((status, code_.as_str()), (401, "not_authenticated"));
    let p = first_step(&gw).await;
    let (status, _, _) = problem(second_step(&p, json!({})).await).await;
    assert_eq!(status, 400);
    let (status, _, _) = problem(second_step(&p, json!({ "code": "1", "recoveryCode": "2" })).await).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn forged_or_stale_pending_state_is_refused() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let token = b.login().await;
    let (t, _) = enroll(&b, &token).await;

    let p = first_step(&gw).await;
    // A forged cookie does not open.
    let forged = Browser::new(&gw);
    forged.set_cookie("sessiongate_mfa=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let (status, _, _) = problem(second_step(&forged, json!({ "code": code(&t, 0) })).await).await;
    assert_eq!(status, 401);
    // A password change after the first step voids it.
    let res = b
        .post(
            "/password",
            &b.csrf().await,
            json!({ "currentPassword": PASSWORD, "newPassword": "another long passphrase" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let (status, code_, _) = problem(second_step(&p, json!({ "code": code(&t, 0) })).await).await;
    assert_eq!((status, code_.as_str()), (401, "not_authenticated"));
}

#[tokio::test]
async fn wrong_codes_are_rate_limited_per_account() {
    let gw = start("[rate_limit]\nmfa_per_account = \"3/5m\"\n").await;
    let b = Browser::new(&gw);
    let token = b.login().await;
    let (t, _) = enroll(&b, &token).await;
    let p = first_step(&gw).await;
    let good = code(&t, 0);
    let wrong = if good == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let (status, _, _) = problem(second_step(&p, json!({ "code": wrong })).await).await;
        assert_eq!(status, 401);
    }
    let res = second_step(&p, json!({ "code": good })).await;
    assert!(res.headers().contains_key("retry-after"));
    let (status, code_, _) = problem(res).await;
    assert_eq!((status, code_.as_str()), (429, "rate_limited"), "even the right code waits");
}

#[tokio::test]
async fn disabling_totp_needs_recent_auth_and_revokes_other_sessions() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let token = b.login().await;
    let (t, _) = enroll(&b, &token).await;
    let phone = first_step(&gw).await;
    assert_eq!(second_step(&phone, json!({ "code": code(&t, 0) })).await.status(), 200);

    let res = b.post("/mfa/totp/disable", &token, json!({})).await;
    assert_eq!(res.status(), 204);
    assert_eq!(phone.whoami().await, 401, "other sessions revoked");
    assert_eq!(b.whoami().await, 200);
    let me: Value = b.http.get(b.api("/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["user"]["mfa"], false);
    // Back to one-step logins.
    let res = Browser::new(&gw).login_as(USER, PASSWORD).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["username"], USER);
    assert_eq!(b.post("/mfa/totp/disable", &token, json!({})).await.status(), 204, "idempotent");
}
