//! A run from start to end: data, run folder, log, model, fit; and evaluating a saved run.
//!
//! Where a run is recorded is the caller's choice, a [`Recorder`]: the folder its run folder goes
//! in (laid out by [`RunDir`]) and, optionally, a run store of any backend. The trainer knows the
//! store only through the [`RunStore`] trait: the CLI opens the store that `--store` names, a
//! library user may pass an in-memory one or none at all.
//!
//! One source of truth per run: the store record plus the checkpoints. A run folder holds
//! `config.toml` (the resolved config, replayable with `--config`; nothing reads it back),
//! `events.jsonl` (every event, the plain-text record of one run) and `checkpoints/`, each of which
//! carries the whole training state, config included. So resuming and evaluating work on any run
//! that saved a checkpoint, finished or not: a run killed with SIGKILL included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::prelude::*;
use regimen_data::{DatasetIdentity, LoadOptions, PreparedData, prepare};
use regimen_events::{Event, EventSink, JsonLinesSink, Provenance, RunStart, RunStatus};
use regimen_metrics::{Mode, Monitored, Report};
use regimen_store::{RunDir, RunStore, SinkOptions, StoreError, StoreSink, Timestamp, Write};
use serde::Serialize;

use crate::checkpoint::{self, Checkpoint, Resumable, load_weights};
use crate::config::{TrainConfig, auto_choice};
use crate::device::parse_device;
use crate::diagnosis::task_info;
use crate::error::TrainError;
use crate::evaluate::{Meter, Objective, evaluate};
use crate::model::{Network, build_for};
use crate::naming::Fields;
use crate::observer::{Observer, RunInfo};
use crate::provenance;
use crate::trainer::{BestPoint, FinalModel, FitContext, Reporter, fit, monitor_spec};
use crate::transfer::{self, InitReport, Pretrained, Rename};
use regimen_fs::FileError;

/// Where runs are recorded: the folder that holds their run folders (`<root>/runs/<id>/`) and,
/// optionally, a run store that every event also goes to.
#[derive(Clone)]
pub struct Recorder {
    root: PathBuf,
    store: Option<Arc<dyn RunStore>>,
    mirror: Option<Arc<dyn regimen_artifacts::ArtifactStore>>,
}

impl Recorder {
    /// Run folders under `root`, events also recorded in `store` (when given).
    pub fn new(root: impl Into<PathBuf>, store: Option<Arc<dyn RunStore>>) -> Recorder {
        Recorder { root: root.into(), store, mirror: None }
    }

    /// Also copies each run's checkpoints to `mirror` as they are saved (shared storage such as
    /// S3), and fetches them from it to continue a run this machine has no folder of.
    pub fn with_mirror(mut self, mirror: Option<Arc<dyn regimen_artifacts::ArtifactStore>>) -> Recorder {
        self.mirror = mirror;
        self
    }

    /// Where checkpoints are mirrored, when they are.
    pub fn mirror(&self) -> Option<&Arc<dyn regimen_artifacts::ArtifactStore>> {
        self.mirror.as_ref()
    }

    /// The folder that holds `runs/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The run store, when there is one.
    pub fn store(&self) -> Option<&Arc<dyn RunStore>> {
        self.store.as_ref()
    }

    /// The sink of a run: its `events.jsonl`, and the store when there is one. `attach` continues
    /// a run the store already holds.
    fn sink(&self, dir: &RunDir, attach: bool) -> Result<Box<dyn EventSink>, TrainError> {
        let file = JsonLinesSink::open(dir.events())?;
        let sink: Box<dyn EventSink> = match &self.store {
            Some(store) => {
                let store = Arc::clone(store);
                let sink = if attach {
                    StoreSink::attach(store, SinkOptions::default(), &dir.id())?
                } else {
                    StoreSink::new(store, SinkOptions::default())?
                };
                Box::new(regimen_events::Tee(file, sink))
            }
            None => Box::new(file),
        };
        Ok(match &self.mirror {
            Some(mirror) => Box::new(crate::mirror::MirrorSink::new(sink, Arc::clone(mirror), self.root.clone())),
            None => sink,
        })
    }

