//! The pooled upstream client: hyper-util's legacy client over HTTP/1.1, plain or TLS.
//!
//! HTTP/1.1 only (ALPN `http/1.1`), as nginx does by default: WebSocket upgrades need it and
//! keep-alive pooling gives most of HTTP/2's benefit on a LAN. TLS is rustls with the `ring`
//! provider installed explicitly (no process-wide default is needed), verifying against the
//! system's CA store, or Mozilla's roots when the system has none.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

pub type Upstream = Client<HttpsConnector<HttpConnector>, Body>;

/// Give up connecting after this long even when the route's timeout is longer (a black-holed
/// address answers nothing).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn build() -> Upstream {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()).or_else(|e| {
        tracing::debug!(error = %e, "no system CA certificates; https upstreams are verified against Mozilla's roots");
        HttpsConnectorBuilder::new().with_provider_and_webpki_roots(provider)
    });
    let tls = tls.expect("the ring provider supports rustls' default protocol versions");
    let connector = tls.https_or_http().enable_http1().wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// Why forwarding failed before a response head arrived.
#[derive(Debug)]
pub enum Failure {
    /// The request body passed the route's `max_body` while streaming.
    TooLarge,
    /// Connection refused, reset, DNS failure, TLS failure, malformed response…
    Unreachable(String),
}

/// Classify a client error by walking its source chain.
pub fn classify(e: &hyper_util::client::legacy::Error) -> Failure {
    let mut chain = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return Failure::TooLarge;
        }
        chain.push(s.to_string());
        source = s.source();
    }
    Failure::Unreachable(chain.join(": "))
}
