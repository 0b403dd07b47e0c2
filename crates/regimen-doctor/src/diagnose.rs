//! `regimen diagnose`: the recipe's verdicts on a finished (or running) run, from its metric series
//! alone.
//!
//! The recipe reads a run in three questions, in this order:
//!
//! 1. **Underfitting** ("Training set: does it have enough capacity?"): is the training error
//!    clearly below what a trivial model gets, chance accuracy `1/C` or always answering the
//!    majority class (for regression, predicting the mean)? If not, nothing else matters yet.
//! 2. **Bias and variance** ("By looking at how well the model performs on the training data, you
//!    can see how much bias it has … on the dev set, how much variance"): the training error against
//!    the error one hopes for (zero by default) is the bias; the validation error minus the training
//!    error is the variance. Each has its own remedies, and the larger gap is the one to work on
//!    first.
//! 3. **Overfitting over time** ("the validation loss increase while the training loss decreases"):
//!    the validation loss has risen for several evaluations since its best while the training loss
//!    kept falling, which is when early stopping and regularization pay.
//!
//! Everything here is a pure function of numbers, so it is tested on scripted series, the way Keras
//! tests `EarlyStopping` without training a model: no Burn, no files, no store. The caller (the
//! `regimen diagnose` command) reads the series from the run store and prints the [`Check`]s.
//!
//! Errors are compared as fractions: `1 - accuracy` for classification, and `1 - R²` (the fraction
//! of the target variance left unexplained, which is the mean squared error over the variance) for
//! regression, so one set of thresholds serves both.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::Check;
use crate::CheckStatus;
use crate::format::{fmt_num, num, pct};

/// One evaluation of a metric: `(step, epoch, value)`.
pub type Point = (u64, u64, f64);

/// A run's metric series by key (`train.loss`, `val.acc`, `train_eval.acc`, …): one [`Point`] per
/// evaluation, in any order (they are sorted by step here).
pub type MetricSeries = BTreeMap<String, Vec<Point>>;

pub use regimen_metrics::TaskInfo;

/// The report kind under which a run records its predictions on a fixed validation batch, epoch
/// by epoch.
pub const PREDICTIONS_REPORT: &str = "predictions";
/// The report kind under which a run records the verdict at its end.
pub const DIAGNOSIS_REPORT: &str = "diagnosis";

/// The thresholds of the verdicts; [`Default`] gives the recipe's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiagnoseOptions {
    /// Evaluations the validation loss must have stayed above its best, while the training loss
    /// fell, before the run counts as overfitting (the `k` of the recipe's "for k evaluations").
    pub overfit_evals: usize,
    /// Smallest relative rise of the validation loss over its best that counts as rising; below
    /// it the difference is noise.
    pub overfit_min_rise: f64,
    /// The error one hopes to reach (human or Bayes error), as a fraction; the bias is measured
    /// from it. Zero unless the user knows better.
    pub target_error: f64,
    /// Whether `target_error` is the dataset's recorded base error (the bias is then the recipe's
    /// avoidable bias), rather than a guess.
    pub base_error_known: bool,
    /// Bias (training error over `target_error`) above which the run has high bias.
    pub bias_tolerance: f64,
    /// Variance (validation error over training error) above which the run has high variance.
    pub variance_tolerance: f64,
}

impl Default for DiagnoseOptions {
    fn default() -> Self {
        DiagnoseOptions {
            overfit_evals: OVERFIT_EVALS,
            overfit_min_rise: OVERFIT_MIN_RISE,
            target_error: 0.0,
            base_error_known: false,
            bias_tolerance: BIAS_TOLERANCE,
            variance_tolerance: VARIANCE_TOLERANCE,
        }
    }
}

/// Default `k`: three evaluations above the best is a trend, one or two is often noise (and is
/// what a patience of a few epochs tolerates).
pub const OVERFIT_EVALS: usize = 3;

/// Default smallest rise of the validation loss over its best that counts: 2%.
pub const OVERFIT_MIN_RISE: f64 = 0.02;

/// Default bias tolerance: five points of training error (or 5% of the target variance) above the
/// target error.
pub const BIAS_TOLERANCE: f64 = 0.05;

/// Default variance tolerance: five points between validation and training error.
pub const VARIANCE_TOLERANCE: f64 = 0.05;

