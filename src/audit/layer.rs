//! The audit middleware: it sits inside the session layer (so it knows the client IP and who is
//! logged in) and outside the CSRF layer (so it sees CSRF rejections), and turns each
//! authentication request into an [`AuditEvent`] from
//! - the auth endpoint ([`event_for`]: `POST /login` → `login`, `DELETE /sessions/{id}` →
//!   `session_revoked`…),
//! - the status (2xx success, 5xx error, else failure) and the [`ProblemCode`] (the detail),
//! - the [`AuditNote`] a handler may attach (the user who logged in, the session opened…).
//!
//! On any route, a `csrf_failed`/`origin_not_allowed` problem is a `csrf_rejected` event and a
//! `rate_limited` problem a `rate_limited` event. Logins and CSRF rejections are also counted
//! in the metrics.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{Method, header};

use super::{AuditEvent, AuditNote, Auditor, Event, Outcome};
use crate::http::problem::{ProblemCode, ProblemReason};
use crate::http::route::RouteClassifier;
use crate::session::RequestContext;

/// The event an auth endpoint stands for (`None`: not an authentication event, e.g. `GET
/// /session`).
pub fn event_for(method: &Method, template: &str) -> Option<Event> {
    let post = *method == Method::POST;
    Some(match template {
        "/login" | "/login/mfa" | "/login/passkey/finish" if post => Event::Login,
        "/logout" if post => Event::Logout,
        "/signup" if post => Event::Signup,
        "/password" if post => Event::PasswordChange,
        "/password/reset" if post => Event::PasswordResetRequest,
        "/password/reset/confirm" if post => Event::PasswordReset,
        "/reauth" | "/reauth/passkey/finish" if post => Event::Reauth,
        "/passkeys/register/finish" if post => Event::PasskeyAdded,
        "/passkeys/{id}" if *method == Method::DELETE => Event::PasskeyRemoved,
        "/passkeys/{id}" if *method == Method::PATCH => Event::PasskeyRenamed,
        "/sessions/{id}" if *method == Method::DELETE => Event::SessionRevoked,
        "/sessions/revoke-others" if post => Event::SessionsRevoked,
        "/mfa/totp/setup" if post => Event::MfaSetup,
        "/mfa/totp/confirm" if post => Event::MfaEnabled,
        "/mfa/totp/disable" if post => Event::MfaDisabled,
        "/email" if post => Event::EmailChange,
        "/email/verify" if post => Event::EmailVerified,
        "/email/cancel" if post => Event::EmailChangeCancelled,
        _ => return None,
    })
}

pub async fn observe(
    State((auditor, routes)): State<(Auditor, Arc<RouteClassifier>)>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let template = routes.auth_template(path).map(str::to_owned);
    let event = template.as_deref().and_then(|t| event_for(req.method(), t));
    // `/sessions/{id}`: the public id of the session being revoked.
    let target_session = match (event, &template) {
        (Some(Event::SessionRevoked), _) => path.rsplit('/').next().map(str::to_owned),
        _ => None,
    };
    let mfa_step = template.as_deref() == Some("/login/mfa");
    let ctx = req.extensions().get::<RequestContext>().map(|c| (c.client_ip, c.authenticated().cloned()));
    let user_agent = req.headers().get(header::USER_AGENT).cloned();
    let request_id = req.headers().get("x-request-id").cloned();

    let res = next.run(req).await;

    let code = res.extensions().get::<ProblemCode>().map(|c| c.0);
    let event = match code {
        Some("csrf_failed" | "origin_not_allowed") => Some(Event::CsrfRejected),
        Some("rate_limited") => Some(Event::RateLimited),
        _ => event,
    };
    let note = res.extensions().get::<AuditNote>();
    let Some(mut event) = event else { return res };
    if note.is_some_and(|n| n.skip) {
        return res;
    }
    let status = res.status();
    let (ip, before) = ctx.unzip();
    let before = before.flatten();
    if event == Event::Logout && before.is_none() && status.is_success() {
        // Logging out without a session changes nothing.
        return res;
    }
    if let Some(e) = note.and_then(|n| n.event) {
        event = e;
    }
    let outcome = if status.is_success() {
        Outcome::Success
    } else if status.is_server_error() {
        Outcome::Error
    } else {
        Outcome::Failure
    };
    let mut e = AuditEvent::new(event, outcome);
    e.ip = ip.map(|ip| ip.to_string());
    e.user_agent = user_agent.and_then(|v| v.to_str().ok().map(|s| s.chars().take(256).collect()));
    e.request_id = request_id.and_then(|v| v.to_str().ok().map(str::to_owned));
    if let Some(a) = &before {
        e.user_id = Some(a.user.id);
        e.username = Some(a.user.username.clone());
        e.session = Some(a.session.id.clone());
    }
    if target_session.is_some() {
        e.session = target_session;
    }
    let reason = res.extensions().get::<ProblemReason>();
    e.detail = match (event, code) {
        (Event::CsrfRejected, _) => reason.map(|r| r.detail.clone()).or(code.map(str::to_owned)),
        (Event::RateLimited, _) => Some(format!("limited at {}", template.as_deref().unwrap_or("a proxied route"))),
        (_, Some(c)) => Some(c.to_owned()),
        (_, None) => None,
    };
    if mfa_step {
        e.detail = Some(e.detail.map_or_else(|| "second factor".to_owned(), |d| format!("second factor: {d}")));
    }
    if let Some(n) = note {
        if n.user_id.is_some() {
            // The handler names the account (a login, a reset by mail): the request's own
            // session, if any, may be someone else's.
            e.user_id = n.user_id;
            e.username.clone_from(&n.username);
            e.session.clone_from(&n.session);
        } else if n.username.is_some() {
            // A name that was typed (failed login): no account id to go with it.
            e.user_id = None;
            e.username.clone_from(&n.username);
        }
        if n.session.is_some() {
            e.session.clone_from(&n.session);
        }
        if let Some(d) = &n.detail {
            e.detail = Some(match e.detail.take() {
                Some(prior) => format!("{prior}: {d}"),
                None => d.clone(),
            });
        }
    }

    match event {
        Event::Login => {
            let outcome = match (outcome, e.detail.as_deref()) {
                (Outcome::Success, Some(super::MFA_REQUIRED)) => "mfa_required",
                (Outcome::Success, _) => "success",
                (Outcome::Failure, _) => "failure",
                (Outcome::Error, _) => "error",
            };
            ::metrics::counter!("sessiongate_logins_total", "outcome" => outcome).increment(1);
        }
        Event::RateLimited if template.as_deref() == Some("/login") => {
            ::metrics::counter!("sessiongate_logins_total", "outcome" => "rate_limited").increment(1);
        }
        Event::CsrfRejected => {
            let reason = reason.map_or(code.unwrap_or("csrf_failed"), |r| r.reason);
            ::metrics::counter!("sessiongate_csrf_rejections_total", "reason" => reason).increment(1);
        }
        _ => {}
    }
    if event == Event::RateLimited {
        let label = template.unwrap_or_else(|| "other".into());
        ::metrics::counter!("sessiongate_rate_limited_total", "route" => label).increment(1);
    }
    auditor.record_request(e, before.is_some());
    res
}
