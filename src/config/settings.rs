//! The validated configuration: [`Settings`], every value typed and every derived value
//! resolved. Only [`Config::validate`](super::Config::validate) builds it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::{Argon2Params, LinkTemplate, MailSettings, Mode, RateLimit};
use crate::http::origin::{Origin, OriginPattern};
use crate::secret::SecretKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteAuth {
    Required,
    Optional,
    None,
}

#[derive(Clone, Debug)]
pub struct RouteSettings {
    pub prefix: String,
    pub upstream: url::Url,
    pub auth: RouteAuth,
    pub strip_prefix: bool,
    pub timeout: Duration,
    pub max_body: Option<u64>,
}

/// Cookie attributes resolved from `[cookies]`, `[session]`, `[csrf]` and the mode.
#[derive(Clone, Debug)]
pub struct CookieSettings {
    pub session_name: String,
    pub csrf_name: String,
    pub secure: bool,
    pub same_site: SameSite,
    pub domain: Option<String>,
    pub partitioned: bool,
}

/// `session.store`, with its URL (`Debug` shows no credentials).
#[derive(Clone, PartialEq, Eq)]
pub enum SessionBackend {
    Memory,
    Sqlite,
    Postgres(String),
    Redis(String),
}

/// `users.store`, with its URL (and for Django the `users.django_*` options); `Debug` shows no
/// credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum UserBackend {
    Sqlite,
    Postgres(String),
    Django(DjangoSettings),
}

/// `users.store = "django"`: the Django database (`users.url`) and the `users.django_*` options.
#[derive(Clone, PartialEq, Eq)]
pub struct DjangoSettings {
    pub url: String,
    /// A plain SQL identifier (it is interpolated into SQL).
    pub table: String,
    pub login_with_email: bool,
    pub hash_iterations: u32,
    pub rehash_on_login: bool,
}

impl DjangoSettings {
    /// The `[users]` defaults for reading `url`'s `table` (as `import-django` does).
    pub fn read(url: &str, table: &str) -> Self {
        let d = super::Users::default();
        DjangoSettings {
            url: url.to_owned(),
            table: table.to_owned(),
            login_with_email: d.django_login_with_email,
            hash_iterations: d.django_hash_iterations,
            rehash_on_login: d.django_rehash_on_login,
        }
    }
}

/// `[auth]`: the switches, the mailed links and their lifetimes, the TOTP issuer (`auth.base_path`
/// and `auth.reauth_window` are fields of [`Settings`]).
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub signup: bool,
    pub bootstrap_admin: bool,
    pub reset_url: LinkTemplate,
    pub verify_email_url: LinkTemplate,
    pub cancel_email_url: LinkTemplate,
    pub reset_token_ttl: Duration,
    pub verify_token_ttl: Duration,
    /// `auth.totp_issuer` without surrounding white space, else `public_url`'s host.
    pub totp_issuer: String,
}

/// `[identity]`: the identity headers' prefix and whether a signed assertion is added.
#[derive(Clone, Debug)]
pub struct IdentitySettings {
    pub header_prefix: HeaderPrefix,
    pub jwt: bool,
}

/// `identity.header_prefix`, checked: header-name characters, at least 3 of them, and no
/// standard header (X-Forwarded-*, X-CSRFToken…) starts with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderPrefix {
    written: String,
    folded: String,
}

impl HeaderPrefix {
    /// `written`, unchecked: only validation builds one, and keeps it when the rules pass.
    pub(super) fn new(written: &str) -> Self {
        HeaderPrefix { written: written.to_owned(), folded: written.to_ascii_lowercase().replace('_', "-") }
    }

    /// As configured (`X-Auth-`).
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// Lower-cased with `_` as `-` (`x-auth-`): the form header names are compared in.
    pub fn folded(&self) -> &str {
        &self.folded
    }

    /// The header named the prefix followed by `suffix` (`User-Id` gives `x-auth-user-id`).
    pub fn header(&self, suffix: &str) -> http::HeaderName {
        http::HeaderName::try_from(format!("{}{suffix}", self.written))
            .expect("a checked prefix followed by header-name characters")
    }
}

