//! `regimen check`: the recipe doctor, before any real training.
//!
//! The recipe's second step ("set up the end-to-end skeleton, get dumb baselines") is a series of
//! small experiments that each rule out one class of silent bug. This module runs them on the
//! data, model and hyperparameters of a [`TrainConfig`], in about the time of one epoch, and turns
//! each into a [`Check`] (PASS, WARN or FAIL with the numbers it measured, what they mean and what
//! to try next), after the data checks of `regimen-doctor`:
//!
//! | check                        | module            | the recipe's words                              |
//! |------------------------------|-------------------|-------------------------------------------------|
//! | data checks, `sample_grid`   | `regimen_doctor`  | become one with the data; visualize before the net |
//! | `loss_at_init`               | `init`            | verify loss @ init                              |
//! | `init_well`                  | `init`            | init well                                       |
//! | `overfit_one_batch`          | `overfit`         | overfit one batch                               |
//! | `decreasing_loss`            | `short_run`       | verify decreasing training loss                 |
//! | `input_independent_baseline` | `short_run`       | input-independent baseline                      |
//! | `gradient_flow`              | `short_run`       | vanishing and exploding gradients               |
//! | `update_ratio`               | `short_run`       | a learning rate whose updates are ~1e-3 of the weights |
//! | `dead_relu`                  | `short_run`       | dead units                                      |
//! | `determinism`                | `determinism`     | fix the random seed                             |
//!
//! # Design
//!
//! - **The run's own training, shortened.** Every model check builds a fresh model from the seed
//!   and trains it with the step `fit` takes (same data order, augmentation, optimizer, schedule,
//!   per-step seeds), so a check judges what `regimen train` would do, not a look-alike. Only the
//!   overfit check simplifies (no augmentation, dropout, weight decay or label smoothing), as the
//!   recipe says to.
//! - **Measure, then judge.** Each check is a measurement (Burn, slow) and a pure `judge_*`
//!   function from the measurement to a [`Check`] whose thresholds are named constants; the judges
//!   are tested on scripted numbers, the measurements on tiny models.
//! - **Checks decide, the caller acts.** Nothing here prints or exits; the only file written is the
//!   picture of the first batch the caller asks for. The command line saves the report and picks
//!   the exit code.
//! - **Any [`Network`].** [`check_with`] takes the same builder as
//!   [`train_with`](crate::train_with); per-layer measurements work on any Burn module, by
//!   visiting its parameters.
//!
//! Every training step a check takes is the trainer's own step ([`crate::step`]), and the
//! per-layer gradient measurements come from [`crate::grads`], which live diagnosis also uses.

mod baseline;
mod determinism;
mod init;
mod overfit;
mod short_run;
mod steps;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use burn::prelude::*;
use regimen_data::{BatchBuilder, BatchTargets, Normalization, PreparedData, epoch_order};
use regimen_doctor::{Splits, data_checks, sample_grid};

pub use baseline::TrivialBaseline;
pub use regimen_doctor::{self as doctor, Check, CheckReport, CheckStatus};

use crate::batches::batch_count;
use crate::config::TrainConfig;
use crate::device::parse_device;
use crate::error::TrainError;
use crate::model::{Network, build_for};
use crate::run::load_data;

pub(crate) type TrainResult<T> = Result<T, TrainError>;

/// The names of the model checks, each defined once: the judges name their checks from here, and
/// tests and callers refer to them by these constants, so a typo is a compile error.
pub mod names {
    /// The loss before any training against ln C, the label entropy or the target variance.
    pub const LOSS_AT_INIT: &str = "loss_at_init";
    /// The output bias set from the class priors.
    pub const INIT_WELL: &str = "init_well";
    /// Memorizing one small batch.
    pub const OVERFIT_ONE_BATCH: &str = "overfit_one_batch";
    /// A short run's training loss against the trivial baseline.
    pub const DECREASING_LOSS: &str = "decreasing_loss";
    /// Real inputs against zeroed ones.
    pub const INPUT_INDEPENDENT_BASELINE: &str = "input_independent_baseline";
    /// Exploding or vanishing gradients, layer by layer.
    pub const GRADIENT_FLOW: &str = "gradient_flow";
    /// The update-to-weight ratio per step.
    pub const UPDATE_RATIO: &str = "update_ratio";
    /// Units that never fire.
    pub const DEAD_RELU: &str = "dead_relu";
    /// The same seed giving the same losses.
    pub const DETERMINISM: &str = "determinism";
    /// The model `auto` chose for the data.
    pub const MODEL_CHOICE: &str = "model_choice";
    /// The model checks as a whole, when they could not run.
    pub const MODEL_CHECKS: &str = "model_checks";
}

