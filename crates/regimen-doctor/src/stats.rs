//! What the checks share about the data: the layout of a sample and per-channel or per-column
//! statistics. How numbers are written in messages and in `measured` is [`crate::format`].
//!
//! The layout is `regimen_data::Layout`, the rule normalization, augmentation and the models use:
//! a sample of shape `[channels, height, width]` is an image whose statistics are per channel,
//! anything else a table whose statistics are per column. Checks must judge the data the way
//! training treats it, so they use the same type.

use regimen_data::{Layout, Samples};
use regimen_metrics::Moments;

/// How the checks name a [`Layout`] and its values in messages and in `measured`.
pub(crate) trait LayoutText {
    /// `image` or `table`, for `measured`.
    fn kind(&self) -> &'static str;

    /// What one normalization statistic covers: `channel` or `column`.
    fn per(&self) -> &'static str;

    /// A feature index for a person: `pixel 412 (channel 0, y 14, x 20)` or `column 3`, 0-based.
    fn describe(&self, feature: usize) -> String;
}

impl LayoutText for Layout {
    fn kind(&self) -> &'static str {
        if self.is_image() { "image" } else { "table" }
    }

    fn per(&self) -> &'static str {
        if self.is_image() { "channel" } else { "column" }
    }

    fn describe(&self, feature: usize) -> String {
        match *self {
            Layout::Image { height, width, .. } if height * width > 0 => {
                let plane = height * width;
                let (c, rest) = (feature / plane, feature % plane);
                format!("pixel {feature} (channel {c}, y {}, x {})", rest / width, rest % width)
            }
            _ => format!("column {feature}"),
        }
    }
}

/// The rows of `samples`, none when a sample has no values.
pub(crate) fn rows(samples: &Samples) -> impl Iterator<Item = &[f32]> {
    let len = samples.sample_len();
    let count = if len == 0 { 0 } else { samples.len() };
    samples.features.chunks_exact(len.max(1)).take(count)
}

/// Statistics of a set of samples over its finite values, per channel or column and overall.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stats {
    /// Mean of each channel or column.
    pub mean: Vec<f64>,
    /// Population standard deviation of each channel or column.
    pub std: Vec<f64>,
    /// Mean of all values.
    pub mean_all: f64,
    /// Standard deviation of all values.
    pub std_all: f64,
    /// Smallest value (`inf` when there is none).
    pub min: f64,
    /// Largest value (`-inf` when there is none).
    pub max: f64,
    /// Largest absolute value, and where: (sample, feature).
    pub abs_max: (f64, Option<(usize, usize)>),
    /// Number of finite values.
    pub finite: usize,
}

/// Computes [`Stats`] in one pass over the samples, skipping non-finite values. Means and spreads
/// are [`Moments`] merged sample by sample, so large offsets (values near 1000 with a spread of
/// 0.01) keep their precision.
pub(crate) fn stats(samples: &Samples) -> Stats {
    let layout = samples.layout();
    let (groups, group_len) = (layout.groups(), layout.group_len());
    let mut moments = vec![Moments::default(); groups];
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut abs_max = (0.0f64, None);
    for (i, row) in rows(samples).enumerate() {
        for (g, values) in row.chunks_exact(group_len.max(1)).enumerate().take(groups) {
            let finite = values.iter().filter(|v| v.is_finite());
            moments[g].merge(&Moments::of(finite.clone().map(|&v| f64::from(v))));
            let (lo, hi) =
                finite.clone().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            min = min.min(f64::from(lo));
            max = max.max(f64::from(hi));
            let a = f64::from(lo.abs().max(hi.abs()));
            if hi >= lo && a > abs_max.0 {
                let j = values.iter().position(|v| v.is_finite() && f64::from(v.abs()) == a).unwrap_or(0);
                abs_max = (a, Some((i, g * group_len + j)));
            }
        }
    }
    let mut all = Moments::default();
    moments.iter().for_each(|m| all.merge(m));
    Stats {
        mean: moments.iter().map(|m| m.mean().unwrap_or(0.0)).collect(),
        std: moments.iter().map(|m| m.std().unwrap_or(0.0)).collect(),
        mean_all: all.mean().unwrap_or(0.0),
        std_all: all.std().unwrap_or(0.0),
        min,
        max,
        abs_max,
        finite: all.count() as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regimen_data::Targets;

    #[test]
    fn layouts() {
        let image = Layout::of(&[3, 4, 5]);
        assert_eq!((image.groups(), image.group_len()), (3, 20));
        assert_eq!(image.describe(27), "pixel 27 (channel 1, y 1, x 2)");
        let table = Layout::of(&[7]);
        assert_eq!((table.groups(), table.group_len(), table.per()), (7, 1, "column"));
        assert_eq!(table.describe(3), "column 3");
        assert_eq!(Layout::of(&[2, 3]).groups(), 6, "two-dimensional samples are tables");
    }

    #[test]
    fn stats_per_group_and_overall() {
        let s = Samples {
            shape: vec![2, 1, 2],
            features: vec![1.0, 3.0, 1000.0, 1000.02, 1.0, 3.0, 1000.0, 1000.02],
            targets: Targets::Classes(vec![0, 0]),
        };
        let st = stats(&s);
        assert_eq!(st.mean[0], 2.0);
        assert!((st.mean[1] - 1000.01).abs() < 1e-4);
        assert!((st.std[1] - 0.01).abs() < 1e-4, "{}", st.std[1]);
        assert_eq!((st.min, st.max, st.finite), (1.0, f64::from(1000.02f32), 8));
        assert_eq!(st.abs_max.1, Some((0, 3)));
        assert!((st.mean_all - 501.005).abs() < 1e-3);
    }

    #[test]
    fn stats_skip_non_finite() {
        let s = Samples {
            shape: vec![2],
            features: vec![f32::NAN, 1.0, 2.0, f32::INFINITY],
            targets: Targets::Classes(vec![0, 0]),
        };
        let st = stats(&s);
        assert_eq!(st.mean, vec![2.0, 1.0]);
        assert_eq!(st.finite, 2);
        assert_eq!(st.abs_max, (2.0, Some((1, 0))));
    }

    proptest::proptest! {
        /// One-pass shifted statistics agree with the two-pass textbook formulas.
        #[test]
        fn stats_match_two_pass_formulas(
            values in proptest::collection::vec(-1e4f32..1e4, 3..200),
            offset in -1e5f32..1e5,
        ) {
            let n = values.len() / 3 * 3;
            let features: Vec<f32> = values[..n].iter().map(|v| v + offset).collect();
            let s = Samples { shape: vec![3], features: features.clone(), targets: Targets::Classes(vec![0; n / 3]) };
            let st = stats(&s);
            for g in 0..3 {
                let column: Vec<f64> = features.iter().skip(g).step_by(3).map(|&v| f64::from(v)).collect();
                let mean = column.iter().sum::<f64>() / column.len() as f64;
                let std = (column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / column.len() as f64).sqrt();
                proptest::prop_assert!((st.mean[g] - mean).abs() <= 1e-9 * (1.0 + mean.abs()), "{} {}", st.mean[g], mean);
                proptest::prop_assert!((st.std[g] - std).abs() <= 1e-6 * (1.0 + std), "{} {}", st.std[g], std);
            }
        }
    }
}
