//! What the store keeps about a run, as plain values shared by every implementation.
//!
//! These types are the vocabulary of the [`crate::RunStore`] contract: writes go in as [`Write`]s
//! that borrow their payloads (so the sink's writer thread builds a batch without copying), reads
//! come out as owned [`RunRow`]s (one line of `regimen runs`) and [`RunDetail`]s (`regimen show`).
//! They know nothing of SQL; the SQLite and a future PostgreSQL store map them to tables.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use regimen_events::{Provenance, RunStart, RunStatus};
use regimen_metrics::{Mode, Monitored, TaskInfo};
use serde_json::Value;

use crate::time::Timestamp;

/// Where a run stands, as the store sees it.
///
/// This is the training crate's [`RunStatus`] plus the two endings only an outside observer can
/// tell: [`RunState::Killed`] (a supervisor ended it) and [`RunState::Crashed`] (its heartbeat
/// stopped without an ending being recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunState {
    /// Still training, heartbeat fresh.
    Running,
    /// Ran all requested epochs.
    Finished,
    /// A stopping rule ended it before the last epoch.
    StoppedEarly,
    /// The loss or a metric became NaN or infinite.
    Diverged,
    /// An error ended it.
    Failed,
    /// The user interrupted it (Ctrl-C or SIGTERM).
    Interrupted,
    /// A supervisor ended it (a sweep's early-termination scheduler; nothing sets it yet).
    Killed,
    /// It stopped sending heartbeats without recording an end: the process died.
    Crashed,
}

impl RunState {
    /// Every state, in declaration order.
    pub const ALL: [RunState; 8] = [
        RunState::Running,
        RunState::Finished,
        RunState::StoppedEarly,
        RunState::Diverged,
        RunState::Failed,
        RunState::Interrupted,
        RunState::Killed,
        RunState::Crashed,
    ];

    /// The lowercase name used in the database and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::StoppedEarly => "stopped_early",
            RunState::Diverged => "diverged",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
            RunState::Killed => "killed",
            RunState::Crashed => "crashed",
        }
    }

    /// The state with this name, if any.
    pub fn parse(name: &str) -> Option<RunState> {
        RunState::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<RunStatus> for RunState {
    fn from(status: RunStatus) -> RunState {
        match status {
            RunStatus::Running => RunState::Running,
            RunStatus::Finished => RunState::Finished,
            RunStatus::StoppedEarly => RunState::StoppedEarly,
            RunStatus::Diverged => RunState::Diverged,
            RunStatus::Interrupted => RunState::Interrupted,
            RunStatus::Failed => RunState::Failed,
        }
    }
}

/// Everything recorded once when a run starts. Immutable once written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// Unique id; also the name of the run's folder, so it may not contain `/`, `\` or be `.`/`..`.
    pub run_id: String,
    /// Human-readable name.
    pub name: String,
    /// The experiment the run belongs to; created on first use.
    pub experiment: String,
    /// When the run started.
    pub started_at: Timestamp,
    /// The seed.
    pub seed: u64,
    /// The monitored metric and its direction, as the run resolved them; `None` for runs
    /// recorded before the store kept it.
    pub monitor: Option<Monitored>,
    /// What the run predicts; `None` for runs recorded before the store kept it.
    pub task: Option<TaskInfo>,
    /// The hyperparameters that apply to the run; flattened into params for filtering.
    pub params: Value,
    /// The fully resolved configuration.
    pub config: Value,
    /// Dataset identity.
    pub dataset: Value,
    /// Host, command line, git state, sweep link.
    pub provenance: Provenance,
    /// Versions, thread count and other facts about the environment.
    pub environment: Value,
}

impl NewRun {
    /// Builds the record from a run's start event. A start time that is not RFC 3339 is replaced
    /// by `now`.
    pub fn from_start(start: &RunStart, now: Timestamp) -> NewRun {
        NewRun {
            run_id: start.run_id.clone(),
            name: start.name.clone(),
            experiment: start.experiment.clone(),
            started_at: Timestamp::parse_rfc3339(&start.started_at).unwrap_or(now),
            seed: start.seed,
            monitor: Some(start.monitor.clone()),
            task: Some(start.task),
            params: start.params.clone(),
            config: start.config.clone(),
            dataset: start.dataset.clone(),
            provenance: start.provenance.clone(),
            environment: start.environment.clone(),
        }
    }
}

