//! The reverse proxy, forward auth and signed identity over real TCP: an in-process gateway in
//! front of a real upstream started here, which echoes what it received.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Browser, EMAIL, Gateway, USER, problem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const MB50: u64 = 50 * 1024 * 1024;
static CHUNK: [u8; 64 * 1024] = [7; 64 * 1024];

// ---------------------------------------------------------------------------------------------
// The upstream: echoes method, path, query, headers and body length as JSON; `…/slow` answers
// after 2 s, `…/big` streams 50 MiB, `…/ws` is a WebSocket echo, `…/set-cookie` sets cookies,
// `…/set-cookie-spellings` tries every spelling of the gateway's cookies.

async fn upstream_handler(req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if path.ends_with("/slow") {
        tokio::time::sleep(Duration::from_secs(2)).await;
        return "late".into_response();
    }
    if path.ends_with("/big") {
        let chunks = (0..MB50 / CHUNK.len() as u64).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(&CHUNK)));
        return Body::from_stream(futures_util::stream::iter(chunks)).into_response();
    }
    if path.ends_with("/ws") {
        let user = header(&req, "x-auth-user").unwrap_or_default();
        let (mut parts, _) = req.into_parts();
        let ws = WebSocketUpgrade::from_request_parts(&mut parts, &()).await.expect("a websocket handshake");
        return ws.on_upgrade(move |socket| ws_echo(socket, user));
    }
    if path.ends_with("/set-cookie-spellings") {
        let mut b = Response::builder();
        for c in [
            "Sessionid=planted; Path=/",
            "SESSIONID=planted",
            "__Host-sessionid=planted; Path=/; Secure",
            "__secure-SessionId=planted",
            "=sessionid=planted",
            "sessiongate_mfa=planted",
            "__Host-Sessiongate_MFA=planted",
            "CSRFTOKEN=planted",
            "__Host-csrftoken=planted",
            "csrftoken=django-resent; Path=/",
            "theme=dark; Path=/",
            "sessionid_hint=1",
        ] {
            b = b.header("set-cookie", c);
        }
        return b.body(Body::empty()).unwrap();
    }
    if path.ends_with("/set-cookie") {
        return Response::builder()
            .header("set-cookie", "sessionid=planted; Path=/")
            .header("set-cookie", "theme=dark; Path=/")
            .body(Body::empty())
            .unwrap();
    }
    let method = req.method().to_string();
    let query = req.uri().query().map(str::to_owned);
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    // Count the body as it streams; never hold it.
    let mut body = req.into_body().into_data_stream();
    let mut len = 0u64;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => len += c.len() as u64,
            // The gateway aborts a body that passed `max_body`.
            Err(_) => return (http::StatusCode::BAD_REQUEST, "body aborted").into_response(),
        }
    }
    axum::Json(json!({ "method": method, "path": path, "query": query, "headers": headers, "bodyLen": len }))
        .into_response()
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

async fn ws_echo(mut socket: WebSocket, user: String) {
    let _ = socket.send(WsMessage::Text(format!("hello {user}").into())).await;
    while let Some(Ok(msg)) = socket.recv().await {
        if matches!(msg, WsMessage::Close(_)) || socket.send(msg).await.is_err() {
            break;
        }
    }
}

async fn start_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(upstream_handler);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A gateway configured by `toml`, its sessions in memory.
async fn gateway(toml: &str) -> Gateway {
    support::gateway(toml).set("session.store", "memory").start().await
}

/// The memory test measures this whole process: it runs alone, the others share.
static MEMORY_TEST: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// An upstream and a gateway with these routes in front of it (`UP` in `routes` is replaced by
/// the upstream's address). Hold the guard for the whole test.
async fn setup(routes: &str, extra: &str) -> (Gateway, SocketAddr, tokio::sync::RwLockReadGuard<'static, ()>) {
    let guard = MEMORY_TEST.read().await;
    let up = start_upstream().await;
    let gw = gateway(&format!("{extra}\n{}", routes.replace("UP", &up.to_string()))).await;
    (gw, up, guard)
}

const ROUTES: &str = r#"
[[routes]]
prefix = "/api/"
upstream = "http://UP"
auth = "required"

[[routes]]
prefix = "/opt/"
upstream = "http://UP"
auth = "optional"

[[routes]]
prefix = "/pub/"
upstream = "http://UP"
auth = "none"

[[routes]]
prefix = "/api/special/"
upstream = "http://UP/base"
auth = "none"
strip_prefix = true

