//! The api binary's gateways: `support`'s (a real TCP port, a real SQLite file, user `alice`)
//! on a clock that stands still at [`epoch`] until a test moves it (`gw.clock().advance(…)`), so
//! no test sleeps for an expiry or a TOTP step.

use sessiongate::clock::ManualClock;
use sessiongate::config::Config;

pub use crate::support::{Browser, Gateway, PASSWORD, USER, problem};

/// Where every test gateway's clock starts: one second into a TOTP time step, the same for
/// the whole test binary, so codes computed from it match the server's whatever the wall clock
/// does meanwhile.
pub fn epoch() -> i64 {
    static EPOCH: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(|| chrono::Utc::now().timestamp() / 30 * 30 + 1)
}

/// Start a gateway configured by `toml`.
pub async fn start(toml: &str) -> Gateway {
    start_with(toml, |_| {}).await
}

/// [`start`], with `edit` applied to the loaded config.
pub async fn start_with(toml: &str, edit: impl FnOnce(&mut Config) + Send + 'static) -> Gateway {
    crate::support::gateway(toml).clock(ManualClock::starting_at(epoch())).edit(edit).start().await
}
