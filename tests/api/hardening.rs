//! Regression tests for the adversarial review of issue 13, black-box over HTTP: each fails on
//! the code before the fix. (Proxy paths, SPA files and upstream cookies: `tests/proxy.rs`,
//! `tests/api/spa.rs`; limiter internals: unit tests in `src/ratelimit*`.)

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Browser, Gateway, PASSWORD, USER, problem, start, start_with};
use crate::mfa::{code, enroll, first_step, second_step};
use crate::smtp::{Mail, read_dir_mails};

const ATTACKER_MAIL: &str = "mallory@evil.example";
const NEW_PASSWORD: &str = "a brand new passphrase 42";

fn outbox(gw: &Gateway) -> std::path::PathBuf {
    gw.data_dir().join("outbox")
}

/// The `n`th (0-based) mail to `to` whose subject contains `subject`, waiting up to 10 s.
async fn nth_mail(gw: &Gateway, to: &str, subject: &str, n: usize) -> Mail {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<Mail> = read_dir_mails(&outbox(gw))
            .into_iter()
            .filter(|m| m.to.contains(to) && m.subject.contains(subject))
            .collect();
        if let Some(m) = found.into_iter().nth(n) {
            return m;
        }
        assert!(Instant::now() < deadline, "no mail #{n} to {to} about {subject:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn me(b: &Browser) -> Value {
    b.http.get(b.api("/session")).send().await.unwrap().json().await.unwrap()
}

/// The attacker's stolen-but-fresh session asks to move alice's address to theirs; returns the
/// raw token of the confirmation link mailed to the attacker, the attacker's browser, and the
/// index of the notice to alice's old address.
async fn attacker_requests_change(gw: &Gateway, n: usize) -> (String, Browser) {
    let attacker = Browser::new(gw);
    let token = attacker.login().await;
    let res = attacker.post("/email", &token, json!({ "email": ATTACKER_MAIL })).await;
    assert_eq!(res.status(), 202);
    let link = nth_mail(gw, ATTACKER_MAIL, "Confirm your email", n).await;
    (link.token_after("token="), attacker)
}

async fn verify(b: &Browser, token: &str) -> reqwest::Response {
    let csrf = b.csrf().await;
    b.post("/email/verify", &csrf, json!({ "token": token })).await
}

async fn email_of(gw: &Gateway) -> Value {
    let b = Browser::new(gw);
    b.login().await;
    me(&b).await["user"]["email"].clone()
}

#[tokio::test]
async fn high_1_a_reset_by_mail_voids_a_pending_email_change() {
    let gw = start("").await;
    let (link, _attacker) = attacker_requests_change(&gw, 0).await;

    // The victim gets the notice, resets the password by mail, signs everything out.
    let notice = nth_mail(&gw, "alice@example.com", "is being changed", 0).await;
    assert!(notice.text.contains(ATTACKER_MAIL), "{}", notice.text);
    let anon = Browser::new(&gw);
    let csrf = anon.csrf().await;
    assert_eq!(anon.post("/password/reset", &csrf, json!({ "email": "alice@example.com" })).await.status(), 202);
    let reset = nth_mail(&gw, "alice@example.com", "Reset your password", 0).await.token_after("token=");
    let csrf = anon.csrf().await;
    let res = anon.post("/password/reset/confirm", &csrf, json!({ "token": reset, "newPassword": NEW_PASSWORD })).await;
    assert_eq!(res.status(), 200);

    // Later, with no session at all, the attacker uses the old link: refused.
    let (status, code, _) = problem(verify(&Browser::new(&gw), &link).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    let victim = Browser::new(&gw);
    assert_eq!(victim.login_as(USER, NEW_PASSWORD).await.status(), 200);
    assert_eq!(me(&victim).await["user"]["email"], "alice@example.com", "the address stayed the victim's");
}

#[tokio::test]
async fn high_1_password_change_and_sign_out_others_void_pending_changes() {
    let gw = start("").await;
    // A password change from the victim's own session.
    let (link, _attacker) = attacker_requests_change(&gw, 0).await;
    let victim = Browser::new(&gw);
    let token = victim.login().await;
    let res =
        victim.post("/password", &token, json!({ "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD })).await;
    assert_eq!(res.status(), 200);
    assert_eq!(verify(&Browser::new(&gw), &link).await.status(), 400, "void after a password change");

    // "Sign out other sessions" (the attacker's among them).
    let attacker = Browser::new(&gw);
    let t = attacker.csrf().await;
    assert_eq!(attacker.post("/login", &t, json!({ "username": USER, "password": NEW_PASSWORD })).await.status(), 200);
    let t = attacker.csrf().await;
    assert_eq!(attacker.post("/email", &t, json!({ "email": ATTACKER_MAIL })).await.status(), 202);
    let link = nth_mail(&gw, ATTACKER_MAIL, "Confirm your email", 1).await.token_after("token=");
    let token = victim.csrf().await;
    let res = victim.post("/sessions/revoke-others", &token, json!({})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(verify(&Browser::new(&gw), &link).await.status(), 400, "void after revoke-others");
    assert_eq!(me(&victim).await["user"]["email"], "alice@example.com");
}

#[tokio::test]
async fn high_1_a_change_is_bound_to_its_session_and_password() {
    let gw = start("").await;
    // Revoking just the session that asked: its link dies with it.
    let (link, attacker) = attacker_requests_change(&gw, 0).await;
    let victim = Browser::new(&gw);
    let token = victim.login().await;
    let sessions: Value = victim.http.get(victim.api("/sessions")).send().await.unwrap().json().await.unwrap();
    let theirs: Vec<String> = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == false)
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &theirs {
        let res = victim.http.delete(victim.api(&format!("/sessions/{id}"))).header("X-CSRFToken", &token).send();
        assert_eq!(res.await.unwrap().status(), 204);
    }
    assert_eq!(attacker.whoami().await, 401);
    assert_eq!(verify(&Browser::new(&gw), &link).await.status(), 400, "refused once its session is gone");

    // Logging out ends the session too.
    let (link, attacker) = attacker_requests_change(&gw, 1).await;
    let t = attacker.csrf().await;
    assert_eq!(attacker.post("/logout", &t, json!({})).await.status(), 204);
    assert_eq!(verify(&Browser::new(&gw), &link).await.status(), 400, "refused after logout");

    // The password changed by the CLI-like path (store + revocation of nothing): the fingerprint
    // no longer matches.
    let (link, _attacker) = attacker_requests_change(&gw, 2).await;
    let alice = gw.state.users.find_by_login(USER).await.unwrap().unwrap();
    let hash = gw.state.passwords.hash(NEW_PASSWORD.into()).await.unwrap();
    assert!(gw.state.users.set_password(alice.id, &hash).await.unwrap());
    assert_eq!(verify(&Browser::new(&gw), &link).await.status(), 400, "refused once the password changed");

    // While the session lives and the password is the same, the link works on any device.
    let user = Browser::new(&gw);
    let t = user.csrf().await;
    assert_eq!(user.post("/login", &t, json!({ "username": USER, "password": NEW_PASSWORD })).await.status(), 200);
    let t = user.csrf().await;
    assert_eq!(user.post("/email", &t, json!({ "email": "alice@new.example" })).await.status(), 202);
    let link = nth_mail(&gw, "alice@new.example", "Confirm your email", 0).await.token_after("token=");
    let phone = Browser::new(&gw);
    assert_eq!(verify(&phone, &link).await.status(), 200);
    assert_eq!(me(&user).await["user"]["email"], "alice@new.example");
}

#[tokio::test]
async fn high_1_the_current_address_again_cancels_and_the_notice_link_cancels_without_login() {
    let gw = start("").await;
    let (link, attacker) = attacker_requests_change(&gw, 0).await;
    // The same session submitting the current address cancels its own pending change.
    let t = attacker.csrf().await;
    assert_eq!(attacker.post("/email", &t, json!({ "email": "ALICE@example.com" })).await.status(), 202);
    assert_eq!(verify(&Browser::new(&gw), &link).await.status(), 400, "cancelled by the current address");

    // The notice's link cancels a change with no session at all, once.
    let (link, _attacker) = attacker_requests_change(&gw, 1).await;
    let notice = nth_mail(&gw, "alice@example.com", "is being changed", 1).await;
    assert!(notice.text.contains("cancel"), "{}", notice.text);
    let prefix = format!("{}/#/cancel-email?token=", gw.url);
    let cancel = notice.token_after(&prefix);
    let anon = Browser::new(&gw);
    let csrf = anon.csrf().await;
    assert_eq!(anon.post("/email/cancel", &csrf, json!({ "token": cancel })).await.status(), 200);
    let (status, code, _) = problem(anon.post("/email/cancel", &csrf, json!({ "token": cancel })).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"), "single use");
    let (status, _, _) = problem(anon.post("/email/cancel", &csrf, json!({ "token": "forged" })).await).await;
    assert_eq!(status, 400);
    assert_eq!(verify(&anon, &link).await.status(), 400, "cancelled from the old address");
    assert_eq!(email_of(&gw).await, "alice@example.com");
}

#[tokio::test]
async fn high_2_long_identifiers_are_refused_before_any_lookup_or_limiter() {
    let gw = start("[auth]\nsignup = true\n").await;
    let b = Browser::new(&gw);
    let token = b.csrf().await;
    let started = Instant::now();
    for i in 0..20 {
        let name = format!("{i}{}", "u".repeat(900 * 1024));
        let (status, code, v) =
            problem(b.post("/login", &token, json!({ "username": name, "password": "x" })).await).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{v}");
        assert!(v["errors"]["username"].as_str().unwrap().contains("too long"), "{v}");
    }
    // Refused before the hasher: twenty of them cost far less than twenty Argon2 verifications.
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    // The limits still have their whole allowance: nothing was counted.
    assert_eq!(b.login().await.len(), 64);
    let token = b.csrf().await;

    let long_mail = format!("{}@example.com", "a".repeat(250));
    let (status, _, v) = problem(
        b.post("/signup", &token, json!({ "username": "u".repeat(151), "password": "long enough passphrase" })).await,
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let res =
        b.post("/signup", &token, json!({ "username": "bob", "password": "long enough one", "email": long_mail }));
    assert_eq!(problem(res.await).await.0, 400);
    let token = b.csrf().await;
    assert_eq!(problem(b.post("/password/reset", &token, json!({ "email": long_mail })).await).await.0, 400);
    // A username of exactly 150 characters and an address of 254 bytes are fine.
    // (At most 64 bytes before the @, labels of at most 63: RFC 5321.)
    let mail = format!("{}@{}.{}.{}.com", "m".repeat(64), "d".repeat(63), "d".repeat(63), "d".repeat(57));
    assert_eq!(mail.len(), 254);
    let name = "n".repeat(150);
    let anon = Browser::new(&gw);
    let t = anon.csrf().await;
    let res =
        anon.post("/signup", &t, json!({ "username": name, "password": "long enough passphrase", "email": mail }));
    assert_eq!(res.await.status(), 201);
}

/// Trust the test client as a proxy, so each request can come "from" its own address.
const BEHIND_PROXY: &str = "[server]\ntrusted_proxies = [\"127.0.0.1/32\", \"::1/128\"]\n";

async fn post_from(b: &Browser, ip: &str, path: &str, token: &str, body: Value) -> reqwest::Response {
    b.http
        .post(b.api(path))
        .header("X-CSRFToken", token)
        .header("X-Forwarded-For", ip)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn medium_4_parallel_second_factor_guesses_get_exactly_the_limit() {
    let gw = start(BEHIND_PROXY).await;
    let b = Browser::new(&gw);
    let token = b.login().await;
    let (t, _) = enroll(&b, &token).await;
    let pending = first_step(&gw).await;
    let csrf = pending.csrf().await;
    // 100 wrong codes released at once, each from its own address (rate_limit.mfa_per_account
    // is 5 per 5 minutes).
    let wrong = if code(&t, 0) == "000000" { "111111" } else { "000000" };
    let answers = futures_util::future::join_all((0..100).map(|i| {
        let ip = format!("198.51.100.{}", i + 1);
        let (pending, csrf) = (&pending, &csrf);
        async move { post_from(pending, &ip, "/login/mfa", csrf, json!({ "code": wrong })).await.status().as_u16() }
    }))
    .await;
    let guessed = answers.iter().filter(|s| **s == 401).count();
    let limited = answers.iter().filter(|s| **s == 429).count();
    assert_eq!((guessed, limited), (5, 95), "{answers:?}");
}

#[tokio::test]
async fn medium_4_parallel_password_guesses_get_exactly_the_free_tries() {
    let gw = start(BEHIND_PROXY).await;
    let b = Browser::new(&gw);
    let csrf = b.csrf().await;
    // rate_limit.login_per_account: 10 free tries per (account, IP), then the back-off.
    let answers = futures_util::future::join_all((0..40).map(|_| {
        let (b, csrf) = (&b, &csrf);
        async move {
            let body = json!({ "username": USER, "password": "wrong password!" });
            post_from(b, "203.0.113.7", "/login", csrf, body).await.status().as_u16()
        }
    }))
    .await;
    assert_eq!(answers.iter().filter(|s| **s == 401).count(), 10, "{answers:?}");
}

#[tokio::test]
async fn medium_5_per_ip_limits_count_ipv6_per_64() {
    let limits = "[rate_limit]\nlogin_per_ip = \"3/1m\"\nsignup_per_ip = \"2/1h\"\nreset_per_ip = \"2/1h\"\n";
    let gw = start(&format!("{BEHIND_PROXY}{limits}[auth]\nsignup = true\n")).await;
    let b = Browser::new(&gw);
    let csrf = b.csrf().await;
    let login = json!({ "username": "nobody", "password": "wrong password!" });
    for i in 1..=3 {
        let res = post_from(&b, &format!("2001:db8:1:2::{i:x}"), "/login", &csrf, login.clone()).await;
        assert_eq!(res.status(), 401);
    }
    let res = post_from(&b, "2001:db8:1:2:ffff:ffff:ffff:ffff", "/login", &csrf, login.clone()).await;
    assert_eq!(res.status(), 429, "the same /64");
    assert_eq!(post_from(&b, "2001:db8:1:3::1", "/login", &csrf, login.clone()).await.status(), 401, "another /64");

    for i in 1..=2 {
        let body = json!({ "email": format!("x{i}@example.com") });
        assert_eq!(post_from(&b, &format!("2001:db8:9:9::{i}"), "/password/reset", &csrf, body).await.status(), 202);
    }
    let body = json!({ "email": "x3@example.com" });
    assert_eq!(post_from(&b, "2001:db8:9:9::abcd", "/password/reset", &csrf, body).await.status(), 429);

    for i in 1..=2 {
        let body = json!({ "username": format!("user{i}"), "password": "long enough passphrase" });
        let c = Browser::new(&gw);
        let t = c.csrf().await;
        assert_eq!(post_from(&c, &format!("2001:db8:7:7::{i}"), "/signup", &t, body).await.status(), 201);
    }
    let c = Browser::new(&gw);
    let t = c.csrf().await;
    let body = json!({ "username": "user3", "password": "long enough passphrase" });
    assert_eq!(post_from(&c, "2001:db8:7:7:1::9", "/signup", &t, body).await.status(), 429);
}

#[tokio::test]
async fn medium_6_look_alike_usernames_are_refused_and_normalised() {
    let gw = start("[auth]\nsignup = true\n").await;
    let signup = async |name: &str| {
        let b = Browser::new(&gw);
        let t = b.csrf().await;
        b.post("/signup", &t, json!({ "username": name, "password": "long enough passphrase" })).await
    };
    assert_eq!(signup("kelvin").await.status(), 201);
    for (name, want) in [
        ("ａｌｉｃｅ", 409),       // full width: the same key as alice
        ("ALİCE", 409),            // Turkish dotted capital I
        ("\u{212A}elvin", 409),    // Kelvin sign
        ("\u{0430}lice", 400),     // Cyrillic а among Latin letters: mixed scripts
        ("\u{0430}\u{0435}", 201), // all Cyrillic, and no Latin look-alike account
        ("\u{0430}\u{0435}x", 400),
    ] {
        let res = signup(name).await;
        let status = res.status().as_u16();
        assert_eq!(status, want, "{name:?}: {}", res.text().await.unwrap());
    }
    // A whole-script look-alike of an existing name: same skeleton.
    assert_eq!(signup("ае").await.status(), 409, "Cyrillic ае again");
    assert_eq!(signup("ae").await.status(), 409, "Latin ae looks like the Cyrillic account");

    // Login folds the same way, and upstreams see the stored (NFKC) name.
    let b = Browser::new(&gw);
    assert_eq!(b.login_as("ＡＬＩＣＥ", PASSWORD).await.status(), 200);
    assert_eq!(me(&b).await["user"]["username"], USER);
}

#[tokio::test]
async fn low_7_a_username_cannot_be_someone_elses_address() {
    let gw = start("[auth]\nsignup = true\n").await;
    let b = Browser::new(&gw);
    let t = b.csrf().await;
    // alice's address as a username, to capture her login by email.
    let res = b.post("/signup", &t, json!({ "username": "alice@example.com", "password": "long enough passphrase" }));
    let (status, _, v) = problem(res.await).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["errors"]["username"].as_str().unwrap().contains("own email"), "{v}");
    // One's own address is fine.
    let body =
        json!({ "username": "Bob@Example.com", "password": "long enough passphrase", "email": "bob@example.com" });
    assert_eq!(b.post("/signup", &t, body).await.status(), 201);
    // Login by alice's address is alice.
    let c = Browser::new(&gw);
    assert_eq!(c.login_as("ALICE@example.com", PASSWORD).await.status(), 200);
    assert_eq!(me(&c).await["user"]["username"], USER);
}

/// A signup from a fresh browser: (status, problem code or "", body).
async fn signup_as(gw: &Gateway, name: &str, email: Option<&str>) -> (u16, String, Value) {
    let b = Browser::new(gw);
    let t = b.csrf().await;
    let res = b.post("/signup", &t, json!({ "username": name, "email": email, "password": "long enough passphrase" }));
    signup_answer(res.await).await
}

/// (status, problem code or "", body) of a signup, successful or not.
async fn signup_answer(res: reqwest::Response) -> (u16, String, Value) {
    if res.status().is_success() {
        return (res.status().as_u16(), String::new(), res.json().await.unwrap());
    }
    problem(res).await
}

/// Second adversarial pass: a username that was its owner's address stays after the owner
/// moves to another address; that address must not become anyone else's email (login by it
/// would then reach two accounts, and upstreams would see one name for two people).
#[tokio::test]
async fn followup_an_old_address_kept_as_username_stays_out_of_reach() {
    let gw = start("[auth]\nsignup = true\n").await;
    let signup = async |name: &str, email: Option<&str>| signup_as(&gw, name, email).await;
    assert_eq!(signup("bob@example.com", Some("bob@example.com")).await.0, 201);
    let bob = gw.state.users.find_by_login("bob@example.com").await.unwrap().unwrap();
    // bob moves to a new address (what a confirmed POST /email does).
    assert!(gw.state.users.accounts().unwrap().set_email(bob.id, Some("bob@new.example"), true).await.unwrap());
    // Nobody may now take his old address as an email, by signup or by a change.
    let (status, code, _) = signup("mallory", Some("BOB@example.com")).await;
    assert_eq!((status, code.as_str()), (409, "email_taken"));
    assert_eq!(signup("mallory", Some("mallory@evil.example")).await.0, 201);
    let mallory = gw.state.users.find_by_login("mallory").await.unwrap().unwrap();
    let taken = gw.state.users.accounts().unwrap().set_email(mallory.id, Some("bob@example.com"), true).await;
    assert!(matches!(taken, Err(sessiongate::users::UserStoreError::EmailTaken)), "{taken:?}");
    // bob himself may take it back.
    assert!(gw.state.users.accounts().unwrap().set_email(bob.id, Some("bob@example.com"), true).await.unwrap());
    // Login by it is bob.
    let b = Browser::new(&gw);
    assert_eq!(b.login_as("bob@example.com", "long enough passphrase").await.status(), 200);
}

/// Second adversarial pass: look-alikes that only case and digits tell apart, and loose
/// address shapes.
#[tokio::test]
async fn followup_ascii_look_alikes_and_loose_addresses_are_refused() {
    let gw = start("[auth]\nsignup = true\n").await;
    let signup = async |name: &str, email: Option<&str>| signup_as(&gw, name, email).await;
    assert_eq!(signup("shop", None).await.0, 201);
    for look_alike in ["aIice", "a1ice", "SH0P", "sh0p"] {
        let (status, code, v) = signup(look_alike, None).await;
        assert_eq!((status, code.as_str()), (409, "username_taken"), "{look_alike}: {v}");
    }
    for bad in ["a@b@x.io", "a,b@x.io", "a@[127.0.0.1]", "\"a b\"@x.io", "a\u{0}@x.io"] {
        let (status, _, v) = signup("carol", Some(bad)).await;
        assert_eq!(status, 400, "{bad:?}: {v}");
        assert!(v["errors"]["email"].is_string(), "{v}");
    }
    // 151 ASCII characters are neither a username nor an address.
    let b = Browser::new(&gw);
    let (status, code, _) = problem(b.login_as(&"u".repeat(151), "whatever").await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
}

#[tokio::test]
async fn low_8_username_and_address_share_one_back_off() {
    let gw = start("[rate_limit]\nlogin_per_account = \"4/1m\"\n").await;
    let b = Browser::new(&gw);
    let t = b.csrf().await;
    for login in [USER, "alice@example.com", "ALICE", "Alice@Example.com"] {
        let res = b.post("/login", &t, json!({ "username": login, "password": "wrong password!" })).await;
        assert_eq!(res.status(), 401, "{login}");
    }
    let (status, code, _) = problem(b.login_as("alice@example.com", PASSWORD).await).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"), "four failures of one account, however it was named");
}

#[tokio::test]
async fn low_9_an_unparsable_forwarded_hop_does_not_let_the_client_choose_its_address() {
    let gw = start(BEHIND_PROXY).await;
    let b = Browser::new(&gw);
    let t = b.csrf().await;
    let body = json!({ "username": USER, "password": PASSWORD });
    assert_eq!(post_from(&b, "6.6.6.6, 203.0.113.5:4444", "/login", &t, body).await.status(), 200);
    let sessions: Value = b.http.get(b.api("/sessions")).send().await.unwrap().json().await.unwrap();
    assert_eq!(sessions["sessions"][0]["ip"], "203.0.113.5");

    let c = Browser::new(&gw);
    let t = c.csrf().await;
    let body = json!({ "username": USER, "password": PASSWORD });
    assert_eq!(post_from(&c, "6.6.6.6, unknown", "/login", &t, body).await.status(), 200);
    let sessions: Value = c.http.get(c.api("/sessions")).send().await.unwrap().json().await.unwrap();
    let mine = sessions["sessions"].as_array().unwrap().iter().find(|s| s["current"] == true).unwrap().clone();
    assert_eq!(mine["ip"], "127.0.0.1", "the nearest trusted hop, never the client's 6.6.6.6");
}

#[tokio::test]
async fn low_10_reauth_needs_the_second_factor_and_the_pending_cookie_works_once() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let token = b.login().await;
    let (t, codes) = enroll(&b, &token).await;

    // The password alone no longer re-authenticates an enrolled account.
    let token = b.csrf().await;
    let (status, code_, v) = problem(b.post("/reauth", &token, json!({ "password": PASSWORD })).await).await;
    assert_eq!((status, code_.as_str()), (400, "invalid_request"), "{v}");
    assert!(v["errors"]["code"].as_str().unwrap().contains("two-factor"), "{v}");
    // A wrong password sent along with a right code is still refused.
    let body = json!({ "password": "wrong password!", "recoveryCode": codes[0] });
    assert_eq!(problem(b.post("/reauth", &token, body).await).await.0, 401);
    let res = b.post("/reauth", &token, json!({ "password": PASSWORD, "recoveryCode": codes[1] })).await;
    assert_eq!(res.status(), 200);

    // The pending cookie of a two-step login opens one session, then never again.
    let pending = first_step(&gw).await;
    let cookie = pending.cookie("sessiongate_mfa").unwrap();
    assert_eq!(second_step(&pending, json!({ "code": code(&t, 1) })).await.status(), 200);
    let replay = Browser::new(&gw);
    replay.set_cookie(&format!("sessiongate_mfa={cookie}"));
    let res = second_step(&replay, json!({ "recoveryCode": codes[2] })).await;
    let (status, code_, _) = problem(res).await;
    assert_eq!((status, code_.as_str()), (401, "not_authenticated"), "replayed pending cookie");
    assert_eq!(replay.whoami().await, 401);

    // Two second steps racing with one cookie: one session at most.
    let pending = first_step(&gw).await;
    let csrf = pending.csrf().await;
    let racing = futures_util::future::join_all([codes[3].clone(), codes[4].clone()].map(|c| {
        pending
            .http
            .post(pending.api("/login/mfa"))
            .header("X-CSRFToken", &csrf)
            .json(&json!({ "recoveryCode": c }))
            .send()
    }))
    .await;
    let ok = racing.into_iter().filter(|r| r.as_ref().unwrap().status() == 200).count();
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn also_a_tossed_session_cookie_neither_wins_nor_clears_the_real_one() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    b.login().await;
    let real = b.cookie("sessionid").unwrap();
    let planted = "A".repeat(43);
    for header in [format!("sessionid={planted}; sessionid={real}"), format!("sessionid={real}; sessionid={planted}")] {
        let res = reqwest::Client::new().get(b.api("/session")).header("cookie", header.clone()).send().await.unwrap();
        assert_eq!(res.status(), 200, "{header}");
        let cleared = res.headers().get_all("set-cookie").iter().any(|v| v.to_str().unwrap().starts_with("sessionid="));
        assert!(!cleared, "the real cookie is not cleared: {header}");
    }
    // Only planted cookies: anonymous, and still nothing cleared (ours may be among them).
    let header = format!("sessionid={planted}; sessionid={}", "B".repeat(43));
    let res = reqwest::Client::new().get(b.api("/session")).header("cookie", header).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("set-cookie").is_none());
    // A single dead cookie is still cleared, as before.
    let res = reqwest::Client::new().get(b.api("/session")).header("cookie", format!("sessionid={planted}")).send();
    let res = res.await.unwrap();
    assert!(res.headers()["set-cookie"].to_str().unwrap().starts_with("sessionid=; "));
}

/// Second adversarial pass: a sibling subdomain plants the attacker's own *live* session with a
/// longer path, which browsers send first; "the live one wins" then logged the victim into the
/// attacker's account (session swapping). Two live sessions: neither counts, nothing cleared.
#[tokio::test]
async fn followup_two_live_session_cookies_log_nobody_in() {
    let gw = start("").await;
    let victim = Browser::new(&gw);
    victim.login().await;
    let attacker = Browser::new(&gw);
    attacker.login().await;
    let (v, a) = (victim.cookie("sessionid").unwrap(), attacker.cookie("sessionid").unwrap());
    for header in [format!("sessionid={a}; sessionid={v}"), format!("sessionid={v}; sessionid={a}")] {
        let res = reqwest::Client::new().get(victim.api("/session")).header("cookie", header.clone()).send().await;
        let res = res.unwrap();
        assert_eq!(res.status(), 401, "{header}");
        assert!(res.headers().get("set-cookie").is_none(), "nothing cleared: {header}");
    }
    // The same live cookie twice is one session.
    let res =
        reqwest::Client::new().get(victim.api("/session")).header("cookie", format!("sessionid={v}; sessionid={v}"));
    assert_eq!(res.send().await.unwrap().status(), 200);
    assert_eq!(victim.whoami().await, 200, "the victim's own cookie still works alone");
}

#[tokio::test]
async fn limiter_maps_stay_bounded_under_unique_names() {
    // rate_limit.max_keys = 1000: a flood of unique failed logins leaves the map at the bound
    // and the flooded account's back-off in place.
    let gw = start_with(
        "[rate_limit]\nmax_keys = 1000\nlogin_per_ip = \"100000/1m\"\nlogin_per_account = \"3/1m\"\n",
        |_| {},
    )
    .await;
    let b = Browser::new(&gw);
    let t = b.csrf().await;
    for _ in 0..3 {
        let res = b.post("/login", &t, json!({ "username": USER, "password": "wrong password!" })).await;
        assert_eq!(res.status(), 401);
    }
    // In chunks the hasher's queue takes (users.hash_queue), 1500 in all.
    for chunk in 0..100 {
        futures_util::future::join_all((0..15).map(|i| {
            let (b, t) = (&b, &t);
            async move {
                let body = json!({ "username": format!("ghost-{chunk}-{i}-{}", "g".repeat(100)), "password": "x" });
                assert_eq!(b.post("/login", t, body).await.status(), 401);
            }
        }))
        .await;
    }
    assert_eq!(b.login_as(USER, PASSWORD).await.status(), 429, "the attacked account kept its back-off");
}
