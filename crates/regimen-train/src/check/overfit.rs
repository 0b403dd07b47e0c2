//! `overfit_one_batch`: the recipe's "overfit one batch".
//!
//! Any network worth training can memorize a dozen samples. Trained on one small fixed batch, the
//! loss must go to about zero and the accuracy to 100% within a few hundred steps; if it does not,
//! the loss, the labels, the optimizer step or the learning rate is wrong, and no amount of data
//! or tuning will fix it. The check simplifies as the recipe says: no augmentation, no dropout, no
//! weight decay, no label smoothing (each of which keeps the loss from reaching zero on purpose);
//! the model, the optimizer and the learning rate are the run's.

use regimen_data::{BatchTargets, epoch_order};
use regimen_doctor::format::{fmt_num, num, nums, pct};
use regimen_metrics::Moments;
use serde_json::Value;

use super::names;
use super::steps::{Probe, Stepper, batch_accuracy, fixed_batch};
use super::{Context, TrainResult};
use crate::config::TrainConfig;
use crate::model::Network;
use regimen_doctor::Check;

/// Cross-entropy below which one batch (every sample classified right) counts as memorized: the
/// correct class has about 90% of the probability on average.
pub const OVERFIT_CLASSIFICATION_LOSS: f64 = 0.1;

/// Fraction of the batch's target variance a regression loss must fall below to count as
/// memorized (an R² of 0.99).
pub const OVERFIT_REGRESSION_FRACTION: f64 = 0.01;

/// Points of the loss curve kept in `measured`.
const CURVE_POINTS: usize = 20;

/// What overfitting one batch measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OverfitMeasurement {
    /// Samples in the batch.
    pub samples: usize,
    /// Loss of every step taken, before its update.
    pub losses: Vec<f64>,
    /// Accuracy on the batch at the last step (classification).
    pub accuracy: Option<f64>,
    /// The loss that counts as memorized.
    pub target_loss: f64,
    /// The step (1-based) at which the batch was memorized.
    pub reached_at: Option<usize>,
    /// The step budget.
    pub budget: u64,
    /// The learning rate used.
    pub lr: f64,
    /// Whether the task is regression.
    pub regression: bool,
}

/// The run's config with everything that keeps a loss from reaching zero turned off.
pub(crate) fn simplified(config: &TrainConfig) -> TrainConfig {
    TrainConfig {
        dropout: 0.0,
        weight_decay: 0.0,
        label_smoothing: 0.0,
        augment_flip: false,
        augment_crop: 0,
        augment_rotate: 0.0,
        augment_noise: 0.0,
        ..config.clone()
    }
}

/// Trains a fresh model on one fixed batch of the first `overfit_samples` training samples until
/// it is memorized or the budget runs out.
pub(crate) fn measure<M: Network>(
    ctx: &Context<'_>,
    build: &dyn Fn(&TrainConfig) -> TrainResult<M>,
) -> TrainResult<OverfitMeasurement> {
    let config = simplified(ctx.config);
    let mut model = build(&config)?;
    let train = &ctx.data.train;
    let n = ctx.options.overfit_samples.min(train.len());
    let order = epoch_order(config.seed, 1, train.len());
    let indices = &order[..n];
    let template = fixed_batch(train, indices);
    let target_loss = match &template.targets {
        BatchTargets::Classes(_) => OVERFIT_CLASSIFICATION_LOSS,
        BatchTargets::Values(values) => {
            let variance = Moments::of(values.iter().map(|&v| f64::from(v))).variance().unwrap_or(0.0);
            (OVERFIT_REGRESSION_FRACTION * variance).max(1e-8)
        }
    };
    let mut stepper = Stepper::new(&config, &ctx.data.task, 0.0, &ctx.device);
    let (mut losses, mut accuracy, mut reached_at) = (Vec::new(), None, None);
    for _ in 0..ctx.options.overfit_steps {
        let mut batch = fixed_batch(train, indices);
        let (updated, result) = stepper.step(model, &mut batch, config.lr, &ctx.device, Probe::Off);
        model = updated;
        let result = result?;
        losses.push(result.loss);
        accuracy = batch_accuracy(&result.outputs, &template.targets);
        if !result.loss.is_finite() {
            break;
        }
        if result.loss <= target_loss && accuracy.is_none_or(|a| a >= 1.0) {
            reached_at = Some(losses.len());
            break;
        }
    }
    let regression = matches!(template.targets, BatchTargets::Values(_));
    Ok(OverfitMeasurement {
        samples: n,
        losses,
        accuracy,
        target_loss,
        reached_at,
        budget: ctx.options.overfit_steps,
        lr: config.lr,
        regression,
    })
}