    /// The folder of the run that `target` names: a run folder or a checkpoint folder (as a
    /// path), or a run id or unique id prefix that the store resolves (an exact id without one).
    pub(crate) fn locate(&self, target: &str) -> Result<(RunDir, Option<PathBuf>), TrainError> {
        let path = Path::new(target);
        if path.join(checkpoint::MANIFEST_FILE).is_file() {
            let run = path.parent().and_then(Path::parent).map(RunDir::at).ok_or_else(|| TrainError::Checkpoint {
                path: path.to_path_buf(),
                message: "is not inside a run's checkpoints folder".into(),
            })?;
            return Ok((run, Some(path.to_path_buf())));
        }
        let direct = RunDir::at(path);
        if direct.events().is_file() {
            return Ok((direct, None));
        }
        let id = match &self.store {
            Some(store) => store.resolve(target).map_err(|error| match error {
                StoreError::RunNotFound { .. } => {
                    TrainError::RunNotFound { name: target.to_string(), store: self.root.clone() }
                }
                other => other.into(),
            })?,
            None => target.to_string(),
        };
        let run = RunDir::of(&self.root, &id);
        if let Some(mirror) = &self.mirror {
            // A run another machine trained: its checkpoints come from the shared storage.
            crate::mirror::fetch_checkpoints(mirror.as_ref(), &self.root, &id)?;
        }
        if !run.path().is_dir() {
            return Err(TrainError::RunNotFound { name: target.to_string(), store: self.root.clone() });
        }
        Ok((run, None))
    }
}

/// The outcome of a run, as printed by `regimen train --json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Unique id of the run.
    pub run_id: String,
    /// Human-readable name.
    pub name: String,
    /// How it ended: `finished`, `diverged`, ...
    pub status: RunStatus,
    /// Why, when it did not simply finish.
    pub reason: Option<String>,
    /// The model trained (`auto` resolved).
    pub model: String,
    /// Epochs completed.
    pub epochs: u64,
    /// Optimizer steps taken.
    pub steps: u64,
    /// The metric whose best value selected the `best` checkpoint, and its direction.
    pub monitor: Monitored,
    /// Each metric's best value over every evaluation, in its direction.
    pub best: BTreeMap<String, f64>,
    /// Where each best value was reached: value, step and epoch.
    pub best_at: BTreeMap<String, BestPoint>,
    /// The last epoch's metrics.
    pub r#final: BTreeMap<String, f64>,
    /// The dataset's identity.
    pub dataset: DatasetIdentity,
    /// Saved checkpoints.
    pub checkpoints: Checkpoints,
    /// The weights the run hands over, and the checkpoint they came from.
    pub final_model: Option<FinalModel>,
    /// The recipe's verdict on the run (underfitting, bias and variance, overfitting, gradient
    /// flow), as `regimen diagnose` gives it.
    pub diagnosis: Vec<regimen_doctor::Check>,
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
    /// The run's folder.
    pub run_dir: PathBuf,
}

/// A run's checkpoint folders (see [`crate::checkpoint`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checkpoints {
    /// The checkpoint with the best monitored metric.
    pub best: Option<PathBuf>,
    /// The newest checkpoint.
    pub last: Option<PathBuf>,
}

/// How to read `config.data`: its format, label column, task and classes.
pub(crate) fn load_options(config: &TrainConfig) -> Result<LoadOptions, TrainError> {
    Ok(LoadOptions {
        format: config.format.as_deref().map(str::parse).transpose()?,
        label: config.label.clone(),
        task: config.task.as_deref().map(str::parse).transpose()?,
        classes: config.classes.clone(),
    })
}

/// Loads (or generates) and prepares the data a config names.
pub fn load_data(config: &TrainConfig) -> Result<PreparedData, TrainError> {
    if let Some(file) = &config.dataset_file {
        let combined = regimen_data::manifest::open(file)?;
        let (spec, seed) = match combined.split {
            Some((spec, seed)) => (spec, seed.unwrap_or(config.split_seed)),
            None => (config.split()?, config.split_seed),
        };
        let lineage = combined.lineage(&regimen_data::split_indices(&combined.source, &spec, seed)?);
        let mut data = prepare(combined.source, &spec, seed, config.normalize)?;
        data.identity.short_id = regimen_data::short_fingerprint(&combined.fingerprint).to_string();
        data.identity.fingerprint = combined.fingerprint;
        data.identity.lineage = Some(lineage);
        return Ok(data);
    }
    let source = match &config.data {
        Some(path) => regimen_data::load(path, &load_options(config)?)?,
        None => regimen_data::builtin(&config.dataset, config.dataset_size)?,
    };
    Ok(prepare(source, &config.split()?, config.split_seed, config.normalize)?)
}

