//! Datasets combined from several sources by a manifest: a named, fingerprinted `dataset.toml`.
//!
//! ```toml
//! name = "spirals-two-labs"
//!
//! [split]                  # optional: fractions or counts, a seed, or the sources' own test splits
//! val = 0.2
//!
//! [[sources]]
//! name = "lab-a"
//! path = "a.csv"           # relative to the manifest; or `dataset = "shapes"` (built in) with `size`
//! label = "y"
//!
//! [[sources]]
//! name = "lab-b"
//! path = "b.csv"
//! label = "y"
//! label_map = { dog = "canine" }   # unify class names across sources
//! classes = ["canine", "cat"]      # keep only these classes (after the renames)
//! limit = 500                      # at most this many samples
//! ```
//!
//! Every source is read with the loader of its format, renamed and filtered, and put in a canonical
//! order (by a hash of each sample's content), so the combined dataset depends only on the
//! manifest and on what the files hold, not on the order of their rows. Its fingerprint is derived
//! from the manifest (without its paths) and each source's order-independent content fingerprint:
//! the same manifest over the same data gives the same fingerprint on any machine, and any change
//! to a source or a filter changes it. A [`Lineage`] records each source's fingerprint, size and
//! contribution to every split.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::generated::builtin;
use crate::load::{Format, LoadOptions, TaskKind, load};
use crate::split::{SplitIndices, SplitSpec};
use crate::types::{Samples, Source, Targets, Task};

/// A dataset manifest, as written in `dataset.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The dataset's name, recorded with every run that uses it.
    pub name: String,
    /// The human-level or best-known error on this dataset (a fraction): `regimen diagnose` measures
    /// the avoidable bias from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_error: Option<f64>,
    /// A fixed split policy; the run's own split settings apply when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitPolicy>,
    /// The sources, in order.
    pub sources: Vec<SourceSpec>,
}

/// How a manifest's dataset is split, whatever the run asks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitPolicy {
    /// Validation fraction (with `test`).
    pub val: Option<f64>,
    /// Test fraction.
    pub test: Option<f64>,
    /// Validation size in samples (with `test_count`).
    pub val_count: Option<usize>,
    /// Test size in samples.
    pub test_count: Option<usize>,
    /// The split seed.
    pub seed: Option<u64>,
    /// Use the sources' own test splits (MNIST's `t10k`, CIFAR's `test_batch`, a `test/` folder)
    /// as the test split; every source must have one.
    #[serde(default)]
    pub source_test: bool,
}

/// One source of a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The source's name, unique in the manifest.
    pub name: String,
    /// A file or folder in any format Regimen reads, relative to the manifest's folder.
    pub path: Option<PathBuf>,
    /// A built-in dataset instead of `path`.
    pub dataset: Option<String>,
    /// Samples to generate for a built-in dataset.
    pub size: Option<usize>,
    /// `csv`, `idx`, `cifar` or `folder`; detected when absent.
    pub format: Option<String>,
    /// CSV label column.
    pub label: Option<String>,
    /// `classification` or `regression`; inferred when absent.
    pub task: Option<String>,
    /// Renames of class names, applied first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label_map: BTreeMap<String, String>,
    /// Keep only these classes (names after `label_map`).
    pub classes: Option<Vec<String>>,
    /// At most this many samples, the first in the canonical order.
    pub limit: Option<usize>,
}

/// What a run records about a manifest's dataset and each of its sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// The manifest as read (paths as written in it).
    pub manifest: Manifest,
    /// Each source, in manifest order.
    pub sources: Vec<SourceRecord>,
    /// What looked wrong about how the sources were split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One source as a run used it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Its name in the manifest.
    pub name: String,
    /// Where it was read from: the file or folder, or `builtin:<name>`.
    pub location: String,
    /// Hex blake3 of its content after renames and filters, independent of row order.
    pub fingerprint: String,
    /// Its samples after filters (own test split included).
    pub samples: usize,
    /// How many of them went to train, val and test.
    pub contributed: [usize; 3],
    /// Its samples per class (classification).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub classes: BTreeMap<String, usize>,
}

