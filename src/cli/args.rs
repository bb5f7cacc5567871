//! The command line's arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
        /// same-origin: the SPA on the gateway's origin (embedded or behind one proxy);
        /// cross-origin: the SPA elsewhere, calling the API with CORS.
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
        /// How long one password hash should take here (30s, 250ms…).
        #[arg(long, default_value = "250ms", value_parser = parse_duration, value_name = "DURATION")]
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
        /// The username (case-insensitive; an address here must be the account's own --email).
        name: String,
        /// The account's email address (password resets and notices go there).
        #[arg(long, value_name = "ADDRESS")]
        email: Option<String>,
        /// Read the password from standard input (one line), e.g. from a secret manager.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (revokes all their sessions).
    Passwd {
        /// The username or email address.
        name: String,
        /// Read the password from standard input (one line); otherwise prompt, or generate one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user (revokes all their sessions).
    Disable {
        /// The username or email address.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The username or email address.
        name: String,
    },
    /// Remove a user and revoke their sessions.
    Remove {
        /// The username or email address.
        name: String,
    },
    /// List a user's passkeys.
    Passkeys {
        /// The username or email address.
        name: String,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove one of a user's passkeys (a lost device), even the last one: give the user a
    /// password first (`user passwd`) if it was their only way to log in.
    PasskeyRemove {
        /// The username or email address.
        name: String,
        /// The passkey's id, from `user passkeys NAME`.
        id: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// List live sessions.
    List {
        /// Only this user's (username or email address).
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one session by id, or all of a user's with --user.
    #[command(override_usage = "sessiongate session revoke <ID>\n       sessiongate session revoke --user <NAME>")]
    Revoke {
        /// The session's public id (the ID column of `session list`); or give --user instead.
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        /// Revoke every session of this user (username or email address) instead.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
}
