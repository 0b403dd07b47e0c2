//! The measurements of `regimen explore` that need no model: shortcuts (one feature or image region
//! that predicts the label on its own), variation (nearest neighbours within and across classes),
//! outliers (the samples furthest from their class), and the label-noise estimate from a model's
//! out-of-fold probabilities (confident learning, Northcutt et al. 2021).

use regimen_data::{Layout, Samples, Targets, Task};
use serde::Serialize;

use crate::report::Check;

/// Bins of the one-feature classifier of [`shortcuts`].
const BINS: usize = 16;

/// Accuracy of a classifier that bins one value (quantile bins fitted on `train`) and predicts the
/// majority class of its bin, measured on `val`.
fn binned_accuracy(train: &[f32], train_labels: &[u32], val: &[f32], val_labels: &[u32], classes: usize) -> f64 {
    let mut sorted: Vec<f32> = train.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() || val.is_empty() {
        return 0.0;
    }
    sorted.sort_by(f32::total_cmp);
    let edges: Vec<f32> = (1..BINS).map(|b| sorted[b * (sorted.len() - 1) / BINS]).collect();
    let bin = |v: f32| edges.partition_point(|&e| e < v);
    let mut counts = vec![vec![0usize; classes]; BINS];
    for (&v, &label) in train.iter().zip(train_labels) {
        counts[bin(v)][label as usize] += 1;
    }
    let overall = argmax_count(&counts.iter().fold(vec![0; classes], |mut acc, c| {
        acc.iter_mut().zip(c).for_each(|(a, b)| *a += b);
        acc
    }));
    let majority: Vec<usize> =
        counts.iter().map(|c| if c.iter().sum::<usize>() == 0 { overall } else { argmax_count(c) }).collect();
    let right = val.iter().zip(val_labels).filter(|&(&v, &label)| majority[bin(v)] == label as usize).count();
    right as f64 / val.len() as f64
}

fn argmax_count(counts: &[usize]) -> usize {
    let mut best = 0;
    for (i, &c) in counts.iter().enumerate() {
        if c > counts[best] {
            best = i;
        }
    }
    best
}

/// A candidate shortcut: one feature, or the mean of one image region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shortcut {
    /// `column x3`, `pixel (0, 0) of channel 0`, `the top-left corner` …
    pub what: String,
    /// Validation accuracy of the one-value classifier.
    pub accuracy: f64,
}

/// An image region checked as a shortcut: rows `rows.0..rows.1`, columns `columns.0..columns.1`,
/// only its 2-pixel rim when `ring`.
struct Region {
    name: &'static str,
    rows: (usize, usize),
    columns: (usize, usize),
    ring: bool,
}

/// The image regions checked as shortcuts: a 2-pixel border ring, the four 4×4 corners and the
/// centre quarter.
fn regions(height: usize, width: usize) -> Vec<Region> {
    let c = 4.min(height).min(width);
    let region = |name, rows, columns, ring| Region { name, rows, columns, ring };
    vec![
        region("the 2-pixel border", (0, height), (0, width), true),
        region("the top-left corner", (0, c), (0, c), false),
        region("the top-right corner", (0, c), (width - c, width), false),
        region("the bottom-left corner", (height - c, height), (0, c), false),
        region("the bottom-right corner", (height - c, height), (width - c, width), false),
        region("the centre", (height / 4, height - height / 4), (width / 4, width - width / 4), false),
    ]
}

/// The value of `region` of every sample (mean over its pixels and channels).
fn region_values(samples: &Samples, region: &Region) -> Vec<f32> {
    let Layout::Image { channels, height, width } = Layout::of(&samples.shape) else { return Vec::new() };
    let Region { rows: (y0, y1), columns: (x0, x1), ring, .. } = *region;
    (0..samples.len())
        .map(|i| {
            let row = samples.row(i);
            let (mut sum, mut n) = (0.0f64, 0usize);
            for c in 0..channels {
                for y in y0..y1 {
                    for x in x0..x1 {
                        if ring && y >= 2 && y + 2 < height && x >= 2 && x + 2 < width {
                            continue;
                        }
                        sum += f64::from(row[(c * height + y) * width + x]);
                        n += 1;
                    }
                }
            }
            (sum / n.max(1) as f64) as f32
        })
        .collect()
}