/// The checks that train the model, in the order they run.
pub const MODEL_CHECKS: [&str; 9] = [
    names::LOSS_AT_INIT,
    names::INIT_WELL,
    names::OVERFIT_ONE_BATCH,
    names::DECREASING_LOSS,
    names::INPUT_INDEPENDENT_BASELINE,
    names::GRADIENT_FLOW,
    names::UPDATE_RATIO,
    names::DEAD_RELU,
    names::DETERMINISM,
];

/// Default optimizer steps of each short run (real and zeroed inputs): about one epoch of the
/// quickstart's 6,000 training images at batch 64, enough for a CNN to leave the priors behind.
pub const DEFAULT_STEPS: u64 = 100;

/// Default step budget of the overfit check.
pub const DEFAULT_OVERFIT_STEPS: u64 = 200;

/// Default size of the overfit check's batch ("a dozen samples").
pub const DEFAULT_OVERFIT_SAMPLES: usize = 16;

/// Default steps of each of the two determinism runs.
pub const DEFAULT_DETERMINISM_STEPS: u64 = 5;

/// Default number of train samples the loss at init is averaged over.
pub const DEFAULT_INIT_SAMPLES: usize = 512;

/// Default number of validation samples the short runs are scored on.
pub const DEFAULT_VAL_SAMPLES: usize = 1000;

/// The budgets of `regimen check`, and where to draw the first batch.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    /// Optimizer steps of each short run, on real and on zeroed inputs.
    pub steps: u64,
    /// Most steps the overfit check may take.
    pub overfit_steps: u64,
    /// Samples in the overfit check's batch.
    pub overfit_samples: usize,
    /// Steps of each determinism run.
    pub determinism_steps: u64,
    /// Train samples the loss at init is averaged over.
    pub init_samples: usize,
    /// Validation samples the short runs are scored on.
    pub val_samples: usize,
    /// Where to write the picture of the first batch (PNG); `None` skips it.
    pub grid: Option<PathBuf>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            steps: DEFAULT_STEPS,
            overfit_steps: DEFAULT_OVERFIT_STEPS,
            overfit_samples: DEFAULT_OVERFIT_SAMPLES,
            determinism_steps: DEFAULT_DETERMINISM_STEPS,
            init_samples: DEFAULT_INIT_SAMPLES,
            val_samples: DEFAULT_VAL_SAMPLES,
            grid: None,
        }
    }
}

impl CheckOptions {
    /// Checks the budgets: every count must be large enough to measure anything.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |key: &str, value: String, expected: &str| {
            Err(TrainError::Config {
                origin: "the check options".into(),
                message: format!("`{key}` is {value}, but it must be {expected}"),
            })
        };
        if self.steps < 10 {
            return bad(
                "steps",
                self.steps.to_string(),
                "at least 10, so that the start and the end of the loss curve can be told apart",
            );
        }
        if self.overfit_steps == 0 {
            return bad("overfit_steps", "0".into(), "at least 1");
        }
        if self.overfit_samples < 2 {
            return bad(
                "overfit_samples",
                self.overfit_samples.to_string(),
                "at least 2 (batch norm needs two samples)",
            );
        }
        if self.determinism_steps == 0 {
            return bad("determinism_steps", "0".into(), "at least 1");
        }
        if self.init_samples == 0 || self.val_samples == 0 {
            return bad("init_samples/val_samples", format!("{}/{}", self.init_samples, self.val_samples), "positive");
        }
        Ok(())
    }
}

