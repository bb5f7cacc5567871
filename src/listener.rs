//! Accepting connections: plain TCP or TLS (rustls, HTTP/1.1 and HTTP/2 by ALPN), with the
//! request-hygiene limits `axum::serve` does not expose — a header-read timeout against slowloris
//! and a bound on header size (hyper answers 431) — graceful shutdown, and certificate reload on
//! SIGHUP.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            tls_handshake_timeout: Duration::from_secs(10),
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
    let graceful = GracefulShutdown::new();
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
        let svc = service(app.clone(), peer);
        let builder = builder.clone();
        match &tls {
            None => {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                let watcher = graceful.watcher();
                let timeout = limits.tls_handshake_timeout;
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still open after 30 s; closing them");
    }
    Ok(())
}

fn service(
    app: Router,
    peer: SocketAddr,
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
        app.clone().oneshot(req.map(axum::body::Body::new))
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
