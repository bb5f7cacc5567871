//! The validated configuration: [`Settings`], every value typed and every derived value
//! resolved. Only [`Config::validate`](super::Config::validate) builds it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::{Config, Mode};
use crate::http::origin::{Origin, OriginPattern};

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

/// `session.store`, with its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionBackend {
    Memory,
    Sqlite,
    Postgres(String),
    Redis(String),
}

/// `users.store`, with its URL (the Django store's options stay in `users.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserBackend {
    Sqlite,
    Postgres(String),
    Django,
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
            UserBackend::Django => "django",
        }
    }
}

/// A validated configuration with every derived value resolved.
#[derive(Clone, Debug)]
pub struct Settings {
    pub raw: Config,
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
    /// Not errors, but worth telling the operator at start (e.g. third-party cookies).
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
    pub fn secret_key(&self) -> std::io::Result<crate::secret::SecretKey> {
        use crate::secret::SecretKey;
        if self.raw.secret_key.is_empty() {
            SecretKey::load_or_create(&self.data_dir.join("secret.key"))
        } else {
            Ok(SecretKey::from_config(&self.raw.secret_key))
        }
    }
}
