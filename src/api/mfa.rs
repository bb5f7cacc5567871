//! TOTP two-factor authentication: enrollment (setup → confirm), disabling, and the second step
//! of a login.

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::account::{self, check_second_factor, open_totp, unix_now};
use super::{RecentlyAuthenticated, login, with_cookies};
use crate::api::AppState;
use crate::api::types::{RecoveryCodes, TotpSetup};
use crate::http::{ApiJson, Problem};
use crate::mail;
use crate::mfa::{self, PENDING_COOKIE};
use crate::session::{AuthMethod, AuthMethods, RequestContext};

fn already_on() -> Problem {
    Problem::invalid_request("Two-factor authentication is already on; turn it off first to enroll a new device.")
}

/// `POST /mfa/totp/setup` (recent authentication): a new secret, pending until confirmed.
/// Answers `{secret, otpauthUrl, qrSvg}`; a previous unconfirmed secret is replaced.
#[utoipa::path(
    post,
    path = "/mfa/totp/setup",
    operation_id = "setup_totp",
    tag = "mfa",
    responses(
        (status = 200, description = "A new secret, pending until confirmed (needs a recent login)", body = crate::api::types::TotpSetup),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn setup(
    State(state): State<AppState>,
    RecentlyAuthenticated(a): RecentlyAuthenticated,
) -> Result<Response, Problem> {
    if a.user.mfa {
        return Err(already_on());
    }
    let secret = mfa::new_secret();
    let sealed = state.mfa.seal_totp(a.user.id, &secret);
    if !state.users.second_factor_or_err()?.set_totp_pending(a.user.id, &sealed).await? {
        return Err(already_on());
    }
    let totp = open_totp(&state, &a.user, &sealed)?;
    let url = mfa::otpauth_url(&totp).ok_or_else(Problem::internal)?;
    let svg = mfa::qr_svg(&url).ok_or_else(Problem::internal)?;
    tracing::info!(user_id = a.user.id, "TOTP enrollment started");
    Ok(Json(TotpSetup { secret: totp.secret().to_base32(), otpauth_url: url, qr_svg: svg }).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TotpConfirmRequest)]
pub struct ConfirmBody {
    code: String,
}

/// `POST /mfa/totp/confirm {code}` (recent authentication): the first code from the app turns
/// 2FA on. Answers `{recoveryCodes}` (10 single-use codes, shown once, stored hashed) and
/// revokes the user's other sessions, which were opened without the second factor.
#[utoipa::path(
    post,
    path = "/mfa/totp/confirm",
    operation_id = "confirm_totp",
    tag = "mfa",
    request_body = ConfirmBody,
    responses(
        (status = 200, description = "2FA on; the recovery codes, shown once", body = crate::api::types::RecoveryCodes),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    RecentlyAuthenticated(a): RecentlyAuthenticated,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Response, Problem> {
    let pending = state.users.second_factor_or_err()?.totp(a.user.id).await?;
    let Some(t) = pending.filter(|t| !t.enabled) else {
        return Err(if a.user.mfa {
            already_on()
        } else {
            Problem::invalid_request("Nothing to confirm: start with POST /mfa/totp/setup.")
        });
    };
    let key = crate::users::account_key(Some(&a.user), &a.user.username);
    let totp = open_totp(&state, &a.user, &t.sealed_secret)?;
    state.limits.mfa_account.reserve(&key).await?;
    let Some(step) = mfa::check(&totp, &body.code, unix_now(&state)) else {
        return Err(Problem::field("code", "incorrect; enter the current code from your authenticator app"));
    };
    state.limits.mfa_account.clear(&key).await;
    let codes = mfa::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().filter_map(|c| state.mfa.recovery_hash(a.user.id, c)).collect();
    if !state.users.second_factor_or_err()?.enable_totp(a.user.id, step as i64, &hashes).await? {
        return Err(already_on());
    }
    let revoked = state.sessions.revoke_all(a.user.id, Some(&a.session.id)).await?;
    tracing::info!(user_id = a.user.id, revoked, "TOTP enabled");
    account::notify(
        &state,
        a.user
            .email
            .as_deref()
            .map(|to| mail::templates::mfa_changed(to, &a.user.username, &account::site(&state), true)),
    );
    Ok(Json(RecoveryCodes { recovery_codes: codes }).into_response())
}

/// `POST /mfa/totp/disable` (recent authentication): removes the secret and the recovery codes,
/// and revokes the user's other sessions. 204, also when 2FA was off.
#[utoipa::path(
    post,
    path = "/mfa/totp/disable",
    operation_id = "disable_totp",
    tag = "mfa",
    responses(
        (status = 204, description = "2FA off (needs a recent login)"),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn disable(
    State(state): State<AppState>,
    RecentlyAuthenticated(a): RecentlyAuthenticated,
) -> Result<Response, Problem> {
    let was_on = a.user.mfa;
    state.users.second_factor_or_err()?.disable_totp(a.user.id).await?;
    if was_on {
        let revoked = state.sessions.revoke_all(a.user.id, Some(&a.session.id)).await?;
        tracing::info!(user_id = a.user.id, revoked, "TOTP disabled");
        account::notify(
            &state,
            a.user
                .email
                .as_deref()
                .map(|to| mail::templates::mfa_changed(to, &a.user.username, &account::site(&state), false)),
        );
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LoginMfaRequest)]
pub struct SecondStep {
    code: Option<String>,
    recovery_code: Option<String>,
}

/// `POST /login/mfa {code} | {recoveryCode}`: the second step after `/login` answered
/// `{mfaRequired: true}` and set the sealed `sessiongate_mfa` cookie. Opens the session exactly
/// as `/login` does (new token, rotated CSRF) and deletes the cookie.
#[utoipa::path(
    post,
    path = "/login/mfa",
    operation_id = "login_mfa",
    tag = "session",
    request_body = SecondStep,
    responses(
        (status = 200, description = "Logged in (new session cookie, rotated CSRF secret)", body = crate::api::types::LoggedIn),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn login_mfa(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SecondStep>,
) -> Result<Response, Problem> {
    state.limits.login_ip.check(&crate::ratelimit::ip_key(ctx.client_ip)).await?;
    let clear = state.cookies.named(PENDING_COOKIE, "", 0);
    let pending = state
        .cookies
        .read_named(&headers, PENDING_COOKIE)
        .and_then(|v| state.mfa.open_pending(&v, state.sessions.clock().unix()));
    let Some(pending) = pending else {
        return Ok(with_cookies(Problem::mfa_not_pending(), [clear]));
    };
    let user = state.users.get(pending.user_id).await?.filter(|u| u.is_active && u.mfa && pending.matches(u));
    let Some(user) = user else {
        return Ok(with_cookies(Problem::mfa_not_pending(), [clear]));
    };
    if let Err(p) = check_second_factor(&state, &user, body.code.as_deref(), body.recovery_code.as_deref()).await {
        return Ok(crate::audit::AuditNote::user(&user).attach(p));
    }
    // Single use: of parallel or replayed second steps with this cookie, one claims the login.
    let at = crate::users::next_login_time(user.last_login, state.sessions.clock().now());
    if !state.users.second_factor_or_err()?.claim_login(user.id, user.last_login, at).await? {
        tracing::info!(user_id = user.id, "login: the pending second step was already used");
        return Ok(with_cookies(Problem::mfa_not_pending(), [clear]));
    }
    let second = if body.code.is_some() { AuthMethod::Totp } else { AuthMethod::RecoveryCode };
    let methods = AuthMethods::of([AuthMethod::Password, second]);
    let res = login::open_session(&state, &ctx, &headers, &user, pending.remember, methods, true).await?;
    Ok(with_cookies(res, [clear]))
}
