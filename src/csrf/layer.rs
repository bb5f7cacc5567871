//! The CSRF middleware: dispatches on the pure checks in [`super::origin`] and [`super`]. Its
//! state is a [`CsrfGuard`] — the origins and the header it needs, not the whole application —
//! which the proxy and forward auth use for the same decision.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};

use super::origin::{OriginHeaders, OriginPolicy};
use super::{TokenFailure, verify_token};
use crate::config::Settings;
use crate::http::Problem;
use crate::http::headers::add_vary;
use crate::http::headers::is_safe;
use crate::session::{AuthState, RequestContext};

const FORM_FIELD: &str = "csrfmiddlewaretoken";

/// What the CSRF checks need: the allowed origins, the token header, the form-body bound.
#[derive(Clone)]
pub struct CsrfGuard(Arc<Guard>);

struct Guard {
    origins: OriginPolicy,
    header: http::HeaderName,
    /// The header as configured, for messages (`X-CSRFToken`).
    header_label: String,
    max_body: u64,
    base_path: String,
}

impl CsrfGuard {
    pub fn new(settings: &Settings) -> Self {
        CsrfGuard(Arc::new(Guard {
            origins: OriginPolicy { public: settings.public_origin.clone(), trusted: settings.trusted_origins.clone() },
            header: settings.csrf_header.clone(),
            header_label: settings.csrf_header_label.clone(),
            max_body: settings.max_body,
            base_path: settings.base_path.clone(),
        }))
    }

    /// The origin policy (`public_url` and `csrf.trusted_origins`).
    pub fn origins(&self) -> &OriginPolicy {
        &self.0.origins
    }

    /// SPEC §6 steps 1–5 for one unsafe request. The request comes back unchanged (a form body
    /// read for its token is put back), so the proxy can forward it afterwards.
    pub async fn verify(&self, req: Request) -> Result<Request, Problem> {
        self.check_origin(req.headers())?;
        let ctx = req.extensions().get::<RequestContext>().cloned().ok_or_else(Problem::internal)?;
        if req.headers().contains_key(&self.0.header) || !is_form(&req) {
            self.check_token(req.headers(), &ctx, None)?;
            return Ok(req);
        }
        let (req, token) = form_token(req, self.0.max_body).await?;
        self.check_token(req.headers(), &ctx, Some(token))?;
        Ok(req)
    }

    /// The same checks from headers alone, for forward auth (`{base}/verify`), where the
    /// original request's headers arrive on a GET and its body never does.
    pub fn verify_headers(&self, headers: &HeaderMap, ctx: &RequestContext) -> Result<(), Problem> {
        self.check_origin(headers)?;
        self.check_token(headers, ctx, None)
    }
}

pub async fn csrf_protect(State(guard): State<CsrfGuard>, req: Request, next: Next) -> Response {
    if is_safe(req.method()) {
        return next.run(req).await;
    }
    let mut res = match guard.verify(req).await {
        Ok(req) => next.run(req).await,
        Err(p) => p.into_response(),
    };
    add_vary(&mut res, "Origin");
    add_vary(&mut res, "Sec-Fetch-Site");
    res
}

impl CsrfGuard {
    /// Steps 1–3: fetch metadata, `Origin`, `Referer`.
    fn check_origin(&self, h: &HeaderMap) -> Result<(), Problem> {
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
        let origin_headers =
            OriginHeaders { sec_fetch_site: get("sec-fetch-site"), origin: get("origin"), referer: get("referer") };
        self.0.origins.check(origin_headers).map_err(|why| {
            tracing::debug!(reason = %why, "csrf: origin refused");
            Problem::origin_not_allowed(why.to_string()).with_reason(why.reason())
        })
    }

    /// Steps 4–5: the token from the header (or, when `form` is `Some`, the form field) against the
    /// cookie and the session's bound secret.
    fn check_token(
        &self,
        headers: &HeaderMap,
        ctx: &RequestContext,
        form: Option<Option<String>>,
    ) -> Result<(), Problem> {
        let bound = match &ctx.auth {
            AuthState::Authenticated(a) => Some(a.session.csrf_secret.clone()),
            AuthState::Anonymous => None,
            AuthState::Unavailable => {
                return Err(Problem::store_unavailable());
            }
        };
        let (submitted, source) = match form {
            Some(t) => (t, "POST".to_owned()),
            None => (
                headers.get(&self.0.header).map(|v| v.to_str().unwrap_or("\u{0}").to_owned()),
                format!("the '{}' HTTP header", self.0.header_label),
            ),
        };
        verify_token(ctx.cookies.csrf.as_deref(), submitted.as_deref(), &source, bound.as_deref()).map_err(|why| {
            tracing::debug!(reason = %why, "csrf: token refused");
            let p = match why {
                TokenFailure::NoCookie => {
                    Problem::csrf_failed(format!("{why} Fetch one from {}/csrf first.", self.0.base_path))
                }
                _ => Problem::csrf_failed(why.to_string()),
            };
            p.with_reason(why.reason())
        })
    }
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
    let bytes = axum::body::to_bytes(body, limit as usize).await.map_err(|_| Problem::payload_too_large(limit))?;
    let token = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == FORM_FIELD).map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