/// A manifest's sources combined into one [`Source`], with what is needed to record its lineage.
#[derive(Debug, Clone)]
pub struct Combined {
    /// The combined dataset.
    pub source: Source,
    /// The manifest's fingerprint: the identity of the combined dataset.
    pub fingerprint: String,
    /// The manifest's split, which overrides the run's, and its seed.
    pub split: Option<(SplitSpec, Option<u64>)>,
    /// Each source's record, its contributions not yet counted.
    pub sources: Vec<SourceRecord>,
    /// Which source each sample of `source.data` came from.
    origins: Vec<usize>,
    /// Which source each sample of `source.test` came from.
    test_origins: Vec<usize>,
    /// Sources whose features differ strongly from the rest.
    differences: Vec<String>,
    manifest: Manifest,
}

/// A source as loaded and filtered: features and targets (classes by name) in canonical order.
struct Part {
    shape: Vec<usize>,
    features: Vec<f32>,
    labels: PartLabels,
    test: Option<(Vec<f32>, PartLabels)>,
    fingerprint: String,
    location: String,
}

enum PartLabels {
    Classes(Vec<String>),
    Values(Vec<f32>),
}

impl PartLabels {
    fn len(&self) -> usize {
        match self {
            PartLabels::Classes(c) => c.len(),
            PartLabels::Values(v) => v.len(),
        }
    }
}

/// Reads and checks a manifest file.
pub fn read(path: &Path) -> Result<Manifest, DataError> {
    let error = |message: String| DataError::Manifest { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| error(e.to_string().trim().to_string()))?;
    if manifest.name.trim().is_empty() {
        return Err(error("`name` is empty; name the dataset, e.g. name = \"spirals-two-labs\"".into()));
    }
    if let Some(base) = manifest.base_error
        && !(0.0..1.0).contains(&base)
    {
        return Err(error(format!("`base_error = {base}` is not a fraction in [0, 1), e.g. 0.02 for 2% error")));
    }
    if manifest.sources.is_empty() {
        return Err(error("it lists no [[sources]]; add at least one with a `name` and a `path`".into()));
    }
    for (i, source) in manifest.sources.iter().enumerate() {
        if manifest.sources[..i].iter().any(|s| s.name == source.name) {
            return Err(error(format!("two sources are named `{}`; give each a name of its own", source.name)));
        }
        if source.path.is_some() == source.dataset.is_some() {
            return Err(error(format!(
                "source `{}` needs exactly one of `path` (a file or folder) and `dataset` (a built-in name)",
                source.name
            )));
        }
        if source.limit == Some(0) {
            return Err(error(format!("source `{}` has `limit = 0`, which keeps nothing", source.name)));
        }
    }
    Ok(manifest)
}

/// Reads the manifest at `path` and combines its sources.
pub fn open(path: &Path) -> Result<Combined, DataError> {
    let manifest = read(path)?;
    combine(manifest, path)
}

