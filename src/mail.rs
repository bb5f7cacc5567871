//! Outgoing mail: password-reset and verification links, security notices.
//!
//! Two [`Mailer`]s, chosen by `[mail]`:
//! - [`SmtpMailer`] (`mail.smtp_url`): `lettre` over SMTP. `smtps://host[:465]` is TLS from the
//!   first byte; `smtp://host[:587]` upgrades with STARTTLS — *required* when the URL carries
//!   credentials (a password is never sent in clear), opportunistic otherwise. `?tls=required`,
//!   `?tls=opportunistic` or `?tls=none` (a trusted local relay, port 25 by default) override it.
//! - [`OutboxMailer`] (`mail.outbox_dir`, or `data_dir/outbox` when neither key is set): each
//!   message is written as an `.eml` file (mode 0600: it holds live links) — for development.
//!
//! Every message has a plain-text and an HTML part ([`templates`]). Links come from
//! `public_url` (or the absolute `auth.reset_url`/`auth.verify_email_url`), never from request
//! headers. Handlers send with [`spawn_send`]: off the request path, so a slow or failing mail
//! server changes neither the answer nor its timing; failures are logged without the link.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub use crate::config::mail::{SmtpTls, SmtpUrl, check_link_template, parse_from};
use crate::config::{MailTransport, Settings};

/// How long one SMTP conversation may take before the send is given up.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// One message to one recipient.
#[derive(Clone)]
pub struct Email {
    /// What kind of message, for logs (`password_reset`, `verify_email`, …).
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl std::fmt::Debug for Email {
    // Bodies hold live links: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email").field("kind", &self.kind).field("subject", &self.subject).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid message: {0}")]
    Message(String),
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("outbox: {0}")]
    Outbox(String),
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, email: Email) -> Result<(), MailError>;
    /// Where mail goes, for the start-up log line (no credentials).
    fn describe(&self) -> String;
}

/// Send in the background; the outcome is logged (kind only: bodies hold live links).
pub fn spawn_send(mailer: Arc<dyn Mailer>, email: Email) {
    tokio::spawn(async move {
        let kind = email.kind;
        match mailer.send(email).await {
            Ok(()) => tracing::info!(kind, "mail sent"),
            Err(e) => tracing::warn!(kind, error = %e, "mail could not be sent"),
        }
    });
}

/// The mailer `[mail]` asks for (TLS setup for SMTP can still fail here).
pub fn from_settings(settings: &Settings) -> Result<Arc<dyn Mailer>, String> {
    let from = settings.mail.from.clone();
    match &settings.mail.transport {
        MailTransport::Smtp(smtp) => Ok(Arc::new(SmtpMailer::new(smtp.clone(), from)?)),
        MailTransport::Outbox(dir) => Ok(Arc::new(OutboxMailer { dir: dir.clone(), from })),
    }
}

/// Sends through an SMTP server with `lettre` (pooled connections, rustls).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    describe: String,
}