[[routes]]
prefix = "/svc"
upstream = "http://UP"
auth = "none"
strip_prefix = true
"#;

/// Every value of header `name` the upstream saw.
fn seen(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|kv| kv[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|kv| kv[1].as_str().unwrap().to_owned())
        .collect()
}

/// Header names the upstream saw that are identity headers in any spelling.
fn identity_names(echo: &Value) -> Vec<String> {
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| kv[0].as_str().unwrap().to_ascii_lowercase().replace('_', "-"))
        .filter(|n| n.starts_with("x-auth-"))
        .collect()
}

async fn echo(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200, "{:?}", res.headers());
    res.json().await.unwrap()
}

/// Send a hand-written HTTP/1.1 request (for header spellings and hop-by-hop headers a client
/// library would tidy up) and return the status and body.
async fn raw(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.replace('\n', "\r\n").as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut rest = body;
        let mut joined = String::new();
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            joined.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        joined
    } else {
        body.to_owned()
    };
    (status, body)
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn identity_injected_and_spoofs_stripped_on_required_route() {
    let (gw, _, _shared) = setup(ROUTES, "").await;
    let c = Browser::new(&gw);
    c.login().await;
    let sid = c.session_id().await;
    let res = c
        .http
        .get(c.url("/api/things?x=1&y=%20"))
        .header("X-Auth-User", "mallory")
        .header("X-AUTH-USER-ID", "1")
        .header("x_auth_user", "mallory")
        .header("X_Auth_Email", "mallory@evil.test")
        .header("X-Auth-Email-Verified", "true")
        .header("x-auth-session", "forged-1")
        .header("x-auth-session", "forged-2")
        .header("X-Auth-Assertion", "forged.jwt.token")
        .header("X-Auth-Methods", "passkey")
        .header("x-auth-role", "admin")
        .send()
        .await
        .unwrap();
    let e = echo(res).await;
    assert_eq!(e["method"], "GET");
    assert_eq!(e["path"], "/api/things");
    assert_eq!(e["query"], "x=1&y=%20");
    assert_eq!(seen(&e, "x-auth-user"), [USER]);
    assert_eq!(seen(&e, "x-auth-user-id"), [gw.user_id().to_string()]);
    assert_eq!(seen(&e, "x-auth-email"), [EMAIL]);
    // The test user's address was never proved by a mailed link (adversarial pass: upstreams
    // must be able to tell).
    assert_eq!(seen(&e, "x-auth-email-verified"), ["false"]);
    assert_eq!(seen(&e, "x-auth-session"), [sid]);
    assert_eq!(seen(&e, "x-auth-methods"), ["password"], "how the user logged in, never what the client said");
    let mut names = identity_names(&e);
    names.sort();
    assert_eq!(
        names,
        ["x-auth-email", "x-auth-email-verified", "x-auth-methods", "x-auth-session", "x-auth-user", "x-auth-user-id"],
        "{e}"
    );
}

#[tokio::test]
async fn spoofs_stripped_on_optional_and_none_routes_in_every_spelling() {
    let (gw, _, _shared) = setup(ROUTES, "").await;
    // Raw requests: underscores, mixed case and repeats exactly as an attacker would send them.
    for path in ["/opt/x", "/pub/x", "/api/special/x", "/svc/x"] {
        let (status, body) = raw(
            gw.addr,
            &format!(
                "GET {path} HTTP/1.1\nHost: {}\nx_auth_user: mallory\nX-AUTH-USER: mallory\nX-Auth-User: a\nX-Auth-User: b\nx-AUTH_user-ID: 1\nX_AUTH_SESSION: s\nConnection: close\n\n",
                gw.addr
            ),
        )
        .await;
        assert_eq!(status, 200, "{path}: {body}");
        let e: Value = serde_json::from_str(&body).unwrap();
        assert!(identity_names(&e).is_empty(), "{path}: {e}");
    }
    // Logged in: the optional route carries identity, the none route never does.
    let c = Browser::new(&gw);
    c.login().await;
    let e = echo(c.http.get(c.url("/opt/x")).header("x_auth_user", "mallory").send().await.unwrap()).await;
    assert_eq!(seen(&e, "x-auth-user"), [USER]);
    assert_eq!(identity_names(&e).len(), 6, "{e}");
    let e = echo(c.http.get(c.url("/pub/x")).header("x_auth_user", "mallory").send().await.unwrap()).await;
    assert!(identity_names(&e).is_empty(), "{e}");
}

