//! `[passkeys]`: the WebAuthn relying party (its id, name and the page origins it accepts).

use crate::config::PasskeySettings;
use crate::config::{Config, Mode};
use crate::http::origin::{Origin, OriginPattern};

/// None when passkeys are off, or (with a derived rp id) cannot work here, which `warnings` says.
/// The loopback default's `http://localhost:PORT` joins `trusted_origins`.
pub(super) fn passkeys(
    c: &Config,
    public_origin: &Origin,
    cors_origins: &[OriginPattern],
    trusted_origins: &mut Vec<OriginPattern>,
    warnings: &mut Vec<String>,
    err: &mut dyn FnMut(&str, String),
) -> Option<PasskeySettings> {
    let cfg = &c.passkeys;
    if !cfg.enabled {
        return None;
    }
    // The pages that run the ceremonies: the gateway's own, or in cross-origin mode the SPA's.
    // A `*.` pattern stands for its parent domain and every subdomain.
    let pages: Vec<(Origin, bool)> = match c.mode {
        Mode::CrossOrigin => cors_origins
            .iter()
            .map(|p| match p {
                OriginPattern::Exact(o) => (o.clone(), false),
                OriginPattern::Subdomains(o) => (o.clone(), true),
            })
            .collect(),
        Mode::SameOrigin => vec![(public_origin.clone(), false)],
    };
    let explicit = !cfg.rp_id.trim().is_empty();
    if let Some(alias) = loopback_alias(c, public_origin).filter(|_| !explicit) {
        // WebAuthn needs a name: the default `http://127.0.0.1:PORT` gets its passkeys on
        // `http://localhost:PORT` (the same listener), trusted for CSRF too.
        let url = url::Url::parse(&alias.to_string()).expect("an origin is a URL");
        trusted_origins.push(OriginPattern::Exact(alias));
        let rp_name =
            if cfg.rp_name.trim().is_empty() { "localhost".to_owned() } else { cfg.rp_name.trim().to_owned() };
        return Some(PasskeySettings { rp_id: "localhost".into(), rp_name, origins: vec![(url, false)] });
    }
    let rp_id = if explicit {
        cfg.rp_id.trim().trim_end_matches('.').to_ascii_lowercase()
    } else {
        match (c.mode, pages.first()) {
            (Mode::CrossOrigin, Some((o, _))) => o.site(),
            _ => public_origin.host.clone(),
        }
    };
    let off = |why: String, warnings: &mut Vec<String>, err: &mut dyn FnMut(&str, String)| {
        if explicit {
            err("passkeys.rp_id", why);
        } else {
            warnings.push(format!("passkeys are off: {why}; set passkeys.rp_id, or passkeys.enabled = false"));
        }
        None
    };
    let host = rp_id.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<std::net::IpAddr>().is_ok() || !rp_id.contains(|ch: char| ch.is_ascii_alphabetic()) {
        return off(
            format!(
                "`{rp_id}` is not a domain name (WebAuthn refuses IP addresses); serve the pages under a name, e.g. http://localhost:PORT"
            ),
            warnings,
            err,
        );
    }
    let mut origins = Vec::new();
    for (o, subdomains) in pages {
        let under = o.host == rp_id || o.host.ends_with(&format!(".{rp_id}"));
        if !under {
            warnings.push(format!("passkeys: {o} is not on {rp_id} or under it, so it cannot use passkeys"));
        } else if !o.is_https() && !o.is_loopback() {
            warnings.push(format!("passkeys: browsers offer passkeys only on https (or localhost), not on {o}"));
        } else if let Ok(url) = url::Url::parse(&o.to_string()) {
            origins.push((url, subdomains));
        }
    }
    if origins.is_empty() {
        return off(format!("no page origin is on `{rp_id}` or under it"), warnings, err);
    }
    let rp_name = if cfg.rp_name.trim().is_empty() { rp_id.clone() } else { cfg.rp_name.trim().to_owned() };
    Some(PasskeySettings { rp_id, rp_name, origins })
}

/// `http://localhost:PORT` for a same-origin gateway whose public origin is a loopback IP
/// address: the name browsers accept for passkeys on this machine.
fn loopback_alias(c: &Config, public_origin: &Origin) -> Option<Origin> {
    let ip = public_origin.host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().ok()?;
    (c.mode == Mode::SameOrigin && ip.is_loopback()).then(|| Origin {
        scheme: public_origin.scheme.clone(),
        host: "localhost".into(),
        port: public_origin.port,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    #[test]
    fn embedded_on_localhost_uses_the_public_host() {
        let s = load_str("public_url = \"http://localhost:8080\"").unwrap().validate().unwrap();
        let p = s.passkeys.expect("on");
        assert_eq!(p.rp_id, "localhost");
        assert_eq!(p.origins[0].0.as_str(), "http://localhost:8080/");
    }

    #[test]
    fn the_loopback_default_gets_passkeys_on_localhost() {
        let s = load_str("").unwrap().validate().unwrap();
        let p = s.passkeys.expect("on");
        assert_eq!((p.rp_id.as_str(), p.origins[0].0.as_str()), ("localhost", "http://localhost:8080/"));
        assert!(s.trusted_origins.iter().any(|o| o.to_string() == "http://localhost:8080"), "{:?}", s.trusted_origins);
        assert!(s.warnings.is_empty());
        let s = load_str("[passkeys]\nenabled = false").unwrap().validate().unwrap();
        assert!(!s.trusted_origins.iter().any(|o| o.to_string().contains("localhost")));
    }

    #[test]
    fn an_ip_address_turns_passkeys_off_with_a_warning() {
        let s = load_str("public_url = \"http://192.0.2.7:8080\"").unwrap().validate().unwrap();
        assert!(s.passkeys.is_none());
        assert!(
            s.warnings.iter().any(|w| w.contains("passkeys are off") && w.contains("192.0.2.7")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn an_explicit_rp_id_that_does_not_cover_the_pages_is_an_error() {
        let e = load_str("public_url = \"https://app.example.com\"\n[passkeys]\nrp_id = \"other.com\"")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.iter().any(|p| p.to_string().contains("passkeys.rp_id")), "{e:?}");
    }

    #[test]
    fn cross_origin_derives_the_spa_site() {
        let toml = "mode = \"cross-origin\"\npublic_url = \"https://api.example.com\"\n\
                    [cors]\nallowed_origins = [\"https://app.example.com\"]";
        let s = load_str(toml).unwrap().validate().unwrap();
        let p = s.passkeys.expect("on");
        assert_eq!(p.rp_id, "example.com");
        assert_eq!(p.origins[0].0.as_str(), "https://app.example.com/");
    }

    #[test]
    fn plain_http_on_a_public_name_is_dropped() {
        let s = load_str("public_url = \"http://app.example.com\"").unwrap().validate().unwrap();
        assert!(s.passkeys.is_none());
        assert!(s.warnings.iter().any(|w| w.contains("only on https")), "{:?}", s.warnings);
    }

    #[test]
    fn disabled_is_off_without_a_warning() {
        let s = load_str("public_url = \"http://192.0.2.7:8080\"\n[passkeys]\nenabled = false")
            .unwrap()
            .validate()
            .unwrap();
        assert!(s.passkeys.is_none());
        assert!(!s.warnings.iter().any(|w| w.contains("passkeys")));
    }
}
