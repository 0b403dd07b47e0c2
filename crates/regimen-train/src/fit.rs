//! The training loop.
//!
//! One epoch: draw the epoch's sample order from the seed, take its batches (built inline, or on a
//! helper thread when augmenting), seed the step's random streams from the seed and the step,
//! step the optimizer with the scheduled learning rate, and keep running metrics; then validate,
//! log epoch metrics, consult the [`Monitor`] (best checkpoint, early stopping, reduce-on-plateau)
//! and save a checkpoint. The loop reports through an [`EventSink`] and an [`Observer`] and knows
//! nothing about where logs go or how progress is drawn.
//!
//! Every checkpoint carries the whole training state ([`TrainState`]), so a fit started from one
//! continues exactly as the uninterrupted run would have, mid-epoch included.
//!
//! The hot path reads back one loss scalar and the batch outputs per step (needed for running
//! accuracy and to catch a NaN at once); it does no I/O: events are buffered by the sink and made
//! durable at epoch ends and checkpoints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use regimen_data::{Augment, BatchBuilder, PreparedData, Samples, Task, epoch_order};
use regimen_events::{Event, EventSink, RunStatus};
use regimen_metrics::Report;
use regimen_monitor::{Mode, Monitor, Position, StopReason, Verdict};
use regimen_schedule::{ScheduleSpec, Scheduler};

use crate::batches::{Batches, EpochPlan, batch_count};
use crate::checkpoint::{self, Checkpoint, Contents, Encoded, Manifest, Retention};
use crate::config::TrainConfig;
use crate::diagnosis::LiveDiagnosis;
use crate::error::TrainError;
use crate::evaluate::{Meter, Objective, evaluate, host_outputs};
use crate::faults::{self, Fault};
use crate::interrupt;
use crate::model::Network;
use crate::naming::{Fields, metric_tag};
use crate::observer::{EpochSummary, Observer, StepProgress};
use crate::optim::build_optimizer;
use crate::state::{STATE_FORMAT, TrainState, assign_param_ids, param_ids, step_seed};
use crate::system::{device_memory_bytes, peak_rss_bytes};

/// What a finished (or stopped) fit produced.
#[derive(Debug, Clone)]
pub struct FitOutcome {
    /// How the run ended.
    pub status: RunStatus,
    /// Why, when it did not simply finish.
    pub reason: Option<String>,
    /// Epochs completed.
    pub epochs: u64,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Every epoch's summary, in order.
    pub history: Vec<EpochSummary>,
    /// Metric key whose best value selects the `best` checkpoint.
    pub monitor: String,
    /// The checkpoint with the best monitored value.
    pub best_checkpoint: Option<PathBuf>,
    /// The newest checkpoint.
    pub last_checkpoint: Option<PathBuf>,
    /// The weights the run hands over (`model.safetensors` in the run folder), and where they
    /// came from.
    pub final_model: Option<FinalModel>,
    /// The recipe's verdict on the run (underfitting, bias and variance, overfitting, gradient
    /// flow), also recorded as its `diagnosis` report.
    pub diagnosis: Vec<regimen_doctor::Check>,
    /// Wall-clock seconds of the fit (of this process, when resumed).
    pub seconds: f64,
}

/// The run's final weights.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinalModel {
    /// The safetensors file.
    pub path: PathBuf,
    /// The checkpoint they were copied from.
    pub checkpoint: PathBuf,
    /// Epoch of that checkpoint.
    pub epoch: u64,
    /// Step of that checkpoint.
    pub step: u64,
    /// Whether they are the best checkpoint's (restore-best) rather than the last one's.
    pub restored_best: bool,
}

impl FitOutcome {
    /// Each metric's best value over the epochs, for metrics with a known direction.
    pub fn best(&self) -> BTreeMap<String, f64> {
        let mut best = BTreeMap::new();
        for summary in &self.history {
            for (key, &value) in &summary.metrics {
                let Some(mode) = Mode::infer(key) else { continue };
                best.entry(key.clone())
                    .and_modify(|b: &mut f64| {
                        if mode.better(value, *b) {
                            *b = value;
                        }
                    })
                    .or_insert(value);
            }
        }
        best
    }

