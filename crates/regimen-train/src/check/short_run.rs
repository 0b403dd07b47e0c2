//! The checks of a short training run: `decreasing_loss`, `input_independent_baseline`,
//! `gradient_flow`, `update_ratio` and `dead_relu`.
//!
//! One short run trains a fresh model for `--steps` steps (100 by default) exactly as the run would (same data
//! order, augmentation, optimizer and learning-rate schedule), recording the loss and global
//! gradient norm of every step and, on a few steps, every layer's gradient and update. A second
//! run does the same on inputs set to zero: the recipe's input-independent baseline. Both are then
//! scored on the same validation samples.
//!
//! - `decreasing_loss`: the training loss must fall, and end below the trivial model's (the
//!   entropy of the label priors, or the target variance).
//! - `input_independent_baseline`: the model trained on real inputs must do clearly better on
//!   validation than the one trained on zeros; if not, it is not using its input (or the labels do
//!   not depend on it: shuffled labels look exactly like this).
//! - `gradient_flow`: per-layer gradient norms at init and at the end, relative to the weights;
//!   vanishing (the input side gets a thousandth of the output side's relative gradient), exploding
//!   (a non-finite loss, a loss spike, a growing gradient norm), and layers that get no gradient.
//! - `update_ratio`: the size of an optimizer update relative to the weights, per layer, which says
//!   whether the learning rate is in a sane range (about 1e-3 is the rule of thumb).
//! - `dead_relu`: units that passed no gradient on a whole batch (see [`super::grads`]).

use regimen_data::Samples;
use regimen_doctor::format::{fmt_num, num, nums, pct};
use regimen_metrics::median;
use regimen_schedule::{ScheduleSpec, Scheduler};
use serde_json::{Map, Value};

use super::baseline::TrivialBaseline;
use super::names;
use super::steps::{Probe, StepProbe, Stepper, TrainBatches, batch_accuracy, fixed_batch};
use super::{Context, TrainResult};
use crate::batches::batch_count;
use crate::config::TrainConfig;
use crate::evaluate::{Meter, Objective, evaluate, host_outputs};
use crate::grads::LayerGradient;
use crate::model::Network;
use crate::state::step_seed;
use regimen_doctor::Check;

/// Relative decrease of the training loss (last tenth of the steps against the first tenth) below
/// which it does not count as decreasing.
pub const MIN_DECREASE: f64 = 0.02;

/// How far below the trivial model's loss (as a fraction of it) the training loss must end to count
/// as beating it.
pub const BEAT_BASELINE_MARGIN: f64 = 0.05;

/// Validation loss of the real-input model over the zero-input model's at or below which the model
/// clearly uses its input.
pub const INPUT_LOSS_RATIO_PASS: f64 = 0.9;

/// Validation loss ratio at or above which the model is no better than one that sees zeros.
pub const INPUT_LOSS_RATIO_FAIL: f64 = 0.98;

/// Accuracy gain over the zero-input model that counts as clearly better on its own, when it is
/// also at least [`INPUT_GAIN_PASS_SE`] standard errors.
pub const INPUT_ACCURACY_GAIN_PASS: f64 = 0.05;

/// Accuracy gain below which (with the loss ratio) the model is no better than the zero-input one,
/// raised to [`INPUT_GAIN_FAIL_SE`] standard errors on few validation samples.
pub const INPUT_ACCURACY_GAIN_FAIL: f64 = 0.01;

/// Standard errors of the difference of two accuracies that a gain must reach to count as clearly
/// better: on 180 validation samples, a 5-point gain is noise.
pub const INPUT_GAIN_PASS_SE: f64 = 3.0;

/// Standard errors of the difference below which a gain counts as no gain.
pub const INPUT_GAIN_FAIL_SE: f64 = 2.0;

/// A step's loss over the first step's loss above which the run has a loss spike (exploding).
pub const LOSS_SPIKE_FACTOR: f64 = 4.0;

/// Growth of the global gradient norm (last tenth of the steps over the first tenth) above which it
/// WARNs as growing.
pub const GRAD_GROWTH_WARN: f64 = 10.0;

/// Growth of the global gradient norm above which it is exploding (FAIL).
pub const GRAD_GROWTH_FAIL: f64 = 100.0;

/// Relative gradient (gradient norm over weight norm) of the first layer over the last layer's
/// below which gradients vanish toward the input.
pub const VANISHING_RATIO: f64 = 1e-3;

/// Update-to-weight ratios below this are too small for the weights to move in a reasonable number
/// of steps (the learning rate is too low).
pub const UPDATE_RATIO_LOW: f64 = 1e-5;

/// Update-to-weight ratios above this rewrite a large part of the weights every step (the learning
/// rate is too high); Karpathy's rule of thumb is about 1e-3, and Adam's first steps run higher.
pub const UPDATE_RATIO_HIGH: f64 = 0.1;

/// Update-to-weight ratios above this replace the weights at every step: FAIL.
pub const UPDATE_RATIO_FAIL: f64 = 1.0;

/// Fraction of a hidden layer's units that may be dead on a batch before the check WARNs.
pub const DEAD_UNITS_WARN: f64 = 0.5;

/// Points of a curve kept in `measured`.
const CURVE_POINTS: usize = 20;

/// A model scored on the validation samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scores {
    /// Validation samples scored.
    pub samples: usize,
    /// Mean loss.
    pub loss: f64,
    /// Accuracy, for classification.
    pub accuracy: Option<f64>,
}

