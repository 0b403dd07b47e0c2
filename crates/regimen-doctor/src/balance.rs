//! Labels: how many of each class every split holds, and whether train, val and test are labelled
//! alike.
//!
//! Imbalance is not an error (many real tasks are imbalanced) but it changes what a metric means:
//! with 99 samples of one class to 1 of another, always answering the majority class scores 99%
//! accuracy. So it is a warning that names the majority baseline and points at macro F1.
//!
//! Train, val and test should come from one distribution; regimen's splits are stratified, so a
//! difference here means a format's own test split (or a user's) was drawn differently. To tell a
//! real difference from sampling noise in a small split, a shift must be both large (total
//! variation distance, or a standardized mean difference for regression) and unlikely by chance (a
//! chi-square homogeneity test, or a z test on the means).

use serde_json::{Value, json};

use crate::finite::mean_std;
use crate::format::{capitalize, class_name, fmt_count, fmt_num, num, pct};
use crate::{Check, CheckStatus, Splits};
use regimen_data::{Samples, SplitName, Targets, Task};

/// Largest-to-smallest class count ratio above which a split is called imbalanced (WARN). Up to
/// about 10:1, plain cross-entropy and accuracy still behave; beyond it the rare classes are
/// learned late or never and accuracy is dominated by the majority class.
pub const IMBALANCE_WARN_RATIO: f64 = 10.0;

/// Total variation distance between the class proportions of train and val (or test) above which
/// the label distributions differ materially: at 0.1, a tenth of the samples would have to change
/// class to make the splits alike.
pub const LABEL_SHIFT_TV_WARN: f64 = 0.1;

/// Largest p-value at which a difference between splits counts as real rather than sampling noise
/// of a small split (chi-square homogeneity test for classes, z test for regression means). A
/// shift must pass both this and the size threshold to WARN.
pub const LABEL_SHIFT_P_WARN: f64 = 0.001;

/// Standardized mean difference of regression targets (difference of means over the train std)
/// above which val or test is shifted (Cohen's "small" effect is 0.2).
pub const TARGET_SHIFT_SMD_WARN: f64 = 0.25;

/// Ratio of target standard deviations (val or test over train, or its inverse) above which the
/// spread of the targets differs; checked only when both splits have at least
/// [`MIN_SAMPLES_FOR_SPREAD`] targets.
pub const TARGET_SPREAD_RATIO_WARN: f64 = 1.5;

/// Fewest targets in each split for the spread comparison: below 30, a sample standard deviation
/// varies by more than 10% on its own.
pub const MIN_SAMPLES_FOR_SPREAD: usize = 30;

/// Count of each class `0..k` in `samples`; labels out of range are ignored (see `valid_targets`).
fn class_counts(samples: &Samples, k: usize) -> Vec<usize> {
    let mut counts = vec![0; k];
    if let Targets::Classes(labels) = &samples.targets {
        for &label in labels {
            if let Some(c) = counts.get_mut(label as usize) {
                *c += 1;
            }
        }
    }
    counts
}

/// Largest over smallest non-zero count, with the classes holding them; `None` when empty.
fn imbalance(counts: &[usize]) -> Option<(f64, usize, usize)> {
    let big = (0..counts.len()).filter(|&c| counts[c] > 0).max_by_key(|&c| (counts[c], std::cmp::Reverse(c)))?;
    let small = (0..counts.len()).filter(|&c| counts[c] > 0).min_by_key(|&c| (counts[c], c))?;
    Some((counts[big] as f64 / counts[small] as f64, big, small))
}

