//! `GET {auth.base_path}/openapi.json`: the OpenAPI 3.1 description of the auth API, generated
//! from the code — each handler's `#[utoipa::path]` annotation, the `ToSchema` derives of the
//! request and response types — and collected by the same `utoipa_axum::OpenApiRouter` that
//! builds [`super::router`], so a route cannot exist without being described, nor the
//! other way round. `schemathesis` runs against it in CI (`scripts/test`): no 500s, every
//! response as described.
//!
//! Paths are relative to the one server entry, `auth.base_path`. Every operation can also answer
//! a problem (`application/problem+json`, [`Problem`]) — the `default` response. The body
//! types here are the ones the handlers answer with, so the description cannot drift from the
//! JSON; `schemathesis` checks the rest (statuses, problems).

use std::sync::OnceLock;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Doc;
use utoipa::openapi::server::Server;

use super::types::{CsrfToken, Empty, Problem};
use crate::api::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sessiongate auth API",
        description = "Cookie-session authentication for single-page apps with Django-compatible CSRF. \
            Unsafe methods need the `X-CSRFToken` header (from `GET /csrf`) and the `csrftoken` cookie; \
            JSON bodies need `Content-Type: application/json`. Errors are RFC 9457 problems.",
        license(name = "MIT OR Apache-2.0")
    ),
    components(schemas(Problem, CsrfToken, Empty), responses(Problem)),
    tags(
        (name = "session", description = "CSRF token, login, logout, who am I"),
        (name = "account", description = "Signup, password, re-authentication, email"),
        (name = "mfa", description = "TOTP two-factor authentication"),
        (name = "sessions", description = "The user's devices"),
        (name = "forward-auth", description = "For nginx auth_request, Traefik, Caddy"),
        (name = "meta", description = "This description"),
    )
)]
pub struct ApiDoc;

/// The description with every annotated route, as built with the router.
pub fn doc() -> &'static Doc {
    static DOC: OnceLock<Doc> = OnceLock::new();
    DOC.get_or_init(|| super::documented().1)
}

/// The auth API's path templates (`/login`, `/sessions/{id}`…), relative to the base path.
pub fn auth_paths() -> Vec<String> {
    doc().paths.paths.keys().cloned().collect()
}

/// `GET {base}/openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    responses((status = 200, description = "This description (OpenAPI 3.1)", content_type = "application/json"))
)]
pub async fn serve(State(state): State<AppState>) -> Response {
    let mut doc = doc().clone();
    doc.servers = Some(vec![Server::new(state.settings.base_path.clone())]);
    axum::Json(doc).into_response()
}
