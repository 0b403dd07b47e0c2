//! The probe behind `regimen find batch-size`: one full training step (forward, backward,
//! optimizer step) and one validation step at a given batch size, on a fresh model.
//!
//! The caller runs each probe in a process of its own and reads its peak memory: the model and
//! optimizer it would train are never touched, and a probe that runs out of memory (an error, a
//! panic, or the kernel's OOM killer) is a data point for the caller, never a crash of the caller.

use burn::prelude::*;
use regimen_data::BatchBuilder;

use crate::batches::EpochPlan;
use crate::config::TrainConfig;
use crate::device::parse_device;
use crate::error::TrainError;
use crate::evaluate::{Meter, Objective, evaluate};
use crate::model::build_for;
use crate::run::{Recorder, load_data};
use crate::step::{Probe, Stepper};
use crate::system::{device_memory_bytes, peak_rss_bytes};

/// What one probe measured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BatchProbe {
    /// The batch size probed.
    pub batch_size: usize,
    /// The process's peak resident memory after the steps.
    pub peak_rss_bytes: Option<u64>,
    /// The device's memory pool after the steps (GPU backends).
    pub device_bytes: Option<u64>,
    /// The training split's size: no batch can be larger.
    pub train_samples: usize,
}

/// Takes one training and one validation step at `batch_size` with the model `config` describes.
pub fn probe_batch_size(config: &TrainConfig, batch_size: usize) -> Result<BatchProbe, TrainError> {
    let mut config = config.clone();
    config.batch_size = batch_size;
    config.validate()?;
    let device = parse_device(&config.device)?.autodiff();
    let data = load_data(&config)?;
    config.resolve_model(&data.shape);
    let train_samples = data.train.len();
    if batch_size == 0 || batch_size > train_samples {
        return Err(TrainError::Config {
            origin: "the batch-size probe".into(),
            message: format!("a batch of {batch_size} does not fit the training split of {train_samples} samples"),
        });
    }
    device.seed(config.seed);
    let model = build_for(&data, &config, &device)?;
    let mut stepper = Stepper::new(&config, &data.task, config.label_smoothing, &device);
    let order: Vec<u32> = (0..batch_size as u32).collect();
    let plan =
        EpochPlan { samples: &data.train, order: &order, batch_size, training: true, augment: None, first_batch: 0 };
    let mut batch = plan.build(&BatchBuilder, 0);
    let (model, stepped) = stepper.step(model, &mut batch, config.lr, &device, Probe::Off);
    stepped?;
    let plain = device.clone().without_autodiff();
    let valid = model.valid();
    let objective = Objective::for_task(&data.task, 0.0, &plain);
    let mut meter = Meter::for_task(&data.task, config.top_k)?;
    let val_rows = data.val.len().min(batch_size);
    if val_rows > 0 {
        let subset = data.val.subset(&(0..val_rows).collect::<Vec<_>>());
        evaluate(&valid, &subset, &objective, &mut meter, batch_size, &plain)?;
    }
    Ok(BatchProbe {
        batch_size,
        peak_rss_bytes: peak_rss_bytes(),
        device_bytes: device_memory_bytes(&device),
        train_samples,
    })
}

/// The learning-rate range test's settings (Lightning's `lr_find` defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeTest {
    /// The first learning rate.
    pub start: f64,
    /// The last learning rate.
    pub end: f64,
    /// Steps, with the rate growing geometrically from `start` to `end`.
    pub steps: usize,
    /// The smoothing of the loss: `ema = beta·ema + (1 − beta)·loss`, bias-corrected.
    pub beta: f64,
    /// Stop when the smoothed loss exceeds this many times its best.
    pub diverge: f64,
}

impl Default for RangeTest {
    fn default() -> Self {
        RangeTest { start: 1e-8, end: 1.0, steps: 100, beta: 0.98, diverge: 4.0 }
    }
}

/// One step of a range test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RangePoint {
    /// The learning rate of the step.
    pub lr: f64,
    /// The step's loss.
    pub loss: f64,
    /// The smoothed loss.
    pub smoothed: f64,
}

/// Trains a fresh model (or the `init_from` weights the config names) with a learning rate that
/// grows from `test.start` to `test.end`, one batch per step in the epoch order of `seed`, and
/// records the loss at each rate, until the smoothed loss diverges. The model is discarded: the
/// run the user trains never sees it.
pub fn lr_range_test(
    config: &TrainConfig,
    recorder: &Recorder,
    test: &RangeTest,
    seed: u64,
) -> Result<Vec<RangePoint>, TrainError> {
    let mut config = config.clone();
    config.seed = seed;
    config.validate()?;
    let device = parse_device(&config.device)?.autodiff();
    let data = load_data(&config)?;
    config.resolve_model(&data.shape);
    device.seed(config.seed);
    let model = build_for(&data, &config, &device)?;
    let (mut model, _) = crate::run::initialize(model, &config, recorder)?;
    let mut stepper = Stepper::new(&config, &data.task, config.label_smoothing, &device);
    let batch_size = config.batch_size.min(data.train.len()).max(1);
    let per_epoch = data.train.len().div_ceil(batch_size);
    let mut points = Vec::with_capacity(test.steps);
    let (mut ema, mut best) = (0.0, f64::INFINITY);
    let mut epoch = 1;
    let mut order = regimen_data::epoch_order(config.seed, epoch, data.train.len());
    for i in 0..test.steps {
        let index = i % per_epoch;
        if i > 0 && index == 0 {
            epoch += 1;
            order = regimen_data::epoch_order(config.seed, epoch, data.train.len());
        }
        let fraction = if test.steps > 1 { i as f64 / (test.steps - 1) as f64 } else { 0.0 };
        let lr = test.start * (test.end / test.start).powf(fraction);
        let plan = EpochPlan {
            samples: &data.train,
            order: &order,
            batch_size,
            training: true,
            augment: None,
            first_batch: 0,
        };
        let mut batch = plan.build(&BatchBuilder, index);
        let (next, stepped) = stepper.step(model, &mut batch, lr, &device, Probe::Off);
        model = next;
        let loss = stepped?.loss;
        ema = test.beta * ema + (1.0 - test.beta) * loss;
        let smoothed = ema / (1.0 - test.beta.powi(i as i32 + 1));
        points.push(RangePoint { lr, loss, smoothed });
        if !smoothed.is_finite() || smoothed > test.diverge * best {
            break;
        }
        best = best.min(smoothed);
    }
    Ok(points)
}

/// The range test's two suggestions: where the smoothed loss falls fastest against log lr
/// (Lightning's choice, ignoring the first 10 and the last point), and a tenth of the rate at the
/// lowest smoothed loss (fast.ai's rule of thumb). `None` when the curve is too short to judge.
pub fn suggest_lr(points: &[RangePoint]) -> Option<(f64, f64)> {
    let (skip_start, skip_end) = (10.min(points.len() / 4), 1);
    if points.len() < skip_start + skip_end + 3 {
        return None;
    }
    let window = &points[skip_start..points.len() - skip_end];
    let slope = |i: usize| {
        let (a, b) = (&window[i - 1], &window[i + 1]);
        (b.smoothed - a.smoothed) / (b.lr.ln() - a.lr.ln())
    };
    let steepest =
        (1..window.len() - 1).filter(|&i| slope(i).is_finite()).min_by(|&a, &b| slope(a).total_cmp(&slope(b)))?;
    let lowest = window.iter().filter(|p| p.smoothed.is_finite()).min_by(|a, b| a.smoothed.total_cmp(&b.smoothed))?;
    Some((window[steepest].lr, lowest.lr / 10.0))
}
