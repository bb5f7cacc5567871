use axum::extract::{Extension, State};
use axum::response::Response;
use serde::Deserialize;

use super::account::{check_password, check_second_factor, rotated};
use super::require_auth;
use crate::http::{ApiJson, Problem};
use crate::state::{AppState, RequestContext};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ReauthRequest)]
pub struct ReauthBody {
    password: Option<String>,
    code: Option<String>,
    recovery_code: Option<String>,
}

/// `POST /reauth` with `{password}`, or `{code}` (or `{recoveryCode}`) when 2FA is on: proves
/// the user is still at the keyboard. Refreshes `authenticatedAt` (opening
/// `auth.reauth_window` for sensitive changes) and gives the session a new token and CSRF
/// secret, returned as `{csrfToken}`.
#[utoipa::path(
    post,
    path = "/reauth",
    tag = "account",
    request_body = ReauthBody,
    responses(
        (status = 200, description = "Re-authenticated: `authenticatedAt` refreshed, session token and CSRF secret rotated", body = crate::openapi::CsrfToken),
        (status = "default", response = crate::openapi::Problem),
    )
)]
pub async fn reauth(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    ApiJson(body): ApiJson<ReauthBody>,
) -> Result<Response, Problem> {
    let a = require_auth(&ctx)?;
    state.limits.login_ip.check(&ctx.client_ip.to_string()).await?;
    match body.password {
        Some(password) if !password.is_empty() => {
            if !check_password(&state, &a.user, password, ctx.client_ip).await? {
                tracing::info!(user_id = a.user.id, "reauth: wrong password");
                let mut p = Problem::invalid_credentials();
                p.detail = "The password is incorrect.".into();
                return Err(p);
            }
        }
        _ if body.code.is_some() || body.recovery_code.is_some() => {
            if !a.user.mfa {
                return Err(Problem::field("code", "two-factor authentication is not on; confirm with your password"));
            }
            check_second_factor(&state, &a.user, body.code.as_deref(), body.recovery_code.as_deref()).await?;
        }
        _ => return Err(Problem::field("password", "required (or `code` when two-factor authentication is on)")),
    }
    tracing::info!(user_id = a.user.id, session = %a.session.id, "reauthenticated");
    rotated(&state, &a, true).await
}
