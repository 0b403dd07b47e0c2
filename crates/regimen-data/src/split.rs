//! Seeded, stable train/validation/test splits, and the identity of a dataset.
//!
//! A split must put the same sample in the same split on every run and every machine, or results
//! cannot be compared and a test set leaks into training between runs. Shuffling row indices with a
//! seeded RNG does not give that: reorder the rows of a CSV, or append one, and every sample moves.
//! So each sample is ranked by a keyed hash of its own content instead: blake3 keyed with a key
//! derived from the split seed, over the sample's feature bytes (`f32` little-endian) followed by its
//! target (`u32` class or `f32` value, little-endian), ties (identical samples) broken by row index.
//! Within each class (classification) or over all samples (regression), the lowest-ranked samples
//! go to test, the next to validation, the rest to train, so a sample's split depends only on its
//! content, the seed and the sizes asked for, never on row order.
//!
//! Classification splits are stratified: every class is split in the same proportions, with the
//! per-class counts chosen by largest remainder so that the totals are exactly what was asked, and
//! at least one sample of every class is kept for training.
//!
//! The [`SplitSpec::Auto`] rule follows the recipe: 60/20/20 for up to 10,000 samples, validation
//! and test each shrinking toward 1% as data grows to a million (interpolated on a log scale), and
//! 1% beyond. When a format ships its own test split, that split is the test set as is and only the
//! validation set is taken from the data.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::types::{Samples, Source, Targets, Task};

/// How much data goes to validation and test.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum SplitSpec {
    /// The recipe's rule, see [`auto_fraction`].
    #[default]
    Auto,
    /// Fractions of the data for validation and test, each in `[0, 1)`, together below 1.
    Fractions {
        /// Fraction of the data for validation.
        val: f64,
        /// Fraction of the data for test; ignored when the source has its own test split.
        test: f64,
    },
    /// Exact numbers of samples for validation and test.
    Counts {
        /// Number of samples for validation.
        val: usize,
        /// Number of samples for test; ignored when the source has its own test split.
        test: usize,
    },
}

impl FromStr for SplitSpec {
    type Err = DataError;

    /// Parses `auto`, two fractions `0.1,0.1`, or two counts `5000,5000` (integers of at least 1).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(SplitSpec::Auto);
        }
        let invalid = || DataError::InvalidSplitSpec { value: s.to_owned() };
        let (val, test) = text.split_once(',').ok_or_else(invalid)?;
        let (val, test) = (val.trim(), test.trim());
        if let (Ok(val), Ok(test)) = (val.parse::<usize>(), test.parse::<usize>())
            && (val >= 1 || test >= 1)
        {
            return Ok(SplitSpec::Counts { val, test });
        }
        let (val, test) = (val.parse::<f64>().map_err(|_| invalid())?, test.parse::<f64>().map_err(|_| invalid())?);
        check_fractions(val, test)?;
        Ok(SplitSpec::Fractions { val, test })
    }
}

/// One of the three splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SplitName {
    /// The samples the model is fitted on.
    Train,
    /// The samples used to choose hyperparameters and stop early.
    Val,
    /// The samples held out for the final estimate.
    Test,
}

impl fmt::Display for SplitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SplitName::Train => "train",
            SplitName::Val => "val",
            SplitName::Test => "test",
        })
    }
}

/// The validation (and test) fraction of [`SplitSpec::Auto`] for `n` samples: 20% up to 10,000,
/// then log-interpolated down to 1% at 1,000,000, and 1% beyond.
pub fn auto_fraction(n: usize) -> f64 {
    const SMALL: f64 = 10_000.0;
    const LARGE: f64 = 1_000_000.0;
    const SMALL_FRACTION: f64 = 0.2;
    const LARGE_FRACTION: f64 = 0.01;
    let n = n as f64;
    if n <= SMALL {
        SMALL_FRACTION
    } else if n >= LARGE {
        LARGE_FRACTION
    } else {
        let t = (n.ln() - SMALL.ln()) / (LARGE.ln() - SMALL.ln());
        (SMALL_FRACTION.ln() + t * (LARGE_FRACTION.ln() - SMALL_FRACTION.ln())).exp()
    }
}