/// Trains a built-in model as `config` says, recording the run where `recorder` says.
pub fn train(config: &TrainConfig, recorder: &Recorder, observer: &mut dyn Observer) -> Result<RunSummary, TrainError> {
    train_with(config, recorder, observer, build_for)
}

/// Trains the model that `build` creates (a user-defined [`Network`]) with all of Regimen's
/// machinery: data, seeding, logging, checkpoints and the run record. `build` gets the prepared
/// data, the resolved config (`model = auto` resolved for the data) and the device.
pub fn train_with<M, F>(
    config: &TrainConfig,
    recorder: &Recorder,
    observer: &mut dyn Observer,
    build: F,
) -> Result<RunSummary, TrainError>
where
    M: Network,
    F: FnOnce(&PreparedData, &TrainConfig, &Device) -> Result<M, TrainError>,
{
    config.validate()?;
    let device = parse_device(&config.device)?.autodiff();
    let data = load_data(config)?;
    let mut config = config.clone();
    let chosen = config.resolve_model(&data.shape);
    let monitor = monitor_spec(&config, &data.task)?;
    device.seed(config.seed);
    let model = build(&data, &config, &device)?;
    let (model, init) = initialize(model, &config, recorder)?;

    let now = std::time::SystemTime::now();
    let started_at = humantime::format_rfc3339_seconds(now).to_string();
    let stamp: String = started_at.chars().filter(char::is_ascii_digit).collect();
    let (id, dir) =
        RunDir::create(recorder.root(), &format!("{}-{}", &stamp[..8], &stamp[8..14])).map_err(|source| {
            TrainError::Io(FileError { path: recorder.root().to_path_buf(), action: "create a run folder in", source })
        })?;
    let name = Fields::new(&config, &data.identity.name, &data.identity.short_id).render(&config.run_name)?;
    checkpoint::write_atomically(&dir.config(), config.to_toml().as_bytes())?;
    let mut sink = recorder.sink(&dir, false)?;
    let start = RunStart {
        run_id: id.clone(),
        name: name.clone(),
        experiment: config.experiment.clone(),
        started_at,
        seed: config.seed,
        monitor: Monitored { metric: monitor.metric.clone(), mode: monitor.mode },
        task: task_info(&data),
        params: config.params(),
        config: serde_json::to_value(&config).expect("a config is always serializable to JSON"),
        dataset: serde_json::to_value(&data.identity).expect("a dataset identity is always serializable to JSON"),
        provenance: Provenance {
            init_run: init.as_ref().and_then(|(source, _)| source.run_id.clone()),
            init_weights: init.as_ref().map(|(source, _)| source.describe()),
            ..provenance::collect()
        },
        environment: provenance::environment(model.num_params()),
    };
    sink.record(&Event::RunStarted(&start))?;
    sink.flush()?;
    if let Some(chosen) = chosen {
        let message = format!("model: {} (set --model to choose another)", auto_choice(chosen));
        Reporter { sink: &mut *sink, observer: &mut *observer }.notice("info", &message)?;
    }
    for warning in data.identity.lineage.iter().flat_map(|l| &l.warnings) {
        Reporter { sink: &mut *sink, observer: &mut *observer }.notice("warn", warning)?;
    }
    first_batch_picture(&config, &data, &dir, &mut Reporter { sink: &mut *sink, observer: &mut *observer })?;
    if let Some((source, report)) = &init {
        let mut reporter = Reporter { sink: &mut *sink, observer: &mut *observer };
        let origin = match &source.run_id {
            Some(run) => format!("run {run} ({})", source.file.display()),
            None => source.file.display().to_string(),
        };
        reporter.notice("info", &format!("initialized from the weights of {origin}, with a fresh optimizer"))?;
        for line in report.lines() {
            reporter.notice("info", &line)?;
        }
    }
    run_fit(model, &config, &data, device, (&dir, &name), None, &mut *sink, observer)
}

/// Draws the first training batch as the network sees it (image data only) into the run's folder
/// and records it as the run's `first_batch` artifact; a picture that cannot be drawn is a warning
/// in the run's notes, never a failed run.
fn first_batch_picture(
    config: &TrainConfig,
    data: &PreparedData,
    dir: &RunDir,
    reporter: &mut Reporter<'_>,
) -> Result<(), TrainError> {
    let path = dir.path().join(FIRST_BATCH_FILE);
    let check = crate::check::first_batch_grid(config, data, &path);
    match std::fs::metadata(&path) {
        Ok(meta) => {
            let path = path.display().to_string();
            Ok(reporter.sink.record(&Event::Artifact { kind: "first_batch", path: &path, bytes: meta.len() })?)
        }
        Err(_) if check.status == regimen_doctor::CheckStatus::Warn => reporter.notice("warn", &check.message),
        Err(_) => Ok(()),
    }
}