/// `overfit_one_batch`: PASS when the batch was memorized within the budget; WARN when a
/// classifier got every sample right but its loss stayed above the target (it learns, slowly);
/// FAIL otherwise, with the likely culprit from the shape of the loss curve.
pub(crate) fn judge(m: &OverfitMeasurement) -> Check {
    let first = m.losses.first().copied().unwrap_or(f64::NAN);
    let last = m.losses.last().copied().unwrap_or(f64::NAN);
    let steps = m.losses.len();
    let accuracy_text = m.accuracy.map(|a| format!(" and {} accuracy", pct(a))).unwrap_or_default();
    let check = if m.samples < 2 {
        Check::pass(names::OVERFIT_ONE_BATCH, "Skipped: the train split has fewer than 2 samples.")
            .with("skipped", true)
    } else if let Some(at) = m.reached_at {
        Check::pass(
            names::OVERFIT_ONE_BATCH,
            format!(
                "Memorized a batch of {} train samples in {at} steps (loss {} from {}{accuracy_text}): loss, labels and optimizer step are wired correctly.",
                m.samples,
                fmt_num(last),
                fmt_num(first)
            ),
        )
    } else if !last.is_finite() {
        Check::fail(
            names::OVERFIT_ONE_BATCH,
            format!(
                "The loss on one batch of {} samples became {last} at step {steps} (from {}).",
                m.samples,
                fmt_num(first)
            ),
        )
        .with_advice(format!(
            "The learning rate ({}) is far too high for this model: divide it by 10 until the loss falls.",
            fmt_num(m.lr)
        ))
    } else if m.accuracy == Some(1.0) {
        Check::warn(
            names::OVERFIT_ONE_BATCH,
            format!(
                "Every sample of a batch of {} is right after {steps} steps, but the loss is still {} (target {}, from {}): it learns, slowly.",
                m.samples,
                fmt_num(last),
                fmt_num(m.target_loss),
                fmt_num(first)
            ),
        )
        .with_advice("Raise the step budget (--overfit-steps) or the learning rate (--lr); a small model may also need more capacity.")
    } else {
        let peak = m.losses.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let advice = if last > first || peak > 2.0 * first {
            format!(
                "The loss {} (peak {}): the learning rate ({}) is probably too high; try it 10x lower.",
                if last > first { "rose" } else { "spiked" },
                fmt_num(peak),
                fmt_num(m.lr)
            )
        } else if last > 0.9 * first && m.regression {
            format!(
                "The loss barely moved. Targets far from zero or spread widely take many steps to reach at a learning rate of {}: \
                 standardize them (see init_well and valid_targets); then check that gradients reach the weights (see gradient_flow).",
                fmt_num(m.lr)
            )
        } else if last > 0.9 * first {
            format!(
                "The loss barely moved: check that the labels belong to their inputs, that the loss gets raw outputs (logits), that \
                 gradients reach the weights (see gradient_flow), and that the learning rate ({}) is not far too low.",
                fmt_num(m.lr)
            )
        } else {
            "The loss falls but not far enough: give it more steps (--overfit-steps), a higher learning rate, or a bigger model.".to_string()
        };
        Check::fail(
            names::OVERFIT_ONE_BATCH,
            format!(
                "Could not memorize a batch of {} train samples in {steps} steps: loss {} from {}{accuracy_text}. A model that cannot fit a \
                 dozen samples has a bug or a learning rate far off.",
                m.samples,
                fmt_num(last),
                fmt_num(first)
            ),
        )
        .with_advice(advice)
    };
    let stride = steps.div_ceil(CURVE_POINTS).max(1);
    let curve = nums(m.losses.iter().step_by(stride).copied());
    check
        .with("samples", m.samples)
        .with("steps", steps)
        .with("budget", m.budget)
        .with("lr", num(m.lr))
        .with("first_loss", num(first))
        .with("final_loss", num(last))
        .with("target_loss", num(m.target_loss))
        .with("accuracy", m.accuracy.map_or(Value::Null, num))
        .with("loss_curve", curve)
        .with("curve_every", stride)
        .with("outcome", outcome(m))
}

fn outcome(m: &OverfitMeasurement) -> &'static str {
    match (m.reached_at, m.losses.last()) {
        (Some(_), _) => "memorized",
        (None, Some(l)) if !l.is_finite() => "diverged",
        (None, _) if m.accuracy == Some(1.0) => "slow",
        _ => "not_memorized",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regimen_doctor::CheckStatus;

    fn run(losses: &[f64], accuracy: Option<f64>, reached_at: Option<usize>) -> OverfitMeasurement {
        OverfitMeasurement {
            samples: 16,
            losses: losses.to_vec(),
            accuracy,
            target_loss: 0.1,
            reached_at,
            budget: 200,
            lr: 1e-3,
            regression: false,
        }
    }

    #[test]
    fn verdicts_follow_the_loss_curve() {
        let pass = judge(&run(&[1.6, 0.5, 0.04], Some(1.0), Some(3)));
        assert_eq!(pass.status, CheckStatus::Pass, "{pass:?}");
        assert!(pass.message.contains("in 3 steps"), "{}", pass.message);
        let diverged = judge(&run(&[1.6, 30.0, f64::NAN], Some(0.1), None));
        assert_eq!(diverged.status, CheckStatus::Fail);
        assert!(diverged.advice.unwrap_or_default().contains("far too high"));
        let slow = judge(&run(&[1.6, 0.3, 0.2], Some(1.0), None));
        assert_eq!(slow.status, CheckStatus::Warn);
        let stuck = judge(&run(&[1.6, 1.58, 1.57], Some(0.25), None));
        assert_eq!(stuck.status, CheckStatus::Fail);
        assert!(stuck.advice.unwrap_or_default().contains("barely moved"));
        let rising = judge(&run(&[1.6, 2.0, 2.5], Some(0.2), None));
        assert!(rising.advice.unwrap_or_default().contains("too high"));
        let spiked = judge(&run(&[1.6, 13.0, 3.0, 1.5], Some(0.4), None));
        assert!(spiked.advice.unwrap_or_default().contains("spiked (peak 13)"));
        assert_eq!(rising.measured["outcome"], "not_memorized");
    }

    #[test]
    fn simplifying_turns_off_only_regularization() {
        let config = TrainConfig {
            dropout: 0.3,
            weight_decay: 0.1,
            augment_flip: true,
            label_smoothing: 0.1,
            lr: 0.5,
            ..TrainConfig::default()
        };
        let simple = simplified(&config);
        assert_eq!(
            (simple.dropout, simple.weight_decay, simple.label_smoothing, simple.augment_flip),
            (0.0, 0.0, 0.0, false)
        );
        assert_eq!(simple.lr, 0.5);
        assert_eq!(simple.model, config.model);
    }
}
