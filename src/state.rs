//! The shared application state handed to layers and handlers.

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::Settings;
use crate::cookies::{CookiePolicy, RequestCookies};
use crate::csrf::origin::OriginPolicy;
use crate::identity::Identity;
use crate::password::Passwords;
use crate::ratelimit::Limits;
use crate::session::{Session, SessionManager};
use crate::users::{User, UserStore};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Arc<Settings>,
    pub sessions: SessionManager,
    pub users: Arc<dyn UserStore>,
    pub passwords: Passwords,
    pub cookies: CookiePolicy,
    pub origins: OriginPolicy,
    pub limits: Limits,
    /// Identity header names and, with `identity.jwt`, the signing keys (proxy and `/verify`).
    pub identity: Identity,
    /// Where account mail goes (`[mail]`): SMTP, or `.eml` files in development.
    pub mailer: Arc<dyn crate::mail::Mailer>,
    /// Keys derived from the secret key for 2FA (sealed TOTP secrets, recovery codes, pending
    /// two-step logins).
    pub mfa: crate::mfa::Keys,
    /// The audit log (`crate::audit`): log lines, and rows in the background when the gateway
    /// was built with [`AppState::from_stores`].
    pub audit: crate::audit::Auditor,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        settings: Arc<Settings>,
        sessions: SessionManager,
        users: Arc<dyn UserStore>,
        passwords: Passwords,
    ) -> Self {
        let secret = settings.secret_key().expect(
            "the secret key (secret_key, or data_dir/secret.key) cannot be read; server::open_stores reports why",
        );
        Self::with_secret(settings, sessions, users, passwords, &secret)
    }

    /// Everything [`crate::server::open_stores`] opened, audit table included.
    pub fn from_stores(settings: Arc<Settings>, stores: crate::server::Stores) -> Self {
        let audit = crate::audit::Auditor::new(&settings.raw.audit, stores.audit);
        Self::build(settings, stores.sessions, stores.users, stores.passwords, &stores.secret, audit)
    }

    /// [`AppState::new`] with the secret key already loaded ([`crate::server::Stores::secret`]).
    /// Audit events become log lines (and webhook calls), no rows: see [`AppState::from_stores`].
    pub fn with_secret(
        settings: Arc<Settings>,
        sessions: SessionManager,
        users: Arc<dyn UserStore>,
        passwords: Passwords,
        secret: &crate::secret::SecretKey,
    ) -> Self {
        let audit = crate::audit::Auditor::new(&settings.raw.audit, crate::audit::AuditStore::None);
        Self::build(settings, sessions, users, passwords, secret, audit)
    }

    fn build(
        settings: Arc<Settings>,
        sessions: SessionManager,
        users: Arc<dyn UserStore>,
        passwords: Passwords,
        secret: &crate::secret::SecretKey,
        audit: crate::audit::Auditor,
    ) -> Self {
        let mailer = crate::mail::from_settings(&settings).expect("[mail] was validated with the configuration");
        let mfa = crate::mfa::Keys::new(secret);
        let cookies = CookiePolicy::new(settings.cookies.clone());
        let origins =
            OriginPolicy { public: settings.public_origin.clone(), trusted: settings.trusted_origins.clone() };
        let limits = Limits::for_settings(&settings);
        let identity = Identity::new(&settings);
        AppState(Arc::new(Inner {
            settings,
            sessions,
            users,
            passwords,
            cookies,
            origins,
            limits,
            identity,
            mailer,
            mfa,
            audit,
        }))
    }
}

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
