//! The auth API's state: the stores, the policies and the services its handlers use, built
//! once from what [`crate::server::open_stores`] opened. The layers around the API have narrow
//! states of their own ([`SessionLayer`], [`CsrfGuard`], the [`Auditor`]), handed out from here
//! so that every part shares one instance.

use std::sync::Arc;

use crate::audit::{AuditStore, Auditor};
use crate::config::Settings;
use crate::cookies::CookiePolicy;
use crate::csrf::layer::CsrfGuard;
use crate::identity::Identity;
use crate::password::Passwords;
use crate::ratelimit::Limits;
use crate::secret::SecretKey;
use crate::session::SessionManager;
use crate::session::layer::SessionLayer;
use crate::users::UserStore;

/// The stores and services a configuration names, opened and migrated
/// ([`crate::server::open_stores`]).
pub struct Stores {
    pub sessions: SessionManager,
    pub users: Arc<dyn UserStore>,
    pub passwords: Passwords,
    pub secret: SecretKey,
    /// Where audit rows go: the user store's SQL database, else the session store's, else none.
    pub audit: AuditStore,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Arc<Settings>,
    pub sessions: SessionManager,
    pub users: Arc<dyn UserStore>,
    pub passwords: Passwords,
    pub cookies: CookiePolicy,
    /// The CSRF checks (origins, token header): the CSRF layer's state, also used by `/verify`.
    pub csrf: CsrfGuard,
    pub limits: Limits,
    /// Identity header names and, with `identity.jwt`, the signing keys (proxy and `/verify`).
    pub identity: Arc<Identity>,
    /// Where account mail goes (`[mail]`): SMTP, or `.eml` files in development.
    pub mailer: Arc<dyn crate::mail::Mailer>,
    /// Keys derived from the secret key for 2FA (sealed TOTP secrets, recovery codes, pending
    /// two-step logins).
    pub mfa: crate::mfa::Keys,
    /// The audit log (`crate::audit`): log lines, and rows in the background.
    pub audit: Auditor,
    /// The WebAuthn relying party, when passkeys are on (`[passkeys]`).
    pub passkeys: Option<Arc<crate::passkeys::Passkeys>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Everything [`crate::server::open_stores`] opened, audit table included.
    pub fn new(settings: Arc<Settings>, stores: Stores) -> Self {
        let audit = Auditor::new(&settings.audit, stores.audit);
        let mailer = crate::mail::from_settings(&settings).expect("[mail] was validated with the configuration");
        let passkeys = settings.passkeys.as_ref().and_then(|p| {
            crate::passkeys::Passkeys::new(p, &stores.secret)
                .inspect_err(|e| tracing::error!(error = %e, rp_id = %p.rp_id, "passkeys are off: the relying party was refused"))
                .ok()
                .map(Arc::new)
        });
        AppState(Arc::new(Inner {
            mfa: crate::mfa::Keys::new(&stores.secret),
            cookies: CookiePolicy::new(settings.cookies.clone()),
            csrf: CsrfGuard::new(&settings),
            limits: Limits::for_settings(&settings, stores.sessions.clock().clone()),
            identity: Arc::new(Identity::new(&settings)),
            sessions: stores.sessions,
            users: stores.users,
            passwords: stores.passwords,
            settings,
            mailer,
            audit,
            passkeys,
        }))
    }

    /// The session layer's state.
    pub fn session_layer(&self) -> SessionLayer {
        SessionLayer::new(self.sessions.clone(), self.users.clone(), self.cookies.clone(), &self.settings)
    }
}