/// Loads, filters and combines `manifest`'s sources; `path` is the manifest file (paths in it are
/// relative to its folder, and errors name it).
pub fn combine(manifest: Manifest, path: &Path) -> Result<Combined, DataError> {
    let error = |message: String| DataError::Manifest { path: path.to_owned(), message };
    let folder = path.parent().unwrap_or(Path::new("."));
    let split = split_of(&manifest, &error)?;
    let mut parts = Vec::with_capacity(manifest.sources.len());
    // The first CSV source: its name, file and feature columns.
    let mut columns: Option<(String, PathBuf, Vec<String>)> = None;
    for spec in &manifest.sources {
        let part = load_part(spec, folder, &error)?;
        if let Some(first) = parts.first().map(|p: &Part| p) {
            let first_spec = &manifest.sources[0];
            if first.shape != part.shape {
                return Err(error(format!(
                    "sources `{}` ({}) and `{}` ({}) have samples of different shapes, {:?} and {:?}; every \
                     source must hold the same kind of sample",
                    first_spec.name, first.location, spec.name, part.location, first.shape, part.shape
                )));
            }
            if matches!(first.labels, PartLabels::Classes(_)) != matches!(part.labels, PartLabels::Classes(_)) {
                return Err(error(format!(
                    "source `{}` ({}) is a classification task and `{}` ({}) a regression one, or the other way \
                     round; set `task` on the sources",
                    first_spec.name, first.location, spec.name, part.location
                )));
            }
        }
        if let Some(csv_path) = csv_path(spec, folder) {
            let options = LoadOptions { label: spec.label.clone(), ..LoadOptions::default() };
            let names = crate::load::csv::feature_columns(&csv_path, &options)?;
            match &columns {
                Some((other, other_path, expected)) if *expected != names => {
                    return Err(error(format!(
                        "sources `{other}` ({}) and `{}` ({}) have different feature columns: {} against {}; rename \
                         or drop columns so they match",
                        other_path.display(),
                        spec.name,
                        csv_path.display(),
                        expected.join(","),
                        names.join(",")
                    )));
                }
                Some(_) => {}
                None => columns = Some((spec.name.clone(), csv_path, names)),
            }
        }
        parts.push(part);
    }
    if split.as_ref().is_some_and(|(_, _, own)| *own)
        && let Some(i) = parts.iter().position(|p| p.test.is_none())
    {
        return Err(error(format!(
            "[split] source_test is set, but source `{}` ({}) has no test split of its own",
            manifest.sources[i].name, parts[i].location
        )));
    }
    let own_test = split.as_ref().is_some_and(|(_, _, own)| *own);
    let fingerprint = manifest_fingerprint(&manifest, &parts);
    let classes: Option<Vec<String>> = match &parts[0].labels {
        PartLabels::Classes(_) => {
            let mut classes: Vec<String> = Vec::new();
            for part in &parts {
                let all = match &part.labels {
                    PartLabels::Classes(c) => c.iter().chain(part.test.iter().flat_map(|(_, l)| match l {
                        PartLabels::Classes(c) => c.as_slice(),
                        PartLabels::Values(_) => &[],
                    })),
                    PartLabels::Values(_) => unreachable!("the task was checked to be the same"),
                };
                for class in all {
                    if !classes.contains(class) {
                        classes.push(class.clone());
                    }
                }
            }
            classes.sort_by_key(|c| natural_key(c));
            Some(classes)
        }
        PartLabels::Values(_) => None,
    };
    let shape = parts[0].shape.clone();
    // Every source's data (or, with `own_tests`, its own test split), concatenated in source order.
    let gather = |own_tests: bool| {
        let mut features = Vec::new();
        let mut origins = Vec::new();
        let mut targets = match &classes {
            Some(_) => Targets::Classes(Vec::new()),
            None => Targets::Values(Vec::new()),
        };
        for (index, part) in parts.iter().enumerate() {
            let chosen = match own_tests {
                true => part.test.as_ref().map(|(f, l)| (f.as_slice(), l)),
                false => Some((part.features.as_slice(), &part.labels)),
            };
            let Some((rows, labels)) = chosen else { continue };
            features.extend_from_slice(rows);
            origins.extend(std::iter::repeat_n(index, labels.len()));
            match (&mut targets, labels) {
                (Targets::Classes(out), PartLabels::Classes(names)) => {
                    let classes = classes.as_ref().expect("classification has classes");
                    out.extend(names.iter().map(|n| classes.iter().position(|c| c == n).unwrap_or(0) as u32));
                }
                (Targets::Values(out), PartLabels::Values(values)) => out.extend_from_slice(values),
                _ => unreachable!("the task was checked to be the same"),
            }
        }
        (Samples { shape: shape.clone(), features, targets }, origins)
    };
    let (data, origins) = gather(false);
    let (test, test_origins) = gather(true);
    let task = match &classes {
        Some(classes) => Task::Classification { classes: classes.clone() },
        None => Task::Regression,
    };
    let sources = manifest
        .sources
        .iter()
        .zip(&parts)
        .map(|(spec, part)| {
            let test = part.test.as_ref().filter(|_| own_test);
            let mut classes = BTreeMap::new();
            for labels in std::iter::once(&part.labels).chain(test.map(|(_, l)| l)) {
                if let PartLabels::Classes(names) = labels {
                    for name in names {
                        *classes.entry(name.clone()).or_insert(0) += 1;
                    }
                }
            }
            SourceRecord {
                name: spec.name.clone(),
                location: part.location.clone(),
                fingerprint: part.fingerprint.clone(),
                samples: part.labels.len() + test.map_or(0, |(_, l)| l.len()),
                contributed: [0; 3],
                classes,
            }
        })
        .collect();
    let differences = differences(&manifest, &parts, columns.map(|(_, _, names)| names));
    Ok(Combined {
        source: Source { name: manifest.name.clone(), task, data, test: own_test.then_some(test) },
        fingerprint,
        split: split.map(|(spec, seed, _)| (spec, seed)),
        sources,
        origins,
        test_origins: if own_test { test_origins } else { Vec::new() },
        differences,
        manifest,
    })
}