/// Which rows of a source's data go to which split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitIndices {
    /// Rows of `source.data` for training, ascending.
    pub train: Vec<usize>,
    /// Rows of `source.data` for validation, ascending.
    pub val: Vec<usize>,
    /// Rows of `source.data` for test, ascending; empty when the source has its own test split.
    pub test: Vec<usize>,
    /// The fractions asked for (train, val, test) of `source.data`; test is 0 when the source has
    /// its own test split.
    pub fractions: [f64; 3],
}

/// Splits a source's data as `spec` asks, ranking samples with `seed`.
///
/// Fails with [`DataError::EmptySplit`] when train, validation or test would be empty or a class
/// would have no training sample, and with [`DataError::InvalidSplit`] for unusable fractions.
pub fn split_indices(source: &Source, spec: &SplitSpec, seed: u64) -> Result<SplitIndices, DataError> {
    let data = &source.data;
    let n = data.len();
    let own_test = source.test.is_some();
    let (val_total, test_total, fractions) = match *spec {
        SplitSpec::Auto => {
            let f = auto_fraction(n);
            let t = if own_test { 0.0 } else { f };
            (round_share(f, n), round_share(t, n), [1.0 - f - t, f, t])
        }
        SplitSpec::Fractions { val, test } => {
            check_fractions(val, test)?;
            let test = if own_test { 0.0 } else { test };
            (round_share(val, n), round_share(test, n), [1.0 - val - test, val, test])
        }
        SplitSpec::Counts { val, test } => {
            let test = if own_test { 0 } else { test };
            if val.saturating_add(test) >= n {
                return Err(DataError::EmptySplit { split: SplitName::Train, available: n, class: None });
            }
            let share = |c: usize| if n == 0 { 0.0 } else { c as f64 / n as f64 };
            (val, test, [1.0 - share(val) - share(test), share(val), share(test)])
        }
    };

    let groups = ranked_groups(data, &source.task, seed);
    let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
    let test_caps: Vec<usize> = sizes.iter().map(|s| s.saturating_sub(1)).collect();
    let test_counts = allocate(test_total, &sizes, &test_caps);
    let val_caps: Vec<usize> = test_caps.iter().zip(&test_counts).map(|(c, t)| c - t).collect();
    let val_counts = allocate(val_total, &sizes, &val_caps);

    let mut split = SplitIndices { train: Vec::new(), val: Vec::new(), test: Vec::new(), fractions };
    for ((group, &t), &v) in groups.iter().zip(&test_counts).zip(&val_counts) {
        split.test.extend_from_slice(&group[..t]);
        split.val.extend_from_slice(&group[t..t + v]);
        split.train.extend_from_slice(&group[t + v..]);
    }
    split.train.sort_unstable();
    split.val.sort_unstable();
    split.test.sort_unstable();

    let empty = |split: SplitName, available: usize| DataError::EmptySplit { split, available, class: None };
    if split.train.is_empty() {
        return Err(empty(SplitName::Train, n));
    }
    if let Task::Classification { classes } = &source.task
        && let Some(class) = sizes.iter().zip(&test_counts).zip(&val_counts).position(|((s, t), v)| s - t - v == 0)
    {
        return Err(DataError::EmptySplit {
            split: SplitName::Train,
            available: sizes[class],
            class: Some(classes.get(class).cloned().unwrap_or_else(|| class.to_string())),
        });
    }
    if split.val.is_empty() {
        return Err(empty(SplitName::Val, n));
    }
    match &source.test {
        Some(test) if test.is_empty() => return Err(empty(SplitName::Test, 0)),
        None if split.test.is_empty() => return Err(empty(SplitName::Test, n)),
        _ => {}
    }
    Ok(split)
}

