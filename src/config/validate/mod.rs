//! Validation: every rule in one pure pass, every problem reported with its key and a fix;
//! one file per section of the configuration.

mod account;
mod passkeys;
mod routes;
mod server;
mod stores;
mod web;

use std::fmt;
use std::path::PathBuf;

use super::{Config, SessionSettings, Settings};
use crate::secret::SecretKey;

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

impl Config {
    /// Check every rule and resolve derived values; all problems are returned at once, each
    /// naming its key and the fix. One file per section of the configuration.
    pub fn validate(&self) -> Result<Settings, Vec<Problem>> {
        let mut p = Vec::new();
        let mut warnings = Vec::new();
        let mut err = |key: &str, message: String| p.push(Problem { key: key.into(), message });
        let c = self;

        let (listen, admin_listen, tls) = server::addresses(c, &mut err);
        let (public_origin, base_path) = web::public(c, tls.is_some(), listen, &mut err);
        let (cors_origins, mut trusted_origins) = web::origins(c, &public_origin, &mut warnings, &mut err);
        let passkeys =
            passkeys::passkeys(c, &public_origin, &cors_origins, &mut trusted_origins, &mut warnings, &mut err);
        let (cookies, csrf_header) = web::cookies(c, &public_origin, &cors_origins, &mut err);
        let cors = web::cors(c, &mut err);
        let trusted_proxies = server::trusted_proxies(c, &mut err);
        let (session_store, user_store, users) = stores::stores(c, &mut err);
        let data_dir = if self.data_dir.as_os_str().is_empty() {
            PathBuf::from("./sessiongate-data")
        } else {
            self.data_dir.clone()
        };
        let auth = account::auth(c, &public_origin, &mut err);
        let mail = account::mail(c, &public_origin, &data_dir, &mut err);
        let (idle_timeout, absolute_timeout) = account::lifetimes(c, &mut err);
        let identity = account::identity(c, &mut err);
        let routes = routes::routes(c, &base_path, &mut err);
        let server = server::hygiene(c, &mut err);
        let audit = server::operations(c, &mut err);
        let spa = web::spa(c, &mut err);

        if !p.is_empty() {
            return Err(p);
        }
        Ok(Settings {
            secret_key: (!self.secret_key.is_empty()).then(|| SecretKey::from_config(&self.secret_key)),
            mode: self.mode,
            public_origin,
            listen,
            admin_listen,
            tls,
            data_dir,
            base_path,
            cookies,
            trusted_origins,
            cors_origins,
            trusted_proxies,
            routes,
            session_store,
            user_store,
            idle_timeout,
            absolute_timeout,
            reauth_window: self.auth.reauth_window.0,
            max_body: self.server.max_body.0,
            csrf_header,
            csrf_header_label: self.csrf.header_name.clone(),
            cors,
            identity,
            audit,
            auth,
            mail,
            server,
            spa,
            session: SessionSettings {
                remember_default: self.session.remember_default,
                key_prefix: self.session.key_prefix.clone(),
            },
            users,
            rate_limit: self.rate_limit.clone(),
            passkeys,
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
    fn secrets_are_kept_typed_and_never_printed() {
        let s = load_str(
            "secret_key = \"k-SECRET-KEY\"\n[audit]\nwebhook_url = \"https://user:HOOKPASS@siem.example.com/hook\"\nwebhook_secret = \"HOOK-SECRET-0123456\"\n[mail]\nsmtp_url = \"smtp://user:SMTPPASS@mail.example.com\"\n",
        )
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(s.secret_key().unwrap().bytes(), b"k-SECRET-KEY");
        let shown = format!("{s:?}");
        for secret in ["SECRET-KEY", "HOOKPASS", "HOOK-SECRET", "SMTPPASS"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    #[cfg(all(feature = "postgres", feature = "redis"))]
    fn store_urls_print_without_credentials() {
        let s = load_str(
            "[session]\nstore = \"redis\"\nurl = \"redis://:REDISPASS@127.0.0.1:6379/0\"\n[users]\nstore = \"postgres\"\nurl = \"postgres://sg:PGPASS@db.internal/sg?password=QPASS\"\n",
        )
        .unwrap()
        .validate()
        .unwrap();
        let shown = format!("{s:?}");
        for secret in ["REDISPASS", "PGPASS", "QPASS"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(format!("{:?}", s.session_store), "Redis(\"redis://..@127.0.0.1:6379/0\")");
        assert_eq!(format!("{:?}", s.user_store), "Postgres(\"postgres://..@db.internal/sg?..\")");
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
    #[cfg(feature = "django")]
    fn django_store_settings_checked() {
        let ok = "[users]\nstore = \"django\"\nurl = \"sqlite:///srv/app/db.sqlite3\"\n";
        let s = load_str(ok).unwrap().validate().unwrap();
        let crate::config::UserBackend::Django(d) = &s.user_store else { panic!("{:?}", s.user_store) };
        assert_eq!(d.table, "auth_user");
        assert_eq!(d.hash_iterations, 1_000_000);
        assert!(!d.login_with_email && !d.rehash_on_login);
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

    /// A backend left out of the build is a configuration error naming the feature.
    #[test]
    #[cfg(not(feature = "redis"))]
    fn a_backend_not_built_is_refused_with_the_feature_to_add() {
        let p = problems("[session]\nstore = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n");
        assert!(p.iter().any(|m| m.contains("`session.store`") && m.contains("--features redis")), "{p:?}");
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