impl Combined {
    /// The lineage of the combined dataset split as `indices` says: each source's contribution to
    /// train, val and test, and a warning for each source that lands (almost) entirely in one split.
    pub fn lineage(&self, indices: &SplitIndices) -> Lineage {
        let mut sources = self.sources.clone();
        for (split, rows) in [&indices.train, &indices.val, &indices.test].into_iter().enumerate() {
            for &row in rows {
                sources[self.origins[row]].contributed[split] += 1;
            }
        }
        for &origin in &self.test_origins {
            sources[origin].contributed[2] += 1;
        }
        let names = ["train", "val", "test"];
        let mut warnings = self.differences.clone();
        warnings.extend(sources.iter().filter_map(|s| {
            let (split, &most) = s.contributed.iter().enumerate().max_by_key(|(_, c)| **c)?;
            let lopsided = s.samples > 0 && most as f64 >= 0.95 * s.samples as f64 && indices.fractions[split] < 0.85;
            lopsided.then(|| {
                format!(
                    "source `{}`: {most} of its {} samples are in {}, so the other splits hardly see it; give it \
                         more samples, or fix the split in the manifest's [split]",
                    s.name, s.samples, names[split]
                )
            })
        }));
        Lineage { manifest: self.manifest.clone(), sources, warnings }
    }
}

/// The manifest's split: the spec, the seed and whether the sources' own test splits are used.
fn split_of(
    manifest: &Manifest,
    error: &dyn Fn(String) -> DataError,
) -> Result<Option<(SplitSpec, Option<u64>, bool)>, DataError> {
    let Some(policy) = &manifest.split else { return Ok(None) };
    let fractions = policy.val.is_some() || policy.test.is_some();
    let counts = policy.val_count.is_some() || policy.test_count.is_some();
    let spec = match (fractions, counts) {
        (true, true) => return Err(error("[split] sets both fractions and counts; keep one of them".into())),
        (true, false) => SplitSpec::Fractions { val: policy.val.unwrap_or(0.2), test: policy.test.unwrap_or(0.2) },
        (false, true) => SplitSpec::Counts { val: policy.val_count.unwrap_or(0), test: policy.test_count.unwrap_or(0) },
        (false, false) => SplitSpec::Auto,
    };
    Ok(Some((spec, policy.seed, policy.source_test)))
}

/// How far a source's mean of a feature (a column, or an image channel) may be from the other
/// sources' mean, in pooled within-source standard deviations (Cohen's d), before the sources are
/// said to differ.
const DIFFERENT_MEANS: f64 = 1.0;

