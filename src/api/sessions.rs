use axum::Json;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;

use super::{CurrentUser, SessionView, with_cookies};
use crate::api::AppState;
use crate::api::types::{Revoked, SessionList};
use crate::http::{ApiPath, Problem};

/// `GET /sessions`: my live sessions, the current one marked.
#[utoipa::path(
    get,
    path = "/sessions",
    operation_id = "list_sessions",
    tag = "sessions",
    responses(
        (status = 200, description = "Live sessions of the user, newest first", body = crate::api::types::SessionList),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn list(State(state): State<AppState>, CurrentUser(a): CurrentUser) -> Result<Json<SessionList>, Problem> {
    let sessions = state.sessions.list(a.user.id).await?;
    let views: Vec<SessionView> = sessions.iter().map(|s| SessionView::new(s, Some(&a.session.id))).collect();
    Ok(Json(SessionList { sessions: views }))
}

/// `DELETE /sessions/{id}`: revoke one of my sessions (404 for anyone else's).
#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    operation_id = "revoke_session",
    tag = "sessions",
    params(("id" = String, Path, description = "The session's public id (from `GET /sessions`)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, Problem> {
    if !state.sessions.revoke(&id, Some(a.user.id)).await? {
        return Err(Problem::not_found("No such session."));
    }
    tracing::info!(user_id = a.user.id, revoked = %id, "session revoked");
    let clear = (id == a.session.id).then(|| state.cookies.clear_session());
    Ok(with_cookies(StatusCode::NO_CONTENT, clear))
}

/// `POST /sessions/revoke-others`: sign out every other device, and void pending email changes.
#[utoipa::path(
    post,
    path = "/sessions/revoke-others",
    operation_id = "revoke_other_sessions",
    tag = "sessions",
    responses(
        (status = 200, description = "Every other session of the user revoked", body = crate::api::types::Revoked),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn revoke_others(
    State(state): State<AppState>,
    CurrentUser(a): CurrentUser,
) -> Result<Json<Revoked>, Problem> {
    let revoked = state.sessions.revoke_all(a.user.id, Some(&a.session.id)).await?;
    // "That was not me": whatever those sessions asked for is void too.
    super::account::void_email_changes(&state, a.user.id).await;
    tracing::info!(user_id = a.user.id, revoked, "other sessions revoked");
    Ok(Json(Revoked { revoked }))
}