/// The picture of the first batch in a run's folder.
pub const FIRST_BATCH_FILE: &str = "first_batch.png";

/// Loads the pretrained weights `config.init_from` names into `model`, when it names any.
pub(crate) fn initialize<M: Network>(
    model: M,
    config: &TrainConfig,
    recorder: &Recorder,
) -> Result<(M, Option<(Pretrained, InitReport)>), TrainError> {
    let Some(source) = &config.init_from else { return Ok((model, None)) };
    let source = transfer::resolve(source, recorder)?;
    let renames = config.init_map.iter().map(|r| Rename::parse(r)).collect::<Result<Vec<_>, _>>()?;
    let (model, report) = transfer::load_pretrained(model, &source.file, &renames)?;
    Ok((model, Some((source, report))))
}

/// Continues a run from its newest checkpoint that verifies (or from the checkpoint folder
/// `target` names), in the same run folder and store record, with the model that `build` creates.
///
/// `target` is a run id, a unique id prefix, a run folder or a checkpoint folder. The config is the
/// one the checkpoint carries: a resumed run is the same run. On CPU the result is bitwise
/// identical to the run that was never interrupted.
///
/// `extend_to` leaves a run training: it continues a run (finished or not) up to that many epochs
/// in all, on the same run. A schedule whose shape depends on the number of epochs (cosine,
/// one-cycle) is refused, since stretching it would change the epochs already trained; with any
/// other schedule the result equals a run started with that many epochs, bit for bit on CPU.
pub fn resume_with<M, F>(
    recorder: &Recorder,
    target: &str,
    extend_to: Option<u64>,
    observer: &mut dyn Observer,
    build: F,
) -> Result<RunSummary, TrainError>
where
    M: Network,
    F: FnOnce(&PreparedData, &TrainConfig, &Device) -> Result<M, TrainError>,
{
    let (dir, chosen) = recorder.locate(target)?;
    let (resumable, warnings) = match chosen {
        Some(path) => (Resumable::read(&path)?, Vec::new()),
        None => checkpoint::latest_resumable(&dir.checkpoints())?,
    };
    let mut config = checkpoint::read_state(&resumable.checkpoint)?.config;
    let trained = config.epochs;
    if let Some(epochs) = extend_to {
        extend(&mut config, epochs, &dir)?;
    }
    config.validate()?;
    let device = parse_device(&config.device)?.autodiff();
    let data = load_data(&config)?;
    device.seed(config.seed);
    let model = build(&data, &config, &device)?;
    let name = Fields::new(&config, &data.identity.name, &data.identity.short_id).render(&config.run_name)?;
    let mut sink = recorder.sink(&dir, true)?;
    for warning in &warnings {
        let message = format!("skipped a damaged checkpoint: {warning}");
        Reporter { sink: &mut *sink, observer: &mut *observer }.notice("warn", &message)?;
    }
    if config.epochs != trained {
        let message = format!("extended from {trained} to {} epochs", config.epochs);
        Reporter { sink: &mut *sink, observer: &mut *observer }.notice("info", &message)?;
    }
    run_fit(model, &config, &data, device, (&dir, &name), Some(resumable), &mut *sink, observer)
}

/// Continues a run of a built-in model; see [`resume_with`].
pub fn resume(
    recorder: &Recorder,
    target: &str,
    extend_to: Option<u64>,
    observer: &mut dyn Observer,
) -> Result<RunSummary, TrainError> {
    resume_with(recorder, target, extend_to, observer, build_for)
}

