//! The training loop.
//!
//! One epoch: draw the epoch's sample order from the seed, take its batches (built inline, or on a
//! helper thread when augmenting), step the optimizer with the scheduled learning rate, and keep
//! running metrics; then validate, log epoch metrics, and save the `last` and (when the monitored
//! metric improved) `best` weights. The loop reports through an [`EventSink`] and an [`Observer`] and knows nothing about
//! where logs go or how progress is drawn.
//!
//! The hot path reads back one loss scalar and the batch outputs per step (needed for running
//! accuracy and to catch a NaN at once); it does no I/O: events are buffered by the sink and made
//! durable at epoch ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::optim::GradientsParams;
use burn::prelude::*;
use regimen_data::{Augment, BatchBuilder, PreparedData, Samples, epoch_order};
use regimen_events::{Event, EventSink, RunStatus};
use regimen_metrics::{Report, higher_is_better};
use regimen_schedule::{ScheduleSpec, Scheduler};

use crate::batches::{Batches, EpochPlan, batch_count};
use crate::checkpoint::save_weights;
use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::evaluate::{Meter, Objective, evaluate, host_outputs};
use crate::model::Network;
use crate::observer::{EpochSummary, Observer, StepProgress};
use crate::optim::build_optimizer;
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
    /// The `best` checkpoint, when one was saved.
    pub best_checkpoint: Option<PathBuf>,
    /// The `last` checkpoint, when one was saved.
    pub last_checkpoint: Option<PathBuf>,
    /// Wall-clock seconds of the fit.
    pub seconds: f64,
}

