//! The reverse proxy (SPEC §8): `[[routes]]` forwarded to upstreams with the user's identity.
//!
//! ```toml
//! [[routes]]
//! prefix = "/api/"                  # longest prefix wins
//! upstream = "http://127.0.0.1:8000"
//! auth = "required"                 # 401 problem without a session; "optional"; "none"
//! strip_prefix = false              # true: /api/x reaches the upstream as /x
//! timeout = "30s"                   # until the upstream's response head (504 after)
//! max_body = "10MiB"                # optional; unset: request bodies stream unlimited
//! ```
//!
//! ## One request
//! 1. Route ([`routes`]): the path is read every way an upstream might read it (`//` merged or
//!    not, `;` parameters stripped or not, `%2F`/`%5C` and `\` as separators or not, other
//!    escapes decoded, case folded or not). A dot segment in any reading, or readings that
//!    select different routes (`//admin/x`, `/admin;x/y`, `/ADMIN/x` when `/` and `/admin/`
//!    differ), get 400 `invalid_request`. Otherwise the longest prefix they all select, and the
//!    path goes upstream as received. No route: the request goes on to the SPA.
//! 2. Auth: `required` answers 401 `not_authenticated` to anonymous requests, `required` and
//!    `optional` answer 503 `overloaded` when the session store cannot be asked (fail closed).
//!    `none` routes ignore the session.
//! 3. `required`/`optional` only: a WebSocket handshake with a foreign `Origin` gets 403
//!    `origin_not_allowed`; unsafe methods pass the CSRF checks of SPEC §6
//!    ([`crate::csrf::layer::verify`], the same code path as the auth API).
//! 4. Headers ([`headers`], [`crate::identity`]): hop-by-hop headers removed; `Host` set to the
//!    upstream's; every client-sent identity header removed in every spelling (all routes); the
//!    session and pending-2FA cookies removed from `Cookie` in every spelling
//!    ([`crate::cookies::same_cookie`]; other cookies, the CSRF cookie included, pass);
//!    on safe methods (which passed no CSRF check) method overrides removed, the
//!    `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` headers and `_method` query
//!    parameters, so no upstream runs a cross-site `GET` as a `DELETE`;
//!    `X-Forwarded-For/-Proto/-Host` set; identity headers (and the JWT) added for a session on
//!    `required`/`optional` routes.
//! 5. Forward with the route's timeout covering connect, sending and the response head: 504
//!    `upstream_timeout` after it, 502 `upstream_unavailable` when the upstream cannot be reached
//!    or answers garbage — each logged once at `warn` with the route prefix (never headers).
//! 6. The response streams back with hop-by-hop headers removed, `Vary: Cookie` added on
//!    routes that carry identity, and `Set-Cookie` dropped (logged) for the session or pending
//!    2FA cookie in any spelling, and for the CSRF cookie in any spelling but its exact name
//!    (which a Django upstream may re-send): only the gateway issues them.
//!
//! ## Bodies and upgrades
//! Bodies stream both ways: the incoming body is handed to the upstream request as it arrives
//! and the upstream's body to the client, with backpressure and no buffering — a 50 MB upload
//! holds a few socket buffers of memory. `max_body` answers 413 `payload_too_large` up front
//! for a larger `Content-Length`, and stops a chunked body once it passes the limit. (The one
//! exception is the CSRF form-field fallback, which, like Django, reads an
//! `application/x-www-form-urlencoded` body without an `X-CSRFToken` header, up to
//! `server.max_body`.) WebSocket upgrades are forwarded as such: both `101`s, then the two
//! connections are spliced ([`upgrade`]). Other upgrade protocols are not passed through.
//! Response bodies have no timeout, so long polls and downloads work.
//!
//! ## Deployment caveat
//! Upstreams must not be reachable except through the gateway (bind them to localhost or a
//! private network): identity headers are only trustworthy when no one else can send them. Use
//! `identity.jwt = true` when that cannot be guaranteed.

