//! The training loop, as a [`Trainer`] that a caller drives.
//!
//! One epoch: draw the epoch's sample order from the seed, take its batches (built inline, or on a
//! helper thread when augmenting), take the shared training step ([`crate::step`]) at the
//! scheduled learning rate, and keep running metrics; then validate, log epoch metrics, let the
//! [`Monitor`] judge the validation (best checkpoint, early stopping, and whether reduce-on-plateau
//! saw progress) and save a checkpoint. The trainer reports through a [`Reporter`] (an
//! [`EventSink`] and an [`Observer`]) and knows nothing about where logs go or how progress is
//! drawn.
//!
//! A caller can run it to the end ([`Trainer::run`]) or a few steps or epochs at a time
//! ([`Trainer::run_steps`], [`Trainer::run_epochs`]) and get control back between them: a sweep
//! pauses a trial at a rung that way, and resumes it later from its checkpoint. Every checkpoint
//! carries the whole training state ([`TrainState`]), so a trainer started from one continues
//! exactly as the uninterrupted run would have, mid-epoch included.
//!
//! The hot path reads back one loss scalar and the batch outputs per step (needed for running
//! accuracy and to catch a NaN at once); it does no I/O: events are buffered by the sink and made
//! durable at epoch ends and checkpoints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::prelude::*;
use regimen_data::{Augment, BatchBuilder, PreparedData, Samples, Task, epoch_order};
use regimen_events::{Event, EventSink, RunStatus};
use regimen_metrics::{Mode, Monitored, Report};
use regimen_monitor::{Monitor, MonitorSpec, Position, StopReason, Verdict};
use regimen_schedule::Scheduler;

use crate::batches::{Batches, EpochPlan, batch_count};
use crate::checkpoint::{self, Checkpoint, Contents, Manifest, Resumable, Retention};
use crate::config::TrainConfig;
use crate::diagnosis::LiveDiagnosis;
use crate::error::TrainError;
use crate::evaluate::{Meter, Objective, evaluate};
use crate::faults::{self, Fault};
use crate::interrupt;
use crate::model::Network;
use crate::naming::{Fields, metric_tag};
use crate::observer::{EpochSummary, Observer, StepProgress};
use crate::state::{STATE_FORMAT, TrainState, assign_param_ids, param_ids};
use crate::step::{Probe, Stepper};
use crate::system::{device_memory_bytes, peak_rss_bytes};
use crate::transfer::{Frozen, plan_freeze};
use regimen_fs::FileError;

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
    /// Each metric's best point over every evaluation logged (mid-epoch ones included).
    pub bests: Bests,
    /// The metric whose best value selects the `best` checkpoint, and its direction.
    pub monitor: Monitored,
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
    /// Each metric's best value over every evaluation logged, in its direction; metrics with no
    /// direction have none.
    pub fn best(&self) -> BTreeMap<String, f64> {
        self.bests.0.iter().map(|(key, point)| (key.clone(), point.value)).collect()
    }

    /// The metrics of the last completed epoch.
    pub fn last(&self) -> BTreeMap<String, f64> {
        self.history.last().map(|s| s.metrics.clone()).unwrap_or_default()
    }
}

/// Where a metric was best: its value and the step and epoch of the evaluation.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BestPoint {
    /// The value.
    pub value: f64,
    /// Optimizer steps when it was logged.
    pub step: u64,
    /// Its epoch.
    pub epoch: u64,
}

/// Each metric's best point so far, by the rules of [`regimen_metrics::best`] (the run's monitor
/// decides the monitored key's direction; the earliest point wins ties): the same values the run
/// store shows as "best", since it sees the same points.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bests(pub BTreeMap<String, BestPoint>);

impl Bests {
    /// Takes the metrics of one evaluation logged at `step` of `epoch`.
    pub fn observe(&mut self, monitor: &Monitored, metrics: &BTreeMap<String, f64>, step: u64, epoch: u64) {
        for (key, &value) in metrics {
            let Some(mode) = Monitored::mode_of(Some(monitor), key) else { continue };
            let incumbent = self.0.get(key).map_or(f64::NAN, |b| b.value);
            if mode.is_better(value, incumbent) {
                self.0.insert(key.clone(), BestPoint { value, step, epoch });
            }
        }
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
    pub resume: Option<Resumable>,
    /// Where events go.
    pub sink: &'a mut dyn EventSink,
    /// Who watches.
    pub observer: &'a mut dyn Observer,
}

/// The sink and the observer of a run, together: every notice goes to both.
pub struct Reporter<'a> {
    /// Where events go.
    pub sink: &'a mut dyn EventSink,
    /// Who watches.
    pub observer: &'a mut dyn Observer,
}

impl Reporter<'_> {
    /// Records a notice in the run and shows it.
    pub fn notice(&mut self, level: &str, message: &str) -> Result<(), TrainError> {
        self.sink.record(&Event::Notice { level, message })?;
        self.observer.on_notice(level, message);
        Ok(())
    }
}