/// *What is spurious?* Every single feature (column or pixel) and image region, each on its own,
/// as a 16-bin classifier fitted on `train` and scored on `val`. WARN naming the best one when it
/// predicts the label far above the majority baseline (at least half-way from the baseline to
/// perfect, and at least 80%): a target leak, a watermark, or a feature that really is that
/// strong, which a person should confirm.
pub fn shortcuts(train: &Samples, val: &Samples, task: &Task, feature_names: Option<&[String]>) -> Check {
    let (Task::Classification { classes }, Targets::Classes(train_labels), Targets::Classes(val_labels)) =
        (task, &train.targets, &val.targets)
    else {
        return Check::pass("shortcuts", "Skipped: shortcuts are measured for classification.");
    };
    let k = classes.len().max(1);
    let mut counts = vec![0usize; k];
    for &l in val_labels {
        counts[l as usize] += 1;
    }
    let baseline = counts.iter().max().copied().unwrap_or(0) as f64 / val_labels.len().max(1) as f64;
    let layout = Layout::of(&train.shape);
    let column = |samples: &Samples, j: usize| -> Vec<f32> { (0..samples.len()).map(|i| samples.row(i)[j]).collect() };
    let mut found: Vec<Shortcut> = Vec::new();
    for j in 0..train.sample_len() {
        let what = match (layout, feature_names) {
            (Layout::Image { height, width, .. }, _) => {
                let (c, rest) = (j / (height * width), j % (height * width));
                format!("pixel (row {}, column {}) of channel {c}", rest / width, rest % width)
            }
            (_, Some(names)) => format!("column `{}`", names.get(j).map_or("?", String::as_str)),
            _ => format!("feature {j}"),
        };
        let accuracy = binned_accuracy(&column(train, j), train_labels, &column(val, j), val_labels, k);
        found.push(Shortcut { what, accuracy });
    }
    if let Layout::Image { height, width, .. } = layout {
        for region in regions(height, width) {
            let accuracy = binned_accuracy(
                &region_values(train, &region),
                train_labels,
                &region_values(val, &region),
                val_labels,
                k,
            );
            found.push(Shortcut { what: format!("the mean of {}", region.name), accuracy });
        }
    }
    found.sort_by(|a, b| b.accuracy.total_cmp(&a.accuracy));
    let Some(best) = found.first().cloned() else { return Check::pass("shortcuts", "No feature to measure.") };
    let threshold = (baseline + 0.5 * (1.0 - baseline)).max(0.8);
    let check = if best.accuracy >= threshold {
        Check::warn(
            "shortcuts",
            format!(
                "{} alone predicts the label with {:.1}% validation accuracy (majority baseline {:.1}%): a network \
                 will learn this shortcut before anything else.",
                capitalize(&best.what),
                100.0 * best.accuracy,
                100.0 * baseline
            ),
        )
        .with_advice(
            "Confirm it is a real signal and not a leak (a column derived from the label, an ID, a watermark, a \
             border or corner that differs by class); drop or crop it if it is not.",
        )
    } else {
        Check::pass(
            "shortcuts",
            format!(
                "No single feature or image region predicts the label on its own: the best, {}, reaches {:.1}% \
                 (majority baseline {:.1}%).",
                best.what,
                100.0 * best.accuracy,
                100.0 * baseline
            ),
        )
    };
    check.with("best", best.what.clone()).with("best_accuracy", best.accuracy).with("baseline", baseline)
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Standardizes each feature of `samples` (over the samples); rows of at most `limit` samples,
/// taken evenly.
fn standardized(samples: &Samples, limit: usize) -> (Vec<usize>, Vec<Vec<f32>>) {
    let n = samples.len();
    let step = n.div_ceil(limit.max(1)).max(1);
    let picked: Vec<usize> = (0..n).step_by(step).collect();
    let width = samples.sample_len();
    let mut mean = vec![0.0f64; width];
    let mut square = vec![0.0f64; width];
    for &i in &picked {
        for (j, &v) in samples.row(i).iter().enumerate() {
            mean[j] += f64::from(v);
            square[j] += f64::from(v) * f64::from(v);
        }
    }
    let count = picked.len().max(1) as f64;
    let std: Vec<f64> = mean
        .iter()
        .zip(&square)
        .map(|(m, s)| {
            let m = m / count;
            (s / count - m * m).max(0.0).sqrt()
        })
        .collect();
    let rows = picked
        .iter()
        .map(|&i| {
            samples
                .row(i)
                .iter()
                .enumerate()
                .map(|(j, &v)| if std[j] > 0.0 { ((f64::from(v) - mean[j] / count) / std[j]) as f32 } else { 0.0 })
                .collect()
        })
        .collect();
    (picked, rows)
}

fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt()
}

