//! A reference for `bench/run`, not a product: the bare reverse proxy that the same HTTP stack
//! as sessiongate's (hyper's server, hyper-util's pooled client, tokio) gives without any of
//! sessiongate's work — no session, no CSRF, no header policy, no logging. It shows how much of
//! the distance to nginx is the stack's own and how much is sessiongate's.
//!
//! ```text
//! cargo run --release --example bench_bare_proxy -- 127.0.0.1:8081 http://127.0.0.1:8080
//! ```

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: bench_bare_proxy LISTEN_ADDR UPSTREAM_ORIGIN");
        std::process::exit(2);
    };
    let upstream: &'static str = upstream.trim_end_matches('/').to_owned().leak();
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build(http);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let client = client.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let client = client.clone();
                async move {
                    let (mut parts, body) = req.into_parts();
                    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
                    parts.uri = format!("{upstream}{path}").parse().expect("origin + path");
                    parts.headers.remove(http::header::HOST);
                    let res = match client.request(http::Request::from_parts(parts, Body::new(body))).await {
                        Ok(res) => res.map(Body::new),
                        Err(_) => http::Response::builder().status(502).body(Body::empty()).expect("static"),
                    };
                    Ok::<_, std::convert::Infallible>(res)
                }
            });
            let _ = Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