/// A warning for each source whose mean of some feature is far from the other sources': the
/// recipe's training and validation data from different distributions.
fn differences(manifest: &Manifest, parts: &[Part], columns: Option<Vec<String>>) -> Vec<String> {
    if parts.len() < 2 {
        return Vec::new();
    }
    let layout = crate::types::Layout::of(&parts[0].shape);
    let (groups, group_len) = (layout.groups(), layout.group_len().max(1));
    // Per source and feature: count, sum and sum of squares.
    let moments: Vec<Vec<(f64, f64, f64)>> = parts
        .iter()
        .map(|part| {
            let mut m = vec![(0.0, 0.0, 0.0); groups];
            for row in part.features.chunks_exact(groups * group_len) {
                for (g, values) in row.chunks_exact(group_len).enumerate() {
                    for &v in values {
                        let v = f64::from(v);
                        m[g] = (m[g].0 + 1.0, m[g].1 + v, m[g].2 + v * v);
                    }
                }
            }
            m
        })
        .collect();
    let mut warnings = Vec::new();
    // With two sources each differs from the other: say it once, of the second.
    let first = usize::from(parts.len() == 2);
    for (i, own) in moments.iter().enumerate().skip(first) {
        let worst = (0..groups)
            .filter_map(|g| {
                let (n, sum, _) = own[g];
                let (rest_n, rest_sum) = moments
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .fold((0.0, 0.0), |(n, s), (_, m)| (n + m[g].0, s + m[g].1));
                let within: f64 = moments.iter().map(|m| m[g].2 - m[g].1 * m[g].1 / m[g].0.max(1.0)).sum();
                let total: f64 = moments.iter().map(|m| m[g].0).sum();
                let std = (within / (total - moments.len() as f64).max(1.0)).max(0.0).sqrt();
                let (mean, rest) = (sum / n.max(1.0), rest_sum / rest_n.max(1.0));
                (std > 0.0 && n > 0.0 && rest_n > 0.0).then(|| (g, mean, rest, (mean - rest).abs() / std))
            })
            .max_by(|a, b| a.3.total_cmp(&b.3));
        if let Some((g, mean, rest, distance)) = worst.filter(|w| w.3 > DIFFERENT_MEANS) {
            let feature = match (&columns, layout.is_image()) {
                (Some(names), _) => format!("column `{}`", names.get(g).map_or("?", String::as_str)),
                (None, true) => format!("channel {g}"),
                (None, false) => format!("feature {g}"),
            };
            warnings.push(format!(
                "source `{}` differs from the others: its {feature} averages {mean:.3} against {rest:.3} in the \
                 other sources ({distance:.1} standard deviations); train and validation data should come from the \
                 same distribution, so check the sources' units and preprocessing",
                manifest.sources[i].name
            ));
        }
    }
    warnings
}

/// The CSV file of a source, when it is one.
fn csv_path(spec: &SourceSpec, folder: &Path) -> Option<PathBuf> {
    let path = folder.join(spec.path.as_ref()?);
    let is_csv = match &spec.format {
        Some(format) => format.eq_ignore_ascii_case("csv"),
        None => path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")),
    };
    is_csv.then_some(path)
}

