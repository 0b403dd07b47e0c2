//! Regression metrics: mean squared error, mean absolute error and R².
//!
//! R² needs the spread of the targets around their mean over the whole epoch, which is not known
//! until the epoch ends. Rather than keep the targets, the meter keeps their [`Moments`] (count, mean
//! and sum of squared deviations), computes those of each batch in two passes and merges them
//! with Chan et al.'s pairwise update. That is numerically stable where the textbook
//! `Σt² − n·mean²` is not (it cancels catastrophically when the targets sit far from zero), and a
//! meter fed many batches agrees with one fed a single batch up to rounding.
//!
//! Every element of `predictions` / `targets` counts as one sample: multi-output regression is
//! pooled, so R² there is computed over all outputs together, not averaged per output as
//! scikit-learn's default `multioutput="uniform_average"` does.

use serde::{Deserialize, Serialize};

use crate::MetricError;
use crate::stats::Moments;
use crate::sum::CompensatedSum;

/// Everything a [`RegressionMeter`] measured, built by [`RegressionMeter::report`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionReport {
    /// Mean per-sample loss as reported by the caller; `NaN` when no sample was seen.
    pub loss: f64,
    /// Mean squared error; `NaN` when no sample was seen.
    pub mse: f64,
    /// Mean absolute error; `NaN` when no sample was seen.
    pub mae: f64,
    /// Coefficient of determination, `1 − SSE / SST`. When the targets are all equal (`SST = 0`)
    /// it is 1 for exact predictions and 0 otherwise, as scikit-learn's `r2_score` does with
    /// `force_finite=True`; `NaN` when no sample was seen.
    pub r2: f64,
}

/// Running regression metrics over any number of batches.
///
/// Call [`update`](Self::update) once per batch, build a [`report`](Self::report) at the end of an
/// epoch and [`reset`](Self::reset) before the next one. `update` never allocates. It serializes, so a checkpoint can carry an epoch in progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegressionMeter {
    count: u64,
    loss_sum: CompensatedSum,
    squared_error: CompensatedSum,
    absolute_error: CompensatedSum,
    /// With `count` and `target_m2`, the targets' [`Moments`], kept as plain fields so that the
    /// serialized meter (checkpoints carry it) keeps its format.
    target_mean: f64,
    /// Sum of squared deviations of the targets from `target_mean` (SST).
    target_m2: f64,
}

impl RegressionMeter {
    /// Creates an empty meter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one batch: `predictions[i]` is the model's output for `targets[i]`, and `loss_sum` the
    /// sum of the per-sample losses of the batch (one loss per element, so that
    /// [`loss`](Self::loss) is `loss_sum` over the element count). Non-finite values are
    /// accumulated as is and show up in the report.
    ///
    /// # Errors
    /// [`MetricError::LengthMismatch`] when the slices differ in length; the meter is then
    /// unchanged.
    pub fn update(&mut self, predictions: &[f32], targets: &[f32], loss_sum: f64) -> Result<(), MetricError> {
        if predictions.len() != targets.len() {
            return Err(MetricError::LengthMismatch { predictions: predictions.len(), targets: targets.len() });
        }
        self.loss_sum.add(loss_sum);
        if targets.is_empty() {
            return Ok(());
        }
        let (mut squared, mut absolute) = (0.0, 0.0);
        for (&p, &t) in predictions.iter().zip(targets) {
            let error = f64::from(p) - f64::from(t);
            squared += error * error;
            absolute += error.abs();
        }
        self.squared_error.add(squared);
        self.absolute_error.add(absolute);

        let mut moments = Moments { count: self.count, mean: self.target_mean, m2: self.target_m2 };
        moments.merge(&Moments::of(targets.iter().map(|&t| f64::from(t))));
        (self.count, self.target_mean, self.target_m2) = (moments.count, moments.mean, moments.m2);
        Ok(())
    }

    /// Forgets everything seen.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Number of samples (elements) seen since construction or the last reset.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean per-sample loss; `NaN` when no sample was seen.
    pub fn loss(&self) -> f64 {
        self.mean(self.loss_sum)
    }

    /// Builds the report from the sums so far.
    pub fn report(&self) -> RegressionReport {
        let sse = self.squared_error.total();
        let r2 = if self.count == 0 {
            f64::NAN
        } else if self.target_m2 > 0.0 {
            1.0 - sse / self.target_m2
        } else if sse == 0.0 {
            1.0
        } else {
            0.0
        };
        RegressionReport {
            loss: self.loss(),
            mse: self.mean(self.squared_error),
            mae: self.mean(self.absolute_error),
            r2,
        }
    }

