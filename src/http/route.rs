//! What a request is aimed at, for metrics labels and audit events: an auth API endpoint (by
//! its path template, e.g. `/sessions/{id}`), a proxy route (by prefix), the health checks, or
//! the SPA. Label values come from a closed set (templates, configured prefixes), never from
//! the raw path, so a scanner cannot blow up the number of time series.

use http::Method;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteClass {
    /// An endpoint of the auth API under `auth.base_path`.
    Auth,
    /// A `[[routes]]` prefix.
    Proxy,
    /// `/healthz`, `/readyz`.
    Health,
    /// Everything else: SPA files and the history fallback, `/.well-known/jwks.json`.
    Spa,
}

impl RouteClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::Auth => "auth",
            RouteClass::Proxy => "proxy",
            RouteClass::Health => "health",
            RouteClass::Spa => "spa",
        }
    }
}

/// The class and a bounded label: the auth endpoint's template (`unknown` for none), the
/// proxy prefix, the health path, or `spa`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    pub class: RouteClass,
    pub route: String,
}

/// Built once from the settings and the auth API's path templates.
#[derive(Clone, Debug)]
pub struct RouteClassifier {
    base: String,
    /// Auth endpoint templates relative to the base path, split in segments.
    templates: Vec<(String, Vec<String>)>,
    /// Proxy prefixes, longest first.
    prefixes: Vec<String>,
}

impl RouteClassifier {
    /// `templates`: the auth API's paths relative to `auth.base_path` (`/login`,
    /// `/sessions/{id}`…), as the OpenAPI description lists them.
    /// `base`: `auth.base_path`; `prefixes`: the `[[routes]]` prefixes.
    pub fn new<'a>(
        base: &str,
        prefixes: impl IntoIterator<Item = &'a str>,
        templates: impl IntoIterator<Item = String>,
    ) -> Self {
        let templates = templates
            .into_iter()
            .map(|t| {
                let segs = t.trim_start_matches('/').split('/').map(str::to_owned).collect();
                (t, segs)
            })
            .collect();
        let mut prefixes: Vec<String> = prefixes.into_iter().map(str::to_owned).collect();
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
        RouteClassifier { base: base.to_owned(), templates, prefixes }
    }

    /// The auth endpoint template `path` falls under, if it is under the base path.
    pub fn auth_template(&self, path: &str) -> Option<&str> {
        let rel = path.strip_prefix(&self.base)?;
        if !(rel.is_empty() || rel.starts_with('/')) {
            return None;
        }
        let segs: Vec<&str> = rel.trim_start_matches('/').split('/').collect();
        let found = self.templates.iter().find(|(_, t)| {
            t.len() == segs.len()
                && t.iter().zip(&segs).all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}') && !s.is_empty()))
        });
        Some(found.map_or("unknown", |(t, _)| t.as_str()))
    }

    pub fn classify(&self, path: &str) -> Classified {
        if let Some(t) = self.auth_template(path) {
            return Classified { class: RouteClass::Auth, route: t.to_owned() };
        }
        if path == "/healthz" || path == "/readyz" {
            return Classified { class: RouteClass::Health, route: path.to_owned() };
        }
        if let Some(p) = self.prefixes.iter().find(|p| path.starts_with(p.as_str())) {
            return Classified { class: RouteClass::Proxy, route: p.clone() };
        }
        Classified { class: RouteClass::Spa, route: "spa".to_owned() }
    }
}

/// A method as a bounded label (`other` for extension methods).
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classifier() -> RouteClassifier {
        RouteClassifier::new(
            "/api/auth",
            ["/api/", "/api/v2/"],
            ["/login", "/sessions/{id}", "/sessions"].map(String::from),
        )
    }

    #[test]
    fn classes_and_bounded_labels() {
        let c = classifier();
        let auth = |r: &str| Classified { class: RouteClass::Auth, route: r.into() };
        assert_eq!(c.classify("/api/auth/login"), auth("/login"));
        assert_eq!(c.classify("/api/auth/sessions/abc"), auth("/sessions/{id}"));
        assert_eq!(c.classify("/api/auth/sessions"), auth("/sessions"));
        assert_eq!(c.classify("/api/auth/sessions/"), auth("unknown"));
        assert_eq!(c.classify("/api/auth/nope/x"), auth("unknown"));
        assert_eq!(c.classify("/api/authx").class, RouteClass::Proxy);
        assert_eq!(c.classify("/api/v2/x").route, "/api/v2/");
        assert_eq!(c.classify("/api/x").route, "/api/");
        assert_eq!(c.classify("/healthz").class, RouteClass::Health);
        assert_eq!(c.classify("/some/page").route, "spa");
    }
}