/// `[cors]` beyond the origins ([`Settings::cors_origins`]), checked and normalised.
#[derive(Clone, Debug)]
pub struct CorsSettings {
    /// `"null"` is listed in `cors.allowed_origins`.
    pub allow_null: bool,
    /// Lower-case header names.
    pub allow_headers: Vec<http::HeaderName>,
    pub expose_headers: Vec<http::HeaderName>,
    pub max_age: Duration,
}

/// `[audit]`: where events go and how long rows are kept.
#[derive(Clone, Debug)]
pub struct AuditSettings {
    /// Rows in `audit_events` (false: log lines only).
    pub store: bool,
    pub retention: Duration,
    /// At least 1.
    pub queue: usize,
    /// `audit.webhook_url` with `audit.webhook_secret`; `None` when the URL is empty.
    pub webhook: Option<AuditWebhook>,
}

/// The signed audit webhook: an http(s) URL and the HMAC key (at least 16 bytes). `Debug` shows
/// neither the key nor credentials in the URL.
#[derive(Clone)]
pub struct AuditWebhook {
    pub url: http::Uri,
    secret: Vec<u8>,
}

impl AuditWebhook {
    pub(super) fn new(url: http::Uri, secret: &str) -> Self {
        AuditWebhook { url, secret: secret.as_bytes().to_vec() }
    }

    /// The HMAC-SHA256 key of the `X-Sessiongate-Signature` header.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }
}

impl std::fmt::Debug for AuditWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = self.url.host().unwrap_or("");
        f.debug_struct("AuditWebhook")
            .field("url", &format_args!("{}://{host}{}", self.url.scheme_str().unwrap_or(""), self.url.path()))
            .field("secret", &"..")
            .finish()
    }
}

/// `[server]`'s connection hygiene (the addresses and `max_body` are fields of [`Settings`]).
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_header_bytes: u64,
    pub max_url_bytes: u64,
}

/// `[spa]`: what is served outside the auth API and the routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpaSettings {
    /// `spa.dir = "off"`.
    Off,
    /// `spa.dir = ""`: the built-in demo.
    Demo,
    /// A directory, and the file navigations fall back to as a path from its root
    /// (`spa.fallback` with one leading `/`, e.g. `/index.html`).
    Dir { root: PathBuf, fallback: String },
}

/// `[session]` beyond the store and lifetimes.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// What a login without `remember` gets: a persistent cookie (true) or a browser-session one.
    pub remember_default: bool,
    /// Key prefix for the Redis store (and the Redis rate limits).
    pub key_prefix: String,
}

/// `[users]`'s password settings (the store is [`Settings::user_store`]).
#[derive(Clone, Debug)]
pub struct UserSettings {
    pub password_min_length: usize,
    /// Checked: `argon2::Params` accepts them.
    pub argon2: Argon2Params,
    /// Password hashes that may wait for a worker; 0: 16 per core.
    pub hash_queue: usize,
}

/// A database URL for `Debug`: scheme, host, port and path; user, password and query as `..`.
struct DbUrl<'a>(&'a str);

impl std::fmt::Debug for DbUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Ok(u) = url::Url::parse(self.0) else { return f.write_str("\"..\"") };
        let user = if u.username().is_empty() && u.password().is_none() { "" } else { "..@" };
        let port = u.port().map_or(String::new(), |p| format!(":{p}"));
        let query = if u.query().is_some() { "?.." } else { "" };
        let host = u.host_str().unwrap_or("");
        write!(f, "\"{}://{user}{host}{port}{}{query}\"", u.scheme(), u.path())
    }
}

impl std::fmt::Debug for SessionBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionBackend::Memory => f.write_str("Memory"),
            SessionBackend::Sqlite => f.write_str("Sqlite"),
            SessionBackend::Postgres(url) => f.debug_tuple("Postgres").field(&DbUrl(url)).finish(),
            SessionBackend::Redis(url) => f.debug_tuple("Redis").field(&DbUrl(url)).finish(),
        }
    }
}

