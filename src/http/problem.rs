//! RFC 9457 problem details: the one error type of the JSON API.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// An API error. Bodies never carry internals: those are logged once where they happen.
/// Serialises as `{type, title, status, detail, code, errors?}`; `type` is derived from `code`
/// (kept out of the struct so `Result<_, Problem>` stays small).
#[derive(Clone, Debug)]
pub struct Problem {
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    pub code: &'static str,
    pub errors: Option<BTreeMap<String, String>>,
    /// Seconds for `Retry-After` (u32 keeps `Result<_, Problem>` small).
    pub retry_after: Option<u32>,
    /// A short machine reason behind `code` (e.g. the CSRF check that failed), for metrics and
    /// the audit log; not serialised.
    pub reason: Option<&'static str>,
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", &format!("urn:sessiongate:problem:{}", self.code))?;
        m.serialize_entry("title", self.title)?;
        m.serialize_entry("status", &self.status)?;
        m.serialize_entry("detail", &self.detail)?;
        m.serialize_entry("code", self.code)?;
        if let Some(e) = &self.errors {
            m.serialize_entry("errors", e)?;
        }
        m.end()
    }
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            title,
            status: status.as_u16(),
            detail: detail.into(),
            code,
            errors: None,
            retry_after: None,
            reason: None,
        }
    }

    #[must_use]
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn with_errors(mut self, errors: BTreeMap<String, String>) -> Self {
        self.errors = Some(errors);
        self
    }

    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", "Invalid request", detail)
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::invalid_request(format!("{field}: {message}")).with_errors(BTreeMap::from([(field.to_owned(), message)]))
    }

    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Invalid credentials",
            "The username or password is incorrect.",
        )
    }

    pub fn not_authenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "not_authenticated", "Not authenticated", "Log in to continue.")
    }

    pub fn csrf_failed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "csrf_failed", "CSRF verification failed", detail)
    }

    pub fn origin_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "origin_not_allowed", "Origin not allowed", detail)
    }

    pub fn reauth_required() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "reauth_required",
            "Re-authentication required",
            "Confirm your password to continue.",
        )
    }

    /// A wrong, reused or expired second-factor code (`/login/mfa`, `/reauth`).
    pub fn invalid_code() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Invalid credentials",
            "The code is incorrect, expired or was already used.",
        )
    }

    /// `/login/mfa` without a live password step (none, expired, or the password changed since).
    pub fn mfa_not_pending() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "not_authenticated",
            "Not authenticated",
            "No two-step login in progress, or it expired: log in with your password again.",
        )
    }

    /// A passkey ceremony finish without a live ceremony of that kind for this browser and
    /// session (none started, expired, already finished, or another one started since).
    pub fn ceremony_expired() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ceremony_expired",
            "No passkey ceremony in progress",
            "No passkey ceremony in progress here, or it expired or was already used: start again.",
        )
    }

    /// Deleting the account's only way to log in.
    pub fn last_login_method() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "last_login_method",
            "Last login method",
            "This is the account's only way to log in: add a password or another passkey first.",
        )
    }

    /// A passkey assertion that does not verify (wrong signature, origin, challenge, counter…).
    pub fn passkey_refused() -> Self {
        let mut p = Self::invalid_credentials();
        p.detail = "The passkey could not be verified.".into();
        p
    }

    /// A mailed one-time token that is unknown, already used or expired.
    pub fn invalid_token() -> Self {
        Self::field("token", "invalid, already used or expired; ask for a new link")
    }

    pub fn signup_disabled() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "signup_disabled",
            "Signup disabled",
            "Self-service signup is turned off on this server.",
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "Method not allowed",
            "This endpoint does not accept that method.",
        )
    }

    pub fn username_taken() -> Self {
        Self::new(StatusCode::CONFLICT, "username_taken", "Username taken", "That username is already taken.")
            .with_errors(BTreeMap::from([("username".into(), "already taken".into())]))
    }

    pub fn email_taken() -> Self {
        Self::new(StatusCode::CONFLICT, "email_taken", "Email taken", "That email address is already in use.")
            .with_errors(BTreeMap::from([("email".into(), "already in use".into())]))
    }

    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
            format!("The request body exceeds {limit} bytes."),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "Send the body as JSON with Content-Type: application/json.",
        )
    }

    pub fn weak_password(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "weak_password", "Weak password", format!("The password {reason}."))
            .with_errors(BTreeMap::from([("password".into(), reason)]))
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests",
            format!("Too many attempts; try again in {retry_after_secs} seconds."),
        );
        p.retry_after = Some(u32::try_from(retry_after_secs).unwrap_or(u32::MAX).max(1));
        p
    }

    pub fn overloaded(detail: impl Into<String>) -> Self {
        let mut p = Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "Service unavailable", detail);
        p.retry_after = Some(1);
        p
    }

    /// 503 `overloaded`: a session cookie came but the session store could not be asked.
    pub fn store_unavailable() -> Self {
        Problem::overloaded("The session store is unavailable; try again shortly.")
    }

    pub fn upstream_unavailable() -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            "Bad gateway",
            "The upstream server could not be reached.",
        )
    }

    /// 414: the request target is longer than `server.max_url_bytes`.
    pub fn uri_too_long(limit: u64) -> Self {
        Self::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "URI too long",
            format!("The request target (path and query) exceeds {limit} bytes."),
        )
    }

    /// 408: the request (body included) took longer than `server.request_timeout`.
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "Request timeout",
            "The request was not completed in time.",
        )
    }

    pub fn upstream_timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "Gateway timeout",
            "The upstream server did not answer in time.",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "Something went wrong on the server; it has been logged.",
        )
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = self.retry_after;
        let reason = self.reason.map(|reason| ProblemReason { reason, detail: self.detail.clone() });
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(s) = retry {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res.extensions_mut().insert(ProblemCode(self.code));
        if let Some(r) = reason {
            res.extensions_mut().insert(r);
        }
        res
    }
}

/// Marks a response as a problem so middleware (audit, metrics) can read its code.
#[derive(Clone, Copy, Debug)]
pub struct ProblemCode(pub &'static str);

/// The [`Problem::reason`] of a problem response and its detail (audit log, metrics labels).
#[derive(Clone, Debug)]
pub struct ProblemReason {
    pub reason: &'static str,
    pub detail: String,
}