/// `class_balance`, for classification only (`None` for regression): WARN when a split's
/// largest-to-smallest class ratio exceeds [`IMBALANCE_WARN_RATIO`] or a class is missing from val
/// or test; FAIL when a class has no train sample but appears in val or test (the model can never
/// learn it). Measures the counts, ratios, the share of the largest class (the accuracy of always
/// answering it) and the missing classes, per split.
pub fn class_balance(splits: &Splits<'_>) -> Option<Check> {
    let Task::Classification { classes } = splits.task else { return None };
    let k = classes.len();
    if k < 2 {
        let total: usize = splits.each().iter().map(|(_, s)| s.len()).sum();
        let only = classes.first().map_or("none".to_string(), |c| format!("`{c}`"));
        return Some(
            Check::fail(
                "class_balance",
                format!(
                    "The labels have {k} class ({only}) in {total} samples; a classifier needs at least two classes."
                ),
            )
            .with_advice(
                "Check the label column (--label) and the file: a filter or an export may have kept one class only;                  for a numeric target, use --task regression.",
            )
            .with("classes", k),
        );
    }
    let counts: Vec<(SplitName, Vec<usize>)> =
        splits.each().iter().map(|(name, s)| (*name, class_counts(s, k))).collect();
    let (mut counts_json, mut ratio_json, mut share_json, mut missing_json) =
        (json!({}), json!({}), json!({}), json!({}));
    let mut worst: Option<(f64, SplitName, usize, usize)> = None;
    for (name, c) in &counts {
        let key = name.to_string();
        let total: usize = c.iter().sum();
        counts_json[&key] = json!(c);
        let found = imbalance(c);
        ratio_json[&key] = found.map_or(Value::Null, |(r, _, _)| num(r));
        share_json[&key] = match found {
            Some((_, big, _)) if total > 0 => num(c[big] as f64 / total as f64),
            _ => Value::Null,
        };
        let missing: Vec<String> = (0..k).filter(|&j| c[j] == 0).map(|j| class_name(splits.task, j)).collect();
        missing_json[&key] = json!(missing);
        if let Some((r, big, small)) = found
            && worst.is_none_or(|(w, ..)| r > w)
        {
            worst = Some((r, *name, big, small));
        }
    }

    let train = &counts[0].1;
    let elsewhere = |c: usize| counts[1].1[c] + counts[2].1[c];
    let unlearnable: Vec<usize> = (0..k).filter(|&c| train[c] == 0 && elsewhere(c) > 0).collect();
    let absent: Vec<usize> = (0..k).filter(|&c| train[c] == 0 && elsewhere(c) == 0).collect();
    let unevaluated: Vec<(SplitName, usize)> = counts[1..]
        .iter()
        .flat_map(|(name, c)| (0..k).filter(|&j| c[j] == 0 && train[j] > 0).map(move |j| (*name, j)))
        .collect();
    let quoted = |list: &[usize]| {
        list.iter().map(|&c| format!("\"{}\"", class_name(splits.task, c))).collect::<Vec<_>>().join(", ")
    };

    let mut status = CheckStatus::Pass;
    let mut sentences = Vec::new();
    let mut advice = Vec::new();
    if !unlearnable.is_empty() {
        status = CheckStatus::Fail;
        sentences.push(format!(
            "{} class(es) {} have no train sample but appear in val or test: the model can never predict them.",
            unlearnable.len(),
            quoted(&unlearnable)
        ));
        advice.push("Get train samples of every class, or drop those classes from the data and --classes.");
    }
    match worst {
        Some((ratio, split, big, small)) if ratio > IMBALANCE_WARN_RATIO => {
            status = status.max(CheckStatus::Warn);
            let c = &counts.iter().find(|(n, _)| *n == split).map(|(_, c)| c.clone()).unwrap_or_default();
            let total: usize = c.iter().sum();
            sentences.push(format!(
                "{} is imbalanced {}:1 ({} {}, {} {}): always answering \"{}\" scores {} accuracy.",
                capitalize(&split.to_string()),
                fmt_num(ratio),
                class_name(splits.task, big),
                fmt_count(c[big]),
                class_name(splits.task, small),
                fmt_count(c[small]),
                class_name(splits.task, big),
                pct(c[big] as f64 / total.max(1) as f64),
            ));
            advice.push("Judge models by val.macro_f1 (or per-class recall) rather than val.acc; weight the loss by inverse class frequency or oversample the rare classes; collect more of them if you can.");
        }
        _ => match imbalance(train) {
            Some((1.0, big, _)) => {
                sentences.push(format!("{k} classes with {} train samples each.", fmt_count(train[big])));
            }
            Some((ratio, big, small)) => sentences.push(format!(
                "{k} classes, largest to smallest train class {}:1 ({} {}, {} {}).",
                fmt_num(ratio),
                class_name(splits.task, big),
                fmt_count(train[big]),
                class_name(splits.task, small),
                fmt_count(train[small]),
            )),
            None => sentences.push("No labelled train samples.".into()),
        },
    }
    if !unevaluated.is_empty() {
        status = status.max(CheckStatus::Warn);
        let list: Vec<String> =
            unevaluated.iter().take(5).map(|(s, c)| format!("\"{}\" in {s}", class_name(splits.task, *c))).collect();
        sentences.push(format!(
            "{} class(es) are missing from val or test ({}{}), so their errors go unmeasured.",
            unevaluated.len(),
            list.join(", "),
            if unevaluated.len() > 5 { ", …" } else { "" }
        ));
        advice.push("Use larger val/test splits (--val-fraction, --test-fraction) so every class is represented.");
    }
    if !absent.is_empty() {
        status = status.max(CheckStatus::Warn);
        sentences.push(format!(
            "{} declared class(es) {} have no samples at all; their outputs are dead.",
            absent.len(),
            quoted(&absent)
        ));
        advice.push("Remove classes without data from --classes.");
    }

    let mut check = Check::new("class_balance", status, sentences.join(" "));
    if !advice.is_empty() {
        check = check.with_advice(advice.join(" "));
    }
    Some(
        check
            .with("classes", k)
            .with("counts", counts_json)
            .with("imbalance_ratio", ratio_json)
            .with("majority_share", share_json)
            .with("missing", missing_json),
    )
}