/// Loads one source, renames and filters its classes, and puts its samples in canonical order.
fn load_part(spec: &SourceSpec, folder: &Path, error: &dyn Fn(String) -> DataError) -> Result<Part, DataError> {
    let (source, location) = match (&spec.path, &spec.dataset) {
        (Some(path), _) => {
            let path = folder.join(path);
            let options = LoadOptions {
                format: spec.format.as_deref().map(str::parse::<Format>).transpose()?,
                label: spec.label.clone(),
                task: spec.task.as_deref().map(str::parse::<TaskKind>).transpose()?,
                classes: None,
            };
            let location = std::path::absolute(&path).unwrap_or_else(|_| path.clone()).display().to_string();
            (load(&path, &options)?, location)
        }
        (None, Some(name)) => (builtin(name, spec.size)?, format!("builtin:{name}")),
        (None, None) => unreachable!("read() checks that a source has a path or a dataset"),
    };
    let keep = |class: &str| spec.classes.as_ref().is_none_or(|keep| keep.iter().any(|k| k == class));
    let rename = |class: &String| spec.label_map.get(class).cloned().unwrap_or_else(|| class.clone());
    let filter = |samples: &Samples| -> (Vec<f32>, PartLabels) {
        let width = samples.sample_len();
        let mut rows: Vec<(blake3::Hash, usize, Option<String>)> = Vec::with_capacity(samples.len());
        for i in 0..samples.len() {
            let class = match (&samples.targets, &source.task) {
                (Targets::Classes(labels), Task::Classification { classes }) => {
                    let name = classes.get(labels[i] as usize).cloned().unwrap_or_else(|| labels[i].to_string());
                    let name = rename(&name);
                    if !keep(&name) {
                        continue;
                    }
                    Some(name)
                }
                _ => None,
            };
            let mut hasher = blake3::Hasher::new();
            for v in samples.row(i) {
                hasher.update(&v.to_bits().to_le_bytes());
            }
            match (&class, &samples.targets) {
                (Some(name), _) => hasher.update(name.as_bytes()),
                (None, Targets::Values(values)) => hasher.update(&values[i].to_bits().to_le_bytes()),
                (None, Targets::Classes(_)) => &mut hasher,
            };
            rows.push((hasher.finalize(), i, class));
        }
        rows.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(&b.1)));
        if let Some(limit) = spec.limit {
            rows.truncate(limit);
        }
        let mut features = Vec::with_capacity(rows.len() * width);
        for (_, i, _) in &rows {
            features.extend_from_slice(samples.row(*i));
        }
        let labels = match &samples.targets {
            Targets::Classes(_) => {
                PartLabels::Classes(rows.iter().map(|(_, _, c)| c.clone().unwrap_or_default()).collect())
            }
            Targets::Values(values) => PartLabels::Values(rows.iter().map(|(_, i, _)| values[*i]).collect()),
        };
        (features, labels)
    };
    let (features, labels) = filter(&source.data);
    let test = source.test.as_ref().map(&filter);
    if labels.len() == 0 {
        return Err(error(format!(
            "source `{}` ({location}) has no samples left after its `classes` filter {:?}; its classes are {}",
            spec.name,
            spec.classes.as_deref().unwrap_or_default(),
            match &source.task {
                Task::Classification { classes } => classes.iter().map(rename).collect::<Vec<_>>().join(", "),
                Task::Regression => "none (regression)".into(),
            }
        )));
    }
    let fingerprint = part_fingerprint(&source.data.shape, &features, &labels, test.as_ref());
    Ok(Part { shape: source.data.shape.clone(), features, labels, test, fingerprint, location })
}

/// A source's content fingerprint: its shape and its samples in canonical order (so independent of
/// the order of rows in its files), then its own test split.
fn part_fingerprint(
    shape: &[usize],
    features: &[f32],
    labels: &PartLabels,
    test: Option<&(Vec<f32>, PartLabels)>,
) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"regimen-source-v1");
    hasher.update(&(shape.len() as u64).to_le_bytes());
    for &d in shape {
        hasher.update(&(d as u64).to_le_bytes());
    }
    let mut samples = |features: &[f32], labels: &PartLabels| {
        hasher.update(&(labels.len() as u64).to_le_bytes());
        for v in features {
            hasher.update(&v.to_bits().to_le_bytes());
        }
        match labels {
            PartLabels::Classes(names) => {
                for name in names {
                    hasher.update(&(name.len() as u64).to_le_bytes());
                    hasher.update(name.as_bytes());
                }
            }
            PartLabels::Values(values) => {
                for v in values {
                    hasher.update(&v.to_bits().to_le_bytes());
                }
            }
        }
    };
    samples(features, labels);
    if let Some((features, labels)) = test {
        samples(features, labels);
    }
    hasher.finalize().to_hex().to_string()
}