/// Fraction of the trivial baseline's error that may remain in the training error before the run
/// counts as underfitting (WARN): the model has not even halved the error of a model that ignores
/// its input.
pub const UNDERFIT_WARN: f64 = 0.5;

/// Fraction of the trivial baseline's error remaining at or above which the run learned nothing
/// beyond the label priors (FAIL).
pub const UNDERFIT_FAIL: f64 = 0.9;

/// What to try against high bias, from the recipe, most reliable first.
pub const HIGH_BIAS_ADVICE: &str = "High bias: try a bigger network (more layers or units: --hidden, --channels, --model resnet), \
    train longer (--epochs) or tune the optimizer (--lr, Adam), and then a better architecture for the problem; \
    also check that the task is possible at all (what error would a person make?).";

/// What to try against high variance, from the recipe, most reliable first.
pub const HIGH_VARIANCE_ADVICE: &str = "High variance: get more data, regularize (--weight-decay 1e-4, --dropout 0.2, \
    --augment for images), stop early (--patience \"3 epochs\"; the best weights are kept by default), \
    or try an architecture that generalizes better.";

/// The recipe's verdicts on a run: `underfitting`, `bias_variance` and `overfitting`, in that
/// order (the order in which to act on them), then `gradient_flow` when the run logged gradient
/// norms ([`crate::gradients::gradient_flow`]).
///
/// Reads `train_eval.*` (exact metrics on a fixed train subset) in preference to `train.*` (running
/// metrics of the epoch, under dropout and augmentation, so pessimistic), `*.acc` for
/// classification and `*.r2` for regression, and `val.loss` with the matching training loss for
/// overfitting. A check whose metrics the run lacks WARNs and lists the keys it has.
pub fn diagnose(metrics: &MetricSeries, task: &TaskInfo, options: &DiagnoseOptions) -> Vec<Check> {
    let series = Sorted::new(metrics);
    let mut checks =
        vec![underfitting(&series, task), bias_variance(&series, task, options), overfitting(&series, options)];
    checks.extend(crate::gradients::gradient_flow(metrics));
    checks
}

/// The series sorted by step, without non-finite values.
struct Sorted {
    series: MetricSeries,
}

impl Sorted {
    fn new(metrics: &MetricSeries) -> Sorted {
        let series = metrics
            .iter()
            .map(|(key, points)| {
                let mut points: Vec<Point> = points.iter().copied().filter(|p| p.2.is_finite()).collect();
                points.sort_by_key(|p| p.0);
                (key.clone(), points)
            })
            .filter(|(_, points)| !points.is_empty())
            .collect();
        Sorted { series }
    }

    /// The first of `keys` the run has, with its points.
    fn first<'a>(&'a self, keys: &[&'a str]) -> Option<(&'a str, &'a [Point])> {
        keys.iter().find_map(|&key| self.series.get(key).map(|points| (key, points.as_slice())))
    }

    /// The value of `points` at the last point at or before `step` (or the first point when all are
    /// later).
    fn at(points: &[Point], step: u64) -> Point {
        points.iter().rev().find(|p| p.0 <= step).or(points.first()).copied().unwrap_or((step, 0, f64::NAN))
    }

    /// The keys the run has, for a message.
    fn available(&self) -> String {
        if self.series.is_empty() { "none".into() } else { self.series.keys().cloned().collect::<Vec<_>>().join(", ") }
    }
}

/// An error measurement of one split: its key and the error as a fraction.
struct Error {
    key: &'static str,
    step: u64,
    epoch: u64,
    error: f64,
}

/// The latest training error: from `train_eval.acc` or `train.acc` (classification), or
/// `train_eval.r2` or `train.r2` (regression).
fn train_error(series: &Sorted, task: &TaskInfo) -> Option<Error> {
    let keys: &[&'static str] = if matches!(task, TaskInfo::Classification { .. }) {
        &["train_eval.acc", "train.acc"]
    } else {
        &["train_eval.r2", "train.r2"]
    };
    error_of(series, keys)
}