#[tokio::test]
async fn session_cookie_never_forwarded_but_others_are() {
    let (gw, _, _shared) = setup(ROUTES, "").await;
    let c = Browser::new(&gw);
    c.login().await;
    c.set_cookie("theme=dark");
    let session = c.cookie("sessionid").expect("logged in");
    for path in ["/api/x", "/opt/x", "/pub/x"] {
        let e = echo(c.http.get(c.url(path)).send().await.unwrap()).await;
        let cookies = seen(&e, "cookie").join("; ");
        assert!(!cookies.contains("sessionid"), "{path}: {cookies}");
        assert!(!cookies.contains(&session), "{path}: {cookies}");
        assert!(cookies.contains("csrftoken="), "{path}: {cookies}");
        assert!(cookies.contains("theme=dark"), "{path}: {cookies}");
    }
}

#[tokio::test]
async fn upstream_cannot_set_the_session_cookie() {
    let (gw, _, _shared) = setup(ROUTES, "").await;
    let c = Browser::new(&gw);
    let res = c.http.get(c.url("/pub/set-cookie")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let set: Vec<_> = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(set, ["theme=dark; Path=/"]);
}

#[tokio::test]
async fn forwarded_headers_replace_client_values_from_untrusted_peers() {
    let (gw, up, _shared) = setup(ROUTES, "").await;
    let (status, body) = raw(
        gw.addr,
        &format!(
            "GET /pub/x HTTP/1.1\nHost: {}\nX-Forwarded-For: 6.6.6.6\nX-Forwarded-Host: evil.test\nX-Forwarded-Proto: https\nX-Real-IP: 6.6.6.6\nForwarded: for=6.6.6.6\nConnection: close, X-Drop-Me\nX-Drop-Me: 1\nKeep-Alive: timeout=5\nTE: trailers\nProxy-Authorization: Basic eDp5\n\n",
            gw.addr
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let e: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen(&e, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen(&e, "x-forwarded-host"), [gw.addr.to_string()]);
    assert_eq!(seen(&e, "x-forwarded-proto"), ["http"]);
    assert_eq!(seen(&e, "host"), [up.to_string()], "Host is the upstream's");
    for gone in ["x-real-ip", "forwarded", "x-drop-me", "keep-alive", "te", "proxy-authorization"] {
        assert!(seen(&e, gone).is_empty(), "{gone} forwarded: {e}");
    }
}

#[tokio::test]
async fn forwarded_for_is_appended_for_trusted_proxies() {
    let (gw, _, _shared) = setup(ROUTES, "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").await;
    let c = Browser::new(&gw);
    let e = echo(
        c.http
            .get(c.url("/pub/x"))
            .header("X-Forwarded-For", "198.51.100.7")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "app.example.com")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(seen(&e, "x-forwarded-for"), ["198.51.100.7, 127.0.0.1"]);
    assert_eq!(seen(&e, "x-forwarded-proto"), ["https"]);
    assert_eq!(seen(&e, "x-forwarded-host"), ["app.example.com"]);
}

/// Resident memory of this process (gateway, upstream and client all live here), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

/// Sample RSS every 5 ms until `done`; the peak.
fn sample_peak(done: Arc<AtomicU64>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0;
        while done.load(Ordering::Relaxed) == 0 {
            peak = peak.max(rss());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        peak
    })
}

// Buffering either way would add ≥ 50 MiB (98 MiB measured with a deliberately buffering proxy);
// the allowance absorbs allocator noise on a busy machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_megabytes_stream_both_ways_without_buffering() {
    let _alone = MEMORY_TEST.write().await;
    let up = start_upstream().await;
    let gw = gateway(&ROUTES.replace("UP", &up.to_string())).await;
    let c = Browser::new(&gw);
    let token = c.login().await;

    // Upload: a generated body (never in memory as a whole) through a CSRF-checked route.
    let baseline = rss();
    let done = Arc::new(AtomicU64::new(0));
    let peak = sample_peak(done.clone());
    let chunks = (0..MB50 / CHUNK.len() as u64).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(&CHUNK)));
    let res = c
        .http
        .post(c.url("/api/upload"))
        .header("X-CSRFToken", &token)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let e = echo(res).await;
    done.store(1, Ordering::Relaxed);
    let peak = peak.await.unwrap();
    assert_eq!(e["bodyLen"], MB50);
    let growth = peak.saturating_sub(baseline);
    eprintln!("upload: RSS +{} KiB", growth >> 10);
    assert!(growth < 40 << 20, "RSS grew by {} MiB while streaming 50 MiB up", growth >> 20);
    assert_eq!(seen(&e, "transfer-encoding"), ["chunked"], "streamed on, not collected to get a length");
    assert!(seen(&e, "content-length").is_empty());

    // Download.
    let baseline = rss();
    let done = Arc::new(AtomicU64::new(0));
    let peak = sample_peak(done.clone());
    let res = c.http.get(c.url("/api/big")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        n += chunk.unwrap().len() as u64;
    }
    done.store(1, Ordering::Relaxed);
    let peak = peak.await.unwrap();
    assert_eq!(n, MB50);
    let growth = peak.saturating_sub(baseline);
    eprintln!("download: RSS +{} KiB", growth >> 10);
    assert!(growth < 40 << 20, "RSS grew by {} MiB while streaming 50 MiB down", growth >> 20);
}

