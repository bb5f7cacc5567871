//! `[session]` and `[users]`: which stores, and the password settings.

use crate::config::{Config, DjangoSettings, SessionBackend, UserBackend, UserSettings};

/// The session and user backends `session.store`/`users.store` name (with their URLs), and the
/// password settings.
pub(super) fn stores(c: &Config, err: &mut dyn FnMut(&str, String)) -> (SessionBackend, UserBackend, UserSettings) {
    let session = match c.session.store.as_str() {
        "memory" => SessionBackend::Memory,
        "sqlite" => SessionBackend::Sqlite,
        "postgres" | "redis" => {
            let scheme = if c.session.store == "postgres" { "postgres" } else { "redis" };
            if !c.session.url.starts_with(scheme) {
                err(
                    "session.url",
                    format!(
                        "session.store = \"{}\" needs a {scheme}:// URL in session.url (or SESSIONGATE_SESSION__URL)",
                        c.session.store
                    ),
                );
            }
            let url = c.session.url.clone();
            if c.session.store == "postgres" { SessionBackend::Postgres(url) } else { SessionBackend::Redis(url) }
        }
        other => {
            err("session.store", format!("`{other}` is not one of \"memory\", \"sqlite\", \"postgres\", \"redis\""));
            SessionBackend::Memory
        }
    };
    let users = match c.users.store.as_str() {
        "sqlite" => UserBackend::Sqlite,
        "postgres" => {
            if !c.users.url.starts_with("postgres") {
                err("users.url", "users.store = \"postgres\" needs a postgres:// URL in users.url".into());
            }
            UserBackend::Postgres(c.users.url.clone())
        }
        "django" => {
            if c.users.url.is_empty() {
                err("users.url", "users.store = \"django\" needs the Django database URL (sqlite:///path/db.sqlite3 or postgres://…) in users.url".into());
            } else if !["sqlite:", "postgres://", "postgresql://"].iter().any(|s| c.users.url.starts_with(s)) {
                err("users.url", "users.store = \"django\" reads a SQLite file (sqlite:///abs/path/db.sqlite3, sqlite://relative.db) or PostgreSQL (postgres://…)".into());
            }
            if c.auth.signup {
                err("auth.signup", "the Django user store is read-only: create users in Django (admin, createsuperuser) or set auth.signup = false".into());
            }
            UserBackend::Django(DjangoSettings {
                url: c.users.url.clone(),
                table: c.users.django_table.clone(),
                login_with_email: c.users.django_login_with_email,
                hash_iterations: c.users.django_hash_iterations,
                rehash_on_login: c.users.django_rehash_on_login,
            })
        }
        other => {
            err("users.store", format!("`{other}` is not one of \"sqlite\", \"postgres\", \"django\""));
            UserBackend::Sqlite
        }
    };
    if !crate::config::types::is_identifier(&c.users.django_table) {
        err(
            "users.django_table",
            format!(
                "`{}` must be a plain table name ([A-Za-z_][A-Za-z0-9_]*), e.g. \"auth_user\" or your custom user model's db_table",
                c.users.django_table
            ),
        );
    }
    if !(1..=10_000_000).contains(&c.users.django_hash_iterations) {
        err(
            "users.django_hash_iterations",
            format!("{} is outside 1..=10000000; Django 5.2's default is 1000000", c.users.django_hash_iterations),
        );
    }
    if c.users.password_min_length == 0 {
        err("users.password_min_length", "must be at least 1 (8 is the default; 15 is recommended without MFA)".into());
    }
    if let Err(e) = c.users.argon2.build() {
        err(
            "users.argon2",
            format!(
                "invalid Argon2 parameters: {e}; the defaults are memory_kib = 19456, iterations = 2, parallelism = 1"
            ),
        );
    }
    for (key, name) in [("session.store", session.name()), ("users.store", users.name())] {
        if !crate::config::is_built(name) {
            err(
                key,
                format!(
                    "`{name}` is not in this build: build sessiongate with `--features {name}` (on by default), or choose \"sqlite\""
                ),
            );
        }
    }
    let passwords = UserSettings {
        password_min_length: c.users.password_min_length,
        argon2: c.users.argon2,
        hash_queue: c.users.hash_queue,
    };
    (session, users, passwords)
}
