use axum::Json;
use axum::extract::Extension;

use super::{SessionView, require_auth};
use crate::api::types::WhoAmI;
use crate::http::Problem;
use crate::session::RequestContext;
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
pub async fn whoami(Extension(ctx): Extension<RequestContext>) -> Result<Json<WhoAmI>, Problem> {
    let a = require_auth(&ctx)?;
    // Typed, not `json!`: the hottest auth endpoint skips building a `Value` tree.
    Ok(Json(WhoAmI { user: PublicUser::from(&a.user), session: SessionView::new(&a.session, Some(&a.session.id)) }))
}
