//! Registering and managing passkeys (`/passkeys…`); logging in with one is
//! [`super::passkey_login`]. The ceremony rules are in [`crate::passkeys`].

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{ClientIp, CurrentUser, RecentlyAuthenticated, with_cookies};
use crate::api::AppState;
use crate::api::types::{PasskeyList, PasskeyView};
use crate::http::{ApiJson, ApiPath, Problem};
use crate::passkeys::{CEREMONY_COOKIE, CEREMONY_TTL, Ceremony, Passkeys, RegisterPublicKeyCredential, credential_key};
use crate::users::NewPasskey;

/// The relying party, or `not_supported` when passkeys are off here.
pub(super) fn relying_party(state: &AppState) -> Result<&Arc<Passkeys>, Problem> {
    state.passkeys.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::FORBIDDEN,
            "not_supported",
            "Not supported",
            "Passkeys are off on this gateway (see `passkeys` in the configuration and the warning at start).",
        )
    })
}

/// Random bytes in a ceremony's store key.
const CEREMONY_KEY_BYTES: usize = 32;

/// Keep `ceremony` for its finish; the cookie that names it.
pub(super) async fn begin(state: &AppState, ceremony: &Ceremony) -> Result<http::HeaderValue, Problem> {
    let key = crate::secret::random_b64(CEREMONY_KEY_BYTES);
    let expires = state.sessions.clock().now() + chrono::Duration::from_std(CEREMONY_TTL).expect("5 minutes");
    state.sessions.store().put_once(&format!("passkey:{key}"), &ceremony.to_bytes(), expires).await?;
    Ok(state.cookies.named(CEREMONY_COOKIE, &key, CEREMONY_TTL.as_secs()))
}

/// The ceremony this browser started, taken (single use): None when there is none, it
/// expired, or it was finished already.
pub(super) async fn take(state: &AppState, headers: &HeaderMap) -> Result<Option<Ceremony>, Problem> {
    let Some(key) = state.cookies.read_named(headers, CEREMONY_COOKIE) else { return Ok(None) };
    if !crate::secret::is_random_b64(&key, CEREMONY_KEY_BYTES) {
        return Ok(None);
    }
    let now = state.sessions.clock().now();
    let taken = state.sessions.store().take_once(&format!("passkey:{key}"), now).await?;
    Ok(taken.as_deref().and_then(Ceremony::from_bytes))
}

/// The `Set-Cookie` that ends the ceremony cookie.
pub(super) fn clear(state: &AppState) -> http::HeaderValue {
    state.cookies.named(CEREMONY_COOKIE, "", 0)
}

/// A passkey name: 1 to 64 characters, none of them control, invisible or direction-changing
/// (a name shown in a list and in mail must read as what it is); `fallback` when empty.
fn passkey_name(name: Option<&str>, fallback: String) -> Result<String, Problem> {
    let name = name.map(str::trim).filter(|n| !n.is_empty()).map_or(fallback, str::to_owned);
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}')
    };
    if name.chars().count() > 64 || name.chars().any(hidden) {
        return Err(Problem::field(
            "name",
            "1 to 64 characters, without control, invisible or direction-changing characters",
        ));
    }
    Ok(name)
}

/// At most [`crate::passkeys::MAX_PER_ACCOUNT`] passkeys per account: a login by username
/// stores all of them in its ceremony.
fn too_many(have: usize) -> Result<(), Problem> {
    if have >= crate::passkeys::MAX_PER_ACCOUNT {
        let max = crate::passkeys::MAX_PER_ACCOUNT;
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "too_many_passkeys",
            "Too many passkeys",
            format!("An account can have at most {max} passkeys: remove one first."),
        ));
    }
    Ok(())
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = PasskeyRegistrationStart)]
pub struct RegisterStart {
    /// Shown in the user's list; default "Passkey N".
    name: Option<String>,
}

/// `POST /passkeys/register/start` (recent authentication): creation options for
/// `navigator.credentials.create()`. The ceremony lives 5 minutes, for this session only.
#[utoipa::path(
    post,
    path = "/passkeys/register/start",
    tag = "passkeys",
    request_body = RegisterStart,
    responses(
        (status = 200, description = "Creation options (`{publicKey}`); the ceremony cookie is set", body = crate::api::types::WebauthnOptions),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn register_start(
    State(state): State<AppState>,
    RecentlyAuthenticated(a): RecentlyAuthenticated,
    ClientIp(client_ip): ClientIp,
    ApiJson(body): ApiJson<RegisterStart>,
) -> Result<Response, Problem> {
    let rp = relying_party(&state)?;
    // Every start stores a ceremony for 5 minutes: starts are limited per IP.
    state.limits.passkey_ip.check(&crate::ratelimit::ip_key(client_ip)).await?;
    let store = state.users.passkeys_or_err()?;
    let existing = store.passkeys_of(a.user.id).await?;
    too_many(existing.len())?;
    let name = passkey_name(body.name.as_deref(), format!("Passkey {}", existing.len() + 1))?;
    // One handle per account: reuse the one its passkeys carry.
    let handle =
        existing.first().map_or_else(|| crate::secret::random_bytes::<16>().to_vec(), |p| p.user_handle.clone());
    let exclude = crate::passkeys::credential_ids(&existing);
    let (options, ceremony) =
        rp.start_registration(a.user.id, &a.session.id, &a.user.username, &handle, exclude, name).map_err(|e| {
            tracing::error!(error = %e, "passkey registration could not start");
            Problem::internal()
        })?;
    let cookie = begin(&state, &ceremony).await?;
    Ok(with_cookies(Json(options), [cookie]))
}

/// A stored passkey's credential, None (logged) when the row does not parse.
pub(super) fn stored(p: &crate::users::PasskeyRecord) -> Option<webauthn_rs::prelude::Passkey> {
    serde_json::from_str(&p.passkey)
        .inspect_err(|e| tracing::error!(passkey = p.id, error = %e, "stored passkey does not parse"))
        .ok()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PasskeyRegistrationFinish)]