    /// The metrics of the last completed epoch.
    pub fn last(&self) -> BTreeMap<String, f64> {
        self.history.last().map(|s| s.metrics.clone()).unwrap_or_default()
    }
}

/// Where a fit writes and how it reports.
pub struct FitContext<'a> {
    /// The resolved configuration.
    pub config: &'a TrainConfig,
    /// The prepared data; the test split is never read here.
    pub data: &'a PreparedData,
    /// Device with autodiff, on which the model lives.
    pub device: Device,
    /// Folder for checkpoints; `None` saves nothing.
    pub checkpoints: Option<&'a Path>,
    /// Continue from this checkpoint (weights, optimizer, schedule, monitor, data position).
    pub resume: Option<&'a Checkpoint>,
    /// Where events go.
    pub sink: &'a mut dyn EventSink,
    /// Who watches.
    pub observer: &'a mut dyn Observer,
}

/// Saves checkpoints as the config says and remembers the last time it did.
struct Saver<'a> {
    folder: &'a Path,
    fields: Fields,
    template: &'a str,
    mode: Mode,
    retention: Retention,
    every_steps: Option<u64>,
    every: Option<Duration>,
    last_saved: Instant,
}

impl Saver<'_> {
    /// Whether a mid-epoch checkpoint is due after `step`.
    fn due(&self, step: u64) -> bool {
        self.every_steps.is_some_and(|n| step.is_multiple_of(n))
            || self.every.is_some_and(|t| self.last_saved.elapsed() >= t)
    }

    fn save<M: Network>(
        &mut self,
        model: &M,
        optimizer: &ModuleOptimizer,
        state: &TrainState,
        monitor: (&str, Option<f64>),
        sink: &mut dyn EventSink,
    ) -> Result<(), TrainError> {
        let (metric, value) = monitor;
        let name = self
            .fields
            .clone_with(&[
                ("epoch", state.epoch.to_string()),
                ("step", state.step.to_string()),
                ("metric", metric_tag(metric)),
                ("value", value.map_or_else(|| "na".to_string(), |v| format!("{v:.4}"))),
            ])
            .render(self.template)?;
        let state_json = serde_json::to_vec(state)
            .map_err(|e| TrainError::Checkpoint { path: self.folder.join(&name), message: e.to_string() })?;
        let manifest = Manifest {
            format: 0,
            step: state.step,
            epoch: state.epoch,
            epoch_complete: state.history.last().is_some_and(|h| h.epoch == state.epoch),
            monitor: metric.to_string(),
            monitor_value: value,
            files: BTreeMap::new(),
        };
        let contents = Contents {
            model: Box::new(|| checkpoint::encode_weights(model).map(|bytes| Box::new(bytes) as Encoded)),
            optimizer: Box::new(|| {
                optimizer.into_bytes().map(|bytes| Box::new(bytes) as Encoded).map_err(|e| e.to_string())
            }),
            state: checkpoint::encoded(state_json),
        };
        let saved = checkpoint::save(self.folder, &name, manifest, contents)?;
        self.last_saved = Instant::now();
        sink.record(&Event::Artifact {
            kind: "checkpoint",
            path: &saved.dir.display().to_string(),
            bytes: saved.bytes(),
        })?;
        for deleted in checkpoint::prune(self.folder, self.mode, self.retention) {
            sink.record(&Event::Artifact {
                kind: "checkpoint.deleted",
                path: &deleted.display().to_string(),
                bytes: 0,
            })?;
        }
        sink.flush()?;
        Ok(())
    }
}

/// How the loop ended before its last epoch.
struct Stop {
    status: RunStatus,
    reason: String,
}

impl Stop {
    fn interrupted(step: u64, epoch: u64) -> Stop {
        Stop {
            status: RunStatus::Interrupted,
            reason: format!(
                "interrupted at step {step} (epoch {epoch}); continue it with `regimen train --resume RUN`"
            ),
        }
    }

