//! Every CSRF rejection of SPEC §6, and the acceptances Django clients rely on.

use serde_json::{Value, json};

use crate::harness::{Browser, PASSWORD, USER, problem, start};

const SECRET: &str = "Olizgf4c5dMrs969UdsFa5miq0oEthhH";
const MASKED: &str = "UJT4GcSfy8oQ35qgPp1GKAwamMdSczJ9yU1tMhMhtb07l4mfzsjbKvIiCCrmvGQG";

fn login_body() -> Value {
    json!({ "username": USER, "password": PASSWORD })
}

/// POST /login with the given extra headers and cookie; returns (status, code, detail).
async fn attempt(b: &Browser, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut req = b.http.post(b.api("/login")).json(&login_body());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    if res.status() == 200 {
        return (200, String::new(), String::new());
    }
    let (s, c, v) = problem(res).await;
    (s, c, v["detail"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn origin_checks_refuse_cross_site() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let token = b.csrf().await;
    let t = token.as_str();

    let (s, code, detail) =
        attempt(&b, &[("X-CSRFToken", t), ("Sec-Fetch-Site", "cross-site"), ("Origin", "https://evil.example")]).await;
    assert_eq!((s, code.as_str()), (403, "origin_not_allowed"));
    assert!(detail.contains("Sec-Fetch-Site is cross-site"), "{detail}");

    let (s, _, _) =
        attempt(&b, &[("X-CSRFToken", t), ("Sec-Fetch-Site", "same-site"), ("Origin", "http://sub.127.0.0.1")]).await;
    assert_eq!(s, 403, "same-site is not same-origin");

    let (s, code, detail) = attempt(&b, &[("X-CSRFToken", t), ("Origin", "https://evil.example")]).await;
    assert_eq!((s, code.as_str()), (403, "origin_not_allowed"));
    assert!(detail.contains("https://evil.example does not match any trusted origins"), "{detail}");

    let (s, _, detail) = attempt(&b, &[("X-CSRFToken", t), ("Origin", "null")]).await;
    assert_eq!(s, 403, "Origin: null (sandboxed frames, file://) is refused: {detail}");

    // The same request from our own origin passes.
    let own = gw.url.clone();
    let (s, _, _) = attempt(&b, &[("X-CSRFToken", t), ("Sec-Fetch-Site", "same-origin"), ("Origin", &own)]).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn token_checks_each_fail_with_their_reason() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let token = b.csrf().await;

    let (s, code, detail) = attempt(&b, &[]).await;
    assert_eq!((s, code.as_str(), detail.as_str()), (403, "csrf_failed", "CSRF token missing."));

    let (_, _, detail) = attempt(&b, &[("X-CSRFToken", "abc")]).await;
    assert_eq!(detail, "CSRF token from the 'X-CSRFToken' HTTP header has incorrect length.");

    let (_, _, detail) = attempt(&b, &[("X-CSRFToken", &"!".repeat(64))]).await;
    assert_eq!(detail, "CSRF token from the 'X-CSRFToken' HTTP header has invalid characters.");

    let (_, _, detail) = attempt(&b, &[("X-CSRFToken", &"a".repeat(64))]).await;
    assert_eq!(detail, "CSRF token from the 'X-CSRFToken' HTTP header incorrect.");

    // A valid token but no cookie (a fresh client).
    let fresh = Browser::new(&gw);
    let (_, code, detail) = attempt(&fresh, &[("X-CSRFToken", &token)]).await;
    assert_eq!(code, "csrf_failed");
    assert!(detail.starts_with("CSRF cookie not set."), "{detail}");

    // A malformed cookie.
    let odd = Browser::new(&gw);
    odd.set_cookie("csrftoken=short");
    let (_, _, detail) = attempt(&odd, &[("X-CSRFToken", &token)]).await;
    assert_eq!(detail, "CSRF cookie has incorrect length.");
}

#[tokio::test]
async fn raw_masked_and_django_tokens_are_accepted_case_insensitively() {
    let gw = start("").await;
    // A cookie and token minted by a real Django 5.2.
    let b = Browser::new(&gw);
    b.set_cookie(&format!("csrftoken={SECRET}"));
    assert_eq!(attempt(&b, &[("x-csrftoken", MASKED)]).await.0, 200, "masked Django token, lower-case header");

    let b = Browser::new(&gw);
    b.set_cookie(&format!("csrftoken={SECRET}"));
    assert_eq!(attempt(&b, &[("X-CSRFTOKEN", SECRET)]).await.0, 200, "raw 32-character secret");

    // /csrf keeps a well-formed cookie (as Django does) and masks it freshly each time.
    let b = Browser::new(&gw);
    b.set_cookie(&format!("csrftoken={SECRET}"));
    let (t1, t2) = (b.csrf().await, b.csrf().await);
    assert_ne!(t1, t2);
    assert_eq!(b.cookie("csrftoken").unwrap(), SECRET);
}

#[tokio::test]
async fn login_rotates_the_secret_and_old_tokens_die() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let before = b.csrf().await;
    let after = b.login().await;
    assert_ne!(b.cookie("csrftoken").unwrap(), "");
    let res = b.post("/sessions/revoke-others", &before, json!({})).await;
    let (s, code, body) = problem(res).await;
    assert_eq!((s, code.as_str()), (403, "csrf_failed"), "{body}");
    assert_eq!(b.post("/sessions/revoke-others", &after, json!({})).await.status(), 200);
    // /csrf while logged in hands out the session's secret.
    let again = b.csrf().await;
    assert_eq!(b.post("/sessions/revoke-others", &again, json!({})).await.status(), 200);
}

#[tokio::test]
async fn injected_cookie_cannot_pass_a_bound_session() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    b.login().await;
    // A sibling subdomain (or a plain-HTTP attacker) overwrites the CSRF cookie with a secret it
    // knows and submits the matching token: double-submit alone would pass.
    b.set_cookie(&format!("csrftoken={SECRET}"));
    let res = b.post("/sessions/revoke-others", MASKED, json!({})).await;
    let (s, code, body) = problem(res).await;
    assert_eq!((s, code.as_str()), (403, "csrf_failed"));
    assert!(body["detail"].as_str().unwrap().contains("does not belong to this session"), "{body}");
}

#[tokio::test]
async fn form_posts_carry_the_token_in_the_body() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let token = b.login().await;
    // Django's form field is accepted by the CSRF layer; the JSON API then refuses the form (415),
    // which proves the CSRF step passed.
    let res = b.http.post(b.api("/logout")).form(&[("csrfmiddlewaretoken", token.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 204, "logout takes no body, so the form is fine");
    let b = Browser::new(&gw);
    b.login().await;
    let res = b.http.post(b.api("/logout")).form(&[("csrfmiddlewaretoken", "x".repeat(64))]).send().await.unwrap();
    assert_eq!(problem(res).await.1, "csrf_failed");
    assert_eq!(b.whoami().await, 200);
}

#[tokio::test]
async fn unsafe_responses_vary_on_origin() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let res = b.http.post(b.api("/logout")).send().await.unwrap();
    let vary: Vec<_> = res.headers().get_all("vary").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(vary.contains(&"Origin".to_owned()) && vary.contains(&"Sec-Fetch-Site".to_owned()), "{vary:?}");
}