/// *How much variation?* On up to 1,000 training samples (standardized features): the median
/// distance to the nearest sample of the same class against the nearest of another class, the
/// 1-nearest-neighbour error (a rough floor on what simple similarity can do), and near-duplicates
/// (a neighbour closer than 1% of the median neighbour distance).
pub fn variation(train: &Samples, task: &Task) -> Check {
    let labels = match (&train.targets, task) {
        (Targets::Classes(labels), Task::Classification { .. }) => Some(labels),
        _ => None,
    };
    let (picked, rows) = standardized(train, 1000);
    if rows.len() < 3 {
        return Check::pass("variation", "Skipped: fewer than 3 training samples.");
    }
    let mut same = Vec::new();
    let mut other = Vec::new();
    let mut nearest = Vec::with_capacity(rows.len());
    let mut errors = 0usize;
    for (a, row) in rows.iter().enumerate() {
        let (mut best_same, mut best_other, mut best) = (f32::INFINITY, f32::INFINITY, (f32::INFINITY, a));
        for (b, candidate) in rows.iter().enumerate() {
            if a == b {
                continue;
            }
            let d = distance(row, candidate);
            if d < best.0 {
                best = (d, b);
            }
            match labels {
                Some(labels) if labels[picked[a]] != labels[picked[b]] => best_other = best_other.min(d),
                _ => best_same = best_same.min(d),
            }
        }
        nearest.push(best.0);
        if let Some(labels) = labels
            && labels[picked[a]] != labels[picked[best.1]]
        {
            errors += 1;
        }
        same.push(best_same);
        if best_other.is_finite() {
            other.push(best_other);
        }
    }
    let median = |v: &mut Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f32::NAN)
    };
    let typical = median(&mut nearest.clone());
    let near_duplicates = nearest.iter().filter(|&&d| d < 0.01 * typical).count();
    let (same, other) = (median(&mut same), median(&mut other));
    let n = rows.len();
    let mut check = match labels {
        Some(_) => {
            let error = errors as f64 / n as f64;
            let message = format!(
                "On {n} training samples, the nearest sample of the same class is at a median distance of {same:.2} \
                 and of another class at {other:.2} (standardized features; ratio {:.2}); the nearest neighbour has \
                 another label for {:.1}% of samples; {near_duplicates} samples have a near-duplicate.",
                same / other,
                100.0 * error
            );
            let check = if same >= other {
                Check::warn("variation", message).with_advice(
                    "Classes overlap in raw feature space: the model must learn features that separate them, so \
                     expect to need capacity, augmentation and more data.",
                )
            } else {
                Check::pass("variation", message)
            };
            check.with("one_nn_error", error).with("same_class_distance", f64::from(same))
        }
        None => Check::pass(
            "variation",
            format!(
                "On {n} training samples the median nearest-neighbour distance is {typical:.2}; {near_duplicates} samples have a near-duplicate."
            ),
        ),
    };
    check = check.with("other_class_distance", f64::from(other)).with("near_duplicates", near_duplicates);
    check
}

