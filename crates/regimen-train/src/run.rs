//! A run from start to end: data, run folder, log, model, fit, summary; and evaluating a saved run.
//!
//! A run folder (`<store>/runs/<run id>/`) holds `config.toml` (the resolved config, replayable with
//! `--config`), `events.jsonl` (every event), `summary.json` (the outcome) and `checkpoints/`.
//! Every event also goes to the run store (`<store>/store.sqlite`, see `regimen_store`) through a
//! [`Tee`]: the JSON-lines file stays the plain-text record of one run, the store is what
//! `regimen runs` and `regimen show` query across runs. The store's sink only queues events for a
//! background writer, so the loop does not wait on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;
use regimen_data::{DatasetIdentity, LoadOptions, PreparedData, SplitSpec, prepare};
use regimen_events::{Event, EventSink, JsonLinesSink, RunStart, RunStatus, Tee};
use regimen_metrics::Report;
use regimen_monitor::Mode;
use regimen_store::{RunStore, SinkOptions, SqliteStore, StoreError, StoreSink, Timestamp, Write};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Checkpoint, load_weights};
use crate::config::TrainConfig;
use crate::device::parse_device;
use crate::error::TrainError;
use crate::evaluate::{Meter, Objective, evaluate};
use crate::fit::{FinalModel, FitContext, fit};
use crate::model::{BuiltinModel, Network, build_builtin};
use crate::naming::Fields;
use crate::observer::{Observer, RunInfo};

/// The outcome of a run, as printed by `--json` and saved as `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// Unique id of the run.
    pub run_id: String,
    /// Human-readable name.
    pub name: String,
    /// How it ended: `finished`, `diverged`, ...
    pub status: RunStatus,
    /// Why, when it did not simply finish.
    pub reason: Option<String>,
    /// Epochs completed.
    pub epochs: u64,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Metric whose best value selected the `best` checkpoint.
    pub monitor: String,
    /// Each metric's best value over the epochs.
    pub best: BTreeMap<String, f64>,
    /// The last epoch's metrics.
    pub r#final: BTreeMap<String, f64>,
    /// The dataset's identity.
    pub dataset: DatasetIdentity,
    /// Saved checkpoints.
    pub checkpoints: Checkpoints,
    /// The weights the run hands over, and the checkpoint they came from.
    #[serde(default)]
    pub final_model: Option<FinalModel>,
    /// Evaluations on the test split made after training, oldest first.
    #[serde(default)]
    pub test_evaluations: Vec<BTreeMap<String, f64>>,
    /// The recipe's verdict on the run (underfitting, bias and variance, overfitting, gradient
    /// flow), as `regimen diagnose` gives it.
    #[serde(default)]
    pub diagnosis: Vec<regimen_doctor::Check>,
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
    /// The run's folder.
    pub run_dir: PathBuf,
}

/// A run's checkpoint folders (see [`crate::checkpoint`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checkpoints {
    /// The checkpoint with the best monitored metric.
    pub best: Option<PathBuf>,
    /// The newest checkpoint.
    pub last: Option<PathBuf>,
}

/// Loads (or generates) and prepares the data a config names.
pub fn load_data(config: &TrainConfig) -> Result<PreparedData, TrainError> {
    let source = match &config.data {
        Some(path) => {
            let options = LoadOptions {
                format: config.format.as_deref().map(str::parse).transpose()?,
                label: config.label.clone(),
                task: config.task.as_deref().map(str::parse).transpose()?,
                classes: config.classes.clone(),
            };
            regimen_data::load(path, &options)?
        }
        None => regimen_data::builtin(&config.dataset, config.dataset_size)?,
    };
    let split = match (config.val_fraction, config.test_fraction, config.val_count, config.test_count) {
        (None, None, None, None) => SplitSpec::Auto,
        (_, _, Some(val), test) => SplitSpec::Counts { val, test: test.unwrap_or(val) },
        (val, test, None, _) => {
            SplitSpec::Fractions { val: val.or(test).unwrap_or(0.2), test: test.or(val).unwrap_or(0.2) }
        }
    };
    Ok(prepare(source, &split, config.split_seed, config.normalize)?)
}