/// Sets a resumed run's epochs to `epochs`, when its schedule allows it, and records the new
/// config in the run's folder.
fn extend(config: &mut TrainConfig, epochs: u64, dir: &RunDir) -> Result<(), TrainError> {
    let refuse = |message: String| TrainError::Config { origin: "--epochs with --resume".into(), message };
    if epochs <= config.epochs {
        return Err(refuse(format!(
            "the run is set to {} epochs already; give more to leave it training longer",
            config.epochs
        )));
    }
    let shape = config.schedule.split(':').next().unwrap_or_default();
    if matches!(shape, "cosine" | "onecycle") {
        return Err(refuse(format!(
            "its `{}` schedule is shaped to end at epoch {}: stretching it to {epochs} would change the learning \
             rates of the epochs already trained, and restarting it would not be the same run; start a new run \
             from its weights instead (`regimen train --init-from RUN_DIR/model.safetensors --epochs N`)",
            config.schedule, config.epochs
        )));
    }
    config.epochs = epochs;
    checkpoint::write_atomically(&dir.config(), config.to_toml().as_bytes())
}

/// Runs [`fit`] for a run whose folder and log exist, and records how it ended.
#[allow(clippy::too_many_arguments)]
fn run_fit<M: Network>(
    model: M,
    config: &TrainConfig,
    data: &PreparedData,
    device: Device,
    (dir, name): (&RunDir, &str),
    resume: Option<Resumable>,
    sink: &mut dyn EventSink,
    observer: &mut dyn Observer,
) -> Result<RunSummary, TrainError> {
    let run_id = dir.id();
    observer.on_run_start(&RunInfo {
        run_id: &run_id,
        name,
        run_dir: dir.path(),
        dataset: &data.identity,
        parameters: model.num_params(),
    });
    let checkpoints = dir.checkpoints();
    let outcome = fit(
        model,
        FitContext { config, data, device, checkpoints: Some(&checkpoints), resume, sink: &mut *sink, observer },
    );
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            let reason = error.to_string();
            // The run failed already; a log that cannot take its ending is not the error to report.
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
    Ok(RunSummary {
        run_id,
        name: name.to_string(),
        status: outcome.status,
        reason: outcome.reason.clone(),
        model: config.model.clone(),
        epochs: outcome.epochs,
        steps: outcome.steps,
        best: outcome.best(),
        best_at: outcome.bests.0.clone(),
        r#final: outcome.last(),
        monitor: outcome.monitor,
        dataset: data.identity.clone(),
        checkpoints: Checkpoints { best: outcome.best_checkpoint, last: outcome.last_checkpoint },
        final_model: outcome.final_model,
        diagnosis: outcome.diagnosis,
        seconds: outcome.seconds,
        run_dir: dir.path().to_path_buf(),
    })
}

/// Which weights of a run to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckpointChoice {
    /// The best epoch's weights.
    Best,
    /// The last epoch's weights.
    Last,
    /// A checkpoint folder.
    File(PathBuf),
}

/// The result of evaluating a saved run.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// The run evaluated.
    pub run_id: String,
    /// The split: `val` or `test`.
    pub split: String,
    /// The checkpoint evaluated.
    pub checkpoint: PathBuf,
    /// Damaged checkpoints passed over, each with what is wrong with it; the first names the one
    /// that was asked for when it was damaged.
    pub skipped: Vec<String>,
    /// Samples evaluated.
    pub samples: usize,
    /// Named scalar metrics.
    pub metrics: BTreeMap<String, f64>,
    /// The full report (per-class statistics, confusion matrix).
    pub report: Report,
}