/// A sample far from its class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outlier {
    /// Its row in the split.
    pub index: usize,
    /// Its class.
    pub class: String,
    /// Distance to its class's mean, in multiples of that class's median distance.
    pub score: f64,
    /// The features that put it there, with their standardized values.
    pub why: Vec<(String, f64)>,
}

/// The `limit` samples furthest from the mean of their class (standardized features), each with
/// the features that stand out most (for tables; images are shown instead).
pub fn outliers(samples: &Samples, task: &Task, limit: usize, feature_names: Option<&[String]>) -> Vec<Outlier> {
    let (picked, rows) = standardized(samples, usize::MAX);
    let (labels, classes): (Vec<u32>, Vec<String>) = match (&samples.targets, task) {
        (Targets::Classes(l), Task::Classification { classes }) => (l.clone(), classes.clone()),
        _ => (vec![0; samples.len()], vec!["all".to_string()]),
    };
    let width = samples.sample_len();
    let mut centroids = vec![vec![0.0f32; width]; classes.len()];
    let mut counts = vec![0usize; classes.len()];
    for (&i, row) in picked.iter().zip(&rows) {
        let c = labels[i] as usize;
        counts[c] += 1;
        centroids[c].iter_mut().zip(row).for_each(|(m, v)| *m += v);
    }
    for (centroid, &count) in centroids.iter_mut().zip(&counts) {
        centroid.iter_mut().for_each(|m| *m /= count.max(1) as f32);
    }
    let distances: Vec<f32> =
        picked.iter().zip(&rows).map(|(&i, row)| distance(row, &centroids[labels[i] as usize])).collect();
    let mut typical = vec![Vec::new(); classes.len()];
    for (&i, &d) in picked.iter().zip(&distances) {
        typical[labels[i] as usize].push(d);
    }
    let medians: Vec<f32> = typical
        .iter_mut()
        .map(|v| {
            v.sort_by(f32::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(1.0).max(f32::EPSILON)
        })
        .collect();
    let mut scored: Vec<(usize, f64)> =
        picked.iter().zip(&distances).map(|(&i, &d)| (i, f64::from(d / medians[labels[i] as usize]))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let is_image = Layout::of(&samples.shape).is_image();
    scored
        .into_iter()
        .take(limit)
        .map(|(i, score)| {
            let why = if is_image {
                Vec::new()
            } else {
                let mut features: Vec<(String, f64)> = rows[i]
                    .iter()
                    .enumerate()
                    .map(|(j, &z)| {
                        let name =
                            feature_names.and_then(|n| n.get(j)).cloned().unwrap_or_else(|| format!("feature {j}"));
                        (name, f64::from(z))
                    })
                    .collect();
                features.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
                features.truncate(3);
                features
            };
            Outlier { index: i, class: classes[labels[i] as usize].clone(), score, why }
        })
        .collect()
}

/// The label-noise estimate of confident learning from out-of-fold probabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseEstimate {
    /// Estimated share of wrong labels.
    pub share: f64,
    /// The samples most likely mislabelled, most suspicious first: (row, given class, likely class,
    /// the likely class's probability).
    pub suspects: Vec<(usize, usize, usize, f64)>,
}

/// Confident learning's count: each class's threshold is the mean probability the model gives it
/// on samples labelled with it; a sample whose given label is `i` counts as mislabelled when another
/// class `j` reaches its threshold and is the most probable such class. `probs` holds `classes`
/// probabilities per sample, predicted by a model that did not train on that sample.
pub fn label_noise(labels: &[u32], probs: &[f32], classes: usize) -> NoiseEstimate {
    let n = labels.len();
    let mut sums = vec![0.0f64; classes];
    let mut counts = vec![0usize; classes];
    for (i, &label) in labels.iter().enumerate() {
        sums[label as usize] += f64::from(probs[i * classes + label as usize]);
        counts[label as usize] += 1;
    }
    let thresholds: Vec<f64> = sums.iter().zip(&counts).map(|(s, &c)| if c > 0 { s / c as f64 } else { 1.0 }).collect();
    let mut suspects = Vec::new();
    for (i, &label) in labels.iter().enumerate() {
        let p = &probs[i * classes..(i + 1) * classes];
        let likely = (0..classes).filter(|&j| f64::from(p[j]) >= thresholds[j]).max_by(|&a, &b| p[a].total_cmp(&p[b]));
        if let Some(j) = likely.filter(|&j| j != label as usize) {
            suspects.push((i, label as usize, j, f64::from(p[j])));
        }
    }
    let share = suspects.len() as f64 / n.max(1) as f64;
    suspects.sort_by(|a, b| b.3.total_cmp(&a.3));
    NoiseEstimate { share, suspects }
}

/// One feature (a column, or an image channel) summarized on a split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureSummary {
    /// `column x3`, `channel 0`, `feature 2`.
    pub feature: String,
    /// Mean over the samples.
    pub mean: f64,
    /// Standard deviation.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Per class (classification): its share of samples in each of [`HISTOGRAM_BINS`] equal bins
    /// from `min` to `max`.
    pub histograms: Vec<(String, Vec<f64>)>,
}