/// What a short run recorded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trace {
    /// Steps asked for.
    pub budget: u64,
    /// Loss of each step taken (the run stops after the first non-finite one).
    pub losses: Vec<f64>,
    /// Global gradient norm of each step, when instrumented.
    pub grad_norms: Vec<f64>,
    /// Per-layer probes: `(step index, probe)`.
    pub probes: Vec<(u64, StepProbe)>,
    /// Learning rate of the first and the last step.
    pub lr: (f64, f64),
    /// Training accuracy over the last tenth of the steps, for classification.
    pub train_accuracy: Option<f64>,
    /// Validation scores at the end; `None` when the run diverged.
    pub val: Option<Scores>,
}

impl Trace {
    /// Whether a step's loss was not finite.
    pub fn diverged(&self) -> bool {
        self.losses.iter().any(|l| !l.is_finite())
    }
}

/// Steps whose layers are probed: the first (the gradient at init) and three in the second half
/// (the update ratios once the optimizer has warmed up).
fn probed(step: u64, budget: u64) -> bool {
    step == 0 || step + 1 == budget || step == budget / 2 || step == budget * 3 / 4
}

/// Mean of the last `n` values.
fn tail_mean(values: &[f64], n: usize) -> f64 {
    let n = n.clamp(1, values.len().max(1));
    values[values.len().saturating_sub(n)..].iter().sum::<f64>() / n as f64
}

/// Mean of the first `n` values.
fn head_mean(values: &[f64], n: usize) -> f64 {
    let n = n.clamp(1, values.len().max(1));
    values[..n.min(values.len())].iter().sum::<f64>() / n as f64
}

/// The window the decreasing-loss comparisons average over: a tenth of the run.
fn window(len: usize) -> usize {
    (len / 10).max(1)
}

/// Which inputs a short run trains on, which decides how it is scored and what it records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inputs {
    /// The real inputs: scored in evaluation mode, as validation scores a run; every step's
    /// gradient norm is recorded and a few steps' layers are probed.
    Real,
    /// Zeroed inputs: scored in training mode. On constant inputs, batch norm's running variance
    /// decays toward zero and evaluation mode divides by it, which turns a constant model into
    /// noise; in training mode the batch statistics make the output exactly the constant the model
    /// learned, which is the baseline wanted.
    Zeroed,
}

/// Trains a fresh model for `options.steps` steps on `train` as the run would, then scores it on
/// `val`.
pub(crate) fn run<M: Network>(
    ctx: &Context<'_>,
    build: &dyn Fn(&TrainConfig) -> TrainResult<M>,
    train: &Samples,
    val: &Samples,
    inputs: Inputs,
) -> TrainResult<Trace> {
    let instrument = inputs == Inputs::Real;
    let config = ctx.config;
    let budget = ctx.options.steps;
    let steps_per_epoch = batch_count(train.len(), config.batch_size, true) as u64;
    let spec: ScheduleSpec = config.schedule.parse()?;
    let scheduler =
        Scheduler::new(spec, config.lr, steps_per_epoch.max(1).saturating_mul(config.epochs), steps_per_epoch.max(1))?;
    let mut model = build(config)?;
    let mut stepper = Stepper::new(config, &ctx.data.task, config.label_smoothing, &ctx.device);
    let mut trace = Trace { budget, lr: (scheduler.lr(0), scheduler.lr(budget.saturating_sub(1))), ..Trace::default() };
    let tail_from = budget.saturating_sub(window(budget as usize) as u64);
    let (mut correct, mut seen) = (0.0, 0usize);
    for (step, mut batch) in (0..budget).zip(TrainBatches::new(train, config, true)) {
        let probe = match (instrument, probed(step, budget)) {
            (false, _) => Probe::Off,
            (true, true) => Probe::Layers,
            (true, false) => Probe::Norm,
        };
        let targets = batch.targets.clone();
        let (updated, result) = stepper.step(model, &mut batch, scheduler.lr(step), &ctx.device, probe);
        model = updated;
        let result = result?;
        trace.losses.push(result.loss);
        if let Some(norm) = result.probe.grad_norm {
            trace.grad_norms.push(norm);
        }
        if probe == Probe::Layers {
            trace.probes.push((step, result.probe));
        }
        if step >= tail_from
            && let Some(accuracy) = batch_accuracy(&result.outputs, &targets)
        {
            correct += accuracy * targets.len() as f64;
            seen += targets.len();
        }
        if !result.loss.is_finite() {
            return Ok(trace);
        }
    }
    trace.train_accuracy = (seen > 0).then(|| correct / seen as f64);
    trace.val = Some(match inputs {
        Inputs::Real => score(ctx, &model, val)?,
        Inputs::Zeroed => score_training_mode(ctx, &model, val)?,
    });
    Ok(trace)
}

/// Scores `model` on `samples` in training mode (batch statistics), without updating it.
fn score_training_mode<M: Network>(ctx: &Context<'_>, model: &M, samples: &Samples) -> TrainResult<Scores> {
    let objective = Objective::for_task(&ctx.data.task, 0.0, &ctx.device);
    ctx.device.seed(step_seed(ctx.config.seed, u64::MAX));
    let indices: Vec<u32> = (0..samples.len() as u32).collect();
    let (mut loss, mut correct) = (0.0, None::<f64>);
    for chunk in indices.chunks(ctx.config.batch_size.max(2)) {
        let mut batch = fixed_batch(samples, chunk);
        let outputs = model.forward(batch.input(&ctx.device)).detach();
        let value: f32 = objective.loss(outputs.clone(), &batch.targets, &ctx.device).into_scalar();
        loss += f64::from(value) * chunk.len() as f64;
        if let Some(accuracy) = batch_accuracy(&host_outputs(outputs)?, &batch.targets) {
            *correct.get_or_insert(0.0) += accuracy * chunk.len() as f64;
        }
    }
    let n = samples.len().max(1) as f64;
    Ok(Scores { samples: samples.len(), loss: loss / n, accuracy: correct.map(|c| c / n) })
}

