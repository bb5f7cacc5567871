//! `[passkeys]`: the WebAuthn relying party (its id, name and the page origins it accepts).

use super::PasskeySettings;
use crate::config::{Config, Mode};
use crate::http::origin::{Origin, OriginPattern};

/// None when passkeys are off, or (with a derived rp id) cannot work here, which `warnings` says.
pub(super) fn passkeys(
    c: &Config,
    public_origin: &Origin,
    cors_origins: &[OriginPattern],
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
    fn an_ip_address_turns_passkeys_off_with_a_warning() {
        let s = load_str("public_url = \"http://127.0.0.1:8080\"").unwrap().validate().unwrap();
        assert!(s.passkeys.is_none());
        assert!(
            s.warnings.iter().any(|w| w.contains("passkeys are off") && w.contains("127.0.0.1")),
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
        let s = load_str("public_url = \"http://127.0.0.1:8080\"\n[passkeys]\nenabled = false")
            .unwrap()
            .validate()
            .unwrap();
        assert!(s.passkeys.is_none());
        assert!(!s.warnings.iter().any(|w| w.contains("passkeys")));
    }
}