impl std::fmt::Debug for UserBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserBackend::Sqlite => f.write_str("Sqlite"),
            UserBackend::Postgres(url) => f.debug_tuple("Postgres").field(&DbUrl(url)).finish(),
            UserBackend::Django(d) => f.debug_tuple("Django").field(d).finish(),
        }
    }
}

impl std::fmt::Debug for DjangoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DjangoSettings")
            .field("url", &DbUrl(&self.url))
            .field("table", &self.table)
            .field("login_with_email", &self.login_with_email)
            .field("hash_iterations", &self.hash_iterations)
            .field("rehash_on_login", &self.rehash_on_login)
            .finish()
    }
}

/// Whether this build has the backend `name` (Cargo features `postgres`, `redis`, `django`).
pub fn is_built(name: &str) -> bool {
    (name != "postgres" || cfg!(feature = "postgres"))
        && (name != "redis" || cfg!(feature = "redis"))
        && (name != "django" || cfg!(feature = "django"))
}

/// The error for a backend this build lacks (validation refuses it first; this is the guard).
pub fn not_built(key: &str, name: &str) -> anyhow::Error {
    anyhow::anyhow!("{key} = \"{name}\" is not in this build: build with `--features {name}` (on by default)")
}

impl SessionBackend {
    pub fn name(&self) -> &'static str {
        match self {
            SessionBackend::Memory => "memory",
            SessionBackend::Sqlite => "sqlite",
            SessionBackend::Postgres(_) => "postgres",
            SessionBackend::Redis(_) => "redis",
        }
    }
}

impl UserBackend {
    pub fn name(&self) -> &'static str {
        match self {
            UserBackend::Sqlite => "sqlite",
            UserBackend::Postgres(_) => "postgres",
            UserBackend::Django(_) => "django",
        }
    }
}

/// A validated configuration with every derived value resolved. `Debug` shows no secret: the
/// `[passkeys]`, resolved: the relying party id and name, and the page origins whose
/// ceremonies are accepted (`true`: with their subdomains, from a `*.` pattern).
#[derive(Clone, Debug, PartialEq)]
pub struct PasskeySettings {
    pub rp_id: String,
    pub rp_name: String,
    pub origins: Vec<(url::Url, bool)>,
}

/// keys print as `..`.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `secret_key`; `None`: `data_dir/secret.key` ([`Settings::secret_key`]).
    pub(super) secret_key: Option<SecretKey>,
    pub mode: Mode,
    pub public_origin: Origin,
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub data_dir: PathBuf,
    pub base_path: String,
    pub cookies: CookieSettings,
    pub trusted_origins: Vec<OriginPattern>,
    pub cors_origins: Vec<OriginPattern>,
    pub trusted_proxies: Vec<IpNet>,
    pub routes: Vec<RouteSettings>,
    pub session_store: SessionBackend,
    pub user_store: UserBackend,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    pub reauth_window: Duration,
    pub max_body: u64,
    pub csrf_header: http::HeaderName,
    /// `csrf.header_name` as configured (checked to be a header name), for messages.
    pub csrf_header_label: String,
    pub cors: CorsSettings,
    pub identity: IdentitySettings,
    pub audit: AuditSettings,
    pub auth: AuthSettings,
    pub mail: MailSettings,
    pub server: ServerSettings,
    pub spa: SpaSettings,
    pub session: SessionSettings,
    pub users: UserSettings,
    /// `[rate_limit]`: every value is a parsed rate, duration or count, checked in validation.
    pub rate_limit: RateLimit,
    /// Not errors, but worth telling the operator at start (e.g. third-party cookies).
    /// The WebAuthn relying party, when passkeys are on and can work here.
    pub passkeys: Option<PasskeySettings>,
    pub warnings: Vec<String>,
}

impl Settings {
    pub fn https(&self) -> bool {
        self.public_origin.is_https()
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("sessiongate.db")
    }

    /// The key this configuration names: `secret_key`, or `data_dir/secret.key` (created when
    /// missing).
    pub fn secret_key(&self) -> std::io::Result<SecretKey> {
        match &self.secret_key {
            Some(key) => Ok(key.clone()),
            None => SecretKey::load_or_create(&self.data_dir.join("secret.key")),
        }
    }
}