/// Scores `model` on `samples` in evaluation mode, without label smoothing.
fn score<M: Network>(ctx: &Context<'_>, model: &M, samples: &Samples) -> TrainResult<Scores> {
    let objective = Objective::for_task(&ctx.data.task, 0.0, &ctx.plain);
    let mut meter = Meter::for_task(&ctx.data.task, 1)?;
    evaluate(&model.valid(), samples, &objective, &mut meter, ctx.config.batch_size, &ctx.plain)?;
    Ok(Scores { samples: samples.len(), loss: meter.loss(), accuracy: meter.accuracy() })
}

/// A curve cut to about [`CURVE_POINTS`] points, with its stride.
fn curve(values: &[f64]) -> (Value, usize) {
    let stride = values.len().div_ceil(CURVE_POINTS).max(1);
    (nums(values.iter().step_by(stride).copied()), stride)
}

/// `decreasing_loss`: FAIL when the loss became non-finite or did not fall by [`MIN_DECREASE`]
/// (last tenth of the steps against the first); WARN when it fell but did not end
/// [`BEAT_BASELINE_MARGIN`] below the trivial model's loss; PASS otherwise.
pub(crate) fn judge_decreasing(trace: &Trace, baseline: &TrivialBaseline) -> Check {
    let losses = &trace.losses;
    let steps = losses.len();
    let w = window(steps);
    // The start is the first tenth of the run, or the very first loss when the run spiked right
    // after it: a spike must not pass for a high start that the loss then "fell" from.
    let (first, last) = (head_mean(losses, w).min(losses.first().copied().unwrap_or(f64::NAN)), tail_mean(losses, w));
    let decrease = if first > 0.0 { 1.0 - last / first } else { f64::NAN };
    let trivial = baseline.constant_loss();
    let accuracy = match (trace.train_accuracy, baseline.majority_share()) {
        (Some(a), Some(m)) => {
            format!("; training accuracy {} against {} for always answering the majority class", pct(a), pct(m))
        }
        _ => String::new(),
    };
    let over = format!("over {steps} steps (first loss or mean of the first {w}, mean of the last {w})");
    let check = if trace.diverged() {
        Check::fail(
            names::DECREASING_LOSS,
            format!(
                "The training loss became {} at step {steps}, after {} at the start.",
                losses[steps - 1],
                fmt_num(losses[0])
            ),
        )
        .with_advice(format!(
            "Lower the learning rate (now {}) or clip gradients (--grad-clip 1.0); see gradient_flow.",
            fmt_num(trace.lr.0)
        ))
    } else if decrease.is_nan() || decrease < MIN_DECREASE {
        Check::fail(
            names::DECREASING_LOSS,
            format!("The training loss did not decrease {over}: {} to {}.", fmt_num(first), fmt_num(last)),
        )
        .with_advice(
            "If overfit_one_batch passes, the learning rate is probably too high or too low for the full data (see update_ratio); \
             otherwise fix what it reports first.",
        )
    } else if last > trivial * (1.0 - BEAT_BASELINE_MARGIN) {
        Check::warn(
            names::DECREASING_LOSS,
            format!(
                "The training loss fell {over} from {} to {}, but not below the {} of {}{accuracy}: so far the model has learned \
                 little beyond the label priors.",
                fmt_num(first),
                fmt_num(last),
                fmt_num(trivial),
                baseline.describe()
            ),
        )
        .with_advice(
            "Train longer (--steps) to see whether it breaks away; if it does not, see input_independent_baseline (labels that do \
             not depend on the inputs look like this), then try a bigger model or another learning rate.",
        )
    } else {
        Check::pass(
            names::DECREASING_LOSS,
            format!(
                "The training loss fell {over} from {} to {}, below the {} of {}{accuracy}.",
                fmt_num(first),
                fmt_num(last),
                fmt_num(trivial),
                baseline.describe()
            ),
        )
    };
    let (loss_curve, stride) = curve(losses);
    check
        .with("steps", steps)
        .with("first_loss", num(first))
        .with("last_loss", num(last))
        .with("decrease", num(decrease))
        .with("trivial_loss", num(trivial))
        .with("train_accuracy", trace.train_accuracy.map_or(Value::Null, num))
        .with("majority_accuracy", baseline.majority_share().map_or(Value::Null, num))
        .with("lr_first", num(trace.lr.0))
        .with("lr_last", num(trace.lr.1))
        .with("loss_curve", loss_curve)
        .with("curve_every", stride)
}