/// Trains `model` on `ctx.data` as `ctx.config` says, to the end.
pub fn fit<M: Network>(model: M, ctx: FitContext<'_>) -> Result<FitOutcome, TrainError> {
    let mut trainer = Trainer::new(model, ctx)?;
    trainer.run()?;
    trainer.finish()
}

/// The resolved monitor spec of a run on `task`: the configured metric, or `val.macro_f1` for
/// classification and `val.loss` for regression.
pub fn monitor_spec(config: &TrainConfig, task: &Task) -> Result<MonitorSpec, TrainError> {
    let default_metric = match task {
        Task::Classification { .. } => "val.macro_f1",
        Task::Regression => "val.loss",
    };
    config.monitor_spec(default_metric)
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

    fn paused(epoch: u64) -> Stop {
        Stop {
            status: RunStatus::Interrupted,
            reason: format!("paused after epoch {epoch}; continue it with `regimen train --resume RUN`"),
        }
    }

    fn from_monitor(reason: &StopReason) -> Stop {
        let status = if reason.is_divergence() { RunStatus::Diverged } else { RunStatus::StoppedEarly };
        Stop { status, reason: reason.to_string() }
    }

    fn diverged(&self) -> bool {
        self.status == RunStatus::Diverged
    }
}

/// Time and samples of the epoch in progress, for the `sys.*` metrics.
#[derive(Default)]
struct EpochClock {
    started: Option<Instant>,
    data_wait: Duration,
    compute: Duration,
    samples: usize,
    /// Steps this process took in the epoch (fewer than the epoch's when it resumed mid-epoch).
    steps: u64,
}

/// A training run in progress: the model and everything the loop keeps between steps.
pub struct Trainer<'a, M: Network> {
    config: &'a TrainConfig,
    data: &'a PreparedData,
    device: Device,
    plain: Device,
    reporter: Reporter<'a>,
    checkpoints: Option<&'a Path>,
    model: Option<M>,
    stepper: Stepper,
    eval_objective: Objective,
    train_meter: Meter,
    eval_meter: Meter,
    scheduler: Scheduler,
    monitor: Monitor,
    live: LiveDiagnosis,
    saver: Option<Saver<'a>>,
    augment: Option<Augment>,
    train_eval: Option<Samples>,
    steps_per_epoch: u64,
    /// The epoch in progress (1-based) and the batches of it done.
    epoch: u64,
    batches_done: u64,
    /// The sample order of `epoch`.
    order: Vec<u32>,
    loss_window: (f64, u64),
    history: Vec<EpochSummary>,
    bests: Bests,
    monitored: Monitored,
    clock: EpochClock,
    stop: Option<Stop>,
    started: Instant,
    /// The modules `freeze` names, and whether they are frozen now.
    frozen: Option<(Frozen, bool)>,
}

impl<'a, M: Network> Trainer<'a, M> {
    /// Prepares a run: the optimizer, schedule, monitor and meters from the config, and, when
    /// `ctx.resume` names a checkpoint, everything restored from it.
    ///
    /// # Errors
    /// An invalid monitor, schedule or checkpoint interval; a train split too small for one
    /// batch; a run length that overflows; a checkpoint that belongs to another run.
    pub fn new(model: M, ctx: FitContext<'a>) -> Result<Self, TrainError> {
        let FitContext { config, data, device, checkpoints, resume, sink, observer } = ctx;
        let plain = device.clone().without_autodiff();
        let train_meter = Meter::for_task(&data.task, config.top_k)?;
        let train_eval = train_eval_subset(data, config);

        let spec = monitor_spec(config, &data.task)?;
        let names: Vec<String> = train_meter.report().scalars().map(|(name, _)| name.to_string()).collect();
        let splits: &[&str] = if train_eval.is_some() { &["train", "val", "train_eval"] } else { &["train", "val"] };
        let available: Vec<String> =
            splits.iter().flat_map(|split| names.iter().map(move |n| format!("{split}.{n}"))).collect();
        spec.check_available(available.iter().map(String::as_str))
            .map_err(|e| TrainError::Config { origin: "the `monitor` setting".into(), message: e.to_string() })?;

        let steps_per_epoch = batch_count(data.train.len(), config.batch_size, true) as u64;
        if steps_per_epoch == 0 {
            return Err(TrainError::SplitTooSmall { samples: data.train.len() });
        }
        let total_steps = steps_per_epoch.checked_mul(config.epochs).ok_or_else(|| TrainError::Config {
            origin: "the `epochs` setting".into(),
            message: format!(
                "{} epochs of {steps_per_epoch} steps is more steps than can be counted; ask for fewer epochs",
                config.epochs
            ),
        })?;
        let scheduler = Scheduler::new(config.schedule.parse()?, config.lr, total_steps, steps_per_epoch)?;
        let augment = config.augment();
        let saver = checkpoints.map(|folder| Saver {
            folder,
            fields: Fields::new(config, &data.identity.name, &data.identity.short_id),
            template: &config.checkpoint_name,
            mode: spec.mode,
            retention: Retention { top_k: config.keep_top_k, every_epochs: config.keep_every },
            every_steps: config.checkpoint_every_steps,
            every: config.checkpoint_interval(),
            last_saved: Instant::now(),
        });
        let mut trainer = Trainer {
            config,
            data,
            stepper: Stepper::new(config, &data.task, config.label_smoothing, &device),
            eval_objective: Objective::for_task(&data.task, 0.0, &plain),
            eval_meter: Meter::for_task(&data.task, config.top_k)?,
            train_meter,
            scheduler,
            monitor: Monitor::new(spec.clone(), config.stopping()?),
            live: LiveDiagnosis::new(data, config.grad_norm_every, config.prediction_samples),
            saver,
            augment: (!augment.is_identity()).then_some(augment),
            train_eval,
            steps_per_epoch,
            epoch: 1,
            batches_done: 0,
            order: epoch_order(config.seed, 1, data.train.len()),
            loss_window: (0.0, 0),
            history: Vec::new(),
            bests: Bests::default(),
            monitored: Monitored { metric: spec.metric.clone(), mode: spec.mode },
            clock: EpochClock::default(),
            stop: None,
            started: Instant::now(),
            frozen: None,
            reporter: Reporter { sink, observer },
            checkpoints,
            model: None,
            device,
            plain,
        };
        let model = match resume {
            Some(resumable) => trainer.restore(model, resumable)?,
            None => model,
        };
        trainer.model = Some(trainer.freeze(model)?);
        Ok(trainer)
    }

