//! Configuration: the TOML schema (SPEC §3), loading from file + `SESSIONGATE_*` environment +
//! flags, and validation that reports every problem at once with the key and the fix.
//!
//! Loading is two-phase: [`load`] produces the raw [`Config`] (serde, unknown keys refused), and
//! [`Config::validate`] turns it into a [`Settings`] with every derived value resolved (public
//! origin, cookie attributes, trusted origins) — or a list of [`Problem`]s. `Settings` keeps no
//! copy of the `Config`: every value the rest of the crate reads is in it typed, parsed and
//! checked once (mailed links, the `From` mailbox, header names), with secrets that never print.

mod load;
pub mod mail;
mod template;
pub mod types;

pub use mail::{LinkTemplate, MailSettings, MailTransport};
pub use types::Argon2Params;
mod settings;
mod validate;

pub use load::{LoadError, Overrides, load, load_str};
pub use settings::{
    AuditSettings, AuditWebhook, AuthSettings, CookieSettings, CorsSettings, DjangoSettings, HeaderPrefix,
    IdentitySettings, PasskeySettings, RouteAuth, RouteSettings, SameSite, ServerSettings, SessionBackend,
    SessionSettings, Settings, SpaSettings, UserBackend, UserSettings, is_built, not_built,
};
pub use template::template;
pub use types::{Auto, ByteSize, HumanDuration, Rate};
pub use validate::Problem;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The SPA is served from the same origin as the gateway (embedded, or behind one proxy).
    #[default]
    SameOrigin,
    /// The SPA runs on another origin and calls the gateway with CORS + credentials.
    CrossOrigin,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub mode: Mode,
    /// Origin browsers use to reach sessiongate; empty: `http://` + `server.listen`.
    pub public_url: String,
    pub data_dir: PathBuf,
    /// Empty: read or create `data_dir/secret.key`.
    pub secret_key: String,
    pub server: Server,
    pub spa: Spa,
    pub routes: Vec<Route>,
    pub auth: Auth,
    pub session: SessionConfig,
    pub csrf: Csrf,
    pub cookies: Cookies,
    pub cors: Cors,
    pub users: Users,
    pub rate_limit: RateLimit,
    pub identity: Identity,
    pub mail: Mail,
    pub audit: Audit,
    pub passkeys: Passkeys,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub listen: String,
    pub tls_cert: String,
    pub tls_key: String,
    pub trusted_proxies: Vec<String>,
    pub admin_listen: String,
    pub max_body: ByteSize,
    /// Time a client gets to send a complete request head (slowloris defence); 408 / close after.
    pub header_read_timeout: HumanDuration,
    /// Time a connection may stay open with no request in flight after its first request.
    pub idle_timeout: HumanDuration,
    /// Largest request head (request line + headers); larger gets 431.
    pub max_header_bytes: ByteSize,
    /// Longest request target (path + query); longer gets 414.
    pub max_url_bytes: ByteSize,
    /// Time an auth API request may take, body upload included (slow-body defence); 408 after.
    pub request_timeout: HumanDuration,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "127.0.0.1:8080".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
            trusted_proxies: Vec::new(),
            admin_listen: String::new(),
            max_body: ByteSize(1 << 20),
            header_read_timeout: HumanDuration::secs(10),
            idle_timeout: HumanDuration::secs(60),
            max_header_bytes: ByteSize(64 << 10),
            max_url_bytes: ByteSize(8 << 10),
            request_timeout: HumanDuration::secs(30),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Spa {
    /// Empty: the built-in demo; `"off"`: no SPA.
    pub dir: String,
    pub fallback: String,
}