/// One write to a run, as batched by the sink's writer thread.
///
/// A batch of writes to one run is applied atomically by [`crate::RunStore::write`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Write<'a> {
    /// Creates the run (status `running`, heartbeat at its start time). Must come first.
    Start(&'a NewRun),
    /// One point of a metric series.
    Scalar {
        /// Dotted metric key.
        key: &'a str,
        /// Optimizer steps so far.
        step: u64,
        /// Epoch (1-based).
        epoch: u64,
        /// When it was recorded.
        wall: Timestamp,
        /// The value; NaN and infinities are kept.
        value: f64,
    },
    /// A structured report.
    Report {
        /// `val`, `test`...
        split: &'a str,
        /// Optimizer steps so far.
        step: u64,
        /// Epoch (1-based).
        epoch: u64,
        /// When it was recorded.
        wall: Timestamp,
        /// The report.
        body: &'a Value,
    },
    /// A file the run produced; a later write with the same path replaces the earlier one.
    Artifact {
        /// `checkpoint.best`, `checkpoint.last`...
        kind: &'a str,
        /// Where the file is.
        path: &'a str,
        /// Its size.
        bytes: u64,
        /// BLAKE3 of its content, hex, when the file could be read.
        checksum: Option<&'a str>,
        /// When it was recorded.
        wall: Timestamp,
    },
    /// A notice from the training loop, kept as a note of kind `info` or `warn`; or a person's
    /// note with its original time (`note`), as a copy between stores writes it.
    Notice {
        /// `info`, `warn` or `note` (anything else counts as `info`).
        level: &'a str,
        /// The message.
        message: &'a str,
        /// When it was recorded.
        wall: Timestamp,
    },
    /// The run is alive at `at`. A run marked crashed that heartbeats again goes back to running.
    Heartbeat {
        /// The time.
        at: Timestamp,
    },
    /// The run continues from a checkpoint taken at optimizer step `from_step` (a resumed run):
    /// metric points and reports stored with a later step are dropped, since the run logs those
    /// steps again, and the run is `running` again with no end. Applies to what was stored before
    /// the batch; put it first.
    Resume {
        /// The step of the checkpoint the run continues from.
        from_step: u64,
        /// When.
        at: Timestamp,
    },
    /// The run ended.
    End {
        /// How.
        status: RunState,
        /// Why, when it did not simply finish.
        reason: Option<&'a str>,
        /// When.
        at: Timestamp,
    },
}

/// A configuration value usable in filters: numbers and strings; booleans become `'true'`/`'false'`.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A number (integers too).
    Number(f64),
    /// A string, boolean or array (arrays as JSON text).
    Text(String),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Number(n) => write!(f, "{n}"),
            ParamValue::Text(s) => f.write_str(s),
        }
    }
}

