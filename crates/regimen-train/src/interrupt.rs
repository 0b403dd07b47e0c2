//! Stopping a run gracefully on Ctrl-C or SIGTERM.
//!
//! The binary connects the signals to [`flag`] (with `signal-hook`); the loop reads it after every
//! step (one relaxed atomic load) and, when set, saves a checkpoint, records the run as
//! `interrupted` and returns, so the run can be continued with `--resume`. Library users may set
//! the flag themselves to stop a run from another thread.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The process-wide stop request.
pub fn flag() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Asks the running fit to stop after its current step.
pub fn request() {
    flag().store(true, Ordering::Relaxed);
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    flag().load(Ordering::Relaxed)
}
