use axum::Json;

use super::{CurrentUser, SessionView};
use crate::api::types::WhoAmI;
use crate::http::Problem;
use crate::users::PublicUser;

/// `GET /session`: who am I.
#[utoipa::path(
    get,
    path = "/session",
    tag = "session",
    responses(
        (status = 200, description = "The user and this session", body = crate::api::types::WhoAmI),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn whoami(CurrentUser(a): CurrentUser) -> Result<Json<WhoAmI>, Problem> {
    // Typed, not `json!`: the hottest auth endpoint skips building a `Value` tree.
    Ok(Json(WhoAmI { user: PublicUser::from(&a.user), session: SessionView::new(&a.session, Some(&a.session.id)) }))
}