/// `label_distribution`: whether val and test are labelled like train. For classification, WARN
/// when the total variation distance between class proportions exceeds [`LABEL_SHIFT_TV_WARN`]
/// and a chi-square test gives p below [`LABEL_SHIFT_P_WARN`]. For regression, WARN when the mean
/// moves by more than [`TARGET_SHIFT_SMD_WARN`] train standard deviations (with p below
/// [`LABEL_SHIFT_P_WARN`]) or the spread changes by more than [`TARGET_SPREAD_RATIO_WARN`]×.
pub fn label_distribution(splits: &Splits<'_>) -> Check {
    match splits.task {
        Task::Classification { classes } => class_distribution(splits, classes.len()),
        Task::Regression => target_distribution(splits),
    }
}

fn class_distribution(splits: &Splits<'_>, k: usize) -> Check {
    let train = class_counts(splits.train, k);
    let (mut tv_json, mut chi_json, mut p_json, mut share_json) = (json!({}), json!({}), json!({}), json!({}));
    share_json["train"] = proportions(&train);
    let mut shifted = Vec::new();
    let mut summary = Vec::new();
    for (name, samples) in &splits.each()[1..] {
        let key = name.to_string();
        let other = class_counts(samples, k);
        share_json[&key] = proportions(&other);
        let (n_train, n_other) = (train.iter().sum::<usize>(), other.iter().sum::<usize>());
        if n_train == 0 || n_other == 0 {
            for j in [&mut tv_json, &mut chi_json, &mut p_json] {
                j[&key] = Value::Null;
            }
            continue;
        }
        let tv: f64 = 0.5
            * train
                .iter()
                .zip(&other)
                .map(|(&a, &b)| (a as f64 / n_train as f64 - b as f64 / n_other as f64).abs())
                .sum::<f64>();
        let (chi2, df) = chi_square(&train, &other);
        let p = chi_square_p(chi2, df);
        tv_json[&key] = num(tv);
        chi_json[&key] = num(chi2);
        p_json[&key] = num(p);
        summary.push(format!("{name} {}", fmt_num(tv)));
        if tv > LABEL_SHIFT_TV_WARN && p < LABEL_SHIFT_P_WARN {
            // The class whose share moved most.
            let moved = (0..k)
                .max_by(|&a, &b| {
                    let d = |c: usize| (train[c] as f64 / n_train as f64 - other[c] as f64 / n_other as f64).abs();
                    d(a).total_cmp(&d(b))
                })
                .unwrap_or(0);
            shifted.push(format!(
                "{} differs from train by {} in total variation (p = {:.1e}); \"{}\" is {} of train but {} of {name}.",
                capitalize(&name.to_string()),
                fmt_num(tv),
                p,
                class_name(splits.task, moved),
                pct(train[moved] as f64 / n_train as f64),
                pct(other[moved] as f64 / n_other as f64),
            ));
        }
    }
    let check = if shifted.is_empty() {
        let detail = if summary.is_empty() {
            String::new()
        } else {
            format!(" (total variation from train: {})", summary.join(", "))
        };
        Check::pass("label_distribution", format!("Val and test have the class proportions of train{detail}."))
    } else {
        Check::warn("label_distribution", format!("{} Metrics on that split will not predict train behaviour, and vice versa.", shifted.join(" ")))
            .with_advice("Make sure the splits come from the same source and are stratified; if the shift is real (a test set from later data), expect it in production and judge models on a split that has it.")
    };
    check
        .with("total_variation", tv_json)
        .with("chi_square", chi_json)
        .with("p_value", p_json)
        .with("proportions", share_json)
}

