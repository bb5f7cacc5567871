//! The account's email address: change (recent authentication, confirmed by a mailed link,
//! cancellable from the old address) and verification.
//!
//! An email change is the classic takeover step after a stolen session (change the address,
//! then reset the password to it), so a pending change is fragile on purpose:
//! - its link is bound to the session that asked for it and to the password at that moment:
//!   refused once that session is gone (logged out, revoked, expired) or the password changed;
//! - a password change or reset and "sign out other sessions" void it, and so does asking for
//!   the current address again;
//! - the old address gets a notice with a single-use link that cancels it without logging in.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;

use super::account::{self, send_verification};
use super::{ClientIp, RecentlyAuthenticated, check_email};
use crate::api::AppState;
use crate::api::types::{EmailVerified, Empty};
use crate::http::{ApiJson, Problem};
use crate::mail;
use crate::users::{AccountToken, TokenPurpose, User, login_key};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = EmailChangeRequest)]
pub struct ChangeBody {
    email: String,
}

/// `POST /email {email}` (recent authentication): 202. The new address takes effect when the
/// link mailed to it is used (`/email/verify`) while this session lives and the password is
/// unchanged; the old address, if any, gets a notice with a cancel link now. The current address
/// again cancels a pending change (and re-sends the verification link while it is unverified).
#[utoipa::path(
    post,
    path = "/email",
    operation_id = "change_email",
    tag = "account",
    request_body = ChangeBody,
    responses(
        (status = 202, description = "A confirmation link was mailed to the new address (needs a recent login)", body = crate::api::types::Empty),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn change(
    State(state): State<AppState>,
    RecentlyAuthenticated(a): RecentlyAuthenticated,
    ClientIp(client_ip): ClientIp,
    ApiJson(body): ApiJson<ChangeBody>,
) -> Result<Response, Problem> {
    let email = body.email.trim().to_owned();
    check_email(&email)?;
    state.limits.reset_ip.check(&crate::ratelimit::ip_key(client_ip)).await?;
    let current = a.user.email.as_deref().map(login_key);
    if current.as_deref() == Some(login_key(&email).as_str()) {
        let cancelled = account::void_email_changes(&state, a.user.id).await;
        if cancelled > 0 {
            tracing::info!(user_id = a.user.id, "pending email change cancelled (current address asked again)");
        }
        if !a.user.email_verified {
            send_verification(&state, &a.user, &email, None).await?;
        }
        return Ok((StatusCode::ACCEPTED, Json(Empty {})).into_response());
    }
    send_verification(&state, &a.user, &email, Some(&a.session)).await?;
    if let Some(old) = a.user.email.as_deref() {
        let cancel = cancel_link(&state, &a.user).await?;
        let notice =
            mail::templates::email_change_notice(old, &a.user.username, &account::site(&state), &email, &cancel);
        account::notify(&state, Some(notice));
    }
    tracing::info!(user_id = a.user.id, "email change requested");
    Ok((StatusCode::ACCEPTED, Json(Empty {})).into_response())
}

/// A fresh single-use cancel link for the notice to the old address (earlier ones stay valid:
/// each notice's link cancels whatever is pending).
async fn cancel_link(state: &AppState, user: &User) -> Result<String, Problem> {
    let ttl = state.settings.auth.verify_token_ttl;
    let (token, record) = AccountToken::generate(
        TokenPurpose::EmailCancel,
        user.id,
        user.email.clone(),
        ttl,
        state.sessions.clock().now(),
    );
    state.users.accounts_or_err()?.create_token(&record).await?;
    Ok(state.settings.auth.cancel_email_url.link(&token))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = EmailVerifyRequest)]
pub struct VerifyBody {
    token: String,
}