pub mod headers;
pub mod routes;
pub mod upgrade;

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_LENGTH, EXPECT, HOST, ORIGIN};
use http::{HeaderValue, StatusCode, Version};

use crate::config::{RouteAuth, Settings};
use crate::cookies::CookiePolicy;
use crate::csrf::layer::CsrfGuard;
use crate::http::Problem;
use crate::http::client::{self, Failure, Upstream};
use crate::http::headers::add_vary;
use crate::identity::Identity;
use crate::session::{AuthState, RequestContext};
use routes::{Route, RouteTable};

/// The route table and the pooled client. Cheap to clone.
#[derive(Clone)]
pub struct Proxy(Arc<Inner>);

struct Inner {
    routes: RouteTable,
    client: Upstream,
    /// The scheme clients use to reach this listener, for `X-Forwarded-Proto`.
    scheme: &'static str,
    /// `server.trusted_proxies`: whose `X-Forwarded-*` are kept.
    trusted_proxies: Vec<ipnet::IpNet>,
    identity: Arc<Identity>,
    cookies: CookiePolicy,
    csrf: CsrfGuard,
}

impl Proxy {
    /// The routes of `settings`; the identity headers, cookie policy and CSRF checks are the
    /// ones the rest of the gateway uses.
    pub fn new(settings: &Settings, identity: Arc<Identity>, cookies: CookiePolicy, csrf: CsrfGuard) -> Self {
        let scheme = if settings.tls.is_some() { "https" } else { "http" };
        Proxy(Arc::new(Inner {
            routes: RouteTable::new(&settings.routes),
            client: client::build(),
            scheme,
            trusted_proxies: settings.trusted_proxies.clone(),
            identity,
            cookies,
            csrf,
        }))
    }

    /// Forward `req` when a route matches; otherwise hand it back for the SPA.
    pub async fn handle(&self, req: Request) -> Result<Response, Request> {
        if self.0.routes.is_empty() {
            return Err(req);
        }
        let route = match self.0.routes.select(req.uri().path()) {
            Ok(Some(route)) => route,
            Ok(None) => return Err(req),
            Err(why) => {
                tracing::debug!(reason = ?why, "path refused before routing");
                return Ok(Problem::invalid_request(why.detail()).into_response());
            }
        };
        let unsafe_checked = route.auth != RouteAuth::None && !crate::http::headers::is_safe(req.method());
        let mut res = match self.forward(route, req).await {
            Ok(res) => res,
            Err(p) => p.into_response(),
        };
        if unsafe_checked {
            add_vary(&mut res, "Origin");
            add_vary(&mut res, "Sec-Fetch-Site");
        }
        Ok(res)
    }

    async fn forward(&self, route: &Route, mut req: Request) -> Result<Response, Problem> {
        let state = &*self.0;
        let auth = req.extensions().get::<RequestContext>().map(|c| c.auth.clone()).ok_or_else(Problem::internal)?;
        let user = match (route.auth, &auth) {
            (RouteAuth::None, _) => None,
            (_, AuthState::Unavailable) => {
                return Err(Problem::store_unavailable());
            }
            (_, AuthState::Authenticated(a)) => Some(a.clone()),
            (RouteAuth::Required, AuthState::Anonymous) => return Err(Problem::not_authenticated()),
            (RouteAuth::Optional, AuthState::Anonymous) => None,
        };

        let websocket = headers::is_websocket_upgrade(req.headers());
        if route.auth != RouteAuth::None {
            if websocket {
                let origin = req.headers().get(ORIGIN).map(|v| v.to_str().unwrap_or("\u{0}"));
                state
                    .csrf
                    .origins()
                    .check_handshake(origin)
                    .map_err(|why| Problem::origin_not_allowed(why.to_string()).with_reason(why.reason()))?;
            }
            if !crate::http::headers::is_safe(req.method()) {
                req = state.csrf.verify(req).await?;
            }
        }
        if let Some(max) = route.max_body {
            let declared =
                req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max) {
                return Err(Problem::payload_too_large(max));
            }
        }

