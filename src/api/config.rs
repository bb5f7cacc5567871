use axum::Json;
use axum::extract::State;

use crate::api::AppState;
use crate::api::types::PublicConfig;

/// `GET /config`: what a login or account page needs to know of this gateway's policy (nothing
/// an anonymous caller could not learn by trying: the password policy, whether signup and
/// passkeys are on).
#[utoipa::path(
    get,
    path = "/config",
    tag = "session",
    responses(
        (status = 200, description = "The public parts of the configuration", body = crate::api::types::PublicConfig),
    )
)]
pub async fn public_config(State(state): State<AppState>) -> Json<PublicConfig> {
    Json(PublicConfig {
        password_min_length: state.settings.users.password_min_length,
        signup: state.settings.auth.signup,
        passkeys: state.passkeys.is_some() && state.users.passkeys().is_some(),
    })
}