/// Hooks called while the checks run, with empty defaults: a progress display implements the ones
/// it needs.
pub trait CheckObserver {
    /// A group of checks starts (`"data"`, `"loss at init"`, …).
    fn on_stage(&mut self, _stage: &str) {}
    /// A check is done.
    fn on_check(&mut self, _check: &Check) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl CheckObserver for Quiet {}

/// What every model check needs.
pub(crate) struct Context<'a> {
    /// The run's configuration.
    pub config: &'a TrainConfig,
    /// The data as the network sees it (normalized when the run normalizes).
    pub data: &'a PreparedData,
    /// The device with autodiff, where models train.
    pub device: Device,
    /// The same device without autodiff, for evaluation.
    pub plain: Device,
    /// The trivial model of the train split.
    pub baseline: TrivialBaseline,
    /// The budgets.
    pub options: &'a CheckOptions,
}

/// Runs every check on a built-in model as `config` describes it; see [`check_with`].
pub fn check(
    config: &TrainConfig,
    options: &CheckOptions,
    observer: &mut dyn CheckObserver,
) -> Result<CheckReport, TrainError> {
    check_with(config, options, observer, build_for)
}

/// Runs the data checks and the model checks on the model that `build` creates (called once per
/// check, after seeding the device with `config.seed`, with the config that check trains with).
///
/// Errors are what would stop `regimen train` before it reads the data (bad config, unreadable
/// data); everything a check finds is in the report, including a model that cannot train on the
/// data at all (the `model_checks` FAIL), so the data report is never lost to a model problem.
pub fn check_with<M, F>(
    config: &TrainConfig,
    options: &CheckOptions,
    observer: &mut dyn CheckObserver,
    build: F,
) -> Result<CheckReport, TrainError>
where
    M: Network,
    F: Fn(&PreparedData, &TrainConfig, &Device) -> Result<M, TrainError>,
{
    config.validate()?;
    options.validate()?;
    let device = parse_device(&config.device)?.autodiff();
    let mut report = CheckReport::default();
    let push = |report: &mut CheckReport, observer: &mut dyn CheckObserver, check: Check| {
        observer.on_check(&check);
        report.push(check);
    };

    observer.on_stage("data");
    let (raw, data) = load(config)?;
    for check in data_checks(&Splits::from_prepared(&raw), &data.train) {
        push(&mut report, observer, check);
    }
    if let Some(lineage) = &raw.identity.lineage {
        push(&mut report, observer, regimen_doctor::sources::sources_check(lineage));
    }
    if let Some(path) = &options.grid {
        push(&mut report, observer, first_batch_grid(config, &data, path));
    }
    drop(raw);
    let mut config = config.clone();
    if let Some(chosen) = config.resolve_model(&data.shape) {
        let message = format!("The model is {}.", crate::config::auto_choice(chosen));
        push(
            &mut report,
            observer,
            Check::pass(names::MODEL_CHOICE, message).with_advice("Set --model to choose another."),
        );
    }
    if let Err(error) = model_checks(&config, &data, options, &device, observer, &mut report, &build) {
        let check = Check::fail(names::MODEL_CHECKS, format!("The model checks could not run: {error}."))
            .with_advice("Fix the model or the data as the message says, then run `regimen check` again.");
        push(&mut report, observer, check);
    }
    Ok(report)
}

