//! Prometheus metrics, served only on `server.admin_listen` (`GET /metrics`), never on the
//! public listener.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `sessiongate_http_requests_total` | counter | `class` (auth, proxy, health, spa), `route` (auth endpoint template, proxy prefix, health path, `spa`), `method`, `status` |
//! | `sessiongate_http_request_duration_seconds` | histogram | `class`, `route` |
//! | `sessiongate_logins_total` | counter | `outcome`: success, mfa_required, failure, rate_limited, error |
//! | `sessiongate_csrf_rejections_total` | counter | `reason`: cross_site, untrusted_origin, no_referer, …, no_cookie, missing_token, incorrect_token, not_bound_to_session |
//! | `sessiongate_rate_limited_total` | counter | `route` |
//! | `sessiongate_active_sessions` | gauge | – (refreshed every 60 s from the session store) |
//! | `sessiongate_store_operation_duration_seconds` | histogram | `store` (sessions, users), `op` |
//! | `sessiongate_proxy_upstream_errors_total` | counter | `route`, `kind` (unavailable, timeout) |
//! | `sessiongate_audit_events_total` / `_dropped_total` | counter | `event`, `outcome` / `sink` |
//!
//! Labels come from closed sets ([`crate::http::route`]), so scanners cannot create series.
//! The recorder is process-wide (the `metrics` facade); it is installed by the first
//! [`handle`] call, i.e. only when an admin listener is configured — otherwise every metric
//! macro is a no-op.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::http::problem::ProblemCode;
use crate::http::route::{RouteClass, RouteClassifier, method_label};
use crate::session::SessionManager;

const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("non-empty buckets");
        let handle = match builder.install_recorder() {
            Ok(h) => h,
            Err(e) => {
                // Another recorder was installed by the embedding program: render an empty one.
                tracing::warn!(error = %e, "a metrics recorder is already installed; /metrics will be empty");
                PrometheusBuilder::new().build_recorder().handle()
            }
        };
        describe();
        crate::db::timing::enable();
        handle
    })
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("sessiongate_http_requests_total", "HTTP requests by route class, route, method and status.");
    describe_histogram!(
        "sessiongate_http_request_duration_seconds",
        ::metrics::Unit::Seconds,
        "Time to the response head, by route class and route."
    );
    describe_counter!("sessiongate_logins_total", "Login attempts (password and second step) by outcome.");
    describe_counter!("sessiongate_csrf_rejections_total", "Unsafe requests refused by the CSRF checks, by reason.");
    describe_counter!("sessiongate_rate_limited_total", "Requests refused with 429 by a rate limit or back-off.");
    describe_gauge!("sessiongate_active_sessions", "Live sessions in the session store.");
    describe_histogram!(
        "sessiongate_store_operation_duration_seconds",
        ::metrics::Unit::Seconds,
        "Session and user store lookups made for requests."
    );
    describe_counter!("sessiongate_proxy_upstream_errors_total", "Proxied requests answered 502 or 504.");
    describe_counter!("sessiongate_audit_events_total", "Audit events recorded.");
    describe_counter!("sessiongate_audit_dropped_total", "Audit events dropped (queue full or write failed).");
}

/// Count and time every request by its route class (outermost layer but the request id).
pub async fn track(State(routes): State<Arc<RouteClassifier>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let c = routes.classify(req.uri().path());
    let method = method_label(req.method());
    let res = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    let (class, route) = (c.class.as_str(), c.route);
    let status = res.status();
    ::metrics::counter!(
        "sessiongate_http_requests_total",
        "class" => class, "route" => route.clone(), "method" => method, "status" => status.as_str().to_owned()
    )
    .increment(1);
    ::metrics::histogram!("sessiongate_http_request_duration_seconds", "class" => class, "route" => route.clone())
        .record(elapsed);
    if c.class == RouteClass::Proxy {
        let kind = match res.extensions().get::<ProblemCode>().map(|p| p.0) {
            Some("upstream_unavailable") => Some("unavailable"),
            Some("upstream_timeout") => Some("timeout"),
            _ => None,
        };
        if let Some(kind) = kind {
            ::metrics::counter!("sessiongate_proxy_upstream_errors_total", "route" => route, "kind" => kind)
                .increment(1);
        }
    }
    res
}

/// The admin listener's router: `GET /metrics` (Prometheus text format) and `GET /healthz`.
pub fn admin_router() -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|| async {
                let body = handle().render();
                ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
            }),
        )
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }))
}

/// Upkeep of the recorder (every 5 s: histogram buckets drained) and the active-sessions gauge
/// (every 60 s, from the store). Runs until the runtime stops.
pub fn spawn_upkeep(sessions: SessionManager) {
    let handle = handle();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut n = 0u64;
        loop {
            tick.tick().await;
            handle.run_upkeep();
            if n.is_multiple_of(12) {
                refresh_active_sessions(&sessions).await;
            }
            n += 1;
        }
    });
}

/// Set `sessiongate_active_sessions` from the store now.
pub async fn refresh_active_sessions(sessions: &SessionManager) {
    let start = Instant::now();
    match sessions.store().count(chrono::Utc::now()).await {
        Ok(n) => ::metrics::gauge!("sessiongate_active_sessions").set(n as f64),
        Err(e) => tracing::debug!(error = %e, "active sessions could not be counted"),
    }
    crate::db::timing::record("sessions", "count", start.elapsed());
}