/// Trains a built-in model as `config` says, recording everything in a new run folder.
pub fn train(config: &TrainConfig, observer: &mut dyn Observer) -> Result<RunSummary, TrainError> {
    train_with(config, observer, |data, device| build_builtin(config, &data.shape, data.task.num_outputs(), device))
}

/// Trains the model that `build` creates (a user-defined [`Network`]) with all of Regimen's
/// machinery: data, seeding, logging, checkpoints and summary.
pub fn train_with<M, F>(config: &TrainConfig, observer: &mut dyn Observer, build: F) -> Result<RunSummary, TrainError>
where
    M: Network,
    F: FnOnce(&PreparedData, &Device) -> Result<M, TrainError>,
{
    config.validate()?;
    let device = parse_device(&config.device)?.autodiff();
    let data = load_data(config)?;
    device.seed(config.seed);
    let mut model = build(&data, &device)?;
    if let Some(source) = &config.init_from {
        model = load_weights(model, source)?;
    }

    // Opened before the run folder exists, so that a store that cannot be opened leaves nothing
    // behind.
    let store: Arc<dyn RunStore> = Arc::new(SqliteStore::open(&config.store)?);
    let run = RunFolder::create(config, &data.identity)?;
    let mut sink =
        Tee(JsonLinesSink::open(run.dir.join("events.jsonl"))?, StoreSink::new(store, SinkOptions::default())?);
    let start = RunStart {
        run_id: run.id.clone(),
        name: run.name.clone(),
        started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        seed: config.seed,
        config: serde_json::to_value(config).unwrap_or_default(),
        dataset: serde_json::to_value(&data.identity).unwrap_or_default(),
        environment: environment(model.num_params()),
    };
    sink.record(&Event::RunStarted(&start))?;
    sink.flush()?;
    if let Some(source) = &config.init_from {
        let message = format!("initialized from the weights of {} (fresh optimizer)", source.display());
        sink.record(&Event::Notice { level: "info", message: &message })?;
    }
    run_fit(model, config, &data, device, &run, None, &mut sink, observer)
}

/// Continues a run from its newest checkpoint that verifies (or from the checkpoint folder
/// `target` names), in the same run folder and store record, with the model that `build` creates.
///
/// `target` is a run id, a unique id prefix, a run folder or a checkpoint folder. The run's own
/// `config.toml` is used: a resumed run is the same run. On CPU the result is bitwise identical to
/// the run that was never interrupted.
pub fn resume_with<M, F>(
    store: &Path,
    target: &str,
    observer: &mut dyn Observer,
    build: F,
) -> Result<RunSummary, TrainError>
where
    M: Network,
    F: FnOnce(&PreparedData, &Device, &TrainConfig) -> Result<M, TrainError>,
{
    let target_path = Path::new(target);
    let (dir, chosen) = if target_path.join(checkpoint::MANIFEST_FILE).is_file() {
        let run_dir = target_path.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
        (run_dir, Some(checkpoint::verify(target_path)?))
    } else {
        (find_run(store, target)?, None)
    };
    let config = TrainConfig::from_toml_file(&dir.join("config.toml"))?;
    config.validate()?;
    let (checkpoint, warnings) = match chosen {
        Some(checkpoint) => (checkpoint, Vec::new()),
        None => checkpoint::latest(&dir.join("checkpoints"))?,
    };
    let device = parse_device(&config.device)?.autodiff();
    let data = load_data(&config)?;
    device.seed(config.seed);
    let model = build(&data, &device, &config)?;
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = Fields::new(&config, &data.identity.name, &data.identity.short_id).render(&config.run_name)?;
    let run = RunFolder { id, name, dir };
    let store: Arc<dyn RunStore> = Arc::new(SqliteStore::open(&store_of(store, &run.dir))?);
    let mut sink = Tee(
        JsonLinesSink::open(run.dir.join("events.jsonl"))?,
        StoreSink::attach(store, SinkOptions::default(), &run.id)?,
    );
    for warning in &warnings {
        let message = format!("skipped a damaged checkpoint: {warning}");
        sink.record(&Event::Notice { level: "warn", message: &message })?;
        observer.on_notice(&message);
    }
    run_fit(model, &config, &data, device, &run, Some(&checkpoint), &mut sink, observer)
}

