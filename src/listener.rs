//! Accepting connections: plain TCP or TLS (rustls, HTTP/1.1 and HTTP/2 by ALPN), with the
//! request-hygiene limits `axum::serve` does not expose — a header-read timeout against slowloris
//! and a bound on header size (hyper answers 431) — graceful shutdown, and certificate reload on
//! SIGHUP.
//!
//! hyper times out a request head only once it has started parsing one: a connection that
//! never sends a byte waits in hyper-util's HTTP-version detection forever, and an idle HTTP/2
//! connection is never closed. Each connection therefore has a watchdog that shuts it down
//! gracefully when no request is in flight for too long (`header_read_timeout` before the
//! first request, `idle_timeout` after), so silent sockets cannot exhaust file descriptors.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Limits applied to every connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time a client gets to send a complete request head (slowloris defence).
    pub header_read_timeout: Duration,
    /// Largest request head (request line + headers); larger gets 431.
    pub max_header_bytes: usize,
    /// Time a client gets to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time a connection may stay open with no request in flight once it has served one.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            tls_handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// A TLS configuration that can be replaced while serving (SIGHUP reloads the files).
pub struct ReloadableTls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl ReloadableTls {
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Self>> {
        let config = load_config(cert, key)?;
        Ok(Arc::new(ReloadableTls { cert: cert.into(), key: key.into(), current: RwLock::new(Arc::new(config)) }))
    }

    /// Re-read the PEM files; on error the previous certificate stays in use.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = load_config(&self.cert, &self.key)?;
        *self.current.write().expect("poisoned") = Arc::new(config);
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().expect("poisoned").clone())
    }
}

fn load_config(cert: &Path, key: &Path) -> anyhow::Result<ServerConfig> {
    use anyhow::Context;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("server.tls_cert: cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("server.tls_cert: {} is not PEM certificates", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "server.tls_cert: {} holds no certificate", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("server.tls_key: cannot read a PEM private key from {}", key.display()))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("server.tls_cert/tls_key: the key does not match the certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serve `app` on `listener` until `shutdown` resolves, then let in-flight requests finish (at
/// most 30 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<ReloadableTls>>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder.http2().timer(TokioTimer::new()).max_header_list_size(limits.max_header_bytes as u32);
    let builder = Arc::new(builder);
    let connections = TaskTracker::new();
    let stopping = CancellationToken::new();
    #[cfg(unix)]
    if let Some(tls) = &tls {
        spawn_reload_on_sighup(tls.clone());
    }

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let svc = service(app.clone(), peer, activity.clone());
        let builder = builder.clone();
        let stopping = stopping.clone();
        match &tls {
            None => {
                connections.spawn(async move {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                    if let Err(e) = watch(conn, &activity, limits, stopping).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                let timeout = limits.tls_handshake_timeout;
                connections.spawn(async move {
                    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                    if let Err(e) = watch(conn, &activity, limits, stopping).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    if tokio::time::timeout(Duration::from_secs(30), connections.wait()).await.is_err() {
        tracing::warn!("some connections were still open after 30 s; closing them");
    }
    Ok(())
}

/// What the watchdog reads: requests in flight, and when the last one ended.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` at which the last request ended; `u64::MAX`: none yet.
    last_end: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity { opened: Instant::now(), in_flight: AtomicUsize::new(0), last_end: AtomicU64::new(u64::MAX) }
    }

    /// When the connection becomes idle for too long, if nothing happens before then.
    fn deadline(&self, limits: Limits) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Instant::now() + limits.idle_timeout;
        }
        match self.last_end.load(Ordering::Acquire) {
            u64::MAX => self.opened + limits.header_read_timeout,
            ms => self.opened + Duration::from_millis(ms) + limits.idle_timeout,
        }
    }
}

/// Counts a request as in flight until its response body has been sent (or dropped): a
/// streamed response (server-sent events, a long download through the proxy) keeps its
/// connection busy, never idle.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.0.last_end.store(ms, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Drive `conn` to its end, shutting it down gracefully when the server stops or when it has
/// been idle past its deadline (a response still streaming is finished first).
async fn watch<I, S, B>(
    conn: hyper_util::server::conn::auto::UpgradeableConnection<'_, I, S, TokioExecutor>,
    activity: &Activity,
    limits: Limits,
    stopping: CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    TokioExecutor: hyper_util::server::conn::auto::HttpServerConnExec<S::Future, B>,
{
    tokio::pin!(conn);
    let mut closing = false;
    // Once an idle connection was told to close, how long its peer gets to go: an HTTP/2
    // client that never answers the GOAWAY's PING would otherwise keep the socket for ever.
    let mut hard_stop: Option<Instant> = None;
    loop {
        let deadline = activity.deadline(limits);
        let hard = hard_stop.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            ended = conn.as_mut() => return ended,
            () = stopping.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(deadline), if !closing => {
                // A request may have started or ended meanwhile: only a deadline still in the
                // past means idle.
                if activity.deadline(limits) <= Instant::now() {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    hard_stop = Some(Instant::now() + limits.header_read_timeout);
                }
            }
            () = tokio::time::sleep_until(hard), if hard_stop.is_some() => {
                if activity.in_flight.load(Ordering::Acquire) == 0 {
                    tracing::debug!("idle connection did not close after GOAWAY; dropping it");
                    return Ok(());
                }
                // A request arrived in the meantime (HTTP/2 lets in-flight streams finish).
                hard_stop = Some(Instant::now() + limits.idle_timeout);
            }
        }
    }
}

fn service(
    app: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send + 'static,
> + Clone
+ Send
+ 'static {
    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let in_flight = InFlight::start(activity.clone());
        let response = app.clone().oneshot(req.map(axum::body::Body::new));
        async move {
            use http_body_util::BodyExt;
            let response = response.await;
            // The guard lives as long as the body (one allocation: `Body` is boxed anyway).
            response.map(|res| {
                res.map(|body| {
                    axum::body::Body::new(body.map_frame(move |f| {
                        let _busy = &in_flight;
                        f
                    }))
                })
            })
        }
    })
}

#[cfg(unix)]
fn spawn_reload_on_sighup(tls: Arc<ReloadableTls>) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "TLS reload failed; keeping the previous certificate")
                }
            }
        }
    });
}