/// The checks that train the model: loss at init, overfit one batch, the short runs, determinism.
fn model_checks<M, F>(
    config: &TrainConfig,
    data: &PreparedData,
    options: &CheckOptions,
    device: &Device,
    observer: &mut dyn CheckObserver,
    report: &mut CheckReport,
    build: &F,
) -> Result<(), TrainError>
where
    M: Network,
    F: Fn(&PreparedData, &TrainConfig, &Device) -> Result<M, TrainError>,
{
    let push = |report: &mut CheckReport, observer: &mut dyn CheckObserver, check: Check| {
        observer.on_check(&check);
        report.push(check);
    };
    if batch_count(data.train.len(), config.batch_size, true) == 0 {
        return Err(TrainError::SplitTooSmall { samples: data.train.len() });
    }
    let ctx = Context {
        config,
        data,
        plain: device.clone().without_autodiff(),
        device: device.clone(),
        baseline: TrivialBaseline::of(&data.task, &data.train, config.label_smoothing),
        options,
    };
    let fresh = |config: &TrainConfig| -> TrainResult<M> {
        device.seed(config.seed);
        build(data, config, device)
    };

    observer.on_stage("loss at init");
    let started = Instant::now();
    let init = init::measure(&ctx, &fresh)?;
    let seconds = started.elapsed().as_secs_f64();
    push(report, observer, timed(init::judge_loss_at_init(&init, &ctx.baseline), seconds));
    push(report, observer, init::judge_init_well(&init, &ctx.baseline));

    observer.on_stage("overfit one batch");
    let started = Instant::now();
    let overfit = overfit::measure(&ctx, &fresh)?;
    push(report, observer, timed(overfit::judge(&overfit), started.elapsed().as_secs_f64()));

    observer.on_stage("short run on real inputs");
    let started = Instant::now();
    let val = short_run::val_subset(&data.val, options.val_samples);
    let real = short_run::run(&ctx, &fresh, &data.train, &val, short_run::Inputs::Real)?;
    let real_seconds = started.elapsed().as_secs_f64();
    observer.on_stage("short run on zeroed inputs");
    let started = Instant::now();
    let zero =
        short_run::run(&ctx, &fresh, &steps::zeroed(&data.train), &steps::zeroed(&val), short_run::Inputs::Zeroed)?;
    let zero_seconds = started.elapsed().as_secs_f64();
    push(report, observer, timed(short_run::judge_decreasing(&real, &ctx.baseline), real_seconds));
    push(report, observer, timed(short_run::judge_input_independent(&real, &zero), zero_seconds));
    push(report, observer, short_run::judge_gradient_flow(&real));
    push(report, observer, short_run::judge_update_ratio(&real));
    push(report, observer, short_run::judge_dead_relu(&real));

    observer.on_stage("determinism");
    let started = Instant::now();
    let first = determinism::losses(&ctx, &fresh)?;
    let second = determinism::losses(&ctx, &fresh)?;
    let check = determinism::judge(&first, &second, config.seed, &config.device);
    push(report, observer, timed(check, started.elapsed().as_secs_f64()));
    Ok(())
}

/// Records how long a check's measurement took.
fn timed(check: Check, seconds: f64) -> Check {
    check.with("seconds", regimen_doctor::format::num(seconds))
}

/// The raw splits (for the data checks, which judge the data itself) and the splits as the network
/// sees them: normalized by statistics of the raw train split, exactly as `regimen_data::prepare`
/// normalizes. The model checks never read the test split.
pub(crate) fn load(config: &TrainConfig) -> TrainResult<(PreparedData, PreparedData)> {
    let raw = load_data(&TrainConfig { normalize: false, ..config.clone() })?;
    let mut seen = raw.clone();
    if config.normalize {
        let normalization = Normalization::fit(&raw.train);
        for split in [&mut seen.train, &mut seen.val, &mut seen.test] {
            normalization.apply(split);
        }
        seen.normalization = Some(normalization);
    }
    Ok((raw, seen))
}

/// `sample_grid` of the first training batch, built as `fit` builds it (epoch 1's order, the
/// run's augmentation); a picture that cannot be written is a WARN, not an error. Training draws
/// it too, into the run's folder, for the dashboard.
pub(crate) fn first_batch_grid(config: &TrainConfig, data: &PreparedData, path: &Path) -> Check {
    let order = epoch_order(config.seed, 1, data.train.len());
    let augment = config.augment();
    let (mut features, mut targets) = (Vec::new(), BatchTargets::default());
    let batch = &order[..config.batch_size.min(order.len())];
    BatchBuilder.fill(
        &data.train,
        batch,
        (!augment.is_identity()).then_some((&augment, config.seed, 1, 0)),
        &mut features,
        &mut targets,
    );
    sample_grid(&features, &data.shape, &targets, &data.task, path).unwrap_or_else(|error| {
        Check::warn("sample_grid", format!("Could not draw the first batch: {error}."))
            .with_advice("Check that the output folder is writable (--out).")
    })
}

/// A fresh folder for one check's artifacts: `<store>/checks/<UTC time>` (with `-2`, `-3`, … when
/// that exists already).
pub fn default_out_dir(store: &Path, now: SystemTime) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(now).to_string().replace(':', "-");
    let base = store.join("checks");
    let mut dir = base.join(&stamp);
    let mut n = 2;
    while dir.exists() {
        dir = base.join(format!("{stamp}-{n}"));
        n += 1;
    }
    dir
}

#[cfg(test)]
mod tests;
