//! Store operation timings for `sessiongate_store_operation_duration_seconds`. The stores and
//! the session layer record here; [`crate::metrics`] switches it on when it installs the
//! Prometheus recorder (only with an admin listener). Off, a call is one atomic load: no
//! labelled key is built on every request for the facade's no-op recorder.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Start recording (the metrics recorder is installed).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Time one store operation.
pub fn record(store: &'static str, op: &'static str, took: Duration) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    ::metrics::histogram!("sessiongate_store_operation_duration_seconds", "store" => store, "op" => op)
        .record(took.as_secs_f64());
}
