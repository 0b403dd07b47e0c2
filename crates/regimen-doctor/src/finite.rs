//! Values a network cannot learn from: NaN or infinite inputs, labels outside the class list, NaN or
//! huge regression targets.
//!
//! One NaN input makes the loss of its batch NaN, and from there every weight, so these come first
//! in the report and are failures. The scan is a vectorizable `all(is_finite)` per split, with a
//! detailed pass only when something is found, so clean data costs one read.

use serde_json::json;

use crate::format::{fmt_count, fmt_num, num};
use crate::stats::{LayoutText, rows};
use crate::{Check, Splits};
use regimen_data::{Samples, Targets, Task};
use regimen_metrics::Moments;

/// Regression targets whose train mean or standard deviation exceeds this in absolute value get a
/// WARN: with targets in the thousands a mean-squared-error loss starts in the millions, its
/// gradients dwarf those of a sensible learning rate, and the output layer must learn a huge bias
/// first. Standardized targets (or a unit change) avoid all of that.
pub const TARGET_SCALE_WARN: f64 = 100.0;

/// Non-finite values found in one split.
#[derive(Debug, Default)]
struct Found {
    nan: usize,
    inf: usize,
    rows: usize,
    first: Option<(usize, usize)>,
}

fn scan(samples: &Samples) -> Found {
    let mut found = Found::default();
    if samples.features.iter().all(|v| v.is_finite()) {
        return found;
    }
    for (i, row) in rows(samples).enumerate() {
        if row.iter().all(|v| v.is_finite()) {
            continue;
        }
        found.rows += 1;
        for (j, v) in row.iter().enumerate() {
            if v.is_nan() {
                found.nan += 1;
            } else if v.is_infinite() {
                found.inf += 1;
            } else {
                continue;
            }
            found.first.get_or_insert((i, j));
        }
    }
    found
}

/// `finite_features`: FAIL when any feature of any split is NaN or infinite, naming the first one
/// (split, sample and feature index, all 0-based); PASS otherwise.
pub fn finite_features(splits: &Splits<'_>) -> Check {
    let layout = splits.train.layout();
    let (mut nan, mut inf, mut affected) = (json!({}), json!({}), json!({}));
    let (mut total_nan, mut total_inf, mut total_rows, mut total_values, mut total_samples) = (0, 0, 0, 0, 0);
    let mut first = None;
    for (name, samples) in splits.each() {
        let found = scan(samples);
        let key = name.to_string();
        nan[&key] = found.nan.into();
        inf[&key] = found.inf.into();
        affected[&key] = found.rows.into();
        total_nan += found.nan;
        total_inf += found.inf;
        total_rows += found.rows;
        total_values += samples.features.len();
        total_samples += samples.len();
        if first.is_none() {
            first = found.first.map(|(i, j)| (name, i, j));
        }
    }
    let check = match first {
        None => Check::pass("finite_features", format!("No NaN or infinite value among {} feature values.", fmt_count(total_values))),
        Some((split, sample, feature)) => Check::fail(
            "finite_features",
            format!(
                "{} NaN and {} infinite feature values, in {} of {} samples; the first is {split} sample {sample}, {}. One NaN input makes the loss NaN.",
                fmt_count(total_nan),
                fmt_count(total_inf),
                fmt_count(total_rows),
                fmt_count(total_samples),
                layout.describe(feature)
            ),
        )
        .with_advice(
            "Find where they come from (an empty CSV cell, a division by zero in preprocessing, a corrupt file) and fix, impute or drop those rows before training.",
        )
        .with("first", json!({"split": split.to_string(), "sample": sample, "feature": feature})),
    };
    check.with("nan", nan).with("inf", inf).with("rows_affected", affected)
}

/// `valid_targets`: for classification, FAIL when a label is not below the number of classes; for
/// regression, FAIL when a target is NaN or infinite and WARN when the train targets' mean or
/// standard deviation exceeds [`TARGET_SCALE_WARN`].
pub fn valid_targets(splits: &Splits<'_>) -> Check {
    match splits.task {
        Task::Classification { classes } => class_targets(splits, classes.len()),
        Task::Regression => value_targets(splits),
    }
}

