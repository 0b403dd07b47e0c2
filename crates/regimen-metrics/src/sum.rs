//! Compensated summation.
//!
//! A meter adds one batch total per update for the whole of an epoch; with plain `f64` addition the
//! rounding error of the running sum grows with the number of batches. Neumaier's variant of Kahan
//! summation carries the lost low-order bits in a second term, so the error stays at a few ulps
//! whatever the number of batches, at the cost of a handful of flops per batch.

/// A running sum of `f64` values with Neumaier compensation.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    /// Adds `value` to the sum.
    pub(crate) fn add(&mut self, value: f64) {
        let t = self.sum + value;
        if self.sum.abs() >= value.abs() {
            self.compensation += (self.sum - t) + value;
        } else {
            self.compensation += (value - t) + self.sum;
        }
        self.sum = t;
    }

    /// The compensated total.
    pub(crate) fn total(&self) -> f64 {
        self.sum + self.compensation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_bits_plain_addition_loses() {
        // 1 + 1e100 + 1 - 1e100 is 0 in plain f64 arithmetic, 2 exactly here.
        let mut sum = CompensatedSum::default();
        for value in [1.0, 1e100, 1.0, -1e100] {
            sum.add(value);
        }
        assert_eq!(sum.total(), 2.0);
    }

    #[test]
    fn many_small_values() {
        let mut sum = CompensatedSum::default();
        for _ in 0..1_000_000 {
            sum.add(0.1);
        }
        assert!((sum.total() - 100_000.0).abs() < 1e-9, "{}", sum.total());
    }
}
