use axum::Json;
use axum::extract::{Extension, State};
use axum::response::Response;

use super::with_cookies;
use crate::api::AppState;
use crate::api::types::CsrfToken;
use crate::session::RequestContext;

/// `GET /csrf`: a masked token for the current CSRF secret, and the cookie (re)set. Logged in,
/// the secret is the one bound to the session; otherwise a well-formed cookie is kept (as Django
/// does) and a missing or malformed one replaced.
#[utoipa::path(
    get,
    path = "/csrf",
    tag = "session",
    responses(
        (status = 200, description = "A masked token; the `csrftoken` cookie is (re)set", body = crate::api::types::CsrfToken),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn get_csrf(State(state): State<AppState>, Extension(ctx): Extension<RequestContext>) -> Response {
    let secret = match ctx.authenticated() {
        Some(a) => a.session.csrf_secret.clone(),
        None => ctx
            .cookies
            .csrf
            .as_deref()
            .and_then(|c| crate::csrf::cookie_secret(c).ok())
            .unwrap_or_else(crate::csrf::new_secret),
    };
    let token = crate::csrf::mask(&secret);
    with_cookies(Json(CsrfToken { csrf_token: token }), [state.cookies.csrf(&secret)])
}