fn error_of(series: &Sorted, keys: &[&'static str]) -> Option<Error> {
    keys.iter().find_map(|&key| {
        let &(step, epoch, value) = series.series.get(key)?.last()?;
        Some(Error { key, step, epoch, error: 1.0 - value })
    })
}

/// The error of the trivial baseline and how it is named.
fn baseline(task: &TaskInfo) -> (f64, String) {
    match *task {
        TaskInfo::Classification { classes, majority_share } => {
            let chance = 1.0 / classes.max(1) as f64;
            match majority_share {
                Some(share) if share > chance => {
                    (1.0 - share, format!("always answering the majority class ({} accuracy)", pct(share)))
                }
                _ => (1.0 - chance, format!("chance ({} accuracy for {classes} classes)", pct(chance))),
            }
        }
        TaskInfo::Regression { .. } => (1.0, "predicting the mean (R² 0)".into()),
    }
}

/// What an error fraction is, for a sentence.
fn error_name(task: &TaskInfo) -> &'static str {
    match task {
        TaskInfo::Classification { .. } => "error",
        TaskInfo::Regression { .. } => "unexplained variance (1 - R²)",
    }
}

/// `underfitting`: the latest training error against the trivial baseline's. FAIL when at least
/// [`UNDERFIT_FAIL`] of the baseline's error remains (the model learned nothing beyond the
/// priors), WARN at [`UNDERFIT_WARN`], PASS below.
fn underfitting(series: &Sorted, task: &TaskInfo) -> Check {
    let Some(train) = train_error(series, task) else {
        return missing("underfitting", "a training accuracy or R² (train.acc, train.r2 or train_eval.*)", series);
    };
    let (baseline_error, baseline_name) = baseline(task);
    let remaining = if baseline_error > 0.0 { train.error / baseline_error } else { f64::INFINITY };
    let what = error_name(task);
    let at = format!("at epoch {} (step {})", train.epoch, train.step);
    let mut check = if remaining >= UNDERFIT_FAIL {
        Check::fail(
            "underfitting",
            format!(
                "Training {what} is {} {at} ({}), no better than {baseline_name}: the model has learned nothing beyond the label priors.",
                pct(train.error),
                train.key
            ),
        )
        .with_advice(format!(
            "First rule out a bug: run `regimen check` (overfit one batch, input-independent baseline, learning rate). {HIGH_BIAS_ADVICE}"
        ))
    } else if remaining >= UNDERFIT_WARN {
        Check::warn(
            "underfitting",
            format!(
                "Training {what} is {} {at} ({}), {} of the error of {baseline_name}: the model underfits its own training data.",
                pct(train.error),
                train.key,
                pct(remaining)
            ),
        )
        .with_advice(HIGH_BIAS_ADVICE)
    } else {
        Check::pass(
            "underfitting",
            format!(
                "Training {what} is {} {at} ({}), {} of the error of {baseline_name}.",
                pct(train.error),
                train.key,
                pct(remaining)
            ),
        )
    };
    check.measure("train_error", num(train.error));
    check.measure("baseline_error", num(baseline_error));
    check.measure("remaining_fraction", num(remaining));
    check.measure("metric", train.key);
    check.measure("step", train.step);
    check.measure("epoch", train.epoch);
    check
}

