//! `GET {auth.base_path}/openapi.json`: the OpenAPI 3.1 description of the auth API, generated
//! from the code — each handler's `#[utoipa::path]` annotation, the `ToSchema` derives of the
//! request and response types — and collected by the same `utoipa_axum::OpenApiRouter` that
//! builds [`crate::api::router`], so a route cannot exist without being described, nor the
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
use serde::Serialize;
use utoipa::openapi::OpenApi as Doc;
use utoipa::openapi::server::Server;
use utoipa::{OpenApi, ToResponse, ToSchema};

use crate::api::SessionView;
use crate::state::AppState;
use crate::users::PublicUser;

/// RFC 9457 problem details: every error of the API.
#[derive(Serialize, ToSchema, ToResponse)]
#[response(
    description = "An RFC 9457 problem: 400 `invalid_request`, 401 `invalid_credentials` or `not_authenticated`, \
        403 `csrf_failed`, `origin_not_allowed` or `reauth_required`, 408, 413, 414, 415, 422 `weak_password`, \
        429 `rate_limited` (with `Retry-After`), 503 `overloaded`…",
    content_type = "application/problem+json"
)]
#[allow(dead_code)]
pub struct Problem {
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

/// An empty JSON object.
#[derive(Serialize, ToSchema)]
pub struct Empty {}

/// A new session: the user and the rotated CSRF token.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggedIn {
    pub user: PublicUser,
    pub csrf_token: String,
}

/// The password was right and the account has 2FA: finish with `POST /login/mfa`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MfaRequired {
    /// Always true.
    pub mfa_required: bool,
}

/// `POST /login`: logged in, or a second factor is needed.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResult {
    LoggedIn(LoggedIn),
    MfaRequired(MfaRequired),
}

/// `GET /session`.
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    pub user: PublicUser,
    pub session: SessionView,
}

/// `GET /sessions`.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// `POST /sessions/revoke-others`.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// How many sessions were revoked.
    pub revoked: u64,
}

/// `POST /mfa/totp/setup`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotpSetup {
    /// Base32 secret for manual entry.
    pub secret: String,
    pub otpauth_url: String,
    /// The `otpauth://` URL as an SVG QR code.
    pub qr_svg: String,
}

/// `POST /mfa/totp/confirm`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryCodes {
    /// Ten single-use codes, shown once.
    pub recovery_codes: Vec<String>,
}

/// `POST /email/verify`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailVerified {
    pub email: String,
    pub email_verified: bool,
}

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
    DOC.get_or_init(|| crate::api::documented().1)
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
