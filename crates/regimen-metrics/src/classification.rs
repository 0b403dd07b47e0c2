//! Classification metrics: accuracy, top-k accuracy, a confusion matrix and the per-class scores
//! derived from it.
//!
//! The meter keeps only counts (hits, top-k hits, the `num_classes × num_classes` confusion matrix)
//! and a loss sum. Every per-class figure is derived from the confusion matrix when a report is
//! built, so `update` does a fixed amount of work per sample and never allocates.
//!
//! Ranking is total and deterministic so that top-1 accuracy always equals accuracy: a logit ranks
//! above another when it is larger, or when they are equal and its class index is lower; `NaN` ranks
//! below every number (a class whose logit is `NaN` is predicted only when every logit of the row is
//! `NaN`, and then the lowest index wins).

use serde::{Deserialize, Serialize};

use crate::MetricError;
use crate::stats::{argmax, ranks_above};
use crate::sum::CompensatedSum;

/// Precision, recall, F1 and support of one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassStats {
    /// True positives over predictions of this class; 0 when the class was never predicted.
    pub precision: f64,
    /// True positives over samples of this class; 0 when the class has no samples.
    pub recall: f64,
    /// Harmonic mean of precision and recall, `2·TP / (2·TP + FP + FN)`; 0 when the class was
    /// neither present nor predicted (scikit-learn's `zero_division=0`).
    pub f1: f64,
    /// Number of samples whose true class is this one.
    pub support: u64,
}

/// Everything a [`ClassificationMeter`] measured, built once per epoch by
/// [`ClassificationMeter::report`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// Mean per-sample loss; `NaN` when no sample was seen.
    pub loss: f64,
    /// Fraction of samples whose arg-max prediction is the target; `NaN` when no sample was seen.
    pub accuracy: f64,
    /// The `k` of [`top_k_accuracy`](Self::top_k_accuracy).
    pub top_k: usize,
    /// Fraction of samples whose target is among the `top_k` highest logits; `NaN` when no sample
    /// was seen.
    pub top_k_accuracy: f64,
    /// Scores of each class, indexed by class.
    pub per_class: Vec<ClassStats>,
    /// Unweighted mean of the per-class F1 over all `num_classes` classes, absent ones included
    /// (scikit-learn's `f1_score(average="macro", labels=range(num_classes), zero_division=0)`);
    /// `NaN` when no sample was seen.
    pub macro_f1: f64,
    /// Counts indexed `[true class][predicted class]`.
    pub confusion: Vec<Vec<u64>>,
}

/// Running classification metrics over any number of batches.
///
/// Call [`update`](Self::update) once per batch, read the cheap getters at any time, build a
/// [`report`](Self::report) at the end of an epoch and [`reset`](Self::reset) before the next one.
/// Neither `update` nor the getters allocate. It serializes, so a checkpoint can carry an epoch
/// in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMeter {
    num_classes: usize,
    top_k: usize,
    count: u64,
    correct: u64,
    top_k_hits: u64,
    loss_sum: CompensatedSum,
    /// Row-major `num_classes × num_classes`, indexed `true * num_classes + predicted`.
    confusion: Vec<u64>,
}

impl ClassificationMeter {
    /// Creates an empty meter for `num_classes` classes that also counts top-`top_k` hits.
    ///
    /// # Errors
    /// [`MetricError::TooFewClasses`] when `num_classes < 2`, [`MetricError::InvalidTopK`] when
    /// `top_k` is 0 or larger than `num_classes`.
    pub fn new(num_classes: usize, top_k: usize) -> Result<Self, MetricError> {
        if num_classes < 2 {
            return Err(MetricError::TooFewClasses { num_classes });
        }
        if top_k == 0 || top_k > num_classes {
            return Err(MetricError::InvalidTopK { top_k, num_classes });
        }
        Ok(Self {
            num_classes,
            top_k,
            count: 0,
            correct: 0,
            top_k_hits: 0,
            loss_sum: CompensatedSum::default(),
            confusion: vec![0; num_classes * num_classes],
        })
    }

