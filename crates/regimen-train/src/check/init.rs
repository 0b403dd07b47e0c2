//! `loss_at_init` and `init_well`: the recipe's "verify loss @ init" and "init well".
//!
//! A freshly initialized classifier should be unsure of everything: uniform probabilities, a
//! cross-entropy of `ln C`. A regressor should predict about zero, a mean squared error of the
//! mean square of the targets. A loss far above that means the network starts confidently wrong
//! (unnormalized inputs, a last layer initialized too large, probabilities fed to a loss that wants
//! logits) and the first steps are spent undoing it; a loss far below it means the model knows the
//! answer before training, which only a leak or a wrong loss explains.
//!
//! "Init well" then sets the output layer's bias to what a model that ignores its input should
//! predict (the log class priors, or the target mean) and measures the loss again: the gap is what
//! the first steps of training will spend learning the bias (the "hockey stick" of a loss curve).
//! For balanced classes the log priors are one constant, which changes no probability, so the gap
//! is zero. The bias is set on a copy of the model inside the check; training's defaults stay as
//! they are.

use burn::module::{ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use regimen_data::epoch_order;
use regimen_doctor::format::{fmt_num, num, pct};
use regimen_metrics::Moments;

use super::baseline::TrivialBaseline;
use super::names;
use super::steps::fixed_batch;
use super::{Context, TrainResult};
use crate::config::TrainConfig;
use crate::evaluate::{Objective, host_outputs};
use crate::model::Network;
use crate::state::step_seed;
use regimen_doctor::{Check, CheckStatus};

/// Loss at init over its expected value above which the check WARNs: the network starts
/// noticeably overconfident (for 5 classes, logits with a standard deviation of about 2).
pub const INIT_LOSS_WARN_RATIO: f64 = 1.5;

/// Loss at init over its expected value above which the check FAILs: the network starts so
/// confidently wrong that something is miswired (unnormalized inputs, a huge init, a loss on
/// probabilities).
pub const INIT_LOSS_FAIL_RATIO: f64 = 5.0;

/// How far below the best constant model's loss (as a fraction of the expected loss) a loss at
/// init may be before it is suspicious: an untrained model cannot know the labels.
pub const INIT_LOSS_LOW_MARGIN: f64 = 0.1;

/// Relative drop of the loss at init from setting the output bias above which `init_well` WARNs:
/// training would spend its first steps learning the bias.
pub const INIT_WELL_GAIN_WARN: f64 = 0.2;

/// What the two init checks measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InitMeasurement {
    /// Samples the loss was measured on.
    pub samples: usize,
    /// Mean loss of the fresh model (training mode, as the first step sees it).
    pub loss: f64,
    /// Standard deviation of the fresh model's outputs.
    pub output_std: f64,
    /// Mean loss with the output bias set from the trivial baseline; `None` when the model has no
    /// recognizable output bias.
    pub well_loss: Option<f64>,
}

/// Finds the model's output bias: its last trainable parameter, when that is a vector of
/// `outputs` values.
struct LastParam {
    last: Option<(ParamId, Vec<usize>)>,
}

impl ModuleVisitor for LastParam {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if value.is_require_grad() {
            self.last = Some((param.id, value.dims().to_vec()));
        }
    }
}

/// Replaces the parameter `id` with `values`.
struct SetParam {
    id: ParamId,
    values: Vec<f32>,
}

impl ModuleMapper for SetParam {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if param.id != self.id {
            return param;
        }
        let values = std::mem::take(&mut self.values);
        param.map(|tensor| {
            let require_grad = tensor.is_require_grad();
            Tensor::<D>::from_data(TensorData::new(values, tensor.shape()), &tensor.device())
                .set_require_grad(require_grad)
        })
    }
}

