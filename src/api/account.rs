//! Helpers shared by the account-lifecycle flows (password, reauth, 2FA, email): credential
//! checks with their rate limits, session rotation, and mail.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::response::Response;

use super::{session_cookies, with_cookies};
use crate::http::Problem;
use crate::mail::{self, Email};
use crate::openapi::CsrfToken;
use crate::password::policy::MAX_BYTES;
use crate::state::{AppState, Authenticated};
use crate::users::{AccountToken, TokenPurpose, User, UserStoreError, login_key};

/// The site name in mail and authenticator apps: `public_url`'s host.
pub fn site(state: &AppState) -> String {
    state.settings.public_origin.host.clone()
}

/// The TOTP issuer label: `auth.totp_issuer`, else the site.
pub fn issuer(state: &AppState) -> String {
    let configured = state.settings.raw.auth.totp_issuer.trim();
    if configured.is_empty() { site(state) } else { configured.to_owned() }
}

/// Check the user's password, typed from `ip`. Failures count against the same back-off as
/// logins (`rate_limit.login_per_account`, per account and IP), so a stolen session cannot be
/// used to guess the password at leisure.
pub async fn check_password(state: &AppState, user: &User, password: String, ip: IpAddr) -> Result<bool, Problem> {
    let key = login_key(&user.username);
    state.limits.login_account.check(&key, ip).await?;
    let candidate = if password.len() > MAX_BYTES { String::new() } else { password };
    let stored = (!candidate.is_empty()).then(|| user.password_hash.clone());
    let ok = state.passwords.verify(candidate, stored).await?;
    if ok {
        state.limits.login_account.succeed(&key, ip).await;
    } else {
        state.limits.login_account.fail(&key, ip).await;
    }
    Ok(ok)
}

/// Check a second factor: a TOTP `code` (single use: its time step must be later than the last
/// accepted one) or a `recovery_code` (single use). Wrong codes count against
/// `rate_limit.mfa_per_account`; a wrong code is 401 `invalid_credentials`.
pub async fn check_second_factor(
    state: &AppState,
    user: &User,
    code: Option<&str>,
    recovery_code: Option<&str>,
) -> Result<(), Problem> {
    let key = format!("user:{}", user.id);
    state.limits.mfa_account.blocked(&key).await?;
    let ok =
        match (code.map(str::trim).filter(|c| !c.is_empty()), recovery_code.map(str::trim).filter(|c| !c.is_empty())) {
            (Some(code), None) => totp_code_ok(state, user, code).await?,
            (None, Some(rc)) => match state.mfa.recovery_hash(user.id, rc) {
                Some(h) => state.users.use_recovery_code(user.id, &h, chrono::Utc::now()).await?,
                None => false,
            },
            _ => {
                return Err(Problem::invalid_request(
                    "Send either `code` (from the authenticator app) or `recoveryCode`.",
                ));
            }
        };
    if !ok {
        state.limits.mfa_account.fail(&key).await;
        tracing::info!(user_id = user.id, "second factor refused");
        return Err(Problem::invalid_code());
    }
    state.limits.mfa_account.clear(&key).await;
    Ok(())
}

async fn totp_code_ok(state: &AppState, user: &User, code: &str) -> Result<bool, Problem> {
    let Some(t) = state.users.totp(user.id).await?.filter(|t| t.enabled) else { return Ok(false) };
    let totp = open_totp(state, user, &t.sealed_secret)?;
    let Some(step) = crate::mfa::check(&totp, code, unix_now()) else { return Ok(false) };
    Ok(state.users.use_totp_step(user.id, step as i64).await?)
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

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
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

/// Send a verification link for `email` to that address (signup, `POST /email`). Older email
/// tokens of the user stop working, so only the latest requested address can be confirmed.
pub async fn send_verification(state: &AppState, user: &User, email: &str) -> Result<(), UserStoreError> {
    state.users.revoke_tokens(user.id, TokenPurpose::Email).await?;
    let ttl = state.settings.raw.auth.verify_token_ttl.0;
    let (token, record) = AccountToken::generate(TokenPurpose::Email, user.id, Some(email.to_owned()), ttl);
    state.users.create_token(&record).await?;
    let link = mail::link(&state.settings, &state.settings.raw.auth.verify_email_url, &token);
    let message = mail::templates::verify_email(email, &user.username, &site(state), &link, ttl);
    mail::spawn_send(state.mailer.clone(), message);
    Ok(())
}

/// Invalidate outstanding tokens of `purpose`; stores without tokens have none.
pub async fn revoke_tokens(state: &AppState, user_id: i64, purpose: TokenPurpose) {
    match state.users.revoke_tokens(user_id, purpose).await {
        Ok(_) | Err(UserStoreError::Unsupported(_)) => {}
        Err(e) => tracing::warn!(error = %e, "could not invalidate one-time tokens"),
    }
}

/// 422 `weak_password` naming the request's field (`newPassword`).
pub fn weak(field: &str, reason: String) -> Problem {
    let mut p = Problem::weak_password(reason.clone());
    p.errors = Some(std::collections::BTreeMap::from([(field.to_owned(), reason)]));
    p
}
