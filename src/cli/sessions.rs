//! `sessiongate session …`.

use serde_json::json;

use super::audit::{cli_audit, shown};
use super::users::find_user;
use super::{Failure, SessionCommand};
use crate::server::Stores;

pub(super) async fn session_command(stores: &Stores, cmd: &SessionCommand) -> Result<(), Failure> {
    let rt = |e: &dyn std::fmt::Display| Failure::runtime(e.to_string());
    match cmd {
        SessionCommand::List { user, json } => {
            let sessions = match user {
                Some(name) => {
                    let u = find_user(stores, name).await?;
                    stores.sessions.list(u.id).await
                }
                None => stores.sessions.list_all().await,
            }
            .map_err(|e| rt(&e))?;
            let users = stores.users.list().await.map_err(|e| rt(&e))?;
            let name_of = |id: i64| users.iter().find(|u| u.id == id).map_or("?".to_owned(), |u| u.username.clone());
            if *json {
                let v: Vec<_> = sessions
                    .iter()
                    .map(|s| {
                        let mut view = serde_json::to_value(crate::api::SessionView::new(s, None)).unwrap_or_default();
                        view["user"] = json!(name_of(s.user_id));
                        view.as_object_mut().map(|o| o.remove("current"));
                        view
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                // Columns as wide as their longest value, times to the second (RFC 3339, UTC).
                let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let rows: Vec<[String; 5]> = sessions
                    .iter()
                    .map(|s| {
                        [
                            s.id.clone(),
                            shown(&name_of(s.user_id)).into_owned(),
                            shown(s.ip.as_deref().unwrap_or("-")).into_owned(),
                            time(s.last_seen_at),
                            time(s.expires_at()),
                        ]
                    })
                    .collect();
                let head = ["ID", "USER", "IP", "LAST SEEN", "EXPIRES"].map(str::to_owned);
                let width = |i: usize| rows.iter().chain([&head]).map(|r| r[i].chars().count()).max().unwrap_or(0);
                let widths = [width(0), width(1), width(2), width(3)];
                for r in [&head].into_iter().chain(&rows) {
                    println!(
                        "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                        r[0],
                        r[1],
                        r[2],
                        r[3],
                        r[4],
                        w0 = widths[0],
                        w1 = widths[1],
                        w2 = widths[2],
                        w3 = widths[3]
                    );
                }
            }
        }
        SessionCommand::Revoke { id: Some(id), .. } => {
            // Who owned it, for the audit log (the store deletes by id alone).
            let owner = stores.sessions.list_all().await.ok().and_then(|all| all.into_iter().find(|s| &s.id == id));
            if !stores.sessions.revoke(id, None).await.map_err(|e| rt(&e))? {
                return Err(Failure::runtime(format!("no session with id `{id}`")));
            }
            let mut e =
                crate::audit::AuditEvent::new(crate::audit::Event::SessionRevoked, crate::audit::Outcome::Success)
                    .detail("sessiongate session revoke");
            e.session = Some(id.clone());
            if let Some(s) = owner
                && let Ok(Some(u)) = stores.users.get(s.user_id).await
            {
                e = e.user(u.id, &u.username);
            }
            tracing::info!(target: "sessiongate::audit", event = "session_revoked", session = %id, "audit session_revoked success");
            if let Err(err) = stores.audit.insert(std::slice::from_ref(&e)).await {
                tracing::warn!(target: "sessiongate::audit", error = %err, "audit row could not be written");
            }
            println!("revoked session {id}");
        }
        SessionCommand::Revoke { user: Some(name), .. } => {
            let u = find_user(stores, name).await?;
            let n = stores.sessions.revoke_all(u.id, None).await.map_err(|e| rt(&e))?;
            let detail = format!("sessiongate session revoke --user; {n} session(s) revoked");
            cli_audit(stores, crate::audit::Event::SessionsRevoked, &u, detail).await;
            println!("revoked {n} session(s) of `{}`", u.username);
        }
        SessionCommand::Revoke { .. } => return Err(Failure::usage("give a session id or --user NAME")),
    }
    Ok(())
}