fn class_targets(splits: &Splits<'_>, classes: usize) -> Check {
    let mut out_of_range = json!({});
    let (mut total, mut first) = (0usize, None);
    for (name, samples) in splits.each() {
        let mut count = 0;
        if let Targets::Classes(labels) = &samples.targets {
            for (i, &label) in labels.iter().enumerate() {
                if label as usize >= classes {
                    count += 1;
                    first.get_or_insert((name, i, label));
                }
            }
        }
        out_of_range[name.to_string()] = count.into();
        total += count;
    }
    let check = match first {
        None => Check::pass("valid_targets", format!("Every label names one of the {classes} classes.")),
        Some((split, sample, label)) => Check::fail(
            "valid_targets",
            format!(
                "{} labels are not below the number of classes ({classes}); the first is label {label} of {split} sample {sample}. The loss would index past the model's outputs.",
                fmt_count(total)
            ),
        )
        .with_advice("Declare every class (--classes), or fix the label column: labels must be 0 to classes - 1.")
        .with("first", json!({"split": split.to_string(), "sample": sample, "label": label})),
    };
    check.with("classes", classes).with("out_of_range", out_of_range)
}

fn value_targets(splits: &Splits<'_>) -> Check {
    let mut non_finite = json!({});
    let (mut total, mut first) = (0usize, None);
    for (name, samples) in splits.each() {
        let mut count = 0;
        if let Targets::Values(values) = &samples.targets {
            for (i, v) in values.iter().enumerate() {
                if !v.is_finite() {
                    count += 1;
                    first.get_or_insert((name, i, *v));
                }
            }
        }
        non_finite[name.to_string()] = count.into();
        total += count;
    }
    let (mean, std) = match &splits.train.targets {
        Targets::Values(values) => mean_std(values),
        Targets::Classes(_) => (0.0, 0.0),
    };
    let check = if let Some((split, sample, value)) = first {
        Check::fail(
            "valid_targets",
            format!(
                "{} regression targets are NaN or infinite; the first is {split} sample {sample} ({value}). The loss would be NaN.",
                fmt_count(total)
            ),
        )
        .with_advice("Drop or fix the rows whose target is missing; a model cannot learn from an unknown answer.")
        .with("first", json!({"split": split.to_string(), "sample": sample}))
    } else if mean.abs() > TARGET_SCALE_WARN || std > TARGET_SCALE_WARN {
        Check::warn(
            "valid_targets",
            format!(
                "Train targets have mean {} and std {}: a squared-error loss starts near {} and the output must first learn a huge offset.",
                fmt_num(mean),
                fmt_num(std),
                fmt_num(mean * mean + std * std)
            ),
        )
        .with_advice("Standardize the targets (subtract the train mean, divide by the train std) or change their unit, and undo it when reporting errors.")
    } else {
        Check::pass(
            "valid_targets",
            format!("All regression targets are finite; train mean {}, std {}.", fmt_num(mean), fmt_num(std)),
        )
    };
    check.with("non_finite", non_finite).with("train_mean", num(mean)).with("train_std", num(std))
}