/// Continues a run of a built-in model; see [`resume_with`].
pub fn resume(store: &Path, target: &str, observer: &mut dyn Observer) -> Result<RunSummary, TrainError> {
    resume_with(store, target, observer, |data, device, config| {
        build_builtin(config, &data.shape, data.task.num_outputs(), device)
    })
}

/// Runs [`fit`] for a run whose folder and log exist, records how it ended, and writes the summary.
#[allow(clippy::too_many_arguments)]
fn run_fit<M: Network>(
    model: M,
    config: &TrainConfig,
    data: &PreparedData,
    device: Device,
    run: &RunFolder,
    resume: Option<&Checkpoint>,
    sink: &mut dyn EventSink,
    observer: &mut dyn Observer,
) -> Result<RunSummary, TrainError> {
    observer.on_run_start(&RunInfo {
        run_id: &run.id,
        name: &run.name,
        run_dir: &run.dir,
        dataset: &data.identity,
        parameters: model.num_params(),
    });
    let checkpoints = run.dir.join("checkpoints");
    let outcome = fit(
        model,
        FitContext { config, data, device, checkpoints: Some(&checkpoints), resume, sink: &mut *sink, observer },
    );
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            let reason = error.to_string();
            let _ = sink.record(&Event::RunEnded { status: RunStatus::Failed, reason: Some(&reason), seconds: 0.0 });
            let _ = sink.flush();
            return Err(error);
        }
    };
    sink.record(&Event::RunEnded {
        status: outcome.status,
        reason: outcome.reason.as_deref(),
        seconds: outcome.seconds,
    })?;
    sink.flush()?;

    let summary = RunSummary {
        run_id: run.id.clone(),
        name: run.name.clone(),
        status: outcome.status,
        reason: outcome.reason.clone(),
        epochs: outcome.epochs,
        steps: outcome.steps,
        monitor: outcome.monitor.clone(),
        best: outcome.best(),
        r#final: outcome.last(),
        dataset: data.identity.clone(),
        checkpoints: Checkpoints { best: outcome.best_checkpoint.clone(), last: outcome.last_checkpoint.clone() },
        final_model: outcome.final_model.clone(),
        test_evaluations: Vec::new(),
        diagnosis: outcome.diagnosis.clone(),
        seconds: outcome.seconds,
        run_dir: run.dir.clone(),
    };
    write_summary(&summary)?;
    Ok(summary)
}

/// Which weights of a run to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckpointChoice {
    /// The best epoch's weights.
    Best,
    /// The last epoch's weights.
    Last,
    /// A weights file.
    File(PathBuf),
}

/// The result of evaluating a saved run.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// The run evaluated.
    pub run_id: String,
    /// The split: `val` or `test`.
    pub split: String,
    /// The weights file used.
    pub checkpoint: PathBuf,
    /// Samples evaluated.
    pub samples: usize,
    /// Named scalar metrics.
    pub metrics: BTreeMap<String, f64>,
    /// The full report (per-class statistics, confusion matrix).
    pub report: Report,
}