/// `model` with its output bias set to `bias`; `None` when its last trainable parameter is not a
/// vector of `bias.len()` values.
pub(crate) fn with_output_bias<M: Network>(model: M, bias: &[f32]) -> Option<M> {
    let mut finder = LastParam { last: None };
    model.visit(&mut finder);
    match finder.last {
        Some((id, dims)) if dims == [bias.len()] => Some(model.map(&mut SetParam { id, values: bias.to_vec() })),
        _ => None,
    }
}

/// Mean loss and outputs of `model` on the first `samples` training samples of epoch 1, in
/// training mode, without updating it.
fn mean_loss<M: Network>(
    ctx: &Context<'_>,
    model: &M,
    objective: &Objective,
    indices: &[u32],
) -> TrainResult<(f64, Vec<f32>)> {
    let device = &ctx.device;
    device.seed(step_seed(ctx.config.seed, 0));
    let (mut total, mut outputs) = (0.0, Vec::new());
    for chunk in indices.chunks(ctx.config.batch_size.max(2)) {
        let mut batch = fixed_batch(&ctx.data.train, chunk);
        let out = model.forward(batch.input(device)).detach();
        let loss: f32 = objective.loss(out.clone(), &batch.targets, device).into_scalar();
        total += f64::from(loss) * chunk.len() as f64;
        outputs.extend(host_outputs(out)?);
    }
    Ok((total / indices.len().max(1) as f64, outputs))
}

/// Measures the loss at init of a fresh model, and again with its output bias set from the
/// trivial baseline.
pub(crate) fn measure<M: Network>(
    ctx: &Context<'_>,
    build: &dyn Fn(&TrainConfig) -> TrainResult<M>,
) -> TrainResult<InitMeasurement> {
    let model = build(ctx.config)?;
    let n = ctx.options.init_samples.min(ctx.data.train.len());
    let order = epoch_order(ctx.config.seed, 1, ctx.data.train.len());
    let indices = &order[..n];
    let objective = Objective::for_task(&ctx.data.task, ctx.config.label_smoothing, &ctx.device);
    let (loss, outputs) = mean_loss(ctx, &model, &objective, indices)?;
    let output_std = Moments::of(outputs.iter().map(|&v| f64::from(v))).std().unwrap_or(0.0);
    let well_loss = match with_output_bias(model, &ctx.baseline.output_bias()) {
        Some(model) => Some(mean_loss(ctx, &model, &objective, indices)?.0),
        None => None,
    };
    Ok(InitMeasurement { samples: n, loss, output_std, well_loss })
}

/// `loss_at_init`: PASS when the loss of the fresh model is within [`INIT_LOSS_WARN_RATIO`] of
/// its expected value (`ln C`, or the mean square of the targets) and not suspiciously low; WARN
/// above that ratio or when below the best constant model's loss by more than
/// [`INIT_LOSS_LOW_MARGIN`]; FAIL above [`INIT_LOSS_FAIL_RATIO`] or when not finite.
pub(crate) fn judge_loss_at_init(m: &InitMeasurement, baseline: &TrivialBaseline) -> Check {
    let expected = baseline.neutral_loss();
    let constant = baseline.constant_loss();
    let ratio = if expected > 0.0 { m.loss / expected } else { f64::NAN };
    let (expected_text, constant_text) = match baseline {
        TrivialBaseline::Classification { priors, .. } => (
            format!("ln {} = {} for outputs that favour no class", priors.len(), fmt_num(expected)),
            format!("the entropy of the label priors, {}", fmt_num(constant)),
        ),
        TrivialBaseline::Regression { .. } => (
            format!("{} (the mean square of the targets) for outputs near zero", fmt_num(expected)),
            format!("the target variance, {}", fmt_num(constant)),
        ),
    };
    let numbers =
        format!("Loss at init is {} on {} train samples; expected {expected_text}", fmt_num(m.loss), m.samples);
    let check = if !m.loss.is_finite() {
        Check::fail(names::LOSS_AT_INIT, format!("{numbers}: the loss is not finite before any training."))
            .with_advice("Look for NaN or infinite inputs (see finite_features) and for a loss computed on values it cannot take (log of zero).")
    } else if ratio > INIT_LOSS_FAIL_RATIO || ratio > INIT_LOSS_WARN_RATIO {
        let status = if ratio > INIT_LOSS_FAIL_RATIO { CheckStatus::Fail } else { CheckStatus::Warn };
        Check::new(
            names::LOSS_AT_INIT,
            status,
            format!(
                "{numbers}: {}x too high. The network starts confidently wrong (outputs have a standard deviation of {}).",
                fmt_num(ratio),
                fmt_num(m.output_std)
            ),
        )
        .with_advice(
            "Check that inputs are normalized (drop --no-normalize), that the last layer starts small, and that the loss gets \
             raw outputs (logits), not probabilities; for regression, standardize the targets.",
        )
    } else if m.loss < constant - INIT_LOSS_LOW_MARGIN * expected {
        Check::warn(
            names::LOSS_AT_INIT,
            format!("{numbers}: it is already below {constant_text}, which an untrained model cannot know."),
        )
        .with_advice("Look for labels leaking into the inputs, and check that the loss is the one you think (mean, not sum; right targets).")
    } else {
        Check::pass(names::LOSS_AT_INIT, format!("{numbers} ({} of it).", pct(ratio)))
    };
    check
        .with("loss", num(m.loss))
        .with("expected", num(expected))
        .with("ratio", num(ratio))
        .with("constant_model_loss", num(constant))
        .with("output_std", num(m.output_std))
        .with("samples", m.samples)
}