    /// Freezes the modules `freeze` names, unless the run is past `unfreeze_at` (a resumed run),
    /// in which case they train at the backbone's rate.
    fn freeze(&mut self, model: M) -> Result<M, TrainError> {
        let Some(frozen) = plan_freeze(&model, &self.config.freeze)? else { return Ok(model) };
        let (count, all) = frozen.tensors;
        let modules = frozen.modules.join(", ");
        if self.config.unfreeze_at.is_some_and(|epoch| self.epoch >= epoch) {
            self.stepper.scale_lr(frozen.ids.clone(), self.config.backbone_lr_scale);
            self.frozen = Some((frozen, false));
            return Ok(model);
        }
        let model = model.freeze_group(frozen.group.clone());
        let until = match self.config.unfreeze_at {
            Some(epoch) => format!(" until epoch {epoch}"),
            None => String::new(),
        };
        self.frozen = Some((frozen, true));
        self.reporter.notice("info", &format!("frozen{until}: {modules} ({count} of {all} tensors)"))?;
        Ok(model)
    }

    /// At the start of epoch `unfreeze_at`, lets the frozen modules train at the backbone's rate.
    fn unfreeze_if_due(&mut self) -> Result<(), TrainError> {
        let due = self.config.unfreeze_at == Some(self.epoch);
        let Some((frozen, now)) = self.frozen.as_mut().filter(|(_, now)| *now && due) else { return Ok(()) };
        *now = false;
        let model = self.model.take().expect("the trainer holds its model between calls");
        self.model = Some(model.unfreeze_group(frozen.group.clone()));
        self.stepper.scale_lr(frozen.ids.clone(), self.config.backbone_lr_scale);
        let message = format!(
            "epoch {}: unfroze {}; they train at the learning rate times {}",
            self.epoch,
            frozen.modules.join(", "),
            self.config.backbone_lr_scale
        );
        self.reporter.notice("info", &message)
    }

    /// Continues from a verified checkpoint: its weights, optimizer moments, schedule, monitor,
    /// running metrics, history and position in the data.
    fn restore(&mut self, model: M, resumable: Resumable) -> Result<M, TrainError> {
        let checkpoint = resumable.checkpoint.clone();
        let state = read_state(&checkpoint, self.config, self.data)?;
        // Verified when it was chosen; the weights and optimizer state are the bytes that read kept.
        let (model, optimizer) = resumable.restore(model, crate::optim::build_optimizer(self.config))?;
        let model = assign_param_ids(model, &state.param_ids).ok_or_else(|| TrainError::Checkpoint {
            path: checkpoint.dir.clone(),
            message: "its parameters do not match the model's; it was saved from a different model".into(),
        })?;
        self.stepper.resume(optimizer, state.step);
        self.scheduler.restore(state.scheduler)?;
        self.monitor.restore(state.monitor);
        self.train_meter.restore(state.train_meter);
        self.loss_window = state.loss_window;
        self.history = state.history;
        self.bests = state.bests;
        (self.epoch, self.batches_done) = if state.batches_done >= self.steps_per_epoch {
            (state.epoch + 1, 0)
        } else {
            (state.epoch, state.batches_done)
        };
        self.order = epoch_order(self.config.seed, self.epoch, self.data.train.len());
        let path = checkpoint.dir.display().to_string();
        let step = state.step;
        self.reporter.sink.record(&Event::RunResumed { from_step: step, checkpoint: &path })?;
        let message = format!(
            "resumed from {path} at step {step} (epoch {}, batch {} of {})",
            self.epoch, self.batches_done, self.steps_per_epoch
        );
        self.reporter.notice("info", &message)?;
        Ok(model)
    }

    /// Optimizer steps taken so far.
    pub fn step(&self) -> u64 {
        self.stepper.step
    }

