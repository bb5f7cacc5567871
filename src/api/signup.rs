use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{client_info, session_cookies, with_cookies};
use crate::api::AppState;
use crate::api::types::LoggedIn;
use crate::http::{ApiJson, Problem};
use crate::password::policy;
use crate::session::{AuthMethod, AuthMethods, RequestContext};
use crate::users::{NewUser, PublicUser};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = SignupRequest)]
pub struct SignupBody {
    username: String,
    password: String,
    email: Option<String>,
}

/// The username rule of [`crate::users::names::check_username`] (Django's characters, one
/// script, `@` only for the account's own address) on the normalised name, as a 400 problem.
pub fn check_username(name: &str, email: Option<&str>) -> Result<(), Problem> {
    crate::users::names::check_username(name, email).map_err(|why| Problem::field("username", why))
}

/// The address rule of [`crate::users::names::check_email`], as a 400 problem.
pub fn check_email(email: &str) -> Result<(), Problem> {
    crate::users::names::check_email(email).map_err(|why| Problem::field("email", why))
}

/// `POST /signup` (only with `auth.signup = true`): create the account and log it in.
#[utoipa::path(
    post,
    path = "/signup",
    tag = "account",
    request_body = SignupBody,
    responses(
        (status = 201, description = "Created and logged in (new session cookie, rotated CSRF secret); 403 `signup_disabled` unless `auth.signup = true`", body = crate::api::types::LoggedIn),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn signup(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignupBody>,
) -> Result<Response, Problem> {
    if !state.settings.auth.signup {
        return Err(Problem::signup_disabled());
    }
    state.limits.signup_ip.check(&crate::ratelimit::ip_key(ctx.client_ip)).await?;
    let username = crate::users::names::normalize_username(&body.username);
    let email = body.email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    if let Some(e) = &email {
        check_email(e)?;
    }
    check_username(&username, email.as_deref())?;
    policy::check(&body.password, &username, email.as_deref(), state.settings.users.password_min_length)
        .map_err(|w| Problem::weak_password(w.0))?;

    let hash = state.passwords.hash(body.password).await?;
    let user = state.users.create(NewUser { username, email, password_hash: hash }).await?;
    if let Some(prior) = ctx.authenticated() {
        state.sessions.delete_by_token(&prior.session).await?;
    }
    let secret = crate::csrf::new_secret();
    let remember = state.settings.session.remember_default;
    let (token, session) = state
        .sessions
        .create(user.id, client_info(&ctx, &headers), remember, secret.clone(), AuthMethods::of([AuthMethod::Password]))
        .await?;
    tracing::info!(user_id = user.id, ip = %ctx.client_ip, "signup");
    if let Some(email) = user.email.clone()
        && let Err(e) = super::account::send_verification(&state, &user, &email, None).await
    {
        tracing::warn!(user_id = user.id, error = %e, "signup: verification mail not sent");
    }
    let body = Json(LoggedIn { user: PublicUser::from(&user), csrf_token: crate::csrf::mask(&secret) });
    let res = with_cookies((StatusCode::CREATED, body).into_response(), session_cookies(&state, &token, &session));
    Ok(crate::audit::AuditNote::user(&user).session(&session.id).attach(res))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(check_username("alice.b+1", None).is_ok());
        assert!(check_username("a@x.io", Some("A@x.io")).is_ok());
        assert!(check_username("alice.b+1@x", None).is_err(), "someone else's address, perhaps");
        assert!(check_username("Zoë", None).is_ok());
        assert!(check_username("", None).is_err());
        assert!(check_username("has space", None).is_err());
        assert!(check_username(&"a".repeat(151), None).is_err());
    }

    #[test]
    fn emails() {
        assert!(check_email("a@example.com").is_ok());
        let long = format!("{}@example.com", "a".repeat(243));
        for bad in ["a", "@example.com", "a@b", "a b@example.com", "a@.com", long.as_str()] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