/// The middleware in process (`tower::ServiceExt::oneshot`), with the context the session
/// layer would have put in the request.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::routing::post;
    use http::StatusCode;
    use tower::ServiceExt;

    use super::*;
    use crate::cookies::RequestCookies;
    use crate::session::Authenticated;

    fn app() -> Router {
        let settings = crate::config::load_str("").unwrap().validate().unwrap();
        let guard = CsrfGuard::new(&settings);
        Router::new()
            .route("/x", post(|body: String| async move { body }).get(|| async { "read" }))
            .layer(axum::middleware::from_fn_with_state(guard, csrf_protect))
    }

    fn authenticated(secret: &str) -> AuthState {
        AuthState::Authenticated(Arc::new(Authenticated::for_tests(secret)))
    }

    async fn send(
        method: &str,
        cookie: Option<&str>,
        headers: &[(&str, String)],
        auth: AuthState,
        body: &str,
    ) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri("/x");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let mut req = req.body(Body::from(body.to_owned())).unwrap();
        let cookies = RequestCookies { session: None, more_sessions: Vec::new(), csrf: cookie.map(str::to_owned) };
        req.extensions_mut().insert(RequestContext { cookies, client_ip: [127, 0, 0, 1].into(), auth });
        let res = app().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn unsafe_requests_need_the_token_and_an_allowed_origin() {
        let secret = crate::csrf::new_secret();
        let token = crate::csrf::mask(&secret);
        let h = |t: &str| vec![("x-csrftoken", t.to_owned())];
        // Matching cookie and header: through, body intact.
        let (status, body) = send("POST", Some(&secret), &h(&token), AuthState::Anonymous, "{}").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "{}"));
        // No header, no cookie, a wrong token.
        assert_eq!(send("POST", Some(&secret), &[], AuthState::Anonymous, "").await.0, StatusCode::FORBIDDEN);
        assert_eq!(send("POST", None, &h(&token), AuthState::Anonymous, "").await.0, StatusCode::FORBIDDEN);
        let other = crate::csrf::mask(&crate::csrf::new_secret());
        assert_eq!(send("POST", Some(&secret), &h(&other), AuthState::Anonymous, "").await.0, StatusCode::FORBIDDEN);
        // A cross-site request is refused before the token is looked at.
        let mut cross = h(&token);
        cross.push(("sec-fetch-site", "cross-site".into()));
        let (status, body) = send("POST", Some(&secret), &cross, AuthState::Anonymous, "").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("origin_not_allowed"), "{body}");
        let evil = vec![("x-csrftoken", token.clone()), ("origin", "https://evil.example".into())];
        assert_eq!(send("POST", Some(&secret), &evil, AuthState::Anonymous, "").await.0, StatusCode::FORBIDDEN);
        // Safe methods pass untouched.
        assert_eq!(send("GET", None, &[], AuthState::Anonymous, "").await, (StatusCode::OK, "read".into()));
    }

    #[tokio::test]
    async fn a_session_accepts_only_its_own_secret_and_an_unavailable_store_fails_closed() {
        let mine = crate::csrf::new_secret();
        let planted = crate::csrf::new_secret();
        let h = |s: &str| vec![("x-csrftoken", crate::csrf::mask(s))];
        assert_eq!(send("POST", Some(&mine), &h(&mine), authenticated(&mine), "").await.0, StatusCode::OK);
        // A cookie and token pair planted by a sibling subdomain: consistent, but not this session's.
        let (status, body) = send("POST", Some(&planted), &h(&planted), authenticated(&mine), "").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _) = send("POST", Some(&mine), &h(&mine), AuthState::Unavailable, "").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_form_post_may_carry_the_token_in_the_body_which_reaches_the_handler_unchanged() {
        let secret = crate::csrf::new_secret();
        let body = format!("csrfmiddlewaretoken={}&x=1", crate::csrf::mask(&secret));
        let form = vec![("content-type", "application/x-www-form-urlencoded".to_owned())];
        let (status, echoed) = send("POST", Some(&secret), &form, AuthState::Anonymous, &body).await;
        assert_eq!((status, echoed), (StatusCode::OK, body));
    }
}
