//! The CSRF middleware: dispatches on the pure checks in [`super::origin`] and [`super`].

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;

use super::origin::OriginHeaders;
use super::{TokenFailure, is_safe, verify_token};
use crate::http::Problem;
use crate::session::layer::add_vary;
use crate::state::{AppState, AuthState, RequestContext};

const FORM_FIELD: &str = "csrfmiddlewaretoken";

pub async fn csrf_protect(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_safe(req.method()) {
        return next.run(req).await;
    }
    let mut res = match verify(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(p) => p.into_response(),
    };
    add_vary(&mut res, "Origin");
    add_vary(&mut res, "Sec-Fetch-Site");
    res
}

async fn verify(state: &AppState, req: Request) -> Result<Request, Problem> {
    let h = req.headers();
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    let origin_headers = OriginHeaders {
        sec_fetch_site: get("sec-fetch-site"),
        origin: get("origin"),
        referer: get("referer"),
    };
    if let Err(why) = state.origins.check(origin_headers) {
        tracing::debug!(reason = %why, "csrf: origin refused");
        return Err(Problem::origin_not_allowed(why.to_string()));
    }

    let ctx = req.extensions().get::<RequestContext>().cloned().ok_or_else(Problem::internal)?;
    let bound = match &ctx.auth {
        AuthState::Authenticated(a) => Some(a.session.csrf_secret.clone()),
        AuthState::Anonymous => None,
        AuthState::Unavailable => return Err(Problem::overloaded("The session store is unavailable; try again shortly.")),
    };

    let header_name = &state.settings.csrf_header;
    let header_token = req.headers().get(header_name).map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
    let (req, submitted, source) = match header_token {
        Some(t) => (req, Some(t), format!("the '{}' HTTP header", state.settings.raw.csrf.header_name)),
        None if is_form(&req) => {
            let (req, t) = form_token(req, state.settings.max_body).await?;
            (req, t, "POST".to_owned())
        }
        None => (req, None, String::new()),
    };
    verify_token(ctx.cookies.csrf.as_deref(), submitted.as_deref(), &source, bound.as_deref()).map_err(|why| {
        tracing::debug!(reason = %why, "csrf: token refused");
        match why {
            TokenFailure::NoCookie => Problem::csrf_failed(format!("{why} Fetch one from {}/csrf first.", state.settings.base_path)),
            _ => Problem::csrf_failed(why.to_string()),
        }
    })?;
    Ok(req)
}

fn is_form(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

/// Django also reads the token from the form body. Buffering is bounded by `max_body`, and the
/// body is handed on unchanged.
async fn form_token(req: Request, limit: u64) -> Result<(Request, Option<String>), Problem> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit as usize)
        .await
        .map_err(|_| Problem::payload_too_large(limit))?;
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == FORM_FIELD)
        .map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}