/// Evaluates a saved run's built-in model on its `val` or `test` split, and records in the run
/// (its log and its store record) that the split was used, with which checkpoint.
///
/// `run` is what [`resume_with`] takes. The chosen checkpoint is verified; when it is damaged the
/// best (or newest) one that verifies is used instead and the evaluation says so.
pub fn evaluate_run(
    recorder: &Recorder,
    run: &str,
    split: &str,
    choice: &CheckpointChoice,
) -> Result<Evaluation, TrainError> {
    let (dir, named) = recorder.locate(run)?;
    let choice = match (named, choice) {
        (Some(path), _) => CheckpointChoice::File(path),
        (None, choice) => choice.clone(),
    };
    let (chosen, skipped) = choose_checkpoint(&dir, &choice, recorder)?;
    let state = checkpoint::read_state(&chosen)?;
    let config = state.config;
    let data = load_data(&config)?;
    if data.identity.fingerprint != state.dataset_fingerprint {
        return Err(TrainError::Checkpoint {
            path: chosen.dir.clone(),
            message: format!(
                "the data changed since the run: fingerprint {} now, {} when trained; restore the original data \
                 to evaluate this run",
                data.identity.short_id,
                regimen_data::short_fingerprint(&state.dataset_fingerprint)
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
    let device = parse_device(&config.device)?;
    let model = build_for(&data, &config, &device)?;
    let model = load_weights(model, &chosen.model_file())?.valid();
    let objective = Objective::for_task(&data.task, 0.0, &device);
    let mut meter = Meter::for_task(&data.task, config.top_k)?;
    let report = evaluate(&model, samples, &objective, &mut meter, config.batch_size, &device)?;
    let metrics: BTreeMap<String, f64> =
        report.scalars().map(|(name, value)| (format!("{split}.{name}"), value)).collect();

    let notice = format!(
        "evaluated {} (epoch {}, step {}) on the {split} split",
        chosen.dir.display(),
        chosen.manifest.epoch,
        chosen.manifest.step
    );
    let body = serde_json::to_value(&report).expect("a report is always serializable to JSON");
    let (step, epoch) = (state.step, state.epoch);
    let mut log = JsonLinesSink::open(dir.events())?;
    for warning in &skipped {
        log.record(&Event::Notice { level: "warn", message: warning })?;
    }
    log.record(&Event::Notice { level: "info", message: &notice })?;
    log.record(&Event::Report { split, step, epoch, body: &body })?;
    log.flush()?;
    if let Some(store) = recorder.store() {
        let wall = Timestamp::now();
        let mut batch: Vec<Write<'_>> =
            skipped.iter().map(|warning| Write::Notice { level: "warn", message: warning, wall }).collect();
        batch.push(Write::Notice { level: "info", message: &notice, wall });
        batch.push(Write::Report { split, step, epoch, wall, body: &body });
        match store.write(&dir.id(), &batch) {
            // A run trained before the store existed is not in it; the log keeps its evaluation.
            Ok(()) | Err(StoreError::RunNotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(Evaluation {
        run_id: dir.id(),
        split: split.to_string(),
        checkpoint: chosen.dir,
        skipped,
        samples: samples.len(),
        metrics,
        report,
    })
}

/// The checkpoint to evaluate, verified, and a warning for each damaged checkpoint passed over:
/// when the one asked for is damaged, the first warning names it and the one used instead.
pub(crate) fn choose_checkpoint(
    dir: &RunDir,
    choice: &CheckpointChoice,
    recorder: &Recorder,
) -> Result<(Checkpoint, Vec<String>), TrainError> {
    if let CheckpointChoice::File(path) = choice {
        return Ok((checkpoint::verify(path)?, Vec::new()));
    }
    let folder = dir.checkpoints();
    let (good, damaged) = checkpoint::scan(&folder)?;
    let all = checkpoint::list(&folder)?;
    let recorded = recorder.store().and_then(|store| store.get_run(&dir.id()).ok()).and_then(|d| d.row.monitor);
    let mode = |checkpoints: &[Checkpoint]| {
        checkpoints
            .iter()
            .find_map(|c| c.manifest.monitor_mode)
            .or(recorded.as_ref().map(|m| m.mode))
            .or_else(|| checkpoints.first().and_then(|c| Mode::of_key(&c.manifest.monitor)))
            .unwrap_or(Mode::Max)
    };
    let pick = |checkpoints: &'_ [Checkpoint]| -> Option<Checkpoint> {
        match choice {
            CheckpointChoice::Best => checkpoint::best(checkpoints, mode(checkpoints)).cloned(),
            _ => checkpoints.first().cloned(),
        }
    };
    let wanted = if *choice == CheckpointChoice::Best { "best" } else { "last" };
    let used = pick(&good).ok_or_else(|| TrainError::Checkpoint {
        path: folder.clone(),
        message: if damaged.is_empty() {
            format!("the run has no {wanted} checkpoint")
        } else {
            format!("the run has no {wanted} checkpoint that verifies: {}", damaged.join("; "))
        },
    })?;
    let mut warnings = Vec::new();
    if let Some(asked) = pick(&all).filter(|asked| asked.dir != used.dir) {
        let reason = damaged
            .iter()
            .find(|w| w.contains(&asked.dir.display().to_string()))
            .cloned()
            .unwrap_or_else(|| "it does not verify".to_string());
        warnings.push(format!(
            "the {wanted} checkpoint {} is damaged ({reason}); evaluated the {wanted} one that verifies instead: {}",
            asked.dir.display(),
            used.dir.display()
        ));
    }
    for damage in damaged {
        if !warnings.iter().any(|first| first.contains(damage.as_str())) {
            warnings.push(format!("skipped a damaged checkpoint: {damage}"));
        }
    }
    Ok((used, warnings))
}