/// `fraction` of `n`, rounded to the nearest sample.
fn round_share(fraction: f64, n: usize) -> usize {
    (fraction * n as f64).round() as usize
}

/// Fails unless both fractions are in `[0, 1)` and sum below 1.
fn check_fractions(val: f64, test: f64) -> Result<(), DataError> {
    let ok = (0.0..1.0).contains(&val) && (0.0..1.0).contains(&test) && val + test < 1.0;
    if ok { Ok(()) } else { Err(DataError::InvalidSplit { val, test }) }
}

/// Row indices grouped by class (one group for regression), each group sorted by the keyed hash of
/// the sample's content, ties broken by row index.
fn ranked_groups(data: &Samples, task: &Task, seed: u64) -> Vec<Vec<usize>> {
    let key = blake3::derive_key("regimen-data split ranking v1", &seed.to_le_bytes());
    let mut buffer = Vec::with_capacity(data.sample_len() * 4 + 4);
    let ranks: Vec<u64> = (0..data.len())
        .map(|i| {
            buffer.clear();
            for v in data.row(i) {
                buffer.extend_from_slice(&v.to_le_bytes());
            }
            match &data.targets {
                Targets::Classes(c) => buffer.extend_from_slice(&c[i].to_le_bytes()),
                Targets::Values(v) => buffer.extend_from_slice(&v[i].to_le_bytes()),
            }
            let hash = blake3::keyed_hash(&key, &buffer);
            let mut first = [0u8; 8];
            first.copy_from_slice(&hash.as_bytes()[..8]);
            u64::from_le_bytes(first)
        })
        .collect();
    let mut groups = match (task, &data.targets) {
        (Task::Classification { classes }, Targets::Classes(labels)) => {
            let count = classes.len().max(labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0));
            let mut groups = vec![Vec::new(); count];
            for (i, &label) in labels.iter().enumerate() {
                groups[label as usize].push(i);
            }
            groups
        }
        _ => vec![(0..data.len()).collect()],
    };
    for group in &mut groups {
        group.sort_unstable_by_key(|&i| (ranks[i], i));
    }
    groups
}

/// Shares `total` among groups in proportion to `sizes` by largest remainder, each group at most its
/// cap (what a cap refuses is not handed out).
fn allocate(total: usize, sizes: &[usize], caps: &[usize]) -> Vec<usize> {
    let n: usize = sizes.iter().sum();
    if n == 0 {
        return vec![0; sizes.len()];
    }
    let quotas: Vec<f64> = sizes.iter().map(|&s| total as f64 * s as f64 / n as f64).collect();
    let mut counts: Vec<usize> = quotas.iter().zip(caps).map(|(q, &c)| (q.floor() as usize).min(c)).collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| (quotas[b] - quotas[b].floor()).total_cmp(&(quotas[a] - quotas[a].floor())).then(a.cmp(&b)));
    let mut remaining = total.saturating_sub(counts.iter().sum());
    while remaining > 0 {
        let before = remaining;
        for &g in &order {
            if remaining > 0 && counts[g] < caps[g] {
                counts[g] += 1;
                remaining -= 1;
            }
        }
        if remaining == before {
            break;
        }
    }
    counts
}

/// What identifies the data of a run: the content fingerprint and how it was split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetIdentity {
    /// The dataset's name (built-in name or file name).
    pub name: String,
    /// Hex blake3 of the content, see [`fingerprint`].
    pub fingerprint: String,
    /// The first four hex characters of the fingerprint, for names and tables.
    pub short_id: String,
    /// The seed that ranked the samples into splits.
    pub split_seed: u64,
    /// The fractions asked for (train, val, test), see [`SplitIndices::fractions`].
    pub fractions: [f64; 3],
    /// The number of samples in train, val and test.
    pub sizes: [usize; 3],
    /// True when the test split is the format's own, not carved from the data.
    pub test_from_source: bool,
    /// The manifest and sources the data was combined from, when it came from a manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<crate::manifest::Lineage>,
}

