use axum::extract::{Extension, State};
use axum::response::Response;
use http::StatusCode;

use super::with_cookies;
use crate::api::AppState;
use crate::http::Problem;
use crate::session::{AuthState, RequestContext};

/// `POST /logout`: delete the session server-side and clear the cookie; 204 even when not logged
/// in. The CSRF secret is kept (as Django).
#[utoipa::path(
    post,
    path = "/logout",
    tag = "session",
    responses(
        (status = 204, description = "Logged out (also when not logged in): session deleted, cookie cleared"),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    headers: http::HeaderMap,
) -> Result<Response, Problem> {
    match &ctx.auth {
        AuthState::Authenticated(a) => {
            state.sessions.delete_by_token(&a.session).await?;
            tracing::info!(user_id = a.user.id, session = %a.session.id, "logout");
        }
        AuthState::Unavailable => {
            return Err(Problem::store_unavailable());
        }
        AuthState::Anonymous => {}
    }
    // Also abandon a half-finished two-step login.
    let pending = state
        .cookies
        .read_named(&headers, crate::mfa::PENDING_COOKIE)
        .map(|_| state.cookies.named(crate::mfa::PENDING_COOKIE, "", 0));
    Ok(with_cookies(StatusCode::NO_CONTENT, std::iter::once(state.cookies.clear_session()).chain(pending)))
}
