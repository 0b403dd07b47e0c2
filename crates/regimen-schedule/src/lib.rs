//! Learning-rate schedules for Regimen.
//!
//! A schedule here is a pure state machine: the training loop asks it for the learning rate of each
//! optimizer step and tells it each validation result, and hands the rate to the optimizer itself.
//! The schedule never sees a model, an optimizer or a tensor, so it builds and tests in seconds,
//! every schedule is checked against its published formula on plain numbers, and a resumed run gets
//! the same rates as an uninterrupted one from a small serializable state.
//!
//! [`ScheduleSpec`] is the configuration (serde, or the short CLI syntax of its `FromStr`), and
//! [`Scheduler`] the spec resolved against a base learning rate and a run length, with every
//! argument validated once, in [`Scheduler::new`]. The rate of a step is a pure function of the step
//! and of the little state that only reduce-on-plateau has ([`SchedulerState`]).

mod parse;
mod scheduler;
mod spec;

pub use scheduler::{Scheduler, SchedulerState};
pub use spec::ScheduleSpec;

/// An error from parsing a schedule, building a [`Scheduler`] or restoring its state.
///
/// Every message names the argument and echoes the value received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// An argument of [`Scheduler::new`] is out of range.
    #[error("{name} must be {expected}, got {value}")]
    InvalidArgument {
        /// The argument, prefixed by its schedule where it belongs to one (`"step gamma"`).
        name: &'static str,
        /// The accepted range, in words.
        expected: &'static str,
        /// The value received.
        value: String,
    },
    /// A schedule string does not follow the CLI syntax.
    #[error("cannot parse schedule {input:?}: {reason}")]
    Parse {
        /// The string received.
        input: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// A saved [`SchedulerState`] does not fit the scheduler it is restored into.
    #[error("cannot restore scheduler state: {reason}")]
    InvalidState {
        /// What does not fit.
        reason: String,
    },
}
