//! Serving an SPA from `spa.dir`: caching per asset kind, navigation-only fallback, no traversal.

use crate::harness::start_with;

#[tokio::test]
async fn spa_dir_caching_fallback_and_traversal() {
    let site = tempfile::tempdir().unwrap();
    let root = site.path().join("dist");
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::write(root.join("index.html"), "<!doctype html><html><body>spa</body></html>").unwrap();
    std::fs::write(root.join("assets/app.3f9a1c2b.js"), "console.log('app')").unwrap();
    std::fs::write(root.join("robots.txt"), "User-agent: *").unwrap();
    std::fs::write(site.path().join("secret.txt"), "outside the root").unwrap();
    let dir = root.display().to_string();
    let gw = start_with("", move |c| c.spa.dir = dir).await;
    let c = reqwest::Client::new();
    let get = |path: &str, accept: &str| c.get(format!("{}{path}", gw.url)).header("accept", accept).send();

    let index = get("/", "text/html").await.unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    assert!(index.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let last_modified = index.headers()["last-modified"].clone();

    let asset = get("/assets/app.3f9a1c2b.js", "*/*").await.unwrap();
    assert_eq!(asset.status(), 200);
    assert!(asset.headers()["etag"].to_str().unwrap().starts_with("W/\""));
    assert_eq!(asset.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert!(asset.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert_eq!(get("/robots.txt", "*/*").await.unwrap().headers()["cache-control"], "no-cache");

    // Navigations fall back to index.html; missing files never do.
    let nav = get("/settings/profile", "text/html,application/xhtml+xml").await.unwrap();
    assert_eq!(nav.status(), 200);
    assert!(nav.text().await.unwrap().contains("spa"));
    assert_eq!(get("/assets/app.deadbeef1.js", "*/*").await.unwrap().status(), 404);
    assert_eq!(get("/settings/profile", "application/json").await.unwrap().status(), 404);

    // Conditional GET.
    let again = c.get(format!("{}/", gw.url)).header("if-modified-since", last_modified).send().await.unwrap();
    assert_eq!(again.status(), 304);
    let etag = asset.headers()["etag"].clone();
    let cached =
        c.get(format!("{}/assets/app.3f9a1c2b.js", gw.url)).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);
    let other =
        c.get(format!("{}/assets/app.3f9a1c2b.js", gw.url)).header("if-none-match", "\"nope\"").send().await.unwrap();
    assert_eq!(other.status(), 200);

    // No way out of the root. Sent over a raw socket: reqwest would normalise the first two
    // to `/secret.txt` before they left the client.
    for path in ["/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"] {
        let res = raw_get(&gw.url, path).await;
        let status: u16 = res.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(matches!(status, 400 | 404), "{path} → {res}");
        assert!(!res.contains("outside the root"), "{path} → {res}");
    }
    let post = c.post(format!("{}/", gw.url)).send().await.unwrap();
    assert_eq!(post.status(), 405);
}

/// `GET path` exactly as written (no client-side normalisation); the whole response as text.
async fn raw_get(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}