/// `input_independent_baseline`: PASS when the real-input model's validation loss is at most
/// [`INPUT_LOSS_RATIO_PASS`] of the zero-input model's, or its accuracy higher by at least
/// [`INPUT_ACCURACY_GAIN_PASS`] and [`INPUT_GAIN_PASS_SE`] standard errors; FAIL when the ratio is
/// at least [`INPUT_LOSS_RATIO_FAIL`] and the accuracy gain below [`INPUT_ACCURACY_GAIN_FAIL`] or
/// [`INPUT_GAIN_FAIL_SE`] standard errors; WARN between, and when a run diverged (nothing to
/// compare).
pub(crate) fn judge_input_independent(real: &Trace, zero: &Trace) -> Check {
    let (Some(r), Some(z)) = (real.val, zero.val) else {
        let which = if real.val.is_none() { "on real inputs" } else { "on zeroed inputs" };
        return Check::warn(
            names::INPUT_INDEPENDENT_BASELINE,
            format!("Cannot compare: the short run {which} diverged (see decreasing_loss and gradient_flow)."),
        )
        .with("skipped", true);
    };
    let ratio = if z.loss > 0.0 { r.loss / z.loss } else { f64::NAN };
    let gain = match (r.accuracy, z.accuracy) {
        (Some(a), Some(b)) => Some(a - b),
        _ => None,
    };
    let accuracy = match (r.accuracy, z.accuracy) {
        (Some(a), Some(b)) => format!(", accuracy {} against {}", pct(a), pct(b)),
        _ => String::new(),
    };
    let numbers = format!(
        "after {} steps, validation loss {} on real inputs against {} on zeroed inputs ({} of it){accuracy}, on {} validation samples",
        real.losses.len(),
        fmt_num(r.loss),
        fmt_num(z.loss),
        pct(ratio),
        r.samples
    );
    // Standard error of the difference of two accuracies on the same number of samples.
    let se = z.accuracy.map_or(0.0, |p| (2.0 * p * (1.0 - p) / r.samples.max(1) as f64).sqrt());
    let clearly_better = ratio <= INPUT_LOSS_RATIO_PASS
        || gain.is_some_and(|g| g >= INPUT_ACCURACY_GAIN_PASS.max(INPUT_GAIN_PASS_SE * se));
    let no_better = (ratio.is_nan() || ratio >= INPUT_LOSS_RATIO_FAIL)
        && gain.is_none_or(|g| g < INPUT_ACCURACY_GAIN_FAIL.max(INPUT_GAIN_FAIL_SE * se));
    let check = if clearly_better {
        Check::pass(names::INPUT_INDEPENDENT_BASELINE, format!("The model uses its input: {numbers}."))
    } else if no_better && !learned(real) {
        Check::fail(
            names::INPUT_INDEPENDENT_BASELINE,
            format!(
                "The model does no better than one trained on zeroed inputs: {numbers}. It is not using its input, but its training \
                 loss did not fall either (see decreasing_loss): it may not have learned anything yet."
            ),
        )
        .with_advice(
            "Fix decreasing_loss first (learning rate, target scale); if the loss then falls and this stays, check that labels \
             belong to their inputs.",
        )
    } else if no_better {
        Check::fail(
            names::INPUT_INDEPENDENT_BASELINE,
            format!("The model does no better than one trained on zeroed inputs: {numbers}. It is not using its input."),
        )
        .with_advice(
            "Check that the inputs reach the network (the sample grid shows what it sees), that the forward pass uses them, and \
             that labels belong to their inputs: shuffled or misaligned labels look exactly like this.",
        )
    } else {
        Check::warn(names::INPUT_INDEPENDENT_BASELINE, format!("The model is only slightly better than one trained on zeroed inputs: {numbers}."))
            .with_advice("Give the short runs more steps (--steps) to separate them; if the gap stays small, check how labels are read.")
    };
    check
        .with("val_loss", num(r.loss))
        .with("zero_input_val_loss", num(z.loss))
        .with("loss_ratio", num(ratio))
        .with("val_accuracy", r.accuracy.map_or(Value::Null, num))
        .with("zero_input_val_accuracy", z.accuracy.map_or(Value::Null, num))
        .with("accuracy_gain", gain.map_or(Value::Null, num))
        .with("accuracy_gain_se", num(se))
        .with("val_samples", r.samples)
        .with("steps", real.losses.len())
}

/// Whether a run's training loss fell by at least [`MIN_DECREASE`] (see [`judge_decreasing`]).
fn learned(trace: &Trace) -> bool {
    let losses = &trace.losses;
    let w = window(losses.len());
    let first = head_mean(losses, w).min(losses.first().copied().unwrap_or(f64::NAN));
    !trace.diverged() && first > 0.0 && 1.0 - tail_mean(losses, w) / first >= MIN_DECREASE
}

/// Per-layer values as a JSON object keyed by layer path.
fn by_layer(layers: &[LayerGradient], value: impl Fn(&LayerGradient) -> f64) -> Value {
    Value::Object(layers.iter().map(|l| (l.layer.clone(), num(value(l)))).collect::<Map<String, Value>>())
}

/// The relative gradient of the first layer over the last one's.
fn depth_ratio(layers: &[LayerGradient]) -> Option<(f64, &str, &str)> {
    let (first, last) = (layers.first()?, layers.last()?);
    if layers.len() < 2 {
        return None;
    }
    Some((first.relative() / last.relative(), first.layer.as_str(), last.layer.as_str()))
}