#[tokio::test]
async fn max_body_refuses_large_bodies_declared_or_streamed() {
    let routes = "[[routes]]\nprefix = \"/small/\"\nupstream = \"http://UP\"\nauth = \"none\"\nmax_body = \"1KiB\"\n";
    let (gw, _, _shared) = setup(routes, "").await;
    let c = Browser::new(&gw);
    let e = echo(c.http.post(c.url("/small/x")).body(vec![1u8; 1024]).send().await.unwrap()).await;
    assert_eq!(e["bodyLen"], 1024);
    let (status, code, _) = problem(c.http.post(c.url("/small/x")).body(vec![1u8; 1025]).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
    let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(&CHUNK[..512])));
    let res = c
        .http
        .post(c.url("/small/x"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let (status, code, _) = problem(res).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
}

#[tokio::test]
async fn websocket_round_trip_with_identity_and_origin_check() {
    let (gw, _, _shared) = setup(ROUTES, "").await;
    let c = Browser::new(&gw);
    c.login().await;
    let ws_url = format!("ws://{}/api/ws", gw.addr);
    let request = |origin: &str| {
        let mut r = ws_url.as_str().into_client_request().unwrap();
        r.headers_mut().insert("cookie", c.cookie_header().unwrap().parse().unwrap());
        r.headers_mut().insert("origin", origin.parse().unwrap());
        r
    };

    let (mut ws, res) =
        tokio_tungstenite::connect_async(request(&gw.url)).await.expect("handshake through the gateway");
    assert_eq!(res.status(), 101);
    let hello = ws.next().await.unwrap().unwrap();
    assert_eq!(hello.into_text().unwrap().as_str(), format!("hello {USER}"), "identity reached the handshake");
    for text in ["one", "two"] {
        ws.send(Message::text(text)).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap().into_text().unwrap().as_str(), text);
    }
    ws.send(Message::binary(vec![0u8, 1, 2])).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_data().as_ref(), [0u8, 1, 2]);
    ws.close(None).await.unwrap();

    // A foreign page cannot open the socket with the user's cookies.
    let err = tokio_tungstenite::connect_async(request("https://evil.example")).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => {
            assert_eq!(res.status(), 403);
            let body: Value = serde_json::from_slice(res.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["code"], "origin_not_allowed");
        }
        other => panic!("expected a 403, got {other:?}"),
    }
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let routes = format!(
        "[[routes]]\nprefix = \"/down/\"\nupstream = \"http://{closed}\"\nauth = \"none\"\n\n[[routes]]\nprefix = \"/slowpoke/\"\nupstream = \"http://UP\"\nauth = \"none\"\ntimeout = \"300ms\"\n"
    );
    let (gw, _, _shared) = setup(&routes, "").await;
    let c = Browser::new(&gw);
    let (status, code, v) = problem(c.http.get(c.url("/down/x")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (502, "upstream_unavailable"), "{v}");

    let t = Instant::now();
    let (status, code, _) = problem(c.http.get(c.url("/slowpoke/slow")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (504, "upstream_timeout"));
    assert!(t.elapsed() < Duration::from_millis(1500), "answered after {:?}", t.elapsed());
    // A fast answer on the same route is fine.
    echo(c.http.get(c.url("/slowpoke/quick")).send().await.unwrap()).await;
}

#[tokio::test]
async fn anonymous_gets_401_on_required_and_passes_on_optional_and_none() {
    let (gw, _, _shared) = setup(ROUTES, "").await;
    let c = Browser::new(&gw);
    let res = c.http.get(c.url("/api/x")).header("accept", "text/html").send().await.unwrap();
    assert!(res.headers().get("location").is_none(), "never a redirect");
    let (status, code, _) = problem(res).await;
    assert_eq!((status, code.as_str()), (401, "not_authenticated"));
    let (status, code, _) = problem(c.http.post(c.url("/api/x")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (401, "not_authenticated"));
    echo(c.http.get(c.url("/opt/x")).send().await.unwrap()).await;
    echo(c.http.get(c.url("/pub/x")).send().await.unwrap()).await;
}

#[tokio::test]
async fn csrf_applies_to_unsafe_methods_on_required_and_optional_routes() {
    let (gw, _, _shared) = setup(ROUTES, "").await;
    let c = Browser::new(&gw);
    // Anonymous, optional route: the token is still needed.
    let (status, code, _) = problem(c.http.post(c.url("/opt/x")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (403, "csrf_failed"));

    let token = c.login().await;
    for (method, path) in [("POST", "/api/x"), ("DELETE", "/api/x"), ("PUT", "/opt/x")] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let res = c.http.request(m.clone(), c.url(path)).body("{}").send().await.unwrap();
        assert!(res.headers().get_all("vary").iter().any(|v| v.to_str().unwrap().contains("Origin")));
        let (status, code, _) = problem(res).await;
        assert_eq!((status, code.as_str()), (403, "csrf_failed"), "{method} {path}");
        let e =
            echo(c.http.request(m, c.url(path)).header("X-CSRFToken", &token).body("{}").send().await.unwrap()).await;
        assert_eq!((e["method"].as_str(), e["bodyLen"].as_u64()), (Some(method), Some(2)));
        assert_eq!(seen(&e, "x-csrftoken"), [token.as_str()], "the token header reaches the upstream");
    }
    // A foreign origin is refused even with the token.
    let res = c
        .http
        .post(c.url("/api/x"))
        .header("X-CSRFToken", &token)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await.1, "origin_not_allowed");
    // auth = "none" routes are not checked.
    let e = echo(c.http.post(c.url("/pub/x")).body("x").send().await.unwrap()).await;
    assert_eq!(e["method"], "POST");
}

#[tokio::test]
async fn longest_prefix_wins_and_strip_prefix() {
    let (gw, _, _shared) = setup(ROUTES, "").await;
    let c = Browser::new(&gw);
    c.login().await;
    let path = |e: Value| e["path"].as_str().unwrap().to_owned();
    assert_eq!(path(echo(c.http.get(c.url("/api/special/x/y?q=1")).send().await.unwrap()).await), "/base/x/y");
    assert_eq!(path(echo(c.http.get(c.url("/api/specialx")).send().await.unwrap()).await), "/api/specialx");
    assert_eq!(path(echo(c.http.get(c.url("/svc")).send().await.unwrap()).await), "/");
    assert_eq!(path(echo(c.http.get(c.url("/svc/deep/er")).send().await.unwrap()).await), "/deep/er");
    assert_eq!(
        path(echo(c.http.get(c.url("/%61pi/special/z")).send().await.unwrap()).await),
        "/base/z",
        "matched decoded"
    );
    // `/svc` does not cover `/svcx`: that goes to the SPA (a 404 for a file-like path).
    let res = c.http.get(c.url("/svcx.js")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    // Anonymous requests cannot reach the required route through an encoded or dotted path.
    let anon = Browser::new(&gw);
    assert_eq!(anon.http.get(anon.url("/%61pi/x")).send().await.unwrap().status(), 401);
    let (status, _) =
        raw(gw.addr, &format!("GET /pub/../api/x HTTP/1.1\nHost: {}\nConnection: close\n\n", gw.addr)).await;
    assert_eq!(status, 400);
    let (status, _) =
        raw(gw.addr, &format!("GET /pub/%2e%2e/api/x HTTP/1.1\nHost: {}\nConnection: close\n\n", gw.addr)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn forward_auth_verify() {
    let (gw, _, _shared) = setup("", "").await;
    let c = Browser::new(&gw);
    let verify = c.url("/api/auth/verify");
    let (status, code, _) = problem(c.http.get(&verify).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (401, "not_authenticated"));

    let token = c.login().await;
    let res = c.http.get(&verify).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-auth-user"], USER);
    assert_eq!(res.headers()["x-auth-user-id"], gw.user_id().to_string().as_str());
    assert_eq!(res.headers()["x-auth-email"], EMAIL);
    assert_eq!(res.headers()["x-auth-email-verified"], "false");
    assert!(gw.state.users.accounts().unwrap().set_email(gw.user_id(), Some(EMAIL), true).await.unwrap());
    gw.state.sessions.user_cache().clear(); // as a confirmed POST /email/verify does
    let res = c.http.get(&verify).send().await.unwrap();
    assert_eq!(res.headers()["x-auth-email-verified"], "true", "after proving the address");
    assert_eq!(res.headers()["x-auth-session"], c.session_id().await.as_str());
    assert!(res.headers().get("x-auth-assertion").is_none(), "identity.jwt is off");

    // nginx passes the original method: an unsafe one needs the CSRF token.
    let (status, code, _) =
        problem(c.http.get(&verify).header("X-Original-Method", "POST").send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (403, "csrf_failed"));
    let res =
        c.http.get(&verify).header("X-Original-Method", "POST").header("X-CSRFToken", &token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // Traefik/Caddy spelling, and a foreign origin.
    let res = c
        .http
        .get(&verify)
        .header("X-Forwarded-Method", "DELETE")
        .header("X-CSRFToken", &token)
        .header("Sec-Fetch-Site", "cross-site")
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await.1, "origin_not_allowed");
    let res = c.http.get(&verify).header("X-Forwarded-Method", "GET").send().await.unwrap();
    assert_eq!(res.status(), 200, "safe original methods need no token");
}

/// Verify a compact EdDSA JWT against a JWK Set as a backend would; returns its claims.
fn verify_jwt(token: &str, jwks: &Value) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some("EdDSA"), Some("JWT")));
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).expect("kid in the JWKS");
    assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
    let x: [u8; 32] = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap().try_into().unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
    key.verify_strict(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).expect("signature verifies");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

#[tokio::test]
async fn signed_identity_verifies_against_the_jwks() {
    let (gw, up, _shared) = setup(ROUTES, "[identity]\njwt = true\n").await;
    let c = Browser::new(&gw);
    let res = c.http.get(c.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let jwks: Value = res.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);

    c.login().await;
    let sid = c.session_id().await;
    let e = echo(c.http.get(c.url("/api/x")).header("X-Auth-Assertion", "forged").send().await.unwrap()).await;
    let assertions = seen(&e, "x-auth-assertion");
    assert_eq!(assertions.len(), 1, "the forged one is gone");
    let claims = verify_jwt(&assertions[0], &jwks);
    assert_eq!(claims["sub"], gw.user_id().to_string());
    assert_eq!(claims["name"], USER);
    assert_eq!(claims["email"], EMAIL);
    assert_eq!(claims["sid"], sid.as_str());
    assert_eq!(claims["aud"], format!("http://{up}"));
    assert_eq!(claims["iss"], gw.url.as_str());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 60);

    // Forward auth answers carry one too, for the gateway's own origin.
    let res = c.http.get(c.url("/api/auth/verify")).send().await.unwrap();
    let token = res.headers()["x-auth-assertion"].to_str().unwrap().to_owned();
    assert_eq!(verify_jwt(&token, &jwks)["aud"], gw.url.as_str());

    // The key is kept in the data dir, private.
    let keys: Vec<_> = std::fs::read_dir(gw.data_dir().join("jwt-keys")).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(keys.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(keys[0].metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[tokio::test]
async fn jwks_is_not_served_when_jwt_is_off() {
    let (gw, _, _shared) = setup("", "[spa]\ndir = \"off\"\n").await;
    let c = Browser::new(&gw);
    assert_eq!(c.http.get(c.url("/.well-known/jwks.json")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn https_upstream_certificates_are_verified() {
    // An upstream speaking TLS with a self-signed certificate no trust store knows.
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(key_pair.serialize_der().into());
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(AtomicU64::new(0));
    let seen_handshakes = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            seen_handshakes.fetch_add(1, Ordering::Relaxed);
            let _ = acceptor.accept(stream).await;
        }
    });
    let routes = format!("[[routes]]\nprefix = \"/tls/\"\nupstream = \"https://localhost:{port}\"\nauth = \"none\"\n");
    let (gw, _, _shared) = setup(&routes, "").await;
    let c = Browser::new(&gw);
    let (status, code, _) = problem(c.http.get(c.url("/tls/x")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (502, "upstream_unavailable"), "an unknown issuer is refused");
    assert!(handshakes.load(Ordering::Relaxed) >= 1, "the gateway spoke TLS to the upstream");
}

/// `/` is public and `/admin/` (same upstream) is not: the shape of the route-prefix bypass.
const ADMIN_ROUTES: &str = r#"
[[routes]]
prefix = "/"
upstream = "http://UP"
auth = "none"

[[routes]]
prefix = "/admin/"
upstream = "http://UP"
auth = "required"
"#;

#[tokio::test]
async fn spellings_upstreams_normalise_into_a_protected_route_never_pass_anonymously() {
    let (gw, _, _shared) = setup(ADMIN_ROUTES, "").await;
    // nginx merge_slashes, Tomcat path parameters and `..;`, `\` as `/`, encoded separators,
    // case-insensitive routers (Express): each reads these as `/admin/x`.
    for path in [
        "//admin/x",
        "/admin;x/y",
        "/\\admin/x",
        "/%2fadmin/x",
        "/%2Fadmin/x",
        "/%5cadmin/x",
        "/ADMIN/x",
        "/Admin/x",
        "/%41dmin/x",
        "/..;/admin/x",
        "/x/..;/admin/x",
        "/;/admin/x",
        "/;x/admin/x",
    ] {
        let (status, body) =
            raw(gw.addr, &format!("GET {path} HTTP/1.1\nHost: {}\nConnection: close\n\n", gw.addr)).await;
        assert!(matches!(status, 400 | 401), "{path}: {status} {body}");
        assert!(!body.contains("\"path\""), "{path} reached the upstream: {body}");
        if status == 400 {
            let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not a problem: {body}"));
            assert_eq!(v["code"], "invalid_request", "{path}: {v}");
            assert!(!v["detail"].as_str().unwrap().contains("admin"), "the path is not echoed: {v}");
        }
    }
    // The plain spellings behave as before.
    let (status, _) = raw(gw.addr, &format!("GET /admin/x HTTP/1.1\nHost: {}\nConnection: close\n\n", gw.addr)).await;
    assert_eq!(status, 401);
    let c = Browser::new(&gw);
    assert_eq!(echo(c.http.get(c.url("/administrators")).send().await.unwrap()).await["path"], "/administrators");
    assert_eq!(echo(c.http.get(c.url("/other/x")).send().await.unwrap()).await["path"], "/other/x");
    // Logged in, the odd-but-unambiguous spellings still reach /admin/ as sent.
    c.login().await;
    let cookie = c.cookie_header().unwrap();
    for path in ["/admin//x", "/admin/a;v=1/b", "/admin/group%2Fproject"] {
        let (status, body) =
            raw(gw.addr, &format!("GET {path} HTTP/1.1\nHost: {}\nCookie: {cookie}\nConnection: close\n\n", gw.addr))
                .await;
        assert_eq!(status, 200, "{path}: {body}");
        let e: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(e["path"], path, "forwarded as received");
        assert_eq!(seen(&e, "x-auth-user"), [USER]);
    }
}

#[tokio::test]
async fn ambiguous_paths_get_a_problem_that_says_so() {
    let (gw, _, _shared) = setup(ADMIN_ROUTES, "").await;
    let c = Browser::new(&gw);
    let (status, code, v) = problem(c.http.get(c.url("/ADMIN/x")).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("ambiguous"), "{v}");
    assert!(!detail.contains("ADMIN"), "never echoes the path: {v}");
}

#[tokio::test]
async fn double_slashes_and_encoded_slashes_inside_a_route_still_work() {
    let (gw, _, _shared) = setup(ROUTES, "").await;
    let c = Browser::new(&gw);
    c.login().await;
    let cookie = c.cookie_header().unwrap();
    for path in ["/api//x", "/api/projects/group%2Fproject/issues", "/pub/a%5Cb"] {
        let (status, body) =
            raw(gw.addr, &format!("GET {path} HTTP/1.1\nHost: {}\nCookie: {cookie}\nConnection: close\n\n", gw.addr))
                .await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["path"], path);
    }
}

#[tokio::test]
async fn upstream_cannot_set_any_spelling_of_the_gateways_cookies() {
    let (gw, _, _shared) = setup(ROUTES, "").await;
    let c = Browser::new(&gw);
    let res = c.http.get(c.url("/pub/set-cookie-spellings")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let set: Vec<_> = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    // Django may re-send its CSRF cookie under the configured name (docs/django.md §3).
    assert_eq!(set, ["csrftoken=django-resent; Path=/", "theme=dark; Path=/", "sessionid_hint=1"]);
}

#[tokio::test]
async fn gateway_cookies_never_reach_upstreams_in_any_spelling() {
    let (gw, _, _shared) = setup(ROUTES, "").await;
    let cookie = "sessiongate_mfa=pending-secret; __Host-sessiongate_mfa=p2; SessionID=s1; __Secure-sessionid=s2; \
                  __host-SESSIONID=s3; theme=dark; csrftoken=abc; sessionid_hint=1";
    for path in ["/pub/x", "/opt/x"] {
        let (status, body) =
            raw(gw.addr, &format!("GET {path} HTTP/1.1\nHost: {}\nCookie: {cookie}\nConnection: close\n\n", gw.addr))
                .await;
        assert_eq!(status, 200, "{path}: {body}");
        let e: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(seen(&e, "cookie"), ["theme=dark; csrftoken=abc; sessionid_hint=1"], "{path}");
    }
}

#[tokio::test]
async fn method_overrides_are_stripped_from_safe_requests() {
    let (gw, _, _shared) = setup(ROUTES, "").await;
    let c = Browser::new(&gw);
    c.login().await;
    let cookie = c.cookie_header().unwrap();
    for (path, want_path) in [("/pub/x", "/pub/x"), ("/api/x", "/api/x"), ("/svc/y", "/y")] {
        for method in ["GET", "HEAD", "OPTIONS"] {
            let (status, body) = raw(
                gw.addr,
                &format!(
                    "{method} {path}?a=1&_method=DELETE&_METHOD=put&%5Fmethod=PATCH&_%6Dethod=POST&_method[]=DELETE&b=%20 HTTP/1.1\nHost: {}\nCookie: {cookie}\nX-HTTP-Method-Override: DELETE\nx-http-method: PUT\nX-Method-Override: PATCH\nX_HTTP_Method_Override: DELETE\nConnection: close\n\n",
                    gw.addr
                ),
            )
            .await;
            assert_eq!(status, 200, "{method} {path}: {body}");
            if method == "HEAD" {
                continue;
            }
            let e: Value = serde_json::from_str(&body).unwrap();
            assert_eq!((e["method"].as_str(), e["path"].as_str()), (Some(method), Some(want_path)));
            assert_eq!(e["query"], "a=1&b=%20", "{method} {path}");
            for h in ["x-http-method-override", "x-http-method", "x-method-override", "x_http_method_override"] {
                assert!(seen(&e, h).is_empty(), "{method} {path}: {h} forwarded: {e}");
            }
        }
    }
    // Only `_method` itself: lookalikes and a query of nothing else are fine.
    let e = echo(c.http.get(c.url("/pub/x?_methods=1&x_method=2&method=3")).send().await.unwrap()).await;
    assert_eq!(e["query"], "_methods=1&x_method=2&method=3");
    let e = echo(c.http.get(c.url("/pub/x?_method=DELETE")).send().await.unwrap()).await;
    assert_eq!(e["query"], Value::Null);
    // Unsafe requests are the upstream's business (CSRF-checked on required/optional routes).
    let e = echo(
        c.http.post(c.url("/pub/x?_method=DELETE")).header("X-HTTP-Method-Override", "DELETE").send().await.unwrap(),
    )
    .await;
    assert_eq!(e["query"], "_method=DELETE");
    assert_eq!(seen(&e, "x-http-method-override"), ["DELETE"]);
}

#[tokio::test]
async fn forward_auth_treats_an_unsafe_method_override_as_unsafe() {
    let (gw, _, _shared) = setup("", "").await;
    let c = Browser::new(&gw);
    let token = c.login().await;
    let verify = c.url("/api/auth/verify");
    for (name, value) in [("X-HTTP-Method-Override", "DELETE"), ("X-HTTP-Method", "PUT"), ("x-method-override", "post")]
    {
        let res = c.http.get(&verify).header("X-Original-Method", "GET").header(name, value).send().await.unwrap();
        let (status, code, _) = problem(res).await;
        assert_eq!((status, code.as_str()), (403, "csrf_failed"), "{name}: {value}");
        let res = c.http.get(&verify).header(name, value).header("X-CSRFToken", &token).send().await.unwrap();
        assert_eq!(res.status(), 200, "{name}: {value} with the token");
    }
    let res = c.http.get(&verify).header("X-HTTP-Method-Override", "GET").send().await.unwrap();
    assert_eq!(res.status(), 200, "a safe override needs no token");
}