/// Finds a run folder by id, by unique id prefix, or as a path.
pub fn find_run(store: &Path, name: &str) -> Result<PathBuf, TrainError> {
    let direct = Path::new(name);
    if direct.join("config.toml").is_file() {
        return Ok(direct.to_path_buf());
    }
    let runs = store.join("runs");
    let not_found = || TrainError::RunNotFound { name: name.to_string(), store: store.to_path_buf() };
    let entries = std::fs::read_dir(&runs).map_err(|_| not_found())?;
    let matches: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(name))
        .map(|e| e.path())
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(not_found()),
        many => Err(TrainError::Config {
            origin: "the run name".into(),
            message: format!("`{name}` matches {} runs; give more of the id", many.len()),
        }),
    }
}

/// Evaluates a saved run's built-in model on its `val` or `test` split, and records in the run
/// that the split was used.
pub fn evaluate_run(
    store: &Path,
    run: &str,
    split: &str,
    checkpoint: &CheckpointChoice,
) -> Result<Evaluation, TrainError> {
    let (dir, checkpoint) = match Path::new(run) {
        path if path.join(checkpoint::MANIFEST_FILE).is_file() => {
            checkpoint::verify(path)?;
            let run_dir = path.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
            (run_dir, &CheckpointChoice::File(path.to_path_buf()))
        }
        _ => (find_run(store, run)?, checkpoint),
    };
    let config = TrainConfig::from_toml_file(&dir.join("config.toml"))?;
    let mut summary = read_summary(&dir)?;
    let data = load_data(&config)?;
    if data.identity.fingerprint != summary.dataset.fingerprint {
        return Err(TrainError::Config {
            origin: dir.join("config.toml").display().to_string(),
            message: format!(
                "the data changed since the run: fingerprint {} now, {} when trained; \
                 restore the original data to evaluate this run",
                data.identity.short_id, summary.dataset.short_id
            ),
        });
    }
    let samples = match split {
        "val" => &data.val,
        "test" => &data.test,
        other => {
            return Err(TrainError::Config {
                origin: "the command line".into(),
                message: format!("unknown split `{other}`; use val or test"),
            });
        }
    };
    let weights = match checkpoint {
        CheckpointChoice::File(path) => Some(path.clone()),
        choice => {
            let (good, _) = checkpoint::scan(&dir.join("checkpoints"));
            let mode = Mode::infer(&summary.monitor).unwrap_or(Mode::Max);
            let found = if *choice == CheckpointChoice::Best { checkpoint::best(&good, mode) } else { good.first() };
            found.map(|c| c.dir.clone())
        }
    }
    .ok_or_else(|| TrainError::Checkpoint {
        path: dir.join("checkpoints"),
        message: format!("the run has no {checkpoint:?} checkpoint that verifies"),
    })?;
    let device = parse_device(&config.device)?;
    let model: BuiltinModel = build_builtin(&config, &data.shape, data.task.num_outputs(), &device)?;
    let model = load_weights(model, &weights)?.valid();
    let objective = Objective::for_task(&data.task, 0.0, &device);
    let mut meter = Meter::for_task(&data.task, config.top_k)?;
    let report = evaluate(&model, samples, &objective, &mut meter, config.batch_size, &device);
    let metrics: BTreeMap<String, f64> =
        report.scalars().map(|(name, value)| (format!("{split}.{name}"), value)).collect();

    let mut sink = JsonLinesSink::open(dir.join("events.jsonl"))?;
    let body = serde_json::to_value(&report).unwrap_or_default();
    let notice = format!("evaluated {} on the {split} split", weights.display());
    sink.record(&Event::Notice { level: "info", message: &notice })?;
    sink.record(&Event::Report { split, step: summary.steps, epoch: summary.epochs, body: &body })?;
    sink.flush()?;
    record_evaluation(&store_of(store, &dir), &summary, split, &notice, &body)?;
    if split == "test" {
        summary.test_evaluations.push(metrics.clone());
        write_summary(&summary)?;
    }
    Ok(Evaluation {
        run_id: summary.run_id,
        split: split.to_string(),
        checkpoint: weights,
        samples: samples.len(),
        metrics,
        report,
    })
}