/// The fingerprint of the combined dataset: the manifest without its paths (names, filters, renames,
/// split) and each source's content fingerprint, in order.
fn manifest_fingerprint(manifest: &Manifest, parts: &[Part]) -> String {
    let mut canonical = manifest.clone();
    for source in &mut canonical.sources {
        source.path = None;
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"regimen-manifest-v1");
    // serde_json-free canonical text: TOML of a struct serializes its fields in declaration order.
    let text = toml::to_string(&canonical).expect("a manifest is always serializable");
    hasher.update(&(text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
    for part in parts {
        hasher.update(part.fingerprint.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

/// Sorts class names as people do: `2` before `10`, numbers before words.
fn natural_key(name: &str) -> (u8, u64, String) {
    match name.parse::<u64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Writes `files` (name, text) and a manifest into a fresh folder; returns the folder and the
    /// manifest's path.
    fn folder_with(manifest: &str, files: &[(&str, String)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let path = dir.path().join("dataset.toml");
        std::fs::write(&path, manifest).unwrap();
        (dir, path)
    }

    /// A CSV of `rows` (x1, x2, label) with a header.
    fn csv(rows: &[(f32, f32, &str)]) -> String {
        let mut text = String::from("x1,x2,y\n");
        for (a, b, label) in rows {
            text.push_str(&format!("{a},{b},{label}\n"));
        }
        text
    }

    fn rows(n: usize, offset: f32, names: [&'static str; 2]) -> Vec<(f32, f32, &'static str)> {
        (0..n).map(|i| (i as f32 * 0.25 + offset, (i % 7) as f32, names[i % 2])).collect()
    }

    const TWO_LABS: &str = r#"
name = "two-labs"

[[sources]]
name = "lab-a"
path = "a.csv"
label = "y"

[[sources]]
name = "lab-b"
path = "b.csv"
label = "y"
label_map = { chat = "cat", chien = "dog" }
"#;

    #[test]
    fn two_csv_files_with_renamed_classes_combine_into_one_dataset() {
        let (_dir, path) = folder_with(
            TWO_LABS,
            &[("a.csv", csv(&rows(40, 0.0, ["cat", "dog"]))), ("b.csv", csv(&rows(30, 0.1, ["chat", "chien"])))],
        );
        let combined = open(&path).unwrap();
        assert_eq!(combined.source.task, Task::Classification { classes: vec!["cat".into(), "dog".into()] });
        assert_eq!(combined.source.data.len(), 70);
        let records = &combined.sources;
        assert_eq!((records[0].samples, records[1].samples), (40, 30));
        assert_eq!(records[1].classes, BTreeMap::from([("cat".to_string(), 15), ("dog".to_string(), 15)]));
        let indices = crate::split::split_indices(&combined.source, &SplitSpec::Auto, 0).unwrap();
        let lineage = combined.lineage(&indices);
        for (source, total) in lineage.sources.iter().zip([40, 30]) {
            assert_eq!(source.contributed.iter().sum::<usize>(), total, "{source:?}");
            assert!(source.contributed.iter().all(|&c| c > 0), "{source:?}");
        }
        assert!(lineage.warnings.is_empty(), "{:?}", lineage.warnings);
    }

    #[test]
    fn mismatched_sources_are_one_error_naming_both_files() {
        let other = "x1,x3,y\n1,2,cat\n2,3,dog\n".to_string();
        let (_dir, path) = folder_with(TWO_LABS, &[("a.csv", csv(&rows(10, 0.0, ["cat", "dog"]))), ("b.csv", other)]);
        let message = open(&path).unwrap_err().to_string();
        assert!(
            message.contains("`lab-a` (")
                && message.contains("a.csv) and `lab-b` (")
                && message.contains("x1,x2 against x1,x3"),
            "{message}"
        );
        let wider = "x1,x2,x3,y\n1,2,3,cat\n2,3,4,dog\n".to_string();
        let (_dir, path) = folder_with(TWO_LABS, &[("a.csv", csv(&rows(10, 0.0, ["cat", "dog"]))), ("b.csv", wider)]);
        let message = open(&path).unwrap_err().to_string();
        assert!(message.contains("different shapes, [2] and [3]") && message.contains("b.csv"), "{message}");
    }

    #[test]
    fn a_source_that_lands_in_one_split_and_a_shifted_source_are_warned_about() {
        let shifted = vec![(100.0, 0.0, "cat")];
        let (_dir, path) =
            folder_with(TWO_LABS, &[("a.csv", csv(&rows(200, 0.0, ["cat", "dog"]))), ("b.csv", csv(&shifted))]);
        let combined = open(&path).unwrap();
        let indices = crate::split::split_indices(&combined.source, &SplitSpec::Auto, 0).unwrap();
        let warnings = combined.lineage(&indices).warnings;
        assert!(warnings.iter().any(|w| w.contains("source `lab-b`: 1 of its 1 samples are in")), "{warnings:?}");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings.iter().any(|w| w.contains("source `lab-b` differs") && w.contains("column `x1`")),
            "{warnings:?}"
        );
    }

    #[test]
    fn filters_limits_and_a_fixed_split_are_applied() {
        let manifest =
            format!("{TWO_LABS}classes = [\"cat\"]\nlimit = 5\n\n[split]\nval_count = 10\ntest_count = 10\nseed = 3\n");
        let (_dir, path) = folder_with(
            &manifest,
            &[("a.csv", csv(&rows(40, 0.0, ["cat", "dog"]))), ("b.csv", csv(&rows(30, 0.1, ["chat", "chien"])))],
        );
        let combined = open(&path).unwrap();
        assert_eq!(combined.sources[1].samples, 5);
        assert_eq!(combined.sources[1].classes, BTreeMap::from([("cat".to_string(), 5)]));
        assert_eq!(combined.split, Some((SplitSpec::Counts { val: 10, test: 10 }, Some(3))));
        let own = format!("{TWO_LABS}\n[split]\nsource_test = true\n");
        let (_dir, path) = folder_with(
            &own,
            &[("a.csv", csv(&rows(10, 0.0, ["cat", "dog"]))), ("b.csv", csv(&rows(10, 0.1, ["chat", "chien"])))],
        );
        let message = open(&path).unwrap_err().to_string();
        assert!(message.contains("source `lab-a`") && message.contains("has no test split of its own"), "{message}");
        let unknown = folder_with("name = \"x\"\nsources = []\nextra = 1\n", &[]);
        assert!(open(&unknown.1).unwrap_err().to_string().contains("extra"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The same rows in any order give the same dataset and fingerprint; changing one value
        /// changes the fingerprint.
        #[test]
        fn the_fingerprint_ignores_row_order_and_sees_every_value(seed in any::<u64>(), changed in 0usize..20) {
            use rand::seq::SliceRandom;
            use rand::SeedableRng;
            let a = rows(20, 0.0, ["cat", "dog"]);
            let b = rows(12, 0.5, ["chat", "chien"]);
            let (_dir, path) = folder_with(TWO_LABS, &[("a.csv", csv(&a)), ("b.csv", csv(&b))]);
            let reference = open(&path).unwrap();
            let mut shuffled = a.clone();
            shuffled.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            let (_dir2, path2) = folder_with(TWO_LABS, &[("a.csv", csv(&shuffled)), ("b.csv", csv(&b))]);
            let reordered = open(&path2).unwrap();
            prop_assert_eq!(&reference.fingerprint, &reordered.fingerprint);
            prop_assert_eq!(&reference.source, &reordered.source);
            let mut edited = a.clone();
            edited[changed].0 += 0.5;
            let (_dir3, path3) = folder_with(TWO_LABS, &[("a.csv", csv(&edited)), ("b.csv", csv(&b))]);
            prop_assert_ne!(&reference.fingerprint, &open(&path3).unwrap().fingerprint);
        }
    }

    #[test]
    fn a_filter_changes_the_fingerprint_and_a_path_does_not() {
        let files = [("a.csv", csv(&rows(20, 0.0, ["cat", "dog"]))), ("b.csv", csv(&rows(12, 0.5, ["chat", "chien"])))];
        let (_dir, path) = folder_with(TWO_LABS, &files);
        let base = open(&path).unwrap().fingerprint;
        let (_dir, path) = folder_with(&format!("{TWO_LABS}limit = 6\n"), &files);
        assert_ne!(open(&path).unwrap().fingerprint, base);
        let moved = TWO_LABS.replace("path = \"b.csv\"", "path = \"sub/../b.csv\"");
        let (dir, path) = folder_with(&moved, &files);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(open(&path).unwrap().fingerprint, base);
    }
}
