//! The command line (SPEC §2). Exit codes: 0 success, 1 runtime failure, 2 usage or
//! configuration error.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::{self, Overrides, Settings};
use crate::server::{self, Stores};
use crate::users::{NewUser, User};

#[derive(Parser, Debug)]
#[command(name = "sessiongate", version, about = "Cookie-session authentication gateway for single-page apps")]
pub struct Cli {
    /// Config file (default: ./sessiongate.toml if present, else built-in defaults).
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Write a commented sessiongate.toml with a fresh secret.
    Init {
        #[arg(long, value_enum, default_value = "same-origin")]
        mode: InitMode,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// Where to write it.
        #[arg(long, default_value = "sessiongate.toml")]
        output: PathBuf,
    },
    /// Validate the configuration and check that stores and upstreams are reachable.
    Check,
    /// Apply store migrations without serving.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// List and revoke sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Copy users (with their password hashes) from a Django database into the native user store.
    ///
    /// Hashes are kept as they are: Django's formats verify at login and are replaced by
    /// Argon2id after the first successful one. Existing usernames are skipped.
    ImportDjango {
        /// The Django database: sqlite:///abs/path/db.sqlite3, sqlite://relative.db or postgres://…
        #[arg(long = "from", value_name = "URL")]
        from: String,
        /// The user table (a custom user model's db_table).
        #[arg(long, default_value = "auth_user")]
        table: String,
    },
    /// Create a local CA and a server certificate for testing HTTPS (never for production).
    DevCert {
        /// DNS name or IP address for the certificate (repeatable).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Directory for ca.pem, ca-key.pem, cert.pem, key.pem.
        #[arg(long, default_value = "./sessiongate-dev-cert")]
        out: PathBuf,
    },
    /// Password hashing tools.
    #[command(subcommand)]
    Hash(HashCommand),
    /// Show the audit log: authentication events, oldest first (the most recent --limit).
    ///
    /// Read from the `audit_events` table of the user store's SQL database (or the session
    /// store's). Without one, events are only in the log (tracing target `sessiongate::audit`).
    Audit {
        /// Only events naming this user (username, case-insensitive; failed logins included).
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Only events this recent, e.g. 1h, 7d.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        since: Option<std::time::Duration>,
        /// At most this many events (the most recent ones).
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        /// One JSON array of events instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum HashCommand {
    /// Suggest Argon2id parameters costing about --target per hash on this machine.
    Calibrate {
        #[arg(long, default_value = "250ms", value_parser = parse_duration)]
        target: std::time::Duration,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::config::types::parse_duration(s)
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (server.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory of the SPA to serve (spa.dir); "off" for none.
    #[arg(long, value_name = "DIR")]
    pub spa: Option<String>,
    /// Proxy a path prefix to an upstream, e.g. --route /api/=http://127.0.0.1:8000 (repeatable).
    #[arg(long, value_name = "PREFIX=URL")]
    pub route: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum InitMode {
    SameOrigin,
    CrossOrigin,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user. Without --password-stdin: prompt on a terminal, else generate and print one.
    Add {
        name: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (revokes all their sessions).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user (revokes all their sessions).
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// Remove a user and revoke their sessions.
    Remove { name: String },
}

#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// List live sessions.
    List {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke one session by id, or all of a user's with --user.
    Revoke {
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
}

/// A failure with its exit code.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure { code: 2, message: message.into() }
    }
    fn runtime(message: impl Into<String>) -> Self {
        Failure { code: 1, message: message.into() }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::runtime(format!("{e:#}"))
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // One TLS crypto provider for the whole process (rustls panics if two are ambiguous).
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    init_tracing();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("SESSIONGATE_LOG_FORMAT").is_ok_and(|v| v == "json");
    // Colours only on a terminal: log files and journald get plain text (and formatting the
    // escape codes was a measurable share of every request's span).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn settings(cli: &Cli, overrides: &Overrides) -> Result<Settings, Failure> {
    let cfg = config::load(cli.config.as_deref(), overrides).map_err(|e| Failure::usage(e.to_string()))?;
    cfg.validate().map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        Failure::usage(format!("invalid configuration:\n  {}", lines.join("\n  ")))
    })
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Serve(args) => {
            let mut routes = Vec::new();
            for r in &args.route {
                let (p, u) = r.split_once('=').ok_or_else(|| {
                    Failure::usage(format!("--route `{r}`: write PREFIX=URL, e.g. /api/=http://127.0.0.1:8000"))
                })?;
                routes.push((p.to_owned(), u.to_owned()));
            }
            let overrides = Overrides { listen: args.listen.clone(), spa_dir: args.spa.clone(), routes };
            let s = settings(&cli, &overrides)?;
            server::serve(s).await?;
            Ok(())
        }
        Command::Init { mode, force, output } => init(*mode, *force, output),
        Command::DevCert { hosts, out } => {
            let c = crate::devcert::generate(hosts, out)?;
            println!(
                "wrote {}, {} and {} (CA: {})",
                c.cert.display(),
                c.key.display(),
                out.join("ca-key.pem").display(),
                c.ca_cert.display()
            );
            println!("serve with: [server] tls_cert = \"{}\", tls_key = \"{}\"", c.cert.display(), c.key.display());
            println!(
                "trust {} in your browser, or start Chromium with --ignore-certificate-errors-spki-list={}",
                c.ca_cert.display(),
                c.spki_sha256
            );
            Ok(())
        }
        Command::Hash(HashCommand::Calibrate { target }) => {
            let target = *target;
            let (m, t, took) = tokio::task::spawn_blocking(move || crate::calibrate::calibrate(target))
                .await
                .map_err(|e| Failure::runtime(e.to_string()))?;
            println!("Argon2id with memory_kib = {m}, iterations = {t}, parallelism = 1 takes {took:.0?} here.");
            println!("[users]\nargon2 = {{ memory_kib = {m}, iterations = {t}, parallelism = 1 }}");
            Ok(())
        }
        Command::Check => check(&cli).await,
        Command::Migrate => {
            let s = settings(&cli, &Overrides::default())?;
            server::open_stores(&s).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::User(cmd) => {
            let s = settings(&cli, &Overrides::default())?;
            let stores = server::open_stores(&s).await?;
            user_command(&s, &stores, cmd).await
        }
        Command::Session(cmd) => {
            let s = settings(&cli, &Overrides::default())?;
            let stores = server::open_stores(&s).await?;
            session_command(&stores, cmd).await
        }
        Command::ImportDjango { from, table } => {
            let s = settings(&cli, &Overrides::default())?;
            import_django(&s, from, table).await
        }
        Command::Audit { user, since, limit, json } => {
            let s = settings(&cli, &Overrides::default())?;
            let stores = server::open_stores(&s).await?;
            audit_command(&stores, user.as_deref(), *since, *limit, *json).await
        }
    }
}

/// `sessiongate audit`.
/// Text as a terminal should print it: control characters (C0, DEL, C1) and bidirectional
/// overrides escaped as `\u{…}`, so a username or user agent cannot move the cursor, rewrite
/// earlier lines or reorder a column when an operator reads the table.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(bad) {
        return text.into();
    }
    text.chars().map(|c| if bad(c) { format!("\\u{{{:x}}}", c as u32) } else { c.to_string() }).collect()
}

async fn audit_command(
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
async fn cli_audit(stores: &Stores, event: crate::audit::Event, user: &User, detail: String) {
    let e = crate::audit::AuditEvent::new(event, crate::audit::Outcome::Success)
        .user(user.id, &user.username)
        .detail(detail);
    tracing::info!(target: "sessiongate::audit", event = event.as_str(), user_id = user.id, username = %user.username, "audit {event} success");
    if let Err(err) = stores.audit.insert(std::slice::from_ref(&e)).await {
        tracing::warn!(target: "sessiongate::audit", error = %err, "audit row could not be written");
    }
}

fn init(mode: InitMode, force: bool, output: &std::path::Path) -> Result<(), Failure> {
    if output.exists() && !force {
        return Err(Failure::runtime(format!("{} already exists; pass --force to overwrite it", output.display())));
    }
    let text = crate::config::template(matches!(mode, InitMode::CrossOrigin), &crate::secret::random_b64(32));
    crate::secret::write_private(output, text.as_bytes())
        .map_err(|e| Failure::runtime(format!("writing {}: {e}", output.display())))?;
    println!("wrote {}", output.display());
    Ok(())
}

async fn check(cli: &Cli) -> Result<(), Failure> {
    let s = settings(cli, &Overrides::default())?;
    for w in s.warnings.iter().cloned().chain(crate::server::permission_warnings(&s)) {
        println!("warning: {w}");
    }
    let mut problems = Vec::new();
    match server::open_stores(&s).await {
        Ok(stores) => {
            if let Err(e) = stores.sessions.store().ping().await {
                problems.push(format!("session store: {e}"));
            }
            if let Err(e) = stores.users.ping().await {
                problems.push(format!("user store: {e}"));
            }
        }
        Err(e) => problems.push(format!("stores: {e:#}")),
    }
    for r in &s.routes {
        let host = r.upstream.host_str().unwrap_or("");
        let port = r.upstream.port_or_known_default().unwrap_or(80);
        let connect = tokio::net::TcpStream::connect((host, port));
        match tokio::time::timeout(std::time::Duration::from_secs(3), connect).await {
            Ok(Ok(_)) => {}
            _ => problems.push(format!("route {}: upstream {} is not reachable", r.prefix, r.upstream)),
        }
    }
    if problems.is_empty() {
        println!("configuration ok; stores and upstreams reachable");
        Ok(())
    } else {
        Err(Failure::runtime(problems.join("\n")))
    }
}

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

async fn find_user(stores: &Stores, name: &str) -> Result<User, Failure> {
    let user = stores.users.find_by_login(name).await.map_err(|e| Failure::runtime(e.to_string()))?;
    user.ok_or_else(|| Failure::runtime(format!("no user named `{name}`")))
}

async fn user_command(s: &Settings, stores: &Stores, cmd: &UserCommand) -> Result<(), Failure> {
    let rt = |e: &dyn std::fmt::Display| Failure::runtime(e.to_string());
    let min = s.raw.users.password_min_length;
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
            let n = stores.sessions.revoke_all(user.id, None).await.map_err(|e| rt(&e))?;
            // Pending email changes die with the old password (their links check it too).
            for purpose in [crate::users::TokenPurpose::EmailChange, crate::users::TokenPurpose::EmailCancel] {
                let _ = stores.users.revoke_tokens(user.id, purpose).await;
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
    }
    Ok(())
}

/// `user add`, `remove`, `enable` and `disable` cannot work on Django's table.
fn refuse_read_only(s: &Settings, what: &str) -> Result<(), Failure> {
    if s.raw.users.store == "django" {
        return Err(Failure::usage(format!(
            "users.store = \"django\" is read-only: {what} the user in Django (the admin, `manage.py createsuperuser`); \
             sessiongate only changes passwords there (`sessiongate user passwd`)"
        )));
    }
    Ok(())
}

/// `sessiongate import-django`: Django users into the native store, hashes as they are.
async fn import_django(s: &Settings, from: &str, table: &str) -> Result<(), Failure> {
    use crate::users::django::{DjangoOptions, DjangoUsers, is_identifier};
    use crate::users::{UserStore as _, UserStoreError};
    if s.raw.users.store == "django" {
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
    let stores = server::open_stores(s).await?;
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

async fn session_command(stores: &Stores, cmd: &SessionCommand) -> Result<(), Failure> {
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
    }
}