impl FitOutcome {
    /// Each metric's best value over the epochs, for metrics with a known direction.
    pub fn best(&self) -> BTreeMap<String, f64> {
        let mut best = BTreeMap::new();
        for summary in &self.history {
            for (key, &value) in &summary.metrics {
                let Some(higher) = metric_direction(key) else { continue };
                best.entry(key.clone())
                    .and_modify(|b: &mut f64| {
                        if (higher && value > *b) || (!higher && value < *b) {
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

/// Whether a larger value of `key` (e.g. `val.acc`) is better; `None` for `lr`, `sys.*`.
pub fn metric_direction(key: &str) -> Option<bool> {
    let (split, name) = key.split_once('.')?;
    if !matches!(split, "train" | "val" | "train_eval" | "test") {
        return None;
    }
    higher_is_better(name)
}

/// Where a fit writes and how it reports.
pub struct FitContext<'a> {
    /// The resolved configuration.
    pub config: &'a TrainConfig,
    /// The prepared data; the test split is never read here.
    pub data: &'a PreparedData,
    /// Device with autodiff, on which the model lives.
    pub device: Device,
    /// Folder for `best` and `last` weights; `None` saves nothing.
    pub checkpoints: Option<&'a Path>,
    /// Where events go.
    pub sink: &'a mut dyn EventSink,
    /// Who watches.
    pub observer: &'a mut dyn Observer,
}

/// State carried from step to step.
struct Progress {
    step: u64,
    best_value: Option<f64>,
    best_checkpoint: Option<PathBuf>,
    last_checkpoint: Option<PathBuf>,
}

/// Trains `model` on `ctx.data` as `ctx.config` says.
pub fn fit<M: Network>(model: M, ctx: FitContext<'_>) -> Result<FitOutcome, TrainError> {
    let FitContext { config, data, device, checkpoints, sink, observer } = ctx;
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
    let monitor = match data.task {
        regimen_data::Task::Classification { .. } => "val.macro_f1",
        regimen_data::Task::Regression => "val.loss",
    }
    .to_string();

    let steps_per_epoch = batch_count(data.train.len(), config.batch_size, true) as u64;
    if steps_per_epoch == 0 {
        return Err(TrainError::Model(format!(
            "the train split has {} sample(s), too few for one batch of at least 2",
            data.train.len()
        )));
    }
    let spec: ScheduleSpec = config.schedule.parse()?;
    let mut scheduler = Scheduler::new(spec, config.lr, steps_per_epoch * config.epochs, steps_per_epoch)?;
    let mut optimizer = build_optimizer(config);
    let builder = BatchBuilder;

    let mut model = model;
    let mut progress = Progress { step: 0, best_value: None, best_checkpoint: None, last_checkpoint: None };
    let mut history = Vec::with_capacity(config.epochs as usize);
    let mut stop: Option<(RunStatus, String)> = None;

    for epoch in 1..=config.epochs {
        let epoch_started = Instant::now();
        let order = epoch_order(config.seed, epoch, data.train.len());
        let plan = EpochPlan {
            samples: &data.train,
            order: &order,
            batch_size: config.batch_size,
            training: true,
            augment: augment.as_ref().map(|a| (a, config.seed, epoch)),
            first_batch: 0,
        };
        observer.on_epoch_start(epoch, config.epochs, steps_per_epoch);
        train_meter.reset();
        let mut data_wait = Duration::ZERO;
        let mut compute = Duration::ZERO;
        let mut samples_seen = 0usize;
        let mut window_loss = 0.0;
        let mut window_steps = 0u64;

        // The model moves into the scope and back out: each step consumes it and returns the update.
        model = std::thread::scope(|scope| -> Result<M, TrainError> {
            let mut model = model;
            let mut batches = Batches::start(plan, scope, &builder);
            for step_in_epoch in 1..=steps_per_epoch {
                let waited = Instant::now();
                let Some(mut batch) = batches.next() else { break };
                let computing = Instant::now();
                data_wait += computing - waited;

                let lr = scheduler.lr(progress.step);
                let outputs = model.forward(batch.input(&device));
                let loss = objective.loss(outputs.clone(), &batch.targets, &device);
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optimizer.step(lr, model, grads);
                let loss_value = f64::from(loss.into_scalar::<f32>());
                let host = host_outputs(outputs.detach());
                compute += computing.elapsed();
                progress.step += 1;
                samples_seen += batch.len;

                if !loss_value.is_finite() {
                    stop = Some((
                        RunStatus::Diverged,
                        format!(
                            "the training loss became {loss_value} at step {} (epoch {epoch}); \
                             lower the learning rate (now {lr:.3e}) or add gradient clipping \
                             (--grad-clip 1.0); the last good checkpoint is kept",
                            progress.step
                        ),
                    ));
                    break;
                }
                train_meter.update(&host, &batch.targets, loss_value);
                window_loss += loss_value;
                window_steps += 1;
                if progress.step.is_multiple_of(config.log_every) {
                    sink.record(&Event::Scalar {
                        key: "train.loss_step",
                        step: progress.step,
                        epoch,
                        value: window_loss / window_steps as f64,
                    })?;
                    window_loss = 0.0;
                    window_steps = 0;
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
                if let Some(every) = config.val_every_steps
                    && progress.step.is_multiple_of(every)
                    && step_in_epoch < steps_per_epoch
                {
                    let report = evaluate(&model.valid(), &data.val, &eval_objective, &mut eval_meter, config.batch_size, &plain);
                    // Mid-epoch results go to the log only; the epoch summary holds epoch ends.
                    log_report(sink, "val", &report, progress.step, epoch, &mut BTreeMap::new())?;
                }
            }
            Ok(model)
        })?;
        if let Some((_, reason)) = &stop {
            sink.record(&Event::Notice { level: "warn", message: reason })?;
            observer.on_notice(reason);
            break;
        }

        // Epoch end: training aggregates, validation, system metrics.
        let step = progress.step;
        let mut metrics = BTreeMap::new();
        log_report(sink, "train", &train_meter.report(), step, epoch, &mut metrics)?;
        let valid = model.valid();
        let val_report = evaluate(&valid, &data.val, &eval_objective, &mut eval_meter, config.batch_size, &plain);
        log_report(sink, "val", &val_report, step, epoch, &mut metrics)?;
        if let Some(subset) = &train_eval {
            let report = evaluate(&valid, subset, &eval_objective, &mut eval_meter, config.batch_size, &plain);
            log_report(sink, "train_eval", &report, step, epoch, &mut metrics)?;
        }
        let seconds = epoch_started.elapsed().as_secs_f64();
        let steps = steps_per_epoch as f64;
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

        let monitored = metrics.get(&monitor).copied();
        // Reduce-on-plateau watches the validation loss (its default mode is `min`), as in
        // PyTorch and Keras, whatever metric selects the best checkpoint.
        if let Some(&loss) = metrics.get("val.loss") {
            scheduler.on_validation(loss);
        }
        if let Some(folder) = checkpoints {
            save_checkpoints(&model, folder, &monitor, monitored, &mut progress, sink)?;
        }
        let summary = EpochSummary { epoch, step, metrics, seconds };
        sink.flush()?;
        observer.on_epoch_end(&summary);
        history.push(summary);
    }

    let (status, reason) = match stop {
        Some((status, reason)) => (status, Some(reason)),
        None => (RunStatus::Finished, None),
    };
    Ok(FitOutcome {
        status,
        reason,
        epochs: history.len() as u64,
        steps: progress.step,
        history,
        monitor,
        best_checkpoint: progress.best_checkpoint,
        last_checkpoint: progress.last_checkpoint,
        seconds: started.elapsed().as_secs_f64(),
    })
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

/// Saves `last` every epoch and `best` when the monitored value improved.
fn save_checkpoints<M: Network>(
    model: &M,
    folder: &Path,
    monitor: &str,
    value: Option<f64>,
    progress: &mut Progress,
    sink: &mut dyn EventSink,
) -> Result<(), TrainError> {
    let last = folder.join("last.safetensors");
    let bytes = save_weights(model, &last)?;
    sink.record(&Event::Artifact { kind: "checkpoint.last", path: &last.display().to_string(), bytes })?;
    progress.last_checkpoint = Some(last);

    let higher = metric_direction(monitor).unwrap_or(false);
    let improved = match (value, progress.best_value) {
        (Some(v), None) => v.is_finite(),
        (Some(v), Some(best)) => v.is_finite() && if higher { v > best } else { v < best },
        (None, _) => false,
    };
    if improved {
        let best = folder.join("best.safetensors");
        let bytes = save_weights(model, &best)?;
        sink.record(&Event::Artifact { kind: "checkpoint.best", path: &best.display().to_string(), bytes })?;
        progress.best_value = value;
        progress.best_checkpoint = Some(best);
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
    fn direction_comes_from_the_metric_name_after_the_split() {
        assert_eq!(metric_direction("val.acc"), Some(true));
        assert_eq!(metric_direction("train.loss"), Some(false));
        assert_eq!(metric_direction("train_eval.top3_acc"), Some(true));
        assert_eq!(metric_direction("val.r2"), Some(true));
        assert_eq!(metric_direction("lr"), None);
        assert_eq!(metric_direction("sys.samples_per_sec"), None);
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
            seconds: 3.0,
        };
        let best = outcome.best();
        assert_eq!(best["val.loss"], 0.4);
        assert_eq!(best["val.acc"], 0.8);
        assert!(!best.contains_key("lr"), "lr has no better direction");
        assert_eq!(outcome.last()["val.acc"], 0.7);
    }
}