impl Default for Spa {
    fn default() -> Self {
        Spa { dir: String::new(), fallback: "index.html".into() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    pub prefix: String,
    pub upstream: String,
    pub auth: String,
    pub strip_prefix: bool,
    pub timeout: HumanDuration,
    /// Largest request body forwarded; unset: unlimited (streamed).
    pub max_body: Option<ByteSize>,
}

impl Default for Route {
    fn default() -> Self {
        Route {
            prefix: String::new(),
            upstream: String::new(),
            auth: "required".into(),
            strip_prefix: false,
            timeout: HumanDuration::secs(30),
            max_body: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    pub base_path: String,
    pub signup: bool,
    pub bootstrap_admin: bool,
    pub reauth_window: HumanDuration,
    /// The password-reset link mailed to users: a path on `public_url` or an absolute http(s)
    /// URL (cross-origin SPAs); `{token}` is replaced by the token, else it is appended.
    pub reset_url: String,
    /// The email-verification link, same rules as `reset_url`.
    pub verify_email_url: String,
    /// The link in the notice to the old address that cancels an email change, same rules.
    pub cancel_email_url: String,
    /// How long a password-reset link works.
    pub reset_token_ttl: HumanDuration,
    /// How long an email-verification link works.
    pub verify_token_ttl: HumanDuration,
    /// The issuer shown in authenticator apps; empty: `public_url`'s host.
    pub totp_issuer: String,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            base_path: "/api/auth".into(),
            signup: false,
            bootstrap_admin: true,
            reauth_window: HumanDuration::secs(600),
            reset_url: "/#/reset?token=".into(),
            verify_email_url: "/#/verify-email?token=".into(),
            cancel_email_url: "/#/cancel-email?token=".into(),
            reset_token_ttl: HumanDuration::secs(1800),
            verify_token_ttl: HumanDuration::secs(86400),
            totp_issuer: String::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub store: String,
    pub url: String,
    pub cookie_name: String,
    pub idle_timeout: HumanDuration,
    pub absolute_timeout: HumanDuration,
    pub remember_default: bool,
    /// Key prefix for the Redis store.
    pub key_prefix: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            store: "sqlite".into(),
            url: String::new(),
            cookie_name: "sessionid".into(),
            idle_timeout: HumanDuration::secs(14 * 86400),
            absolute_timeout: HumanDuration::secs(30 * 86400),
            remember_default: true,
            key_prefix: "sessiongate:".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Csrf {
    pub cookie_name: String,
    pub header_name: String,
    pub trusted_origins: Vec<String>,
}

impl Default for Csrf {
    fn default() -> Self {
        Csrf { cookie_name: "csrftoken".into(), header_name: "X-CSRFToken".into(), trusted_origins: Vec::new() }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cookies {
    pub domain: String,
    pub secure: Auto<bool>,
    /// `auto`, `lax`, `strict` or `none`.
    pub same_site: String,
    pub host_prefix: bool,
    pub partitioned: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cors {
    pub allowed_origins: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: HumanDuration,
}

impl Default for Cors {
    fn default() -> Self {
        Cors {
            allowed_origins: Vec::new(),
            allow_headers: vec!["content-type".into(), "x-csrftoken".into(), "x-requested-with".into()],
            expose_headers: Vec::new(),
            max_age: HumanDuration::secs(600),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Users {
    pub store: String,
    pub url: String,
    pub password_min_length: usize,
    pub argon2: Argon2Params,
    /// `store = "django"`: the user table (a custom user model's `db_table`); a plain SQL
    /// identifier.
    pub django_table: String,
    /// `store = "django"`: also accept the email address at login (case-insensitive; refused when
    /// several accounts share it).
    pub django_login_with_email: bool,
    /// `store = "django"`: PBKDF2-SHA256 iterations of the hashes sessiongate writes (password
    /// changes); Django 5.2 LTS's default.
    pub django_hash_iterations: u32,
    /// `store = "django"`: rewrite other hashes (md5, bcrypt, fewer iterations…) as
    /// `pbkdf2_sha256` after a successful login, as Django's own login does. Off by default:
    /// Django ends a user's Django sessions when their hash changes.
    pub django_rehash_on_login: bool,
    /// Password hashes that may wait for a worker (one worker per core); beyond it, 503
    /// `overloaded` at once. 0: 16 per core.
    pub hash_queue: usize,
}

impl Default for Users {
    fn default() -> Self {
        Users {
            store: "sqlite".into(),
            url: String::new(),
            password_min_length: 8,
            argon2: Argon2Params::default(),
            django_table: "auth_user".into(),
            django_login_with_email: false,
            django_hash_iterations: 1_000_000,
            django_rehash_on_login: false,
            hash_queue: 0,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    pub login_per_ip: Rate,
    pub login_per_account: Rate,
    pub signup_per_ip: Rate,
    pub reset_per_ip: Rate,
    /// Reset mails per address; beyond it requests are still answered 202 but send nothing.
    pub reset_per_address: Rate,
    /// Failed second-factor codes (login, reauth) per account.
    pub mfa_per_account: Rate,
    /// Passkey ceremony starts per IP (each stores a ceremony for 5 minutes). Apart from
    /// `login_per_ip`: a login page that offers passkey autofill starts one on every view.
    pub passkey_start_per_ip: Rate,
    /// Longest lock of the per-account, per-IP exponential back-off (`login_per_account`).
    pub login_backoff_max: HumanDuration,
    /// Failed logins for one account from all IPs together; beyond it only IPs that logged in
    /// to that account before may try (see docs/security.md).
    pub login_account_ceiling: Rate,
    /// Most keys (IPs, accounts) each in-process limiter tracks; at the bound the least active
    /// tenth is dropped (`crate::ratelimit::bounded`). Redis keys expire instead.
    pub max_keys: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        use std::time::Duration;
        let r = |count, secs| Rate { count, per: Duration::from_secs(secs) };
        RateLimit {
            login_per_ip: r(30, 60),
            login_per_account: r(10, 60),
            signup_per_ip: r(10, 3600),
            reset_per_ip: r(10, 3600),
            reset_per_address: r(3, 3600),
            mfa_per_account: r(5, 300),
            passkey_start_per_ip: r(120, 60),
            login_backoff_max: HumanDuration::secs(3600),
            login_account_ceiling: r(100, 3600),
            max_keys: 100_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Identity {
    pub header_prefix: String,
    pub jwt: bool,
}

impl Default for Identity {
    fn default() -> Self {
        Identity { header_prefix: "X-Auth-".into(), jwt: false }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mail {
    pub smtp_url: String,
    pub from: String,
    pub outbox_dir: String,
}

/// `[passkeys]`: WebAuthn logins (docs/passkeys-and-oidc.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Passkeys {
    pub enabled: bool,
    /// The WebAuthn relying party id: the domain of the pages that call `navigator.credentials`,
    /// or a parent domain of theirs. Empty: `public_url`'s host, or in cross-origin mode the site
    /// of the first allowed SPA origin. Changing it orphans every registered passkey.
    pub rp_id: String,
    /// The name the browser's passkey dialog shows. Empty: the rp id.
    pub rp_name: String,
}

impl Default for Passkeys {
    fn default() -> Self {
        Passkeys { enabled: true, rp_id: String::new(), rp_name: String::new() }
    }
}

/// `[audit]`: the authentication event log (see `crate::audit`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// Write events to the `audit_events` table of the SQL database the user store (else the
    /// session store) uses; false: structured log lines only.
    pub store: bool,
    /// Rows older than this are deleted (hourly).
    pub retention: HumanDuration,
    /// Events waiting for the background writer; beyond it they are dropped (counted, warned).
    pub queue: usize,
    /// POST every event as JSON to this URL (background, bounded retries); empty: off.
    pub webhook_url: String,
    /// HMAC-SHA256 key for the `X-Sessiongate-Signature: sha256=…` header; required with
    /// `webhook_url`.
    pub webhook_secret: String,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            store: true,
            retention: HumanDuration::secs(90 * 86400),
            queue: 4096,
            webhook_url: String::new(),
            webhook_secret: String::new(),
        }
    }
}