    /// Epochs completed so far.
    pub fn epochs_done(&self) -> u64 {
        self.history.len() as u64
    }

    /// Whether the run is over: every epoch done, or stopped (early stopping, divergence,
    /// interruption).
    pub fn is_done(&self) -> bool {
        self.stop.is_some() || self.epoch > self.config.epochs
    }

    /// The summaries of the epochs completed so far.
    pub fn history(&self) -> &[EpochSummary] {
        &self.history
    }

    /// Trains to the end of the run (or until a stopping rule or an interruption stops it).
    pub fn run(&mut self) -> Result<(), TrainError> {
        self.run_steps(u64::MAX)
    }

    /// Trains `epochs` more epochs (fewer if the run ends first), finishing the epoch in
    /// progress first when it is partly done.
    pub fn run_epochs(&mut self, epochs: u64) -> Result<(), TrainError> {
        let target = self.epoch.saturating_sub(1).saturating_add(epochs);
        while !self.is_done() && self.epoch <= target {
            let remaining = self.steps_per_epoch - self.batches_done;
            self.run_steps(remaining)?;
        }
        Ok(())
    }

    /// Takes up to `steps` more optimizer steps, with every validation, checkpoint and epoch end
    /// that falls within them; returns early when the run ends.
    pub fn run_steps(&mut self, steps: u64) -> Result<(), TrainError> {
        let mut left = steps;
        while left > 0 && !self.is_done() {
            left -= self.run_segment(left)?;
            if let Some(stop) = &self.stop {
                let reason = stop.reason.clone();
                self.reporter.notice("warn", &reason)?;
                break;
            }
            if self.batches_done == self.steps_per_epoch {
                self.end_epoch()?;
                if let Some(stop) = &self.stop {
                    let reason = stop.reason.clone();
                    self.reporter.notice("warn", &reason)?;
                }
            }
        }
        Ok(())
    }

    /// Trains on up to `limit` batches of the epoch in progress; returns how many it took.
    fn run_segment(&mut self, limit: u64) -> Result<u64, TrainError> {
        let first = self.batches_done;
        if first == 0 {
            self.unfreeze_if_due()?;
            self.train_meter.reset();
            self.reporter.observer.on_epoch_start(self.epoch, self.config.epochs, self.steps_per_epoch);
            self.clock = EpochClock { started: Some(Instant::now()), ..EpochClock::default() };
        } else if self.clock.started.is_none() {
            self.clock.started = Some(Instant::now());
        }
        let end = self.steps_per_epoch.min(first.saturating_add(limit));
        let model = self.model.take().expect("the trainer holds its model between calls");
        let order = std::mem::take(&mut self.order);
        let augment = self.augment;
        let data = self.data;
        let plan = EpochPlan {
            samples: &data.train,
            order: &order,
            batch_size: self.config.batch_size,
            training: true,
            augment: augment.as_ref().map(|a| (a, self.config.seed, self.epoch)),
            first_batch: first as usize,
        };
        // The model moves into the scope and back out: each step consumes it and returns the update.
        let builder = BatchBuilder;
        let outcome = std::thread::scope(|scope| {
            let mut batches = Batches::start(plan, scope, &builder);
            let mut model = model;
            while self.batches_done < end {
                let waited = Instant::now();
                let Some(batch) = batches.next() else { break };
                self.clock.data_wait += waited.elapsed();
                model = match self.train_step(model, batch) {
                    Ok(model) => model,
                    Err((model, error)) => return (model, Err(error)),
                };
                if self.stop.is_some() {
                    break;
                }
            }
            (model, Ok(()))
        });
        self.order = order;
        let (model, result) = outcome;
        self.model = Some(model);
        result?;
        Ok((self.batches_done - first).max(1))
    }

    /// One step on `batch`, then what follows it within the epoch: logging, a mid-epoch
    /// validation, a checkpoint. Hands the model back with any error so that it is never lost.
    fn train_step(&mut self, model: M, mut batch: crate::batches::HostBatch) -> Result<M, (M, TrainError)> {
        let computing = Instant::now();
        let step = self.stepper.step;
        let last_of_epoch = self.batches_done + 1 == self.steps_per_epoch;
        let probe = if self.live.gradients_due(step + 1, last_of_epoch) { Probe::LayerNorms } else { Probe::Off };
        let lr = self.scheduler.lr(step);
        let (model, result) = self.stepper.step(model, &mut batch, lr, &self.device, probe);
        let result = match result {
            Ok(result) => result,
            Err(error) => return Err((model, error)),
        };
        self.clock.compute += computing.elapsed();
        self.clock.samples += batch.len;
        self.clock.steps += 1;
        self.batches_done += 1;
        let (step, epoch) = (self.stepper.step, self.epoch);
        faults::hit(Fault::Step);
        match self.after_step(&model, &batch, result, lr, (step, epoch), last_of_epoch) {
            Ok(()) => Ok(model),
            Err(error) => Err((model, error)),
        }
    }