/// Flattens a configuration into dotted keys: `{"optim": {"lr": 0.1}}` gives `optim.lr = 0.1`.
///
/// Nulls are left out; arrays are kept whole as JSON text.
pub fn flatten_params(config: &Value) -> BTreeMap<String, ParamValue> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeMap<String, ParamValue>) {
        let join = |key: &str| if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") };
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(&join(k), v, out)),
            Value::Null => {}
            _ if prefix.is_empty() => {}
            Value::Number(n) => {
                out.insert(prefix.to_string(), ParamValue::Number(n.as_f64().unwrap_or(f64::NAN)));
            }
            Value::String(s) => {
                out.insert(prefix.to_string(), ParamValue::Text(s.clone()));
            }
            Value::Bool(b) => {
                out.insert(prefix.to_string(), ParamValue::Text(b.to_string()));
            }
            Value::Array(_) => {
                out.insert(prefix.to_string(), ParamValue::Text(value.to_string()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", config, &mut out);
    out
}

/// A finite extreme of a series: its value, and the step and epoch where the series first reached
/// it (unknown for series recorded before the store kept them).
pub type Extreme = (f64, Option<u64>, Option<u64>);

/// A metric's values over a run, summarized for listing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSummary {
    /// The best value (see [`regimen_metrics::best`]); `None` when the key has no direction or no
    /// value was finite.
    pub best: Option<f64>,
    /// The step of the best value (the earliest on ties), when known.
    pub best_step: Option<u64>,
    /// The epoch of the best value, when known.
    pub best_epoch: Option<u64>,
    /// The value at the highest step (the latest recorded on ties).
    pub last: f64,
    /// The step of `last`.
    pub last_step: u64,
    /// How many points the series has.
    pub count: u64,
    /// The lowest finite value; `None` when none was finite.
    pub min: Option<f64>,
    /// The highest finite value; `None` when none was finite.
    pub max: Option<f64>,
}

impl MetricSummary {
    /// Builds a summary from the series' finite extremes (`None` if no value was finite), its
    /// direction and its last point.
    pub fn from_extremes(
        mode: Option<Mode>,
        min: Option<Extreme>,
        max: Option<Extreme>,
        last: f64,
        last_step: u64,
        count: u64,
    ) -> Self {
        let best = match mode {
            Some(Mode::Max) => max,
            Some(Mode::Min) => min,
            None => None,
        };
        MetricSummary {
            best: best.map(|b| b.0),
            best_step: best.and_then(|b| b.1),
            best_epoch: best.and_then(|b| b.2),
            last,
            last_step,
            count,
            min: min.map(|m| m.0),
            max: max.map(|m| m.0),
        }
    }
}

/// One run as listed by `regimen runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Unique id.
    pub run_id: String,
    /// Human-readable name.
    pub name: String,
    /// Experiment.
    pub experiment: String,
    /// Current state (crash detection already applied).
    pub status: RunState,
    /// Why it ended, when it did not simply finish.
    pub reason: Option<String>,
    /// The monitored metric and its direction, when recorded.
    pub monitor: Option<Monitored>,
    /// The name of the dataset it trained on, when recorded.
    pub dataset: Option<String>,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended; `None` while running.
    pub ended_at: Option<Timestamp>,
    /// The run's hyperparameters, flattened.
    pub params: BTreeMap<String, ParamValue>,
    /// Summary of each metric series.
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// One point of a metric series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    /// Optimizer steps so far.
    pub step: u64,
    /// Epoch.
    pub epoch: u64,
    /// When it was recorded.
    pub wall: Timestamp,
    /// The value (NaN kept).
    pub value: f64,
}

/// A series read for a chart ([`crate::RunStore::series_range`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesView {
    /// The points kept, in step order.
    pub points: Vec<MetricPoint>,
    /// How many points the range holds.
    pub total: u64,
}

/// A structured report of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRecord {
    /// `val`, `test`...
    pub split: String,
    /// Optimizer steps so far.
    pub step: u64,
    /// Epoch.
    pub epoch: u64,
    /// When it was recorded.
    pub wall: Timestamp,
    /// The report.
    pub body: Value,
}

/// Who wrote a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// A person, through `regimen note`.
    Note,
    /// The training loop, informational.
    Info,
    /// The training loop, a warning.
    Warn,
}

impl NoteKind {
    /// The lowercase name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::Note => "note",
            NoteKind::Info => "info",
            NoteKind::Warn => "warn",
        }
    }

    /// The kind with this name, if any.
    pub fn parse(name: &str) -> Option<NoteKind> {
        [NoteKind::Note, NoteKind::Info, NoteKind::Warn].into_iter().find(|k| k.as_str() == name)
    }

    /// The kind a notice of this level becomes.
    pub fn of_level(level: &str) -> NoteKind {
        if level.eq_ignore_ascii_case("warn") || level.eq_ignore_ascii_case("warning") {
            NoteKind::Warn
        } else if level == "note" {
            NoteKind::Note
        } else {
            NoteKind::Info
        }
    }
}

/// A timestamped markdown note on a run; a run has any number.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// When it was written.
    pub created_at: Timestamp,
    /// Who wrote it.
    pub kind: NoteKind,
    /// Markdown text.
    pub body: String,
}

