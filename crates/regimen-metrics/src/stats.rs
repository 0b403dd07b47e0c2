//! Small statistics the rest of the workspace shares: the predicted class of a row of logits, a
//! median, and a mean and standard deviation that stay accurate far from zero.
//!
//! They live here, in the dependency-light metrics crate, because the meters define what they must
//! agree with: the accuracy `regimen check` prints for a batch, or `regimen diagnose` for a
//! prediction, is only comparable with the meter's if a tie or a NaN logit picks the same class.

/// Whether logit `a` of class `ai` ranks strictly above logit `b` of class `bi`: larger wins, equal
/// values go to the lower index, and `NaN` ranks below every number.
pub(crate) fn ranks_above(a: f32, ai: usize, b: f32, bi: usize) -> bool {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => a > b || (a == b && ai < bi),
        (false, true) => true,
        (true, false) => false,
        (true, true) => ai < bi,
    }
}

/// The index of the largest value of `row`, the class a row of logits predicts; `None` for an empty
/// row.
///
/// Ties go to the first maximum (the lowest class index), as NumPy's and PyTorch's `argmax` do, and
/// `NaN` never wins over a number: a row that is all `NaN` gives 0.
pub fn argmax(row: &[f32]) -> Option<usize> {
    (!row.is_empty())
        .then(|| (1..row.len()).fold(0, |best, j| if ranks_above(row[j], j, row[best], best) { j } else { best }))
}

/// The median of the values that are not `NaN` (the mean of the middle two for an even count);
/// `None` when there are none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut sorted: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
    }
}

/// The count, mean and sum of squared deviations from the mean of a set of numbers, built in
/// parts and merged.
///
/// Each part is computed in two passes (the mean, then the deviations from it), and parts are
/// merged with Chan et al.'s pairwise update. Unlike the textbook `Σx²/n − mean²`, which cancels
/// catastrophically when the values sit far from zero (values near 1000 with a spread of 0.01),
/// this keeps full precision, and merging many small parts agrees with one large part up to
/// rounding.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub(crate) count: u64,
    pub(crate) mean: f64,
    /// Sum of squared deviations from `mean`.
    pub(crate) m2: f64,
}

impl Moments {
    /// The moments of `values`, in two passes over a cloneable iterator (no allocation):
    /// `Moments::of(slice.iter().map(|&v| f64::from(v)))`.
    pub fn of<I>(values: I) -> Moments
    where
        I: IntoIterator<Item = f64>,
        I::IntoIter: Clone,
    {
        let values = values.into_iter();
        let (count, sum) = values.clone().fold((0u64, 0.0), |(n, s), v| (n + 1, s + v));
        if count == 0 {
            return Moments::default();
        }
        let mean = sum / count as f64;
        let m2 = values.map(|v| (v - mean) * (v - mean)).sum();
        Moments { count, mean, m2 }
    }

    /// Adds the values `other` was built from.
    pub fn merge(&mut self, other: &Moments) {
        if self.count == 0 {
            *self = *other;
            return;
        }
        if other.count == 0 {
            return;
        }
        let (n, m) = (self.count as f64, other.count as f64);
        let total = n + m;
        let delta = other.mean - self.mean;
        self.mean += delta * (m / total);
        self.m2 += other.m2 + delta * delta * (n * m / total);
        self.count += other.count;
    }

    /// The number of values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The mean; `None` without values.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// The population variance (the squared deviations over the count, not the count − 1, as
    /// normalization uses it); `None` without values.
    pub fn variance(&self) -> Option<f64> {
        (self.count > 0).then(|| self.m2 / self.count as f64)
    }

    /// The population standard deviation; `None` without values.
    pub fn std(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn argmax_takes_the_first_maximum_and_never_nan() {
        assert_eq!(argmax(&[]), None);
        assert_eq!(argmax(&[0.5]), Some(0));
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), Some(1));
        assert_eq!(argmax(&[f32::NAN, -1.0, f32::NAN]), Some(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NAN]), Some(0));
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), Some(0));
        assert_eq!(argmax(&[1.0, f32::INFINITY, 2.0]), Some(1));
    }

    #[test]
    fn median_of_odd_even_and_nothing() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median([]), None);
        assert_eq!(median([f64::NAN]), None);
        assert_eq!(median([1.0, f64::INFINITY, f64::INFINITY]), Some(f64::INFINITY));
    }

    #[test]
    fn moments_of_nothing_and_of_one() {
        let empty = Moments::of(std::iter::empty());
        assert_eq!((empty.count(), empty.mean(), empty.std()), (0, None, None));
        let one = Moments::of([5.0]);
        assert_eq!((one.count(), one.mean(), one.variance()), (1, Some(5.0), Some(0.0)));
    }

    #[test]
    fn moments_stay_precise_far_from_zero() {
        // 1e9 + {0, 1, 2, 3}: variance 1.25 exactly, which Σx²/n − mean² rounds to 0 or worse.
        let mut merged = Moments::default();
        for offset in [0.0, 1.0, 2.0, 3.0] {
            merged.merge(&Moments::of([1e9 + offset]));
        }
        assert!((merged.variance().unwrap_or(f64::NAN) - 1.25).abs() < 1e-12, "{merged:?}");
        assert_eq!(merged.mean(), Some(1e9 + 1.5));
    }

    proptest! {
        /// Merging parts agrees with the two-pass moments of everything.
        #[test]
        fn merged_parts_match_the_whole(
            values in proptest::collection::vec(-1e4f64..1e4, 1..200),
            offset in -1e6f64..1e6,
            cut in 0usize..200,
        ) {
            let values: Vec<f64> = values.iter().map(|v| v + offset).collect();
            let cut = cut.min(values.len());
            let mut merged = Moments::of(values[..cut].iter().copied());
            merged.merge(&Moments::of(values[cut..].iter().copied()));
            let whole = Moments::of(values.iter().copied());
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            prop_assert_eq!(merged.count(), values.len() as u64);
            for m in [merged, whole] {
                prop_assert!((m.mean().unwrap_or(f64::NAN) - mean).abs() <= 1e-9 * (1.0 + mean.abs()));
                prop_assert!((m.variance().unwrap_or(f64::NAN) - variance).abs() <= 1e-6 * (1.0 + variance));
            }
        }
    }
}