/// `gradient_flow`: FAIL when a trainable layer gets no gradient at all, when the loss became
/// non-finite or spiked above [`LOSS_SPIKE_FACTOR`] times its start, or when the global gradient
/// norm grew more than [`GRAD_GROWTH_FAIL`] times (exploding); WARN when it grew more than
/// [`GRAD_GROWTH_WARN`] times, or when the first layer's relative gradient is below
/// [`VANISHING_RATIO`] of the last layer's (vanishing); PASS otherwise. Measures per-layer gradient
/// norms and relative gradients at init and at the end.
pub(crate) fn judge_gradient_flow(trace: &Trace) -> Check {
    let init = trace.probes.first().map(|(_, p)| p.layers.as_slice()).unwrap_or_default();
    let (end_step, end) = trace.probes.last().map(|(s, p)| (*s, p.layers.as_slice())).unwrap_or((0, &[]));
    let losses = &trace.losses;
    let spike =
        losses.iter().skip(1).copied().fold(f64::NEG_INFINITY, f64::max) / losses.first().copied().unwrap_or(f64::NAN);
    let norms = &trace.grad_norms;
    let w = window(norms.len());
    let growth = tail_mean(norms, w) / head_mean(norms, w);
    let unconnected: Vec<&str> = init.iter().filter(|l| !l.connected).map(|l| l.layer.as_str()).collect();
    let vanishing: Vec<(f64, String)> = [init, end]
        .iter()
        .filter_map(|layers| depth_ratio(layers).map(|(r, first, last)| (r, format!("{first} vs {last}"))))
        .filter(|(r, _)| *r < VANISHING_RATIO)
        .collect();
    let describe = |layers: &[LayerGradient]| -> String {
        match (layers.first(), layers.last()) {
            (Some(first), Some(last)) if layers.len() > 1 => format!(
                "gradient norm {} in {} (relative {}) to {} in {} (relative {})",
                fmt_num(first.grad_norm),
                first.layer,
                fmt_num(first.relative()),
                fmt_num(last.grad_norm),
                last.layer,
                fmt_num(last.relative())
            ),
            (Some(only), _) => format!("gradient norm {} in {}", fmt_num(only.grad_norm), only.layer),
            _ => "no layer measured".into(),
        }
    };
    let global = format!(
        "the global gradient norm went from {} to {}",
        fmt_num(head_mean(norms, w)),
        fmt_num(tail_mean(norms, w))
    );
    let check = if !unconnected.is_empty() {
        Check::fail(
            names::GRADIENT_FLOW,
            format!(
                "{} layer(s) get no gradient at all: {}. Their parameters do not affect the loss.",
                unconnected.len(),
                unconnected.join(", ")
            ),
        )
        .with_advice(
            "Use every layer in the forward pass (or remove it), and do not detach tensors on the way to the loss.",
        )
    } else if trace.diverged() || norms.iter().any(|n| !n.is_finite()) {
        Check::fail(
            names::GRADIENT_FLOW,
            format!(
                "Exploding: the loss became {} at step {} (from {}); {global}.",
                losses.last().copied().unwrap_or(f64::NAN),
                losses.len(),
                fmt_num(losses[0])
            ),
        )
        .with_advice(format!(
            "Lower the learning rate (now {}) by 10x, or clip gradients (--grad-clip 1.0).",
            fmt_num(trace.lr.0)
        ))
    } else if spike > LOSS_SPIKE_FACTOR || growth > GRAD_GROWTH_FAIL {
        let peak_step = losses.iter().enumerate().skip(1).max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i + 1);
        let what = if spike > LOSS_SPIKE_FACTOR {
            format!("the loss spiked to {}x its first value at step {peak_step}; {global}", fmt_num(spike))
        } else {
            format!("{global}, {}x", fmt_num(growth))
        };
        Check::fail(names::GRADIENT_FLOW, format!("Exploding: {what} over {} steps.", losses.len())).with_advice(
            format!(
                "Lower the learning rate (now {}) by 10x, or clip gradients (--grad-clip 1.0).",
                fmt_num(trace.lr.0)
            ),
        )
    } else if growth > GRAD_GROWTH_WARN {
        Check::warn(
            names::GRADIENT_FLOW,
            format!("Growing gradients: {global} ({}x) over {} steps.", fmt_num(growth), losses.len()),
        )
        .with_advice("Watch for a loss spike in training; a lower learning rate or --grad-clip 1.0 keeps it in check.")
    } else if let Some((ratio, which)) = vanishing.first() {
        Check::warn(
            names::GRADIENT_FLOW,
            format!(
                "Vanishing: the relative gradient of the input side is {} of the output side's ({which}); at init, {}.",
                fmt_num(*ratio),
                describe(init)
            ),
        )
        .with_advice("Use ReLU-family activations, batch normalization (--batch-norm) or residual connections (--model resnet), and a standard (He) initialization.")
    } else {
        Check::pass(
            names::GRADIENT_FLOW,
            format!(
                "At init, {}; at step {}, {}; {global} without spikes.",
                describe(init),
                end_step + 1,
                describe(end)
            ),
        )
    };
    let (norm_curve, stride) = curve(norms);
    check
        .with("grad_norm_init", by_layer(init, |l| l.grad_norm))
        .with("grad_norm_end", by_layer(end, |l| l.grad_norm))
        .with("relative_grad_init", by_layer(init, LayerGradient::relative))
        .with("relative_grad_end", by_layer(end, LayerGradient::relative))
        .with("depth_ratio_init", depth_ratio(init).map_or(Value::Null, |(r, ..)| num(r)))
        .with("depth_ratio_end", depth_ratio(end).map_or(Value::Null, |(r, ..)| num(r)))
        .with("loss_spike", num(spike))
        .with("grad_norm_growth", num(growth))
        .with("global_grad_norm", norm_curve)
        .with("curve_every", stride)
        .with("unconnected", Value::from(unconnected.iter().map(|s| Value::from(*s)).collect::<Vec<_>>()))
}

