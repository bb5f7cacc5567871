//! Redis connection helpers shared by the Redis session store and the Redis rate limiter:
//! the per-call bound, the keep-alive that makes a reconnection ready before the next request,
//! and when a failed command may be sent again.

use std::time::Duration;

use redis::RedisError;
use redis::aio::ConnectionManager;

/// Bound on every store call (including reconnection waits).
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// How often an idle connection is exercised (see [`keep_alive`]).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_millis(500);

/// A background `PING` on a [`ConnectionManager`] every [`KEEPALIVE_INTERVAL`], stopped on drop.
///
/// The manager reconnects only when a command fails, and hands a failed reconnection attempt
/// to the next command before trying again. Without traffic, the first request after Redis
/// comes back would therefore still fail; with this, a working connection is ready within about
/// half a second of Redis answering again, even on an idle instance.
pub struct KeepAlive(tokio::task::AbortHandle);

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn keep_alive(conn: &ConnectionManager) -> KeepAlive {
    let mut conn = conn.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(KEEPALIVE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let ping = ::redis::cmd("PING");
            let _ = tokio::time::timeout(OP_TIMEOUT, ping.query_async::<String>(&mut conn)).await;
        }
    });
    KeepAlive(task.abort_handle())
}

/// Whether a command failed before anything was sent (the manager's stored reconnection
/// attempt had failed), so running it again cannot apply it twice.
pub fn never_sent(e: &RedisError) -> bool {
    e.is_io_error() && e.to_string().starts_with("Reconnecting failed")
}
