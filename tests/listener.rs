//! The connection layer: HTTPS with a dev certificate (HTTP/1.1 and HTTP/2), HSTS, certificate
//! reload, the slowloris header timeout and the header size limit (431).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sessiongate::listener::{Limits, ReloadableTls};
use sessiongate::server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

/// A gateway (memory sessions, no users) served by `sessiongate::listener::serve` with these
/// `limits`, over HTTPS with a dev certificate for `localhost` when `https`: its address, the
/// temp dir holding its data and certificate, the TLS handle it serves with, and the CA's PEM.
async fn gateway(https: bool, limits: Limits) -> (SocketAddr, tempfile::TempDir, Option<Arc<ReloadableTls>>, String) {
    let _ = tokio_rustls_provider();
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut gw = support::gateway("")
        .set("session.store", "memory")
        .listener(listener)
        .data_dir(&dir.path().join("data"))
        .without_user();
    let (tls, ca) = if https {
        let c = sessiongate::devcert::generate(&["localhost".into()], &dir.path().join("cert")).unwrap();
        gw = gw
            .set("server.tls_cert", c.cert.display().to_string())
            .set("server.tls_key", c.key.display().to_string())
            .set("public_url", format!("https://localhost:{}", addr.port()));
        (Some(ReloadableTls::load(&c.cert, &c.key).unwrap()), std::fs::read_to_string(c.ca_cert).unwrap())
    } else {
        (None, String::new())
    };
    let t = tls.clone();
    gw.serve_with(move |state, listener| async move {
        let _ = sessiongate::listener::serve(listener, server::app(state), t, limits, std::future::pending()).await;
    })
    .start()
    .await;
    (addr, dir, tls, ca)
}

fn tokio_rustls_provider() -> bool {
    tokio_rustls::rustls::crypto::ring::default_provider().install_default().is_ok()
}

#[tokio::test]
async fn https_with_a_dev_cert_speaks_h1_and_h2_and_sends_hsts() {
    let (addr, _dir, tls, ca) = gateway(true, Limits::default()).await;
    let ca = reqwest::Certificate::from_pem(ca.as_bytes()).unwrap();
    let url = format!("https://localhost:{}/healthz", addr.port());
    for http2 in [false, true] {
        let mut b = reqwest::Client::builder().add_root_certificate(ca.clone()).resolve("localhost", addr);
        if !http2 {
            b = b.http1_only();
        }
        let res = b.build().unwrap().get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), if http2 { reqwest::Version::HTTP_2 } else { reqwest::Version::HTTP_11 });
        assert!(res.headers()["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
    }
    // Reloading re-reads the files; the server keeps answering.
    tls.unwrap().reload().unwrap();
    let client = reqwest::Client::builder().add_root_certificate(ca).resolve("localhost", addr).build().unwrap();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    // Plain HTTP on the TLS port gets nowhere.
    let plain = reqwest::get(format!("http://{addr}/healthz")).await;
    assert!(!plain.is_ok_and(|r| r.status().is_success()));
}

#[tokio::test]
async fn slowloris_connections_are_closed() {
    let limits = Limits { header_read_timeout: Duration::from_millis(300), ..Limits::default() };
    let (addr, _dir, _, _) = gateway(false, limits).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection by itself");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
}

/// Adversarial finding: a socket that never sends a byte (or only part of the HTTP/2 preface)
/// sat in HTTP-version detection forever, so silent connections could use up file descriptors.
#[tokio::test]
async fn silent_and_idle_connections_are_closed() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        tls_handshake_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    for https in [false, true] {
        let (addr, _dir, _, _) = gateway(https, limits).await;
        for first_bytes in [&b""[..], b"PRI * HT"] {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(first_bytes).await.unwrap();
            let mut buf = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
            assert!(read.is_ok(), "https={https}: a connection sending {first_bytes:?} is closed");
        }
    }
    // An HTTP/2 connection (prior knowledge, as a proxy may speak it) that served a request and
    // then sits idle is closed by the server: the client's connection future ends.
    let (addr, _dir, _, _) = gateway(false, limits).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get(format!("http://{addr}/healthz"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    assert_eq!(sender.send_request(req).await.unwrap().status(), 200);
    let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
    assert!(ended.is_ok(), "the idle HTTP/2 connection was closed by the server");

    // Second adversarial pass: a client that sends the HTTP/2 preface and then never answers
    // (not even the GOAWAY's PING) is dropped too.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a silent HTTP/2 client is dropped after the GOAWAY");
    // A connection busy with a request is not idle: a slow request is not cut off. /healthz is
    // quick, so hold the connection with keep-alive requests spaced under the idle timeout.
    let (addr, _dir, _, _) = gateway(false, limits).await;
    let client = reqwest::Client::builder().http1_only().build().unwrap();
    for _ in 0..4 {
        assert_eq!(client.get(format!("http://{addr}/healthz")).send().await.unwrap().status(), 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Review of the idle watchdog: a response still streaming (server-sent events, a long
/// download) is not idle, however long it lasts — the watchdog once counted a request done at
/// its response head and cut such streams after idle + header timeouts.
#[tokio::test]
async fn a_long_streamed_response_outlives_the_idle_timeouts() {
    use axum::routing::get;
    let limits = Limits {
        header_read_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let stream = || async {
        let chunks = futures_util::stream::unfold(0u32, |i| async move {
            if i == 10 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            Some((Ok::<_, std::io::Error>(format!("chunk {i}\n")), i + 1))
        });
        axum::body::Body::from_stream(chunks)
    };
    let app = axum::Router::new().route("/stream", get(stream));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(sessiongate::listener::serve(listener, app, None, limits, std::future::pending()));
    let text = reqwest::get(format!("http://{addr}/stream")).await.unwrap().text().await.unwrap();
    assert_eq!(text.lines().count(), 10, "1.5 s of streaming, past 0.3 s idle + 0.2 s grace: {text}");
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let limits = Limits { max_header_bytes: 16 * 1024, ..Limits::default() };
    let (addr, _dir, _, _) = gateway(false, limits).await;
    let res = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .header("x-big", "a".repeat(64 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 431);
    let ok = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .header("x-small", "a".repeat(1024))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