/// A file a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactRecord {
    /// `checkpoint.best`, `checkpoint.last`...
    pub kind: String,
    /// Where the file is.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// BLAKE3 of its content, hex, when known.
    pub checksum: Option<String>,
    /// When it was recorded.
    pub recorded_at: Timestamp,
}

/// Everything about one run, for `regimen show`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetail {
    /// What `regimen runs` shows.
    pub row: RunRow,
    /// Last heartbeat.
    pub heartbeat_at: Timestamp,
    /// Seed.
    pub seed: u64,
    /// What the run predicts, when recorded.
    pub task: Option<TaskInfo>,
    /// Resolved configuration.
    pub config: Value,
    /// Dataset identity.
    pub dataset: Value,
    /// Host, command line, git state, sweep link.
    pub provenance: Provenance,
    /// Versions and other facts about the environment.
    pub environment: Value,
    /// Every metric series, by key, ordered by step then arrival.
    pub series: BTreeMap<String, Vec<MetricPoint>>,
    /// Reports, oldest first.
    pub reports: Vec<ReportRecord>,
    /// Notes, oldest first.
    pub notes: Vec<Note>,
    /// Artifacts, by path.
    pub artifacts: Vec<ArtifactRecord>,
}

/// What [`crate::RunStore::gc`] may do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcOptions {
    /// Folders under `runs/` with no run in the database are removed only when older than this,
    /// because a starting run creates its folder before its first write reaches the store.
    pub orphan_grace: Duration,
    /// Also compact the database file.
    pub vacuum: bool,
    /// Report what would be removed without removing it.
    pub dry_run: bool,
}

impl Default for GcOptions {
    fn default() -> GcOptions {
        GcOptions { orphan_grace: Duration::from_secs(3600), vacuum: true, dry_run: false }
    }
}

/// What [`crate::RunStore::gc`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcReport {
    /// Orphan run folders removed (or that would be, on a dry run).
    pub removed: Vec<PathBuf>,
    /// Whether the database was compacted.
    pub vacuumed: bool,
}

/// A tag key that works as `tags.KEY` in a filter, or why not.
pub(crate) fn check_tag_key(key: &str) -> Result<(), crate::StoreError> {
    if key.is_empty()
        || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        || key.starts_with('.')
        || key.ends_with('.')
    {
        return Err(crate::StoreError::Invalid {
            what: "tag key",
            value: key.to_string(),
            why: "a tag key is letters, digits, `_` and inner dots, so that `tags.KEY` works in filters",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flatten_keeps_numbers_and_strings_and_drops_nulls() {
        let params = flatten_params(&json!({
            "lr": 0.01, "model": "cnn", "optim": {"beta": 0.9, "nesterov": true}, "layers": [1, 2], "data": null
        }));
        assert_eq!(params["lr"], ParamValue::Number(0.01));
        assert_eq!(params["model"], ParamValue::Text("cnn".into()));
        assert_eq!(params["optim.beta"], ParamValue::Number(0.9));
        assert_eq!(params["optim.nesterov"], ParamValue::Text("true".into()));
        assert_eq!(params["layers"], ParamValue::Text("[1,2]".into()));
        assert!(!params.contains_key("data"));
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in RunState::ALL {
            assert_eq!(RunState::parse(state.as_str()), Some(state));
        }
        assert_eq!(RunState::from(RunStatus::StoppedEarly), RunState::StoppedEarly);
    }

    #[test]
    fn a_monitor_recorded_by_the_run_decides_its_best() {
        let summary = |mode| {
            MetricSummary::from_extremes(mode, Some((0.2, Some(4), Some(1))), Some((0.9, None, None)), 0.5, 10, 3)
        };
        assert_eq!(summary(Some(Mode::Min)).best, Some(0.2));
        assert_eq!((summary(Some(Mode::Min)).best_step, summary(Some(Mode::Min)).best_epoch), (Some(4), Some(1)));
        assert_eq!(summary(Some(Mode::Max)).best, Some(0.9));
        assert_eq!(summary(None).best, None);
    }
}