/// `POST /email/verify {token}`: the mailed link's token (single use) makes its address the
/// account's verified email. A change's link is refused once the session that asked for it is
/// gone or the password changed. 409 `email_taken` when another account has taken it meanwhile.
#[utoipa::path(
    post,
    path = "/email/verify",
    operation_id = "verify_email",
    tag = "account",
    request_body = VerifyBody,
    responses(
        (status = 200, description = "The address is the account's, verified", body = crate::api::types::EmailVerified),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn verify(State(state): State<AppState>, ApiJson(body): ApiJson<VerifyBody>) -> Result<Response, Problem> {
    let hash = AccountToken::hash(&body.token);
    let now = state.sessions.clock().now();
    let token = match state.users.accounts_or_err()?.consume_token(&hash, TokenPurpose::EmailChange, now).await? {
        Some(t) => t,
        None => state
            .users
            .accounts_or_err()?
            .consume_token(&hash, TokenPurpose::Email, now)
            .await?
            .ok_or_else(Problem::invalid_token)?,
    };
    let Some(user) = state.users.get(token.user_id).await?.filter(|u| u.is_active) else {
        return Err(Problem::invalid_token());
    };
    let Some(email) = token.email.clone() else { return Err(Problem::invalid_token()) };
    let changed = user.email.as_deref().map(login_key) != Some(login_key(&email));
    if changed && !change_still_wanted(&state, &token, &user).await? {
        return Err(Problem::invalid_token());
    }
    state.users.accounts_or_err()?.set_email(user.id, Some(&email), true).await?;
    if changed {
        // Reset links mailed to the old address, and any other pending change, stop working.
        account::revoke_tokens(&state, user.id, TokenPurpose::PasswordReset).await;
        account::void_email_changes(&state, user.id).await;
    }
    tracing::info!(user_id = user.id, changed, "email verified");
    let res = Json(EmailVerified { email, email_verified: true });
    Ok(crate::audit::AuditNote::user(&user).attach(res))
}

/// Whether a change's token still speaks for the account: it was made as a change (an
/// address-verification link whose address is no longer the account's is stale), its session
/// is alive, and the password is the one it was asked with.
async fn change_still_wanted(state: &AppState, token: &AccountToken, user: &User) -> Result<bool, Problem> {
    if token.purpose != TokenPurpose::EmailChange {
        tracing::info!(user_id = user.id, "email verify: a verification link for an address the account no longer has");
        return Ok(false);
    }
    if token.password_fp.as_deref() != Some(crate::password::password_fingerprint(&user.password_hash).as_str()) {
        tracing::info!(user_id = user.id, "email change refused: the password changed since it was asked for");
        return Ok(false);
    }
    let Some(session_id) = token.session_id.as_deref() else { return Ok(false) };
    let alive = state.sessions.list(user.id).await?.iter().any(|s| s.id == session_id);
    if !alive {
        tracing::info!(user_id = user.id, "email change refused: the session that asked for it is gone");
    }
    Ok(alive)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = EmailCancelRequest)]
pub struct CancelBody {
    token: String,
}

/// `POST /email/cancel {token}`: the link in the notice mailed to the old address (single use,
/// no login needed) voids every pending email change of the account.
#[utoipa::path(
    post,
    path = "/email/cancel",
    operation_id = "cancel_email_change",
    tag = "account",
    request_body = CancelBody,
    responses(
        (status = 200, description = "Every pending email change of the account is void", body = crate::api::types::Empty),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn cancel(State(state): State<AppState>, ApiJson(body): ApiJson<CancelBody>) -> Result<Response, Problem> {
    let hash = AccountToken::hash(&body.token);
    let Some(token) = state
        .users
        .accounts_or_err()?
        .consume_token(&hash, TokenPurpose::EmailCancel, state.sessions.clock().now())
        .await?
    else {
        return Err(Problem::invalid_token());
    };
    let Some(user) = state.users.get(token.user_id).await? else { return Err(Problem::invalid_token()) };
    let voided = account::void_email_changes(&state, user.id).await;
    tracing::info!(user_id = user.id, voided, "email change cancelled from the old address");
    Ok(crate::audit::AuditNote::user(&user).attach(Json(Empty {})))
}
