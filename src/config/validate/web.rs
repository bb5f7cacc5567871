//! The public origin, the mode's origins (CORS, CSRF) and the cookie attributes.

use crate::config::{Config, CookieSettings, CorsSettings, Mode, SameSite, SpaSettings};
use crate::http::origin::{Origin, OriginPattern};

/// `public_url` (default: the listen address) and `auth.base_path` without a trailing `/`.
pub(super) fn public(
    c: &Config,
    https: bool,
    listen: std::net::SocketAddr,
    err: &mut dyn FnMut(&str, String),
) -> (Origin, String) {
    let default_public = format!("{}://{}", if https { "https" } else { "http" }, listen);
    let public_raw = if c.public_url.is_empty() { default_public.as_str() } else { c.public_url.as_str() };
    let public_origin = Origin::parse(public_raw).unwrap_or_else(|| {
        err("public_url", format!("`{public_raw}` is not an origin; write the scheme, host and port browsers use, e.g. \"https://auth.example.com\" (no path)"));
        Origin::parse("http://127.0.0.1:8080").expect("valid")
    });

    if !c.auth.base_path.starts_with('/') || c.auth.base_path.len() < 2 {
        err("auth.base_path", format!("`{}` must be an absolute path such as \"/api/auth\"", c.auth.base_path));
    }
    let base_path = c.auth.base_path.trim_end_matches('/').to_owned();
    (public_origin, base_path)
}

