//! The monitor: which metric matters, which way it improves, what counts as progress, and when to
//! stop a run.
//!
//! One [`MonitorSpec`] is read by everything that judges a run, so early stopping, the `best`
//! checkpoint and reduce-on-plateau never disagree about which evaluation was best. A [`Monitor`]
//! applies the spec and the [`StoppingRules`] to a run's evaluations as pure, serializable state:
//! a resumed run stops exactly where the uninterrupted one would. Knows nothing about Burn.

mod spec;
mod stopping;

pub use regimen_metrics::Mode;
pub use spec::{MinDelta, MonitorSpec, Span, Unit};
pub use stopping::{Mark, Monitor, MonitorState, Position, StopReason, StoppingRules, Verdict};

/// A monitor setting that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MonitorError {
    /// A value did not parse.
    #[error("invalid {what} `{text}`: expected {expected}")]
    Parse {
        /// Which setting.
        what: &'static str,
        /// The text given.
        text: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The direction of the metric is not known.
    #[error("cannot tell whether `{metric}` should go up or down; give --monitor-mode min or max")]
    UnknownMode {
        /// The metric.
        metric: String,
    },
    /// The run does not log the metric.
    #[error("the run does not log `{metric}`; it logs: {available}")]
    UnknownMetric {
        /// The metric asked for.
        metric: String,
        /// The keys the run logs, sorted.
        available: String,
    },
}
