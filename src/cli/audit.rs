//! `sessiongate audit`, and audit rows for changes made from the command line.

use super::Failure;
use crate::server::Stores;
use crate::users::User;

/// Text as a terminal should print it: control characters (C0, DEL, C1), line separators and
/// the invisible format characters (bidi marks, overrides and isolates, zero-width characters,
/// tags, variation selectors) escaped as `\u{…}`, so a username or user agent cannot move the
/// cursor, rewrite earlier lines, reorder a column or hide from an operator reading the table.
pub(super) fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        c.is_control()
            || matches!(c,
                '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
                | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}' | '\u{E0000}'..='\u{E0FFF}')
    };
    if !text.chars().any(bad) {
        return text.into();
    }
    text.chars().map(|c| if bad(c) { format!("\\u{{{:x}}}", c as u32) } else { c.to_string() }).collect()
}

/// `sessiongate audit`.
pub(super) async fn audit_command(
    stores: &Stores,
    user: Option<&str>,
    since: Option<std::time::Duration>,
    limit: i64,
    json: bool,
) -> Result<(), Failure> {
    if stores.audit.is_none() {
        return Err(Failure::runtime(
            "no audit table: neither the user store nor the session store is SQLite or PostgreSQL; \
             audit events are in the log only (tracing target sessiongate::audit)",
        ));
    }
    let user_id = match user {
        Some(name) => stores.users.find_by_login(name).await.ok().flatten().map(|u| u.id),
        None => None,
    };
    let since = match since {
        Some(d) => Some(
            chrono::Utc::now() - chrono::Duration::from_std(d).map_err(|_| Failure::usage("--since is too long"))?,
        ),
        None => None,
    };
    let q = crate::audit::AuditQuery { username: user.map(str::to_owned), user_id, since, limit };
    let events = stores.audit.query(&q).await.map_err(|e| Failure::runtime(format!("reading the audit log: {e}")))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&events).unwrap_or_default());
        return Ok(());
    }
    println!("{:<24} {:<22} {:<8} {:<16} {:<15} {:<22} DETAIL", "TIME", "EVENT", "OUTCOME", "USER", "IP", "SESSION");
    for e in events {
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let who = match (&e.username, e.user_id) {
            (Some(n), _) => n.clone(),
            (None, Some(id)) => format!("#{id}"),
            (None, None) => "-".into(),
        };
        println!(
            "{:<24} {:<22} {:<8} {:<16} {:<15} {:<22} {}",
            e.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            e.event.as_str(),
            e.outcome.as_str(),
            shown(&who),
            shown(&dash(&e.ip)),
            shown(&dash(&e.session)),
            shown(&dash(&e.detail)),
        );
    }
    Ok(())
}

/// Record an administrative change made from the command line (log line and row, at once).
pub(super) async fn cli_audit(stores: &Stores, event: crate::audit::Event, user: &User, detail: String) {
    let e = crate::audit::AuditEvent::new(event, crate::audit::Outcome::Success)
        .user(user.id, &user.username)
        .detail(detail);
    tracing::info!(target: "sessiongate::audit", event = event.as_str(), user_id = user.id, username = %user.username, "audit {event} success");
    if let Err(err) = stores.audit.insert(std::slice::from_ref(&e)).await {
        tracing::warn!(target: "sessiongate::audit", error = %err, "audit row could not be written");
    }
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn table_text_cannot_drive_the_terminal() {
        assert_eq!(shown("alice"), "alice");
        assert_eq!(shown("Zoë 田中"), "Zoë 田中");
        // Adversarial finding: a user agent with ESC sequences rewrote the audit table.
        assert_eq!(shown("curl\u{1b}[2J\u{1b}[1;1Hok"), "curl\\u{1b}[2J\\u{1b}[1;1Hok");
        assert_eq!(shown("a\rb\nc\u{7f}\u{9b}"), "a\\u{d}b\\u{a}c\\u{7f}\\u{9b}");
        assert_eq!(shown("evil\u{202E}gpj.exe"), "evil\\u{202e}gpj.exe");
        // Second adversarial pass: direction marks, line separators, zero-width and tag characters.
        assert_eq!(shown("a\u{200E}b\u{2028}c\u{FEFF}d\u{E0041}"), "a\\u{200e}b\\u{2028}c\\u{feff}d\\u{e0041}");
        assert_eq!(shown("\u{061C}\u{200D}\u{034F}\u{FFF9}"), "\\u{61c}\\u{200d}\\u{34f}\\u{fff9}");
    }
}
