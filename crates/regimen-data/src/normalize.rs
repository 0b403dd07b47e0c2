//! Feature normalization fitted on the training split.
//!
//! Inputs centred at zero with unit spread train faster and let default learning rates work. The
//! statistics come from the train split only: fitting on validation or test data would leak them
//! into training. Images are normalized per channel (every pixel of a channel shares one mean and
//! std, so spatial structure is kept); tables per column. The fitted values are saved with the run
//! so that the same transform can be applied at evaluation time.

use serde::{Deserialize, Serialize};

use crate::types::{Layout, Samples};

/// Standard deviations below this are treated as constant features and left unscaled.
const MIN_STD: f64 = 1e-6;

/// What each mean and std applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NormAxis {
    /// One statistic per channel of `[channels, height, width]` images.
    Channel,
    /// One statistic per feature value (a table's columns).
    Column,
}

/// Per-channel or per-column mean and standard deviation: `x' = (x - mean) / std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean of each channel or column.
    pub mean: Vec<f32>,
    /// Standard deviation of each channel or column; 1 where the feature is constant.
    pub std: Vec<f32>,
    /// Whether the statistics are per channel or per column.
    pub per: NormAxis,
}

impl Normalization {
    /// Fits the statistics on `samples` (the train split): per channel when the samples are images
    /// (see [`Layout`]), else per feature value. An empty set gives mean 0 and std 1.
    ///
    /// The variance is the mean squared deviation from the mean, summed in a second pass over the
    /// values. The one-pass `E[x²] − E[x]²` subtracts two nearly equal numbers when the values sit
    /// far from zero compared with their spread (1e8 ± 16 leaves only rounding error), and reading
    /// the split twice is cheap next to training on it.
    pub fn fit(samples: &Samples) -> Normalization {
        let (per, groups, group_len) = grouping(samples.layout());
        let count = (samples.len() * group_len) as f64;
        let mut sum = vec![0.0f64; groups];
        for_each_value(samples, group_len, |g, v| sum[g] += f64::from(v));
        let mean: Vec<f64> = sum.iter().map(|s| if count > 0.0 { s / count } else { 0.0 }).collect();
        let mut squared_deviations = vec![0.0f64; groups];
        for_each_value(samples, group_len, |g, v| {
            let deviation = f64::from(v) - mean[g];
            squared_deviations[g] += deviation * deviation;
        });
        let std = squared_deviations
            .iter()
            .map(|sq| {
                let sd = if count > 0.0 { (sq / count).sqrt() } else { 0.0 };
                if sd < MIN_STD { 1.0 } else { sd as f32 }
            })
            .collect();
        Normalization { mean: mean.iter().map(|&m| m as f32).collect(), std, per }
    }

    /// Normalizes `samples` in place.
    ///
    /// # Panics
    ///
    /// When `samples` does not have the layout this was fitted on (a bug in the caller).
    pub fn apply(&self, samples: &mut Samples) {
        let (per, groups, group_len) = grouping(samples.layout());
        assert!(per == self.per && groups == self.mean.len(), "normalization fitted on another shape");
        let len = samples.sample_len();
        if len == 0 || group_len == 0 {
            return;
        }
        for row in samples.features.chunks_exact_mut(len) {
            for (values, (m, s)) in row.chunks_exact_mut(group_len).zip(self.mean.iter().zip(&self.std)) {
                for v in values {
                    *v = (*v - m) / s;
                }
            }
        }
    }
}

/// Calls `visit(group, value)` for every value of `samples`, in storage order, where `group` is the
/// statistic the value belongs to and every `group_len` consecutive values share one.
fn for_each_value(samples: &Samples, group_len: usize, mut visit: impl FnMut(usize, f32)) {
    let len = samples.sample_len();
    if len == 0 || group_len == 0 {
        return;
    }
    for row in samples.features.chunks_exact(len) {
        for (g, values) in row.chunks_exact(group_len).enumerate() {
            for &v in values {
                visit(g, v);
            }
        }
    }
}

/// The axis, number of statistics and number of consecutive values sharing one statistic.
///
/// For columns every value has its own statistic, so a row is `groups` runs of length 1.
fn grouping(layout: Layout) -> (NormAxis, usize, usize) {
    let per = if layout.is_image() { NormAxis::Channel } else { NormAxis::Column };
    (per, layout.groups(), layout.group_len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Targets;

    #[test]
    fn per_column_statistics() {
        let mut s =
            Samples { shape: vec![2], features: vec![1.0, 5.0, 3.0, 5.0], targets: Targets::Values(vec![0.0, 0.0]) };
        let n = Normalization::fit(&s);
        assert_eq!(n.per, NormAxis::Column);
        assert_eq!(n.mean, vec![2.0, 5.0]);
        assert_eq!(n.std, vec![1.0, 1.0], "constant column keeps std 1");
        n.apply(&mut s);
        assert_eq!(s.features, vec![-1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn per_channel_statistics() {
        // Two samples, two channels of 2 pixels: channel 0 holds 0,2 / 4,6; channel 1 is 10 everywhere.
        let mut s = Samples {
            shape: vec![2, 1, 2],
            features: vec![0.0, 2.0, 10.0, 10.0, 4.0, 6.0, 10.0, 10.0],
            targets: Targets::Classes(vec![0, 1]),
        };
        let n = Normalization::fit(&s);
        assert_eq!(n.per, NormAxis::Channel);
        assert_eq!(n.mean, vec![3.0, 10.0]);
        assert!((n.std[0] - 5.0f32.sqrt()).abs() < 1e-6);
        assert_eq!(n.std[1], 1.0);
        n.apply(&mut s);
        let mean: f32 = [s.features[0], s.features[1], s.features[4], s.features[5]].iter().sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6);
        assert_eq!(&s.features[2..4], &[0.0, 0.0]);
    }

    #[test]
    fn large_offsets_keep_their_spread() {
        // Values 1e8 + {-16, -8, 0, 8, 16} (f32 steps by 8 there), std √128: the sum of squares is
        // near 1e20, so `E[x²] - E[x]²` would be left with nothing but rounding error.
        let n = 10_000;
        let features: Vec<f32> = (0..n).map(|i| 1.0e8 + 8.0 * ((i % 5) as f32 - 2.0)).collect();
        let mut s = Samples { shape: vec![1], features, targets: Targets::Values(vec![0.0; n]) };
        let fitted = Normalization::fit(&s);
        assert_eq!(fitted.mean, vec![1.0e8]);
        assert_eq!(fitted.std, vec![128.0f32.sqrt()]);
        fitted.apply(&mut s);
        let expected = [-2.0, -1.0, 0.0, 1.0, 2.0].map(|k: f32| k * 8.0 / 128.0f32.sqrt());
        assert_eq!(&s.features[..5], &expected);
    }

    #[test]
    fn empty_set_is_identity() {
        let s = Samples { shape: vec![3], features: vec![], targets: Targets::Values(vec![]) };
        let n = Normalization::fit(&s);
        assert_eq!((n.mean, n.std), (vec![0.0; 3], vec![1.0; 3]));
    }
}
