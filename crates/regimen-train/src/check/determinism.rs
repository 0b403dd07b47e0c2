//! `determinism`: the recipe's "fix the random seed", verified.
//!
//! Two short runs from the same seed, with everything the run would use (augmentation, dropout,
//! the data order), must produce the same losses bit for bit; otherwise no comparison between two
//! runs means anything, and a resumed run would not continue the interrupted one. Regimen seeds
//! everything from the run's seed, so on the CPU a difference is a bug; on a GPU, some kernels
//! (atomic additions) are not deterministic, which shows as tiny differences.

use regimen_doctor::format::{fmt_num, num, nums};
use serde_json::Value;

use super::names;
use super::steps::{Probe, Stepper, TrainBatches};
use super::{Context, TrainResult};
use crate::config::TrainConfig;
use crate::model::Network;
use regimen_doctor::Check;

/// Largest relative difference between the two runs' losses still put down to floating-point
/// nondeterminism of GPU kernels (WARN rather than FAIL).
pub const FLOAT_NOISE: f64 = 1e-4;

/// The losses of `steps` steps of a fresh model, as the run would take them.
pub(crate) fn losses<M: Network>(
    ctx: &Context<'_>,
    build: &dyn Fn(&TrainConfig) -> TrainResult<M>,
) -> TrainResult<Vec<f64>> {
    let config = ctx.config;
    let mut model = build(config)?;
    let mut stepper = Stepper::new(config, &ctx.data.task, config.label_smoothing, &ctx.device);
    let mut losses = Vec::new();
    for mut batch in TrainBatches::new(&ctx.data.train, config, true).take(ctx.options.determinism_steps as usize) {
        let (updated, result) = stepper.step(model, &mut batch, config.lr, &ctx.device, Probe::Off);
        model = updated;
        let result = result?;
        losses.push(result.loss);
    }
    Ok(losses)
}

/// `determinism`: PASS when both runs' losses are bitwise identical; WARN when they differ by at
/// most [`FLOAT_NOISE`] (relative) on a GPU device; FAIL otherwise.
pub(crate) fn judge(first: &[f64], second: &[f64], seed: u64, device: &str) -> Check {
    let differing = first.iter().zip(second).position(|(a, b)| a.to_bits() != b.to_bits());
    let largest = first
        .iter()
        .zip(second)
        .map(|(a, b)| (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE))
        .fold(0.0, f64::max);
    let steps = first.len().min(second.len());
    let gpu = device != "cpu" && !device.starts_with("cpu:");
    let check = match differing {
        None if first.len() == second.len() => Check::pass(
            names::DETERMINISM,
            format!("Two runs of {steps} steps from seed {seed} gave bitwise identical losses (last {})", fmt_num(first.last().copied().unwrap_or(f64::NAN)))
                + ".",
        ),
        None => Check::fail(names::DETERMINISM, format!("Two runs from seed {seed} took different numbers of steps ({} and {}).", first.len(), second.len())),
        Some(step) if gpu && largest <= FLOAT_NOISE => Check::warn(
            names::DETERMINISM,
            format!(
                "Two runs from seed {seed} differ from step {} on, by at most {} (relative): floating-point nondeterminism of the \
                 {device} kernels.",
                step + 1,
                fmt_num(largest)
            ),
        )
        .with_advice("Compare runs over several seeds rather than bit for bit, or use --device cpu where exact repeats matter."),
        Some(step) => Check::fail(
            names::DETERMINISM,
            format!(
                "Two runs from seed {seed} differ from step {}: loss {} against {} (largest relative difference {}). Something \
                 random is not seeded from --seed.",
                step + 1,
                fmt_num(first[step]),
                fmt_num(second[step]),
                fmt_num(largest)
            ),
        )
        .with_advice("Look for randomness outside the seeded streams: a model or data loader using its own RNG, thread-dependent reductions, or time-based seeds."),
    };
    check
        .with("steps", steps)
        .with("seed", seed)
        .with("first_difference_step", differing.map_or(Value::Null, |s| Value::from(s + 1)))
        .with("max_relative_difference", num(largest))
        .with("losses", nums(first.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use regimen_doctor::CheckStatus;

    #[test]
    fn identical_losses_pass_and_differences_fail_or_warn_on_a_gpu() {
        let a = [1.6, 1.5, 1.4];
        assert_eq!(judge(&a, &a, 42, "cpu").status, CheckStatus::Pass);
        let b = [1.6, 1.5, 1.4000001];
        let check = judge(&a, &b, 42, "cpu");
        assert_eq!(check.status, CheckStatus::Fail);
        assert_eq!(check.measured["first_difference_step"], 3);
        assert_eq!(judge(&a, &b, 42, "cuda:0").status, CheckStatus::Warn);
        assert_eq!(judge(&a, &[1.6, 1.7, 1.4], 42, "cuda:0").status, CheckStatus::Fail);
    }
}
