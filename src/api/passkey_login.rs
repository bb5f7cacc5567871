//! Logging in (`/login/passkey/…`) and re-authenticating (`/reauth/passkey/…`) with a passkey.
//! A passkey login ends like a password login ([`super::login::open_session`]) and counts as
//! both factors: an account with TOTP is not asked for a code after it.

use axum::Json;
use axum::extract::{Extension, State};
use axum::response::Response;
use http::HeaderMap;
use serde::Deserialize;

use super::passkeys::{begin, clear, relying_party, stored, take};
use super::{ClientIp, CurrentUser, login, with_cookies};
use crate::api::AppState;
use crate::audit::AuditNote;
use crate::http::{ApiJson, Problem};
use crate::passkeys::{Ceremony, PublicKeyCredential, WebauthnError, asserted_counter, credential_ids, credential_key};
use crate::ratelimit::ip_key;
use crate::session::{AuthMethod, AuthMethods, RequestContext};
use crate::users::{PasskeyRecord, User};

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = PasskeyLoginStart)]
pub struct LoginStart {
    /// Optional: without it (or for an unknown name) any discoverable passkey may answer, which
    /// suits passkey autofill (`mediation: "conditional"`).
    username: Option<String>,
}

/// `POST /login/passkey/start`: request options for `navigator.credentials.get()`.
#[utoipa::path(
    post,
    path = "/login/passkey/start",
    tag = "passkeys",
    request_body = LoginStart,
    responses(
        (status = 200, description = "Request options (`{publicKey, mediation?}`); the ceremony cookie is set", body = crate::api::types::WebauthnOptions),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn login_start(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    ApiJson(body): ApiJson<LoginStart>,
) -> Result<Response, Problem> {
    let rp = relying_party(&state)?;
    state.limits.passkey_ip.check(&ip_key(ctx.client_ip)).await?;
    let username = body.username.as_deref().map(str::trim).filter(|u| !u.is_empty());
    if let Some(name) = username
        && let Err(why) = crate::users::names::check_identifier(name)
    {
        return Err(Problem::field("username", why));
    }
    let mut owner = None;
    if let Some(name) = username
        && let Some(user) = state.users.find_by_login(name).await?.filter(|u| u.is_active)
        && let Some(store) = state.users.passkeys()
    {
        owner = Some((user.id, credential_ids(&store.passkeys_of(user.id).await?)));
    }
    let known = owner.as_ref().is_some_and(|(_, ids)| !ids.is_empty());
    let decoy = username.filter(|_| !known).map(crate::users::login_key);
    let (options, ceremony) = rp.start_login(owner, decoy.as_deref()).map_err(|e| {
        tracing::error!(error = %e, "passkey login could not start");
        Problem::internal()
    })?;
    let cookie = begin(&state, &ceremony).await?;
    Ok(with_cookies(Json(options), [cookie]))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PasskeyAssertion)]
pub struct Assertion {
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, as `toJSON()` gives it.
    #[schema(value_type = Object)]
    credential: PublicKeyCredential,
    /// Keep the session beyond the browser session (default `session.remember_default`).
    remember: Option<bool>,
}

