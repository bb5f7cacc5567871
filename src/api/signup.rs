use axum::Json;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{client_info, session_cookies, with_cookies};
use crate::http::{ApiJson, Problem};
use crate::openapi::LoggedIn;
use crate::password::policy;
use crate::state::{AppState, RequestContext};
use crate::users::{NewUser, PublicUser};

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = SignupRequest)]
pub struct SignupBody {
    username: String,
    password: String,
    email: Option<String>,
}

/// Django's username rule: up to 150 letters, digits and `@ . + - _`.
pub fn check_username(name: &str) -> Result<(), Problem> {
    let n = name.chars().count();
    if n == 0 || n > 150 || !name.chars().all(|c| c.is_alphanumeric() || "@.+-_".contains(c)) {
        return Err(Problem::field("username", "use 1 to 150 letters, digits and @ . + - _"));
    }
    Ok(())
}

pub fn check_email(email: &str) -> Result<(), Problem> {
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        });
    if ok { Ok(()) } else { Err(Problem::field("email", "not a valid email address")) }
}

/// `POST /signup` (only with `auth.signup = true`): create the account and log it in.
#[utoipa::path(
    post,
    path = "/signup",
    tag = "account",
    request_body = SignupBody,
    responses(
        (status = 201, description = "Created and logged in (new session cookie, rotated CSRF secret); 403 `signup_disabled` unless `auth.signup = true`", body = crate::openapi::LoggedIn),
        (status = "default", response = crate::openapi::Problem),
    )
)]
pub async fn signup(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignupBody>,
) -> Result<Response, Problem> {
    if !state.settings.raw.auth.signup {
        return Err(Problem::signup_disabled());
    }
    state.limits.signup_ip.check(&ctx.client_ip.to_string()).await?;
    let username = body.username.trim().to_owned();
    check_username(&username)?;
    let email = body.email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    if let Some(e) = &email {
        check_email(e)?;
    }
    policy::check(&body.password, &username, state.settings.raw.users.password_min_length)
        .map_err(|w| Problem::weak_password(w.0))?;

    let hash = state.passwords.hash(body.password).await?;
    let user = state.users.create(NewUser { username, email, password_hash: hash }).await?;
    if let Some(prior) = ctx.authenticated() {
        state.sessions.delete_by_token(&prior.session).await?;
    }
    let secret = crate::csrf::new_secret();
    let remember = state.settings.raw.session.remember_default;
    let (token, session) =
        state.sessions.create(user.id, client_info(&ctx, &headers), remember, secret.clone()).await?;
    tracing::info!(user_id = user.id, ip = %ctx.client_ip, "signup");
    if let Some(email) = user.email.clone()
        && let Err(e) = super::account::send_verification(&state, &user, &email).await
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
        assert!(check_username("alice.b+1@x").is_ok());
        assert!(check_username("Zoë").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("has space").is_err());
        assert!(check_username(&"a".repeat(151)).is_err());
    }

    #[test]
    fn emails() {
        assert!(check_email("a@example.com").is_ok());
        for bad in ["a", "@example.com", "a@b", "a b@example.com", "a@.com"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
