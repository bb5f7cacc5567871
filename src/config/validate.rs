//! Validation: every rule in one pure pass, every problem reported with its key and a fix.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::{Config, Mode};
use crate::http::origin::{Origin, OriginPattern};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config key `{}`: {}", self.key, self.message)
    }
}

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

fn is_cookie_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Config {
    /// Check every rule and resolve derived values; all problems are returned at once.
    pub fn validate(&self) -> Result<Settings, Vec<Problem>> {
        let mut p = Vec::new();
        let mut warnings = Vec::new();
        let mut err = |key: &str, message: String| p.push(Problem { key: key.into(), message });

        let listen: SocketAddr = self.server.listen.parse().unwrap_or_else(|_| {
            err(
                "server.listen",
                format!(
                    "`{}` is not an address; write e.g. \"127.0.0.1:8080\" or \"0.0.0.0:8080\"",
                    self.server.listen
                ),
            );
            ([127, 0, 0, 1], 8080).into()
        });
        let admin_listen = match self.server.admin_listen.as_str() {
            "" => None,
            a => a.parse().map(Some).unwrap_or_else(|_| {
                err(
                    "server.admin_listen",
                    format!("`{a}` is not an address; write e.g. \"127.0.0.1:9090\" or leave it empty"),
                );
                None
            }),
        };
        let tls = match (self.server.tls_cert.as_str(), self.server.tls_key.as_str()) {
            ("", "") => None,
            (c, k) if !c.is_empty() && !k.is_empty() => Some((PathBuf::from(c), PathBuf::from(k))),
            _ => {
                err(
                    "server.tls_cert",
                    "set both server.tls_cert and server.tls_key (PEM files) to serve HTTPS, or neither".into(),
                );
                None
            }
        };

        let default_public = format!("{}://{}", if tls.is_some() { "https" } else { "http" }, listen);
        let public_raw = if self.public_url.is_empty() { default_public.as_str() } else { self.public_url.as_str() };
        let public_origin = Origin::parse(public_raw).unwrap_or_else(|| {
            err("public_url", format!("`{public_raw}` is not an origin; write the scheme, host and port browsers use, e.g. \"https://auth.example.com\" (no path)"));
            Origin::parse("http://127.0.0.1:8080").expect("valid")
        });

        if !self.auth.base_path.starts_with('/') || self.auth.base_path.len() < 2 {
            err("auth.base_path", format!("`{}` must be an absolute path such as \"/api/auth\"", self.auth.base_path));
        }
        let base_path = self.auth.base_path.trim_end_matches('/').to_owned();

        let patterns = |key: &str, list: &[String], err: &mut dyn FnMut(&str, String)| -> Vec<OriginPattern> {
            list.iter().filter_map(|s| OriginPattern::parse(s).map_err(|m| err(key, m)).ok()).collect()
        };
        let cors_origins = patterns("cors.allowed_origins", &self.cors.allowed_origins, &mut err);
        let mut trusted_origins = patterns("csrf.trusted_origins", &self.csrf.trusted_origins, &mut err);

        match self.mode {
            Mode::SameOrigin => {
                if !self.cors.allowed_origins.is_empty() {
                    err(
                        "cors.allowed_origins",
                        "CORS is only used in cross-origin mode; set mode = \"cross-origin\" or remove the list".into(),
                    );
                }
            }
            Mode::CrossOrigin => {
                if !public_origin.is_https() && !public_origin.is_loopback() {
                    err(
                        "public_url",
                        format!(
                            "cross-origin mode needs an https public_url (browsers only send cross-origin cookies over HTTPS); `{public_origin}` is plain http"
                        ),
                    );
                }
                if self.cors.allowed_origins.is_empty() {
                    err(
                        "cors.allowed_origins",
                        "cross-origin mode needs the SPA's origin here, e.g. [\"https://app.example.com\"]".into(),
                    );
                }
                if self.csrf.trusted_origins.is_empty() {
                    trusted_origins = cors_origins.clone();
                }
                for o in &cors_origins {
                    if !o.base().same_site(&public_origin) {
                        warnings.push(format!(
                            "cors.allowed_origins: {o} is on another site than {public_origin}: the session cookie becomes a third-party cookie (SameSite=None), which Safari and Brave block, Firefox partitions per site, and Chrome blocks when the user (or a headless default) disables third-party cookies. Serve the SPA from a subdomain of {} or put both behind one origin with nginx.",
                            public_origin.site()
                        ));
                    }
                }
            }
        }

        let secure = match self.cookies.secure {
            super::Auto::Auto => public_origin.is_https(),
            super::Auto::Set(b) => b,
        };
        let any_cross_site =
            self.mode == Mode::CrossOrigin && cors_origins.iter().any(|o| !o.base().same_site(&public_origin));
        let same_site = match self.cookies.same_site.to_ascii_lowercase().as_str() {
            "" | "auto" => {
                if any_cross_site {
                    SameSite::None
                } else {
                    SameSite::Lax
                }
            }
            "lax" => SameSite::Lax,
            "strict" => SameSite::Strict,
            "none" => SameSite::None,
            other => {
                err("cookies.same_site", format!("`{other}` is not one of \"auto\", \"lax\", \"strict\", \"none\""));
                SameSite::Lax
            }
        };
        if same_site == SameSite::None && !secure {
            err("cookies.same_site", "SameSite=None cookies must be Secure: browsers reject them otherwise. Serve public_url over https (cookies.secure = \"auto\") or use same_site = \"lax\"".into());
        }
        let domain =
            Some(self.cookies.domain.trim().trim_start_matches('.').to_ascii_lowercase()).filter(|d| !d.is_empty());
        if let Some(d) = &domain {
            let host = &public_origin.host;
            if host != d && !host.ends_with(&format!(".{d}")) {
                err(
                    "cookies.domain",
                    format!("`{d}` does not contain the public_url host `{host}`: browsers would refuse the cookie"),
                );
            }
        }
        if self.cookies.host_prefix {
            if domain.is_some() {
                err(
                    "cookies.host_prefix",
                    "__Host- cookies cannot have a Domain; remove cookies.domain or turn host_prefix off".into(),
                );
            }
            if !secure {
                err(
                    "cookies.host_prefix",
                    "__Host- cookies must be Secure; serve public_url over https or turn host_prefix off".into(),
                );
            }
        }
        if self.cookies.partitioned {
            if self.mode != Mode::CrossOrigin {
                err("cookies.partitioned", "Partitioned (CHIPS) cookies only make sense in cross-origin mode".into());
            }
            if !secure {
                err("cookies.partitioned", "Partitioned cookies must be Secure; serve public_url over https".into());
            }
        }
        let prefix = if self.cookies.host_prefix { "__Host-" } else { "" };
        for (key, name) in
            [("session.cookie_name", &self.session.cookie_name), ("csrf.cookie_name", &self.csrf.cookie_name)]
        {
            if !is_cookie_name(name) {
                err(key, format!("`{name}` is not a valid cookie name (letters, digits, - _ .)"));
            }
        }
        if self.session.cookie_name == self.csrf.cookie_name {
            err("csrf.cookie_name", "must differ from session.cookie_name".into());
        }
        let csrf_header = http::HeaderName::try_from(self.csrf.header_name.as_str()).unwrap_or_else(|_| {
            err("csrf.header_name", format!("`{}` is not a valid header name", self.csrf.header_name));
            http::HeaderName::from_static("x-csrftoken")
        });

        let trusted_proxies = self
            .server
            .trusted_proxies
            .iter()
            .filter_map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        err(
                            "server.trusted_proxies",
                            format!("`{s}` is not an IP address or CIDR such as \"10.0.0.0/8\""),
                        )
                    })
                    .ok()
            })
            .collect();

        match self.session.store.as_str() {
            "memory" | "sqlite" => {}
            "postgres" | "redis" => {
                let scheme = if self.session.store == "postgres" { "postgres" } else { "redis" };
                if !self.session.url.starts_with(scheme) {
                    err(
                        "session.url",
                        format!(
                            "session.store = \"{}\" needs a {scheme}:// URL in session.url (or SESSIONGATE_SESSION__URL)",
                            self.session.store
                        ),
                    );
                }
            }
            other => {
                err("session.store", format!("`{other}` is not one of \"memory\", \"sqlite\", \"postgres\", \"redis\""))
            }
        }
        match self.users.store.as_str() {
            "sqlite" => {}
            "postgres" => {
                if !self.users.url.starts_with("postgres") {
                    err("users.url", "users.store = \"postgres\" needs a postgres:// URL in users.url".into());
                }
            }
            "django" => {
                if self.users.url.is_empty() {
                    err("users.url", "users.store = \"django\" needs the Django database URL (sqlite:///path/db.sqlite3 or postgres://…) in users.url".into());
                } else if !["sqlite:", "postgres://", "postgresql://"].iter().any(|s| self.users.url.starts_with(s)) {
                    err("users.url", "users.store = \"django\" reads a SQLite file (sqlite:///abs/path/db.sqlite3, sqlite://relative.db) or PostgreSQL (postgres://…)".into());
                }
                if self.auth.signup {
                    err("auth.signup", "the Django user store is read-only: create users in Django (admin, createsuperuser) or set auth.signup = false".into());
                }
            }
            other => err("users.store", format!("`{other}` is not one of \"sqlite\", \"postgres\", \"django\"")),
        }
        if !super::types::is_identifier(&self.users.django_table) {
            err(
                "users.django_table",
                format!(
                    "`{}` must be a plain table name ([A-Za-z_][A-Za-z0-9_]*), e.g. \"auth_user\" or your custom user model's db_table",
                    self.users.django_table
                ),
            );
        }
        if !(1..=10_000_000).contains(&self.users.django_hash_iterations) {
            err(
                "users.django_hash_iterations",
                format!(
                    "{} is outside 1..=10000000; Django 5.2's default is 1000000",
                    self.users.django_hash_iterations
                ),
            );
        }
        if self.users.password_min_length == 0 {
            err(
                "users.password_min_length",
                "must be at least 1 (8 is the default; 15 is recommended without MFA)".into(),
            );
        }
        if let Err(e) = self.users.argon2.build() {
            err(
                "users.argon2",
                format!(
                    "invalid Argon2 parameters: {e}; the defaults are memory_kib = 19456, iterations = 2, parallelism = 1"
                ),
            );
        }

        // Account lifecycle: mail links and transport (see `crate::mail`).
        for (key, v) in [
            ("auth.reset_url", &self.auth.reset_url),
            ("auth.verify_email_url", &self.auth.verify_email_url),
            ("auth.cancel_email_url", &self.auth.cancel_email_url),
        ] {
            if let Err(m) = super::mail::check_link_template(v) {
                err(key, m);
            }
        }
        for (key, d) in [
            ("auth.reset_token_ttl", self.auth.reset_token_ttl.0),
            ("auth.verify_token_ttl", self.auth.verify_token_ttl.0),
        ] {
            if d.is_zero() {
                err(key, "must be longer than zero, e.g. \"30m\"".into());
            }
        }
        if !self.mail.smtp_url.is_empty() {
            if let Err(m) = super::mail::SmtpUrl::parse(&self.mail.smtp_url) {
                err("mail.smtp_url", m);
            }
            if !self.mail.outbox_dir.is_empty() {
                err(
                    "mail.outbox_dir",
                    "set either mail.smtp_url (send) or mail.outbox_dir (write .eml files), not both".into(),
                );
            }
        }
        if !self.mail.from.trim().is_empty()
            && let Err(m) = super::mail::parse_from(&self.mail.from)
        {
            err("mail.from", m);
        }

        let idle_timeout = self.session.idle_timeout.0;
        let absolute_timeout = self.session.absolute_timeout.0;
        if idle_timeout.is_zero() {
            err("session.idle_timeout", "must be longer than zero, e.g. \"14d\"".into());
        }
        if absolute_timeout < idle_timeout {
            err(
                "session.absolute_timeout",
                format!("must be at least session.idle_timeout ({})", humantime::format_duration(idle_timeout)),
            );
        }

        // Every header starting with the prefix is stripped from requests: it must not swallow
        // headers the gateway or upstreams need.
        let id_prefix = self.identity.header_prefix.to_ascii_lowercase().replace('_', "-");
        if id_prefix.len() < 3 || http::HeaderName::try_from(self.identity.header_prefix.as_str()).is_err() {
            err(
                "identity.header_prefix",
                format!(
                    "`{}` must be at least 3 header-name characters, e.g. \"X-Auth-\"",
                    self.identity.header_prefix
                ),
            );
        } else if ["x-forwarded-", "x-csrftoken", "x-requested-with", "x-request-id"]
            .iter()
            .any(|h| h.starts_with(&id_prefix))
        {
            err(
                "identity.header_prefix",
                format!(
                    "`{}` would also strip standard headers (X-Forwarded-*, X-CSRFToken…); use e.g. \"X-Auth-\"",
                    self.identity.header_prefix
                ),
            );
        }

        let mut routes = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let key = |f: &str| format!("routes[{i}].{f}");
            if !r.prefix.starts_with('/') {
                err(&key("prefix"), format!("`{}` must start with '/', e.g. \"/api/\"", r.prefix));
            }
            let bare = r.prefix.trim_end_matches('/');
            if bare == base_path || bare.starts_with(&format!("{base_path}/")) {
                err(
                    &key("prefix"),
                    format!(
                        "`{}` is inside auth.base_path (`{base_path}`), which the auth API answers; choose another prefix or move auth.base_path",
                        r.prefix
                    ),
                );
            }
            if self.routes[..i].iter().any(|o| o.prefix == r.prefix) {
                err(&key("prefix"), format!("`{}` is listed twice", r.prefix));
            } else if let Some(o) = self.routes[..i].iter().find(|o| o.prefix.eq_ignore_ascii_case(&r.prefix)) {
                // Case-insensitive upstreams could not tell them apart: every request to either
                // would be refused as ambiguous (crate::proxy::routes).
                err(&key("prefix"), format!("`{}` differs from `{}` only in case; use one prefix", r.prefix, o.prefix));
            }
            if r.prefix.contains(['%', ';', '\\']) || r.prefix.contains("//") {
                // Paths are matched decoded, with `;` parameters and `//` read every way an
                // upstream might: such a prefix could never be selected unambiguously.
                err(
                    &key("prefix"),
                    format!("`{}` must not contain '%', ';', '\\' or '//'; write it decoded, e.g. \"/api/\"", r.prefix),
                );
            }
            let upstream = match url::Url::parse(&r.upstream) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
                _ => {
                    err(
                        &key("upstream"),
                        format!("`{}` is not an http(s) URL such as \"http://127.0.0.1:8000\"", r.upstream),
                    );
                    None
                }
            };
            let auth = match r.auth.as_str() {
                "required" => RouteAuth::Required,
                "optional" => RouteAuth::Optional,
                "none" => RouteAuth::None,
                other => {
                    err(&key("auth"), format!("`{other}` is not one of \"required\", \"optional\", \"none\""));
                    RouteAuth::Required
                }
            };
            if let Some(upstream) = upstream {
                routes.push(RouteSettings {
                    prefix: r.prefix.clone(),
                    upstream,
                    auth,
                    strip_prefix: r.strip_prefix,
                    timeout: r.timeout.0,
                    max_body: r.max_body.map(|b| b.0),
                });
            }
        }

        // Operations (issue 7): request hygiene, back-off, audit.
        for (key, d) in [
            ("server.header_read_timeout", self.server.header_read_timeout.0),
            ("server.idle_timeout", self.server.idle_timeout.0),
            ("server.request_timeout", self.server.request_timeout.0),
            ("rate_limit.login_backoff_max", self.rate_limit.login_backoff_max.0),
            ("audit.retention", self.audit.retention.0),
        ] {
            if d.is_zero() {
                err(key, "must be longer than zero, e.g. \"10s\"".into());
            }
        }
        if self.server.max_header_bytes.0 < 4096 {
            err(
                "server.max_header_bytes",
                "must be at least 4KiB (browsers send several KiB of cookies and headers); the default is \"64KiB\""
                    .into(),
            );
        }
        if self.server.max_url_bytes.0 < 256 {
            err("server.max_url_bytes", "must be at least 256 bytes; the default is \"8KiB\"".into());
        }
        if self.rate_limit.max_keys < 1000 {
            err(
                "rate_limit.max_keys",
                format!(
                    "`{}` is too small: the limits would forget attackers within seconds; use at least 1000 (the default is 100000)",
                    self.rate_limit.max_keys
                ),
            );
        }
        if self.audit.queue == 0 {
            err("audit.queue", "must be at least 1 (the default is 4096)".into());
        }
        if !self.audit.webhook_url.is_empty() {
            match url::Url::parse(&self.audit.webhook_url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => err(
                    "audit.webhook_url",
                    format!(
                        "`{}` is not an http(s) URL such as \"https://siem.example.com/hook\"",
                        self.audit.webhook_url
                    ),
                ),
            }
            if self.audit.webhook_secret.len() < 16 {
                err(
                    "audit.webhook_secret",
                    "set at least 16 characters (e.g. `openssl rand -hex 32`) with audit.webhook_url: the receiver checks the HMAC-SHA256 signature made with it".into(),
                );
            }
        }

        if !p.is_empty() {
            return Err(p);
        }
        let data_dir = if self.data_dir.as_os_str().is_empty() {
            PathBuf::from("./sessiongate-data")
        } else {
            self.data_dir.clone()
        };
        Ok(Settings {
            raw: self.clone(),
            mode: self.mode,
            public_origin,
            listen,
            admin_listen,
            tls,
            data_dir,
            base_path,
            cookies: CookieSettings {
                session_name: format!("{prefix}{}", self.session.cookie_name),
                csrf_name: format!("{prefix}{}", self.csrf.cookie_name),
                secure,
                same_site,
                domain,
                partitioned: self.cookies.partitioned,
            },
            trusted_origins,
            cors_origins,
            trusted_proxies,
            routes,
            idle_timeout,
            absolute_timeout,
            reauth_window: self.auth.reauth_window.0,
            max_body: self.server.max_body.0,
            csrf_header,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{SameSite, load_str};

    fn problems(toml: &str) -> Vec<String> {
        load_str(toml).unwrap().validate().unwrap_err().into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn defaults_are_valid_and_same_origin_lax() {
        let s = load_str("").unwrap().validate().unwrap();
        assert_eq!(s.public_origin.to_string(), "http://127.0.0.1:8080");
        assert_eq!(s.cookies.same_site, SameSite::Lax);
        assert!(!s.cookies.secure);
        assert_eq!(s.cookies.session_name, "sessionid");
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn all_problems_reported_at_once_with_keys() {
        let p = problems(
            "[server]\nlisten = \"nowhere\"\n[session]\nstore = \"mongo\"\n[[routes]]\nprefix = \"api\"\nupstream = \"ftp://x\"\n",
        );
        let all = p.join("\n");
        for key in ["server.listen", "session.store", "routes[0].prefix", "routes[0].upstream"] {
            assert!(all.contains(&format!("`{key}`")), "{key} missing in {all}");
        }
    }

    #[test]
    fn identity_prefix_and_route_prefixes_checked() {
        for bad in ["", "X-", "X-Forwarded-", "X-CSRF", "X Auth"] {
            let p = problems(&format!("[identity]\nheader_prefix = \"{bad}\"\n"));
            assert!(p.iter().any(|m| m.contains("`identity.header_prefix`")), "{bad}: {p:?}");
        }
        for bad in ["/a%20b/", "/a;b/", "/a\\\\b/", "//api/"] {
            let p = problems(&format!("[[routes]]\nprefix = \"{bad}\"\nupstream = \"http://127.0.0.1:8000\"\n"));
            assert!(p.iter().any(|m| m.contains("`routes[0].prefix`") && m.contains("decoded")), "{bad}: {p:?}");
        }
        let p = problems(
            "[[routes]]\nprefix = \"/api/\"\nupstream = \"http://a\"\n[[routes]]\nprefix = \"/API/\"\nupstream = \"http://b\"\n",
        );
        assert!(p.iter().any(|m| m.contains("`routes[1].prefix`") && m.contains("only in case")), "{p:?}");
        let p = problems("[[routes]]\nprefix = \"/api/auth/x\"\nupstream = \"http://127.0.0.1:8000\"\n");
        assert!(p.iter().any(|m| m.contains("`routes[0].prefix`") && m.contains("auth.base_path")), "{p:?}");
        assert!(
            load_str("[[routes]]\nprefix = \"/api/\"\nupstream = \"http://127.0.0.1:8000\"\n")
                .unwrap()
                .validate()
                .is_ok()
        );
        assert!(
            load_str("[[routes]]\nprefix = \"/api/authx\"\nupstream = \"http://127.0.0.1:8000\"\n")
                .unwrap()
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn django_store_settings_checked() {
        let ok = "[users]\nstore = \"django\"\nurl = \"sqlite:///srv/app/db.sqlite3\"\n";
        let s = load_str(ok).unwrap().validate().unwrap();
        assert_eq!(s.raw.users.django_table, "auth_user");
        assert_eq!(s.raw.users.django_hash_iterations, 1_000_000);
        assert!(!s.raw.users.django_login_with_email && !s.raw.users.django_rehash_on_login);
        for table in ["auth_user; DROP TABLE x", "1users", "", "a-b", "\"quoted\"", "accounts.user"] {
            let p = problems(&format!("{ok}django_table = '{table}'\n"));
            assert!(p.iter().any(|m| m.contains("`users.django_table`")), "{table}: {p:?}");
        }
        assert!(load_str(&format!("{ok}django_table = \"accounts_User2\"\n")).unwrap().validate().is_ok());
        let p = problems("[users]\nstore = \"django\"\nurl = \"mysql://x/y\"\n");
        assert!(p.iter().any(|m| m.contains("`users.url`")), "{p:?}");
        let p = problems(&format!("{ok}django_hash_iterations = 0\n"));
        assert!(p.iter().any(|m| m.contains("`users.django_hash_iterations`")), "{p:?}");
        let p = problems(&format!("{ok}[auth]\nsignup = true\n"));
        assert!(p.iter().any(|m| m.contains("`auth.signup`")), "{p:?}");
    }

    #[test]
    fn wildcard_cors_origin_refused() {
        let p = problems(
            "mode = \"cross-origin\"\npublic_url = \"https://api.example.com\"\n[cors]\nallowed_origins = [\"*\"]\n",
        );
        assert!(p.iter().any(|m| m.contains("cors.allowed_origins") && m.contains("wildcard")), "{p:?}");
    }

    #[test]
    fn cross_origin_needs_https_except_localhost() {
        let p = problems(
            "mode = \"cross-origin\"\npublic_url = \"http://api.example.com\"\n[cors]\nallowed_origins = [\"http://app.example.com\"]\n",
        );
        assert!(p.iter().any(|m| m.contains("`public_url`") && m.contains("https")), "{p:?}");
        let ok = load_str("mode = \"cross-origin\"\npublic_url = \"http://localhost:8080\"\n[cors]\nallowed_origins = [\"http://localhost:5173\"]\n")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(ok.cookies.same_site, SameSite::Lax, "localhost ports are same-site");
    }

    #[test]
    fn samesite_none_only_for_cross_site_origins() {
        let same_site = load_str("mode = \"cross-origin\"\npublic_url = \"https://api.example.com\"\n[cors]\nallowed_origins = [\"https://app.example.com\"]\n")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(same_site.cookies.same_site, SameSite::Lax);
        assert!(same_site.cookies.secure);
        assert_eq!(same_site.trusted_origins.len(), 1, "trusted origins default to the CORS list");
        let cross = load_str("mode = \"cross-origin\"\npublic_url = \"https://api.example.com\"\n[cors]\nallowed_origins = [\"https://app.other.test\"]\n")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(cross.cookies.same_site, SameSite::None);
        assert!(cross.warnings[0].contains("third-party"), "{:?}", cross.warnings);
    }

    #[test]
    fn samesite_none_without_secure_refused() {
        let p = problems("[cookies]\nsame_site = \"none\"\n");
        assert!(p.iter().any(|m| m.contains("`cookies.same_site`") && m.contains("Secure")), "{p:?}");
    }

    #[test]
    fn host_prefix_with_domain_refused() {
        let p =
            problems("public_url = \"https://example.com\"\n[cookies]\nhost_prefix = true\ndomain = \"example.com\"\n");
        assert!(p.iter().any(|m| m.contains("`cookies.host_prefix`") && m.contains("Domain")), "{p:?}");
    }

    #[test]
    fn host_prefix_renames_cookies() {
        let s = load_str("public_url = \"https://example.com\"\n[cookies]\nhost_prefix = true\n")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(s.cookies.session_name, "__Host-sessionid");
        assert_eq!(s.cookies.csrf_name, "__Host-csrftoken");
    }
}
