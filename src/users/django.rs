//! `users.store = "django"`: authenticate against an existing Django project's user table.
//!
//! ```toml
//! [users]
//! store = "django"
//! url = "sqlite:///srv/app/db.sqlite3"    # or sqlite://relative.db, or postgres://user@host/db
//! django_table = "auth_user"              # a custom user model's db_table
//! django_login_with_email = false
//! django_hash_iterations = 1000000        # pbkdf2_sha256 iterations of hashes written here
//! django_rehash_on_login = false
//! ```
//!
//! The table needs the columns of Django's `AbstractUser`: `id`, `username`, `email`,
//! `password`, `is_active`, `last_login`, `date_joined` (others are ignored). Django keeps
//! owning the table: sessiongate never creates, removes, enables or disables users there
//! ([`UserStoreError::Unsupported`]); it only
//! - looks users up by username — **exactly**, as Django's `ModelBackend` does (usernames are
//!   case-sensitive; surrounding whitespace is trimmed, as Django's login form does) — and, with
//!   `django_login_with_email`, by email address, case-insensitively, when no username matches
//!   and exactly one account has that address (a shared address logs no one in);
//! - writes `last_login` on every login, in the form Django writes it;
//! - writes `password` on password changes and resets, always as Django's `pbkdf2_sha256` with
//!   `django_hash_iterations` ([`UserStore::hash_format`]), so Django keeps verifying it.
//!
//! Hashes are verified by [`crate::password::django`] (every hasher Django 5.2 ships). They are
//! not rewritten after a login unless `django_rehash_on_login` is set: Django derives its
//! session auth hash from the password hash, so changing it logs the user out of every Django
//! session (the admin, say).
//!
//! Times: Django with `USE_TZ = True` (its default) stores UTC — naive text in SQLite,
//! `timestamp with time zone` in PostgreSQL. `date_joined` becomes the user's `createdAt`.
//! Users get `emailVerified = false` and `mfa = false`.
//!
//! SQLite files are opened without creating them and without changing their journal mode, so
//! Django and sessiongate share the file safely (both wait on locks up to a few seconds).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::{NewUser, User, UserStore, UserStoreError};
use crate::password::HashFormat;

/// How long opening the database may take, and every later pool checkout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const READ_ONLY: &str = "creating, removing, enabling or disabling users in a Django database \
                         (manage them in Django: the admin, `manage.py createsuperuser`, `changepassword`)";

pub use crate::config::types::is_identifier;

/// What the Django store needs from `[users]`: the validated `users.url` and `users.django_*`
/// (`DjangoOptions::read` gives the defaults for one database and table).
pub use crate::config::DjangoSettings as DjangoOptions;

enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Run the same sqlx expression on whichever pool this is (the expression is type-checked once
/// per backend).
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

/// id, username, email, password, is_active, last_login, date_joined (times as UTC text).
type Row = (i64, String, Option<String>, String, bool, Option<String>, Option<String>);

/// The statements, built once for the backend's dialect and the validated table name.
struct Sql {
    by_username: String,
    by_email: String,
    by_id: String,
    list: String,
    count: String,
    probe: String,
    set_password: String,
    record_login: String,
}

impl Sql {
    fn new(table: &str, postgres: bool) -> Self {
        let t = format!("\"{table}\"");
        let time = |col: &str| {
            if postgres {
                format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
            } else {
                format!("CAST({col} AS TEXT)")
            }
        };
        let (id, text) = if postgres { ("id::bigint", "::text") } else { ("CAST(id AS INTEGER)", "") };
        let select = format!(
            "SELECT {id} AS id, username{text} AS username, email{text} AS email, password{text} AS password, \
             is_active, {} AS last_login, {} AS date_joined FROM {t}",
            time("last_login"),
            time("date_joined")
        );
        let login_param = if postgres { "$1::timestamptz" } else { "$1" };
        Sql {
            by_username: format!("{select} WHERE username = $1"),
            by_email: format!("{select} WHERE email <> '' AND lower(email) = lower($1) LIMIT 2"),
            by_id: format!("{select} WHERE id = $1"),
            list: format!("{select} ORDER BY id"),
            count: format!("SELECT COUNT(*) FROM {t}"),
            probe: format!("{select} LIMIT 0"),
            set_password: format!("UPDATE {t} SET password = $1 WHERE id = $2"),
            record_login: format!("UPDATE {t} SET last_login = {login_param} WHERE id = $2"),
        }
    }
}

/// A Django `auth_user` table (or a custom user model's) as a [`UserStore`].
pub struct DjangoUsers {
    db: Db,
    sql: Sql,
    table: String,
    login_with_email: bool,
    hash_iterations: u32,
    rehash_on_login: bool,
}

impl DjangoUsers {
    /// Open the database `opts.url` names and check that the table has the needed columns.
    pub async fn connect(opts: DjangoOptions) -> Result<Self, UserStoreError> {
        if !is_identifier(&opts.table) {
            return Err(UserStoreError::Unavailable(format!("`{}` is not a plain table name", opts.table)));
        }
        let url = opts.url.as_str();
        let (db, postgres) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let o = PgConnectOptions::from_str(url)?;
            // One direct connection first: a lazy pool would only report a timeout, not why.
            let probe = async {
                use sqlx::{ConnectOptions as _, Connection as _};
                o.connect().await?.close().await
            };
            tokio::time::timeout(CONNECT_TIMEOUT, probe)
                .await
                .map_err(|_| UserStoreError::Unavailable("PostgreSQL did not answer in time".into()))??;
            let pool = PgPoolOptions::new().max_connections(8).acquire_timeout(CONNECT_TIMEOUT).connect_lazy_with(o);
            (Db::Postgres(pool), true)
        } else if url.starts_with("sqlite:") {
            // No create_if_missing: a typo in the path must not silently yield an empty table.
            let o = SqliteConnectOptions::from_str(url)?.busy_timeout(CONNECT_TIMEOUT);
            let pool =
                SqlitePoolOptions::new().max_connections(4).acquire_timeout(CONNECT_TIMEOUT).connect_lazy_with(o);
            (Db::Sqlite(pool), false)
        } else {
            return Err(UserStoreError::Unavailable(
                "the Django database URL must start with sqlite: or postgres://".into(),
            ));
        };
        let store = DjangoUsers {
            db,
            sql: Sql::new(&opts.table, postgres),
            table: opts.table,
            login_with_email: opts.login_with_email,
            hash_iterations: opts.hash_iterations,
            rehash_on_login: opts.rehash_on_login,
        };
        tokio::time::timeout(CONNECT_TIMEOUT * 2, store.ping())
            .await
            .map_err(|_| UserStoreError::Unavailable("the Django database did not answer in time".into()))??;
        Ok(store)
    }

    async fn one(&self, sql: &str, bind: Bind<'_>) -> Result<Option<User>, UserStoreError> {
        let row: Option<Row> = match bind {
            Bind::Text(v) => on_pool!(&self.db, |p| sqlx::query_as(sql).bind(v).fetch_optional(p).await?),
            Bind::Id(v) => on_pool!(&self.db, |p| sqlx::query_as(sql).bind(v).fetch_optional(p).await?),
        };
        Ok(row.map(user))
    }
}

enum Bind<'a> {
    Text(&'a str),
    Id(i64),
}

fn user((id, username, email, password, is_active, last_login, date_joined): Row) -> User {
    User {
        id,
        username,
        email: email.filter(|e| !e.is_empty()),
        email_verified: false,
        password_hash: password,
        is_active,
        mfa: false,
        created_at: date_joined.as_deref().and_then(parse_time).unwrap_or_default(),
        last_login: last_login.as_deref().and_then(parse_time),
    }
}

