//! Helpers shared by the account-lifecycle flows (password, reauth, 2FA, email): credential
//! checks with their rate limits, session rotation, and mail.

use std::net::IpAddr;

use axum::Json;
use axum::response::Response;

use super::{session_cookies, with_cookies};
use crate::api::AppState;
use crate::api::types::CsrfToken;
use crate::http::Problem;
use crate::mail::{self, Email};
use crate::password::policy::MAX_BYTES;
use crate::session::Authenticated;
use crate::users::{AccountToken, TokenPurpose, User, UserStoreError, account_key};

/// The site name in mail and authenticator apps: `public_url`'s host.
pub fn site(state: &AppState) -> String {
    state.settings.public_origin.host.clone()
}

/// The TOTP issuer label: `auth.totp_issuer`, else the site (resolved by config validation).
pub fn issuer(state: &AppState) -> String {
    state.settings.auth.totp_issuer.clone()
}

/// Check the user's password, typed from `ip`. Attempts count against the same back-off as
/// logins (`rate_limit.login_per_account`, per account and IP, reserved before the check), so a
/// stolen session cannot be used to guess the password at leisure.
pub async fn check_password(state: &AppState, user: &User, password: String, ip: IpAddr) -> Result<bool, Problem> {
    let key = account_key(Some(user), &user.username);
    let ticket = state.limits.login_account.reserve(&key, ip).await?;
    let candidate = if password.len() > MAX_BYTES { String::new() } else { password };
    let stored = (!candidate.is_empty()).then(|| user.password_hash.clone());
    match state.passwords.verify(candidate, stored).await {
        Ok(true) => {
            state.limits.login_account.succeed(&key, ip, Some(ticket)).await;
            Ok(true)
        }
        Ok(false) => Ok(false),
        Err(e) => {
            state.limits.login_account.refund(&key, ip, ticket).await;
            Err(e.into())
        }
    }
}

/// Check a second factor: a TOTP `code` (single use: its time step must be later than the last
/// accepted one) or a `recovery_code` (single use). Attempts count against
/// `rate_limit.mfa_per_account`, reserved before the check so parallel guesses cannot exceed
/// it; a wrong code is 401 `invalid_credentials`.
pub async fn check_second_factor(
    state: &AppState,
    user: &User,
    code: Option<&str>,
    recovery_code: Option<&str>,
) -> Result<(), Problem> {
    let (code, recovery_code) =
        match (code.map(str::trim).filter(|c| !c.is_empty()), recovery_code.map(str::trim).filter(|c| !c.is_empty())) {
            (Some(c), None) => (Some(c), None),
            (None, Some(rc)) => (None, Some(rc)),
            _ => {
                return Err(Problem::invalid_request(
                    "Send either `code` (from the authenticator app) or `recoveryCode`.",
                ));
            }
        };
    let key = account_key(Some(user), &user.username);
    let ticket = state.limits.mfa_account.reserve(&key).await?;
    let verdict = async {
        match (code, recovery_code) {
            (Some(code), _) => totp_code_ok(state, user, code).await,
            (_, Some(rc)) => match state.mfa.recovery_hash(user.id, rc) {
                Some(h) => Ok(state
                    .users
                    .second_factor_or_err()?
                    .use_recovery_code(user.id, &h, state.sessions.clock().now())
                    .await?),
                None => Ok(false),
            },
            _ => Ok(false),
        }
    };
    match verdict.await {
        Ok(true) => {
            state.limits.mfa_account.clear(&key).await;
            Ok(())
        }
        Ok(false) => {
            tracing::info!(user_id = user.id, "second factor refused");
            Err(Problem::invalid_code())
        }
        Err(p) => {
            state.limits.mfa_account.refund(&key, ticket).await;
            Err(p)
        }
    }
}

async fn totp_code_ok(state: &AppState, user: &User, code: &str) -> Result<bool, Problem> {
    let Some(second) = state.users.second_factor() else { return Ok(false) };
    let Some(t) = second.totp(user.id).await?.filter(|t| t.enabled) else { return Ok(false) };
    let totp = open_totp(state, user, &t.sealed_secret)?;
    let Some(step) = crate::mfa::check(&totp, code, unix_now(state)) else { return Ok(false) };
    Ok(second.use_totp_step(user.id, step as i64).await?)
}

