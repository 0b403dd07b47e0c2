//! Downsampling that never hides a spike.
//!
//! A chart is a few hundred pixels wide; a series may hold millions of points. The visible range
//! is cut into buckets of equal width (two per pixel by default) and each bucket keeps its first,
//! lowest, highest and last point, in x order: the line drawn through them touches every extreme
//! the full series touches, so a single-step spike is always drawn, at every zoom level (unlike
//! uniform-step or reservoir sampling, which drop it with high probability). Each bucket that
//! merged points also reports its min–max band. NaN values are kept as their own points so that a
//! divergence stays visible.

use serde::Serialize;

/// A series cut to a range and downsampled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Downsampled {
    /// Points in the range before downsampling.
    pub total: usize,
    /// The kept points as `[x, y]`, in x order (`y` null for NaN).
    pub points: Vec<(f64, Option<f64>)>,
    /// For each bucket that merged more than four points: `[x_first, x_last, min, max]`.
    pub bands: Vec<(f64, f64, f64, f64)>,
}

/// Keeps the first, lowest, highest and last point of each of `buckets` equal-width buckets of
/// `[from, to]` over `points` (sorted by x). Every point when there are at most `4 × buckets`.
pub fn downsample(points: &[(f64, f64)], from: f64, to: f64, buckets: usize) -> Downsampled {
    let start = points.partition_point(|p| p.0 < from);
    let end = points.partition_point(|p| p.0 <= to);
    let visible = &points[start..end.max(start)];
    let total = visible.len();
    let y = |v: f64| (!v.is_nan()).then_some(v);
    let buckets = buckets.max(1);
    if total <= 4 * buckets || to <= from {
        return Downsampled { total, points: visible.iter().map(|&(x, v)| (x, y(v))).collect(), bands: Vec::new() };
    }
    let width = (to - from) / buckets as f64;
    let mut kept = Vec::with_capacity(4 * buckets);
    let mut bands = Vec::new();
    let mut i = 0;
    while i < visible.len() {
        let bucket = (((visible[i].0 - from) / width) as usize).min(buckets - 1);
        let mut j = i;
        while j < visible.len() && (((visible[j].0 - from) / width) as usize).min(buckets - 1) == bucket {
            j += 1;
        }
        let slice = &visible[i..j];
        let finite = || slice.iter().enumerate().filter(|(_, p)| !p.1.is_nan());
        let low = finite().min_by(|a, b| a.1.1.total_cmp(&b.1.1)).map(|(k, _)| k);
        let high = finite().max_by(|a, b| a.1.1.total_cmp(&b.1.1)).map(|(k, _)| k);
        let mut chosen: Vec<usize> = vec![0, slice.len() - 1];
        chosen.extend(low);
        chosen.extend(high);
        chosen.extend(slice.iter().position(|p| p.1.is_nan()));
        chosen.sort_unstable();
        chosen.dedup();
        kept.extend(chosen.iter().map(|&k| (slice[k].0, y(slice[k].1))));
        if let (Some(low), Some(high)) = (low, high)
            && slice.len() > 4
        {
            bands.push((slice[0].0, slice[slice.len() - 1].0, slice[low].1, slice[high].1));
        }
        i = j;
    }
    Downsampled { total, points: kept, bands }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_step_spike_survives_every_zoom_level() {
        let n = 1_000_000usize;
        let spike = 654_321usize;
        let points: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                (i as f64, if i == spike { 1e6 } else { ((i as f64) * 0.001).sin() + ((i * 7 % 13) as f64) * 0.01 })
            })
            .collect();
        // From the whole series down to a window of 100 steps around the spike.
        for width in [n, 300_000, 10_000, 1_000, 100] {
            let from = spike.saturating_sub(width / 3) as f64;
            let to = from + width as f64;
            for buckets in [50, 400, 1600] {
                let down = downsample(&points, from, to, buckets);
                assert!(down.points.len() <= 4 * buckets + 1, "{} points for {buckets} buckets", down.points.len());
                assert!(
                    down.points.iter().any(|&(x, y)| x == spike as f64 && y == Some(1e6)),
                    "the spike is missing at width {width} with {buckets} buckets"
                );
            }
        }
    }

    #[test]
    fn few_points_come_back_unchanged_and_nan_is_kept() {
        let points = [(1.0, 0.5), (2.0, f64::NAN), (3.0, 0.25)];
        let down = downsample(&points, 0.0, 10.0, 100);
        assert_eq!(down.points, vec![(1.0, Some(0.5)), (2.0, None), (3.0, Some(0.25))]);
        let many: Vec<(f64, f64)> = (0..1000).map(|i| (i as f64, if i == 500 { f64::NAN } else { 1.0 })).collect();
        let down = downsample(&many, 0.0, 999.0, 10);
        assert!(down.points.iter().any(|p| p.1.is_none()), "a NaN is drawn");
        assert_eq!(down.bands.len(), 10);
    }
}
