//! `ApiJson<T>`: the JSON body extractor of the auth API, mapping every failure to a problem:
//! wrong content type 415, body over `server.max_body` 413, malformed JSON or wrong types 400
//! naming the field.

use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::Problem;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Problem::unsupported_media_type()),
            Err(JsonRejection::JsonDataError(e)) => {
                // serde's message names the path, e.g. "remember: invalid type: string, expected a boolean".
                let msg = e.body_text();
                let detail = msg.split_once(": ").map_or(msg.as_str(), |(_, d)| d).to_owned();
                let field = detail.split_once(": ").map(|(f, _)| f.to_owned()).filter(|f| !f.contains(' '));
                let p = Problem::invalid_request(detail.clone());
                Err(match field {
                    Some(f) => p.with_errors(BTreeMap::from([(f, detail)])),
                    None => p,
                })
            }
            Err(JsonRejection::JsonSyntaxError(_)) => Err(Problem::invalid_request("The body is not valid JSON.")),
            Err(JsonRejection::BytesRejection(e)) => {
                if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                    Err(Problem::payload_too_large(0).with_limit_text())
                } else {
                    Err(Problem::invalid_request("The body could not be read."))
                }
            }
            Err(_) => Err(Problem::invalid_request("The body could not be read.")),
        }
    }
}

impl Problem {
    fn with_limit_text(mut self) -> Self {
        self.detail = "The request body is larger than the server accepts (server.max_body).".into();
        self
    }
}

/// Serialize a timestamp exactly as chrono's `Serialize` does (RFC 3339, `Z`, fractional seconds
/// as needed), but formatted once into a string: chrono's impl hands serde_json one character at
/// a time, each escaped separately, which was the largest cost of `GET /session`
/// (bench/fixes.md).
pub fn rfc3339<S: serde::Serializer>(t: &chrono::DateTime<chrono::Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// [`rfc3339`] for an optional time (`null` when absent).
pub fn rfc3339_opt<S: serde::Serializer>(t: &Option<chrono::DateTime<chrono::Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    #[derive(serde::Serialize)]
    struct Ours(#[serde(serialize_with = "super::rfc3339")] chrono::DateTime<Utc>);

    #[test]
    fn rfc3339_matches_chronos_own_serialization() {
        let whole = Utc.with_ymd_and_hms(2026, 11, 29, 4, 3, 27).unwrap();
        for t in [whole, whole + chrono::Duration::microseconds(123_456), whole + chrono::Duration::nanoseconds(7)] {
            assert_eq!(serde_json::to_string(&Ours(t)).unwrap(), serde_json::to_string(&t).unwrap());
        }
    }
}