    /// Logging, mid-epoch validation and checkpointing after step `step`.
    fn after_step(
        &mut self,
        model: &M,
        batch: &crate::batches::HostBatch,
        result: crate::step::StepResult,
        lr: f64,
        (step, epoch): (u64, u64),
        last_of_epoch: bool,
    ) -> Result<(), TrainError> {
        if !result.probe.layer_norms.is_empty() {
            self.live.log_gradients(&result.probe.layer_norms, (step, epoch), &mut self.reporter)?;
        }
        let loss = result.loss;
        if !loss.is_finite() {
            self.stop = Some(Stop {
                status: RunStatus::Diverged,
                reason: format!(
                    "the training loss became {loss} at step {step} (epoch {epoch}); lower the learning rate (now \
                     {lr:.3e}) or add gradient clipping (--grad-clip 1.0); the last good checkpoint is kept"
                ),
            });
            return Ok(());
        }
        self.train_meter.update(&result.outputs, &batch.targets, loss)?;
        self.loss_window.0 += loss;
        self.loss_window.1 += 1;
        if step.is_multiple_of(self.config.log_every) {
            let value = self.loss_window.0 / self.loss_window.1 as f64;
            self.reporter.sink.record(&Event::Scalar { key: "train.loss_step", step, epoch, value })?;
            self.loss_window = (0.0, 0);
        }
        let elapsed = (self.clock.data_wait + self.clock.compute).as_secs_f64();
        self.reporter.observer.on_step(&StepProgress {
            epoch,
            step_in_epoch: self.batches_done,
            steps_in_epoch: self.steps_per_epoch,
            loss: self.train_meter.loss(),
            accuracy: self.train_meter.accuracy(),
            samples_per_sec: self.clock.samples as f64 / elapsed.max(1e-9),
        });
        if last_of_epoch {
            return Ok(());
        }
        if interrupt::requested() {
            self.stop = Some(Stop::interrupted(step, epoch));
        }
        let mut evaluated: Option<(f64, Verdict)> = None;
        if let Some(every) = self.config.val_every_steps
            && self.stop.is_none()
            && step.is_multiple_of(every)
        {
            let valid = model.valid();
            let report = evaluate(
                &valid,
                &self.data.val,
                &self.eval_objective,
                &mut self.eval_meter,
                self.config.batch_size,
                &self.plain,
            )?;
            faults::hit(Fault::Validation);
            // Mid-epoch results go to the log only; the epoch summary holds epoch ends.
            let mut metrics = BTreeMap::new();
            log_report(self.reporter.sink, "val", &report, step, epoch, &mut metrics)?;
            self.bests.observe(&self.monitored, &metrics, step, epoch);
            if let Some(&value) = metrics.get(&self.monitor.spec().metric) {
                evaluated = Some((value, self.judge(value, step)));
            }
        }
        if let Some((_, Verdict { stop: Some(reason), .. })) = &evaluated {
            self.stop = Some(Stop::from_monitor(reason));
        }
        let improved = evaluated.as_ref().is_some_and(|(_, v)| v.improved);
        let diverged = self.stop.as_ref().is_some_and(Stop::diverged);
        let due = self.saver.as_ref().is_some_and(|saver| saver.due(step));
        if !diverged && (improved || self.stop.is_some() || due) {
            self.save(model, evaluated.map(|(v, _)| v))?;
        }
        Ok(())
    }

    /// The monitor's verdict on a validation, which reduce-on-plateau follows too.
    fn judge(&mut self, value: f64, step: u64) -> Verdict {
        let position = Position { step, epoch: self.epoch, steps_per_epoch: self.steps_per_epoch };
        let verdict = self.monitor.observe(value, position);
        self.scheduler.on_validation(verdict.progressed);
        verdict
    }

    /// The end of an epoch: training aggregates, validation, system metrics, the monitor, live
    /// diagnosis, a checkpoint.
    fn end_epoch(&mut self) -> Result<(), TrainError> {
        let model = self.model.take().expect("the trainer holds its model between calls");
        let result = self.end_epoch_with(&model);
        self.model = Some(model);
        result
    }

