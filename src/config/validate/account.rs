//! Account lifecycle: mail links and transport, session lifetimes, identity headers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::mail::{LinkTemplate, MailSettings, MailTransport, SmtpUrl, default_from, parse_from};
use crate::config::{AuthSettings, Config, HeaderPrefix, IdentitySettings};
use crate::http::origin::Origin;

/// `[auth]`: mailed links (resolved on `public`), token lifetimes, the TOTP issuer.
pub(super) fn auth(c: &Config, public: &Origin, err: &mut dyn FnMut(&str, String)) -> AuthSettings {
    let mut link = |key: &str, v: &str| {
        LinkTemplate::parse(v, public).unwrap_or_else(|m| {
            err(key, m);
            LinkTemplate::parse("/", public).expect("a path")
        })
    };
    let reset_url = link("auth.reset_url", &c.auth.reset_url);
    let verify_email_url = link("auth.verify_email_url", &c.auth.verify_email_url);
    let cancel_email_url = link("auth.cancel_email_url", &c.auth.cancel_email_url);
    for (key, d) in
        [("auth.reset_token_ttl", c.auth.reset_token_ttl.0), ("auth.verify_token_ttl", c.auth.verify_token_ttl.0)]
    {
        if d.is_zero() {
            err(key, "must be longer than zero, e.g. \"30m\"".into());
        }
    }
    let issuer = c.auth.totp_issuer.trim();
    AuthSettings {
        signup: c.auth.signup,
        bootstrap_admin: c.auth.bootstrap_admin,
        reset_url,
        verify_email_url,
        cancel_email_url,
        reset_token_ttl: c.auth.reset_token_ttl.0,
        verify_token_ttl: c.auth.verify_token_ttl.0,
        totp_issuer: if issuer.is_empty() { public.host.clone() } else { issuer.to_owned() },
    }
}

/// `[mail]`: the transport (see `crate::mail`) and the `From` mailbox.
pub(super) fn mail(c: &Config, public: &Origin, data_dir: &Path, err: &mut dyn FnMut(&str, String)) -> MailSettings {
    let outbox = || MailTransport::Outbox(data_dir.join("outbox"));
    let transport = if c.mail.smtp_url.is_empty() {
        if c.mail.outbox_dir.is_empty() { outbox() } else { MailTransport::Outbox(PathBuf::from(&c.mail.outbox_dir)) }
    } else {
        let smtp = SmtpUrl::parse(&c.mail.smtp_url).map(MailTransport::Smtp).unwrap_or_else(|m| {
            err("mail.smtp_url", m);
            outbox()
        });
        if !c.mail.outbox_dir.is_empty() {
            err(
                "mail.outbox_dir",
                "set either mail.smtp_url (send) or mail.outbox_dir (write .eml files), not both".into(),
            );
        }
        smtp
    };
    let from = if c.mail.from.trim().is_empty() {
        default_from(public)
    } else {
        parse_from(&c.mail.from).unwrap_or_else(|m| {
            err("mail.from", m);
            default_from(public)
        })
    };
    MailSettings { transport, from }
}

/// `session.idle_timeout` and `session.absolute_timeout`.
pub(super) fn lifetimes(c: &Config, err: &mut dyn FnMut(&str, String)) -> (Duration, Duration) {
    let idle_timeout = c.session.idle_timeout.0;
    let absolute_timeout = c.session.absolute_timeout.0;
    if idle_timeout.is_zero() {
        err("session.idle_timeout", "must be longer than zero, e.g. \"14d\"".into());
    }
    if absolute_timeout < idle_timeout {
        err(
            "session.absolute_timeout",
            format!("must be at least session.idle_timeout ({})", humantime::format_duration(idle_timeout)),
        );
    }
    (idle_timeout, absolute_timeout)
}

