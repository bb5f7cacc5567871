//! Password change (logged in, recent authentication) and reset by mailed link.

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;

use super::account::{self, check_password, rotated, weak};
use super::{ClientIp, RecentlyAuthenticated, check_email};
use crate::api::AppState;
use crate::api::types::Empty;
use crate::http::{ApiJson, Problem};
use crate::mail;
use crate::password::policy;
use crate::session::RequestContext;
use crate::users::{AccountToken, TokenPurpose, account_key, login_key};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PasswordChangeRequest)]
pub struct ChangeBody {
    current_password: String,
    new_password: String,
}

/// `POST /password`: needs a login or reauth within `auth.reauth_window` (else 403
/// `reauth_required`) and the current password. Sets the new one, gives this session a new token
/// and CSRF secret (returned), and revokes every other session of the user.
#[utoipa::path(
    post,
    path = "/password",
    operation_id = "change_password",
    tag = "account",
    request_body = ChangeBody,
    responses(
        (status = 200, description = "Changed: this session rotated (new CSRF token), every other session revoked", body = crate::api::types::CsrfToken),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn change(
    State(state): State<AppState>,
    RecentlyAuthenticated(a): RecentlyAuthenticated,
    ClientIp(client_ip): ClientIp,
    ApiJson(body): ApiJson<ChangeBody>,
) -> Result<Response, Problem> {
    if body.current_password.is_empty() {
        return Err(Problem::field("currentPassword", "required"));
    }
    if !check_password(&state, &a.user, body.current_password, client_ip).await? {
        tracing::info!(user_id = a.user.id, "password change: wrong current password");
        let mut p = Problem::invalid_credentials();
        p.detail = "The current password is incorrect.".into();
        p.errors = Some([("currentPassword".to_owned(), "incorrect".to_owned())].into());
        return Err(p);
    }
    policy::check(
        &body.new_password,
        &a.user.username,
        a.user.email.as_deref(),
        state.settings.users.password_min_length,
    )
    .map_err(|w| weak("newPassword", w.0))?;
    let hash = state.passwords.hash(body.new_password).await?;
    if !state.users.set_password(a.user.id, &hash).await? {
        return Err(Problem::not_authenticated());
    }
    crate::users::forget_initial_password(&state.settings.data_dir, &a.user.username);
    // Rotate first (the answer needs the new token), then end every other session.
    let res = rotated(&state, &a, true).await?;
    let revoked = state.sessions.revoke_all(a.user.id, Some(&a.session.id)).await?;
    account::revoke_tokens(&state, a.user.id, TokenPurpose::PasswordReset).await;
    account::void_email_changes(&state, a.user.id).await;
    tracing::info!(user_id = a.user.id, revoked, "password changed");
    account::notify(
        &state,
        a.user
            .email
            .as_deref()
            .map(|to| mail::templates::password_changed(to, &a.user.username, &account::site(&state), false)),
    );
    Ok(res)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PasswordResetRequest)]
pub struct ResetBody {
    email: String,
}

