use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use super::account::{check_password, check_second_factor, rotated};
use super::{ClientIp, CurrentUser};
use crate::api::AppState;
use crate::http::{ApiJson, Problem};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ReauthRequest)]
pub struct ReauthBody {
    password: Option<String>,
    code: Option<String>,
    recovery_code: Option<String>,
}

/// `POST /reauth` with `{password}`, or — when 2FA is on — `{code}` or `{recoveryCode}` (a
/// password alone is refused then; one sent along must be right): proves the user is still at
/// the keyboard. Refreshes `authenticatedAt` (opening
/// `auth.reauth_window` for sensitive changes) and gives the session a new token and CSRF
/// secret, returned as `{csrfToken}`.
#[utoipa::path(
    post,
    path = "/reauth",
    tag = "account",
    request_body = ReauthBody,
    responses(
        (status = 200, description = "Re-authenticated: `authenticatedAt` refreshed, session token and CSRF secret rotated", body = crate::api::types::CsrfToken),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn reauth(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
    ClientIp(client_ip): ClientIp,
    ApiJson(body): ApiJson<ReauthBody>,
) -> Result<Response, Problem> {
    state.limits.login_ip.check(&crate::ratelimit::ip_key(client_ip)).await?;
    let password = body.password.filter(|p| !p.is_empty());
    let second = body.code.is_some() || body.recovery_code.is_some();
    if a.user.mfa {
        // The session already proves the first factor; an enrolled account proves the second
        // again (a known password alone must not reach the 2FA settings). A password sent along
        // must be right too.
        if !second {
            return Err(Problem::field(
                "code",
                "required: this account uses two-factor authentication; send a code from the authenticator app (or `recoveryCode`)",
            ));
        }
        if let Some(password) = password {
            wrong_password_unless(check_password(&state, &a.user, password, client_ip).await?, &a)?;
        }
        check_second_factor(&state, &a.user, body.code.as_deref(), body.recovery_code.as_deref()).await?;
    } else {
        match password {
            Some(password) => {
                wrong_password_unless(check_password(&state, &a.user, password, client_ip).await?, &a)?;
            }
            None if second => {
                return Err(Problem::field("code", "two-factor authentication is not on; confirm with your password"));
            }
            None => return Err(Problem::field("password", "required")),
        }
    }
    tracing::info!(user_id = a.user.id, session = %a.session.id, "reauthenticated");
    rotated(&state, &a, true).await
}

fn wrong_password_unless(ok: bool, a: &crate::session::Authenticated) -> Result<(), Problem> {
    if ok {
        return Ok(());
    }
    tracing::info!(user_id = a.user.id, "reauth: wrong password");
    let mut p = Problem::invalid_credentials();
    p.detail = "The password is incorrect.".into();
    Err(p)
}