/// `POST /login/passkey/finish` with `{credential, remember?}`: `{user, csrfToken}` and a new
/// session, as `/login`.
#[utoipa::path(
    post,
    path = "/login/passkey/finish",
    tag = "passkeys",
    request_body = Assertion,
    responses(
        (status = 200, description = "Logged in (new session cookie, rotated CSRF secret)", body = crate::api::types::LoggedIn),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn login_finish(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Assertion>,
) -> Result<Response, Problem> {
    relying_party(&state)?;
    state.limits.login_ip.check(&ip_key(ctx.client_ip)).await?;
    let clear = clear(&state);
    let ceremony = match take(&state, &headers).await? {
        Some(c @ (Ceremony::Login { .. } | Ceremony::LoginFor { .. })) => c,
        _ => return Ok(with_cookies(Problem::ceremony_expired(), [clear])),
    };
    let user = match verify(&state, &body.credential, ceremony).await? {
        Ok(user) => user,
        Err(refusal) => return Ok(with_cookies(refusal, [clear])),
    };
    let remember = body.remember.unwrap_or(state.settings.session.remember_default);
    let methods = AuthMethods::of([AuthMethod::Passkey]);
    let res = login::open_session(&state, &ctx, &headers, &user, remember, methods, false).await?;
    Ok(AuditNote::user(&user).detail("passkey").attach(with_cookies(res, [clear])))
}

/// `POST /reauth/passkey/start`: request options for one of the user's passkeys.
#[utoipa::path(
    post,
    path = "/reauth/passkey/start",
    tag = "passkeys",
    responses(
        (status = 200, description = "Request options (`{publicKey}`); the ceremony cookie is set", body = crate::api::types::WebauthnOptions),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn reauth_start(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
    ClientIp(client_ip): ClientIp,
) -> Result<Response, Problem> {
    let rp = relying_party(&state)?;
    state.limits.passkey_ip.check(&ip_key(client_ip)).await?;
    let ids = credential_ids(&state.users.passkeys_or_err()?.passkeys_of(a.user.id).await?);
    if ids.is_empty() {
        return Err(Problem::field("passkey", "this account has no passkey; confirm with your password"));
    }
    let (options, ceremony) = rp.start_reauth(a.user.id, &a.session.id, ids).map_err(|e| {
        tracing::error!(error = %e, "passkey reauth could not start");
        Problem::internal()
    })?;
    let cookie = begin(&state, &ceremony).await?;
    Ok(with_cookies(Json(options), [cookie]))
}

/// `POST /reauth/passkey/finish` with `{credential}`: as `/reauth` (`authenticatedAt`
/// refreshed, session rotated, `{csrfToken}`).
#[utoipa::path(
    post,
    path = "/reauth/passkey/finish",
    tag = "passkeys",
    request_body = Assertion,
    responses(
        (status = 200, description = "Re-authenticated: `authenticatedAt` refreshed, session token and CSRF secret rotated", body = crate::api::types::CsrfToken),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn reauth_finish(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Assertion>,
) -> Result<Response, Problem> {
    relying_party(&state)?;
    let clear = clear(&state);
    let ceremony = match take(&state, &headers).await? {
        Some(c)
            if matches!(&c, Ceremony::Reauth { user_id, session_id, .. }
            if *user_id == a.user.id && *session_id == a.session.id) =>
        {
            c
        }
        _ => return Ok(with_cookies(Problem::ceremony_expired(), [clear])),
    };
    if let Err(refusal) = verify(&state, &body.credential, ceremony).await? {
        return Ok(with_cookies(refusal, [clear]));
    }
    tracing::info!(user_id = a.user.id, session = %a.session.id, "reauthenticated with a passkey");
    Ok(with_cookies(super::account::rotated(&state, &a, true).await?, [clear]))
}

/// Verify `credential` for `ceremony`: the active account it proves, or the refusal to send
/// (a store failure is the outer error).
async fn verify(
    state: &AppState,
    credential: &PublicKeyCredential,
    ceremony: Ceremony,
) -> Result<Result<User, Response>, Problem> {
    let rp = relying_party(state)?;
    let store = state.users.passkeys_or_err()?;
    let refused = |why: &str| {
        tracing::info!(reason = why, "passkey assertion refused");
        Ok(Err(AuditNote::default().detail(why.to_owned()).attach(Problem::passkey_refused())))
    };
    if credential.raw_id.len() > crate::passkeys::MAX_CREDENTIAL_ID {
        return refused("credential id too long");
    }
    let record: Option<PasskeyRecord> = match &ceremony {
        Ceremony::Login { .. } => {
            let Ok((handle, raw_id)) = rp.identify(credential) else { return refused("no user handle") };
            // The handle the authenticator names must be the one stored with this credential
            // (webauthn-rs checks the signature, not who the credential belongs to).
            store.passkey_by_credential(&credential_key(raw_id)).await?.filter(|r| r.user_handle == handle.as_bytes())
        }
        Ceremony::LoginFor { user_id, .. } | Ceremony::Reauth { user_id, .. } => store
            .passkey_by_credential(&credential_key(credential.raw_id.as_ref()))
            .await?
            .filter(|r| r.user_id == *user_id),
        Ceremony::Register { .. } => None,
    };
    let Some(record) = record else { return refused("unknown passkey") };
    let Some(passkey) = stored(&record) else { return refused("stored passkey unreadable") };
    let clone_suspected = |seen: String| {
        tracing::warn!(
            user_id = record.user_id,
            passkey = record.id,
            counter = %seen,
            "passkey sign count did not increase: possibly a cloned authenticator; refused"
        );
        let note = AuditNote { user_id: Some(record.user_id), ..Default::default() }
            .detail(format!("passkey {} sign count {seen} did not increase: possible cloned authenticator", record.id));
        Ok(Err(note.attach(Problem::passkey_refused())))
    };
    let (count, updated) = match rp.finish_login(credential, ceremony, passkey) {
        Ok(done) => done,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            return clone_suspected(asserted_counter(credential).map_or_else(|| "?".to_owned(), |c| c.to_string()));
        }
        Err(e) => return refused(&format!("{e}")),
    };
    let json = updated.map(|p| serde_json::to_string(&p).expect("passkey serialises"));
    if !store.record_passkey_use(record.id, json.as_deref(), count, state.sessions.clock().now()).await? {
        // Another assertion with this counter was accepted first (or the passkey went).
        return clone_suspected(count.to_string());
    }
    match state.users.get(record.user_id).await?.filter(|u| u.is_active) {
        Some(user) => Ok(Ok(user)),
        None => refused("account disabled or removed"),
    }
}