    fn end_epoch_with(&mut self, model: &M) -> Result<(), TrainError> {
        let (step, epoch) = (self.stepper.step, self.epoch);
        let sink = &mut *self.reporter.sink;
        let mut metrics = BTreeMap::new();
        log_report(sink, "train", &self.train_meter.report(), step, epoch, &mut metrics)?;
        let valid = model.valid();
        let (objective, batch_size, plain) = (&self.eval_objective, self.config.batch_size, &self.plain);
        let val_report = evaluate(&valid, &self.data.val, objective, &mut self.eval_meter, batch_size, plain)?;
        faults::hit(Fault::Validation);
        log_report(sink, "val", &val_report, step, epoch, &mut metrics)?;
        if let Some(subset) = &self.train_eval {
            let report = evaluate(&valid, subset, objective, &mut self.eval_meter, batch_size, plain)?;
            log_report(sink, "train_eval", &report, step, epoch, &mut metrics)?;
        }
        let clock = &self.clock;
        let seconds = clock.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let busy = (clock.data_wait + clock.compute).as_secs_f64();
        let steps = clock.steps.max(1) as f64;
        let mut system = vec![
            ("lr", self.scheduler.lr(step.saturating_sub(1))),
            ("sys.samples_per_sec", clock.samples as f64 / busy.max(1e-9)),
            ("sys.batch_seconds", busy / steps),
            ("sys.data_wait_seconds", clock.data_wait.as_secs_f64() / steps),
            ("sys.compute_seconds", clock.compute.as_secs_f64() / steps),
            ("sys.epoch_seconds", seconds),
        ];
        if let Some(bytes) = peak_rss_bytes() {
            system.push(("sys.peak_rss_mb", bytes as f64 / 1e6));
        }
        if let Some(bytes) = device_memory_bytes(&self.device) {
            system.push(("sys.device_memory_mb", bytes as f64 / 1e6));
        }
        for (key, value) in system {
            sink.record(&Event::Scalar { key, step, epoch, value })?;
            metrics.insert(key.to_string(), value);
        }

        self.bests.observe(&self.monitored, &metrics, step, epoch);
        let monitored = metrics.get(&self.monitor.spec().metric).copied().unwrap_or(f64::NAN);
        let verdict = self.judge(monitored, step);
        self.stop = verdict.stop.as_ref().map(Stop::from_monitor);
        if self.stop.is_none() && interrupt::requested() {
            self.stop = Some(Stop::interrupted(step, epoch));
        }
        if self.stop.is_none() && epoch < self.config.epochs && self.reporter.observer.pause_after(epoch) {
            self.stop = Some(Stop::paused(epoch));
        }
        self.history.push(EpochSummary { epoch, step, metrics, seconds });
        self.live.epoch_end(&valid, &self.plain, &self.history, &mut self.reporter)?;
        self.train_meter.reset();
        if !self.stop.as_ref().is_some_and(Stop::diverged) {
            self.save(model, Some(monitored))?;
        }
        self.reporter.sink.flush()?;
        if let Some(summary) = self.history.last() {
            self.reporter.observer.on_epoch_end(summary);
        }
        self.epoch += 1;
        self.batches_done = 0;
        if self.epoch <= self.config.epochs {
            self.order = epoch_order(self.config.seed, self.epoch, self.data.train.len());
        }
        Ok(())
    }

    /// Where the run stands, as a checkpoint saves it.
    pub fn state(&self) -> TrainState {
        TrainState {
            format: STATE_FORMAT,
            step: self.stepper.step,
            epoch: self.epoch,
            batches_done: self.batches_done,
            config: self.config.clone(),
            dataset_fingerprint: self.data.identity.fingerprint.clone(),
            scheduler: self.scheduler.state(),
            monitor: self.monitor.state().clone(),
            train_meter: self.train_meter.state(),
            loss_window: self.loss_window,
            history: self.history.clone(),
            bests: self.bests.clone(),
            param_ids: self.model.as_ref().map(param_ids).unwrap_or_default(),
        }
    }

    /// Saves a checkpoint of `model` and the state, when the run has a checkpoint folder.
    fn save(&mut self, model: &M, value: Option<f64>) -> Result<(), TrainError> {
        let Some(saver) = self.saver.as_ref() else { return Ok(()) };
        let metric = &self.monitor.spec().metric;
        // The model is out of `self` while it trains (or ends an epoch): take the ids from it. At an
        // epoch end the position has not moved on yet, so the state says the epoch is complete.
        let mut state = self.state();
        state.param_ids = param_ids(model);
        let name = saver
            .fields
            .clone_with(&[
                ("epoch", state.epoch.to_string()),
                ("step", state.step.to_string()),
                ("metric", metric_tag(metric)),
                ("value", value.map_or_else(|| "na".to_string(), |v| format!("{v:.4}"))),
            ])
            .render(saver.template)?;
        let state_json = serde_json::to_vec(&state).expect("a training state is always serializable to JSON");
        let manifest = Manifest {
            format: 0,
            step: state.step,
            epoch: state.epoch,
            epoch_complete: state.history.last().is_some_and(|h| h.epoch == state.epoch),
            monitor: metric.clone(),
            monitor_mode: Some(self.monitor.spec().mode),
            monitor_value: value,
            files: BTreeMap::new(),
        };
        let contents = Contents::of(model, self.stepper.optimizer(), state_json);
        let saved = checkpoint::save(saver.folder, &name, manifest, contents)?;
        let sink = &mut *self.reporter.sink;
        let path = saved.dir.display().to_string();
        sink.record(&Event::Artifact { kind: "checkpoint", path: &path, bytes: saved.bytes() })?;
        for deleted in checkpoint::prune(saver.folder, saver.mode, saver.retention)? {
            let path = deleted.display().to_string();
            sink.record(&Event::Artifact { kind: "checkpoint.deleted", path: &path, bytes: 0 })?;
        }
        sink.flush()?;
        if let Some(saver) = self.saver.as_mut() {
            saver.last_saved = Instant::now();
        }
        Ok(())
    }

