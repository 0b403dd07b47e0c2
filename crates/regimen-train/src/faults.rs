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
//!
//! All of it exists only with the `fault-injection` feature, which the CLI's tests turn on (as a
//! dev-dependency feature, so only test builds have it): a release binary has no such switch, and
//! a stray `REGIMEN_FAULT` in a user's environment does nothing there.

#[cfg(feature = "fault-injection")]
use std::sync::OnceLock;
#[cfg(feature = "fault-injection")]
use std::sync::atomic::{AtomicU64, Ordering};

/// The name of the environment variable.
#[cfg(feature = "fault-injection")]
pub const ENV: &str = "REGIMEN_FAULT";

/// A place where a fault can be injected.
#[cfg_attr(not(feature = "fault-injection"), allow(dead_code))] // named at every site, planted only in tests
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

#[cfg(feature = "fault-injection")]
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

#[cfg(feature = "fault-injection")]
struct Plan {
    fault: Fault,
    at: u64,
    arrivals: AtomicU64,
}

#[cfg(feature = "fault-injection")]
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
#[cfg(feature = "fault-injection")]
fn due(fault: Fault) -> bool {
    plan().is_some_and(|plan| plan.fault == fault && plan.arrivals.fetch_add(1, Ordering::Relaxed) + 1 == plan.at)
}

/// Kills the process with SIGKILL when the plan names this arrival at `fault`.
#[cfg(feature = "fault-injection")]
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
#[cfg(feature = "fault-injection")]
pub fn disk_full() -> std::io::Result<()> {
    if due(Fault::DiskFull) {
        return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(())
}

/// Without the `fault-injection` feature there are no faults.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn hit(_fault: Fault) {}

/// Without the `fault-injection` feature a write never fails on purpose.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn disk_full() -> std::io::Result<()> {
    Ok(())
}