/// `POST /password/reset`: 202 whatever the address. Everything that depends on whether the
/// address exists (lookup, token, mail) happens after the answer, so neither the status nor the
/// timing tells. Limited per client IP (429) and per address (silently: no more mail).
#[utoipa::path(
    post,
    path = "/password/reset",
    operation_id = "request_password_reset",
    tag = "account",
    request_body = ResetBody,
    responses(
        (status = 202, description = "Accepted, whether or not the address belongs to an account", body = crate::api::types::Empty),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn request_reset(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<Response, Problem> {
    let email = body.email.trim().to_owned();
    if email.is_empty() {
        return Err(Problem::field("email", "required"));
    }
    check_email(&email)?;
    state.limits.reset_ip.check(&crate::ratelimit::ip_key(ctx.client_ip)).await?;
    let bg = state.clone();
    tokio::spawn(async move { send_reset(bg, email).await });
    Ok((StatusCode::ACCEPTED, Json(Empty {})).into_response())
}

async fn send_reset(state: AppState, email: String) {
    if state.limits.reset_address.check(&login_key(&email)).await.is_err() {
        tracing::info!("password reset: per-address limit reached (or limiter unavailable); nothing sent");
        return;
    }
    let user = match state.users.find_by_email(&email).await {
        Ok(Some(u)) if u.is_active => u,
        Ok(_) => {
            tracing::info!("password reset requested for an unknown or disabled address; nothing sent");
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "password reset: user lookup failed");
            return;
        }
    };
    let Some(to) = user.email.clone() else { return };
    let ttl = state.settings.auth.reset_token_ttl;
    let (token, record) = AccountToken::generate(
        TokenPurpose::PasswordReset,
        user.id,
        Some(to.clone()),
        ttl,
        state.sessions.clock().now(),
    );
    let stored = match state.users.accounts_or_err() {
        Ok(accounts) => accounts.create_token(&record).await,
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        tracing::warn!(user_id = user.id, error = %e, "password reset: cannot store the token");
        return;
    }
    let link = state.settings.auth.reset_url.link(&token);
    let message = mail::templates::password_reset(&to, &user.username, &account::site(&state), &link, ttl);
    match state.mailer.send(message).await {
        Ok(()) => tracing::info!(user_id = user.id, "password reset mail sent"),
        Err(e) => tracing::warn!(user_id = user.id, error = %e, "password reset mail could not be sent"),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PasswordResetConfirmRequest)]
pub struct ConfirmBody {
    token: String,
    new_password: String,
}

/// `POST /password/reset/confirm`: a live reset token (single use, `auth.reset_token_ttl`) sets
/// the password and revokes every session of the user.
#[utoipa::path(
    post,
    path = "/password/reset/confirm",
    operation_id = "confirm_password_reset",
    tag = "account",
    request_body = ConfirmBody,
    responses(
        (status = 200, description = "Password set; every session of the user revoked", body = crate::api::types::Empty),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn confirm_reset(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Response, Problem> {
    let hash = AccountToken::hash(&body.token);
    let now = state.sessions.clock().now();
    let Some(found) = state.users.accounts_or_err()?.find_token(&hash, TokenPurpose::PasswordReset, now).await? else {
        return Err(Problem::invalid_token());
    };
    let Some(user) = state.users.get(found.user_id).await?.filter(|u| u.is_active) else {
        return Err(Problem::invalid_token());
    };
    // The policy is checked before the token is used up: a refused password keeps the link.
    policy::check(&body.new_password, &user.username, user.email.as_deref(), state.settings.users.password_min_length)
        .map_err(|w| weak("newPassword", w.0))?;
    let password_hash = state.passwords.hash(body.new_password).await?;
    let Some(token) = state
        .users
        .accounts_or_err()?
        .consume_token(&hash, TokenPurpose::PasswordReset, state.sessions.clock().now())
        .await?
    else {
        return Err(Problem::invalid_token());
    };
    if state.users.set_password(user.id, &password_hash).await? {
        crate::users::forget_initial_password(&state.settings.data_dir, &user.username);
    }
    let revoked = state.sessions.revoke_all(user.id, None).await?;
    account::revoke_tokens(&state, user.id, TokenPurpose::PasswordReset).await;
    account::void_email_changes(&state, user.id).await;
    // The mailbox owner may log in from here at once, whatever failures came before.
    state.limits.login_account.succeed(&account_key(Some(&user), &user.username), ctx.client_ip, None).await;
    // The link reached the mailbox: that proves the address.
    if !user.email_verified
        && user.email.is_some()
        && token.email.as_deref().map(login_key) == user.email.as_deref().map(login_key)
        && let Some(accounts) = state.users.accounts()
        && let Err(e) = accounts.set_email(user.id, user.email.as_deref(), true).await
    {
        tracing::warn!(error = %e, "could not mark the email address verified");
    }
    tracing::info!(user_id = user.id, revoked, "password reset");
    account::notify(
        &state,
        user.email
            .as_deref()
            .map(|to| mail::templates::password_changed(to, &user.username, &account::site(&state), true)),
    );
    Ok(crate::audit::AuditNote::user(&user).attach(Json(Empty {})))
}