    fn from_monitor(reason: &StopReason) -> Stop {
        let status = if reason.is_divergence() { RunStatus::Diverged } else { RunStatus::StoppedEarly };
        Stop { status, reason: reason.to_string() }
    }
}

/// Trains `model` on `ctx.data` as `ctx.config` says.
pub fn fit<M: Network>(model: M, ctx: FitContext<'_>) -> Result<FitOutcome, TrainError> {
    let FitContext { config, data, device, checkpoints, resume, sink, observer } = ctx;
    let started = Instant::now();
    let plain = device.clone().without_autodiff();
    let objective = Objective::for_task(&data.task, config.label_smoothing, &device);
    let eval_objective = Objective::for_task(&data.task, 0.0, &plain);
    let mut train_meter = Meter::for_task(&data.task, config.top_k)?;
    let mut eval_meter = Meter::for_task(&data.task, config.top_k)?;
    let augment = Augment {
        hflip: config.augment_flip,
        crop_padding: config.augment_crop,
        rotate_degrees: config.augment_rotate,
        noise_std: config.augment_noise,
    };
    let augment = (!augment.is_identity()).then_some(augment);
    let train_eval = train_eval_subset(data, config);

    let default_metric = match data.task {
        Task::Classification { .. } => "val.macro_f1",
        Task::Regression => "val.loss",
    };
    let spec = config.monitor_spec(default_metric)?;
    let names: Vec<String> = train_meter.report().scalars().map(|(name, _)| name.to_string()).collect();
    let splits: &[&str] = if train_eval.is_some() { &["train", "val", "train_eval"] } else { &["train", "val"] };
    let available: Vec<String> =
        splits.iter().flat_map(|split| names.iter().map(move |n| format!("{split}.{n}"))).collect();
    spec.check_available(available.iter().map(String::as_str))
        .map_err(|e| TrainError::Config { origin: "the `monitor` setting".into(), message: e.to_string() })?;
    let monitor_key = spec.metric.clone();
    let mut monitor = Monitor::new(spec.clone(), config.stopping()?);

    let steps_per_epoch = batch_count(data.train.len(), config.batch_size, true) as u64;
    if steps_per_epoch == 0 {
        return Err(TrainError::Model(format!(
            "the train split has {} sample(s), too few for one batch of at least 2",
            data.train.len()
        )));
    }
    let mut schedule: ScheduleSpec = config.schedule.parse()?;
    // Reduce-on-plateau follows the run's monitor, in its direction.
    if let ScheduleSpec::Plateau { mode, .. } = &mut schedule {
        *mode = match spec.mode {
            Mode::Min => regimen_schedule::Mode::Min,
            Mode::Max => regimen_schedule::Mode::Max,
        };
    }
    let mut scheduler = Scheduler::new(schedule, config.lr, steps_per_epoch * config.epochs, steps_per_epoch)?;
    let mut optimizer = build_optimizer(config);
    let builder = BatchBuilder;

    let mut model = model;
    let mut step = 0u64;
    let mut loss_window = (0.0f64, 0u64);
    let mut history = Vec::with_capacity(config.epochs as usize);
    let (mut first_epoch, mut first_batch) = (1u64, 0u64);
    if let Some(checkpoint) = resume {
        let state = read_state(checkpoint, config, data)?;
        // `checkpoint` was verified when it was chosen: read the files once more, not hash them twice.
        model = checkpoint::load_weights(model, &checkpoint.model_file())?;
        model = assign_param_ids(model, &state.param_ids).ok_or_else(|| TrainError::Checkpoint {
            path: checkpoint.dir.clone(),
            message: "its parameters do not match the model's; it was saved from a different model".into(),
        })?;
        optimizer = checkpoint::load_optimizer(checkpoint, optimizer)?;
        scheduler.restore(state.scheduler)?;
        monitor.restore(state.monitor);
        train_meter.restore(state.train_meter);
        loss_window = state.loss_window;
        history = state.history;
        step = state.step;
        (first_epoch, first_batch) = if state.batches_done >= steps_per_epoch {
            (state.epoch + 1, 0)
        } else {
            (state.epoch, state.batches_done)
        };
        let path = checkpoint.dir.display().to_string();
        sink.record(&Event::RunResumed { from_step: step, checkpoint: &path })?;
        let message = format!(
            "resumed from {path} at step {step} (epoch {first_epoch}, batch {first_batch} of {steps_per_epoch})"
        );
        sink.record(&Event::Notice { level: "info", message: &message })?;
        observer.on_notice(&message);
    }
    let mut live = LiveDiagnosis::new(data, config.grad_norm_every, config.prediction_samples);
    let mut saver = checkpoints.map(|folder| Saver {
        folder,
        fields: Fields::new(config, &data.identity.name, &data.identity.short_id),
        template: &config.checkpoint_name,
        mode: spec.mode,
        retention: Retention { top_k: config.keep_top_k, every_epochs: config.keep_every },
        every_steps: config.checkpoint_every_steps,
        every: config.checkpoint_every_minutes.map(|m| Duration::from_secs_f64(m * 60.0)),
        last_saved: Instant::now(),
    });
    let snapshot = |step: u64,
                    epoch: u64,
                    batches_done: u64,
                    scheduler: &Scheduler,
                    monitor: &Monitor,
                    meter: &Meter,
                    loss_window,
                    history: &[EpochSummary],
                    model: &M| TrainState {
        format: STATE_FORMAT,
        step,
        epoch,
        batches_done,
        config: config.clone(),
        dataset_fingerprint: data.identity.fingerprint.clone(),
        scheduler: scheduler.state(),
        monitor: monitor.state().clone(),
        train_meter: meter.state(),
        loss_window,
        history: history.to_vec(),
        param_ids: param_ids(model),
    };

    let mut stop: Option<Stop> = None;
    for epoch in first_epoch..=config.epochs {
        let epoch_started = Instant::now();
        let skip = if epoch == first_epoch { first_batch } else { 0 };
        if skip == 0 {
            train_meter.reset();
        }
        let order = epoch_order(config.seed, epoch, data.train.len());
        let plan = EpochPlan {
            samples: &data.train,
            order: &order,
            batch_size: config.batch_size,
            training: true,
            augment: augment.as_ref().map(|a| (a, config.seed, epoch)),
            first_batch: skip as usize,
        };
        observer.on_epoch_start(epoch, config.epochs, steps_per_epoch);
        let mut data_wait = Duration::ZERO;
        let mut compute = Duration::ZERO;
        let mut samples_seen = 0usize;

        // The model moves into the scope and back out: each step consumes it and returns the update.
        model = std::thread::scope(|scope| -> Result<M, TrainError> {
            let mut model = model;
            let mut batches = Batches::start(plan, scope, &builder);
            for step_in_epoch in skip + 1..=steps_per_epoch {
                let waited = Instant::now();
                let Some(mut batch) = batches.next() else { break };
                let computing = Instant::now();
                data_wait += computing - waited;

                let lr = scheduler.lr(step);
                device.seed(step_seed(config.seed, step));
                let outputs = model.forward(batch.input(&device));
                let loss = objective.loss(outputs.clone(), &batch.targets, &device);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                if live.gradients_due(step + 1, step_in_epoch == steps_per_epoch) {
                    live.log_gradients(&model, &grads, (step + 1, epoch), sink, observer)?;
                }
                model = optimizer.step(lr, model, grads);
                let loss_value = f64::from(loss.into_scalar::<f32>());
                let host = host_outputs(outputs.detach());
                compute += computing.elapsed();
                step += 1;
                samples_seen += batch.len;
                faults::hit(Fault::Step);

                if !loss_value.is_finite() {
                    stop = Some(Stop {
                        status: RunStatus::Diverged,
                        reason: format!(
                            "the training loss became {loss_value} at step {step} (epoch {epoch}); \
                             lower the learning rate (now {lr:.3e}) or add gradient clipping \
                             (--grad-clip 1.0); the last good checkpoint is kept"
                        ),
                    });
                    break;
                }
                train_meter.update(&host, &batch.targets, loss_value);
                loss_window.0 += loss_value;
                loss_window.1 += 1;
                if step.is_multiple_of(config.log_every) {
                    let value = loss_window.0 / loss_window.1 as f64;
                    sink.record(&Event::Scalar { key: "train.loss_step", step, epoch, value })?;
                    loss_window = (0.0, 0);
                }
                let elapsed = (data_wait + compute).as_secs_f64();
                observer.on_step(&StepProgress {
                    epoch,
                    step_in_epoch,
                    steps_in_epoch: steps_per_epoch,
                    loss: train_meter.loss(),
                    accuracy: train_meter.accuracy(),
                    samples_per_sec: samples_seen as f64 / elapsed.max(1e-9),
                });
                if step_in_epoch == steps_per_epoch {
                    break;
                }
                if interrupt::requested() {
                    stop = Some(Stop::interrupted(step, epoch));
                }
                let mut evaluated: Option<(f64, Verdict)> = None;
                if let Some(every) = config.val_every_steps
                    && stop.is_none()
                    && step.is_multiple_of(every)
                {
                    let report = evaluate(
                        &model.valid(),
                        &data.val,
                        &eval_objective,
                        &mut eval_meter,
                        config.batch_size,
                        &plain,
                    );
                    faults::hit(Fault::Validation);
                    // Mid-epoch results go to the log only; the epoch summary holds epoch ends.
                    let mut metrics = BTreeMap::new();
                    log_report(sink, "val", &report, step, epoch, &mut metrics)?;
                    if let Some(&value) = metrics.get(&monitor_key) {
                        let verdict = monitor.observe(value, Position { step, epoch, steps_per_epoch });
                        evaluated = Some((value, verdict));
                    }
                }
                if let Some((_, Verdict { stop: Some(reason), .. })) = &evaluated {
                    stop = Some(Stop::from_monitor(reason));
                }
                let improved = evaluated.as_ref().is_some_and(|(_, v)| v.improved);
                let diverged = stop.as_ref().is_some_and(|s| s.status == RunStatus::Diverged);
                if let Some(saver) = saver.as_mut()
                    && !diverged
                    && (improved || stop.is_some() || saver.due(step))
                {
                    let state = snapshot(
                        step,
                        epoch,
                        step_in_epoch,
                        &scheduler,
                        &monitor,
                        &train_meter,
                        loss_window,
                        &history,
                        &model,
                    );
                    saver.save(&model, &optimizer, &state, (&monitor_key, evaluated.map(|(v, _)| v)), sink)?;
                }
                if stop.is_some() {
                    break;
                }
            }
            Ok(model)
        })?;
        if let Some(stop) = &stop {
            sink.record(&Event::Notice { level: "warn", message: &stop.reason })?;
            observer.on_notice(&stop.reason);
            break;
        }

        // Epoch end: training aggregates, validation, system metrics.
        let mut metrics = BTreeMap::new();
        log_report(sink, "train", &train_meter.report(), step, epoch, &mut metrics)?;
        let valid = model.valid();
        let val_report = evaluate(&valid, &data.val, &eval_objective, &mut eval_meter, config.batch_size, &plain);
        faults::hit(Fault::Validation);
        log_report(sink, "val", &val_report, step, epoch, &mut metrics)?;
        if let Some(subset) = &train_eval {
            let report = evaluate(&valid, subset, &eval_objective, &mut eval_meter, config.batch_size, &plain);
            log_report(sink, "train_eval", &report, step, epoch, &mut metrics)?;
        }
        let seconds = epoch_started.elapsed().as_secs_f64();
        let steps = (steps_per_epoch - skip).max(1) as f64;
        let mut system = vec![
            ("lr", scheduler.lr(step.saturating_sub(1))),
            ("sys.samples_per_sec", samples_seen as f64 / (data_wait + compute).as_secs_f64().max(1e-9)),
            ("sys.batch_seconds", (data_wait + compute).as_secs_f64() / steps),
            ("sys.data_wait_seconds", data_wait.as_secs_f64() / steps),
            ("sys.compute_seconds", compute.as_secs_f64() / steps),
            ("sys.epoch_seconds", seconds),
        ];
        if let Some(bytes) = peak_rss_bytes() {
            system.push(("sys.peak_rss_mb", bytes as f64 / 1e6));
        }
        if let Some(bytes) = device_memory_bytes(&device) {
            system.push(("sys.device_memory_mb", bytes as f64 / 1e6));
        }
        for (key, value) in system {
            sink.record(&Event::Scalar { key, step, epoch, value })?;
            metrics.insert(key.to_string(), value);
        }

        let monitored = metrics.get(&monitor_key).copied().unwrap_or(f64::NAN);
        let verdict = monitor.observe(monitored, Position { step, epoch, steps_per_epoch });
        if monitored.is_finite() {
            scheduler.on_validation(monitored);
        }
        stop = verdict.stop.as_ref().map(Stop::from_monitor);
        if stop.is_none() && interrupt::requested() {
            stop = Some(Stop::interrupted(step, epoch));
        }
        history.push(EpochSummary { epoch, step, metrics, seconds });
        live.epoch_end(&valid, &plain, &history, sink, observer)?;
        let diverged = stop.as_ref().is_some_and(|s| s.status == RunStatus::Diverged);
        if let Some(saver) = saver.as_mut()
            && !diverged
        {
            train_meter.reset();
            let state = snapshot(
                step,
                epoch,
                steps_per_epoch,
                &scheduler,
                &monitor,
                &train_meter,
                loss_window,
                &history,
                &model,
            );
            saver.save(&model, &optimizer, &state, (&monitor_key, Some(monitored)), sink)?;
        }
        sink.flush()?;
        if let Some(summary) = history.last() {
            observer.on_epoch_end(summary);
        }
        if let Some(stop) = &stop {
            sink.record(&Event::Notice { level: "warn", message: &stop.reason })?;
            observer.on_notice(&stop.reason);
            break;
        }
    }

    let diagnosis = live.finish(&history, sink)?;
    let final_model = match checkpoints {
        Some(folder) => hand_over(folder, spec.mode, config.restore_best, sink)?,
        None => None,
    };
    let (best_checkpoint, last_checkpoint) = match checkpoints {
        Some(folder) => {
            let (good, _) = checkpoint::scan(folder);
            (checkpoint::best(&good, spec.mode).map(|c| c.dir.clone()), good.first().map(|c| c.dir.clone()))
        }
        None => (None, None),
    };
    let (status, reason) = match stop {
        Some(Stop { status, reason }) => (status, Some(reason)),
        None => (RunStatus::Finished, None),
    };
    Ok(FitOutcome {
        status,
        reason,
        epochs: history.len() as u64,
        steps: step,
        history,
        monitor: monitor_key,
        best_checkpoint,
        last_checkpoint,
        final_model,
        diagnosis,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads a checkpoint's training state and checks that it belongs to this config and data.
fn read_state(checkpoint: &Checkpoint, config: &TrainConfig, data: &PreparedData) -> Result<TrainState, TrainError> {
    let path = checkpoint.dir.join(checkpoint::STATE_FILE);
    let error = |message: String| TrainError::Checkpoint { path: path.clone(), message };
    let bytes = std::fs::read(&path).map_err(|e| error(format!("cannot be read ({e})")))?;
    let state: TrainState =
        serde_json::from_slice(&bytes).map_err(|e| error(format!("is not a training state ({e})")))?;
    if state.format != STATE_FORMAT {
        return Err(error(format!("has format {}, this Regimen reads format {STATE_FORMAT}", state.format)));
    }
    if state.dataset_fingerprint != data.identity.fingerprint {
        return Err(error(format!(
            "was trained on data with fingerprint {}, not the current {}; restore the original data",
            &state.dataset_fingerprint[..8.min(state.dataset_fingerprint.len())],
            data.identity.short_id
        )));
    }
    if state.config != *config {
        return Err(error("was saved with a different configuration; resume with the run's own config".into()));
    }
    Ok(state)
}

/// Copies the best (or, without restore-best, the newest) checkpoint's weights to
/// `model.safetensors` beside the checkpoints folder: the run's final model.
fn hand_over(
    folder: &Path,
    mode: Mode,
    restore_best: bool,
    sink: &mut dyn EventSink,
) -> Result<Option<FinalModel>, TrainError> {
    let (good, _) = checkpoint::scan(folder);
    let chosen = if restore_best { checkpoint::best(&good, mode).or(good.first()) } else { good.first() };
    let Some(chosen) = chosen else { return Ok(None) };
    let path = folder.parent().unwrap_or(folder).join("model.safetensors");
    let bytes = std::fs::read(chosen.model_file()).map_err(|source| TrainError::Io {
        path: chosen.model_file(),
        action: "read",
        source,
    })?;
    checkpoint::write_atomically(&path, &bytes)?;
    sink.record(&Event::Artifact {
        kind: "model.final",
        path: &path.display().to_string(),
        bytes: bytes.len() as u64,
    })?;
    let restored_best = restore_best && good.first().map(|c| &c.dir) != Some(&chosen.dir);
    if restored_best {
        let message = format!(
            "the final model has the best weights, from epoch {} (step {}): {}",
            chosen.manifest.epoch,
            chosen.manifest.step,
            chosen.dir.display()
        );
        sink.record(&Event::Notice { level: "info", message: &message })?;
    }
    Ok(Some(FinalModel {
        path,
        checkpoint: chosen.dir.clone(),
        epoch: chosen.manifest.epoch,
        step: chosen.manifest.step,
        restored_best,
    }))
}

/// Logs a report's scalars as `split.name` and its full body as a structured event.
fn log_report(
    sink: &mut dyn EventSink,
    split: &str,
    report: &Report,
    step: u64,
    epoch: u64,
    metrics: &mut BTreeMap<String, f64>,
) -> Result<(), TrainError> {
    for (name, value) in report.scalars() {
        let key = format!("{split}.{name}");
        sink.record(&Event::Scalar { key: &key, step, epoch, value })?;
        metrics.insert(key, value);
    }
    if split != "train" {
        let body = serde_json::to_value(report).unwrap_or_default();
        sink.record(&Event::Report { split, step, epoch, body: &body })?;
    }
    Ok(())
}

/// A fixed subset of the train split for exact evaluation, chosen by the split seed.
fn train_eval_subset(data: &PreparedData, config: &TrainConfig) -> Option<Samples> {
    let n = config.train_eval_subset?.min(data.train.len());
    let order = epoch_order(config.split_seed, 0, data.train.len());
    let indices: Vec<usize> = order[..n].iter().map(|&i| i as usize).collect();
    Some(data.train.subset(&indices))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: u64, metrics: &[(&str, f64)]) -> EpochSummary {
        let metrics = metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        EpochSummary { epoch, step: epoch * 10, metrics, seconds: 1.0 }
    }

    #[test]
    fn best_takes_each_metric_in_its_own_direction_and_last_is_the_final_epoch() {
        let outcome = FitOutcome {
            status: RunStatus::Finished,
            reason: None,
            epochs: 3,
            steps: 30,
            history: vec![
                epoch(1, &[("val.loss", 0.9), ("val.acc", 0.6), ("lr", 1e-3)]),
                epoch(2, &[("val.loss", 0.4), ("val.acc", 0.8), ("lr", 5e-4)]),
                epoch(3, &[("val.loss", 0.5), ("val.acc", 0.7), ("lr", 2e-4)]),
            ],
            monitor: "val.acc".into(),
            best_checkpoint: None,
            last_checkpoint: None,
            final_model: None,
            diagnosis: Vec::new(),
            seconds: 3.0,
        };
        let best = outcome.best();
        assert_eq!(best["val.loss"], 0.4);
        assert_eq!(best["val.acc"], 0.8);
        assert!(!best.contains_key("lr"), "lr has no better direction");
        assert_eq!(outcome.last()["val.acc"], 0.7);
    }
}