/// `update_ratio`: per layer, the median update-to-weight ratio over the probed steps of the second
/// half (after the optimizer's first steps); the verdict is on the median over layers. PASS within
/// [`UPDATE_RATIO_LOW`] to [`UPDATE_RATIO_HIGH`], WARN outside, FAIL when it or the first step's
/// median ratio is above [`UPDATE_RATIO_FAIL`], or when not finite.
pub(crate) fn judge_update_ratio(trace: &Trace) -> Check {
    let half = trace.budget / 2;
    let late: Vec<&StepProbe> = trace.probes.iter().filter(|(s, _)| *s >= half).map(|(_, p)| p).collect();
    let probes: Vec<&StepProbe> = if late.is_empty() { trace.probes.iter().map(|(_, p)| p).collect() } else { late };
    let mut layers: Vec<(String, Vec<f64>)> = Vec::new();
    for probe in &probes {
        for (name, ratio) in &probe.update_ratios {
            match layers.iter_mut().find(|(n, _)| n == name) {
                Some((_, values)) => values.push(*ratio),
                None => layers.push((name.clone(), vec![*ratio])),
            }
        }
    }
    let per_layer: Vec<(String, f64)> =
        layers.into_iter().map(|(name, values)| (name, median(values).unwrap_or(f64::NAN))).collect();
    let at_init: Vec<(String, f64)> =
        trace.probes.first().filter(|(step, _)| *step == 0).map(|(_, p)| p.update_ratios.clone()).unwrap_or_default();
    let overall = median(per_layer.iter().map(|(_, r)| *r)).unwrap_or(f64::NAN);
    // The first update on its own: an Adam step moves every weight by about the learning rate, so
    // a learning rate far too high shows here even when the weights then grow so large that later
    // updates look small next to them.
    let first = trace
        .probes
        .first()
        .filter(|(step, _)| *step == 0)
        .and_then(|(_, p)| median(p.update_ratios.iter().map(|(_, r)| *r)))
        .unwrap_or(f64::NAN);
    let (low, high) = per_layer.iter().fold((None::<&(String, f64)>, None::<&(String, f64)>), |(lo, hi), l| {
        (
            if lo.is_none_or(|x| l.1 < x.1) { Some(l) } else { lo },
            if hi.is_none_or(|x| l.1 > x.1) { Some(l) } else { hi },
        )
    });
    let range = match (low, high) {
        (Some(l), Some(h)) => format!(" (from {} in {} to {} in {})", fmt_num(l.1), l.0, fmt_num(h.1), h.0),
        _ => String::new(),
    };
    let lr = fmt_num(trace.lr.1);
    let numbers =
        format!("the median update-to-weight ratio per step is {}{range} at learning rate {lr}", fmt_num(overall));
    let check = if per_layer.is_empty() {
        Check::warn(names::UPDATE_RATIO, "No update was measured: the short run ended before its first probed step.")
            .with("skipped", true)
    } else if !overall.is_finite() || overall > UPDATE_RATIO_FAIL || first > UPDATE_RATIO_FAIL {
        Check::fail(
            names::UPDATE_RATIO,
            format!(
                "The learning rate is far too high: the first update was {}x the weights (median over layers), and {numbers}.",
                fmt_num(first)
            ),
        )
            .with_advice(format!("Divide the learning rate ({lr}) by 10 or more; aim for a ratio of about 1e-3."))
    } else if overall > UPDATE_RATIO_HIGH {
        Check::warn(
            names::UPDATE_RATIO,
            format!("The learning rate looks too high: {numbers}, against about 1e-3 as a rule of thumb."),
        )
        .with_advice(format!(
            "Try a learning rate (now {lr}) 3 to 10 times lower, or a warmup (--schedule cosine:warmup=500)."
        ))
    } else if overall < UPDATE_RATIO_LOW {
        Check::warn(
            names::UPDATE_RATIO,
            format!("The learning rate looks too low: {numbers}, against about 1e-3 as a rule of thumb."),
        )
        .with_advice(format!("Try a learning rate (now {lr}) 10 times higher; the weights barely move."))
    } else {
        Check::pass(
            names::UPDATE_RATIO,
            format!("The learning rate is in a sane range: {numbers} (about 1e-3 is the rule of thumb)."),
        )
    };
    check
        .with("median_ratio", num(overall))
        .with("first_step_ratio", num(first))
        .with("ratio_by_layer", Value::Object(per_layer.iter().map(|(n, r)| (n.clone(), num(*r))).collect()))
        .with("ratio_by_layer_first_step", Value::Object(at_init.iter().map(|(n, r)| (n.clone(), num(*r))).collect()))
        .with("probed_steps", Value::from(trace.probes.iter().map(|(s, _)| *s + 1).collect::<Vec<_>>()))
        .with("lr", num(trace.lr.1))
}

