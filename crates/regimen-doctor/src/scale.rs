//! The scale of what reaches the network: whether the inputs look normalized, and outliers.
//!
//! Default initializations and learning rates assume inputs of mean 0 and standard deviation 1:
//! pixels from 0 to 255 make the first layer's pre-activations hundreds of times too large,
//! saturate activations and blow up the first gradients. The check reads the train split exactly as
//! the network will see it (after normalization, when the run normalizes) and computes the mean and
//! standard deviation per normalization group (per channel for images, per column for tables, as
//! `regimen_data::normalize` does), plus the raw range for reference.
//!
//! Normalized but heavy-tailed data is judged separately: a value 45 standard deviations out is a
//! broken row or a column that wants a log transform, and it is what "plot the outliers" means.

use serde_json::json;

use crate::format::{fmt_num, num};
use crate::stats::{LayoutText, stats};
use crate::{Check, CheckStatus, Splits};
use regimen_data::Samples;

/// Largest absolute per-group mean for inputs to count as centred. Normalization fitted on the
/// train split makes it 0 up to rounding; 0.1 leaves room for inputs a user normalized with
/// statistics of the whole dataset.
pub const NORMALIZED_MEAN_TOLERANCE: f64 = 0.1;

/// Smallest per-group standard deviation for inputs to count as scaled (constant groups excepted).
pub const NORMALIZED_STD_MIN: f64 = 0.5;

/// Largest per-group standard deviation for inputs to count as scaled.
pub const NORMALIZED_STD_MAX: f64 = 2.0;

/// Largest absolute input value tolerated from unnormalized data before the check FAILs instead of
/// warning. Unnormalized inputs in `[0, 1]` or `[-1, 1]` train, only slower; at 100 and beyond
/// (0–255 pixels, raw prices or counts) default initializations produce pre-activations in the
/// hundreds and training usually diverges or stalls.
pub const UNNORMALIZED_FAIL_ABS: f64 = 100.0;

/// Largest absolute value in normalized inputs (that is, in train standard deviations) before an
/// outlier is reported (WARN). Per-channel normalized images stay within about ±5; values beyond 20
/// come from broken rows or heavy tails.
pub const OUTLIER_WARN_ABS: f64 = 20.0;

