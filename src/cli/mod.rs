//! The command line (SPEC §2). Exit codes: 0 success, 1 runtime failure, 2 usage or
//! configuration error.

mod args;
mod audit;
mod sessions;
mod setup;
mod users;

use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command, HashCommand, InitMode, ServeArgs, SessionCommand, UserCommand};
use audit::audit_command;
use sessions::session_command;
use setup::{check, init};
use users::{import_django, user_command};

use crate::config::{self, Overrides, Settings};
use crate::server;

/// A failure with its exit code.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub(super) fn usage(message: impl Into<String>) -> Self {
        Failure { code: 2, message: message.into() }
    }
    pub(super) fn runtime(message: impl Into<String>) -> Self {
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
    init_tracing(matches!(cli.command, Command::Serve(_)));
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

/// Logs go to stderr: `info` for `serve`; for the other commands `warn`, so that a command's
/// own output is not interleaved with its audit and store lines (`RUST_LOG=info` shows them).
fn init_tracing(serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
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

pub(super) fn settings(cli: &Cli, overrides: &Overrides) -> Result<Settings, Failure> {
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
