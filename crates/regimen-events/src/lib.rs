//! What a training run reports, and where it goes.
//!
//! The training loop emits [`Event`]s into an [`EventSink`] and knows nothing else about logging:
//! a JSON-lines file today, the embedded run store tomorrow, both at once through [`Tee`]. Keeping the
//! contract this small is what lets a store plug in without touching the loop.
//!
//! Events borrow their payloads so that emitting a scalar on the hot path allocates nothing; a sink
//! that needs to keep an event copies what it needs.

mod jsonl;

pub use jsonl::JsonLinesSink;

pub use regimen_metrics::{Monitored, TaskInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still training.
    Running,
    /// Ran all requested epochs.
    Finished,
    /// A stopping rule ended it before the last epoch.
    StoppedEarly,
    /// The loss or a metric became NaN or infinite, or blew up.
    Diverged,
    /// The user interrupted it (Ctrl-C or SIGTERM).
    Interrupted,
    /// An error ended it.
    Failed,
}

impl RunStatus {
    /// The lowercase name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::StoppedEarly => "stopped_early",
            RunStatus::Diverged => "diverged",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
        }
    }
}

/// Everything recorded once when a run starts: what ran, on what, with which settings, and the
/// facts every later reader needs (the resolved monitor, the task) so that none of them re-derives
/// what the trainer decided.
#[derive(Debug, Clone, Serialize)]
pub struct RunStart {
    /// Unique id of the run.
    pub run_id: String,
    /// Human-readable name built from the model, data and key hyperparameters.
    pub name: String,
    /// The experiment that groups the run.
    pub experiment: String,
    /// Start time, RFC 3339 in UTC.
    pub started_at: String,
    /// The seed that drives initialization, shuffling, augmentation and dropout.
    pub seed: u64,
    /// The metric that selects the `best` checkpoint and drives early stopping and
    /// reduce-on-plateau, with its direction, as resolved for this run.
    pub monitor: Monitored,
    /// What the run predicts, with its trivial baseline.
    pub task: TaskInfo,
    /// The hyperparameters that apply to this run (an MLP run has no `channels`), without
    /// bookkeeping such as the store, the experiment, name templates or the device: what
    /// filters, sweeps and dashboards compare runs by.
    pub params: Value,
    /// The fully resolved configuration, bookkeeping included, as replayed by `--config`.
    pub config: Value,
    /// Dataset identity: name, fingerprint, split seed, fractions and sizes.
    pub dataset: Value,
    /// Where and how the run was started.
    pub provenance: Provenance,
    /// Versions, thread count, parameter count and other facts about the environment.
    pub environment: Value,
}

/// Where and how a run was started: what a rerun needs besides its config and data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Host name.
    pub host: Option<String>,
    /// The command line, quoted for a POSIX shell.
    pub command: Option<String>,
    /// Git commit of the working folder.
    pub git_commit: Option<String>,
    /// Whether the working folder had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// The sweep this run is a trial of, if any.
    pub sweep_id: Option<String>,
    /// The trial within that sweep.
    pub trial_id: Option<String>,
    /// The run whose weights this run started from (`--init-from`): its lineage.
    #[serde(default)]
    pub init_run: Option<String>,
    /// The weights file it started from, with its BLAKE3 hash.
    #[serde(default)]
    pub init_weights: Option<String>,
}

/// One thing that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The run started.
    RunStarted(&'a RunStart),
    /// The run continues from a checkpoint taken at step `from_step`, after its process stopped:
    /// whatever was recorded for later steps is superseded, because the run records those steps
    /// again.
    RunResumed {
        /// The optimizer step of the checkpoint.
        from_step: u64,
        /// The checkpoint folder.
        checkpoint: &'a str,
    },
    /// A scalar measurement, e.g. `train.loss` at a step or `val.acc` at an epoch end.
    Scalar {
        /// Dotted metric key: `train.loss`, `val.macro_f1`, `sys.samples_per_sec`, `lr`.
        key: &'a str,
        /// Optimizer steps taken so far in the run.
        step: u64,
        /// Epoch the measurement belongs to (1-based).
        epoch: u64,
        /// The value.
        value: f64,
    },
    /// A structured report too rich for scalars: per-class statistics, a confusion matrix.
    Report {
        /// What the report is about: `val`, `test`, `train_eval`.
        split: &'a str,
        /// Optimizer steps taken so far.
        step: u64,
        /// Epoch (1-based).
        epoch: u64,
        /// The report itself.
        body: &'a Value,
    },
    /// A file the run produced (a checkpoint, an export).
    Artifact {
        /// What the file is: `checkpoint.best`, `checkpoint.last`.
        kind: &'a str,
        /// Where it is.
        path: &'a str,
        /// Its size in bytes.
        bytes: u64,
    },
    /// A human-readable notice worth keeping with the run (a warning, a stop reason).
    Notice {
        /// `info` or `warn`.
        level: &'a str,
        /// The message.
        message: &'a str,
    },
    /// The run ended.
    RunEnded {
        /// How it ended.
        status: RunStatus,
        /// Why, in a sentence, when it did not simply finish.
        reason: Option<&'a str>,
        /// Wall-clock seconds the run took.
        seconds: f64,
    },
}

/// Errors a sink can report.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing to a file failed.
    #[error("could not write run events to {path}: {source}")]
    Io {
        /// The file being written.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// Receives the events of one run.
///
/// Contract: `record` is called from the training thread for every event in order, including on the
/// hot path, so implementations must not block on disk or network there: buffer, and do the slow
/// work in `flush` or on a thread of their own. `flush` is called at every epoch end and when the
/// run ends (normally or not); after it returns `Ok`, every event recorded before it is durable.
/// Errors from `record` may be reported late, by the next `flush`.
pub trait EventSink: Send {
    /// Accepts one event.
    fn record(&mut self, event: &Event<'_>) -> Result<(), SinkError>;

    /// Makes every event recorded so far durable.
    fn flush(&mut self) -> Result<(), SinkError>;
}

/// A sink that drops everything: for library users who do not want a log, and for benchmarks that
/// measure the loop without logging.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn record(&mut self, _event: &Event<'_>) -> Result<(), SinkError> {
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Sends every event to two sinks, the first one first.
pub struct Tee<A, B>(pub A, pub B);

impl<A: EventSink, B: EventSink> EventSink for Tee<A, B> {
    fn record(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        self.0.record(event)?;
        self.1.record(event)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.0.flush()?;
        self.1.flush()
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn record(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        (**self).record(event)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }
}
