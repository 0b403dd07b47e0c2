//! What the checks share: the layout of a sample, per-channel or per-column statistics, and the
//! formatting of numbers in messages and in `measured`.
//!
//! The layout follows `regimen_data::normalize`: a sample of shape `[channels, height, width]` is an
//! image whose statistics are per channel, anything else a table whose statistics are per column.
//! Checks must judge the data the way training treats it, so they use the same rule.

use regimen_data::{Samples, Task};
use serde_json::Value;

/// How the values of one sample are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `[channels, height, width]`, channel-major.
    Image {
        /// Number of channels.
        channels: usize,
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
    },
    /// One value per column.
    Table {
        /// Number of columns.
        columns: usize,
    },
}

impl Layout {
    /// The layout of samples of `shape`.
    pub(crate) fn of(shape: &[usize]) -> Layout {
        match *shape {
            [channels, height, width] => Layout::Image { channels, height, width },
            _ => Layout::Table { columns: shape.iter().product() },
        }
    }

    /// True for images.
    pub(crate) fn is_image(&self) -> bool {
        matches!(self, Layout::Image { .. })
    }

    /// `image` or `table`, for `measured`.
    pub(crate) fn kind(&self) -> &'static str {
        if self.is_image() { "image" } else { "table" }
    }

    /// What one normalization statistic covers: `channel` or `column`.
    pub(crate) fn per(&self) -> &'static str {
        if self.is_image() { "channel" } else { "column" }
    }

    /// Number of statistics: channels or columns.
    pub(crate) fn groups(&self) -> usize {
        match *self {
            Layout::Image { channels, .. } => channels,
            Layout::Table { columns } => columns,
        }
    }

    /// Number of consecutive values that share one statistic: a channel's pixels, or 1.
    pub(crate) fn group_len(&self) -> usize {
        match *self {
            Layout::Image { height, width, .. } => height * width,
            Layout::Table { .. } => 1,
        }
    }

    /// A feature index for a person: `pixel 412 (channel 0, y 14, x 20)` or `column 3`, 0-based.
    pub(crate) fn describe(&self, feature: usize) -> String {
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

/// Computes [`Stats`] in one pass, skipping non-finite values. Sums are shifted by each group's first
/// value so that large offsets (values near 1000 with a spread of 0.01) keep their precision.
pub(crate) fn stats(samples: &Samples) -> Stats {
    let layout = Layout::of(&samples.shape);
    let (groups, group_len) = (layout.groups(), layout.group_len());
    let mut shift = vec![f64::NAN; groups];
    let mut sum = vec![0.0f64; groups];
    let mut sum_sq = vec![0.0f64; groups];
    let mut count = vec![0usize; groups];
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut abs_max = (0.0f64, None);
    let mut abs_bound = 0.0f32;
    for (i, row) in rows(samples).enumerate() {
        for (g, values) in row.chunks_exact(group_len.max(1)).enumerate().take(groups) {
            if shift[g].is_nan() {
                shift[g] = values.iter().find(|v| v.is_finite()).map_or(f64::NAN, |&v| f64::from(v));
            }
            let k = if shift[g].is_nan() { 0.0 } else { shift[g] };
            let Moments { sum: s, sum_sq: sq, count: n, min: lo, max: hi } = moments(values, k);
            sum[g] += s;
            sum_sq[g] += sq;
            count[g] += n;
            min = min.min(f64::from(lo));
            max = max.max(f64::from(hi));
            let a = lo.abs().max(hi.abs());
            if n > 0 && a > abs_bound {
                abs_bound = a;
                let j = values.iter().position(|v| v.is_finite() && v.abs() == a).unwrap_or(0);
                abs_max = (f64::from(a), Some((i, g * group_len + j)));
            }
        }
    }
    let mut mean = Vec::with_capacity(groups);
    let mut std = Vec::with_capacity(groups);
    let (mut total, mut total_sq, mut finite) = (0.0f64, 0.0f64, 0usize);
    for g in 0..groups {
        let n = count[g] as f64;
        let k = if shift[g].is_nan() { 0.0 } else { shift[g] };
        let m = if count[g] > 0 { sum[g] / n } else { 0.0 };
        let variance = if count[g] > 0 { (sum_sq[g] / n - m * m).max(0.0) } else { 0.0 };
        mean.push(m + k);
        std.push(variance.sqrt());
        // Overall sums from the groups' shifted moments.
        total += sum[g] + n * k;
        total_sq += sum_sq[g] + 2.0 * k * sum[g] + n * k * k;
        finite += count[g];
    }
    let (mean_all, std_all) = if finite > 0 {
        let m = total / finite as f64;
        (m, (total_sq / finite as f64 - m * m).max(0.0).sqrt())
    } else {
        (0.0, 0.0)
    };
    Stats { mean, std, mean_all, std_all, min, max, abs_max, finite }
}

/// Shifted sums, count and range of the finite values of a slice.
struct Moments {
    sum: f64,
    sum_sq: f64,
    count: usize,
    min: f32,
    max: f32,
}

/// [`Moments`] of `values` shifted by `k`. Clean slices (the usual case) take a branch-free path
/// with eight independent accumulators, which the compiler vectorizes.
fn moments(values: &[f32], k: f64) -> Moments {
    const LANES: usize = 8;
    if values.len() >= LANES && values.iter().all(|v| v.is_finite()) {
        let (mut s, mut sq) = ([0.0f64; LANES], [0.0f64; LANES]);
        let (mut lo, mut hi) = ([f32::INFINITY; LANES], [f32::NEG_INFINITY; LANES]);
        let chunks = values.chunks_exact(LANES);
        let tail = chunks.remainder();
        for chunk in chunks {
            for i in 0..LANES {
                let d = f64::from(chunk[i]) - k;
                s[i] += d;
                sq[i] += d * d;
                lo[i] = lo[i].min(chunk[i]);
                hi[i] = hi[i].max(chunk[i]);
            }
        }
        for (i, &v) in tail.iter().enumerate() {
            let d = f64::from(v) - k;
            s[i] += d;
            sq[i] += d * d;
            lo[i] = lo[i].min(v);
            hi[i] = hi[i].max(v);
        }
        return Moments {
            sum: s.iter().sum(),
            sum_sq: sq.iter().sum(),
            count: values.len(),
            min: lo.iter().copied().fold(f32::INFINITY, f32::min),
            max: hi.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        };
    }
    let mut m = Moments { sum: 0.0, sum_sq: 0.0, count: 0, min: f32::INFINITY, max: f32::NEG_INFINITY };
    for &v in values.iter().filter(|v| v.is_finite()) {
        let d = f64::from(v) - k;
        m.sum += d;
        m.sum_sq += d * d;
        m.count += 1;
        m.min = m.min.min(v);
        m.max = m.max.max(v);
    }
    m
}

/// `x` rounded to 4 significant digits as a JSON number; `null` when not finite.
pub fn num(x: f64) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    Value::from(round_sig(x))
}

