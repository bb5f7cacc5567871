//! What the session layer establishes for each request, in its extensions: the cookies it read,
//! the client's IP, and whether a session was found. Handlers and the layers after it read this
//! instead of parsing headers.

use std::net::IpAddr;
use std::sync::Arc;

use super::Session;
use crate::cookies::RequestCookies;
use crate::users::User;

/// A logged-in request's session and user.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub session: Session,
    pub user: User,
}

/// What the session layer found for this request.
#[derive(Clone, Debug)]
pub enum AuthState {
    Anonymous,
    Authenticated(Arc<Authenticated>),
    /// A session cookie was sent but the store could not be asked: fail closed.
    Unavailable,
}

/// Per-request facts established by the layers; handlers read this instead of parsing headers.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub cookies: RequestCookies,
    pub client_ip: IpAddr,
    pub auth: AuthState,
}

impl RequestContext {
    pub fn authenticated(&self) -> Option<&Arc<Authenticated>> {
        match &self.auth {
            AuthState::Authenticated(a) => Some(a),
            _ => None,
        }
    }
}