/// Mean and population standard deviation of the finite values.
pub(crate) fn mean_std(values: &[f32]) -> (f64, f64) {
    let moments = Moments::of(values.iter().filter(|v| v.is_finite()).map(|&v| f64::from(v)));
    (moments.mean().unwrap_or(0.0), moments.std().unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus;
    use crate::testing::{classes, random_rows};

    #[test]
    fn clean_features_pass() {
        let (train, val, test) = (random_rows(20, 3, 2, 0), random_rows(5, 3, 2, 100), random_rows(5, 3, 2, 200));
        let task = classes(2);
        let check = finite_features(&Splits { task: &task, train: &train, val: &val, test: &test });
        assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
        assert_eq!(check.measured["nan"], json!({"train": 0, "val": 0, "test": 0}));
        assert!(check.message.contains("90 feature values"), "{}", check.message);
    }

    #[test]
    fn nan_fails_and_names_the_first() {
        let (train, mut val, mut test) =
            (random_rows(20, 3, 2, 0), random_rows(5, 3, 2, 100), random_rows(5, 3, 2, 200));
        val.features[2 * 3 + 1] = f32::NAN;
        val.features[4 * 3] = f32::NAN;
        test.features[0] = f32::NEG_INFINITY;
        let task = classes(2);
        let check = finite_features(&Splits { task: &task, train: &train, val: &val, test: &test });
        assert_eq!(check.status, CheckStatus::Fail);
        assert_eq!(check.measured["first"], json!({"split": "val", "sample": 2, "feature": 1}));
        assert_eq!(check.measured["nan"]["val"], 2);
        assert_eq!(check.measured["inf"]["test"], 1);
        assert_eq!(check.measured["rows_affected"], json!({"train": 0, "val": 2, "test": 1}));
        assert!(check.message.contains("val sample 2, column 1"), "{}", check.message);
        assert!(check.advice.is_some());
    }

    #[test]
    fn nan_in_an_image_names_the_pixel() {
        let mut train = random_rows(4, 2 * 3 * 3, 2, 0);
        train.shape = vec![2, 3, 3];
        train.features[18 + 9 + 4] = f32::NAN;
        let task = classes(2);
        let check = finite_features(&Splits { task: &task, train: &train, val: &train, test: &train });
        assert!(check.message.contains("train sample 1, pixel 13 (channel 1, y 1, x 1)"), "{}", check.message);
    }

    #[test]
    fn labels_out_of_range_fail() {
        let (train, val, mut test) = (random_rows(20, 3, 2, 0), random_rows(5, 3, 2, 100), random_rows(5, 3, 2, 200));
        let task = classes(2);
        assert_eq!(
            valid_targets(&Splits { task: &task, train: &train, val: &val, test: &test }).status,
            CheckStatus::Pass
        );
        test.targets = Targets::Classes(vec![0, 1, 2, 1, 0]);
        let check = valid_targets(&Splits { task: &task, train: &train, val: &val, test: &test });
        assert_eq!(check.status, CheckStatus::Fail);
        assert_eq!(check.measured["first"], json!({"split": "test", "sample": 2, "label": 2}));
        assert_eq!(check.measured["out_of_range"]["test"], 1);
    }

    #[test]
    fn regression_targets() {
        let mut train = random_rows(20, 3, 2, 0);
        train.targets = Targets::Values((0..20).map(|i| i as f32 / 10.0).collect());
        let task = Task::Regression;
        let ok = valid_targets(&Splits { task: &task, train: &train, val: &train, test: &train });
        assert_eq!(ok.status, CheckStatus::Pass, "{ok:?}");
        assert_eq!(ok.measured["train_mean"], 0.95);

        let mut huge = train.clone();
        huge.targets = Targets::Values((0..20).map(|i| 5000.0 + 300.0 * i as f32).collect());
        let warn = valid_targets(&Splits { task: &task, train: &huge, val: &train, test: &train });
        assert_eq!(warn.status, CheckStatus::Warn, "{warn:?}");

        let mut broken = train.clone();
        broken.targets = Targets::Values((0..20).map(|i| if i == 7 { f32::NAN } else { 1.0 }).collect());
        let fail = valid_targets(&Splits { task: &task, train: &train, val: &broken, test: &train });
        assert_eq!(fail.status, CheckStatus::Fail);
        assert_eq!(fail.measured["first"], json!({"split": "val", "sample": 7}));
    }

    #[test]
    fn mean_std_skips_nan() {
        assert_eq!(mean_std(&[1.0, f32::NAN, 3.0]), (2.0, 1.0));
        assert_eq!(mean_std(&[]), (0.0, 0.0));
    }
}