/// The hex blake3 fingerprint of a source's content; it changes when any value changes, and not
/// when the dataset is renamed.
///
/// The canonical bytes, all integers little-endian: the tag `regimen-dataset-v1`; the task (byte 0
/// then the class count as `u64` and each class name as `u64` length and UTF-8 bytes, or byte 1 for
/// regression); the sample shape (rank as `u64`, then each dimension as `u64`); the data (sample
/// count as `u64`, every feature as `f32` bits, every target as `u32` class or `f32` bits); then byte
/// 0 when there is no own test split, or byte 1 followed by the test samples in the same layout.
pub fn fingerprint(source: &Source) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"regimen-dataset-v1");
    match &source.task {
        Task::Classification { classes } => {
            hasher.update(&[0]);
            hasher.update(&(classes.len() as u64).to_le_bytes());
            for class in classes {
                hasher.update(&(class.len() as u64).to_le_bytes());
                hasher.update(class.as_bytes());
            }
        }
        Task::Regression => {
            hasher.update(&[1]);
        }
    }
    hasher.update(&(source.data.shape.len() as u64).to_le_bytes());
    for &d in &source.data.shape {
        hasher.update(&(d as u64).to_le_bytes());
    }
    hash_samples(&mut hasher, &source.data);
    match &source.test {
        Some(test) => {
            hasher.update(&[1]);
            hash_samples(&mut hasher, test);
        }
        None => {
            hasher.update(&[0]);
        }
    }
    hasher.finalize().to_hex().to_string()
}

