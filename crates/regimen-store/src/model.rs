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

use regimen_events::{RunStart, RunStatus};
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
    /// A supervisor (a sweep, the user's `regimen kill`) ended it.
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
    /// Host name.
    pub host: Option<String>,
    /// The command line, arguments separated by spaces (quoted where they contain spaces).
    pub command: Option<String>,
    /// Git commit of the working folder.
    pub git_commit: Option<String>,
    /// Whether the working folder had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// The seed.
    pub seed: u64,
    /// The fully resolved configuration; flattened into params for filtering.
    pub config: Value,
    /// Dataset identity.
    pub dataset: Value,
    /// All provenance as recorded (host, versions, thread count...).
    pub environment: Value,
    /// The sweep this run is a trial of, if any.
    pub sweep_id: Option<String>,
    /// The trial within that sweep.
    pub trial_id: Option<String>,
}

impl NewRun {
    /// Builds the record from the training crate's start event.
    ///
    /// The experiment comes from `config.experiment` (`default` when absent); host, command and git
    /// state from `environment.host`, `.command` (an array of arguments), `.git_commit` and
    /// `.git_dirty`; the sweep link from `environment.sweep_id` and `.trial_id` when a sweep sets
    /// them. A start time that is not RFC 3339 is replaced by `now`.
    pub fn from_start(start: &RunStart, now: Timestamp) -> NewRun {
        let env = &start.environment;
        let text = |v: &Value, key: &str| match v.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let command = env.get("command").and_then(Value::as_array).map(|args| {
            args.iter()
                .map(|a| match a.as_str() {
                    Some(s) if s.is_empty() || s.contains(char::is_whitespace) => {
                        format!("'{}'", s.replace('\'', "'\\''"))
                    }
                    Some(s) => s.to_string(),
                    None => a.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        });
        NewRun {
            run_id: start.run_id.clone(),
            name: start.name.clone(),
            experiment: text(&start.config, "experiment").unwrap_or_else(|| "default".to_string()),
            started_at: Timestamp::parse_rfc3339(&start.started_at).unwrap_or(now),
            host: text(env, "host"),
            command,
            git_commit: text(env, "git_commit"),
            git_dirty: env.get("git_dirty").and_then(Value::as_bool),
            seed: start.seed,
            config: start.config.clone(),
            dataset: start.dataset.clone(),
            environment: start.environment.clone(),
            sweep_id: text(env, "sweep_id"),
            trial_id: text(env, "trial_id"),
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
    /// A notice from the training loop, kept as a note of kind `info` or `warn`.
    Notice {
        /// `info` or `warn` (anything else counts as `info`).
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

/// Whether a metric improves upwards or downwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Higher is better: accuracy, F1, R².
    Higher,
    /// Lower is better: losses and errors.
    Lower,
}

impl Direction {
    /// The direction of a metric key, read from its last dotted segment: `acc`, `macro_f1`, `r2`
    /// and `top{k}_acc` go up; `loss`, `mse` and `mae` go down; anything else (`lr`, `sys.*`) has
    /// no best.
    pub fn of(key: &str) -> Option<Direction> {
        let last = key.rsplit('.').next().unwrap_or(key);
        let top_k = last
            .strip_prefix("top")
            .and_then(|rest| rest.strip_suffix("_acc"))
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()));
        match last {
            "acc" | "macro_f1" | "r2" => Some(Direction::Higher),
            "loss" | "mse" | "mae" => Some(Direction::Lower),
            _ if top_k => Some(Direction::Higher),
            _ => None,
        }
    }
}

/// A metric's values over a run, summarized for listing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSummary {
    /// The best value (see [`Direction::of`]); `None` when the key has no direction or every value
    /// was NaN.
    pub best: Option<f64>,
    /// The value at the highest step (the latest recorded on ties).
    pub last: f64,
    /// The step of `last`.
    pub last_step: u64,
    /// How many points the series has.
    pub count: u64,
}

impl MetricSummary {
    /// Builds a summary from the series' extremes (NaN-free, `None` if all NaN) and last point.
    pub fn from_extremes(key: &str, min: Option<f64>, max: Option<f64>, last: f64, last_step: u64, count: u64) -> Self {
        let best = match Direction::of(key) {
            Some(Direction::Higher) => max,
            Some(Direction::Lower) => min,
            None => None,
        };
        MetricSummary { best, last, last_step, count }
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
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended; `None` while running.
    pub ended_at: Option<Timestamp>,
    /// Flattened configuration.
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

    /// The kind a training notice of this level becomes.
    pub fn of_level(level: &str) -> NoteKind {
        if level.eq_ignore_ascii_case("warn") || level.eq_ignore_ascii_case("warning") {
            NoteKind::Warn
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
    /// Host name.
    pub host: Option<String>,
    /// Command line.
    pub command: Option<String>,
    /// Git commit.
    pub git_commit: Option<String>,
    /// Uncommitted changes at start.
    pub git_dirty: Option<bool>,
    /// Seed.
    pub seed: u64,
    /// Resolved configuration.
    pub config: Value,
    /// Dataset identity.
    pub dataset: Value,
    /// Provenance.
    pub environment: Value,
    /// Sweep link.
    pub sweep_id: Option<String>,
    /// Trial within the sweep.
    pub trial_id: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn direction_reads_the_last_segment() {
        assert_eq!(Direction::of("val.acc"), Some(Direction::Higher));
        assert_eq!(Direction::of("val.top5_acc"), Some(Direction::Higher));
        assert_eq!(Direction::of("macro_f1"), Some(Direction::Higher));
        assert_eq!(Direction::of("test.r2"), Some(Direction::Higher));
        assert_eq!(Direction::of("train.loss"), Some(Direction::Lower));
        assert_eq!(Direction::of("val.mse"), Some(Direction::Lower));
        assert_eq!(Direction::of("val.mae"), Some(Direction::Lower));
        assert_eq!(Direction::of("lr"), None);
        assert_eq!(Direction::of("val.top_acc"), None);
        assert_eq!(Direction::of("val.topx_acc"), None);
        assert_eq!(Direction::of("val.acc.extra"), None);
    }

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
    fn new_run_reads_provenance_from_the_start_event() {
        let start = RunStart {
            run_id: "r1".into(),
            name: "mlp".into(),
            started_at: "2024-05-01T12:00:00Z".into(),
            seed: 7,
            config: json!({"experiment": "baseline", "lr": 0.1}),
            dataset: json!({"name": "moons"}),
            environment: json!({"host": "box", "command": ["regimen", "train", "--name", "a b"], "git_commit": "abc", "git_dirty": true}),
        };
        let run = NewRun::from_start(&start, Timestamp(0));
        assert_eq!(run.experiment, "baseline");
        assert_eq!(run.command.as_deref(), Some("regimen train --name 'a b'"));
        assert_eq!(run.git_dirty, Some(true));
        assert_eq!(run.started_at, Timestamp::parse_rfc3339("2024-05-01T12:00:00Z").unwrap_or(Timestamp(-1)));
        assert_eq!(run.sweep_id, None);
    }
}
