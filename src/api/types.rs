//! The JSON bodies the auth API answers with: the handlers return these, and the OpenAPI
//! description ([`super::openapi`]) is derived from them, so the two cannot drift.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{ToResponse, ToSchema};

use crate::session::Session;
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

/// SPEC §4 `Session`: `id` is the public identifier, never the cookie token.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: String,
    #[serde(serialize_with = "crate::http::json::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::http::json::rfc3339")]
    pub last_seen_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::http::json::rfc3339")]
    pub expires_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::http::json::rfc3339")]
    pub authenticated_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub remember: bool,
    pub current: bool,
    /// How the user logged in, in order (empty for sessions older than this field).
    pub authentication_methods: Vec<MethodView>,
}

/// One login method of a session: `password`, `totp`, `recovery_code`, `passkey`, or `oidc`
/// with its provider.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AuthenticationMethod)]
pub struct MethodView {
    pub method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// `GET /config`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicConfig {
    /// New passwords need at least this many characters (`users.password_min_length`).
    pub password_min_length: usize,
    /// Whether `POST /signup` is open.
    pub signup: bool,
    /// Whether passkeys work here (on, with a usable relying party and a user store that keeps them).
    pub passkeys: bool,
}

/// A registered passkey (never its key material).
#[derive(Serialize, ToSchema)]
#[schema(as = Passkey)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyView {
    pub id: i64,
    pub name: String,
    #[serde(serialize_with = "crate::http::json::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::http::json::rfc3339_opt")]
    #[schema(value_type = Option<String>)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// Whether it can log in without a username (the browser's hint at registration; null when
    /// it did not say).
    pub discoverable: Option<bool>,
    /// What the browser reported at registration: `usb`, `nfc`, `ble`, `internal`, `hybrid`.
    pub transports: Vec<String>,
}

impl From<&crate::users::PasskeyRecord> for PasskeyView {
    fn from(p: &crate::users::PasskeyRecord) -> Self {
        PasskeyView {
            id: p.id,
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
            discoverable: p.discoverable,
            transports: p.transports.as_deref().unwrap_or("").split_ascii_whitespace().map(str::to_owned).collect(),
        }
    }
}

/// `GET /passkeys`.
#[derive(Serialize, ToSchema)]
pub struct PasskeyList {
    pub passkeys: Vec<PasskeyView>,
}

/// WebAuthn options for `navigator.credentials.create()` or `.get()`: `{publicKey: {...}}` with
/// binary fields in base64url (the shape `PublicKeyCredential.parseCreationOptionsFromJSON`
/// and `parseRequestOptionsFromJSON` read), and `mediation: "conditional"` when the options
/// suit passkey autofill.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct WebauthnOptions {
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
    /// `conditional` for passkey autofill; absent otherwise.
    #[schema(required = false)]
    pub mediation: Option<String>,
}

impl SessionView {
    pub fn new(s: &Session, current_id: Option<&str>) -> Self {
        SessionView {
            id: s.id.clone(),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at(),
            authenticated_at: s.authenticated_at,
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            remember: s.remember,
            current: Some(s.id.as_str()) == current_id,
            authentication_methods: s
                .methods
                .iter()
                .map(|m| MethodView { method: m.name(), provider: m.provider().map(str::to_owned) })
                .collect(),
        }
    }
}