fn proportions(counts: &[usize]) -> Value {
    let n: usize = counts.iter().sum();
    if n == 0 {
        return Value::Null;
    }
    Value::Array(counts.iter().map(|&c| num(c as f64 / n as f64)).collect())
}

/// Pearson's chi-square statistic of homogeneity of two count vectors, and its degrees of freedom
/// (classes seen in either, minus one).
fn chi_square(a: &[usize], b: &[usize]) -> (f64, usize) {
    let (na, nb) = (a.iter().sum::<usize>() as f64, b.iter().sum::<usize>() as f64);
    let n = na + nb;
    let mut chi2 = 0.0;
    let mut seen = 0;
    for (&x, &y) in a.iter().zip(b) {
        let col = (x + y) as f64;
        if col == 0.0 {
            continue;
        }
        seen += 1;
        let (ea, eb) = (na * col / n, nb * col / n);
        chi2 += (x as f64 - ea).powi(2) / ea + (y as f64 - eb).powi(2) / eb;
    }
    (chi2, seen.max(1) - 1)
}

/// Upper-tail probability of a chi-square statistic with `df` degrees of freedom, by the
/// Wilson–Hilferty normal approximation (good to about two digits down to p = 1e-6, which is all a
/// threshold needs). 1 when there are no degrees of freedom.
fn chi_square_p(chi2: f64, df: usize) -> f64 {
    if df == 0 {
        return 1.0;
    }
    let k = df as f64;
    let z = ((chi2 / k).cbrt() - (1.0 - 2.0 / (9.0 * k))) / (2.0 / (9.0 * k)).sqrt();
    normal_upper(z)
}

