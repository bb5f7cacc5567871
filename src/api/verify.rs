//! Forward auth: `GET {base}/verify` for nginx `auth_request`, Traefik `forwardAuth` and Caddy
//! `forward_auth`. The front proxy copies the original request's headers (cookies, `Origin`,
//! `Sec-Fetch-Site`, `X-CSRFToken`) onto this GET and acts on the status:
//! - 200 with the identity headers ([`crate::identity`]; `aud` of the JWT is `public_url`);
//! - 401 problem `not_authenticated` without a valid session (503 `overloaded` when the
//!   session store cannot be asked);
//! - 403 problem `csrf_failed`/`origin_not_allowed` when the original method, passed as
//!   `X-Original-Method` (nginx: `proxy_set_header X-Original-Method $request_method;`) or
//!   `X-Forwarded-Method` (Traefik, Caddy), is unsafe and the CSRF checks of SPEC §6 fail — the
//!   same code as the CSRF layer, minus the form-field fallback (the body never arrives here).
//!   An unparsable method is treated as unsafe. So is a method override naming an unsafe method
//!   (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`): nginx copies the
//!   client's headers onto this request, and an upstream that honours the override would run
//!   the `GET` as, say, a `DELETE` — so the CSRF checks run. The same for a `_method` query
//!   parameter in the original URI (`X-Original-URI`, nginx: `$request_uri`; `X-Forwarded-Uri`,
//!   Traefik and Caddy), whatever its value.
//!
//! The session is checked before CSRF, as on `auth = "required"` routes: a request without a
//! session is refused anyway. `X-Original-URI`/`X-Forwarded-Uri` are read only for that
//! parameter: never logged or echoed.

use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};

use super::extract::authenticated;
use crate::api::AppState;
use crate::http::Problem;
use crate::http::headers::add_vary;
use crate::session::RequestContext;

const METHOD_HEADERS: [&str; 2] = ["x-original-method", "x-forwarded-method"];
const URI_HEADERS: [&str; 2] = ["x-original-uri", "x-forwarded-uri"];

#[utoipa::path(
    get,
    path = "/verify",
    operation_id = "forward_auth",
    tag = "forward-auth",
    params(
        ("X-Original-Method" = Option<String>, Header, description = "The original request's method (nginx); unsafe methods get the CSRF checks"),
        ("X-Forwarded-Method" = Option<String>, Header, description = "The same, as Traefik and Caddy send it"),
    ),
    responses(
        (status = 200, description = "Logged in: identity headers (`X-Auth-User-Id`, `X-Auth-User`, `X-Auth-Email`, `X-Auth-Session`, optionally `X-Auth-Assertion`)"),
        (status = "default", response = crate::api::types::Problem),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
) -> Response {
    let auth = match authenticated(&ctx) {
        Ok(a) => a,
        Err(p) => return p.into_response(),
    };
    if original_is_unsafe(&headers)
        && let Err(p) = state.csrf.verify_headers(&headers, &ctx)
    {
        let mut res = p.into_response();
        add_vary(&mut res, "Origin");
        add_vary(&mut res, "Sec-Fetch-Site");
        return res;
    }
    let identity = match state.identity.headers(&auth, &state.settings.public_origin.to_string()) {
        Ok(h) => h,
        Err(_) => return Problem::internal().into_response(),
    };
    let mut res = StatusCode::OK.into_response();
    for (name, value) in identity {
        res.headers_mut().insert(name, value);
    }
    res
}

/// Whether any original-method or method-override header names a method that needs CSRF
/// checks.
fn original_is_unsafe(h: &HeaderMap) -> bool {
    METHOD_HEADERS
        .iter()
        .flat_map(|n| h.get_all(*n))
        .any(|v| Method::from_bytes(v.as_bytes().trim_ascii()).map_or(true, |m| !crate::http::headers::is_safe(&m)))
        || crate::http::overrides::overrides_to_unsafe(h)
        || URI_HEADERS.iter().flat_map(|n| h.get_all(*n)).any(|v| {
            let uri = String::from_utf8_lossy(v.as_bytes());
            uri.split_once('?').is_some_and(|(_, q)| {
                crate::http::overrides::has_method_override_param(q.split('#').next().unwrap_or(""))
            })
        })
}

/// `GET /.well-known/jwks.json`: the public keys of identity assertions (only routed when
/// `identity.jwt = true`).
pub async fn jwks(State(state): State<AppState>) -> Response {
    let Some(ring) = &state.identity.keys else {
        return Problem::not_found("identity.jwt is off.").into_response();
    };
    match ring.keys() {
        Ok(keys) => ([(http::header::CACHE_CONTROL, "public, max-age=300")], axum::Json(keys.jwks())).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "identity.jwt: cannot read or create the signing key");
            Problem::internal().into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn original_method_headers() {
        assert!(!original_is_unsafe(&h(&[])));
        assert!(!original_is_unsafe(&h(&[("x-original-method", "GET")])));
        assert!(!original_is_unsafe(&h(&[("x-forwarded-method", "HEAD")])));
        assert!(original_is_unsafe(&h(&[("x-original-method", "POST")])));
        assert!(original_is_unsafe(&h(&[("x-forwarded-method", "DELETE")])));
        assert!(original_is_unsafe(&h(&[("x-original-method", "GET"), ("x-forwarded-method", "PUT")])));
        assert!(original_is_unsafe(&h(&[("x-original-method", "G E T")])), "unparsable: unsafe");
        assert!(!original_is_unsafe(&h(&[("x-original-method", " OPTIONS ")])));
        assert!(original_is_unsafe(&h(&[("x-original-uri", "/api/x?_method=DELETE")])));
        assert!(original_is_unsafe(&h(&[("x-forwarded-uri", "/api/x?a=1&%5FMETHOD=put")])));
        assert!(!original_is_unsafe(&h(&[("x-original-uri", "/api/_method?a=1")])), "the path is not the query");
        assert!(original_is_unsafe(&h(&[("x-original-method", "GET"), ("x-http-method-override", "DELETE")])));
        assert!(original_is_unsafe(&h(&[("x-method-override", "post")])));
        assert!(!original_is_unsafe(&h(&[("x-original-method", "GET"), ("x-http-method", "HEAD")])));
    }
}
