//! Extractors for the handlers' openings, with [`Problem`] rejections (as axum names its own):
//! - [`CurrentUser`]: the logged-in user and session; 401 `not_authenticated`, or 503
//!   `overloaded` when a session cookie came but the store could not be asked;
//! - [`RecentlyAuthenticated`]: the same, and the session's `authenticatedAt` (login or
//!   `/reauth`) within `auth.reauth_window` (SPEC §7); else 403 `reauth_required`;
//! - [`ClientIp`]: the client's address as the session layer read it (trusted proxies applied).
//!
//! All read the [`RequestContext`] the session layer puts in the request; a router mounted
//! without that layer answers 500 rather than treating everyone as anonymous.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::api::AppState;
use crate::http::Problem;
use crate::session::{AuthState, Authenticated, RequestContext};

fn context(parts: &Parts) -> Result<&RequestContext, Problem> {
    parts.extensions.get::<RequestContext>().ok_or_else(|| {
        tracing::error!("the auth API is mounted without the session layer");
        Problem::internal()
    })
}

/// The authenticated session and user of this request.
pub struct CurrentUser(pub Arc<Authenticated>);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        authenticated(context(parts)?).map(CurrentUser)
    }
}

/// [`CurrentUser`] whose session proved the password (or a second factor) recently.
pub struct RecentlyAuthenticated(pub Arc<Authenticated>);

impl FromRequestParts<AppState> for RecentlyAuthenticated {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let a = authenticated(context(parts)?)?;
        require_recent_auth(&a, state.settings.reauth_window, state.sessions.clock().now())?;
        Ok(RecentlyAuthenticated(a))
    }
}

/// The client's IP address.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        Ok(ClientIp(context(parts)?.client_ip))
    }
}

/// The request's session and user, or the problem to answer instead.
pub fn authenticated(ctx: &RequestContext) -> Result<Arc<Authenticated>, Problem> {
    match &ctx.auth {
        AuthState::Authenticated(a) => Ok(a.clone()),
        AuthState::Anonymous => Err(Problem::not_authenticated()),
        AuthState::Unavailable => Err(Problem::store_unavailable()),
    }
}

/// SPEC §7: sensitive operations (password, 2FA and email changes) need the session's
/// `authenticatedAt` (login or `/reauth`) within `auth.reauth_window`, else 403 `reauth_required`.
pub fn require_recent_auth(
    a: &Authenticated,
    window: std::time::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), Problem> {
    let age = now.signed_duration_since(a.session.authenticated_at);
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    if age <= window { Ok(()) } else { Err(Problem::reauth_required()) }
}
