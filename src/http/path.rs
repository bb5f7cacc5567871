//! `ApiPath<T>`: axum's `Path` extractor with its rejections (bad percent-encoding, wrong
//! type) as 400 problem JSON instead of axum's plain-text answers.

use axum::extract::FromRequestParts;
use axum::extract::rejection::PathRejection;
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::Problem;

pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => {
                Err(Problem::invalid_request("A path segment is not valid (bad percent-encoding or UTF-8)."))
            }
            Err(_) => Err(Problem::invalid_request("The path could not be read.")),
        }
    }
}