/// `init_well`: the loss at init with the output bias set to the log priors (or the target
/// mean). PASS when that changes the loss by less than [`INIT_WELL_GAIN_WARN`] (balanced classes,
/// centred targets), WARN above: the first steps of training would go to learning the bias.
/// PASS, marked skipped, when the model has no recognizable output bias.
pub(crate) fn judge_init_well(m: &InitMeasurement, baseline: &TrivialBaseline) -> Check {
    let constant = baseline.constant_loss();
    let what = match baseline {
        TrivialBaseline::Classification { .. } => "the log class priors",
        TrivialBaseline::Regression { .. } => "the target mean",
    };
    let Some(well) = m.well_loss else {
        return Check::pass(
            names::INIT_WELL,
            format!(
                "Skipped: the model's last parameter is not an output bias, so it cannot be set to {what}; a model that ignores \
                 its input reaches a loss of {} ({}).",
                fmt_num(constant),
                baseline.describe()
            ),
        )
        .with("skipped", true)
        .with("constant_model_loss", num(constant));
    };
    let gain = if m.loss > 0.0 { 1.0 - well / m.loss } else { 0.0 };
    let numbers =
        format!("With the output bias set to {what}, the loss at init is {} (from {})", fmt_num(well), fmt_num(m.loss));
    let check = if baseline.balanced() {
        Check::pass(
            names::INIT_WELL,
            format!(
                "{numbers}: the classes are balanced, so the log priors are one constant that changes no probability."
            ),
        )
    } else if gain > INIT_WELL_GAIN_WARN {
        let advice = match baseline {
            TrivialBaseline::Classification { .. } => {
                "Expect a hockey-stick start while the network learns the class priors; with strong imbalance also weight the \
                 loss or oversample the rare classes."
            }
            TrivialBaseline::Regression { .. } => {
                "Standardize the targets (subtract the mean, divide by the standard deviation) so that the network does not \
                 spend its first steps learning their offset and scale."
            }
        };
        Check::warn(
            names::INIT_WELL,
            format!(
                "{numbers}, {} lower; the best constant model reaches {}. Training will spend its first steps learning this bias.",
                pct(gain),
                fmt_num(constant)
            ),
        )
        .with_advice(advice)
    } else {
        Check::pass(
            names::INIT_WELL,
            format!(
                "{numbers}, close to the {} of the best constant model: the default init is fine.",
                fmt_num(constant)
            ),
        )
    };
    check
        .with("loss", num(m.loss))
        .with("loss_with_bias", num(well))
        .with("gain", num(gain))
        .with("constant_model_loss", num(constant))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mlp, MlpConfig};

    fn balanced(k: usize) -> TrivialBaseline {
        TrivialBaseline::Classification { priors: vec![1.0 / k as f64; k], smoothing: 0.0 }
    }

    fn measured(loss: f64, well: Option<f64>) -> InitMeasurement {
        InitMeasurement { samples: 512, loss, output_std: 0.5, well_loss: well }
    }

    #[test]
    fn loss_near_ln_c_passes_and_far_above_warns_then_fails() {
        let b = balanced(5);
        assert_eq!(judge_loss_at_init(&measured(1.7, None), &b).status, CheckStatus::Pass);
        let warn = judge_loss_at_init(&measured(3.0, None), &b);
        assert_eq!(warn.status, CheckStatus::Warn, "{warn:?}");
        assert!(warn.message.contains("too high"), "{}", warn.message);
        assert_eq!(judge_loss_at_init(&measured(40.0, None), &b).status, CheckStatus::Fail);
        assert_eq!(judge_loss_at_init(&measured(f64::NAN, None), &b).status, CheckStatus::Fail);
        let low = judge_loss_at_init(&measured(0.2, None), &b);
        assert_eq!(low.status, CheckStatus::Warn);
        assert!(low.message.contains("cannot know"), "{}", low.message);
        assert_eq!(low.measured["expected"], num(5f64.ln()));
    }

    #[test]
    fn init_well_warns_only_when_the_bias_would_matter() {
        let imbalanced = TrivialBaseline::Classification { priors: vec![0.95, 0.05], smoothing: 0.0 };
        let warn = judge_init_well(&measured(0.7, Some(0.22)), &imbalanced);
        assert_eq!(warn.status, CheckStatus::Warn, "{warn:?}");
        assert!(warn.message.contains("log class priors"), "{}", warn.message);
        assert_eq!(judge_init_well(&measured(0.7, Some(0.66)), &imbalanced).status, CheckStatus::Pass);
        let even = judge_init_well(&measured(1.7, Some(1.7)), &balanced(5));
        assert_eq!(even.status, CheckStatus::Pass);
        assert!(even.message.contains("balanced"), "{}", even.message);
        let skipped = judge_init_well(&measured(1.7, None), &balanced(5));
        assert_eq!(skipped.measured["skipped"], true);
        let regression = TrivialBaseline::Regression { mean: 100.0, variance: 4.0 };
        let warn = judge_init_well(&measured(10_004.0, Some(5.0)), &regression);
        assert!(warn.advice.unwrap_or_default().contains("Standardize"));
    }

    #[test]
    fn the_output_bias_is_the_last_parameter_and_setting_it_moves_the_outputs() {
        let device = Device::flex().autodiff();
        let model: Mlp = MlpConfig {
            inputs: 2,
            hidden: vec![3],
            outputs: 2,
            activation: "relu".into(),
            dropout: 0.0,
            batch_norm: true,
        }
        .init(&device);
        let input = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, -1.0, 0.5], [2, 2]), &device);
        let before = host_outputs(model.forward(input.clone())).expect("outputs");
        let model = with_output_bias(model, &[10.0, -10.0]).expect("the MLP ends in a bias of 2");
        let after = host_outputs(model.forward(input)).expect("outputs");
        // Only the bias changed: every output moved by (new bias - old bias), the same per column.
        let shift = [after[0] - before[0], after[1] - before[1]];
        assert!((after[2] - before[2] - shift[0]).abs() < 1e-4 && (after[3] - before[3] - shift[1]).abs() < 1e-4);
        assert!(shift[0] - shift[1] > 15.0, "{shift:?}");
        let model = with_output_bias(model, &[0.0; 3]);
        assert!(model.is_none(), "3 values do not fit an output of 2");
    }
}
