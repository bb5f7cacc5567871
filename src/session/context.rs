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

#[cfg(test)]
impl Authenticated {
    /// A logged-in `alice` (user 42, `alice@example.com`, unverified) whose session binds
    /// `csrf_secret`, for unit tests of what reads a request's identity.
    pub(crate) fn for_tests(csrf_secret: &str) -> Self {
        let now = chrono::Utc::now();
        let session = Session {
            id: "pub-sid".into(),
            token_hash: super::TokenHash("h".into()),
            user_id: 42,
            csrf_secret: csrf_secret.into(),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now,
            absolute_expires_at: now,
            authenticated_at: now,
            ip: None,
            user_agent: None,
            remember: true,
            methods: Default::default(),
        };
        let user = User {
            id: 42,
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            email_verified: false,
            password_hash: String::new(),
            is_active: true,
            mfa: false,
            created_at: now,
            last_login: None,
        };
        Authenticated { session, user }
    }
}
