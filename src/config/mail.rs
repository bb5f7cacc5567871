//! `[mail]` and the mailed-link settings, parsed: the SMTP URL, the `From` mailbox, link
//! templates. Pure; `crate::mail` sends with them.

use std::path::PathBuf;

use lettre::message::Mailbox;

use crate::http::origin::Origin;

/// `[mail]`, validated: where mail goes and whom it is from.
#[derive(Clone, Debug)]
pub struct MailSettings {
    pub transport: MailTransport,
    /// `mail.from`, or `sessiongate <noreply@HOST>` with `public_url`'s host ([`default_from`]).
    pub from: Mailbox,
}

/// `mail.smtp_url`, else `mail.outbox_dir` (default: `data_dir/outbox`).
#[derive(Clone, Debug)]
pub enum MailTransport {
    Smtp(SmtpUrl),
    Outbox(PathBuf),
}

/// A `From` mailbox: `addr@example.com` or `Name <addr@example.com>`.
pub fn parse_from(s: &str) -> Result<Mailbox, String> {
    s.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("`{s}` is not a mail address ({e}); write e.g. \"Example <noreply@example.com>\""))
}

/// `sessiongate <noreply@HOST>` with `public`'s host (`localhost` for an IP address).
pub fn default_from(public: &Origin) -> Mailbox {
    let host = &public.host;
    let domain = if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') { "localhost" } else { host };
    parse_from(&format!("sessiongate <noreply@{domain}>"))
        .or_else(|_| parse_from("sessiongate <noreply@localhost>"))
        .expect("a literal mailbox")
}

/// How to reach the SMTP server, from `mail.smtp_url`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials.as_ref().map(|_| ".."))
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte.
    Wrapper,
    /// STARTTLS, or fail.
    Required,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// Plain text (trusted local relays only).
    None,
}

impl SmtpUrl {
    /// User name and password, decoded.
    pub fn credentials(&self) -> Option<&(String, String)> {
        self.credentials.as_ref()
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw)
            .map_err(|e| format!("not a URL ({e}); write e.g. \"smtp://user:pass@mail.example.com:587\""))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("no host; write e.g. \"smtp://mail.example.com:587\"")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let decode = |s: &str| percent_decode(s).ok_or("credentials are not valid percent-encoded UTF-8");
        let credentials = match url.password() {
            Some(p) => Some((decode(url.username())?, decode(p)?)),
            None if !url.username().is_empty() => {
                return Err("a user name without a password; write smtp://user:pass@host".into());
            }
            None => None,
        };
        let mut tls_param = None;
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("tls", "required") => tls_param = Some(SmtpTls::Required),
                ("tls", "opportunistic") => tls_param = Some(SmtpTls::Opportunistic),
                ("tls", "none") => tls_param = Some(SmtpTls::None),
                ("tls", other) => return Err(format!("tls=`{other}` is not one of required, opportunistic, none")),
                (other, _) => {
                    return Err(format!("unknown parameter `{other}` (only tls=required|opportunistic|none)"));
                }
            }
        }
        let tls = match (url.scheme(), tls_param) {
            ("smtps", None) => SmtpTls::Wrapper,
            ("smtps", Some(_)) => return Err("smtps:// is always TLS; drop the tls parameter".into()),
            ("smtp", Some(t)) => t,
            ("smtp", None) if credentials.is_some() => SmtpTls::Required,
            ("smtp", None) => SmtpTls::Opportunistic,
            (other, _) => return Err(format!("scheme `{other}` is not smtp:// (STARTTLS) or smtps:// (TLS)")),
        };
        if tls == SmtpTls::None && credentials.is_some() {
            return Err("tls=none would send the password in clear; use STARTTLS (tls=required) or smtps://".into());
        }
        let port = url.port().unwrap_or(match tls {
            SmtpTls::Wrapper => 465,
            SmtpTls::None => 25,
            _ => 587,
        });
        Ok(SmtpUrl { host, port, tls, credentials })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(Into::into)
}

/// Check `auth.reset_url` / `auth.verify_email_url`: a path or an absolute http(s) URL.
pub fn check_link_template(s: &str) -> Result<(), String> {
    if s.starts_with('/') && !s.starts_with("//") {
        return Ok(());
    }
    match url::Url::parse(&s.replace("{token}", "TOKEN")) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(format!(
            "`{s}` must be a path on public_url (\"/#/reset?token=\") or an absolute http(s) URL (\"https://app.example.com/reset?token={{token}}\")"
        )),
    }
}

/// A mailed link (`auth.reset_url`, `auth.verify_email_url`, `auth.cancel_email_url`) resolved
/// once against `public_url`: absolute, with `{token}` where the token goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkTemplate(String);

impl LinkTemplate {
    /// `s` as [`check_link_template`] accepts it; a path is put on `public`, and a template
    /// without `{token}` gets it appended.
    pub fn parse(s: &str, public: &Origin) -> Result<Self, String> {
        check_link_template(s)?;
        let base =
            if s.starts_with('/') { format!("{}{s}", public.to_string().trim_end_matches('/')) } else { s.to_owned() };
        Ok(LinkTemplate(if base.contains("{token}") { base } else { format!("{base}{{token}}") }))
    }

    /// The link that carries `token`.
    pub fn link(&self, token: &str) -> String {
        self.0.replace("{token}", token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let u = SmtpUrl::parse("smtp://user:p%40ss@mail.example.com").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("mail.example.com", 587, SmtpTls::Required));
        assert_eq!(u.credentials, Some(("user".into(), "p@ss".into())));
        assert!(!format!("{u:?}").contains("p@ss"));
        let u = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((u.port, u.tls), (2525, SmtpTls::Opportunistic));
        let u = SmtpUrl::parse("smtp://relay?tls=none").unwrap();
        assert_eq!((u.port, u.tls), (25, SmtpTls::None));
        let u = SmtpUrl::parse("smtps://mail.example.com").unwrap();
        assert_eq!((u.port, u.tls), (465, SmtpTls::Wrapper));
        for bad in [
            "http://x",
            "smtp://",
            "smtp://u:p@h?tls=none",
            "smtp://h?tls=maybe",
            "smtp://h?foo=1",
            "smtps://h?tls=none",
            "smtp://user@h",
        ] {
            assert!(SmtpUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn link_templates() {
        assert!(check_link_template("/#/reset?token=").is_ok());
        assert!(check_link_template("https://app.example.com/reset/{token}").is_ok());
        for bad in ["reset", "//evil.example/", "javascript:alert(1)", "ftp://x/"] {
            assert!(check_link_template(bad).is_err(), "{bad}");
        }
        assert!(parse_from("Example <noreply@example.com>").is_ok());
        assert!(parse_from("not an address").is_err());
    }
}