/// `dead_relu`: units that passed no gradient on a whole batch, per hidden layer (every layer
/// but the last), at init and at the last probed step. FAIL when a hidden layer of more than one
/// unit is entirely dead at the end, WARN when more than [`DEAD_UNITS_WARN`] of one is, PASS
/// otherwise.
pub(crate) fn judge_dead_relu(trace: &Trace) -> Check {
    let hidden = |layers: &[LayerGradient]| -> Vec<(String, usize, usize)> {
        let cut = layers.len().saturating_sub(1);
        layers[..cut].iter().filter_map(|l| l.dead_units.map(|(d, n)| (l.layer.clone(), d, n))).collect()
    };
    let init = trace.probes.first().map(|(_, p)| hidden(&p.layers)).unwrap_or_default();
    let (end_step, end) = trace.probes.last().map(|(s, p)| (*s, hidden(&p.layers))).unwrap_or((0, Vec::new()));
    let as_json = |layers: &[(String, usize, usize)]| {
        Value::Object(layers.iter().map(|(name, d, n)| (name.clone(), Value::from(vec![*d, *n]))).collect())
    };
    let (dead, units) = end.iter().fold((0, 0), |(d, n), l| (d + l.1, n + l.2));
    let worst = end.iter().max_by(|a, b| (a.1 as f64 / a.2.max(1) as f64).total_cmp(&(b.1 as f64 / b.2.max(1) as f64)));
    let how = "measured from gradients: a unit whose parameters all get an exactly zero gradient did not fire for any sample of the batch";
    let check = match worst {
        None => Check::pass(
            names::DEAD_RELU,
            "Skipped: no hidden layer with a unit count was measured (the model's layers do not follow Burn's linear or convolution layouts, or the run ended early).",
        )
        .with("skipped", true),
        Some((name, d, n)) if *d == *n && *n > 1 => Check::fail(
            names::DEAD_RELU,
            format!("Every one of the {n} units of {name} is dead at step {} ({how}): nothing below it can learn.", end_step + 1),
        )
        .with_advice("Lower the learning rate, which kills ReLUs with large updates; use batch normalization or a leaky activation (--activation gelu)."),
        Some((name, d, n)) if *d as f64 > DEAD_UNITS_WARN * *n as f64 => Check::warn(
            names::DEAD_RELU,
            format!("{d} of the {n} units of {name} are dead at step {} ({how}).", end_step + 1),
        )
        .with_advice("Lower the learning rate, use batch normalization or a smooth activation (--activation gelu), and check the input scale."),
        Some(_) => Check::pass(
            names::DEAD_RELU,
            format!("{dead} of {units} hidden units passed no gradient on the batch of step {} ({how}).", end_step + 1),
        ),
    };
    check
        .with("dead_init", as_json(&init))
        .with("dead_end", as_json(&end))
        .with("dead_fraction", num(dead as f64 / units.max(1) as f64))
}

