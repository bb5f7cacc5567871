//! Login rate limits per client IP and per account.

use crate::harness::{Browser, PASSWORD, USER, problem, start};

#[tokio::test]
async fn per_ip_limit_answers_429_with_retry_after() {
    let gw = start("[rate_limit]\nlogin_per_ip = \"3/1m\"\n").await;
    let b = Browser::new(&gw);
    for _ in 0..3 {
        assert_eq!(b.login_as(USER, "not the password").await.status(), 401);
    }
    let res = b.login_as(USER, PASSWORD).await;
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(problem(res).await.1, "rate_limited");
}

#[tokio::test]
async fn per_account_failures_lock_only_that_account_briefly() {
    let gw = start("[rate_limit]\nlogin_per_account = \"2/1m\"\n").await;
    let b = Browser::new(&gw);
    for _ in 0..2 {
        assert_eq!(b.login_as(USER, "not the password").await.status(), 401);
    }
    let (s, code, _) = problem(b.login_as(USER, PASSWORD).await).await;
    assert_eq!((s, code.as_str()), (429, "rate_limited"));
    // Case variants are the same account.
    assert_eq!(b.login_as("ALICE", PASSWORD).await.status(), 429);
    // Other accounts are unaffected.
    assert_eq!(b.login_as("someone-else", "whatever pw").await.status(), 401);
}