pub struct RegisterFinish {
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, as `toJSON()` gives it.
    #[schema(value_type = Object)]
    credential: RegisterPublicKeyCredential,
}

/// `POST /passkeys/register/finish` with `{credential}`: verified and stored. 201 with the
/// passkey.
#[utoipa::path(
    post,
    path = "/passkeys/register/finish",
    tag = "passkeys",
    request_body = RegisterFinish,
    responses(
        (status = 201, description = "Registered", body = crate::api::types::PasskeyView),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn register_finish(
    State(state): State<AppState>,
    RecentlyAuthenticated(a): RecentlyAuthenticated,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterFinish>,
) -> Result<Response, Problem> {
    let rp = relying_party(&state)?;
    let clear = clear(&state);
    let Some(Ceremony::Register { user_id, session_id, handle, name, state: reg }) = take(&state, &headers).await?
    else {
        return Ok(with_cookies(Problem::ceremony_expired(), [clear]));
    };
    if user_id != a.user.id || session_id != a.session.id {
        return Ok(with_cookies(Problem::ceremony_expired(), [clear]));
    }
    let cred = &body.credential;
    if cred.raw_id.len() > crate::passkeys::MAX_CREDENTIAL_ID {
        let p = Problem::invalid_request("The credential id is longer than WebAuthn allows (1023 bytes).");
        return Ok(with_cookies(p, [clear]));
    }
    let store = state.users.passkeys_or_err()?;
    if store.passkey_by_credential(&credential_key(cred.raw_id.as_ref())).await?.is_some() {
        return Ok(with_cookies(Problem::from(crate::users::UserStoreError::PasskeyTaken), [clear]));
    }
    too_many(store.passkeys_of(a.user.id).await?.len())?;
    let discoverable = cred.extensions.cred_props.as_ref().and_then(|p| p.rk);
    let transports = cred.response.transports.as_ref().map(|t| {
        t.iter().filter_map(|t| serde_json::to_value(t).ok()?.as_str().map(str::to_owned)).collect::<Vec<_>>().join(" ")
    });
    let passkey = match rp.finish_registration(cred, &reg) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(user_id = a.user.id, error = %e, "passkey registration refused");
            let p = Problem::invalid_request(format!("The passkey could not be registered: {e}."));
            return Ok(with_cookies(p, [clear]));
        }
    };
    let record = store
        .add_passkey(
            &NewPasskey {
                user_id: a.user.id,
                credential_id: credential_key(passkey.cred_id()),
                user_handle: handle,
                passkey: serde_json::to_string(&passkey).expect("passkey serialises"),
                name,
                transports,
                discoverable,
            },
            state.sessions.clock().now(),
        )
        .await?;
    tracing::info!(user_id = a.user.id, passkey = record.id, "passkey registered");
    super::account::notify(
        &state,
        a.user.email.as_deref().map(|to| {
            crate::mail::templates::passkey_added(to, &a.user.username, &super::account::site(&state), &record.name)
        }),
    );
    let res = (StatusCode::CREATED, Json(PasskeyView::from(&record))).into_response();
    Ok(crate::audit::AuditNote::user(&a.user).attach(with_cookies(res, [clear])))
}

/// `GET /passkeys`: the user's passkeys, oldest first.
#[utoipa::path(
    get,
    path = "/passkeys",
    tag = "passkeys",
    responses(
        (status = 200, description = "The user's passkeys", body = crate::api::types::PasskeyList),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn list(State(state): State<AppState>, CurrentUser(a): CurrentUser) -> Result<Json<PasskeyList>, Problem> {
    relying_party(&state)?;
    let keys = state.users.passkeys_or_err()?.passkeys_of(a.user.id).await?;
    Ok(Json(PasskeyList { passkeys: keys.iter().map(PasskeyView::from).collect() }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PasskeyRename)]
pub struct Rename {
    name: String,
}

/// `PATCH /passkeys/{id}` with `{name}`.
#[utoipa::path(
    patch,
    path = "/passkeys/{id}",
    tag = "passkeys",
    params(("id" = i64, Path, description = "The passkey's id")),
    request_body = Rename,
    responses(
        (status = 200, description = "Renamed", body = crate::api::types::PasskeyView),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn rename(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Rename>,
) -> Result<Json<PasskeyView>, Problem> {
    relying_party(&state)?;
    let name = passkey_name(Some(&body.name), String::new())?;
    if name.is_empty() {
        return Err(Problem::field("name", "required"));
    }
    let renamed = state.users.passkeys_or_err()?.rename_passkey(a.user.id, id, &name).await?;
    let p = renamed.ok_or_else(|| Problem::not_found("No such passkey."))?;
    Ok(Json(PasskeyView::from(&p)))
}

/// `DELETE /passkeys/{id}` (recent authentication): 204; 409 `last_login_method` when it is
/// the account's only way to log in.
#[utoipa::path(
    delete,
    path = "/passkeys/{id}",
    tag = "passkeys",
    params(("id" = i64, Path, description = "The passkey's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    RecentlyAuthenticated(a): RecentlyAuthenticated,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, Problem> {
    relying_party(&state)?;
    let other_method = crate::password::usable(&a.user.password_hash);
    match state.users.passkeys_or_err()?.remove_passkey(a.user.id, id, other_method).await? {
        None => Err(Problem::not_found("No such passkey.")),
        Some(false) => Err(Problem::last_login_method()),
        Some(true) => {
            tracing::info!(user_id = a.user.id, passkey = id, "passkey removed");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}