/// The validation samples the two short runs are scored on: the first `n` of the split.
pub(crate) fn val_subset(val: &Samples, n: usize) -> Samples {
    let indices: Vec<usize> = (0..n.min(val.len())).collect();
    val.subset(&indices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regimen_doctor::CheckStatus;

    fn layer(name: &str, grad: f64, weight: f64, dead: (usize, usize)) -> LayerGradient {
        LayerGradient {
            layer: name.into(),
            params: 100,
            grad_norm: grad,
            weight_norm: weight,
            connected: true,
            dead_units: Some(dead),
        }
    }

    fn probe(layers: Vec<LayerGradient>, ratio: f64) -> StepProbe {
        let update_ratios = layers.iter().map(|l| (l.layer.clone(), ratio)).collect();
        StepProbe { grad_norm: Some(1.0), layers, update_ratios, ..StepProbe::default() }
    }

    fn healthy() -> Trace {
        let layers = || {
            vec![
                layer("convs.0", 0.5, 5.0, (1, 32)),
                layer("dense.0", 0.4, 8.0, (3, 64)),
                layer("output", 0.3, 2.0, (0, 5)),
            ]
        };
        Trace {
            budget: 100,
            losses: (0..100).map(|i| 1.7 * (-(i as f64) / 40.0).exp() + 0.1).collect(),
            grad_norms: (0..100).map(|i| 1.0 - i as f64 / 200.0).collect(),
            probes: vec![
                (0, probe(layers(), 0.02)),
                (50, probe(layers(), 2e-3)),
                (75, probe(layers(), 1e-3)),
                (99, probe(layers(), 1e-3)),
            ],
            lr: (1e-3, 1e-3),
            train_accuracy: Some(0.9),
            val: Some(Scores { samples: 500, loss: 0.4, accuracy: Some(0.88) }),
        }
    }

    fn zero_input() -> Trace {
        Trace { val: Some(Scores { samples: 500, loss: 1.609, accuracy: Some(0.2) }), ..healthy() }
    }

    fn balanced() -> TrivialBaseline {
        TrivialBaseline::Classification { priors: vec![0.2; 5], smoothing: 0.0 }
    }

    #[test]
    fn a_healthy_run_passes_every_check() {
        let trace = healthy();
        for check in [
            judge_decreasing(&trace, &balanced()),
            judge_input_independent(&trace, &zero_input()),
            judge_gradient_flow(&trace),
            judge_update_ratio(&trace),
            judge_dead_relu(&trace),
        ] {
            assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
        }
        let ratio = judge_update_ratio(&trace);
        assert_eq!(ratio.measured["median_ratio"], num(1e-3), "the first step's large Adam update is not judged");
        assert_eq!(judge_dead_relu(&trace).measured["dead_end"]["dense.0"], serde_json::json!([3, 64]));
    }

    #[test]
    fn a_flat_loss_fails_and_one_stuck_at_the_priors_warns() {
        let flat = Trace { losses: vec![1.61; 50], ..healthy() };
        assert_eq!(judge_decreasing(&flat, &balanced()).status, CheckStatus::Fail);
        let priors = Trace {
            losses: (0..50).map(|i| 1.8 - 0.19 * i as f64 / 49.0).collect(),
            train_accuracy: Some(0.21),
            ..healthy()
        };
        let check = judge_decreasing(&priors, &balanced());
        assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
        assert!(check.message.contains("label priors"), "{}", check.message);
        let nan = Trace { losses: vec![1.6, 9.0, f64::NAN], ..healthy() };
        assert_eq!(judge_decreasing(&nan, &balanced()).status, CheckStatus::Fail);
        // A spike right after the start is no start to fall from.
        let mut spike = vec![1.6, 3000.0, 600.0, 100.0];
        spike.extend(std::iter::repeat_n(2.0, 36));
        let check = judge_decreasing(&Trace { losses: spike, ..healthy() }, &balanced());
        assert_eq!(check.status, CheckStatus::Fail, "{check:?}");
    }

    #[test]
    fn a_model_no_better_than_zeros_fails_the_input_independent_baseline() {
        let blind = Trace { val: Some(Scores { samples: 500, loss: 1.61, accuracy: Some(0.2) }), ..healthy() };
        let check = judge_input_independent(&blind, &zero_input());
        assert_eq!(check.status, CheckStatus::Fail, "{check:?}");
        assert!(check.message.ends_with("It is not using its input."), "{}", check.message);
        let stuck = Trace { losses: vec![1.61; 50], ..blind.clone() };
        let check = judge_input_independent(&stuck, &zero_input());
        assert_eq!(check.status, CheckStatus::Fail);
        assert!(check.message.contains("did not fall either"), "{}", check.message);
        let slightly = Trace { val: Some(Scores { samples: 500, loss: 1.54, accuracy: Some(0.23) }), ..healthy() };
        assert_eq!(judge_input_independent(&slightly, &zero_input()).status, CheckStatus::Warn);
        let diverged = Trace { val: None, ..healthy() };
        assert_eq!(judge_input_independent(&diverged, &zero_input()).status, CheckStatus::Warn);
        // Accuracy alone can show the difference on a task where the losses stay close.
        let accurate = Trace { val: Some(Scores { samples: 500, loss: 1.55, accuracy: Some(0.4) }), ..healthy() };
        assert_eq!(judge_input_independent(&accurate, &zero_input()).status, CheckStatus::Pass);
    }

    #[test]
    fn spikes_growth_and_vanishing_are_flagged() {
        let mut spiking = healthy();
        spiking.losses[10] = 20.0;
        let check = judge_gradient_flow(&spiking);
        assert_eq!(check.status, CheckStatus::Fail);
        assert!(check.message.starts_with("Exploding: the loss spiked to"), "{}", check.message);
        assert!(check.message.contains("at step 11"), "{}", check.message);
        let growing = Trace { grad_norms: (0..100).map(|i| 1.5f64.powi(i / 4)).collect(), ..healthy() };
        assert_eq!(judge_gradient_flow(&growing).status, CheckStatus::Fail);
        let vanishing_layers = || {
            vec![
                layer("layers.0", 1e-7, 5.0, (0, 32)),
                layer("layers.1", 1e-3, 5.0, (0, 32)),
                layer("output", 0.5, 2.0, (0, 5)),
            ]
        };
        let vanishing = Trace {
            probes: vec![(0, probe(vanishing_layers(), 1e-3)), (99, probe(vanishing_layers(), 1e-3))],
            ..healthy()
        };
        let check = judge_gradient_flow(&vanishing);
        assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
        assert!(check.message.starts_with("Vanishing"), "{}", check.message);
        let mut unconnected = healthy();
        unconnected.probes[0].1.layers[1].connected = false;
        let check = judge_gradient_flow(&unconnected);
        assert_eq!(check.status, CheckStatus::Fail);
        assert!(check.message.contains("dense.0"), "{}", check.message);
    }

    #[test]
    fn update_ratios_far_from_1e_3_are_flagged() {
        let with_ratio = |ratio: f64| {
            let mut trace = healthy();
            for (_, p) in &mut trace.probes {
                for r in &mut p.update_ratios {
                    r.1 = ratio;
                }
            }
            judge_update_ratio(&trace).status
        };
        assert_eq!(with_ratio(1e-3), CheckStatus::Pass);
        assert_eq!(with_ratio(0.3), CheckStatus::Warn);
        assert_eq!(with_ratio(5.0), CheckStatus::Fail);
        assert_eq!(with_ratio(1e-7), CheckStatus::Warn);
        // Weights blown up by a huge first step make later updates look small: the first counts.
        let mut blown = healthy();
        for r in &mut blown.probes[0].1.update_ratios {
            r.1 = 300.0;
        }
        let check = judge_update_ratio(&blown);
        assert_eq!(check.status, CheckStatus::Fail, "{check:?}");
        assert!(check.message.contains("300x"), "{}", check.message);
    }

    #[test]
    fn dead_layers_warn_and_fail() {
        let with_dead = |dead: usize| {
            let layers = vec![layer("layers.0", 0.5, 5.0, (dead, 64)), layer("output", 0.3, 2.0, (0, 5))];
            let trace =
                Trace { probes: vec![(0, probe(layers.clone(), 1e-3)), (99, probe(layers, 1e-3))], ..healthy() };
            judge_dead_relu(&trace).status
        };
        assert_eq!(with_dead(3), CheckStatus::Pass);
        assert_eq!(with_dead(40), CheckStatus::Warn);
        assert_eq!(with_dead(64), CheckStatus::Fail);
    }
}
