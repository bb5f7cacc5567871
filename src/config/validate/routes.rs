//! `[[routes]]`: prefixes, upstreams and auth modes.

use crate::config::Config;
use crate::config::{RouteAuth, RouteSettings};

pub(super) fn routes(c: &Config, base_path: &str, err: &mut dyn FnMut(&str, String)) -> Vec<RouteSettings> {
    let mut routes = Vec::new();
    for (i, r) in c.routes.iter().enumerate() {
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
        if c.routes[..i].iter().any(|o| o.prefix == r.prefix) {
            err(&key("prefix"), format!("`{}` is listed twice", r.prefix));
        } else if let Some(o) = c.routes[..i].iter().find(|o| o.prefix.eq_ignore_ascii_case(&r.prefix)) {
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
    routes
}
