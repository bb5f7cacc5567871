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
                println!("{:<24} {:<16} {:<16} {:<26} EXPIRES", "ID", "USER", "IP", "LAST SEEN");
                for s in sessions {
                    println!(
                        "{:<24} {:<16} {:<16} {:<26} {}",
                        s.id,
                        shown(&name_of(s.user_id)),
                        shown(s.ip.as_deref().unwrap_or("-")),
                        s.last_seen_at.to_rfc3339(),
                        s.expires_at().to_rfc3339()
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