/// `P(Z > z)` for a standard normal `Z`, via `erfc` (Numerical Recipes' Chebyshev fit, relative
/// error below 1.2e-7).
fn normal_upper(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let y = t
        * (-x * x - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    let erfc = if x >= 0.0 { y } else { 2.0 - y };
    0.5 * erfc
}

fn target_distribution(splits: &Splits<'_>) -> Check {
    let values = |s: &Samples| match &s.targets {
        Targets::Values(v) => v.clone(),
        Targets::Classes(c) => c.iter().map(|&c| c as f32).collect(),
    };
    let train = values(splits.train);
    let (mt, st) = mean_std(&train);
    let nt = train.iter().filter(|v| v.is_finite()).count();
    let (mut mean_json, mut std_json, mut smd_json, mut p_json) = (json!({}), json!({}), json!({}), json!({}));
    mean_json["train"] = num(mt);
    std_json["train"] = num(st);
    let mut shifted = Vec::new();
    for (name, samples) in &splits.each()[1..] {
        let key = name.to_string();
        let other = values(samples);
        let (mo, so) = mean_std(&other);
        let no = other.iter().filter(|v| v.is_finite()).count();
        mean_json[&key] = num(mo);
        std_json[&key] = num(so);
        if nt == 0 || no == 0 {
            smd_json[&key] = Value::Null;
            p_json[&key] = Value::Null;
            continue;
        }
        let smd = if st > 0.0 { (mo - mt) / st } else { 0.0 };
        let se = (st * st / nt as f64 + so * so / no as f64).sqrt();
        let p = if se > 0.0 { 2.0 * normal_upper(((mo - mt) / se).abs()) } else { 1.0 };
        smd_json[&key] = num(smd);
        p_json[&key] = num(p);
        if smd.abs() > TARGET_SHIFT_SMD_WARN && p < LABEL_SHIFT_P_WARN {
            shifted.push(format!(
                "{} targets have mean {} against {} in train ({} train std, p = {p:.1e}).",
                capitalize(&name.to_string()),
                fmt_num(mo),
                fmt_num(mt),
                fmt_num(smd)
            ));
        }
        let ratio = if st > 0.0 && so > 0.0 { so / st } else { 1.0 };
        if nt >= MIN_SAMPLES_FOR_SPREAD
            && no >= MIN_SAMPLES_FOR_SPREAD
            && !(1.0 / TARGET_SPREAD_RATIO_WARN..=TARGET_SPREAD_RATIO_WARN).contains(&ratio)
        {
            shifted.push(format!(
                "{} targets have std {} against {} in train.",
                capitalize(&name.to_string()),
                fmt_num(so),
                fmt_num(st)
            ));
        }
    }
    let check = if shifted.is_empty() {
        Check::pass(
            "label_distribution",
            format!("Val and test targets look like train's (train mean {}, std {}).", fmt_num(mt), fmt_num(st)),
        )
    } else {
        Check::warn("label_distribution", format!("{} Errors on that split will not predict train behaviour.", shifted.join(" ")))
            .with_advice("Make sure the splits come from the same source and were split at random; if the shift is real, judge models on a split that has it.")
    };
    check
        .with("mean", mean_json)
        .with("std", std_json)
        .with("standardized_mean_difference", smd_json)
        .with("p_value", p_json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{classes, random_rows};
    use proptest::prelude::*;

    fn with_labels(labels: Vec<u32>) -> Samples {
        let mut s = random_rows(labels.len(), 2, 1, 0);
        s.targets = Targets::Classes(labels);
        s
    }

    fn labels(counts: &[usize]) -> Vec<u32> {
        counts.iter().enumerate().flat_map(|(c, &n)| std::iter::repeat_n(c as u32, n)).collect()
    }

    #[test]
    fn balanced_passes() {
        let (train, val, test) =
            (with_labels(labels(&[50, 45])), with_labels(labels(&[10, 10])), with_labels(labels(&[9, 11])));
        let task = classes(2);
        let check = class_balance(&Splits { task: &task, train: &train, val: &val, test: &test });
        let Some(check) = check else { panic!("classification has a balance check") };
        assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
        assert_eq!(check.measured["counts"]["train"], json!([50, 45]));
        assert_eq!(check.measured["imbalance_ratio"]["train"], 1.111);
        assert!(check.message.contains("c0 50, c1 45"), "{}", check.message);
    }

    #[test]
    fn ninety_nine_to_one_warns() {
        let (train, val, test) =
            (with_labels(labels(&[990, 10])), with_labels(labels(&[99, 1])), with_labels(labels(&[99, 1])));
        let task = classes(2);
        let Some(check) = class_balance(&Splits { task: &task, train: &train, val: &val, test: &test }) else {
            panic!()
        };
        assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
        assert_eq!(check.measured["imbalance_ratio"]["train"], 99.0);
        assert_eq!(check.measured["majority_share"]["train"], 0.99);
        assert!(check.message.contains("99:1") && check.message.contains("99.0% accuracy"), "{}", check.message);
        assert!(check.advice.as_deref().is_some_and(|a| a.contains("macro_f1")));
    }

    #[test]
    fn missing_classes() {
        let task = classes(3);
        let (train, val, test) =
            (with_labels(labels(&[20, 20, 20])), with_labels(labels(&[5, 5, 0])), with_labels(labels(&[5, 5, 5])));
        let Some(check) = class_balance(&Splits { task: &task, train: &train, val: &val, test: &test }) else {
            panic!()
        };
        assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
        assert_eq!(check.measured["missing"]["val"], json!(["c2"]));
        assert!(check.message.contains("\"c2\" in val"), "{}", check.message);

        let (train, val) = (with_labels(labels(&[20, 20, 0])), with_labels(labels(&[5, 5, 5])));
        let Some(check) = class_balance(&Splits { task: &task, train: &train, val: &val, test: &test }) else {
            panic!()
        };
        assert_eq!(check.status, CheckStatus::Fail, "{check:?}");
        assert!(check.message.contains("\"c2\""), "{}", check.message);
    }

    #[test]
    fn regression_has_no_balance() {
        let mut s = random_rows(10, 2, 1, 0);
        s.targets = Targets::Values(vec![0.0; 10]);
        assert!(class_balance(&Splits { task: &Task::Regression, train: &s, val: &s, test: &s }).is_none());
    }

    #[test]
    fn same_distribution_passes() {
        let task = classes(3);
        let (train, val, test) = (
            with_labels(labels(&[300, 200, 100])),
            with_labels(labels(&[100, 66, 34])),
            with_labels(labels(&[95, 70, 35])),
        );
        let check = label_distribution(&Splits { task: &task, train: &train, val: &val, test: &test });
        assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
        assert!(check.measured["total_variation"]["val"].as_f64().is_some_and(|tv| tv < 0.01));
    }

    #[test]
    fn shifted_distribution_warns() {
        let task = classes(3);
        let (train, val, test) = (
            with_labels(labels(&[300, 200, 100])),
            with_labels(labels(&[100, 66, 34])),
            with_labels(labels(&[20, 30, 150])),
        );
        let check = label_distribution(&Splits { task: &task, train: &train, val: &val, test: &test });
        assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
        assert!(check.message.starts_with("Test differs"), "{}", check.message);
        assert!(check.measured["p_value"]["test"].as_f64().is_some_and(|p| p < 1e-6));
    }

    #[test]
    fn a_tiny_split_is_not_called_shifted() {
        // 0.5 total variation, but 4 samples: could be chance.
        let task = classes(2);
        let (train, small) = (with_labels(labels(&[500, 500])), with_labels(labels(&[4, 0])));
        let check = label_distribution(&Splits { task: &task, train: &train, val: &small, test: &small });
        assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
    }

    #[test]
    fn regression_shift() {
        let task = Task::Regression;
        let make = |values: Vec<f32>| {
            let mut s = random_rows(values.len(), 2, 1, 0);
            s.targets = Targets::Values(values);
            s
        };
        let train = make((0..600).map(|i| (i % 100) as f32 / 10.0).collect());
        let same = make((0..200).map(|i| ((i * 7) % 100) as f32 / 10.0).collect());
        let check = label_distribution(&Splits { task: &task, train: &train, val: &same, test: &same });
        assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
        let moved = make((0..200).map(|i| 5.0 + (i % 100) as f32 / 10.0).collect());
        let check = label_distribution(&Splits { task: &task, train: &train, val: &same, test: &moved });
        assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
        assert!(check.message.contains("Test targets have mean"), "{}", check.message);
    }

    #[test]
    fn chi_square_tail() {
        // Reference values: chi2 = 3.84 with 1 df is p = 0.05; 23.21 with 10 df is p = 0.01.
        assert!((chi_square_p(3.841, 1) - 0.05).abs() < 0.005);
        assert!((chi_square_p(23.21, 10) - 0.01).abs() < 0.001);
        assert!((normal_upper(1.96) - 0.025).abs() < 1e-4);
        assert_eq!(chi_square_p(5.0, 0), 1.0);
        assert_eq!(chi_square(&[10, 0], &[10, 0]), (0.0, 0));
    }

    proptest! {
        /// The imbalance ratio is the largest count over the smallest non-zero one.
        #[test]
        fn ratio_is_max_over_min(counts in proptest::collection::vec(0usize..50, 1..8)) {
            let found = imbalance(&counts);
            let present: Vec<usize> = counts.iter().copied().filter(|&c| c > 0).collect();
            match found {
                None => prop_assert!(present.is_empty()),
                Some((r, big, small)) => {
                    let (max, min) = (present.iter().max().copied().unwrap_or(0), present.iter().min().copied().unwrap_or(0));
                    prop_assert_eq!(r, max as f64 / min as f64);
                    prop_assert_eq!((counts[big], counts[small]), (max, min));
                }
            }
        }
    }
}
