//! Reading configuration: defaults < `sessiongate.toml` < `SESSIONGATE_*` environment < flags.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};

use super::Config;

/// Values given on the command line; they win over everything else.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub spa_dir: Option<String>,
    /// `PREFIX=URL` pairs from `--route`.
    pub routes: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("config file {0} not found")]
    Missing(PathBuf),
    #[error("{0}")]
    Invalid(String),
}

/// Load from `path` (if given it must exist; if not, `sessiongate.toml` is used when present)
/// plus the environment and `overrides`.
pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, LoadError> {
    let file = match path {
        Some(p) if !p.exists() => return Err(LoadError::Missing(p.to_path_buf())),
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from("sessiongate.toml")).filter(|p| p.exists()),
    };
    let mut fig = Figment::new();
    if let Some(f) = &file {
        fig = fig.merge(Toml::file_exact(f));
    }
    // SESSIONGATE_LOG_FORMAT is read before configuration loads (logging starts first).
    fig = fig.merge(Env::prefixed("SESSIONGATE_").ignore(&["log_format"]).split("__"));
    finish(fig, overrides)
}

/// Load from a TOML string (tests, `init` round-trips); the environment is ignored.
pub fn load_str(toml: &str) -> Result<Config, LoadError> {
    finish(Figment::new().merge(Toml::string(toml)), &Overrides::default())
}

fn finish(fig: Figment, o: &Overrides) -> Result<Config, LoadError> {
    let mut cfg: Config = fig.extract().map_err(|e| LoadError::Invalid(describe(e)))?;
    if let Some(l) = &o.listen {
        cfg.server.listen = l.clone();
    }
    if let Some(d) = &o.spa_dir {
        cfg.spa.dir = d.clone();
    }
    for (prefix, upstream) in &o.routes {
        cfg.routes.push(super::Route { prefix: prefix.clone(), upstream: upstream.clone(), ..Default::default() });
    }
    Ok(cfg)
}

/// One line per problem, each naming the key (dotted path) and where it came from.
fn describe(errors: figment::Error) -> String {
    errors
        .into_iter()
        .map(|e| {
            let mut key = e.path.join(".");
            let msg = match &e.kind {
                figment::error::Kind::UnknownField(field, _) => {
                    if e.path.last() != Some(field) {
                        if !key.is_empty() {
                            key.push('.');
                        }
                        key.push_str(field);
                    }
                    "unknown key; remove it or check its spelling against `sessiongate init` output".to_string()
                }
                other => other.to_string(),
            };
            let origin = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(src) => format!(" (from {src})"),
                    None => format!(" (from {})", m.name),
                })
                .unwrap_or_default();
            format!("config key `{key}`: {msg}{origin}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let e = load_str("[session]\nidle_timout = \"1h\"\n").unwrap_err().to_string();
        assert!(e.contains("`session.idle_timout`"), "{e}");
        assert!(e.contains("unknown key"), "{e}");
    }

    #[test]
    fn bad_duration_is_named() {
        let e = load_str("[session]\nidle_timeout = \"soon\"\n").unwrap_err().to_string();
        assert!(e.contains("session.idle_timeout"), "{e}");
        assert!(e.contains("\"30s\""), "{e}");
    }

    #[test]
    fn defaults_apply_to_missing_keys() {
        let c = load_str("[session]\nidle_timeout = \"1h\"\n").unwrap();
        assert_eq!(c.session.idle_timeout.0.as_secs(), 3600);
        assert_eq!(c.session.cookie_name, "sessionid");
        assert_eq!(c.auth.base_path, "/api/auth");
    }

    #[test]
    fn routes_parse() {
        let c = load_str("[[routes]]\nprefix = \"/api/\"\nupstream = \"http://127.0.0.1:8000\"\n").unwrap();
        assert_eq!(c.routes.len(), 1);
        assert_eq!(c.routes[0].auth, "required");
    }
}
