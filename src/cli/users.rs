//! `sessiongate user …` and `sessiongate import-django`.

use std::io::{IsTerminal, Read};

use serde_json::json;

use super::audit::{cli_audit, shown};
use super::{Failure, UserCommand};
use crate::config::Settings;
use crate::server::Stores;
use crate::users::{NewUser, User};

fn read_password(stdin: bool, username: &str, email: Option<&str>, min: usize) -> Result<(String, bool), Failure> {
    let password = if stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| Failure::runtime(format!("reading stdin: {e}")))?;
        s.trim_end_matches(['\n', '\r']).to_owned()
    } else if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("Password: ").map_err(|e| Failure::runtime(e.to_string()))?;
        let b = rpassword::prompt_password("Again: ").map_err(|e| Failure::runtime(e.to_string()))?;
        if a != b {
            return Err(Failure::usage("the passwords differ"));
        }
        a
    } else {
        return Ok((crate::secret::random_b64(18), true));
    };
    crate::password::policy::check(&password, username, email, min)
        .map_err(|w| Failure::usage(format!("password {}", w.0)))?;
    Ok((password, false))
}

pub(super) async fn find_user(stores: &Stores, name: &str) -> Result<User, Failure> {
    let user = stores.users.find_by_login(name).await.map_err(|e| Failure::runtime(e.to_string()))?;
    user.ok_or_else(|| Failure::runtime(format!("no user named `{name}`")))
}