/// The TOTP generator from a sealed secret. A secret that does not open means the secret key
/// changed (or the row was tampered with): logged, 500.
pub fn open_totp(state: &AppState, user: &User, sealed: &[u8]) -> Result<totp_rs::Totp, Problem> {
    let secret = state.mfa.open_totp(user.id, sealed).ok_or_else(|| {
        tracing::error!(user_id = user.id, "stored TOTP secret does not decrypt: was the secret key changed?");
        Problem::internal()
    })?;
    crate::mfa::totp(secret, &issuer(state), &user.username).ok_or_else(|| {
        tracing::error!(user_id = user.id, "stored TOTP secret is unusable");
        Problem::internal()
    })
}

/// Seconds since the epoch by the sessions' clock (TOTP time steps).
pub fn unix_now(state: &AppState) -> u64 {
    u64::try_from(state.sessions.clock().unix()).unwrap_or(0)
}

/// Give the current session a new token and CSRF secret (optionally refreshing
/// `authenticatedAt`): the answer carries `{csrfToken}` and both cookies.
pub async fn rotated(state: &AppState, a: &Authenticated, reauthenticated: bool) -> Result<Response, Problem> {
    let secret = crate::csrf::new_secret();
    let Some((token, session)) = state.sessions.rotate(&a.session, Some(secret.clone()), reauthenticated).await? else {
        return Err(Problem::not_authenticated());
    };
    let body = Json(CsrfToken { csrf_token: crate::csrf::mask(&secret) });
    Ok(with_cookies(body, session_cookies(state, &token, &session)))
}

/// Mail `email` in the background when the user has an address.
pub fn notify(state: &AppState, email: Option<Email>) {
    if let Some(email) = email {
        mail::spawn_send(state.mailer.clone(), email);
    }
}

/// Send a link for `email` to that address: a verification of the account's address (signup,
/// `POST /email` with it), or with `change` (the requesting session) a change to a new address,
/// bound to that session and to the current password. Older links of the same purpose stop
/// working, so only the latest requested address can be confirmed.
pub async fn send_verification(
    state: &AppState,
    user: &User,
    email: &str,
    change: Option<&crate::session::Session>,
) -> Result<(), UserStoreError> {
    let purpose = if change.is_some() { TokenPurpose::EmailChange } else { TokenPurpose::Email };
    state.users.accounts_or_err()?.revoke_tokens(user.id, purpose).await?;
    let ttl = state.settings.auth.verify_token_ttl;
    let (token, mut record) =
        AccountToken::generate(purpose, user.id, Some(email.to_owned()), ttl, state.sessions.clock().now());
    if let Some(session) = change {
        record = record.bound(&session.id, &user.password_hash);
    }
    state.users.accounts_or_err()?.create_token(&record).await?;
    let link = state.settings.auth.verify_email_url.link(&token);
    let message = mail::templates::verify_email(email, &user.username, &site(state), &link, ttl);
    mail::spawn_send(state.mailer.clone(), message);
    Ok(())
}

/// Void every pending email change of the user (and the cancel links announcing them): after
/// a password change or reset, "sign out other sessions", or a cancel from the old address.
/// Returns how many changes were pending.
pub async fn void_email_changes(state: &AppState, user_id: i64) -> u64 {
    revoke_tokens(state, user_id, TokenPurpose::EmailCancel).await;
    revoke_tokens(state, user_id, TokenPurpose::EmailChange).await
}

/// Invalidate outstanding tokens of `purpose`; stores without tokens have none. Returns how
/// many.
pub async fn revoke_tokens(state: &AppState, user_id: i64, purpose: TokenPurpose) -> u64 {
    let Some(accounts) = state.users.accounts() else { return 0 };
    match accounts.revoke_tokens(user_id, purpose).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not invalidate one-time tokens");
            0
        }
    }
}

/// 422 `weak_password` naming the request's field (`newPassword`).
pub fn weak(field: &str, reason: String) -> Problem {
    let mut p = Problem::weak_password(reason.clone());
    p.errors = Some(std::collections::BTreeMap::from([(field.to_owned(), reason)]));
    p
}
