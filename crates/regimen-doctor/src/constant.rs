//! Features that never, or almost never, change on the train split.
//!
//! A constant feature carries no information: it wastes input width and, in a table, usually means
//! a broken column (an ID prefix, a unit, a leftover of filtering). A nearly constant column (one
//! value in at least 99.9% of the rows) is worse than useless under per-column normalization: its
//! standard deviation is tiny, so the few odd rows reach the network at 30 or more standard
//! deviations from zero and the column mostly identifies those rows.
//!
//! Images are judged differently, because regimen normalizes them per channel, not per pixel: a
//! border pixel that is always black is normal (MNIST has dozens) and is not amplified. So for
//! images constant pixels are counted and only WARN when they are most of the picture (the images
//! are mostly padding, or loading went wrong), and nearly constant pixels are reported but never
//! warned about. Any data whose features are *all* constant FAILs: every sample looks the same.
//!
//! The most frequent value of each feature is found in two passes with no allocation per value:
//! Boyer–Moore majority voting proposes a candidate per feature, a second pass counts it. This is
//! exact for any value held by more than half the rows, which covers the 99.9% threshold.

use crate::format::{first, fmt_count, fmt_list, num, pct};
use crate::stats::{LayoutText, rows};
use crate::{Check, CheckStatus, Splits};

/// Share of train rows holding a column's most frequent value at or above which a non-constant
/// table column is nearly constant (WARN). At 99.9%, the rare values sit about 30 standard
/// deviations from the mean once normalized; a binary flag set in 1% of rows (10 standard
/// deviations) is still an ordinary feature.
pub const NEAR_CONSTANT_SHARE: f64 = 0.999;

/// Fraction of constant pixels above which image data gets a WARN: when most of the picture never
/// changes, the images are mostly padding or the loader read them wrong.
pub const IMAGE_CONSTANT_WARN_FRACTION: f64 = 0.5;

/// Number of feature indices listed in `measured` and messages.
const LISTED: usize = 10;

/// Bits of a value for equality, with `-0.0` equal to `0.0`.
fn key(v: f32) -> u32 {
    if v == 0.0 { 0 } else { v.to_bits() }
}

/// Per feature: whether it is constant over finite values, and the share of its most frequent value.
struct Profile {
    constant: Vec<usize>,
    near_constant: Vec<(usize, u32)>,
    rows: usize,
}

fn profile(samples: &regimen_data::Samples) -> Profile {
    let d = samples.sample_len();
    let mut min = vec![f32::INFINITY; d];
    let mut max = vec![f32::NEG_INFINITY; d];
    let mut candidate = vec![0u32; d];
    let mut votes = vec![0u32; d];
    for row in rows(samples) {
        let columns =
            row.iter().zip(min.iter_mut().zip(max.iter_mut())).zip(candidate.iter_mut().zip(votes.iter_mut()));
        for ((&v, (lo, hi)), (cand, vote)) in columns {
            *lo = lo.min(v);
            *hi = hi.max(v);
            let k = key(v);
            if *vote == 0 {
                *cand = k;
                *vote = 1;
            } else if *cand == k {
                *vote += 1;
            } else {
                *vote -= 1;
            }
        }
    }
    let mut count = vec![0u32; d];
    for row in rows(samples) {
        for ((&v, &cand), c) in row.iter().zip(&candidate).zip(count.iter_mut()) {
            *c += u32::from(key(v) == cand);
        }
    }
    let n = rows(samples).count();
    let mut constant = Vec::new();
    let mut near_constant = Vec::new();
    for j in 0..d {
        if min[j] == max[j] {
            constant.push(j);
        } else {
            if n > 0 && f64::from(count[j]) / n as f64 >= NEAR_CONSTANT_SHARE {
                near_constant.push((j, count[j]));
            }
        }
    }
    Profile { constant, near_constant, rows: n }
}

