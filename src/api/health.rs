use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::api::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the stores answer; 503 otherwise (load balancers stop sending traffic).
pub async fn readyz(State(state): State<AppState>) -> Response {
    let timeout = std::time::Duration::from_secs(2);
    // Both at once: the answer comes within `timeout` even when both stores are down.
    let (s, u) = tokio::join!(
        tokio::time::timeout(timeout, state.sessions.store().ping()),
        tokio::time::timeout(timeout, state.users.ping()),
    );
    let (s, u) = (matches!(s, Ok(Ok(()))), matches!(u, Ok(Ok(()))));
    let status = if s && u { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let word = |b| if b { "ok" } else { "unavailable" };
    (status, Json(json!({ "status": word(s && u), "sessions": word(s), "users": word(u) }))).into_response()
}