    /// Ends the run: the verdict, the final model, the outcome.
    pub fn finish(mut self) -> Result<FitOutcome, TrainError> {
        let diagnosis = self.live.finish(&self.history, self.reporter.sink)?;
        if matches!(self.stop.as_ref().map(|s| s.status), None | Some(RunStatus::StoppedEarly)) {
            self.record_latency()?;
        }
        let spec = self.monitor.spec().clone();
        let final_model = match self.checkpoints {
            Some(folder) => hand_over(folder, spec.mode, self.config.restore_best, &mut self.reporter)?,
            None => None,
        };
        let (best_checkpoint, last_checkpoint) = match self.checkpoints {
            Some(folder) => {
                let good = checkpoint::list(folder)?;
                (checkpoint::best(&good, spec.mode).map(|c| c.dir.clone()), good.first().map(|c| c.dir.clone()))
            }
            None => (None, None),
        };
        let (status, reason) = match self.stop.take() {
            Some(Stop { status, reason }) => (status, Some(reason)),
            None => (RunStatus::Finished, None),
        };
        Ok(FitOutcome {
            status,
            reason,
            epochs: self.history.len() as u64,
            steps: self.stepper.step,
            history: std::mem::take(&mut self.history),
            bests: std::mem::take(&mut self.bests),
            monitor: Monitored { metric: spec.metric, mode: spec.mode },
            best_checkpoint,
            last_checkpoint,
            final_model,
            diagnosis,
            seconds: self.started.elapsed().as_secs_f64(),
        })
    }

    /// Times inference on the validation split and logs it as `latency.*` at the last step, for
    /// a sweep's constraints. Timings vary from run to run: they are the one logged value a rerun
    /// does not repeat bit for bit.
    fn record_latency(&mut self) -> Result<(), TrainError> {
        let Some(model) = self.model.as_ref() else { return Ok(()) };
        let valid = model.valid();
        let Some(latency) = crate::latency::measure(&valid, &self.data.val, self.config.batch_size, &self.plain)?
        else {
            return Ok(());
        };
        let (step, epoch) = (self.stepper.step, self.history.len() as u64);
        for (key, value) in latency.metrics() {
            self.reporter.sink.record(&Event::Scalar { key, step, epoch, value })?;
        }
        Ok(())
    }
}