/// `constant_features`, on the raw train split: FAIL when every feature is constant; for tables,
/// WARN when any column is constant or nearly constant ([`NEAR_CONSTANT_SHARE`]); for images, WARN
/// when more than [`IMAGE_CONSTANT_WARN_FRACTION`] of the pixels are constant. Measures the counts
/// and the first few indices (0-based).
pub fn constant_features(splits: &Splits<'_>) -> Check {
    let train = splits.train;
    let layout = train.layout();
    let d = train.sample_len();
    let Profile { constant, near_constant, rows: n } = profile(train);
    let near_indices: Vec<usize> = near_constant.iter().map(|(j, _)| *j).collect();
    let fraction = if d > 0 { constant.len() as f64 / d as f64 } else { 0.0 };
    let unit = if layout.is_image() { "pixels" } else { "columns" };

    let (status, message, advice) = if d > 0 && constant.len() == d && train.len() > 1 {
        (
            CheckStatus::Fail,
            format!(
                "All {} {unit} are constant on the train split: every sample looks the same to the network.",
                fmt_count(d)
            ),
            Some("Check the loader: the features were probably not read (all zeros, or one file repeated)."),
        )
    } else if layout.is_image() {
        let sentence = format!(
            "{} of {} pixels are constant on the train split ({}){}",
            fmt_count(constant.len()),
            fmt_count(d),
            pct(fraction),
            if constant.is_empty() { String::from(".") } else { format!(", e.g. {}.", fmt_list(&constant, 5)) },
        );
        if fraction > IMAGE_CONSTANT_WARN_FRACTION {
            (
                CheckStatus::Warn,
                format!("{sentence} Most of each image never changes."),
                Some(
                    "Look at a few images: crop the padding away, or check that the loader reads the right width and height.",
                ),
            )
        } else {
            let normal = if constant.is_empty() { "" } else { " Constant border pixels are normal for images." };
            (CheckStatus::Pass, format!("{sentence}{normal}"), None)
        }
    } else if constant.is_empty() && near_constant.is_empty() {
        (CheckStatus::Pass, format!("None of the {} columns is constant on the train split.", fmt_count(d)), None)
    } else {
        let mut parts = Vec::new();
        if !constant.is_empty() {
            parts.push(format!(
                "{} of {} columns are constant on the train split ({})",
                fmt_count(constant.len()),
                fmt_count(d),
                fmt_list(&constant, 5)
            ));
        }
        if !near_constant.is_empty() {
            let (j, count) = near_constant[0];
            parts.push(format!(
                "{} are nearly constant ({}; column {j} holds one value in {} of {} rows)",
                fmt_count(near_constant.len()),
                fmt_list(&near_indices, 5),
                fmt_count(count as usize),
                fmt_count(n)
            ));
        }
        (
            CheckStatus::Warn,
            format!("{}.", parts.join("; ")),
            Some(
                "Drop constant columns: they carry no information. A nearly constant column mostly identifies its few odd rows, which normalization sends to 30+ standard deviations; drop it, or keep it as a 0/1 flag if the rare value matters.",
            ),
        )
    };
    let mut check = Check::new("constant_features", status, message);
    if let Some(advice) = advice {
        check = check.with_advice(advice);
    }
    check
        .with("layout", layout.kind())
        .with("features", d)
        .with("constant", constant.len())
        .with("constant_fraction", num(fraction))
        .with("constant_indices", first(&constant, LISTED))
        .with("near_constant", near_constant.len())
        .with("near_constant_indices", first(&near_indices, LISTED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{classes, random_rows};
    use regimen_data::Samples;

    fn run(train: &Samples) -> Check {
        let task = classes(2);
        constant_features(&Splits { task: &task, train, val: train, test: train })
    }

    #[test]
    fn varied_columns_pass() {
        let check = run(&random_rows(100, 4, 2, 0));
        assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
        assert_eq!(check.measured["constant"], 0);
    }

    #[test]
    fn a_constant_column_warns() {
        let mut train = random_rows(100, 4, 2, 0);
        for row in train.features.chunks_exact_mut(4) {
            row[2] = 7.5;
        }
        let check = run(&train);
        assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
        assert_eq!(check.measured["constant_indices"], serde_json::json!([2]));
        assert!(check.message.contains("1 of 4 columns are constant"), "{}", check.message);
    }

    #[test]
    fn a_nearly_constant_column_warns() {
        let mut train = random_rows(2000, 3, 2, 0);
        for (i, row) in train.features.chunks_exact_mut(3).enumerate() {
            row[1] = if i == 1234 { 1.0 } else { 0.0 };
        }
        let check = run(&train);
        assert_eq!(check.status, CheckStatus::Warn, "{check:?}");
        assert_eq!((check.measured["constant"].as_u64(), check.measured["near_constant"].as_u64()), (Some(0), Some(1)));
        assert!(check.message.contains("column 1 holds one value in 1,999 of 2,000 rows"), "{}", check.message);
        // -0.0 and 0.0 are one value.
        let flipped: Vec<f32> =
            train.features.iter().enumerate().map(|(i, &v)| if i % 6 == 1 && v == 0.0 { -0.0 } else { v }).collect();
        let check = run(&Samples { features: flipped, ..train });
        assert_eq!(check.measured["near_constant"], 1);
    }

    #[test]
    fn constant_image_borders_pass_but_empty_images_warn() {
        let mut images = random_rows(50, 36, 2, 0);
        images.shape = vec![1, 6, 6];
        for row in images.features.chunks_exact_mut(36) {
            row[..6].fill(0.0);
        }
        let check = run(&images);
        assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
        assert_eq!(check.measured["constant"], 6);
        assert_eq!(check.measured["layout"], "image");
        for row in images.features.chunks_exact_mut(36) {
            row[..30].fill(0.0);
        }
        assert_eq!(run(&images).status, CheckStatus::Warn);
    }

    #[test]
    fn all_constant_fails() {
        let train = Samples { features: vec![1.0; 40], ..random_rows(10, 4, 2, 0) };
        let check = run(&train);
        assert_eq!(check.status, CheckStatus::Fail, "{check:?}");
    }
}
