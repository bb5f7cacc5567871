//! A real Django 5.2 project for the tests that read Django's user table (tests/django.rs,
//! tests/user_store.rs): `tests/django/setup.sh` creates (or reuses) a Python virtualenv with
//! Django, argon2-cffi, bcrypt, gunicorn and psycopg from PyPI, and a small Django project whose
//! users Django itself created (`create_users.py`), one password hasher each. Nothing is
//! skipped: without python3, PyPI or PostgreSQL these fail and say why.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::pg::Schema;

/// The hashers `create_users.py` used, one user `u_{hasher}` each.
pub const HASHERS: [&str; 7] = ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "bcrypt", "scrypt", "md5"];

/// The password `create_users.py` gave each user.
pub fn password_of(username: &str) -> String {
    format!("{username}-Tr0ub4dor&3-staple")
}

/// The prepared project (shared, read-only) and its virtualenv.
pub struct Django {
    pub project: PathBuf,
    pub python: PathBuf,
    /// How long setup.sh took in this run.
    pub setup: Duration,
}

/// Run `tests/django/setup.sh` once per test binary.
pub fn django() -> &'static Django {
    static DJANGO: OnceLock<Django> = OnceLock::new();
    DJANGO.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Leftovers of earlier runs (each run has its own directory).
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(3600));
                if e.file_name().to_string_lossy().starts_with("django-") && old {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let project = root.join(format!("django-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&project);
        let started = Instant::now();
        let out = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/django/setup.sh"))
            .arg(&project)
            .stdin(Stdio::null())
            .output()
            .expect("bash runs tests/django/setup.sh");
        let setup = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tests/django/setup.sh failed ({}): it needs python3 with venv and PyPI.\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let python =
            stdout.lines().find_map(|l| l.strip_prefix("python=")).expect("setup.sh prints python=PATH").into();
        // Django hashed each user with the hasher named in the username.
        let prefixes: Value = stdout
            .lines()
            .find(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .expect("user summary");
        for h in HASHERS {
            assert_eq!(prefixes[format!("u_{h}")], h, "{prefixes}");
        }
        assert!(prefixes["nopass"].as_str().unwrap().starts_with('!'), "{prefixes}");
        eprintln!("tests/django/setup.sh took {setup:.1?}");
        Django { project, python, setup }
    })
}

/// Where a test's Django database lives.
#[derive(Clone)]
pub enum Db {
    Sqlite(PathBuf),
    /// A schema of the test database: (schema, users.url for sessiongate).
    Postgres(String, String),
}

impl Db {
    /// A private copy of the prepared SQLite database.
    pub fn sqlite_copy(dir: &Path) -> Db {
        let path = dir.join("db.sqlite3");
        std::fs::copy(django().project.join("db.sqlite3"), &path).unwrap();
        Db::Sqlite(path)
    }

    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(p) => format!("sqlite://{}", p.display()),
            Db::Postgres(_, url) => url.clone(),
        }
    }

    pub fn env(&self, cmd: &mut Command) {
        match self {
            Db::Sqlite(p) => cmd.env("GATETEST_DB", p),
            Db::Postgres(schema, _) => cmd.env(
                "GATETEST_PG",
                json!({
                    "ENGINE": "django.db.backends.postgresql",
                    "NAME": "test", "USER": "postgres", "HOST": "127.0.0.1", "PORT": "5432",
                    "OPTIONS": { "options": format!("-c search_path={schema}") },
                })
                .to_string(),
            ),
        };
    }
}

/// `manage.py ARGS` in the shared project against `db`; panics with the output on failure.
pub fn manage(db: &Db, args: &[&str]) -> String {
    let dj = django();
    let mut cmd = Command::new(&dj.python);
    cmd.current_dir(&dj.project).arg("manage.py").args(args).stdin(Stdio::null());
    db.env(&mut cmd);
    let out = cmd.output().expect("the virtualenv's python runs");
    assert!(
        out.status.success(),
        "manage.py {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Run Python in `manage.py shell` and parse the JSON it prints last.
pub fn django_shell(db: &Db, code: &str) -> Value {
    let out = manage(db, &["shell", "--no-imports", "-c", code]);
    serde_json::from_str(out.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// What Django's own `authenticate()` (ModelBackend, Django's hashers) says of these passwords.
pub fn django_authenticates(db: &Db, pairs: &[(&str, &str)]) -> Vec<bool> {
    let code = format!(
        "import json\nfrom django.contrib.auth import authenticate\n\
         print(json.dumps([authenticate(username=u, password=p) is not None for u, p in {}]))",
        serde_json::to_string(&pairs.iter().map(|(u, p)| [u, p]).collect::<Vec<_>>()).unwrap()
    );
    serde_json::from_value(django_shell(db, &code)).unwrap()
}

/// Stored hash and last login of `username`, as Django reads them.
pub fn django_user(db: &Db, username: &str) -> Value {
    django_shell(
        db,
        &format!(
            "import json\nfrom django.contrib.auth.models import User\nu = User.objects.get(username={})\n\
             print(json.dumps({{'password': u.password, 'last_login': u.last_login.isoformat() if u.last_login else None}}))",
            json!(username)
        ),
    )
}

impl Db {
    /// A fresh schema of the test PostgreSQL, migrated by Django (psycopg) and holding the users
    /// of the prepared SQLite database (loaded by Django from its `dumpdata`: the same rows and
    /// hashes, without hashing them again); drop the schema when done.
    pub async fn postgres(tag: &str) -> (Db, Schema) {
        let schema = Schema::new(tag).await;
        let db = Db::Postgres(schema.name.clone(), schema.url.clone());
        manage(&db, &["migrate", "--noinput", "-v", "0"]);
        manage(&db, &["loaddata", "-v", "0", users_fixture().to_str().unwrap()]);
        (db, schema)
    }
}

/// The users of the prepared SQLite database (`create_users.py`) as a Django fixture, written
/// once per test binary into its project.
fn users_fixture() -> &'static Path {
    static FIXTURE: OnceLock<PathBuf> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let prepared = Db::Sqlite(django().project.join("db.sqlite3"));
        let path = django().project.join("users.xml");
        // XML: JSON fixtures keep times to the millisecond only.
        manage(&prepared, &["dumpdata", "auth.user", "--format", "xml", "--output", path.to_str().unwrap()]);
        path
    })
}