pub(super) async fn user_command(s: &Settings, stores: &Stores, cmd: &UserCommand) -> Result<(), Failure> {
    let rt = |e: &dyn std::fmt::Display| Failure::runtime(e.to_string());
    let min = s.users.password_min_length;
    match cmd {
        UserCommand::Add { name, email, password_stdin } => {
            refuse_read_only(s, "create")?;
            if let Some(e) = email {
                crate::api::check_email(e).map_err(|p| Failure::usage(format!("email: {}", p.detail)))?;
            }
            let normalized = crate::users::names::normalize_username(name);
            crate::api::check_username(&normalized, email.as_deref())
                .map_err(|p| Failure::usage(format!("username: {}", p.detail)))?;
            let (password, generated) = read_password(*password_stdin, name, email.as_deref(), min)?;
            let hash = stores.passwords.hash(password.clone()).await.map_err(|e| rt(&e))?;
            let user = stores
                .users
                .create(NewUser { username: name.clone(), email: email.clone(), password_hash: hash })
                .await
                .map_err(|e| rt(&e))?;
            cli_audit(stores, crate::audit::Event::UserCreated, &user, "sessiongate user add".into()).await;
            println!("created user `{}` (id {})", user.username, user.id);
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::List { json } => {
            let users = stores.users.list().await.map_err(|e| rt(&e))?;
            if *json {
                let v: Vec<_> = users
                    .iter()
                    .map(|u| json!({ "id": u.id, "username": u.username, "email": u.email, "active": u.is_active, "createdAt": u.created_at, "lastLogin": u.last_login }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                println!("{:<6} {:<24} {:<32} {:<8} LAST LOGIN", "ID", "USERNAME", "EMAIL", "ACTIVE");
                for u in users {
                    let last = u.last_login.map_or("-".to_owned(), |t| t.to_rfc3339());
                    println!(
                        "{:<6} {:<24} {:<32} {:<8} {}",
                        u.id,
                        shown(&u.username),
                        shown(u.email.as_deref().unwrap_or("-")),
                        u.is_active,
                        last
                    );
                }
            }
        }
        UserCommand::Passwd { name, password_stdin } => {
            let user = find_user(stores, name).await?;
            let (password, generated) = read_password(*password_stdin, &user.username, user.email.as_deref(), min)?;
            let hash = stores.passwords.hash(password.clone()).await.map_err(|e| rt(&e))?;
            stores.users.set_password(user.id, &hash).await.map_err(|e| rt(&e))?;
            if crate::users::forget_initial_password(&s.data_dir, &user.username) {
                println!(
                    "removed {}: that password no longer works",
                    s.data_dir.join(crate::users::INITIAL_ADMIN_FILE).display()
                );
            }
            let n = stores.sessions.revoke_all(user.id, None).await.map_err(|e| rt(&e))?;
            // Pending email changes die with the old password (their links check it too).
            if let Some(accounts) = stores.users.accounts() {
                for purpose in [crate::users::TokenPurpose::EmailChange, crate::users::TokenPurpose::EmailCancel] {
                    let _ = accounts.revoke_tokens(user.id, purpose).await;
                }
            }
            let detail = format!("sessiongate user passwd; {n} session(s) revoked");
            cli_audit(stores, crate::audit::Event::UserPasswordSet, &user, detail).await;
            println!("password changed for `{}`; {n} session(s) revoked", user.username);
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::Disable { name } | UserCommand::Enable { name } => {
            let active = matches!(cmd, UserCommand::Enable { .. });
            refuse_read_only(s, if active { "enable" } else { "disable" })?;
            let user = find_user(stores, name).await?;
            stores.users.set_active(user.id, active).await.map_err(|e| rt(&e))?;
            if active {
                cli_audit(stores, crate::audit::Event::UserEnabled, &user, "sessiongate user enable".into()).await;
                println!("enabled `{}`", user.username);
            } else {
                let n = stores.sessions.revoke_all(user.id, None).await.map_err(|e| rt(&e))?;
                let detail = format!("sessiongate user disable; {n} session(s) revoked");
                cli_audit(stores, crate::audit::Event::UserDisabled, &user, detail).await;
                println!("disabled `{}`; {n} session(s) revoked", user.username);
            }
        }
        UserCommand::Remove { name } => {
            refuse_read_only(s, "remove")?;
            let user = find_user(stores, name).await?;
            let n = stores.sessions.revoke_all(user.id, None).await.map_err(|e| rt(&e))?;
            stores.users.remove(user.id).await.map_err(|e| rt(&e))?;
            let detail = format!("sessiongate user remove; {n} session(s) revoked");
            cli_audit(stores, crate::audit::Event::UserRemoved, &user, detail).await;
            println!("removed `{}`; {n} session(s) revoked", user.username);
        }
        UserCommand::Passkeys { name, json } => {
            let user = find_user(stores, name).await?;
            let keys =
                stores.users.passkeys_or_err().map_err(|e| rt(&e))?.passkeys_of(user.id).await.map_err(|e| rt(&e))?;
            if *json {
                let v: Vec<_> = keys
                    .iter()
                    .map(|k| json!({ "id": k.id, "name": k.name, "createdAt": k.created_at, "lastUsedAt": k.last_used_at, "discoverable": k.discoverable }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                println!("{:<6} {:<32} {:<26} LAST USED", "ID", "NAME", "CREATED");
                for k in keys {
                    let last = k.last_used_at.map_or("-".to_owned(), |t| t.to_rfc3339());
                    println!("{:<6} {:<32} {:<26} {}", k.id, shown(&k.name), k.created_at.to_rfc3339(), last);
                }
            }
        }
        UserCommand::PasskeyRemove { name, id } => {
            let user = find_user(stores, name).await?;
            let store = stores.users.passkeys_or_err().map_err(|e| rt(&e))?;
            // The administrator may remove the last one: that is what a lost device needs.
            match store.remove_passkey(user.id, *id, true).await.map_err(|e| rt(&e))? {
                None => return Err(Failure::runtime(format!("`{}` has no passkey {id}", user.username))),
                Some(_) => {
                    let detail = format!("sessiongate user passkey-remove {id}");
                    cli_audit(stores, crate::audit::Event::PasskeyRemoved, &user, detail).await;
                    println!("removed passkey {id} of `{}`", user.username);
                    if !crate::password::usable(&user.password_hash)
                        && store.passkeys_of(user.id).await.map_err(|e| rt(&e))?.is_empty()
                    {
                        println!(
                            "note: `{}` has no password and no passkey left: set one with `sessiongate user passwd`",
                            user.username
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// `user add`, `remove`, `enable` and `disable` cannot work on Django's table.
fn refuse_read_only(s: &Settings, what: &str) -> Result<(), Failure> {
    if matches!(s.user_store, crate::config::UserBackend::Django(_)) {
        return Err(Failure::usage(format!(
            "users.store = \"django\" is read-only: {what} the user in Django (the admin, `manage.py createsuperuser`); \
             sessiongate only changes passwords there (`sessiongate user passwd`)"
        )));
    }
    Ok(())
}

#[cfg(not(feature = "django"))]
pub(super) async fn import_django(_: &Settings, _: &str, _: &str) -> Result<(), Failure> {
    Err(Failure::usage(
        "import-django is not in this build: build sessiongate with `--features django` (on by default)",
    ))
}

/// `sessiongate import-django`: Django users into the native store, hashes as they are.
#[cfg(feature = "django")]
pub(super) async fn import_django(s: &Settings, from: &str, table: &str) -> Result<(), Failure> {
    use crate::users::django::{DjangoOptions, DjangoUsers, is_identifier};
    use crate::users::{UserStore as _, UserStoreError};
    if matches!(s.user_store, crate::config::UserBackend::Django(_)) {
        return Err(Failure::usage(
            "import-django copies into the native user store, but users.store = \"django\"; set users.store to \"sqlite\" or \"postgres\"",
        ));
    }
    if !is_identifier(table) {
        return Err(Failure::usage(format!("--table `{table}` must be a plain table name ([A-Za-z_][A-Za-z0-9_]*)")));
    }
    if !(from.starts_with("sqlite:") || from.starts_with("postgres://") || from.starts_with("postgresql://")) {
        return Err(Failure::usage(format!(
            "--from `{from}`: give sqlite:///abs/path/db.sqlite3, sqlite://relative.db or postgres://…"
        )));
    }
    let source = DjangoUsers::connect(DjangoOptions::read(from, table))
        .await
        .map_err(|e| Failure::runtime(format!("reading {table} from the Django database: {e}")))?;
    let users = source.list().await.map_err(|e| Failure::runtime(e.to_string()))?;
    let stores = crate::server::open_stores(s).await?;
    let (mut imported, mut inactive, mut unusable) = (0usize, 0usize, 0usize);
    let (mut skipped, mut no_email) = (Vec::new(), Vec::new());
    for u in &users {
        let result = match stores.users.import(u).await {
            Err(UserStoreError::EmailTaken) => {
                // Django allows shared addresses; the native store does not.
                let copy = User { email: None, ..u.clone() };
                let r = stores.users.import(&copy).await;
                if r.is_ok() {
                    no_email.push(u.username.clone());
                }
                r
            }
            other => other,
        };
        match result {
            Ok(_) => {
                imported += 1;
                inactive += usize::from(!u.is_active);
                unusable += usize::from(crate::password::django::identify(&u.password_hash).is_none());
            }
            Err(UserStoreError::UsernameTaken) => skipped.push(u.username.clone()),
            Err(e) => return Err(Failure::runtime(format!("importing `{}`: {e}", u.username))),
        }
    }
    println!(
        "imported {imported} of {} users from {table} ({inactive} inactive, {unusable} without a usable password)",
        users.len()
    );
    if !skipped.is_empty() {
        println!("skipped {} existing username(s): {}", skipped.len(), skipped.join(", "));
    }
    if !no_email.is_empty() {
        println!("imported without email (address already used by another user): {}", no_email.join(", "));
    }
    Ok(())
}
