//! Feature normalization fitted on the training split.
//!
//! Inputs centred at zero with unit spread train faster and let default learning rates work. The
//! statistics come from the train split only: fitting on validation or test data would leak them
//! into training. Images are normalized per channel (every pixel of a channel shares one mean and
//! std, so spatial structure is kept); tables per column. The fitted values are saved with the run
//! so that the same transform can be applied at evaluation time.

use serde::{Deserialize, Serialize};

use crate::types::Samples;

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
    /// Fits the statistics on `samples` (the train split): per channel when the sample shape has
    /// three dimensions, else per feature value. An empty set gives mean 0 and std 1.
    pub fn fit(samples: &Samples) -> Normalization {
        let (per, groups, group_len) = layout(&samples.shape);
        let mut sum = vec![0.0f64; groups];
        let mut sum_sq = vec![0.0f64; groups];
        let len = samples.sample_len();
        if len > 0 && group_len > 0 {
            for row in samples.features.chunks_exact(len) {
                for (g, values) in row.chunks_exact(group_len).enumerate() {
                    for &v in values {
                        sum[g] += f64::from(v);
                        sum_sq[g] += f64::from(v) * f64::from(v);
                    }
                }
            }
        }
        let count = (samples.len() * group_len) as f64;
        let mut mean = Vec::with_capacity(groups);
        let mut std = Vec::with_capacity(groups);
        for (s, sq) in sum.iter().zip(&sum_sq) {
            let m = if count > 0.0 { s / count } else { 0.0 };
            let variance = if count > 0.0 { (sq / count - m * m).max(0.0) } else { 0.0 };
            let sd = variance.sqrt();
            mean.push(m as f32);
            std.push(if sd < MIN_STD { 1.0 } else { sd as f32 });
        }
        Normalization { mean, std, per }
    }

    /// Normalizes `samples` in place.
    ///
    /// # Panics
    ///
    /// When `samples` does not have the layout this was fitted on (a bug in the caller).
    pub fn apply(&self, samples: &mut Samples) {
        let (per, groups, group_len) = layout(&samples.shape);
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

/// The axis, number of statistics and number of consecutive values sharing one statistic.
///
/// For columns every value has its own statistic, so a row is `groups` runs of length 1.
fn layout(shape: &[usize]) -> (NormAxis, usize, usize) {
    if let [channels, height, width] = *shape {
        (NormAxis::Channel, channels, height * width)
    } else {
        (NormAxis::Column, shape.iter().product(), 1)
    }
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
    fn empty_set_is_identity() {
        let s = Samples { shape: vec![3], features: vec![], targets: Targets::Values(vec![]) };
        let n = Normalization::fit(&s);
        assert_eq!((n.mean, n.std), (vec![0.0; 3], vec![1.0; 3]));
    }
}