    /// Adds one batch.
    ///
    /// `logits` is the `targets.len() × num_classes` row-major matrix of model outputs (any
    /// monotone transform of them, such as probabilities, gives the same counts), `targets` the
    /// true class of each row and `loss_sum` the sum of the per-sample losses of the batch. A
    /// non-finite `loss_sum` is accumulated as is, so a diverged loss shows in [`loss`](Self::loss).
    ///
    /// # Errors
    /// [`MetricError::LogitsShape`] when `logits.len() != targets.len() * num_classes`,
    /// [`MetricError::TargetOutOfRange`] when a target is not below `num_classes`. Shapes are
    /// checked before anything is counted, so on error the meter is unchanged. (Returning an error
    /// rather than asserting lets a caller name the offending batch; the check is a comparison and
    /// one pass over the targets.)
    pub fn update(&mut self, logits: &[f32], targets: &[u32], loss_sum: f64) -> Result<(), MetricError> {
        let c = self.num_classes;
        if targets.len().checked_mul(c) != Some(logits.len()) {
            return Err(MetricError::LogitsShape { logits_len: logits.len(), batch: targets.len(), num_classes: c });
        }
        if let Some((index, &target)) = targets.iter().enumerate().find(|&(_, &t)| t as usize >= c) {
            return Err(MetricError::TargetOutOfRange { index, target, num_classes: c });
        }
        for (row, &target) in logits.chunks_exact(c).zip(targets) {
            let target = target as usize;
            // Rows hold num_classes >= 2 logits, so there is always a maximum.
            let predicted = argmax(row).unwrap_or(0);
            let target_logit = row[target];
            let above = row.iter().enumerate().filter(|&(j, &x)| ranks_above(x, j, target_logit, target)).count();
            self.correct += u64::from(predicted == target);
            self.top_k_hits += u64::from(above < self.top_k);
            self.confusion[target * c + predicted] += 1;
        }
        self.count += targets.len() as u64;
        self.loss_sum.add(loss_sum);
        Ok(())
    }

    /// Forgets everything seen, keeping the number of classes and `top_k`.
    pub fn reset(&mut self) {
        self.count = 0;
        self.correct = 0;
        self.top_k_hits = 0;
        self.loss_sum = CompensatedSum::default();
        self.confusion.fill(0);
    }

    /// Number of samples seen since construction or the last reset.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean per-sample loss; `NaN` when no sample was seen.
    pub fn loss(&self) -> f64 {
        if self.count == 0 { f64::NAN } else { self.loss_sum.total() / self.count as f64 }
    }

    /// Fraction of samples predicted correctly; `NaN` when no sample was seen.
    pub fn accuracy(&self) -> f64 {
        ratio_or_nan(self.correct, self.count)
    }

    /// Number of classes the meter was built for.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The `k` of the top-k accuracy.
    pub fn top_k(&self) -> usize {
        self.top_k
    }

    /// Builds the full report from the counts so far.
    pub fn report(&self) -> ClassificationReport {
        let c = self.num_classes;
        let confusion: Vec<Vec<u64>> = self.confusion.chunks_exact(c).map(<[u64]>::to_vec).collect();
        let per_class: Vec<ClassStats> = (0..c)
            .map(|class| {
                let true_positives = confusion[class][class];
                let support: u64 = confusion[class].iter().sum();
                let predicted: u64 = confusion.iter().map(|row| row[class]).sum();
                ClassStats {
                    precision: ratio_or_zero(true_positives, predicted),
                    recall: ratio_or_zero(true_positives, support),
                    // 2·TP + FP + FN = (TP + FN) + (TP + FP) = support + predicted.
                    f1: ratio_or_zero(2 * true_positives, support + predicted),
                    support,
                }
            })
            .collect();
        let macro_f1 = if self.count == 0 { f64::NAN } else { per_class.iter().map(|s| s.f1).sum::<f64>() / c as f64 };
        ClassificationReport {
            loss: self.loss(),
            accuracy: self.accuracy(),
            top_k: self.top_k,
            top_k_accuracy: ratio_or_nan(self.top_k_hits, self.count),
            per_class,
            macro_f1,
            confusion,
        }
    }
}

fn ratio_or_nan(numerator: u64, denominator: u64) -> f64 {
    numerator as f64 / denominator as f64
}