/// Django's datetime text: `2020-01-02 03:04:05[.678901]` (naive UTC, as its SQLite backend
/// writes with `USE_TZ = True`), also with `T` or an offset.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

/// `last_login` as Django's SQLite backend writes it (PostgreSQL reads the offset).
fn format_time(t: DateTime<Utc>, postgres: bool) -> String {
    let naive = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    if postgres { format!("{naive}+00:00") } else { naive }
}

#[async_trait]
impl UserStore for DjangoUsers {
    async fn find_by_login(&self, login: &str) -> Result<Option<User>, UserStoreError> {
        let login = login.trim();
        if login.is_empty() {
            return Ok(None);
        }
        // With email login, an address names the account that has it, even when another
        // account's username is that address: a username can then not capture someone else's
        // login by email (docs/django.md).
        if self.login_with_email && login.contains('@') {
            let rows: Vec<Row> =
                on_pool!(&self.db, |p| sqlx::query_as(&self.sql.by_email).bind(login).fetch_all(p).await?);
            if rows.len() > 1 {
                tracing::info!("login by email: several Django accounts share the address; refused");
                return Ok(None);
            }
            if let Some(r) = rows.into_iter().next() {
                return Ok(Some(user(r)));
            }
        }
        self.one(&self.sql.by_username, Bind::Text(login)).await
    }

    async fn get(&self, id: i64) -> Result<Option<User>, UserStoreError> {
        self.one(&self.sql.by_id, Bind::Id(id)).await
    }

    async fn create(&self, _user: NewUser) -> Result<User, UserStoreError> {
        Err(UserStoreError::Unsupported(READ_ONLY))
    }

    async fn set_password(&self, id: i64, hash: &str) -> Result<bool, UserStoreError> {
        let sql = &self.sql.set_password;
        let done = on_pool!(&self.db, |p| sqlx::query(sql).bind(hash).bind(id).execute(p).await?.rows_affected());
        Ok(done == 1)
    }

    async fn set_active(&self, _id: i64, _active: bool) -> Result<bool, UserStoreError> {
        Err(UserStoreError::Unsupported(READ_ONLY))
    }

    async fn record_login(&self, id: i64, at: DateTime<Utc>) -> Result<(), UserStoreError> {
        let sql = &self.sql.record_login;
        let at = format_time(at, matches!(self.db, Db::Postgres(_)));
        on_pool!(&self.db, |p| {
            sqlx::query(sql).bind(&at).bind(id).execute(p).await?;
        });
        Ok(())
    }

    async fn remove(&self, _id: i64) -> Result<bool, UserStoreError> {
        Err(UserStoreError::Unsupported(READ_ONLY))
    }

    async fn list(&self) -> Result<Vec<User>, UserStoreError> {
        let rows: Vec<Row> = on_pool!(&self.db, |p| sqlx::query_as(&self.sql.list).fetch_all(p).await?);
        Ok(rows.into_iter().map(user).collect())
    }

    async fn count(&self) -> Result<i64, UserStoreError> {
        Ok(on_pool!(&self.db, |p| sqlx::query_scalar(&self.sql.count).fetch_one(p).await?))
    }

    /// Reachable, and the table has every column this store reads.
    async fn ping(&self) -> Result<(), UserStoreError> {
        let probe: Result<Vec<Row>, sqlx::Error> =
            on_pool!(&self.db, |p| sqlx::query_as(&self.sql.probe).fetch_all(p).await);
        probe.map(drop).map_err(|e| {
            UserStoreError::Unavailable(format!(
                "cannot read the Django user table `{}` (users.django_table; it needs id, username, email, \
                 password, is_active, last_login, date_joined): {e}",
                self.table
            ))
        })
    }

    fn hash_format(&self) -> HashFormat {
        HashFormat::DjangoPbkdf2Sha256 { iterations: self.hash_iterations }
    }