/// `bias_variance`: the latest training and validation errors. Bias is the training error over
/// the target error, variance the validation error over the training error; each above its
/// tolerance WARNs with its remedies, the larger first.
fn bias_variance(series: &Sorted, task: &TaskInfo, options: &DiagnoseOptions) -> Check {
    let val_keys: &[&'static str] =
        if matches!(task, TaskInfo::Classification { .. }) { &["val.acc"] } else { &["val.r2"] };
    let (Some(train), Some(val)) = (train_error(series, task), error_of(series, val_keys)) else {
        return missing(
            "bias_variance",
            "training and validation accuracy or R² (train.acc and val.acc, or train.r2 and val.r2)",
            series,
        );
    };
    // The training error at the validation's evaluation, so both describe the same weights.
    let train_points = series.first(&[train.key]).map(|(_, p)| p).unwrap_or_default();
    let (train_step, _, train_value) = Sorted::at(train_points, val.step);
    let train_error = if train_step == val.step { 1.0 - train_value } else { train.error };
    let bias = train_error - options.target_error;
    let variance = val.error - train_error;
    let high_bias = bias > options.bias_tolerance;
    let high_variance = variance > options.variance_tolerance;
    let what = error_name(task);
    let numbers = format!(
        "training {what} {} ({}), validation {} at epoch {} (step {}): {} {} over the {} {}, variance {}",
        pct(train_error),
        train.key,
        pct(val.error),
        val.epoch,
        val.step,
        if options.base_error_known { "avoidable bias" } else { "bias" },
        pct(bias),
        if options.base_error_known { "dataset's base error" } else { "target" },
        pct(options.target_error),
        pct(variance)
    );
    let mut check = match (high_bias, high_variance) {
        (false, false) => Check::pass("bias_variance", format!("Low bias and low variance: {numbers}.")),
        (true, false) => {
            Check::warn("bias_variance", format!("High bias: {numbers}. Work on the training error first."))
                .with_advice(HIGH_BIAS_ADVICE)
        }
        (false, true) => Check::warn(
            "bias_variance",
            format!("High variance: {numbers}. The model fits its training data but does not generalize."),
        )
        .with_advice(HIGH_VARIANCE_ADVICE),
        (true, true) => {
            let (first, advice) = if bias >= variance {
                ("bias", format!("{HIGH_BIAS_ADVICE} Then: {HIGH_VARIANCE_ADVICE}"))
            } else {
                ("variance", format!("{HIGH_VARIANCE_ADVICE} Then: {HIGH_BIAS_ADVICE}"))
            };
            Check::warn(
                "bias_variance",
                format!("High bias and high variance: {numbers}. The larger gap, the {first}, comes first."),
            )
            .with_advice(advice)
        }
    };
    check.measure("train_error", num(train_error));
    check.measure("val_error", num(val.error));
    check.measure("target_error", num(options.target_error));
    check.measure("bias", num(bias));
    check.measure("variance", num(variance));
    check.measure("high_bias", high_bias);
    check.measure("high_variance", high_variance);
    check.measure("train_metric", train.key);
    check.measure("val_metric", val.key);
    check.measure("step", val.step);
    check.measure("epoch", val.epoch);
    check
}

/// `overfitting`: WARN when `val.loss` has stayed above its best for at least
/// [`DiagnoseOptions::overfit_evals`] evaluations, ends more than
/// [`DiagnoseOptions::overfit_min_rise`] above it, and the training loss (`train_eval.loss`, else
/// `train.loss`, else `train.loss_step`) fell over the same evaluations.
fn overfitting(series: &Sorted, options: &DiagnoseOptions) -> Check {
    let Some((_, val)) = series.first(&["val.loss"]) else {
        return missing("overfitting", "the validation loss (val.loss)", series);
    };
    let Some((train_key, train)) = series.first(&["train_eval.loss", "train.loss", "train.loss_step"]) else {
        return missing("overfitting", "a training loss (train.loss, train_eval.loss or train.loss_step)", series);
    };
    let k = options.overfit_evals.max(1);
    let best = regimen_metrics::best(val.iter().map(|p| p.2), regimen_metrics::Mode::Min).map_or(0, |(i, _)| i);
    let (best_step, best_epoch, best_value) = val[best];
    let (last_step, last_epoch, last_value) = val[val.len() - 1];
    let since = val.len() - 1 - best;
    let rise = if best_value > 0.0 { last_value / best_value - 1.0 } else { last_value - best_value };
    let train_then = Sorted::at(train, best_step).2;
    let train_now = Sorted::at(train, last_step).2;
    let train_fell = train_now < train_then;
    let curve: Vec<Value> = val.iter().map(|p| num(p.2)).collect();
    let mut check = if val.len() < k + 1 {
        Check::pass(
            "overfitting",
            format!(
                "Only {} evaluation(s) of the validation loss; judging overfitting needs at least {}.",
                val.len(),
                k + 1
            ),
        )
        .with("skipped", true)
    } else if since >= k && rise > options.overfit_min_rise && train_fell {
        Check::warn(
            "overfitting",
            format!(
                "Overfitting: the validation loss has stayed above its best, {} at epoch {best_epoch} (step {best_step}), for {since} \
                 evaluations and is now {} (+{}), while the training loss ({train_key}) fell from {} to {}.",
                fmt_num(best_value),
                fmt_num(last_value),
                pct(rise),
                fmt_num(train_then),
                fmt_num(train_now)
            ),
        )
        .with_advice(format!(
            "Keep the best weights (restore-best is on by default) and stop earlier with --patience; {HIGH_VARIANCE_ADVICE}"
        ))
    } else if since == 0 {
        Check::pass(
            "overfitting",
            format!(
                "The validation loss is at its best at the last evaluation, {} at epoch {last_epoch} (step {last_step}).",
                fmt_num(last_value)
            ),
        )
    } else {
        Check::pass(
            "overfitting",
            format!(
                "The validation loss is {} at epoch {last_epoch}, {} evaluation(s) after its best of {} (rise {}, training loss {}): not a trend yet.",
                fmt_num(last_value),
                since,
                fmt_num(best_value),
                pct(rise),
                if train_fell { "falling" } else { "not falling" }
            ),
        )
    };
    check.measure("best_val_loss", num(best_value));
    check.measure("best_step", best_step);
    check.measure("best_epoch", best_epoch);
    check.measure("last_val_loss", num(last_value));
    check.measure("evals_since_best", since);
    check.measure("rise", num(rise));
    check.measure("train_loss_at_best", num(train_then));
    check.measure("train_loss_last", num(train_now));
    check.measure("train_metric", train_key);
    check.measure("val_loss", Value::Array(curve));
    check
}

/// A WARN for a verdict the run's metrics cannot support, listing what the run has.
fn missing(name: &str, needs: &str, series: &Sorted) -> Check {
    Check::new(
        name,
        CheckStatus::Warn,
        format!("Cannot judge: the run has no {needs}. It has: {}.", series.available()),
    )
    .with("skipped", true)
    .with("available", json!(series.series.keys().collect::<Vec<_>>()))
    .with_advice("Log the missing metric (validation runs at every epoch end; --train-eval-subset N adds exact training metrics).")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series with one point per epoch, `steps` steps per epoch.
    fn per_epoch(values: &[f64]) -> Vec<Point> {
        values.iter().enumerate().map(|(i, &v)| ((i as u64 + 1) * 100, i as u64 + 1, v)).collect()
    }

    fn run(series: &[(&str, &[f64])]) -> MetricSeries {
        series.iter().map(|(key, values)| (key.to_string(), per_epoch(values))).collect()
    }

    fn five_classes() -> TaskInfo {
        TaskInfo::Classification { classes: 5, majority_share: None }
    }

    fn find<'a>(checks: &'a [Check], name: &str) -> &'a Check {
        checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no {name} in {checks:?}"))
    }

    #[test]
    fn a_healthy_run_passes_everything() {
        let metrics = run(&[
            ("train.loss", &[1.2, 0.5, 0.2, 0.1, 0.06]),
            ("val.loss", &[1.0, 0.45, 0.22, 0.12, 0.08]),
            ("train.acc", &[0.5, 0.85, 0.95, 0.98, 0.99]),
            ("val.acc", &[0.6, 0.86, 0.94, 0.97, 0.98]),
        ]);
        let checks = diagnose(&metrics, &five_classes(), &DiagnoseOptions::default());
        assert_eq!(
            checks.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["underfitting", "bias_variance", "overfitting"]
        );
        for check in &checks {
            assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
        }
        assert_eq!(find(&checks, "overfitting").measured["evals_since_best"], 0);
    }

    #[test]
    fn val_loss_rising_while_train_loss_falls_is_overfitting() {
        let metrics = run(&[
            ("train.loss", &[1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02]),
            ("val.loss", &[1.0, 0.6, 0.45, 0.5, 0.55, 0.62, 0.7]),
            ("train.acc", &[0.6, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0]),
            ("val.acc", &[0.6, 0.75, 0.8, 0.8, 0.79, 0.79, 0.78]),
        ]);
        let checks = diagnose(&metrics, &five_classes(), &DiagnoseOptions::default());
        let over = find(&checks, "overfitting");
        assert_eq!(over.status, CheckStatus::Warn, "{over:?}");
        assert_eq!(over.measured["evals_since_best"], 4);
        assert_eq!(over.measured["best_epoch"], 3);
        assert!(over.message.contains("0.45") && over.message.contains("0.7"), "{}", over.message);
        assert!(over.advice.as_deref().unwrap_or_default().contains("--patience"));
        // Train 100%, val 78%: high variance, not bias.
        let bv = find(&checks, "bias_variance");
        assert_eq!(bv.status, CheckStatus::Warn);
        assert_eq!(bv.measured["high_variance"], true);
        assert_eq!(bv.measured["high_bias"], false);
        assert!(bv.message.starts_with("High variance"), "{}", bv.message);
        assert!(bv.advice.as_deref().unwrap_or_default().contains("more data"));
        assert_eq!(find(&checks, "underfitting").status, CheckStatus::Pass);
    }

    #[test]
    fn a_rise_shorter_than_k_evaluations_or_with_rising_train_loss_is_not_overfitting() {
        let options = DiagnoseOptions::default();
        // Two evaluations above the best: not yet a trend with k = 3.
        let metrics = run(&[("train.loss", &[1.0, 0.5, 0.3, 0.2, 0.1]), ("val.loss", &[1.0, 0.6, 0.45, 0.5, 0.55])]);
        let over = overfitting(&Sorted::new(&metrics), &options);
        assert_eq!(over.status, CheckStatus::Pass, "{over:?}");
        assert!(over.message.contains("not a trend yet"), "{}", over.message);
        // The same with k = 2 is overfitting.
        let over = overfitting(&Sorted::new(&metrics), &DiagnoseOptions { overfit_evals: 2, ..options });
        assert_eq!(over.status, CheckStatus::Warn);
        // Both losses rising is divergence or a learning-rate problem, not overfitting.
        let metrics =
            run(&[("train.loss", &[1.0, 0.5, 0.6, 0.7, 0.8, 0.9]), ("val.loss", &[1.0, 0.5, 0.6, 0.7, 0.8, 0.9])]);
        assert_eq!(overfitting(&Sorted::new(&metrics), &options).status, CheckStatus::Pass);
        // A rise within noise does not count.
        let metrics = run(&[
            ("train.loss", &[1.0, 0.5, 0.4, 0.3, 0.2, 0.1]),
            ("val.loss", &[1.0, 0.5, 0.501, 0.502, 0.503, 0.505]),
        ]);
        assert_eq!(overfitting(&Sorted::new(&metrics), &options).status, CheckStatus::Pass);
    }

    #[test]
    fn too_few_evaluations_are_skipped() {
        let metrics = run(&[("train.loss", &[1.0, 0.5]), ("val.loss", &[1.0, 0.6])]);
        let over = overfitting(&Sorted::new(&metrics), &DiagnoseOptions::default());
        assert_eq!(over.status, CheckStatus::Pass);
        assert_eq!(over.measured["skipped"], true);
    }

    #[test]
    fn chance_accuracy_fails_underfitting_and_high_training_error_warns() {
        // Shuffled labels: 21% training accuracy on 5 classes is chance.
        let metrics = run(&[("train.acc", &[0.2, 0.21, 0.21]), ("val.acc", &[0.2, 0.19, 0.2])]);
        let checks = diagnose(&metrics, &five_classes(), &DiagnoseOptions::default());
        let under = find(&checks, "underfitting");
        assert_eq!(under.status, CheckStatus::Fail, "{under:?}");
        assert!(under.message.contains("chance (20.0% accuracy for 5 classes)"), "{}", under.message);
        assert!(under.advice.as_deref().unwrap_or_default().contains("regimen check"));
        let bv = find(&checks, "bias_variance");
        assert_eq!(bv.measured["high_bias"], true);
        assert_eq!(bv.measured["high_variance"], false);
        assert!(bv.advice.as_deref().unwrap_or_default().contains("bigger network"));

        // 60% on 5 classes: half the baseline error remains.
        let metrics = run(&[("train.acc", &[0.4, 0.55, 0.6])]);
        let under = underfitting(&Sorted::new(&metrics), &five_classes());
        assert_eq!(under.status, CheckStatus::Warn, "{under:?}");
        assert_eq!(under.measured["remaining_fraction"], 0.5);
    }

    #[test]
    fn the_majority_class_is_the_baseline_when_it_beats_chance() {
        // 90% of the samples are one class: 90% accuracy is no better than always answering it.
        let task = TaskInfo::Classification { classes: 2, majority_share: Some(0.9) };
        let metrics = run(&[("train.acc", &[0.88, 0.9, 0.9])]);
        let under = underfitting(&Sorted::new(&metrics), &task);
        assert_eq!(under.status, CheckStatus::Fail, "{under:?}");
        assert!(under.message.contains("majority class (90.0% accuracy)"), "{}", under.message);
        // A minority share below chance falls back to chance.
        let (error, name) = baseline(&TaskInfo::Classification { classes: 4, majority_share: Some(0.1) });
        assert_eq!(error, 0.75);
        assert!(name.contains("chance"));
    }

    #[test]
    fn train_eval_metrics_are_preferred_to_running_training_metrics() {
        let metrics = run(&[("train.acc", &[0.5, 0.6]), ("train_eval.acc", &[0.9, 0.99]), ("val.acc", &[0.85, 0.97])]);
        let checks = diagnose(&metrics, &five_classes(), &DiagnoseOptions::default());
        let bv = find(&checks, "bias_variance");
        assert_eq!(bv.measured["train_metric"], "train_eval.acc");
        assert_eq!(bv.status, CheckStatus::Pass, "{bv:?}");
    }

    #[test]
    fn both_gaps_high_names_the_larger_first() {
        let metrics = run(&[("train.acc", &[0.7]), ("val.acc", &[0.5])]);
        let bv = bias_variance(&Sorted::new(&metrics), &five_classes(), &DiagnoseOptions::default());
        assert_eq!(bv.status, CheckStatus::Warn);
        assert!(bv.message.starts_with("High bias and high variance"), "{}", bv.message);
        assert!(bv.message.contains("the bias, comes first"), "{}", bv.message);
        // A known target error moves the bias: 30% training error against a 28% human error.
        let bv = bias_variance(
            &Sorted::new(&metrics),
            &five_classes(),
            &DiagnoseOptions { target_error: 0.28, ..DiagnoseOptions::default() },
        );
        assert_eq!(bv.measured["high_bias"], false);
        assert!(bv.message.starts_with("High variance"), "{}", bv.message);
    }

    #[test]
    fn regression_uses_unexplained_variance() {
        let metrics = run(&[
            ("train.r2", &[0.3, 0.7, 0.97]),
            ("val.r2", &[0.3, 0.6, 0.8]),
            ("train.loss", &[0.7, 0.3, 0.03]),
            ("val.loss", &[0.7, 0.4, 0.2]),
        ]);
        let checks = diagnose(&metrics, &TaskInfo::Regression { target_variance: None }, &DiagnoseOptions::default());
        assert_eq!(find(&checks, "underfitting").status, CheckStatus::Pass);
        let bv = find(&checks, "bias_variance");
        assert_eq!(bv.measured["high_variance"], true);
        assert!(bv.message.contains("unexplained variance"), "{}", bv.message);
        let flat = run(&[("train.r2", &[0.01, 0.02])]);
        assert_eq!(
            underfitting(&Sorted::new(&flat), &TaskInfo::Regression { target_variance: None }).status,
            CheckStatus::Fail
        );
    }

    #[test]
    fn missing_metrics_warn_and_list_what_the_run_has() {
        let metrics = run(&[("train.loss", &[1.0, 0.5])]);
        let checks = diagnose(&metrics, &five_classes(), &DiagnoseOptions::default());
        for check in &checks {
            assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
            assert!(check.message.contains("It has: train.loss."), "{}", check.message);
            assert_eq!(check.measured["skipped"], true);
        }
    }

    #[test]
    fn unsorted_points_and_nan_values_are_handled() {
        let mut metrics =
            run(&[("train.loss", &[1.0, 0.5, 0.3, 0.2, 0.1, 0.05]), ("val.loss", &[1.0, 0.4, 0.5, 0.6, 0.7, 0.8])]);
        if let Some(points) = metrics.get_mut("val.loss") {
            points.reverse();
            points.push((650, 6, f64::NAN));
        }
        let over = overfitting(&Sorted::new(&metrics), &DiagnoseOptions::default());
        assert_eq!(over.status, CheckStatus::Warn, "{over:?}");
        assert_eq!(over.measured["best_epoch"], 2);
        assert_eq!(over.measured["last_val_loss"], 0.8);
    }
}