/// `input_scale`: whether `seen_train`, the train split as the network sees it, looks normalized.
/// FAIL when it does not ([`NORMALIZED_MEAN_TOLERANCE`], [`NORMALIZED_STD_MIN`],
/// [`NORMALIZED_STD_MAX`]) and values beyond [`UNNORMALIZED_FAIL_ABS`] reach the network; WARN when
/// it does not but values stay small, or when it does but a value lies beyond [`OUTLIER_WARN_ABS`].
/// `splits.train` (raw) only provides the raw range for the message.
pub fn input_scale(splits: &Splits<'_>, seen_train: &Samples) -> Check {
    let layout = seen_train.layout();
    let seen = stats(seen_train);
    let raw = stats(splits.train);
    let per = layout.per();

    // Groups that vary; constant ones have std 0 in any scaling and say nothing about it.
    let varying: Vec<usize> = (0..seen.std.len()).filter(|&g| seen.std[g] > 1e-6).collect();
    let worst_mean = (0..seen.mean.len()).max_by(|&a, &b| seen.mean[a].abs().total_cmp(&seen.mean[b].abs()));
    let worst_std = varying.iter().copied().max_by(|&a, &b| seen.std[a].ln().abs().total_cmp(&seen.std[b].ln().abs()));
    let mean_abs_max = worst_mean.map_or(0.0, |g| seen.mean[g].abs());
    let (std_min, std_max) =
        varying.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &g| (lo.min(seen.std[g]), hi.max(seen.std[g])));
    let centred = mean_abs_max <= NORMALIZED_MEAN_TOLERANCE;
    let scaled = varying.is_empty() || (std_min >= NORMALIZED_STD_MIN && std_max <= NORMALIZED_STD_MAX);
    let (abs_max, at) = seen.abs_max;
    let range = format!("values in [{}, {}]", fmt_num(seen.min), fmt_num(seen.max));
    let raw_range = format!("raw [{}, {}]", fmt_num(raw.min), fmt_num(raw.max));

    // The group that is furthest from mean 0 / std 1, for the message.
    let off = match (centred, worst_mean, worst_std) {
        (false, Some(g), _) | (true, _, Some(g)) => Some(g),
        _ => worst_mean,
    };
    let describe_group =
        |g: usize| format!("{per} {g} has mean {} and std {}", fmt_num(seen.mean[g]), fmt_num(seen.std[g]));
    let location =
        at.map(|(sample, feature)| format!("sample {sample}, {}", layout.describe(feature))).unwrap_or_default();

    let (status, message, advice) = if seen.finite == 0 {
        (CheckStatus::Pass, "No finite input values to measure.".to_owned(), None)
    } else if !(centred && scaled) {
        let group = off.map(describe_group).unwrap_or_default();
        if abs_max > UNNORMALIZED_FAIL_ABS {
            (
                CheckStatus::Fail,
                format!(
                    "Inputs reach the network unnormalized, with {range} ({group}), about {}x the unit scale default initializations assume: first-layer activations saturate and the first gradients blow up.",
                    fmt_num(seen.mean_all.hypot(seen.std_all))
                ),
                Some(
                    "Turn normalization on (drop --no-normalize), or scale the inputs to mean 0 and std 1 yourself, using train statistics only.",
                ),
            )
        } else {
            (
                CheckStatus::Warn,
                format!(
                    "Inputs do not look normalized: {group}; {range}. Training works but needs a smaller learning rate and converges slower."
                ),
                Some(
                    "Turn normalization on (drop --no-normalize): mean-0, std-1 inputs let default initializations and learning rates work.",
                ),
            )
        }
    } else if abs_max > OUTLIER_WARN_ABS {
        (
            CheckStatus::Warn,
            format!(
                "Inputs are normalized, but {location} is {} standard deviations from its mean; {range}. Such outliers dominate a batch's gradient.",
                fmt_num(abs_max)
            ),
            Some(
                "Look at that sample: fix or drop broken rows, clip extreme values, or log-transform heavy-tailed columns before normalizing.",
            ),
        )
    } else {
        (
            CheckStatus::Pass,
            format!(
                "Inputs look normalized: per-{per} means within ±{mean_abs_max:.3}, stds {:.2} to {std_max:.2}; {range} ({raw_range}).",
                if std_min.is_finite() { std_min } else { 0.0 },
            ),
            None,
        )
    };
    let mut check = Check::new("input_scale", status, message);
    if let Some(advice) = advice {
        check = check.with_advice(advice);
    }
    check
        .with("per", per)
        .with("groups", seen.mean.len())
        .with("mean_abs_max", num(mean_abs_max))
        .with("std_min", num(std_min))
        .with("std_max", num(std_max))
        .with("min", num(seen.min))
        .with("max", num(seen.max))
        .with("abs_max", num(abs_max))
        .with(
            "abs_max_at",
            at.map_or(serde_json::Value::Null, |(sample, feature)| json!({"sample": sample, "feature": feature})),
        )
        .with("raw_min", num(raw.min))
        .with("raw_max", num(raw.max))
        .with("raw_mean", num(raw.mean_all))
        .with("raw_std", num(raw.std_all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{classes, random_rows};
    use regimen_data::Normalization;

    fn run(raw: &Samples, seen: &Samples) -> Check {
        let task = classes(2);
        input_scale(&Splits { task: &task, train: raw, val: raw, test: raw }, seen)
    }

    fn normalized(raw: &Samples) -> Samples {
        let mut seen = raw.clone();
        Normalization::fit(raw).apply(&mut seen);
        seen
    }

    #[test]
    fn normalized_inputs_pass() {
        let raw = random_rows(500, 4, 2, 0);
        let check = run(&raw, &normalized(&raw));
        assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
        assert!(check.measured["mean_abs_max"].as_f64().is_some_and(|m| m < 1e-3));
        assert_eq!(check.measured["per"], "column");
    }

    #[test]
    fn inputs_scaled_by_1000_fail_unnormalized() {
        let mut raw = random_rows(500, 4, 2, 0);
        raw.features.iter_mut().for_each(|v| *v = (*v + 1.0) * 1000.0);
        let check = run(&raw, &raw);
        assert_eq!(check.status, CheckStatus::Fail, "{check:?}");
        assert!(check.measured["abs_max"].as_f64().is_some_and(|m| m > 1900.0));
        assert!(check.advice.as_deref().is_some_and(|a| a.contains("--no-normalize")));
        // The same data normalized passes.
        assert_eq!(run(&raw, &normalized(&raw)).status, CheckStatus::Pass);
    }

    #[test]
    fn unit_range_images_warn() {
        let mut raw = random_rows(50, 2 * 4 * 4, 2, 0);
        raw.shape = vec![2, 4, 4];
        raw.features.iter_mut().for_each(|v| *v = (*v + 1.0) / 2.0);
        let check = run(&raw, &raw);
        assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
        assert_eq!(check.measured["per"], "channel");
        assert_eq!(check.measured["groups"], 2);
        assert!(check.message.contains("channel"), "{}", check.message);
        assert_eq!(run(&raw, &normalized(&raw)).status, CheckStatus::Pass);
    }

    #[test]
    fn outliers_warn() {
        let mut raw = random_rows(5000, 3, 2, 0);
        raw.features[3 * 4321 + 2] = 1000.0;
        let check = run(&raw, &normalized(&raw));
        assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
        assert_eq!(check.measured["abs_max_at"], json!({"sample": 4321, "feature": 2}));
        assert!(check.message.contains("sample 4321, column 2"), "{}", check.message);
    }

    #[test]
    fn constant_columns_do_not_count_as_unscaled() {
        let mut raw = random_rows(200, 3, 2, 0);
        for row in raw.features.chunks_exact_mut(3) {
            row[1] = 0.0;
        }
        assert_eq!(run(&raw, &normalized(&raw)).status, CheckStatus::Pass);
    }
}
