//! The account's email address: change (recent authentication, confirmed by a mailed link) and
//! verification.

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use http::StatusCode;
use serde::Deserialize;

use super::account::{self, send_verification};
use super::{check_email, require_auth, require_recent_auth};
use crate::http::{ApiJson, Problem};
use crate::mail;
use crate::openapi::{EmailVerified, Empty};
use crate::state::{AppState, RequestContext};
use crate::users::{AccountToken, TokenPurpose, login_key};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = EmailChangeRequest)]
pub struct ChangeBody {
    email: String,
}

/// `POST /email {email}` (recent authentication): 202. The new address takes effect when the
/// link mailed to it is used (`/email/verify`); the old address, if any, gets a notice now. The
/// same address again re-sends the verification link while it is unverified.
#[utoipa::path(
    post,
    path = "/email",
    operation_id = "change_email",
    tag = "account",
    request_body = ChangeBody,
    responses(
        (status = 202, description = "A confirmation link was mailed to the new address (needs a recent login)", body = crate::openapi::Empty),
        (status = "default", response = crate::openapi::Problem),
    )
)]
pub async fn change(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    ApiJson(body): ApiJson<ChangeBody>,
) -> Result<Response, Problem> {
    let a = require_auth(&ctx)?;
    require_recent_auth(&a, state.settings.reauth_window)?;
    let email = body.email.trim().to_owned();
    check_email(&email)?;
    state.limits.reset_ip.check(&ctx.client_ip.to_string()).await?;
    let current = a.user.email.as_deref().map(login_key);
    let same = current.as_deref() == Some(login_key(&email).as_str());
    if same && a.user.email_verified {
        return Ok((StatusCode::ACCEPTED, Json(Empty {})).into_response());
    }
    send_verification(&state, &a.user, &email).await?;
    if !same && let Some(old) = a.user.email.as_deref() {
        let notice = mail::templates::email_change_notice(old, &a.user.username, &account::site(&state), &email);
        account::notify(&state, Some(notice));
    }
    tracing::info!(user_id = a.user.id, "email change requested");
    Ok((StatusCode::ACCEPTED, Json(Empty {})).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = EmailVerifyRequest)]
pub struct VerifyBody {
    token: String,
}

/// `POST /email/verify {token}`: the mailed link's token (single use) makes its address the
/// account's verified email. 409 `email_taken` when another account has taken it meanwhile.
#[utoipa::path(
    post,
    path = "/email/verify",
    operation_id = "verify_email",
    tag = "account",
    request_body = VerifyBody,
    responses(
        (status = 200, description = "The address is the account's, verified", body = crate::openapi::EmailVerified),
        (status = "default", response = crate::openapi::Problem),
    )
)]
pub async fn verify(State(state): State<AppState>, ApiJson(body): ApiJson<VerifyBody>) -> Result<Response, Problem> {
    let hash = AccountToken::hash(&body.token);
    let Some(token) = state.users.consume_token(&hash, TokenPurpose::Email, Utc::now()).await? else {
        return Err(Problem::invalid_token());
    };
    let Some(user) = state.users.get(token.user_id).await?.filter(|u| u.is_active) else {
        return Err(Problem::invalid_token());
    };
    let Some(email) = token.email else { return Err(Problem::invalid_token()) };
    let changed = user.email.as_deref().map(login_key) != Some(login_key(&email));
    state.users.set_email(user.id, Some(&email), true).await?;
    if changed {
        // Reset links mailed to the old address stop working.
        account::revoke_tokens(&state, user.id, TokenPurpose::PasswordReset).await;
    }
    tracing::info!(user_id = user.id, changed, "email verified");
    let res = Json(EmailVerified { email, email_verified: true });
    Ok(crate::audit::AuditNote::user(&user).attach(res))
}