        let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip().to_canonical());
        let (parts, body) = req.into_parts();
        let safe = crate::http::headers::is_safe(&parts.method);
        // A safe request passed no CSRF check: it must not turn into an unsafe one upstream.
        let query = match parts.uri.query() {
            Some(q) if safe => crate::http::overrides::strip_method_override_param(q),
            q => q.map(Cow::Borrowed),
        };
        let uri = route.upstream_uri(parts.uri.path(), query.as_deref()).map_err(|e| {
            tracing::warn!(route = %route.prefix, error = %e, "cannot build the upstream URI");
            Problem::invalid_request("The request path cannot be forwarded.")
        })?;
        let host = parts
            .headers
            .get(HOST)
            .cloned()
            .or_else(|| parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));

        let mut h = parts.headers;
        headers::remove_hop_by_hop(&mut h);
        h.remove(HOST); // the client sets the upstream's
        h.remove(EXPECT); // hyper answers `100-continue` to the client itself
        state.identity.strip(&mut h);
        state.cookies.strip_gateway_cookies(&mut h);
        if safe {
            crate::http::overrides::strip_method_override(&mut h);
        }
        let trusted = crate::http::client_ip::is_trusted(peer, &state.trusted_proxies);
        headers::set_forwarded(&mut h, peer, trusted, self.0.scheme, host);
        if let Some(a) = &user {
            for (name, value) in state.identity.headers(a, &route.origin).map_err(|_| Problem::internal())? {
                h.insert(name, value);
            }
        }
        if websocket {
            headers::set_websocket_upgrade(&mut h);
        }

        let body = match route.max_body {
            Some(max) => Body::new(http_body_util::Limited::new(body, usize::try_from(max).unwrap_or(usize::MAX))),
            None => body,
        };
        let mut upstream_req = http::Request::new(body);
        *upstream_req.method_mut() = parts.method;
        *upstream_req.uri_mut() = uri;
        *upstream_req.version_mut() = Version::HTTP_11;
        *upstream_req.headers_mut() = h;

        let mut res = match tokio::time::timeout(route.timeout, self.0.client.request(upstream_req)).await {
            Ok(Ok(res)) => res,
            Ok(Err(e)) => {
                return Err(match client::classify(&e) {
                    Failure::TooLarge => Problem::payload_too_large(route.max_body.unwrap_or(0)),
                    Failure::Unreachable(why) => {
                        tracing::warn!(route = %route.prefix, upstream = %route.origin, error = %why, "upstream unavailable");
                        Problem::upstream_unavailable()
                    }
                });
            }
            Err(_) => {
                tracing::warn!(route = %route.prefix, upstream = %route.origin, timeout = ?route.timeout, "upstream timed out");
                return Err(Problem::upstream_timeout());
            }
        };

        let upgraded = match client_upgrade {
            Some(c) if res.status() == StatusCode::SWITCHING_PROTOCOLS => Some((c, hyper::upgrade::on(&mut res))),
            _ => None,
        };
        let (parts, body) = res.into_parts();
        let mut out = Response::new(Body::new(body));
        *out.status_mut() = parts.status;
        *out.headers_mut() = parts.headers;
        let h = out.headers_mut();
        headers::remove_hop_by_hop(h);
        if headers::drop_set_cookie(h, |name| !state.cookies.upstream_may_set(name)) {
            tracing::warn!(
                route = %route.prefix,
                "upstream tried to set a cookie of the gateway (session, 2FA login, or the CSRF cookie under another spelling); dropped"
            );
        }
        if let Some((client, upstream)) = upgraded {
            headers::set_websocket_upgrade(out.headers_mut());
            upgrade::tunnel(client, upstream, route.prefix.clone());
        }
        if route.auth != RouteAuth::None {
            add_vary(&mut out, "Cookie");
        }
        Ok(out)
    }
}