/// `x` rounded to 4 significant digits.
pub fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    // Through decimal text, which rounds exactly where scaling by a power of ten would not
    // (7.02e-125 must not come back as 7.019999999999998e-125).
    format!("{x:.3e}").parse().unwrap_or(x)
}

/// A number for a sentence: 4 significant digits, thousands separated, scientific when tiny or huge.
pub(crate) fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if !(1e-3..1e9).contains(&a) {
        return format!("{x:.2e}");
    }
    let r = round_sig(x);
    if r.fract() == 0.0 && a >= 1.0 {
        let s = fmt_count(r.abs() as usize);
        return if r < 0.0 { format!("-{s}") } else { s };
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    let text = format!("{r:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// An integer with thousands separators: `7,840,000`.
pub(crate) fn fmt_count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A fraction as a percentage with one decimal: `99.0%`.
pub fn pct(fraction: f64) -> String {
    format!("{:.1}%", 100.0 * fraction)
}

/// `text` with its first letter in upper case, to start a sentence with a split's name.
pub(crate) fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The name of class `k`, or its number when the task does not name it.
pub(crate) fn class_name(task: &Task, k: usize) -> String {
    match task {
        Task::Classification { classes } => classes.get(k).cloned().unwrap_or_else(|| k.to_string()),
        Task::Regression => k.to_string(),
    }
}

/// Up to `limit` items of a list, as a JSON array.
pub(crate) fn first<T: Clone + Into<Value>>(items: &[T], limit: usize) -> Value {
    Value::Array(items.iter().take(limit).cloned().map(Into::into).collect())
}

/// A list for a sentence: `0, 1, 2` or `0, 1, 2, …` when there are more than `limit`.
pub(crate) fn fmt_list<T: ToString>(items: &[T], limit: usize) -> String {
    let mut text: Vec<String> = items.iter().take(limit).map(ToString::to_string).collect();
    if items.len() > limit {
        text.push("…".into());
    }
    text.join(", ")
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

    #[test]
    fn numbers() {
        assert_eq!(fmt_count(7_840_000), "7,840,000");
        assert_eq!(fmt_count(12), "12");
        assert_eq!(fmt_num(99.0), "99");
        assert_eq!(fmt_num(1234.5678), "1,235");
        assert_eq!(fmt_num(0.123456), "0.1235");
        assert_eq!(fmt_num(-2.5), "-2.5");
        assert_eq!(fmt_num(1e-7), "1.00e-7");
        assert_eq!(num(0.0123456), Value::from(0.01235));
        assert_eq!(num(f64::NAN), Value::Null);
        assert_eq!(num(7.019_999e-125), Value::from(7.02e-125));
        assert_eq!(round_sig(123_456.0), 123_500.0);
        assert_eq!(pct(0.99), "99.0%");
        assert_eq!(fmt_list(&[1, 2, 3], 2), "1, 2, …");
        assert_eq!(capitalize("train is"), "Train is");
        assert_eq!(capitalize(""), "");
    }
}