/// `cors.allowed_origins` and `csrf.trusted_origins` (in cross-origin mode, defaulting to the
/// CORS list); a warning for each SPA origin on another site.
pub(super) fn origins(
    c: &Config,
    public_origin: &Origin,
    warnings: &mut Vec<String>,
    err: &mut dyn FnMut(&str, String),
) -> (Vec<OriginPattern>, Vec<OriginPattern>) {
    let patterns = |key: &str, list: &[String], err: &mut dyn FnMut(&str, String)| -> Vec<OriginPattern> {
        list.iter().filter_map(|s| OriginPattern::parse(s).map_err(|m| err(key, m)).ok()).collect()
    };
    let cors_origins = patterns("cors.allowed_origins", &c.cors.allowed_origins, err);
    let mut trusted_origins = patterns("csrf.trusted_origins", &c.csrf.trusted_origins, err);

    match c.mode {
        Mode::SameOrigin => {
            if !c.cors.allowed_origins.is_empty() {
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
            if c.cors.allowed_origins.is_empty() {
                err(
                    "cors.allowed_origins",
                    "cross-origin mode needs the SPA's origin here, e.g. [\"https://app.example.com\"]".into(),
                );
            }
            if c.csrf.trusted_origins.is_empty() {
                trusted_origins = cors_origins.clone();
            }
            for o in &cors_origins {
                if !o.base().same_site(public_origin) {
                    warnings.push(format!(
                        "cors.allowed_origins: {o} is on another site than {public_origin}: the session cookie becomes a third-party cookie (SameSite=None), which Safari and Brave block, Firefox partitions per site, and Chrome blocks when the user (or a headless default) disables third-party cookies. Serve the SPA from a subdomain of {} or put both behind one origin with nginx.",
                        public_origin.site()
                    ));
                }
            }
        }
    }
    (cors_origins, trusted_origins)
}

/// `[cookies]` with the session and CSRF cookie names, and `csrf.header_name`.
pub(super) fn cookies(
    c: &Config,
    public_origin: &Origin,
    cors_origins: &[OriginPattern],
    err: &mut dyn FnMut(&str, String),
) -> (CookieSettings, http::HeaderName) {
    let secure = match c.cookies.secure {
        crate::config::Auto::Auto => public_origin.is_https(),
        crate::config::Auto::Set(b) => b,
    };
    let any_cross_site = c.mode == Mode::CrossOrigin && cors_origins.iter().any(|o| !o.base().same_site(public_origin));
    let same_site = match c.cookies.same_site.to_ascii_lowercase().as_str() {
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
    let domain = Some(c.cookies.domain.trim().trim_start_matches('.').to_ascii_lowercase()).filter(|d| !d.is_empty());
    if let Some(d) = &domain {
        let host = &public_origin.host;
        if host != d && !host.ends_with(&format!(".{d}")) {
            err(
                "cookies.domain",
                format!("`{d}` does not contain the public_url host `{host}`: browsers would refuse the cookie"),
            );
        }
    }
    if c.cookies.host_prefix {
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
    if c.cookies.partitioned {
        if c.mode != Mode::CrossOrigin {
            err("cookies.partitioned", "Partitioned (CHIPS) cookies only make sense in cross-origin mode".into());
        }
        if !secure {
            err("cookies.partitioned", "Partitioned cookies must be Secure; serve public_url over https".into());
        }
    }
    let prefix = if c.cookies.host_prefix { "__Host-" } else { "" };
    for (key, name) in [("session.cookie_name", &c.session.cookie_name), ("csrf.cookie_name", &c.csrf.cookie_name)] {
        if !is_cookie_name(name) {
            err(key, format!("`{name}` is not a valid cookie name (letters, digits, - _ .)"));
        }
    }
    if c.session.cookie_name == c.csrf.cookie_name {
        err("csrf.cookie_name", "must differ from session.cookie_name".into());
    }
    let csrf_header = http::HeaderName::try_from(c.csrf.header_name.as_str()).unwrap_or_else(|_| {
        err("csrf.header_name", format!("`{}` is not a valid header name", c.csrf.header_name));
        http::HeaderName::from_static("x-csrftoken")
    });
    let cookies = CookieSettings {
        session_name: format!("{prefix}{}", c.session.cookie_name),
        csrf_name: format!("{prefix}{}", c.csrf.cookie_name),
        secure,
        same_site,
        domain,
        partitioned: c.cookies.partitioned,
    };
    (cookies, csrf_header)
}

fn is_cookie_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `[cors]`'s header lists and max age (the origins are read by [`origins`]).
pub(super) fn cors(c: &Config, err: &mut dyn FnMut(&str, String)) -> CorsSettings {
    let names = |key: &str, list: &[String], err: &mut dyn FnMut(&str, String)| -> Vec<http::HeaderName> {
        list.iter()
            .filter_map(|h| {
                http::HeaderName::try_from(h.trim())
                    .map_err(|_| {
                        err(
                            key,
                            format!(
                                "`{h}` is not a header name (letters, digits and !#$%&'*+-.^_`|~); write e.g. \"content-type\""
                            ),
                        )
                    })
                    .ok()
            })
            .collect()
    };
    CorsSettings {
        allow_null: c.cors.allowed_origins.iter().any(|o| o == "null"),
        allow_headers: names("cors.allow_headers", &c.cors.allow_headers, err),
        expose_headers: names("cors.expose_headers", &c.cors.expose_headers, err),
        max_age: c.cors.max_age.0,
    }
}

/// `[spa]`: the demo, nothing, or a directory with its history fallback.
pub(super) fn spa(c: &Config, err: &mut dyn FnMut(&str, String)) -> SpaSettings {
    match c.spa.dir.as_str() {
        "" => SpaSettings::Demo,
        "off" => SpaSettings::Off,
        dir => {
            let fallback = format!("/{}", c.spa.fallback.trim_start_matches('/'));
            if fallback.parse::<http::Uri>().is_err() {
                err(
                    "spa.fallback",
                    format!(
                        "`{}` is not a file path in spa.dir (spaces and other characters must be percent-encoded); the default is \"index.html\"",
                        c.spa.fallback
                    ),
                );
            }
            SpaSettings::Dir { root: dir.into(), fallback }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{SpaSettings, load_str};

    fn problems(toml: &str) -> Vec<String> {
        load_str(toml).unwrap().validate().unwrap_err().into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn spa_fallback_is_an_absolute_path_checked_once() {
        let s = load_str("[spa]\ndir = \"/srv/app\"\nfallback = \"index.html\"\n").unwrap().validate().unwrap();
        assert_eq!(s.spa, SpaSettings::Dir { root: "/srv/app".into(), fallback: "/index.html".into() });
        let s = load_str("[spa]\ndir = \"/srv/app\"\nfallback = \"//app/start.html\"\n").unwrap().validate().unwrap();
        assert_eq!(s.spa, SpaSettings::Dir { root: "/srv/app".into(), fallback: "/app/start.html".into() });
        let p = problems("[spa]\ndir = \"/srv/app\"\nfallback = \"my index.html\"\n");
        assert!(p.iter().any(|m| m.contains("`spa.fallback`") && m.contains("`my index.html`")), "{p:?}");
        // Unused without a directory.
        assert_eq!(
            load_str("[spa]\nfallback = \"my index.html\"\n").unwrap().validate().unwrap().spa,
            SpaSettings::Demo
        );
    }

    #[test]
    fn cors_header_lists_are_header_names_lower_cased() {
        let s = load_str(
            "[cors]\nallow_headers = [\" Content-Type\", \"X-CSRFToken\"]\nexpose_headers = [\"X-Request-Id\"]\n",
        )
        .unwrap()
        .validate()
        .unwrap();
        let names = |v: &[http::HeaderName]| v.iter().map(|h| h.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(names(&s.cors.allow_headers), ["content-type", "x-csrftoken"]);
        assert_eq!(names(&s.cors.expose_headers), ["x-request-id"]);
        for key in ["allow_headers", "expose_headers"] {
            let p = problems(&format!("[cors]\n{key} = [\"content-type\", \"x y\"]\n"));
            assert!(p.iter().any(|m| m.contains(&format!("`cors.{key}`")) && m.contains("`x y`")), "{p:?}");
        }
    }
}
