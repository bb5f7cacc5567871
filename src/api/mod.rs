//! The JSON auth API (SPEC §4), mounted under `auth.base_path`. One file per flow. Handlers
//! never parse cookies or check origins: they take the [`extract`]ors ([`CurrentUser`],
//! [`RecentlyAuthenticated`], [`ClientIp`]) over the [`RequestContext`] the layers built.

mod account;
mod config;
mod csrf;
mod email;
mod errors;
pub mod extract;
mod health;
mod login;
mod logout;
mod mfa;
pub mod openapi;
mod passkey_login;
mod passkeys;
mod password;
mod reauth;
mod session;
mod sessions;
mod signup;
pub mod state;
pub mod types;
mod verify;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, HeaderValue, header};

pub use extract::{ClientIp, CurrentUser, RecentlyAuthenticated};
pub use health::{healthz, readyz};
pub use signup::{check_email, check_username};
pub use state::{AppState, Stores};
pub use types::SessionView;
pub use verify::jwks;

use crate::http::Problem;
use crate::session::RequestContext;
use crate::session::{ClientInfo, Session};

/// The auth API router (without the CSRF and session layers, which `server` wraps around it).
pub fn router() -> Router<AppState> {
    documented().0
}

/// The auth API router and its OpenAPI description ([`openapi`]), built together from
/// the handlers' `#[utoipa::path]` annotations: no route exists undescribed, and no described
/// path is missing.
pub fn documented() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;

    /// `/verify` answers any method (front proxies may forward the original one); described as GET.
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(verify::verify))]
    struct ForwardAuth;

    let (router, mut doc) = OpenApiRouter::with_openapi(crate::api::openapi::ApiDoc::openapi())
        .routes(routes!(csrf::get_csrf))
        .routes(routes!(config::public_config))
        .routes(routes!(login::login))
        .routes(routes!(logout::logout))
        .routes(routes!(session::whoami))
        .routes(routes!(signup::signup))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::revoke))
        .routes(routes!(sessions::revoke_others))
        .routes(routes!(password::change))
        .routes(routes!(password::request_reset))
        .routes(routes!(password::confirm_reset))
        .routes(routes!(reauth::reauth))
        .routes(routes!(mfa::login_mfa))
        .routes(routes!(mfa::setup))
        .routes(routes!(mfa::confirm))
        .routes(routes!(mfa::disable))
        .routes(routes!(email::change))
        .routes(routes!(email::verify))
        .routes(routes!(email::cancel))
        .routes(routes!(passkeys::register_start))
        .routes(routes!(passkeys::register_finish))
        .routes(routes!(passkeys::list))
        .routes(routes!(passkeys::rename, passkeys::remove))
        .routes(routes!(passkey_login::login_start))
        .routes(routes!(passkey_login::login_finish))
        .routes(routes!(passkey_login::reauth_start))
        .routes(routes!(passkey_login::reauth_finish))
        .routes(routes!(crate::api::openapi::serve))
        .split_for_parts();
    doc.merge(ForwardAuth::openapi());
    let router = router
        .route("/verify", any(verify::verify))
        .fallback(|| async { Problem::not_found("No such endpoint.") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() });
    (router, doc)
}

pub fn client_info(ctx: &RequestContext, headers: &HeaderMap) -> ClientInfo {
    ClientInfo {
        ip: Some(ctx.client_ip.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect()),
    }
}

/// A response with `Set-Cookie` headers appended (the session layer adds `Vary: Cookie`).
pub fn with_cookies(res: impl IntoResponse, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    let mut res = res.into_response();
    for c in cookies {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// The cookies that establish a fresh session: the session token and its bound CSRF secret.
pub fn session_cookies(state: &AppState, token: &crate::session::SessionToken, session: &Session) -> [HeaderValue; 2] {
    let max_age = session.remember.then_some(state.settings.idle_timeout);
    [state.cookies.session(token.as_str(), max_age), state.cookies.csrf(&session.csrf_secret)]
}