/// Bins of the per-class histograms of [`feature_summaries`].
pub const HISTOGRAM_BINS: usize = 20;

/// Mean, spread, range and per-class histogram of every feature (columns of a table, channels of
/// an image).
pub fn feature_summaries(samples: &Samples, task: &Task, feature_names: Option<&[String]>) -> Vec<FeatureSummary> {
    let layout = Layout::of(&samples.shape);
    let (groups, group_len) = (layout.groups(), layout.group_len().max(1));
    let classes: Vec<String> = match task {
        Task::Classification { classes } => classes.clone(),
        Task::Regression => vec!["all".to_string()],
    };
    let label = |i: usize| match &samples.targets {
        Targets::Classes(labels) => labels[i] as usize,
        Targets::Values(_) => 0,
    };
    (0..groups)
        .map(|g| {
            let values = |i: usize| &samples.row(i)[g * group_len..(g + 1) * group_len];
            let (mut sum, mut square, mut min, mut max, mut n) =
                (0.0f64, 0.0f64, f64::INFINITY, f64::NEG_INFINITY, 0usize);
            for i in 0..samples.len() {
                for &v in values(i).iter().filter(|v| v.is_finite()) {
                    let v = f64::from(v);
                    (sum, square, min, max, n) = (sum + v, square + v * v, min.min(v), max.max(v), n + 1);
                }
            }
            let mean = sum / n.max(1) as f64;
            let std = (square / n.max(1) as f64 - mean * mean).max(0.0).sqrt();
            let width = (max - min) / HISTOGRAM_BINS as f64;
            let mut counts = vec![vec![0usize; HISTOGRAM_BINS]; classes.len()];
            for i in 0..samples.len() {
                for &v in values(i).iter().filter(|v| v.is_finite()) {
                    let bin = if width > 0.0 { ((f64::from(v) - min) / width) as usize } else { 0 };
                    counts[label(i).min(classes.len() - 1)][bin.min(HISTOGRAM_BINS - 1)] += 1;
                }
            }
            let histograms = classes
                .iter()
                .zip(&counts)
                .map(|(class, c)| {
                    let total = c.iter().sum::<usize>().max(1) as f64;
                    (class.clone(), c.iter().map(|&k| k as f64 / total).collect())
                })
                .collect();
            let feature = match (layout.is_image(), feature_names) {
                (true, _) => format!("channel {g}"),
                (false, Some(names)) => format!("column {}", names.get(g).map_or("?", String::as_str)),
                (false, None) => format!("feature {g}"),
            };
            FeatureSummary {
                feature,
                mean,
                std,
                min: if n > 0 { min } else { f64::NAN },
                max: if n > 0 { max } else { f64::NAN },
                histograms,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[[f32; 2]], labels: &[u32]) -> Samples {
        Samples {
            shape: vec![2],
            features: rows.iter().flatten().copied().collect(),
            targets: Targets::Classes(labels.to_vec()),
        }
    }

    fn task(k: usize) -> Task {
        Task::Classification { classes: (0..k).map(|c| c.to_string()).collect() }
    }

    #[test]
    fn a_column_that_copies_the_label_is_a_shortcut_and_noise_is_not() {
        let n = 300;
        let labels: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
        let noise = |i: usize| ((i * 7919 % 1000) as f32) / 1000.0;
        let rows: Vec<[f32; 2]> = (0..n).map(|i| [noise(i), labels[i] as f32]).collect();
        let (train, val) = (table(&rows[..200], &labels[..200]), table(&rows[200..], &labels[200..]));
        let names = vec!["x".to_string(), "leak".to_string()];
        let check = shortcuts(&train, &val, &task(3), Some(&names));
        assert_eq!(check.status, crate::CheckStatus::Warn, "{}", check.message);
        assert!(check.message.starts_with("Column `leak` alone predicts the label with 100.0%"), "{}", check.message);
        let clean: Vec<[f32; 2]> = (0..n).map(|i| [noise(i), noise(i * 3 + 1)]).collect();
        let check =
            shortcuts(&table(&clean[..200], &labels[..200]), &table(&clean[200..], &labels[200..]), &task(3), None);
        assert_eq!(check.status, crate::CheckStatus::Pass, "{}", check.message);
    }

    #[test]
    fn confident_learning_counts_confidently_contradicted_labels() {
        // Four samples of class 0 and four of class 1; the model is sure sample 3 is a 1.
        let labels = [0, 0, 0, 0, 1, 1, 1, 1];
        let mut probs = Vec::new();
        for (i, &l) in labels.iter().enumerate() {
            let p1 = if i == 3 {
                0.95
            } else if l == 1 {
                0.9
            } else {
                0.1
            };
            probs.extend([1.0 - p1, p1]);
        }
        let estimate = label_noise(&labels, &probs, 2);
        assert_eq!(estimate.suspects.len(), 1);
        assert_eq!(estimate.suspects[0].0, 3);
        assert!((estimate.share - 0.125).abs() < 1e-9);
    }

    #[test]
    fn the_outlier_is_the_sample_far_from_its_class() {
        let labels = [0, 0, 0, 0, 0, 1, 1, 1];
        let rows = [[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [0.1, 0.1], [9.0, 0.0], [5.0, 5.0], [5.1, 5.0], [5.0, 5.1]];
        let names = vec!["a".to_string(), "b".to_string()];
        let found = outliers(&table(&rows, &labels), &task(2), 1, Some(&names));
        assert_eq!(found[0].index, 4);
        assert_eq!(found[0].why[0].0, "a");
    }

    #[test]
    fn features_are_summarized_with_per_class_histograms() {
        let labels = [0, 0, 1, 1];
        let rows = [[0.0, 5.0], [1.0, 5.0], [2.0, 5.0], [3.0, 5.0]];
        let names = vec!["a".to_string(), "b".to_string()];
        let summaries = feature_summaries(&table(&rows, &labels), &task(2), Some(&names));
        assert_eq!((summaries[0].feature.as_str(), summaries[0].mean, summaries[0].max), ("column a", 1.5, 3.0));
        let (class, shares) = &summaries[0].histograms[1];
        assert_eq!((class.as_str(), shares.iter().sum::<f64>()), ("1", 1.0));
        assert_eq!(shares[0], 0.0, "class 1 sits at the top of the range");
        assert_eq!(summaries[1].std, 0.0);
    }

    #[test]
    fn separated_classes_have_close_neighbours_of_their_own() {
        let labels: Vec<u32> = (0..100).map(|i| (i % 2) as u32).collect();
        let rows: Vec<[f32; 2]> = (0..100).map(|i| [labels[i] as f32 * 10.0 + (i as f32) * 0.01, 0.0]).collect();
        let check = variation(&table(&rows, &labels), &task(2));
        assert_eq!(check.status, crate::CheckStatus::Pass, "{}", check.message);
        assert!(check.message.contains("another label for 0.0% of samples"), "{}", check.message);
    }
}