/// `[identity]`. Every header starting with `identity.header_prefix` is stripped from requests,
/// so it must not swallow headers the gateway or upstreams need.
pub(super) fn identity(c: &Config, err: &mut dyn FnMut(&str, String)) -> IdentitySettings {
    let header_prefix = HeaderPrefix::new(&c.identity.header_prefix);
    let id_prefix = header_prefix.folded();
    let ok = if id_prefix.len() < 3 || http::HeaderName::try_from(c.identity.header_prefix.as_str()).is_err() {
        err(
            "identity.header_prefix",
            format!("`{}` must be at least 3 header-name characters, e.g. \"X-Auth-\"", c.identity.header_prefix),
        );
        false
    } else if ["x-forwarded-", "x-csrftoken", "x-requested-with", "x-request-id"]
        .iter()
        .any(|h| h.starts_with(id_prefix))
    {
        err(
            "identity.header_prefix",
            format!(
                "`{}` would also strip standard headers (X-Forwarded-*, X-CSRFToken…); use e.g. \"X-Auth-\"",
                c.identity.header_prefix
            ),
        );
        false
    } else {
        true
    };
    IdentitySettings {
        header_prefix: if ok { header_prefix } else { HeaderPrefix::new("X-Auth-") },
        jwt: c.identity.jwt,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{MailTransport, load_str};

    fn problems(toml: &str) -> Vec<String> {
        load_str(toml).unwrap().validate().unwrap_err().into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn links_are_resolved_on_public_url_once() {
        let s = load_str("").unwrap().validate().unwrap();
        assert_eq!(s.auth.reset_url.link("T"), "http://127.0.0.1:8080/#/reset?token=T");
        assert_eq!(s.auth.verify_email_url.link("T"), "http://127.0.0.1:8080/#/verify-email?token=T");
        assert_eq!(s.auth.cancel_email_url.link("T"), "http://127.0.0.1:8080/#/cancel-email?token=T");
        let s = load_str(
            "public_url = \"https://auth.example.com\"\n[auth]\nreset_url = \"https://app.example.com/reset/{token}/go\"\nverify_email_url = \"/v?t=\"\n",
        )
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(s.auth.reset_url.link("T"), "https://app.example.com/reset/T/go");
        assert_eq!(s.auth.verify_email_url.link("T"), "https://auth.example.com/v?t=T");
        for key in ["reset_url", "verify_email_url", "cancel_email_url"] {
            let p = problems(&format!("[auth]\n{key} = \"//evil.example/\"\n"));
            assert!(p.iter().any(|m| m.contains(&format!("`auth.{key}`")) && m.contains("//evil.example/")), "{p:?}");
        }
    }

    #[test]
    fn totp_issuer_is_trimmed_or_the_public_host() {
        let s = load_str("public_url = \"https://auth.example.com\"\n").unwrap().validate().unwrap();
        assert_eq!(s.auth.totp_issuer, "auth.example.com");
        let s = load_str("[auth]\ntotp_issuer = \"  Example Corp \"\n").unwrap().validate().unwrap();
        assert_eq!(s.auth.totp_issuer, "Example Corp");
        let s = load_str("[auth]\ntotp_issuer = \"   \"\n").unwrap().validate().unwrap();
        assert_eq!(s.auth.totp_issuer, "127.0.0.1");
    }

    #[test]
    fn mail_from_and_transport_are_parsed_once() {
        let s = load_str("data_dir = \"/srv/sg\"\n").unwrap().validate().unwrap();
        assert_eq!(s.mail.from.to_string(), "sessiongate <noreply@localhost>", "an IP host has no mail domain");
        assert!(
            matches!(&s.mail.transport, MailTransport::Outbox(d) if d.as_path() == std::path::Path::new("/srv/sg/outbox"))
        );
        let s = load_str("public_url = \"https://auth.example.com\"\n[mail]\noutbox_dir = \"/tmp/mail\"\n")
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(s.mail.from.to_string(), "sessiongate <noreply@auth.example.com>");
        assert!(
            matches!(&s.mail.transport, MailTransport::Outbox(d) if d.as_path() == std::path::Path::new("/tmp/mail"))
        );
        let s =
            load_str("[mail]\nsmtp_url = \"smtp://mail.example.com\"\nfrom = \" Example <noreply@example.com> \"\n")
                .unwrap()
                .validate()
                .unwrap();
        assert_eq!(s.mail.from.to_string(), "Example <noreply@example.com>");
        assert!(matches!(&s.mail.transport, MailTransport::Smtp(u) if u.host == "mail.example.com"));
        let p = problems("[mail]\nfrom = \"not an address\"\n");
        assert!(p.iter().any(|m| m.contains("`mail.from`") && m.contains("`not an address`")), "{p:?}");
        let p = problems("[mail]\nsmtp_url = \"http://x\"\n");
        assert!(p.iter().any(|m| m.contains("`mail.smtp_url`")), "{p:?}");
    }

    #[test]
    fn identity_prefix_keeps_its_spelling_and_compares_folded() {
        let s = load_str("[identity]\nheader_prefix = \"X_Gate_\"\n").unwrap().validate().unwrap();
        let prefix = &s.identity.header_prefix;
        assert_eq!((prefix.as_str(), prefix.folded()), ("X_Gate_", "x-gate-"));
        assert_eq!(prefix.header("User-Id").as_str(), "x_gate_user-id");
        let s = load_str("").unwrap().validate().unwrap();
        assert_eq!(s.identity.header_prefix.header("Email").as_str(), "x-auth-email");
    }
}
