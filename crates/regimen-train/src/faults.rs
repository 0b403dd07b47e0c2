//! Fault injection for the crash-safety tests, driven by the `REGIMEN_FAULT` environment variable.
//!
//! `REGIMEN_FAULT=POINT:N` makes the N-th (1-based) arrival at POINT fail:
//! - `step:N`: SIGKILL right after the N-th optimizer step, before it is logged;
//! - `validation:N`: SIGKILL during the N-th validation, after the model ran, before its results
//!   are logged;
//! - `checkpoint:N`: SIGKILL in the middle of writing the N-th checkpoint (weights written, the
//!   rest not);
//! - `disk-full:N`: the N-th checkpoint file write fails with ENOSPC, as on a full disk.
//!
//! The process kills itself with a real SIGKILL, so nothing (no destructor, no flush) runs after
//! it: exactly what `kill -9` or the out-of-memory killer does. Unset, each check costs one load
//! of an initialized `OnceLock`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The name of the environment variable.
pub const ENV: &str = "REGIMEN_FAULT";

/// A place where a fault can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// After an optimizer step.
    Step,
    /// During a validation.
    Validation,
    /// During a checkpoint write.
    CheckpointWrite,
    /// A checkpoint file write (fails with ENOSPC instead of killing).
    DiskFull,
}

impl Fault {
    fn parse(name: &str) -> Option<Fault> {
        match name {
            "step" => Some(Fault::Step),
            "validation" => Some(Fault::Validation),
            "checkpoint" => Some(Fault::CheckpointWrite),
            "disk-full" => Some(Fault::DiskFull),
            _ => None,
        }
    }
}

struct Plan {
    fault: Fault,
    at: u64,
    arrivals: AtomicU64,
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let text = std::env::var(ENV).ok()?;
        let (name, at) = text.split_once(':')?;
        let plan = Plan { fault: Fault::parse(name)?, at: at.parse().ok()?, arrivals: AtomicU64::new(0) };
        Some(plan)
    })
    .as_ref()
}

/// Whether this arrival at `fault` is the one the plan names.
fn due(fault: Fault) -> bool {
    plan().is_some_and(|plan| plan.fault == fault && plan.arrivals.fetch_add(1, Ordering::Relaxed) + 1 == plan.at)
}

/// Kills the process with SIGKILL when the plan names this arrival at `fault`.
pub fn hit(fault: Fault) {
    if due(fault) {
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        std::process::abort();
    }
}

/// Fails with ENOSPC when the plan names this checkpoint file write.
pub fn disk_full() -> std::io::Result<()> {
    if due(Fault::DiskFull) {
        return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(())
}