impl SmtpMailer {
    pub fn new(url: SmtpUrl, from: Mailbox) -> Result<Self, String> {
        let params = || TlsParameters::new(url.host.clone()).map_err(|e| format!("TLS setup for {}: {e}", url.host));
        let tls = match url.tls {
            SmtpTls::Wrapper => Tls::Wrapper(params()?),
            SmtpTls::Required => Tls::Required(params()?),
            SmtpTls::Opportunistic => Tls::Opportunistic(params()?),
            SmtpTls::None => Tls::None,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.clone())
            .port(url.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some((user, pass)) = url.credentials() {
            b = b.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        let describe = format!("SMTP {}:{} ({:?})", url.host, url.port, url.tls).to_lowercase();
        Ok(SmtpMailer { transport: b.build(), from, describe })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: Email) -> Result<(), MailError> {
        let msg = build(&self.from, &email)?;
        self.transport.send(msg).await.map(|_| ()).map_err(|e| MailError::Smtp(e.to_string()))
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// Writes each message to `dir` as an `.eml` file (development).
pub struct OutboxMailer {
    pub dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    pub fn new(dir: PathBuf, from: Mailbox) -> Self {
        OutboxMailer { dir, from }
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: Email) -> Result<(), MailError> {
        let msg = build(&self.from, &email)?;
        let name = format!(
            "{}-{}-{}.eml",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
            email.kind,
            crate::secret::random_b64(6)
        );
        let path = self.dir.join(name);
        let bytes = msg.formatted();
        tokio::task::spawn_blocking(move || crate::secret::write_private(&path, &bytes))
            .await
            .map_err(|e| MailError::Outbox(e.to_string()))?
            .map_err(|e| MailError::Outbox(e.to_string()))
    }

    fn describe(&self) -> String {
        format!(".eml files in {} (development; set mail.smtp_url to send)", self.dir.display())
    }
}

fn build(from: &Mailbox, email: &Email) -> Result<Message, MailError> {
    let to: Mailbox = email.to.parse().map_err(|e| MailError::Message(format!("recipient: {e}")))?;
    // Message-ID on the sender's domain (lettre's default would name this machine's host).
    let message_id = format!("<{}@{}>", crate::secret::random_b64(18), from.email.domain());
    Message::builder()
        .message_id(Some(message_id))
        .from(from.clone())
        .to(to)
        .subject(email.subject.clone())
        .multipart(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()))
        .map_err(|e| MailError::Message(e.to_string()))
}

/// The messages sessiongate sends, each as plain text and HTML.
pub mod templates {
    use super::Email;

    fn esc(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
    }

    fn html(title: &str, paragraphs: &[String], button: Option<(&str, &str)>, footer: &str) -> String {
        let mut body = String::new();
        for p in paragraphs {
            body.push_str(&format!("<p style=\"margin:0 0 16px\">{}</p>\n", esc(p)));
        }
        if let Some((label, href)) = button {
            let href = esc(href);
            body.push_str(&format!(
                "<p style=\"margin:24px 0\"><a href=\"{href}\" style=\"background:#2563eb;color:#ffffff;padding:12px 20px;border-radius:6px;text-decoration:none;display:inline-block\">{}</a></p>\n\
                 <p style=\"margin:0 0 16px;font-size:13px;color:#555555\">Or paste this link into your browser:<br><a href=\"{href}\" style=\"color:#2563eb;word-break:break-all\">{href}</a></p>\n",
                esc(label)
            ));
        }
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head>\n\
             <body style=\"font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#111111;line-height:1.5;max-width:560px;margin:0 auto;padding:24px\">\n\
             <h1 style=\"font-size:20px;margin:0 0 16px\">{t}</h1>\n{body}\
             <p style=\"margin:32px 0 0;font-size:12px;color:#777777\">{f}</p>\n</body></html>\n",
            t = esc(title),
            f = esc(footer)
        )
    }

    fn minutes(ttl: std::time::Duration) -> String {
        let m = ttl.as_secs().div_ceil(60);
        if m >= 120 && m.is_multiple_of(60) { format!("{} hours", m / 60) } else { format!("{m} minutes") }
    }

    const NOT_YOU: &str = "If you did not ask for this, ignore this message: nothing changes until the link is used.";

    pub fn password_reset(to: &str, username: &str, site: &str, link: &str, ttl: std::time::Duration) -> Email {
        let subject = format!("Reset your password on {site}");
        let lines = [
            format!("Hello {username},"),
            format!("Someone (hopefully you) asked to reset the password of your account on {site}."),
            format!(
                "The link below lets you choose a new password. It works once and expires in {}; using it signs you out everywhere.",
                minutes(ttl)
            ),
        ];
        let text = format!("{}\n\n{}\n\n{}\n\n{link}\n\n{NOT_YOU}\n", lines[0], lines[1], lines[2]);
        let html = html(&subject, &lines, Some(("Choose a new password", link)), NOT_YOU);
        Email { kind: "password_reset", to: to.into(), subject, text, html }
    }

    pub fn verify_email(to: &str, username: &str, site: &str, link: &str, ttl: std::time::Duration) -> Email {
        let subject = format!("Confirm your email address on {site}");
        let lines = [
            format!("Hello {username},"),
            format!("Please confirm that {to} is the email address of your account on {site}."),
            format!("The link works once and expires in {}.", minutes(ttl)),
        ];
        let text = format!("{}\n\n{}\n\n{}\n\n{link}\n\n{NOT_YOU}\n", lines[0], lines[1], lines[2]);
        let html = html(&subject, &lines, Some(("Confirm this address", link)), NOT_YOU);
        Email { kind: "verify_email", to: to.into(), subject, text, html }
    }

    const ALERT: &str = "If this was not you, reset your password now and review your signed-in devices.";

    fn notice(kind: &'static str, to: &str, subject: String, lines: Vec<String>) -> Email {
        let mut text = lines.join("\n\n");
        text.push_str(&format!("\n\n{ALERT}\n"));
        let html = html(&subject, &lines, None, ALERT);
        Email { kind, to: to.into(), subject, text, html }
    }

    /// To the old address: what was asked, and a single-use link that cancels it without
    /// logging in (the change may be an attacker's, from a stolen session).
    pub fn email_change_notice(to_old: &str, username: &str, site: &str, new_email: &str, cancel: &str) -> Email {
        let subject = format!("Your email address on {site} is being changed");
        let lines = [
            format!("Hello {username},"),
            format!(
                "A change of your account's email address to {new_email} was requested on {site}. It takes effect when the new address is confirmed."
            ),
            "If this was not you, cancel it with the link below (no sign-in needed), then reset your password: that also signs out every other session.".to_owned(),
        ];
        let text = format!("{}\n\n{}\n\n{}\n\n{cancel}\n\n{ALERT}\n", lines[0], lines[1], lines[2]);
        let html = html(&subject, &lines, Some(("Cancel this change", cancel)), ALERT);
        Email { kind: "email_change_notice", to: to_old.into(), subject, text, html }
    }

    pub fn password_changed(to: &str, username: &str, site: &str, by_reset: bool) -> Email {
        let how = if by_reset { "with a password-reset link" } else { "from a signed-in session" };
        notice(
            "password_changed",
            to,
            format!("Your password on {site} was changed"),
            vec![
                format!("Hello {username},"),
                format!(
                    "The password of your account on {site} was just changed {how}. Your other sessions were signed out."
                ),
            ],
        )
    }

    /// A passkey was added: the one way to learn of a passkey added from a hijacked session
    /// (it survives password resets), so it names where to remove it.
    pub fn passkey_added(to: &str, username: &str, site: &str, name: &str) -> Email {
        notice(
            "passkey_added",
            to,
            format!("A passkey was added to your account on {site}"),
            vec![
                format!("Hello {username},"),
                format!("A passkey named “{name}” was just added to your account on {site}: it can sign in without your password."),
                "If this was not you, remove it in your account's passkey list, change your password and sign out your other sessions.".into(),
            ],
        )
    }

    pub fn mfa_changed(to: &str, username: &str, site: &str, enabled: bool) -> Email {
        let (subject, what) = if enabled {
            (format!("Two-factor authentication is on for {site}"), "turned on")
        } else {
            (format!("Two-factor authentication was turned off on {site}"), "turned off")
        };
        notice(
            "mfa_changed",
            to,
            subject,
            vec![
                format!("Hello {username},"),
                format!(
                    "Two-factor authentication (authenticator app codes) was just {what} for your account on {site}."
                ),
            ],
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn both_parts_carry_the_link_and_html_is_escaped() {
            let link = "https://example.com/#/reset?token=abc&x=<y>";
            let m =
                password_reset("a@example.com", "<alice>", "example.com", link, std::time::Duration::from_secs(1800));
            assert!(m.text.contains(link) && m.text.contains("30 minutes"));
            assert!(m.html.contains("https://example.com/#/reset?token=abc&amp;x=&lt;y&gt;"));
            assert!(m.html.contains("&lt;alice&gt;") && !m.html.contains("<alice>"));
            let v = verify_email(
                "a@example.com",
                "alice",
                "example.com",
                "https://x/",
                std::time::Duration::from_secs(86400),
            );
            assert!(v.text.contains("24 hours"));
        }
    }
}
