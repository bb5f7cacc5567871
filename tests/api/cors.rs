//! CORS in cross-origin mode: allowlist, credentials, preflights before authentication, Vary.

use crate::harness::{Browser, PASSWORD, USER, start};

const CROSS: &str = "mode = \"cross-origin\"\n[cors]\nallowed_origins = [\"http://localhost:5173\", \"https://*.example.com\"]\nexpose_headers = [\"x-request-id\"]\n[cookies]\nsecure = true\n";

async fn get(url: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new().get(url).header("origin", origin).send().await.unwrap()
}

fn h<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn allowed_origins_get_credentials_on_every_response() {
    let gw = start(CROSS).await;
    let url = format!("{}/api/auth/session", gw.url);
    for origin in ["http://localhost:5173", "https://app.example.com", "https://a.b.example.com"] {
        let res = get(&url, origin).await;
        assert_eq!(res.status(), 401, "401s carry CORS headers too");
        assert_eq!(h(&res, "access-control-allow-origin"), Some(origin));
        assert_eq!(h(&res, "access-control-allow-credentials"), Some("true"));
        assert_eq!(h(&res, "access-control-expose-headers"), Some("x-request-id"));
        assert!(res.headers().get_all("vary").iter().any(|v| v == "Origin"));
    }
    let res = get(&format!("{}/api/auth/nope", gw.url), "http://localhost:5173").await;
    assert_eq!(res.status(), 404);
    assert_eq!(h(&res, "access-control-allow-origin"), Some("http://localhost:5173"));
}

#[tokio::test]
async fn disallowed_origins_get_no_cors_headers_at_all() {
    let gw = start(CROSS).await;
    let url = format!("{}/api/auth/session", gw.url);
    for origin in [
        "https://evil.test",
        "http://app.example.com",
        "https://example.com.evil.test",
        "null",
        "http://localhost:5174",
    ] {
        let res = get(&url, origin).await;
        assert!(h(&res, "access-control-allow-origin").is_none(), "{origin}");
        assert!(h(&res, "access-control-allow-credentials").is_none(), "{origin}");
        assert!(res.headers().get_all("vary").iter().any(|v| v == "Origin"), "Vary: Origin always");
    }
}

#[tokio::test]
async fn preflights_are_answered_before_authentication() {
    let gw = start(CROSS).await;
    let c = reqwest::Client::new();
    let pre = |origin: &'static str, pna: bool| {
        let mut r = c
            .request(reqwest::Method::OPTIONS, format!("{}/api/auth/sessions/revoke-others", gw.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type, x-csrftoken");
        if pna {
            r = r.header("access-control-request-private-network", "true");
        }
        r.send()
    };
    let res = pre("https://app.example.com", false).await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(h(&res, "access-control-allow-origin"), Some("https://app.example.com"));
    assert_eq!(h(&res, "access-control-allow-credentials"), Some("true"));
    assert!(h(&res, "access-control-allow-methods").unwrap().contains("POST"));
    assert!(h(&res, "access-control-allow-headers").unwrap().contains("x-csrftoken"));
    assert_eq!(h(&res, "access-control-max-age"), Some("600"));
    assert!(h(&res, "access-control-allow-private-network").is_none(), "only when asked");
    let res = pre("https://app.example.com", true).await.unwrap();
    assert_eq!(h(&res, "access-control-allow-private-network"), Some("true"));

    let res = pre("https://evil.test", true).await.unwrap();
    assert!(h(&res, "access-control-allow-origin").is_none());
    assert!(h(&res, "access-control-allow-private-network").is_none());
}

#[tokio::test]
async fn trusted_origins_default_to_the_cors_allowlist() {
    let gw = start(CROSS).await;
    let b = Browser::new(&gw);
    let token = b.csrf().await;
    let login = |origin: &'static str, site: &'static str| {
        b.http
            .post(b.api("/login"))
            .header("origin", origin)
            .header("sec-fetch-site", site)
            .header("x-csrftoken", &token)
            .json(&serde_json::json!({ "username": USER, "password": PASSWORD }))
            .send()
    };
    let res = login("https://evil.test", "cross-site").await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(h(&res, "access-control-allow-origin").is_none(), "a hostile origin cannot read the answer");
    let res = login("http://localhost:5173", "same-site").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(h(&res, "access-control-allow-origin"), Some("http://localhost:5173"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["csrfToken"].as_str().unwrap().len(), 64, "the SPA gets its token from the body");
}

#[tokio::test]
async fn same_origin_mode_sends_no_cors_headers() {
    let gw = start("").await;
    let res = get(&format!("{}/api/auth/session", gw.url), "http://localhost:5173").await;
    assert!(h(&res, "access-control-allow-origin").is_none());
    let res = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/api/auth/login", gw.url))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(h(&res, "access-control-allow-origin").is_none());
}
