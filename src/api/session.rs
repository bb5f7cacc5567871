use axum::Json;
use axum::extract::Extension;
use serde_json::{Value, json};

use super::{SessionView, require_auth};
use crate::http::Problem;
use crate::state::RequestContext;
use crate::users::PublicUser;

/// `GET /session`: who am I.
#[utoipa::path(
    get,
    path = "/session",
    tag = "session",
    responses(
        (status = 200, description = "The user and this session", body = crate::openapi::WhoAmI),
        (status = "default", response = crate::openapi::Problem),
    )
)]
pub async fn whoami(Extension(ctx): Extension<RequestContext>) -> Result<Json<Value>, Problem> {
    let a = require_auth(&ctx)?;
    Ok(Json(json!({
        "user": PublicUser::from(&a.user),
        "session": SessionView::new(&a.session, Some(&a.session.id)),
    })))
}