fn ratio_or_zero(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 { 0.0 } else { numerator as f64 / denominator as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EPS: f64 = 1e-12;

    /// Six samples over three classes. Arg-max predictions are `[0, 1, 1, 1, 1, 0]` for targets
    /// `[0, 0, 1, 1, 2, 2]`; row 3 ties classes 1 and 2, and the lower index wins. Class 2 is never
    /// predicted. Top-2 misses only row 5.
    const LOGITS: [f32; 18] = [
        2.0, 1.0, 0.0, //
        1.0, 3.0, 0.5, //
        0.0, 1.0, -1.0, //
        -1.0, 2.0, 2.0, //
        0.0, 2.0, 1.0, //
        3.0, 2.0, 1.0, //
    ];
    const TARGETS: [u32; 6] = [0, 0, 1, 1, 2, 2];

    fn assert_close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < EPS, "expected {expected}, got {actual}");
    }

    #[test]
    fn hand_computed_case_matches_sklearn() {
        let mut meter = ClassificationMeter::new(3, 2).unwrap();
        meter.update(&LOGITS, &TARGETS, 3.0).unwrap();
        let report = meter.report();
        // sklearn.metrics.confusion_matrix([0,0,1,1,2,2], [0,1,1,1,1,0])
        assert_eq!(report.confusion, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 1, 0]]);
        // accuracy_score -> 3/6
        assert_close(report.accuracy, 0.5);
        assert_close(meter.accuracy(), 0.5);
        // top_k_accuracy_score(y_true, LOGITS, k=2) -> 5/6
        assert_eq!(report.top_k, 2);
        assert_close(report.top_k_accuracy, 5.0 / 6.0);
        assert_close(report.loss, 0.5);
        assert_eq!(meter.count(), 6);
        // precision_recall_fscore_support(..., zero_division=0):
        //   precision [1/2, 2/4, 0], recall [1/2, 2/2, 0], f1 [1/2, 2/3, 0], support [2, 2, 2]
        let expected = [(0.5, 0.5, 0.5), (0.5, 1.0, 2.0 / 3.0), (0.0, 0.0, 0.0)];
        for (stats, (precision, recall, f1)) in report.per_class.iter().zip(expected) {
            assert_close(stats.precision, precision);
            assert_close(stats.recall, recall);
            assert_close(stats.f1, f1);
            assert_eq!(stats.support, 2);
        }
        // f1_score(..., average="macro", zero_division=0) -> (1/2 + 2/3 + 0) / 3 = 7/18
        assert_close(report.macro_f1, 7.0 / 18.0);
    }

    #[test]
    fn perfect_predictions() {
        let mut meter = ClassificationMeter::new(3, 1).unwrap();
        meter.update(&[5.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 5.0], &[0, 1, 2], 0.0).unwrap();
        let report = meter.report();
        assert_eq!(report.accuracy, 1.0);
        assert_eq!(report.top_k_accuracy, 1.0);
        assert_eq!(report.macro_f1, 1.0);
        assert!(report.per_class.iter().all(|s| s.precision == 1.0 && s.recall == 1.0 && s.f1 == 1.0));
    }

    #[test]
    fn worst_predictions() {
        let mut meter = ClassificationMeter::new(2, 1).unwrap();
        meter.update(&[0.0, 1.0, 1.0, 0.0, 0.0, 1.0], &[0, 1, 0], 6.0).unwrap();
        let report = meter.report();
        assert_eq!(report.accuracy, 0.0);
        assert_eq!(report.macro_f1, 0.0);
        assert_eq!(report.confusion, vec![vec![0, 2], vec![1, 0]]);
        assert_close(report.loss, 2.0);
    }

    #[test]
    fn absent_class_scores_zero_and_counts_in_macro_f1() {
        // Four classes, class 3 neither present nor predicted; classes 0..3 perfect.
        // sklearn: f1_score([0,1,2], [0,1,2], labels=[0,1,2,3], average="macro", zero_division=0)
        //   -> (1 + 1 + 1 + 0) / 4 = 0.75
        let mut meter = ClassificationMeter::new(4, 1).unwrap();
        let logits = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        meter.update(&logits, &[0, 1, 2], 0.0).unwrap();
        let report = meter.report();
        assert_eq!(report.per_class[3], ClassStats { precision: 0.0, recall: 0.0, f1: 0.0, support: 0 });
        assert_close(report.macro_f1, 0.75);
    }

    #[test]
    fn top_k_equal_to_num_classes_always_hits() {
        let mut meter = ClassificationMeter::new(3, 3).unwrap();
        meter.update(&LOGITS, &TARGETS, 0.0).unwrap();
        assert_eq!(meter.report().top_k_accuracy, 1.0);
    }

    #[test]
    fn nan_logits_rank_last() {
        let mut meter = ClassificationMeter::new(3, 1).unwrap();
        // Row 0: NaN never wins against a number. Row 1: all NaN, lowest index wins.
        meter.update(&[f32::NAN, -1.0, f32::NEG_INFINITY, f32::NAN, f32::NAN, f32::NAN], &[1, 0], 0.0).unwrap();
        let report = meter.report();
        assert_eq!(report.accuracy, 1.0);
        assert_eq!(report.confusion, vec![vec![1, 0, 0], vec![0, 1, 0], vec![0, 0, 0]]);
    }

    #[test]
    fn empty_meter_reports_nan_rates() {
        let meter = ClassificationMeter::new(2, 1).unwrap();
        let report = meter.report();
        assert!(report.loss.is_nan() && report.accuracy.is_nan());
        assert!(report.top_k_accuracy.is_nan() && report.macro_f1.is_nan());
        assert_eq!(meter.count(), 0);
    }

    #[test]
    fn reset_forgets_everything() {
        let mut meter = ClassificationMeter::new(3, 2).unwrap();
        meter.update(&LOGITS, &TARGETS, 3.0).unwrap();
        meter.reset();
        assert_eq!(meter.count(), 0);
        meter.update(&LOGITS[..3], &TARGETS[..1], 0.25).unwrap();
        let report = meter.report();
        assert_eq!(report.confusion, vec![vec![1, 0, 0], vec![0; 3], vec![0; 3]]);
        assert_eq!(report.loss, 0.25);
    }

    #[test]
    fn constructor_rejects_bad_arguments() {
        assert_eq!(ClassificationMeter::new(1, 1).unwrap_err(), MetricError::TooFewClasses { num_classes: 1 });
        let err = ClassificationMeter::new(3, 0).unwrap_err();
        assert_eq!(err.to_string(), "top_k must be between 1 and num_classes (3), got 0");
        assert!(ClassificationMeter::new(3, 4).is_err());
    }

    #[test]
    fn bad_batches_are_rejected_and_leave_the_meter_unchanged() {
        let mut meter = ClassificationMeter::new(3, 1).unwrap();
        let err = meter.update(&LOGITS[..17], &TARGETS, 1.0).unwrap_err();
        assert_eq!(err, MetricError::LogitsShape { logits_len: 17, batch: 6, num_classes: 3 });
        let err = meter.update(&LOGITS, &[0, 0, 1, 3, 2, 2], 1.0).unwrap_err();
        assert_eq!(err, MetricError::TargetOutOfRange { index: 3, target: 3, num_classes: 3 });
        assert_eq!(err.to_string(), "target 3 at batch index 3 is not a class index (num_classes is 3)");
        assert_eq!(meter.count(), 0);
        assert!(meter.report().confusion.iter().flatten().all(|&n| n == 0));
    }

    /// A batch of `(logits row, target)` pairs for `num_classes` classes, with few distinct logit
    /// values so that ties are common.
    fn samples(num_classes: usize) -> impl Strategy<Value = Vec<(Vec<f32>, u32)>> {
        let row = proptest::collection::vec((-3i8..=3).prop_map(f32::from), num_classes);
        proptest::collection::vec((row, 0..num_classes as u32), 0..40)
    }

    fn batch_of(samples: &[(Vec<f32>, u32)]) -> (Vec<f32>, Vec<u32>, f64) {
        let logits = samples.iter().flat_map(|(row, _)| row.iter().copied()).collect();
        let targets = samples.iter().map(|&(_, t)| t).collect();
        // Integer per-sample losses keep the loss sum exact whatever the batching.
        let loss = samples.iter().map(|&(_, t)| f64::from(t)).sum();
        (logits, targets, loss)
    }

    proptest! {
        #[test]
        fn streaming_equals_one_batch(
            (num_classes, top_k, data, cuts) in (2usize..6).prop_flat_map(|c| {
                (Just(c), 1..=c, samples(c), proptest::collection::vec(any::<prop::sample::Index>(), 0..5))
            })
        ) {
            let mut whole = ClassificationMeter::new(num_classes, top_k).unwrap();
            let (logits, targets, loss) = batch_of(&data);
            whole.update(&logits, &targets, loss).unwrap();

            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
            cuts.push(0);
            cuts.push(data.len());
            cuts.sort_unstable();
            let mut streamed = ClassificationMeter::new(num_classes, top_k).unwrap();
            for pair in cuts.windows(2) {
                let (logits, targets, loss) = batch_of(&data[pair[0]..pair[1]]);
                streamed.update(&logits, &targets, loss).unwrap();
            }
            let (a, b) = (whole.report(), streamed.report());
            if data.is_empty() {
                prop_assert!(a.accuracy.is_nan() && b.accuracy.is_nan());
            } else {
                prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn ranking_matches_a_stable_sort(
            (num_classes, data) in (2usize..6).prop_flat_map(|c| (Just(c), samples(c)))
        ) {
            // Brute force: sort class indices by descending logit, ties by index (a stable sort).
            let (logits, targets, _) = batch_of(&data);
            for k in 1..=num_classes {
                let mut meter = ClassificationMeter::new(num_classes, k).unwrap();
                meter.update(&logits, &targets, 0.0).unwrap();
                let mut correct = 0u64;
                let mut hits = 0u64;
                for &(ref row, target) in &data {
                    let mut order: Vec<usize> = (0..num_classes).collect();
                    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                    correct += u64::from(order[0] == target as usize);
                    hits += u64::from(order[..k].contains(&(target as usize)));
                }
                let n = data.len() as u64;
                prop_assert_eq!(meter.accuracy().to_bits(), ratio_or_nan(correct, n).to_bits());
                prop_assert_eq!(meter.report().top_k_accuracy.to_bits(), ratio_or_nan(hits, n).to_bits());
            }
        }
    }
}