fn hash_samples(hasher: &mut blake3::Hasher, samples: &Samples) {
    hasher.update(&(samples.len() as u64).to_le_bytes());
    let mut buffer = Vec::with_capacity(16 * 1024);
    for chunk in samples.features.chunks(4096) {
        buffer.clear();
        buffer.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        hasher.update(&buffer);
    }
    buffer.clear();
    match &samples.targets {
        Targets::Classes(c) => buffer.extend(c.iter().flat_map(|v| v.to_le_bytes())),
        Targets::Values(v) => buffer.extend(v.iter().flat_map(|v| v.to_le_bytes())),
    }
    hasher.update(&buffer);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `n` distinct two-feature samples with labels `i % classes`.
    fn source(n: usize, classes: usize) -> Source {
        Source {
            name: "t".into(),
            task: Task::Classification { classes: (0..classes).map(|c| c.to_string()).collect() },
            data: Samples {
                shape: vec![2],
                features: (0..n).flat_map(|i| [i as f32, (i * i) as f32]).collect(),
                targets: Targets::Classes((0..n).map(|i| (i % classes) as u32).collect()),
            },
            test: None,
        }
    }

    fn contents(source: &Source, rows: &[usize]) -> Vec<Vec<u32>> {
        let mut c: Vec<Vec<u32>> =
            rows.iter().map(|&i| source.data.row(i).iter().map(|v| v.to_bits()).collect()).collect();
        c.sort();
        c
    }

    #[test]
    fn auto_fraction_follows_the_recipe() {
        assert_eq!(auto_fraction(500), 0.2);
        assert_eq!(auto_fraction(10_000), 0.2);
        assert!((auto_fraction(100_000) - (0.2f64 * 0.01).sqrt()).abs() < 1e-9);
        assert!((auto_fraction(1_000_000) - 0.01).abs() < 1e-12);
        assert_eq!(auto_fraction(50_000_000), 0.01);
        let mut last = 1.0;
        for n in [10_001, 20_000, 200_000, 999_999] {
            let f = auto_fraction(n);
            assert!(f < last && f > 0.01, "{n}: {f}");
            last = f;
        }
    }

    #[test]
    fn auto_split_is_60_20_20_and_stratified() -> Result<(), DataError> {
        let s = source(1000, 4);
        let split = split_indices(&s, &SplitSpec::Auto, 7)?;
        assert_eq!((split.train.len(), split.val.len(), split.test.len()), (600, 200, 200));
        let Targets::Classes(labels) = &s.data.targets else { unreachable!() };
        for part in [&split.train, &split.val, &split.test] {
            let mut per_class = [0usize; 4];
            for &i in part {
                per_class[labels[i] as usize] += 1;
            }
            assert!(per_class.iter().all(|&c| c == part.len() / 4), "{per_class:?}");
        }
        for (f, expected) in split.fractions.iter().zip([0.6, 0.2, 0.2]) {
            assert!((f - expected).abs() < 1e-12, "{:?}", split.fractions);
        }
        Ok(())
    }

    #[test]
    fn source_test_split_is_kept() -> Result<(), DataError> {
        let mut s = source(100, 2);
        s.test = Some(source(10, 2).data);
        let split = split_indices(&s, &SplitSpec::Fractions { val: 0.1, test: 0.3 }, 1)?;
        assert_eq!((split.train.len(), split.val.len(), split.test.len()), (90, 10, 0));
        assert_eq!(split.fractions[2], 0.0);
        Ok(())
    }

    #[test]
    fn counts_are_exact() -> Result<(), DataError> {
        let split = split_indices(&source(103, 3), &SplitSpec::Counts { val: 11, test: 7 }, 3)?;
        assert_eq!((split.train.len(), split.val.len(), split.test.len()), (85, 11, 7));
        Ok(())
    }

    #[test]
    fn seed_changes_the_split() -> Result<(), DataError> {
        let s = source(200, 2);
        let a = split_indices(&s, &SplitSpec::Auto, 1)?;
        assert_eq!(a, split_indices(&s, &SplitSpec::Auto, 1)?);
        assert_ne!(a.test, split_indices(&s, &SplitSpec::Auto, 2)?.test);
        Ok(())
    }

    #[test]
    fn regression_splits_without_classes() -> Result<(), DataError> {
        let mut s = source(50, 1);
        s.task = Task::Regression;
        s.data.targets = Targets::Values((0..50).map(|i| i as f32 / 2.0).collect());
        let split = split_indices(&s, &SplitSpec::Auto, 0)?;
        assert_eq!((split.train.len(), split.val.len(), split.test.len()), (30, 10, 10));
        Ok(())
    }

    #[test]
    fn empty_splits_are_errors() {
        let err = split_indices(&source(2, 1), &SplitSpec::Auto, 0);
        assert!(matches!(err, Err(DataError::EmptySplit { split: SplitName::Val, available: 2, .. })), "{err:?}");
        let err = split_indices(&source(0, 1), &SplitSpec::Auto, 0);
        assert!(matches!(err, Err(DataError::EmptySplit { split: SplitName::Train, .. })));
        let err = split_indices(&source(10, 2), &SplitSpec::Fractions { val: 0.5, test: 0.0 }, 0);
        assert!(matches!(err, Err(DataError::EmptySplit { split: SplitName::Test, available: 10, .. })));
        let mut s = source(10, 2);
        s.test = Some(source(0, 2).data);
        let err = split_indices(&s, &SplitSpec::Auto, 0);
        assert!(matches!(err, Err(DataError::EmptySplit { split: SplitName::Test, available: 0, .. })));
        let err = split_indices(&source(10, 2), &SplitSpec::Counts { val: 5, test: 5 }, 0);
        assert!(matches!(err, Err(DataError::EmptySplit { split: SplitName::Train, .. })), "{err:?}");
    }

    #[test]
    fn class_missing_from_train_is_an_error() {
        // Class "2" is declared but has no samples.
        let mut s = source(30, 2);
        s.task = Task::Classification { classes: vec!["0".into(), "1".into(), "2".into()] };
        let err = split_indices(&s, &SplitSpec::Auto, 0);
        assert!(
            matches!(err, Err(DataError::EmptySplit { class: Some(ref c), available: 0, .. }) if c == "2"),
            "{err:?}"
        );
    }

    #[test]
    fn a_single_sample_class_stays_in_train() -> Result<(), DataError> {
        let mut s = source(41, 2);
        if let Targets::Classes(labels) = &mut s.data.targets {
            labels.iter_mut().for_each(|l| *l = 0);
            labels[40] = 1;
        }
        let split = split_indices(&s, &SplitSpec::Auto, 0)?;
        assert!(split.train.contains(&40));
        Ok(())
    }

    #[test]
    fn invalid_fractions() {
        for (val, test) in [(-0.1, 0.2), (0.6, 0.5), (f64::NAN, 0.1), (1.0, 0.0)] {
            let err = split_indices(&source(10, 1), &SplitSpec::Fractions { val, test }, 0);
            assert!(matches!(err, Err(DataError::InvalidSplit { .. })), "{val} {test}");
        }
    }

    #[test]
    fn spec_parses() {
        assert_eq!("auto".parse::<SplitSpec>().ok(), Some(SplitSpec::Auto));
        assert_eq!("0.1, 0.2".parse::<SplitSpec>().ok(), Some(SplitSpec::Fractions { val: 0.1, test: 0.2 }));
        assert_eq!("500,100".parse::<SplitSpec>().ok(), Some(SplitSpec::Counts { val: 500, test: 100 }));
        assert_eq!("0,0".parse::<SplitSpec>().ok(), Some(SplitSpec::Fractions { val: 0.0, test: 0.0 }));
        assert!(matches!("0.7,0.7".parse::<SplitSpec>(), Err(DataError::InvalidSplit { .. })));
        assert!(matches!("half".parse::<SplitSpec>(), Err(DataError::InvalidSplitSpec { .. })));
    }

    #[test]
    fn fingerprint_tracks_content_not_name() {
        let a = source(10, 2);
        let fp = fingerprint(&a);
        assert_eq!(fp.len(), 64);
        let mut renamed = a.clone();
        renamed.name = "other".into();
        assert_eq!(fingerprint(&renamed), fp);
        let mut changed = a.clone();
        changed.data.features[3] += 1.0;
        assert_ne!(fingerprint(&changed), fp);
        let mut relabelled = a.clone();
        relabelled.task = Task::Classification { classes: vec!["a".into(), "b".into()] };
        assert_ne!(fingerprint(&relabelled), fp);
        let mut with_test = a.clone();
        with_test.test = Some(source(1, 2).data);
        assert_ne!(fingerprint(&with_test), fp);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Every row lands in exactly one split.
        #[test]
        fn splits_partition_the_rows(n in 10usize..300, classes in 1usize..5, seed in any::<u64>()) {
            let s = source(n, classes);
            if let Ok(split) = split_indices(&s, &SplitSpec::Auto, seed) {
                let mut all: Vec<usize> = split.train.iter().chain(&split.val).chain(&split.test).copied().collect();
                all.sort_unstable();
                prop_assert_eq!(all, (0..n).collect::<Vec<_>>());
            }
        }

        /// Reordering the rows moves no sample to another split.
        #[test]
        fn splits_do_not_depend_on_row_order(n in 10usize..200, classes in 1usize..4, seed in any::<u64>(), rotate in 0usize..200) {
            let s = source(n, classes);
            let mut order: Vec<usize> = (0..n).rev().collect();
            order.rotate_left(rotate % n);
            let shuffled = Source { data: s.data.subset(&order), ..s.clone() };
            let a = split_indices(&s, &SplitSpec::Auto, seed);
            let b = split_indices(&shuffled, &SplitSpec::Auto, seed);
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(contents(&s, &a.test), contents(&shuffled, &b.test));
                    prop_assert_eq!(contents(&s, &a.val), contents(&shuffled, &b.val));
                }
                (a, b) => prop_assert_eq!(a.is_ok(), b.is_ok()),
            }
        }
    }
}
