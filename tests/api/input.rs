//! Bad input gets a clear problem, never a 500.

use serde_json::json;

use crate::harness::{Browser, USER, problem, start};

#[tokio::test]
async fn malformed_wrong_type_huge_and_non_json_bodies() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let token = b.csrf().await;
    let post = |body: reqwest::Body, ct: &'static str| {
        b.http.post(b.api("/login")).header("X-CSRFToken", &token).header("content-type", ct).body(body).send()
    };

    let (s, code, _) = problem(post("{\"username\": ".into(), "application/json").await.unwrap()).await;
    assert_eq!((s, code.as_str()), (400, "invalid_request"));

    let (s, code, _) =
        problem(post("username=a&password=b".into(), "application/x-www-form-urlencoded").await.unwrap()).await;
    assert_eq!((s, code.as_str()), (415, "unsupported_media_type"));

    let (s, code, _) = problem(post("{}".into(), "text/plain").await.unwrap()).await;
    assert_eq!((s, code.as_str()), (415, "unsupported_media_type"));

    let huge = format!("{{\"username\":\"{}\",\"password\":\"x\"}}", "a".repeat(2 << 20));
    let (s, code, _) = problem(post(huge.into(), "application/json").await.unwrap()).await;
    assert_eq!((s, code.as_str()), (413, "payload_too_large"));

    let (s, code, body) =
        problem(post(json!({"username": 5, "password": "x"}).to_string().into(), "application/json").await.unwrap())
            .await;
    assert_eq!((s, code.as_str()), (400, "invalid_request"));
    assert!(body["errors"]["username"].is_string(), "{body}");

    let (s, _, body) = problem(
        post(json!({"username": USER, "password": "x", "remember": "yes"}).to_string().into(), "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(body["errors"]["remember"].is_string(), "{body}");

    let (s, _, body) =
        problem(post(json!({"username": USER}).to_string().into(), "application/json").await.unwrap()).await;
    assert_eq!(s, 400);
    assert!(body["detail"].as_str().unwrap().contains("password"), "{body}");

    let (s, _, body) =
        problem(post(json!({"username": "", "password": "x"}).to_string().into(), "application/json").await.unwrap())
            .await;
    assert_eq!(s, 400);
    assert!(body["errors"]["username"].is_string(), "{body}");
}

#[tokio::test]
async fn a_100kb_password_is_just_wrong() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let res = b.login_as(USER, &"p".repeat(100_000)).await;
    let (s, code, _) = problem(res).await;
    assert_eq!((s, code.as_str()), (401, "invalid_credentials"));
}

#[tokio::test]
async fn unknown_methods_on_api_paths_are_problems() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let res = b.http.get(b.api("/login")).send().await.unwrap();
    assert_eq!(problem(res).await.0, 405);
}

/// Adversarial finding: a path id that is not valid percent-encoded UTF-8 got axum's plain-text
/// 400 instead of problem JSON.
#[tokio::test]
async fn odd_session_ids_in_the_path_get_problems() {
    let gw = start("").await;
    let b = Browser::new(&gw);
    let token = b.login().await;
    for (id, want) in [("%ff", 400), ("%c3%28", 400), ("nope", 404), ("..%2f..%2fcsrf", 404)] {
        let res = b.http.delete(b.api(&format!("/sessions/{id}"))).header("X-CSRFToken", &token).send().await.unwrap();
        let (status, code, v) = problem(res).await;
        assert_eq!(status, want, "{id}: {v}");
        assert_eq!(code, if want == 400 { "invalid_request" } else { "not_found" }, "{id}");
    }
    assert_eq!(b.whoami().await, 200, "still logged in");
}