/// The store a run folder belongs to: `<store>` for a folder `<store>/runs/<id>/`, whatever path
/// it was named by; `fallback` for a folder elsewhere.
fn store_of(fallback: &Path, dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(runs) if runs.file_name().is_some_and(|n| n == "runs") => {
            runs.parent().map_or_else(|| fallback.to_path_buf(), Path::to_path_buf)
        }
        _ => fallback.to_path_buf(),
    }
}

/// Records an evaluation (its notice and report) in the run store, as training records its own.
///
/// Written directly with [`RunStore::write`] rather than through a [`StoreSink`]: the run already
/// exists in the store, and two writes do not need a background thread. A run trained before the
/// store existed is not in it; its evaluation stays in `events.jsonl` and `summary.json` only.
fn record_evaluation(
    root: &Path,
    summary: &RunSummary,
    split: &str,
    notice: &str,
    body: &serde_json::Value,
) -> Result<(), TrainError> {
    if !root.join(regimen_store::sqlite::DB_FILE).is_file() {
        return Ok(());
    }
    let store = SqliteStore::open(root)?;
    let wall = Timestamp::now();
    let batch = [
        Write::Notice { level: "info", message: notice, wall },
        Write::Report { split, step: summary.steps, epoch: summary.epochs, wall, body },
    ];
    match store.write(&summary.run_id, &batch) {
        Ok(()) | Err(StoreError::RunNotFound { .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// A new run's id, name and folder.
struct RunFolder {
    id: String,
    name: String,
    dir: PathBuf,
}

impl RunFolder {
    fn create(config: &TrainConfig, identity: &DatasetIdentity) -> Result<Self, TrainError> {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let stamp: String = now.chars().filter(char::is_ascii_digit).collect();
        let id = format!("{}-{}-{:04x}", &stamp[..8], &stamp[8..14], rand::random::<u16>());
        let name = Fields::new(config, &identity.name, &identity.short_id).render(&config.run_name)?;
        let dir = config.store.join("runs").join(&id);
        let io = |action: &'static str, source| TrainError::Io { path: dir.clone(), action, source };
        std::fs::create_dir_all(dir.join("checkpoints")).map_err(|e| io("create the run folder", e))?;
        std::fs::write(dir.join("config.toml"), config.to_toml()).map_err(|e| io("write the config into", e))?;
        Ok(Self { id, name, dir })
    }
}

fn write_summary(summary: &RunSummary) -> Result<(), TrainError> {
    let path = summary.run_dir.join("summary.json");
    let text = serde_json::to_string_pretty(summary).unwrap_or_default();
    std::fs::write(&path, text).map_err(|source| TrainError::Io { path, action: "write", source })
}

fn read_summary(dir: &Path) -> Result<RunSummary, TrainError> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|source| TrainError::Io {
        path: path.clone(),
        action: "read the run summary (did the run finish?)",
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| TrainError::Checkpoint { path, message: format!("the run summary is not valid JSON ({e})") })
}

/// Provenance recorded with each run: host, command line, versions, git state of the working folder.
fn environment(parameters: usize) -> serde_json::Value {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]);
    let dirty = commit.as_ref().and_then(|_| git(&["status", "--porcelain"])).map(|s| !s.is_empty());
    serde_json::json!({
        "host": std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).ok(),
        "command": std::env::args().collect::<Vec<_>>(),
        "regimen_version": env!("CARGO_PKG_VERSION"),
        "git_commit": commit,
        "git_dirty": dirty,
        "threads": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "parameters": parameters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evaluation_is_recorded_in_the_store_that_holds_the_run_folder() {
        let fallback = Path::new("default-store");
        assert_eq!(store_of(fallback, Path::new("/data/exp/runs/20240501-120000-abcd")), Path::new("/data/exp"));
        assert_eq!(store_of(fallback, Path::new("runs/20240501-120000-abcd")), Path::new(""));
        assert_eq!(store_of(fallback, Path::new("/elsewhere/20240501-120000-abcd")), fallback);
    }
}
