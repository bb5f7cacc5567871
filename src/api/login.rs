use axum::Json;
use axum::extract::{Extension, State};
use axum::response::Response;
use http::HeaderMap;
use serde::Deserialize;

use super::{client_info, session_cookies, with_cookies};
use crate::api::AppState;
use crate::api::types::{LoggedIn, MfaRequired};
use crate::audit::AuditNote;
use crate::http::{ApiJson, Problem};
use crate::password::policy::MAX_BYTES;
use crate::ratelimit::ip_key;
use crate::session::{AuthMethod, AuthMethods, RequestContext};
use crate::users::{PublicUser, account_key};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = LoginRequest)]
pub struct LoginBody {
    /// Username, or email address.
    username: String,
    password: String,
    /// Persistent cookie (default `session.remember_default`) or a browser-session cookie.
    remember: Option<bool>,
}

/// `POST /login`: verify the password, then open a brand-new session (the old one, if any, is
/// deleted: no fixation) with a fresh CSRF secret returned in the body.
#[utoipa::path(
    post,
    path = "/login",
    tag = "session",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in (new session cookie, rotated CSRF secret), or `{mfaRequired: true}` with a pending cookie when the account has 2FA", body = crate::api::types::LoginResult),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Response {
    // The audit log records the name that was typed (never the password).
    let attempted = AuditNote::typed(&body.username);
    match attempt(&state, &ctx, &headers, body).await {
        Ok(res) => res,
        Err(p) => attempted.attach(p),
    }
}

async fn attempt(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    body: LoginBody,
) -> Result<Response, Problem> {
    if let Err(why) = crate::users::names::check_identifier(&body.username) {
        return Err(Problem::field("username", why));
    }
    if body.password.is_empty() {
        return Err(Problem::field("password", "required"));
    }
    state.limits.login_ip.check(&ip_key(ctx.client_ip)).await?;
    let user = state.users.find_by_login(&body.username).await?;
    // Counted on the resolved account, so its username and its address share one back-off.
    let account = account_key(user.as_ref(), &body.username);
    let ticket = match state.limits.login_account.reserve(&account, ctx.client_ip).await {
        Ok(t) => t,
        Err(refusal) => {
            tracing::info!(ip = %ctx.client_ip, "login: this IP must wait after failed logins for this account (or the limiter is unavailable)");
            return Err(refusal.into());
        }
    };
    // Over-long passwords are never hashed (no hashing DoS) yet still cost one dummy verify.
    let candidate = if body.password.len() > MAX_BYTES { String::new() } else { body.password };
    let stored = user.as_ref().filter(|_| !candidate.is_empty()).map(|u| u.password_hash.clone());
    let ok = match state.passwords.verify(candidate.clone(), stored).await {
        Ok(ok) => ok,
        Err(e) => {
            // No verdict (the hasher is overloaded): the attempt does not count.
            state.limits.login_account.refund(&account, ctx.client_ip, ticket).await;
            return Err(e.into());
        }
    };
    let user = match user {
        Some(u) if ok && u.is_active => u,
        other => {
            tracing::info!(ip = %ctx.client_ip, "login failed");
            let mut note = AuditNote::typed(&body.username);
            note.user_id = other.map(|u| u.id);
            return Ok(note.attach(Problem::invalid_credentials()));
        }
    };
    state.limits.login_account.succeed(&account, ctx.client_ip, Some(ticket)).await;
    let remember = body.remember.unwrap_or(state.settings.session.remember_default);

    if user.mfa {
        // Two steps: no session yet, only a sealed 5-minute "password OK" cookie bound to the
        // password hash and to the last login (so it works once); `/login/mfa` finishes (see
        // `crate::mfa`).
        let hash = upgrade_hash_now(state, &user, candidate).await;
        let pending =
            crate::mfa::Pending::new(user.id, remember, &hash, user.last_login, state.sessions.clock().unix());
        let cookie = state.cookies.named(
            crate::mfa::PENDING_COOKIE,
            &state.mfa.seal_pending(&pending),
            crate::mfa::PENDING_TTL.as_secs(),
        );
        tracing::info!(user_id = user.id, ip = %ctx.client_ip, "login: password ok, second factor required");
        let res = with_cookies(Json(MfaRequired { mfa_required: true }), [cookie]);
        return Ok(AuditNote::user(&user).detail(crate::audit::MFA_REQUIRED).attach(res));
    }
    upgrade_hash(state, &user, candidate);
    open_session(state, ctx, headers, &user, remember, AuthMethods::of([AuthMethod::Password]), false).await
}

/// The end of a successful login (`/login`, `/login/mfa`, a passkey): a brand-new session (the
/// request's previous one deleted: no fixation) with a fresh CSRF secret, returned as
/// `{user, csrfToken}` with both cookies. `recorded` when the login was already recorded (the
/// second step claims it with [`crate::users::SecondFactorStore::claim_login`]).
pub async fn open_session(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    user: &crate::users::User,
    remember: bool,
    methods: AuthMethods,
    recorded: bool,
) -> Result<Response, Problem> {
    if let Some(prior) = ctx.authenticated() {
        state.sessions.delete_by_token(&prior.session).await?;
    }
    let secret = crate::csrf::new_secret();
    let (token, session) =
        state.sessions.create(user.id, client_info(ctx, headers), remember, secret.clone(), methods).await?;
    if !recorded && let Err(e) = state.users.record_login(user.id, state.sessions.clock().now()).await {
        tracing::warn!(error = %e, "could not record last login");
    }
    tracing::info!(user_id = user.id, session = %session.id, ip = %ctx.client_ip, "login ok");

    let body = Json(LoggedIn { user: PublicUser::from(user), csrf_token: crate::csrf::mask(&secret) });
    let res = with_cookies(body, session_cookies(state, &token, &session));
    Ok(AuditNote::user(user).session(&session.id).attach(res))
}

/// [`upgrade_hash`] inline, for two-step logins whose pending state is bound to the hash:
/// returns the hash the user has afterwards.
async fn upgrade_hash_now(state: &AppState, user: &crate::users::User, password: String) -> String {
    if !state.users.rehash_on_login() || !state.passwords.needs_rehash(&user.password_hash) {
        return user.password_hash.clone();
    }
    rehash(state, user.id, password).await.unwrap_or_else(|| user.password_hash.clone())
}

/// Hash `password` anew and store it; the new hash, or None (logged) when that failed.
async fn rehash(state: &AppState, id: i64, password: String) -> Option<String> {
    let hash = match state.passwords.hash(password).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "password hash upgrade skipped");
            return None;
        }
    };
    match state.users.set_password(id, &hash).await {
        Ok(true) => Some(hash),
        Ok(false) => None,
        Err(e) => {
            tracing::warn!(error = %e, "password hash upgrade failed");
            None
        }
    }
}

/// Imported (Django) or outdated hashes are replaced after a successful login, off the request
/// path, by a hash in the store's format ([`crate::users::UserStore::hash_format`]): Argon2id
/// with the current parameters in native stores. The Django store only does so with
/// `users.django_rehash_on_login` (then as Django's `pbkdf2_sha256`), because Django logs a user
/// out of all their Django sessions when the hash changes.
fn upgrade_hash(state: &AppState, user: &crate::users::User, password: String) {
    if !state.users.rehash_on_login() || !state.passwords.needs_rehash(&user.password_hash) {
        return;
    }
    let (state, id) = (state.clone(), user.id);
    tokio::spawn(async move { rehash(&state, id, password).await });
}
