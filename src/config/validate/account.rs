//! Account lifecycle: mail links and transport, session lifetimes, identity headers.

use std::time::Duration;

use crate::config::Config;

/// Mail links, token lifetimes and the mail transport (see `crate::mail`).
pub(super) fn mail(c: &Config, err: &mut dyn FnMut(&str, String)) {
    for (key, v) in [
        ("auth.reset_url", &c.auth.reset_url),
        ("auth.verify_email_url", &c.auth.verify_email_url),
        ("auth.cancel_email_url", &c.auth.cancel_email_url),
    ] {
        if let Err(m) = crate::config::mail::check_link_template(v) {
            err(key, m);
        }
    }
    for (key, d) in
        [("auth.reset_token_ttl", c.auth.reset_token_ttl.0), ("auth.verify_token_ttl", c.auth.verify_token_ttl.0)]
    {
        if d.is_zero() {
            err(key, "must be longer than zero, e.g. \"30m\"".into());
        }
    }
    if !c.mail.smtp_url.is_empty() {
        if let Err(m) = crate::config::mail::SmtpUrl::parse(&c.mail.smtp_url) {
            err("mail.smtp_url", m);
        }
        if !c.mail.outbox_dir.is_empty() {
            err(
                "mail.outbox_dir",
                "set either mail.smtp_url (send) or mail.outbox_dir (write .eml files), not both".into(),
            );
        }
    }
    if !c.mail.from.trim().is_empty()
        && let Err(m) = crate::config::mail::parse_from(&c.mail.from)
    {
        err("mail.from", m);
    }
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

/// `identity.header_prefix`: every header starting with it is stripped from requests, so it
/// must not swallow headers the gateway or upstreams need.
pub(super) fn identity(c: &Config, err: &mut dyn FnMut(&str, String)) {
    let id_prefix = c.identity.header_prefix.to_ascii_lowercase().replace('_', "-");
    if id_prefix.len() < 3 || http::HeaderName::try_from(c.identity.header_prefix.as_str()).is_err() {
        err(
            "identity.header_prefix",
            format!("`{}` must be at least 3 header-name characters, e.g. \"X-Auth-\"", c.identity.header_prefix),
        );
    } else if ["x-forwarded-", "x-csrftoken", "x-requested-with", "x-request-id"]
        .iter()
        .any(|h| h.starts_with(&id_prefix))
    {
        err(
            "identity.header_prefix",
            format!(
                "`{}` would also strip standard headers (X-Forwarded-*, X-CSRFToken…); use e.g. \"X-Auth-\"",
                c.identity.header_prefix
            ),
        );
    }
}