    fn mean(&self, sum: CompensatedSum) -> f64 {
        if self.count == 0 { f64::NAN } else { sum.total() / self.count as f64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn report_of(predictions: &[f32], targets: &[f32]) -> RegressionReport {
        let mut meter = RegressionMeter::new();
        meter.update(predictions, targets, 0.0).unwrap();
        meter.report()
    }

    #[test]
    fn hand_computed_case_matches_sklearn() {
        // y_true = [3, -0.5, 2, 7], y_pred = [2.5, 0.0, 2, 8] (scikit-learn's r2_score docstring):
        //   mean_squared_error -> (0.25 + 0.25 + 0 + 1) / 4 = 0.375
        //   mean_absolute_error -> (0.5 + 0.5 + 0 + 1) / 4 = 0.5
        //   r2_score -> 1 - 1.5 / 29.1875 = 0.9486081370449679
        let mut meter = RegressionMeter::new();
        meter.update(&[2.5, 0.0, 2.0, 8.0], &[3.0, -0.5, 2.0, 7.0], 2.0).unwrap();
        let report = meter.report();
        assert_eq!(report.mse, 0.375);
        assert_eq!(report.mae, 0.5);
        assert!((report.r2 - 0.948_608_137_044_967_9).abs() < 1e-12, "{}", report.r2);
        assert_eq!(report.loss, 0.5);
        assert_eq!(meter.count(), 4);
    }

    #[test]
    fn predicting_the_mean_gives_zero_r2() {
        assert_eq!(report_of(&[2.5; 4], &[1.0, 2.0, 3.0, 4.0]).r2, 0.0);
    }

    #[test]
    fn perfect_predictions_give_one() {
        let report = report_of(&[1.0, -2.0, 3.5], &[1.0, -2.0, 3.5]);
        assert_eq!((report.mse, report.mae, report.r2), (0.0, 0.0, 1.0));
    }

    #[test]
    fn constant_targets_follow_sklearn_force_finite() {
        assert_eq!(report_of(&[4.0, 4.0], &[4.0, 4.0]).r2, 1.0);
        assert_eq!(report_of(&[4.0, 5.0], &[4.0, 4.0]).r2, 0.0);
    }

    #[test]
    fn variance_is_stable_far_from_zero() {
        // Targets 1e6 + {0, 1, 2, 3} in batches of one: SST = 5 exactly, which Σt² − n·mean² loses.
        let mut meter = RegressionMeter::new();
        for offset in [0.0, 1.0, 2.0, 3.0] {
            meter.update(&[1e6 + 1.5], &[1e6 + offset], 0.0).unwrap();
        }
        assert_eq!(meter.report().r2, 0.0);
    }

    #[test]
    fn empty_meter_reports_nan() {
        let report = RegressionMeter::new().report();
        assert!(report.loss.is_nan() && report.mse.is_nan() && report.mae.is_nan() && report.r2.is_nan());
    }

    #[test]
    fn mismatched_lengths_are_rejected_and_leave_the_meter_unchanged() {
        let mut meter = RegressionMeter::new();
        let err = meter.update(&[1.0, 2.0], &[1.0], 1.0).unwrap_err();
        assert_eq!(err, MetricError::LengthMismatch { predictions: 2, targets: 1 });
        assert_eq!(err.to_string(), "predictions has 2 values but targets has 1; they must match one to one");
        assert_eq!(meter.count(), 0);
        assert!(meter.loss().is_nan());
    }

    #[test]
    fn reset_forgets_everything() {
        let mut meter = RegressionMeter::new();
        meter.update(&[10.0], &[0.0], 100.0).unwrap();
        meter.reset();
        meter.update(&[1.0, 2.0], &[1.0, 2.0], 0.0).unwrap();
        assert_eq!(meter.report(), RegressionReport { loss: 0.0, mse: 0.0, mae: 0.0, r2: 1.0 });
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    proptest! {
        #[test]
        fn streaming_equals_one_batch(
            pairs in proptest::collection::vec((-1e3f32..1e3, -1e3f32..1e3), 1..60),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let (predictions, targets): (Vec<f32>, Vec<f32>) = pairs.iter().copied().unzip();
            let losses: Vec<f64> = pairs.iter().map(|&(p, t)| f64::from(p - t).abs()).collect();
            let mut whole = RegressionMeter::new();
            whole.update(&predictions, &targets, losses.iter().sum()).unwrap();

            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(pairs.len() + 1)).collect();
            cuts.extend([0, pairs.len()]);
            cuts.sort_unstable();
            let mut streamed = RegressionMeter::new();
            for w in cuts.windows(2) {
                let range = w[0]..w[1];
                streamed.update(&predictions[range.clone()], &targets[range.clone()], losses[range].iter().sum()).unwrap();
            }
            let (a, b) = (whole.report(), streamed.report());
            prop_assert_eq!(whole.count(), streamed.count());
            prop_assert!(close(a.loss, b.loss), "{a:?} vs {b:?}");
            prop_assert!(close(a.mse, b.mse), "{a:?} vs {b:?}");
            prop_assert!(close(a.mae, b.mae), "{a:?} vs {b:?}");
            prop_assert!(close(a.r2, b.r2), "{a:?} vs {b:?}");
        }
    }
}