    fn rehash_on_login(&self) -> bool {
        self.rehash_on_login
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in ["auth_user", "_x", "accounts_User2"] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "a;b", "\"a\"", "a.b", "é"] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn django_times_parse_and_round_trip() {
        let t = parse_time("2020-01-02 03:04:05.678901").unwrap();
        assert_eq!(t.to_rfc3339(), "2020-01-02T03:04:05.678901+00:00");
        assert_eq!(parse_time("2020-01-02 03:04:05").unwrap().timestamp(), t.timestamp());
        assert_eq!(parse_time("2020-01-02 04:04:05.678901+01:00").unwrap(), t);
        assert_eq!(parse_time("2020-01-02T03:04:05.678901Z").unwrap(), t);
        assert_eq!(parse_time(&format_time(t, false)).unwrap(), t);
        assert_eq!(parse_time(&format_time(t, true)).unwrap(), t);
        assert_eq!(format_time(t, false), "2020-01-02 03:04:05.678901");
        assert!(parse_time("yesterday").is_none());
    }

    /// Django 5.2's DDL for `auth_user` on SQLite (`manage.py sqlmigrate auth 0001` and later).
    const AUTH_USER: &str = r#"CREATE TABLE "auth_user" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
        "password" varchar(128) NOT NULL, "last_login" datetime NULL, "is_superuser" bool NOT NULL,
        "username" varchar(150) NOT NULL UNIQUE, "last_name" varchar(150) NOT NULL,
        "email" varchar(254) NOT NULL, "is_staff" bool NOT NULL, "is_active" bool NOT NULL,
        "date_joined" datetime NOT NULL, "first_name" varchar(150) NOT NULL)"#;

    async fn fixture(login_with_email: bool) -> (tempfile::TempDir, DjangoUsers, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let url = format!("sqlite://{}", path.display());
        let raw = SqlitePool::connect_with(SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true))
            .await
            .unwrap();
        sqlx::query(AUTH_USER).execute(&raw).await.unwrap();
        let rows = [
            ("alice", "alice@example.com", "pbkdf2_sha256$1000$salt$x", 1),
            ("Carol", "carol@example.com", "md5$s$x", 1),
            ("off", "off@example.com", "md5$s$x", 0),
            ("shared1", "shared@example.com", "x", 1),
            ("shared2", "SHARED@example.com", "x", 1),
            ("noemail", "", "x", 1),
            ("bob@example.com", "other@example.com", "x", 1),
            ("bob", "bob@example.com", "x", 1),
        ];
        for (name, email, hash, active) in rows {
            sqlx::query(
                "INSERT INTO auth_user (password, last_login, is_superuser, username, last_name, email, is_staff, \
                 is_active, date_joined, first_name) VALUES (?, NULL, 0, ?, '', ?, 0, ?, '2020-01-02 03:04:05.678901', '')",
            )
            .bind(hash)
            .bind(name)
            .bind(email)
            .bind(active)
            .execute(&raw)
            .await
            .unwrap();
        }
        let mut opts = DjangoOptions::read(&url, "auth_user");
        opts.login_with_email = login_with_email;
        (dir, DjangoUsers::connect(opts).await.unwrap(), raw)
    }

    #[tokio::test]
    async fn reads_and_writes_like_django() {
        let (_dir, store, raw) = fixture(false).await;
        assert_eq!(store.count().await.unwrap(), 8);
        // auth_user has no columns for them: the capabilities are absent, not "unsupported".
        assert!(store.accounts().is_none() && store.second_factor().is_none());
        let alice = store.find_by_login(" alice ").await.unwrap().unwrap();
        assert_eq!((alice.username.as_str(), alice.email.as_deref()), ("alice", Some("alice@example.com")));
        assert!(alice.is_active && !alice.email_verified && !alice.mfa && alice.last_login.is_none());
        assert_eq!(alice.created_at.to_rfc3339(), "2020-01-02T03:04:05.678901+00:00");
        assert_eq!(store.get(alice.id).await.unwrap().unwrap(), alice);
        assert!(store.get(999).await.unwrap().is_none());

        // Exact, case-sensitive usernames; no email login unless configured.
        assert!(store.find_by_login("Carol").await.unwrap().is_some());
        assert!(store.find_by_login("carol").await.unwrap().is_none());
        assert!(store.find_by_login("ALICE").await.unwrap().is_none());
        assert!(store.find_by_login("alice@example.com").await.unwrap().is_none());
        assert!(store.find_by_login("").await.unwrap().is_none());
        assert!(!store.find_by_login("off").await.unwrap().unwrap().is_active);
        assert_eq!(store.find_by_login("noemail").await.unwrap().unwrap().email, None);

        let at = DateTime::parse_from_rfc3339("2025-06-07T08:09:10.111213Z").unwrap().with_timezone(&Utc);
        store.record_login(alice.id, at).await.unwrap();
        let stored: String = sqlx::query_scalar("SELECT last_login FROM auth_user WHERE id = ?")
            .bind(alice.id)
            .fetch_one(&raw)
            .await
            .unwrap();
        assert_eq!(stored, "2025-06-07 08:09:10.111213", "Django's SQLite format");
        assert_eq!(store.get(alice.id).await.unwrap().unwrap().last_login, Some(at));

        assert!(store.set_password(alice.id, "pbkdf2_sha256$1$s$d").await.unwrap());
        assert!(!store.set_password(999, "x").await.unwrap());
        assert_eq!(store.get(alice.id).await.unwrap().unwrap().password_hash, "pbkdf2_sha256$1$s$d");

        assert_eq!(store.hash_format(), HashFormat::DjangoPbkdf2Sha256 { iterations: 1_000_000 });
        assert!(!store.rehash_on_login());
        let new = NewUser { username: "x".into(), email: None, password_hash: "x".into() };
        assert!(matches!(store.create(new).await, Err(UserStoreError::Unsupported(_))));
        assert!(matches!(store.remove(alice.id).await, Err(UserStoreError::Unsupported(_))));
        assert!(matches!(store.set_active(alice.id, false).await, Err(UserStoreError::Unsupported(_))));
        assert!(matches!(store.import(&alice).await, Err(UserStoreError::Unsupported(_))));
        let names: Vec<String> = store.list().await.unwrap().into_iter().map(|u| u.username).collect();
        assert_eq!(names[..3], ["alice", "Carol", "off"]);
    }

    #[tokio::test]
    async fn email_login_when_configured() {
        let (_dir, store, _raw) = fixture(true).await;
        let by_mail = store.find_by_login("Carol@Example.COM").await.unwrap().unwrap();
        assert_eq!(by_mail.username, "Carol");
        // Shared addresses log no one in; an address names the account that has it, not the
        // account whose username it is (that one logs in with its own address or name).
        assert!(store.find_by_login("shared@example.com").await.unwrap().is_none());
        assert_eq!(store.find_by_login("bob@example.com").await.unwrap().unwrap().username, "bob");
        assert_eq!(store.find_by_login("other@example.com").await.unwrap().unwrap().username, "bob@example.com");
        assert!(store.find_by_login("nobody@example.com").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn missing_file_or_table_fails_at_connect() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("absent.sqlite3").display());
        assert!(DjangoUsers::connect(DjangoOptions::read(&url, "auth_user")).await.is_err());
        assert!(!dir.path().join("absent.sqlite3").exists(), "never created");
        let (_dir, _store, raw) = fixture(false).await;
        drop(raw);
        let url = format!("sqlite://{}", _dir.path().join("db.sqlite3").display());
        let Err(e) = DjangoUsers::connect(DjangoOptions::read(&url, "accounts_user")).await else { panic!("no table") };
        assert!(e.to_string().contains("accounts_user"), "{e}");
        assert!(DjangoUsers::connect(DjangoOptions::read(&url, "x; DROP TABLE auth_user")).await.is_err());
    }
}
