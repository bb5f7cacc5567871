//! Login, whoami, logout, session listing and revocation, fixation.

use serde_json::{Value, json};

use crate::harness::{Browser, PASSWORD, USER, problem, start};

#[tokio::test]
async fn login_whoami_logout_and_replay() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    assert_eq!(b.whoami().await, 401);

    let token = b.csrf().await;
    let res = b.post("/login", &token, json!({ "username": USER, "password": PASSWORD })).await;
    assert_eq!(res.status(), 200);
    let set_cookies: Vec<String> =
        res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(res.headers().get_all("vary").iter().any(|v| v == "Cookie"));
    assert_eq!(res.headers()["cache-control"], "no-store");
    let session_cookie = set_cookies.iter().find(|c| c.starts_with("sessionid=")).expect("session cookie");
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"), "{session_cookie}");
    assert!(session_cookie.contains("Max-Age=1209600"), "remembered by default: {session_cookie}");
    let csrf_cookie = set_cookies.iter().find(|c| c.starts_with("csrftoken=")).expect("csrf rotated");
    assert!(!csrf_cookie.contains("HttpOnly"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["username"], USER);
    assert_eq!(body["user"]["email"], "alice@example.com");
    assert!(body["user"].get("passwordHash").is_none());
    let new_token = body["csrfToken"].as_str().unwrap().to_owned();
    assert_eq!(new_token.len(), 64);

    let me: Value = b.http.get(b.api("/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["user"]["username"], USER);
    assert_eq!(me["session"]["current"], true);
    let cookie = b.cookie("sessionid").unwrap();
    assert_eq!(cookie.len(), 43, "256-bit base64url token");
    assert!(!me.to_string().contains(&cookie), "the token never appears in JSON");

    let res = b.post("/logout", &new_token, json!({})).await;
    assert_eq!(res.status(), 204);
    assert!(res.headers()["set-cookie"].to_str().unwrap().starts_with("sessionid=; Path=/; Max-Age=0"));
    assert_eq!(b.whoami().await, 401);

    // Replaying the old cookie after logout: the session is gone server-side.
    let replay = reqwest::Client::new()
        .get(b.api("/session"))
        .header("cookie", format!("sessionid={cookie}"))
        .send()
        .await
        .unwrap();
    let (status, code, _) = problem(replay).await;
    assert_eq!((status, code.as_str()), (401, "not_authenticated"));

    // Logout again, not logged in: still 204.
    let token = b.csrf().await;
    assert_eq!(b.post("/logout", &token, json!({})).await.status(), 204);
}

#[tokio::test]
async fn login_by_email_and_wrong_password() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let res = b.login_as("ALICE@example.com", PASSWORD).await;
    assert_eq!(res.status(), 200, "email login is case-insensitive");
    let b2 = Browser::new(&gw);
    let (status, code, body) = problem(b2.login_as(USER, "wrong password here").await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_credentials"));
    assert_eq!(body["type"], "urn:sessiongate:problem:invalid_credentials");
    let (status, code, _) = problem(b2.login_as("nobody", PASSWORD).await).await;
    assert_eq!((status, code.as_str()), (401, "invalid_credentials"), "unknown users look the same");
}

#[tokio::test]
async fn planted_session_cookie_is_never_adopted() {
    let gw = start("").await;
    // An attacker plants a well-formed token they know.
    let planted = "A".repeat(43);
    let victim = Browser::new(&gw);
    victim.set_cookie(&format!("sessionid={planted}"));
    victim.login().await;
    let issued = victim.cookie("sessionid").unwrap();
    assert_ne!(issued, planted);
    let attacker = reqwest::Client::new()
        .get(victim.api("/session"))
        .header("cookie", format!("sessionid={planted}"))
        .send()
        .await
        .unwrap();
    assert_eq!(attacker.status(), 401);

    // An attacker logged in as themselves plants their own live cookie: logging in as the victim
    // deletes that session rather than upgrading it.
    let attacker = Browser::new(&gw);
    attacker.login().await;
    let attacker_cookie = attacker.cookie("sessionid").unwrap();
    let victim = Browser::new(&gw);
    victim.set_cookie(&format!("sessionid={attacker_cookie}"));
    victim.login().await;
    assert_ne!(victim.cookie("sessionid").unwrap(), attacker_cookie);
    assert_eq!(attacker.whoami().await, 401, "the planted session was deleted at login");
}

#[tokio::test]
async fn sessions_listing_and_revocation() {
    let gw = start("").await;
    let phone = Browser::new(&gw);
    let laptop = Browser::new(&gw);
    phone.login().await;
    let token = laptop.login().await;

    let list: Value = laptop.http.get(laptop.api("/sessions")).send().await.unwrap().json().await.unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    for key in ["id", "createdAt", "lastSeenAt", "expiresAt", "authenticatedAt", "ip", "userAgent", "remember"] {
        assert!(sessions[0].get(key).is_some(), "{key}");
    }
    let phone_cookie = phone.cookie("sessionid").unwrap();
    assert!(!list.to_string().contains(&phone_cookie));

    // Someone else's (or a made-up) id is 404.
    let res =
        laptop.http.delete(laptop.api("/sessions/not-a-session")).header("X-CSRFToken", &token).send().await.unwrap();
    assert_eq!(problem(res).await.1, "not_found");

    let res = laptop.post("/sessions/revoke-others", &token, json!({})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["revoked"], 1);
    assert_eq!(phone.whoami().await, 401, "revocation takes effect on the next request");
    assert_eq!(laptop.whoami().await, 200);

    // Revoke the current session by id: logged out, cookie cleared.
    let list: Value = laptop.http.get(laptop.api("/sessions")).send().await.unwrap().json().await.unwrap();
    let id = list["sessions"][0]["id"].as_str().unwrap().to_owned();
    let res =
        laptop.http.delete(laptop.api(&format!("/sessions/{id}"))).header("X-CSRFToken", &token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(laptop.whoami().await, 401);
}

#[tokio::test]
async fn other_users_sessions_cannot_be_revoked() {
    let gw = start("").await;
    let hash = gw.state.passwords.hash("another long passphrase".into()).await.unwrap();
    gw.state
        .users
        .create(sessiongate::users::NewUser { username: "bob".into(), email: None, password_hash: hash })
        .await
        .unwrap();
    let alice = Browser::new(&gw);
    alice.login().await;
    let bob = Browser::new(&gw);
    assert_eq!(bob.login_as("bob", "another long passphrase").await.status(), 200);
    let bob_token = bob.csrf().await;
    let alice_list: Value = alice.http.get(alice.api("/sessions")).send().await.unwrap().json().await.unwrap();
    let alice_id = alice_list["sessions"][0]["id"].as_str().unwrap();
    let res = bob
        .http
        .delete(bob.api(&format!("/sessions/{alice_id}")))
        .header("X-CSRFToken", &bob_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(alice.whoami().await, 200);
}

#[tokio::test]
async fn signup_off_by_default_and_validated_when_on() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let token = b.csrf().await;
    let res = b.post("/signup", &token, json!({ "username": "carol", "password": "a fine long passphrase" })).await;
    assert_eq!(problem(res).await.1, "signup_disabled");

    let gw = start("[auth]\nsignup = true\n").await;
    let b = Browser::new(&gw);
    let token = b.csrf().await;
    let weak = b.post("/signup", &token, json!({ "username": "carol", "password": "password1" })).await;
    let (status, code, body) = problem(weak).await;
    assert_eq!((status, code.as_str()), (422, "weak_password"));
    assert!(body["errors"]["password"].as_str().unwrap().contains("common"));
    let same = b.post("/signup", &token, json!({ "username": "carolcarol", "password": "CarolCarol" })).await;
    assert!(problem(same).await.2["detail"].as_str().unwrap().contains("username"));
    let taken = b.post("/signup", &token, json!({ "username": "ALICE", "password": "a fine long passphrase" })).await;
    assert_eq!(problem(taken).await.0, 409, "usernames are case-insensitively unique");

    let res = b
        .post(
            "/signup",
            &token,
            json!({ "username": "carol", "password": "a fine long passphrase", "email": "c@example.com" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(b.whoami().await, 200, "signup logs in");
}

#[tokio::test]
async fn security_headers_everywhere_and_health() {
    let gw = start("").await;
    let c = reqwest::Client::new();
    for path in ["/", "/api/auth/session", "/healthz", "/nope.js"] {
        let res = c.get(format!("{}{path}", gw.url)).send().await.unwrap();
        assert_eq!(res.headers()["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(res.headers()["referrer-policy"], "same-origin", "{path}");
        assert!(res.headers().get("strict-transport-security").is_none(), "no HSTS over http");
    }
    let ready: Value = c.get(format!("{}/readyz", gw.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ok");
    let res = c.get(format!("{}/api/auth/nope", gw.url)).send().await.unwrap();
    assert_eq!(problem(res).await.1, "not_found");
    // A missing asset is a 404, not the SPA's index.html.
    let res = c.get(format!("{}/assets/app.123.js", gw.url)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = c.get(format!("{}/some/client/route", gw.url)).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("<html"));
}

/// `GET /config`: the policy a login or account page shows (anonymous; no secrets).
#[tokio::test]
async fn public_config_tells_the_password_policy_signup_and_passkeys() {
    let gw = crate::harness::start("[users]\npassword_min_length = 12\n[auth]\nsignup = true\n").await;
    let b = crate::harness::Browser::new(&gw);
    let v: serde_json::Value = b.http.get(b.api("/config")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v, serde_json::json!({ "passwordMinLength": 12, "signup": true, "passkeys": true }));
    let gw = crate::harness::start("[passkeys]\nenabled = false\n").await;
    let b = crate::harness::Browser::new(&gw);
    let v: serde_json::Value = b.http.get(b.api("/config")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v, serde_json::json!({ "passwordMinLength": 8, "signup": false, "passkeys": false }));
}
