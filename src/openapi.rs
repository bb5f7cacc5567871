//! `GET {auth.base_path}/openapi.json`: the OpenAPI 3.1 description of the auth API, generated
//! from the code — each handler's `#[utoipa::path]` annotation, the `ToSchema` derives of the
//! request and response types — and collected by the same `utoipa_axum::OpenApiRouter` that
//! builds [`crate::api::router`], so a route cannot exist without being described, nor the
//! other way round. `schemathesis` runs against it in CI (`scripts/test`): no 500s, every
//! response as described.
//!
//! Paths are relative to the one server entry, `auth.base_path`. Every operation can also answer
//! a problem (`application/problem+json`, [`Problem`]) — the `default` response.

use std::sync::OnceLock;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::OpenApi as Doc;
use utoipa::openapi::server::Server;
use utoipa::{OpenApi, ToSchema};

use crate::state::AppState;

/// RFC 9457 problem details: every error of the API (`application/problem+json`).
#[derive(Serialize, ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
pub struct ProblemDoc {
    /// `urn:sessiongate:problem:{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Machine-readable: `invalid_request`, `invalid_credentials`, `not_authenticated`,
    /// `csrf_failed`, `origin_not_allowed`, `reauth_required`, `signup_disabled`,
    /// `not_supported`, `not_found`, `username_taken`, `email_taken`, `request_timeout`,
    /// `payload_too_large`, `uri_too_long`, `unsupported_media_type`, `weak_password`,
    /// `rate_limited`, `overloaded`, `upstream_unavailable`, `upstream_timeout`, `internal`.
    pub code: String,
    /// Validation problems by request field.
    #[schema(required = false)]
    pub errors: Option<std::collections::BTreeMap<String, String>>,
}

/// `{csrfToken}`: a masked CSRF token for the `X-CSRFToken` header.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CsrfToken {
    /// 64 characters of `[a-zA-Z0-9]` (Django's masked format).
    pub csrf_token: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Empty {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sessiongate auth API",
        description = "Cookie-session authentication for single-page apps with Django-compatible CSRF. \
            Unsafe methods need the `X-CSRFToken` header (from `GET /csrf`) and the `csrftoken` cookie; \
            JSON bodies need `Content-Type: application/json`. Errors are RFC 9457 problems.",
        license(name = "MIT OR Apache-2.0")
    ),
    components(schemas(ProblemDoc, CsrfToken, Empty)),
    tags(
        (name = "session", description = "CSRF token, login, logout, who am I"),
        (name = "account", description = "Signup, password, re-authentication, email"),
        (name = "mfa", description = "TOTP two-factor authentication"),
        (name = "sessions", description = "The user's devices"),
        (name = "forward-auth", description = "For nginx auth_request, Traefik, Caddy"),
    )
)]
pub struct ApiDoc;

/// The description with every annotated route, as built with the router.
pub fn doc() -> &'static Doc {
    static DOC: OnceLock<Doc> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// The auth API's path templates (`/login`, `/sessions/{id}`…), relative to the base path.
pub fn auth_paths() -> Vec<String> {
    let mut paths: Vec<String> = doc().paths.paths.keys().cloned().collect();
    if paths.is_empty() {
        // INTERIM until the handlers carry #[utoipa::path].
        paths = [
            "/csrf", "/login", "/logout", "/session", "/signup", "/sessions", "/sessions/{id}",
            "/sessions/revoke-others", "/verify", "/password", "/password/reset", "/password/reset/confirm",
            "/reauth", "/login/mfa", "/mfa/totp/setup", "/mfa/totp/confirm", "/mfa/totp/disable", "/email",
            "/email/verify", "/openapi.json",
        ]
        .map(String::from)
        .to_vec();
    }
    paths
}

/// `GET {base}/openapi.json`.
pub async fn serve(State(state): State<AppState>) -> Response {
    let mut doc = doc().clone();
    doc.servers = Some(vec![Server::new(state.settings.base_path.clone())]);
    axum::Json(doc).into_response()
}
