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

fn status_of(res: &str) -> u16 {
    res.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn location_of(res: &str) -> Option<&str> {
    let head = res.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| v.trim()))
}

#[tokio::test]
async fn spa_dir_hides_dotfiles_but_serves_well_known() {
    let site = tempfile::tempdir().unwrap();
    let root = site.path().join("dist");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join(".well-known")).unwrap();
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::write(root.join("index.html"), "<!doctype html>spa").unwrap();
    std::fs::write(root.join(".env"), "SECRET=dotenv").unwrap();
    std::fs::write(root.join(".git/config"), "[remote] secret").unwrap();
    std::fs::write(root.join("assets/.secret.js"), "secret()").unwrap();
    std::fs::write(root.join(".well-known/security.txt"), "Contact: mailto:sec@example.com").unwrap();
    let dir = root.display().to_string();
    let gw = start_with("", move |c| c.spa.dir = dir).await;

    for path in ["/.env", "/%2eenv", "/.git/config", "/.git/", "/assets/.secret.js", "/.well-known/../.env"] {
        let res = raw_get(&gw.url, path).await;
        assert_eq!(status_of(&res), 404, "{path} → {res}");
        assert!(!res.contains("secret") && !res.contains("SECRET"), "{path} → {res}");
    }
    // Not even the history fallback: a dot segment is never an app route.
    let c = reqwest::Client::new();
    let res = c.get(format!("{}/.config/app", gw.url)).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = raw_get(&gw.url, "/.well-known/security.txt").await;
    assert_eq!(status_of(&res), 200, "{res}");
    assert!(res.contains("Contact:"));
}

#[cfg(unix)]
#[tokio::test]
async fn spa_dir_refuses_symlinks_that_leave_the_root() {
    use std::os::unix::fs::symlink;
    let site = tempfile::tempdir().unwrap();
    let root = site.path().join("dist");
    let outside = site.path().join("private");
    std::fs::create_dir_all(root.join("assets")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(root.join("index.html"), "<!doctype html>spa").unwrap();
    std::fs::write(root.join("assets/app.3f9a1c2b.js"), "console.log('app')").unwrap();
    std::fs::write(outside.join("passwd"), "root:x:0:0 outside the root").unwrap();
    std::fs::write(outside.join("index.html"), "outside the root index").unwrap();
    symlink(outside.join("passwd"), root.join("passwd.txt")).unwrap();
    symlink(&outside, root.join("linked-dir")).unwrap();
    symlink(root.join("assets/app.3f9a1c2b.js"), root.join("alias.js")).unwrap();
    symlink("assets", root.join("static")).unwrap();
    // A precompressed sibling that leaves the root must not be picked either.
    std::fs::write(root.join("robots.txt"), "User-agent: *").unwrap();
    symlink(outside.join("passwd"), root.join("robots.txt.gz")).unwrap();
    let dir = root.display().to_string();
    let gw = start_with("", move |c| c.spa.dir = dir).await;
    let c = reqwest::Client::new();

    for path in ["/passwd.txt", "/linked-dir/passwd", "/linked-dir/", "/linked-dir"] {
        let res = raw_get(&gw.url, path).await;
        assert_eq!(status_of(&res), 404, "{path} → {res}");
        assert!(!res.contains("outside the root"), "{path} → {res}");
    }
    let res = c.get(format!("{}/robots.txt", gw.url)).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(res.status(), 404, "a sibling leaving the root refuses the file");
    // Links inside the root keep working.
    for path in ["/alias.js", "/static/app.3f9a1c2b.js"] {
        let res = c.get(format!("{}{path}", gw.url)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.text().await.unwrap(), "console.log('app')");
    }
}

#[tokio::test]
async fn spa_dir_redirects_never_leave_the_origin() {
    let site = tempfile::tempdir().unwrap();
    let root = site.path().join("dist");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("index.html"), "<!doctype html>spa").unwrap();
    std::fs::write(root.join("sub/index.html"), "<!doctype html>sub").unwrap();
    let dir = root.display().to_string();
    let gw = start_with("", move |c| c.spa.dir = dir).await;

    // The directory redirect itself still works, to a path on this origin.
    let res = raw_get(&gw.url, "/sub").await;
    assert_eq!((status_of(&res), location_of(&res)), (307, Some("/sub/")), "{res}");
    // `//sub/` would be a protocol-relative URL: another host.
    for path in ["//sub", "//sub/", "/\\sub", "/sub//", "///sub", "/%2F/sub", "/%5Csub"] {
        let res = raw_get(&gw.url, path).await;
        let location = location_of(&res).unwrap_or("");
        assert!(!location.starts_with("//") && !location.starts_with("/\\"), "{path} → {res}");
        if !path.contains('%') {
            assert_eq!(status_of(&res), 404, "{path} → {res}");
        }
    }
}