/// Reads a checkpoint's training state and checks that it belongs to this config and data.
fn read_state(checkpoint: &Checkpoint, config: &TrainConfig, data: &PreparedData) -> Result<TrainState, TrainError> {
    let state = checkpoint::read_state(checkpoint)?;
    let error = |message: String| TrainError::Checkpoint { path: checkpoint.dir.clone(), message };
    if state.dataset_fingerprint != data.identity.fingerprint {
        let saved = regimen_data::short_fingerprint(&state.dataset_fingerprint);
        return Err(error(format!(
            "was trained on data with fingerprint {saved}, not the current {}; restore the original data",
            data.identity.short_id
        )));
    }
    // A run left training longer (`extend_to`) differs from its checkpoints in its epochs only.
    let same_but_epochs = TrainConfig { epochs: config.epochs, ..state.config.clone() };
    if same_but_epochs != *config {
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
    reporter: &mut Reporter<'_>,
) -> Result<Option<FinalModel>, TrainError> {
    let good = checkpoint::list(folder)?;
    let chosen = if restore_best { checkpoint::best(&good, mode).or(good.first()) } else { good.first() };
    let Some(chosen) = chosen else { return Ok(None) };
    let path = regimen_store::RunDir::at(folder.parent().unwrap_or(folder)).final_model();
    let bytes = std::fs::read(chosen.model_file())
        .map_err(|source| TrainError::Io(FileError { path: chosen.model_file(), action: "read", source }))?;
    checkpoint::write_atomically(&path, &bytes)?;
    reporter.sink.record(&Event::Artifact {
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
        reporter.sink.record(&Event::Notice { level: "info", message: &message })?;
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
        let body = serde_json::to_value(report).expect("a report is always serializable to JSON");
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

    fn outcome(monitor: Monitored) -> FitOutcome {
        let history = vec![
            epoch(1, &[("val.loss", 0.9), ("val.acc", 0.6), ("lr", 1e-3), ("val.perplexity", 9.0)]),
            epoch(2, &[("val.loss", 0.4), ("val.acc", 0.8), ("lr", 5e-4), ("val.perplexity", 4.0)]),
            epoch(3, &[("val.loss", 0.5), ("val.acc", 0.8), ("lr", 2e-4), ("val.perplexity", 5.0)]),
        ];
        let mut bests = Bests::default();
        for summary in &history {
            bests.observe(&monitor, &summary.metrics, summary.step, summary.epoch);
        }
        FitOutcome {
            status: RunStatus::Finished,
            reason: None,
            epochs: 3,
            steps: 30,
            history,
            bests,
            monitor,
            best_checkpoint: None,
            last_checkpoint: None,
            final_model: None,
            diagnosis: Vec::new(),
            seconds: 3.0,
        }
    }

    #[test]
    fn best_takes_each_metric_in_its_own_direction_and_last_is_the_final_epoch() {
        let outcome = outcome(Monitored { metric: "val.acc".into(), mode: Mode::Max });
        let best = outcome.best();
        assert_eq!(best["val.loss"], 0.4);
        assert_eq!(best["val.acc"], 0.8);
        assert_eq!(outcome.bests.0["val.acc"].epoch, 2, "the earliest of a tie");
        assert!(!best.contains_key("lr"), "lr has no better direction");
        assert!(!best.contains_key("val.perplexity"), "not monitored, no inherent direction");
        assert_eq!(outcome.last()["val.acc"], 0.8);
    }

    #[test]
    fn the_monitored_metric_takes_the_runs_own_direction() {
        let best = outcome(Monitored { metric: "val.perplexity".into(), mode: Mode::Min }).best();
        assert_eq!(best["val.perplexity"], 4.0);
        let best = outcome(Monitored { metric: "val.loss".into(), mode: Mode::Max }).best();
        assert_eq!(best["val.loss"], 0.9, "a run that maximizes its loss has the maximum as its best");
    }

    /// One numeric setting set to an arbitrary, often absurd, value.
    fn numeric_setting() -> impl proptest::strategy::Strategy<Value = (&'static str, f64)> {
        use proptest::prelude::*;
        let names = prop::sample::select(vec![
            "epochs",
            "batch_size",
            "lr",
            "weight_decay",
            "momentum",
            "grad_clip",
            "label_smoothing",
            "dropout",
            "augment_noise",
            "log_every",
            "val_every_steps",
            "train_eval_subset",
            "top_k",
            "grad_norm_every",
            "prediction_samples",
            "es_divergence",
            "es_baseline",
            "keep_top_k",
            "keep_every",
            "checkpoint_every_steps",
            "checkpoint_every_minutes",
            "seed",
            "split_seed",
            "val_fraction",
            "test_fraction",
            "val_count",
            "test_count",
        ]);
        let values = prop_oneof![
            Just(0.0),
            Just(-1.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(1e300),
            Just(u64::MAX as f64),
            Just(usize::MAX as f64),
            any::<f64>(),
            0.0..2.0f64,
            (0u64..100_000).prop_map(|v| v as f64),
        ];
        (names, values)
    }

    /// Sets `name` as the CLI would: integers saturate into range, floats are taken as given.
    fn set(config: &mut TrainConfig, name: &str, value: f64) {
        let int = value as u64;
        let size = value as usize;
        match name {
            "epochs" => config.epochs = int,
            "batch_size" => config.batch_size = size,
            "lr" => config.lr = value,
            "weight_decay" => config.weight_decay = value,
            "momentum" => config.momentum = value,
            "grad_clip" => config.grad_clip = Some(value),
            "label_smoothing" => config.label_smoothing = value,
            "dropout" => config.dropout = value,
            "augment_noise" => config.augment_noise = value as f32,
            "log_every" => config.log_every = int,
            "val_every_steps" => config.val_every_steps = Some(int),
            "train_eval_subset" => config.train_eval_subset = Some(size),
            "top_k" => config.top_k = size,
            "grad_norm_every" => config.grad_norm_every = int,
            "prediction_samples" => config.prediction_samples = size,
            "es_divergence" => config.es_divergence = Some(value),
            "es_baseline" => config.es_baseline = Some(value),
            "keep_top_k" => config.keep_top_k = size,
            "keep_every" => config.keep_every = Some(int),
            "checkpoint_every_steps" => config.checkpoint_every_steps = Some(int),
            "checkpoint_every_minutes" => config.checkpoint_every_minutes = Some(value),
            "seed" => config.seed = int,
            "split_seed" => config.split_seed = int,
            "val_fraction" => config.val_fraction = Some(value),
            "test_fraction" => config.test_fraction = Some(value),
            "val_count" => config.val_count = Some(size),
            "test_count" => config.test_count = Some(size),
            other => unreachable!("no setting {other}"),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

        /// Whatever a numeric flag says, the run starts and takes its first steps, or stops with
        /// an error that names what is wrong: never a panic.
        #[test]
        fn no_numeric_setting_makes_the_trainer_panic(settings in proptest::collection::vec(numeric_setting(), 1..3)) {
            let mut config = TrainConfig {
                dataset: "spirals".into(),
                dataset_size: Some(90),
                model: "mlp".into(),
                hidden: Some(vec![4]),
                ..TrainConfig::default()
            };
            for (name, value) in &settings {
                set(&mut config, name, *value);
            }
            let outcome = (|| -> Result<(), TrainError> {
                config.validate()?;
                let data = crate::run::load_data(&config)?;
                let device = Device::default().autodiff();
                let model = crate::model::build_for(&data, &config, &device)?;
                let (mut sink, mut observer) = (regimen_events::NullSink, crate::observer::Silent);
                let context = FitContext {
                    config: &config,
                    data: &data,
                    device,
                    checkpoints: None,
                    resume: None,
                    sink: &mut sink,
                    observer: &mut observer,
                };
                let mut trainer = Trainer::new(model, context)?;
                trainer.run_steps(3)?;
                trainer.finish().map(|_| ())
            })();
            if let Err(error) = outcome {
                proptest::prop_assert!(!error.to_string().is_empty());
            }
        }
    }
}
