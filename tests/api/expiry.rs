//! Idle and absolute timeouts, by moving the gateway's clock (no test sleeps for an expiry).

use std::time::Duration;

use crate::harness::{Browser, problem, start};

#[tokio::test]
async fn idle_timeout_ends_an_unused_session() {
    let gw = start("[session]\nidle_timeout = \"2s\"\nabsolute_timeout = \"1h\"\n").await;
    let b = Browser::new(&gw);
    b.login().await;
    assert_eq!(b.whoami().await, 200);
    gw.clock().advance(Duration::from_millis(2300));
    let res = b.http.get(b.api("/session")).send().await.unwrap();
    assert_eq!(problem(res).await.1, "not_authenticated");
}

#[tokio::test]
async fn activity_slides_idle_but_absolute_never_moves() {
    let gw = start("[session]\nidle_timeout = \"2s\"\nabsolute_timeout = \"4s\"\n").await;
    let b = Browser::new(&gw);
    b.login().await;
    let mut reissued = false;
    // Keep using the session well past the idle timeout: it stays alive…
    for _ in 0..6 {
        gw.clock().advance(Duration::from_millis(500));
        let res = b.http.get(b.api("/session")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        reissued |= res
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("sessionid=") && c.to_str().unwrap().contains("Max-Age=2"));
    }
    assert!(reissued, "the cookie is re-issued when the expiry moves");
    // …until the absolute timeout.
    gw.clock().advance(Duration::from_millis(1400));
    assert_eq!(b.whoami().await, 401);
}

#[tokio::test]
async fn not_remembered_logins_get_a_browser_session_cookie() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let token = b.csrf().await;
    let res = b
        .post("/login", &token, serde_json::json!({ "username": crate::harness::USER, "password": crate::harness::PASSWORD, "remember": false }))
        .await;
    let c = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("sessionid="))
        .unwrap();
    assert!(!c.contains("Max-Age"), "{c}");
}

#[tokio::test]
async fn expired_sessions_are_garbage_collected() {
    let gw = start("[session]\nidle_timeout = \"1s\"\nabsolute_timeout = \"1h\"\n").await;
    let b = Browser::new(&gw);
    b.login().await;
    gw.clock().advance(Duration::from_millis(1200));
    assert_eq!(gw.state.sessions.gc().await.unwrap(), 1);
}
