//! `regimen explore`: the recipe's "become one with the data", measured.
//!
//! Besides the data checks of `regimen check` and pictures of the data, it answers the recipe's
//! questions with small, seeded probes, each a small built-in model (a CNN of 16 and 32 channels
//! for images, an MLP of 64 and 64 for tables) trained for a few epochs on up to a few thousand
//! training samples and scored on validation:
//! - *local or global?* (images) the probe on images whose 4×4 grid of patches is shuffled, against
//!   the originals: a large drop means the arrangement of parts carries the label;
//! - *how much downsampling?* (images) the probe at 1/2 and 1/4 resolution (average pooling);
//! - *how noisy are the labels?* out-of-fold probabilities (3 folds) counted by confident learning;
//! - *what is spurious?* and *how much variation?* need no model (`regimen_doctor::explore`).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use regimen_data::{BatchBuilder, BatchTargets, Layout, PreparedData, Samples, Targets, Task};
use regimen_doctor::explore::{
    FeatureSummary, NoiseEstimate, Outlier, feature_summaries, label_noise, outliers, shortcuts, variation,
};
use regimen_doctor::{Check, CheckReport, Splits, data_checks, sample_grid};
use serde::Serialize;

use crate::batches::EpochPlan;
use crate::check::CheckObserver;
use crate::config::TrainConfig;
use crate::device::parse_device;
use crate::ensemble::predict;
use crate::error::TrainError;
use crate::model::build_builtin;
use crate::step::{Probe, Stepper};

/// How much the probes train.
#[derive(Debug, Clone)]
pub struct ExploreOptions {
    /// Most training samples a probe trains on (taken evenly from the train split).
    pub samples: usize,
    /// Most validation samples a probe is scored on.
    pub val_samples: usize,
    /// Epochs of each probe.
    pub epochs: u64,
    /// Folds of the out-of-fold predictions for label noise.
    pub folds: usize,
    /// Folder for the pictures (`examples.png`, `outliers.png`, `suspects.png`).
    pub out: Option<PathBuf>,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        ExploreOptions { samples: 3000, val_samples: 1000, epochs: 4, folds: 3, out: None }
    }
}

/// What `regimen explore` found.
#[derive(Debug, Clone, Serialize)]
pub struct Exploration {
    /// The data checks, then one answer per question.
    pub report: CheckReport,
    /// Every feature (column, or image channel) of the raw train split: range, spread and
    /// per-class histograms.
    pub features: Vec<FeatureSummary>,
    /// The training samples furthest from their class.
    pub outliers: Vec<Outlier>,
    /// The estimated share of wrong labels and the most suspicious training samples.
    pub label_noise: Option<NoiseEstimate>,
    /// Pictures written.
    pub pictures: Vec<PathBuf>,
}

/// Up to `limit` rows of `samples`, taken evenly (the same rows every time).
fn evenly(samples: &Samples, limit: usize) -> Samples {
    let step = samples.len().div_ceil(limit.max(1)).max(1);
    let rows: Vec<usize> = (0..samples.len()).step_by(step).collect();
    samples.subset(&rows)
}

/// Accuracy of class probabilities against `samples`' labels.
fn accuracy(probs: &[f32], samples: &Samples, classes: usize) -> f64 {
    let Targets::Classes(labels) = &samples.targets else { return f64::NAN };
    let right = labels
        .iter()
        .enumerate()
        .filter(|&(i, &label)| regimen_metrics::argmax(&probs[i * classes..(i + 1) * classes]) == Some(label as usize))
        .count();
    right as f64 / labels.len().max(1) as f64
}

/// Trains the probe model on `train` and returns its class probabilities on `eval`.
fn probe(
    train: &Samples,
    eval: &Samples,
    task: &Task,
    config: &TrainConfig,
    epochs: u64,
) -> Result<Vec<f32>, TrainError> {
    let device = parse_device(&config.device)?.autodiff();
    let mut probe_config = TrainConfig { seed: config.seed, batch_size: 64, lr: 2e-3, ..TrainConfig::default() };
    if Layout::of(&train.shape).is_image() {
        probe_config.model = "cnn".into();
        probe_config.channels = vec![16, 32];
        probe_config.hidden = Some(Vec::new());
    } else {
        probe_config.model = "mlp".into();
        probe_config.hidden = Some(vec![64, 64]);
    }
    device.seed(probe_config.seed);
    let mut model = build_builtin(&probe_config, &train.shape, task.num_outputs(), &device)?;
    let mut stepper = Stepper::new(&probe_config, task, 0.0, &device);
    let batch_size = probe_config.batch_size.min(train.len()).max(1);
    for epoch in 1..=epochs {
        let order = regimen_data::epoch_order(probe_config.seed, epoch, train.len());
        let plan =
            EpochPlan { samples: train, order: &order, batch_size, training: true, augment: None, first_batch: 0 };
        for index in 0..plan.batches() {
            let mut batch = plan.build(&BatchBuilder, index);
            let (next, stepped) = stepper.step(model, &mut batch, probe_config.lr, &device, Probe::Off);
            model = next;
            stepped?;
        }
    }
    predict(&model.valid(), eval, 256, task, &device.without_autodiff())
}

/// Images with each sample's 4×4 grid of patches shuffled (a fixed permutation per sample).
fn patch_shuffled(samples: &Samples) -> Samples {
    let Layout::Image { channels, height, width } = Layout::of(&samples.shape) else { return samples.clone() };
    let (ph, pw) = (height / 4, width / 4);
    let mut out = samples.clone();
    for i in 0..samples.len() {
        let mut order: Vec<usize> = (0..16).collect();
        let mut state = regimen_data::mix64(i as u64 ^ 0x5eed);
        for k in (1..16).rev() {
            state = regimen_data::mix64(state);
            order.swap(k, (state % (k as u64 + 1)) as usize);
        }
        let from = samples.row(i);
        let len = samples.sample_len();
        let to = &mut out.features[i * len..(i + 1) * len];
        for (target, &source) in order.iter().enumerate() {
            let (ty, tx, sy, sx) = (target / 4 * ph, target % 4 * pw, source / 4 * ph, source % 4 * pw);
            for c in 0..channels {
                for y in 0..ph {
                    let (t, s) = ((c * height + ty + y) * width + tx, (c * height + sy + y) * width + sx);
                    to[t..t + pw].copy_from_slice(&from[s..s + pw]);
                }
            }
        }
    }
    out
}

/// Images average-pooled by `factor` in height and width.
fn downsampled(samples: &Samples, factor: usize) -> Samples {
    let Layout::Image { channels, height, width } = Layout::of(&samples.shape) else { return samples.clone() };
    let (h, w) = (height / factor, width / factor);
    let mut features = Vec::with_capacity(samples.len() * channels * h * w);
    for i in 0..samples.len() {
        let row = samples.row(i);
        for c in 0..channels {
            for y in 0..h {
                for x in 0..w {
                    let mut sum = 0.0;
                    for dy in 0..factor {
                        for dx in 0..factor {
                            sum += row[(c * height + y * factor + dy) * width + x * factor + dx];
                        }
                    }
                    features.push(sum / (factor * factor) as f32);
                }
            }
        }
    }
    Samples { shape: vec![channels, h, w], features, targets: samples.targets.clone() }
}

/// Explores the data `config` names: data checks, pictures, and the probes' answers.
pub fn explore(
    config: &TrainConfig,
    options: &ExploreOptions,
    observer: &mut dyn CheckObserver,
) -> Result<Exploration, TrainError> {
    config.validate()?;
    let mut report = CheckReport::default();
    let push = |report: &mut CheckReport, observer: &mut dyn CheckObserver, check: Check| {
        observer.on_check(&check);
        report.push(check);
    };
    observer.on_stage("data");
    let (raw, seen) = crate::check::load(config)?;
    for check in data_checks(&Splits::from_prepared(&raw), &seen.train) {
        push(&mut report, observer, check);
    }
    if let Some(lineage) = &raw.identity.lineage {
        push(&mut report, observer, regimen_doctor::sources::sources_check(lineage));
    }
    let names = match &config.data {
        Some(path) => regimen_data::feature_names(path, &crate::run::load_options(config)?),
        None => None,
    };
    let mut pictures = Vec::new();
    let features = feature_summaries(&raw.train, &raw.task, names.as_deref());
    let found = outliers(&seen.train, &seen.task, 20, names.as_deref());
    if let Some(folder) = &options.out {
        for (check, path) in pictures_of(&seen, &found, folder) {
            push(&mut report, observer, check);
            pictures.extend(path);
        }
    }
    observer.on_stage("shortcuts and variation");
    push(&mut report, observer, shortcuts(&raw.train, &raw.val, &raw.task, names.as_deref()));
    push(&mut report, observer, variation(&seen.train, &seen.task));

    let classes = match &seen.task {
        Task::Classification { classes } if classes.len() >= 2 => classes.len(),
        Task::Classification { .. } => {
            let check = Check::fail(
                "probes",
                "The probes need at least two classes; see class_balance for what the labels hold.",
            );
            push(&mut report, observer, check);
            return Ok(Exploration { report, features, outliers: found, label_noise: None, pictures });
        }
        Task::Regression => {
            push(&mut report, observer, Check::pass("probes", "Skipped: the probes are for classification."));
            return Ok(Exploration { report, features, outliers: found, label_noise: None, pictures });
        }
    };
    let train = evenly(&seen.train, options.samples);
    let val = evenly(&seen.val, options.val_samples);
    let chance = 1.0 / classes as f64;
    observer.on_stage("probe on the data as it is");
    let full = accuracy(&probe(&train, &val, &seen.task, config, options.epochs)?, &val, classes);
    if Layout::of(&seen.shape).is_image() {
        observer.on_stage("probe on patch-shuffled images");
        let shuffled = accuracy(
            &probe(&patch_shuffled(&train), &patch_shuffled(&val), &seen.task, config, options.epochs)?,
            &val,
            classes,
        );
        push(&mut report, observer, local_or_global(full, shuffled, chance));
        observer.on_stage("probes at 1/2 and 1/4 resolution");
        let mut resolutions = vec![(1, full)];
        for factor in [2, 4] {
            let (small_train, small_val) = (downsampled(&train, factor), downsampled(&val, factor));
            if small_train.shape[1] < 4 || small_train.shape[2] < 4 {
                break;
            }
            let probs = probe(&small_train, &small_val, &seen.task, config, options.epochs)?;
            resolutions.push((factor, accuracy(&probs, &val, classes)));
        }
        push(&mut report, observer, downsampling(&resolutions, &seen.shape));
    }
    observer.on_stage("out-of-fold predictions for label noise");
    let noise = out_of_fold_noise(&train, &seen.task, config, options)?;
    push(&mut report, observer, noise_check(&noise, full, train.len()));
    if let Some(folder) = &options.out
        && let Some((check, path)) = suspects_picture(&train, &seen.task, &noise, folder)
    {
        push(&mut report, observer, check);
        pictures.push(path);
    }
    Ok(Exploration { report, features, outliers: found, label_noise: Some(noise), pictures })
}

/// The answer to *local or global?* from the probe's accuracy on whole and patch-shuffled images.
fn local_or_global(full: f64, shuffled: f64, chance: f64) -> Check {
    let drop = full - shuffled;
    let numbers = format!(
        "The probe reaches {:.1}% on the images and {:.1}% when each image's 4×4 grid of patches is shuffled \
         (chance {:.1}%)",
        100.0 * full,
        100.0 * shuffled,
        100.0 * chance
    );
    let check = if drop >= 0.15 {
        Check::pass("local_or_global", format!("{numbers}: global context matters, the arrangement of parts carries the label."))
            .with_advice("Use a model that sees the whole image: enough depth or pooling for a receptive field as large as the objects.")
    } else if drop <= 0.05 {
        Check::pass(
            "local_or_global",
            format!("{numbers}: local features suffice, patches carry the label on their own."),
        )
        .with_advice("A shallow model with small receptive fields can do; global structure adds little.")
    } else {
        Check::pass("local_or_global", format!("{numbers}: both local features and their arrangement matter."))
    };
    check.with("accuracy", full).with("shuffled_accuracy", shuffled).with("drop", drop)
}

/// The answer to *how much downsampling?*: the smallest resolution within 3 points of full.
fn downsampling(resolutions: &[(usize, f64)], shape: &[usize]) -> Check {
    let full = resolutions[0].1;
    let affordable = resolutions.iter().filter(|(_, a)| *a >= full - 0.03).map(|(f, _)| *f).max().unwrap_or(1);
    let listed: Vec<String> = resolutions.iter().map(|(f, a)| format!("1/{f}: {:.1}%", 100.0 * a)).collect();
    let (h, w) = (shape[1] / affordable, shape[2] / affordable);
    let message = if affordable > 1 {
        format!(
            "The probe's accuracy by resolution is {}: the classes stay recognisable at 1/{affordable} ({h}×{w}), \
             within 3 points of full resolution.",
            listed.join(", ")
        )
    } else {
        format!(
            "The probe's accuracy by resolution is {}: downsampling loses information the label needs.",
            listed.join(", ")
        )
    };
    let check = Check::pass("downsampling", message);
    let check = if affordable > 1 {
        check.with_advice(format!("Training at {h}×{w} would be about {}× cheaper per image.", affordable * affordable))
    } else {
        check
    };
    resolutions
        .iter()
        .fold(check.with("affordable_factor", affordable), |c, (f, a)| c.with(format!("accuracy_1/{f}"), *a))
}

/// Out-of-fold class probabilities on `train` (each fold predicted by a probe trained on the
/// others), counted by confident learning.
fn out_of_fold_noise(
    train: &Samples,
    task: &Task,
    config: &TrainConfig,
    options: &ExploreOptions,
) -> Result<NoiseEstimate, TrainError> {
    let Targets::Classes(labels) = &train.targets else { unreachable!("classification was checked") };
    let classes = task.num_outputs();
    let folds = options.folds.max(2);
    let mut probs = vec![0.0f32; train.len() * classes];
    for fold in 0..folds {
        let held: Vec<usize> = (0..train.len()).filter(|i| i % folds == fold).collect();
        let rest: Vec<usize> = (0..train.len()).filter(|i| i % folds != fold).collect();
        let predicted = probe(&train.subset(&rest), &train.subset(&held), task, config, options.epochs)?;
        for (k, &i) in held.iter().enumerate() {
            probs[i * classes..(i + 1) * classes].copy_from_slice(&predicted[k * classes..(k + 1) * classes]);
        }
    }
    Ok(label_noise(labels, &probs, classes))
}

/// The answer to *how noisy are the labels?*
fn noise_check(noise: &NoiseEstimate, probe_accuracy: f64, samples: usize) -> Check {
    let message = format!(
        "Confident learning on out-of-fold predictions estimates {:.1}% of {samples} training labels are wrong \
         ({} samples whose label the probe confidently contradicts; the probe's validation accuracy is {:.1}%).",
        100.0 * noise.share,
        noise.suspects.len(),
        100.0 * probe_accuracy
    );
    let check = if noise.share > 0.05 {
        Check::warn("label_noise", message).with_advice(
            "Look at the most suspicious examples (suspects.png, or `suspects` in the JSON): relabel them, or \
             expect this share as a floor on the error. A weak probe overestimates the share.",
        )
    } else {
        Check::pass("label_noise", message)
    };
    check.with("estimated_share", noise.share).with("suspects", noise.suspects.len())
}

/// Draws up to 10 samples per class as the network sees them, and the outliers.
fn pictures_of(data: &PreparedData, found: &[Outlier], folder: &Path) -> Vec<(Check, Option<PathBuf>)> {
    if !Layout::of(&data.shape).is_image() {
        return Vec::new();
    }
    let Targets::Classes(labels) = &data.train.targets else { return Vec::new() };
    let classes = data.task.num_outputs();
    let mut rows = Vec::new();
    for class in 0..classes.min(10) {
        rows.extend(labels.iter().enumerate().filter(|(_, l)| **l as usize == class).map(|(i, _)| i).take(10));
    }
    let outliers: Vec<usize> = found.iter().map(|o| o.index).collect();
    [("examples", "examples.png", rows), ("outliers", "outliers.png", outliers)]
        .into_iter()
        .map(|(name, file, rows)| draw(&data.train.subset(&rows), &data.task, &folder.join(file), name))
        .collect()
}

/// The most suspicious labels, drawn with their given label.
fn suspects_picture(train: &Samples, task: &Task, noise: &NoiseEstimate, folder: &Path) -> Option<(Check, PathBuf)> {
    if !Layout::of(&train.shape).is_image() || noise.suspects.is_empty() {
        return None;
    }
    let rows: Vec<usize> = noise.suspects.iter().take(30).map(|s| s.0).collect();
    let path = folder.join("suspects.png");
    let (check, written) = draw(&train.subset(&rows), task, &path, "suspects");
    written.map(|p| (check, p))
}

fn draw(samples: &Samples, task: &Task, path: &Path, name: &str) -> (Check, Option<PathBuf>) {
    let targets = match &samples.targets {
        Targets::Classes(c) => BatchTargets::Classes(c.iter().map(|&c| i64::from(c)).collect()),
        Targets::Values(v) => BatchTargets::Values(v.clone()),
    };
    match sample_grid(&samples.features, &samples.shape, &targets, task, path) {
        Ok(_) => (
            Check::pass(name, format!("{} pictures of {} samples: {}", name, samples.len(), path.display())),
            Some(path.to_path_buf()),
        ),
        Err(error) => (Check::warn(name, format!("Could not draw {name}: {error}.")), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_shuffling_moves_patches_and_keeps_their_pixels() {
        let features: Vec<f32> = (0..64).map(|v| v as f32).collect();
        let samples = Samples { shape: vec![1, 8, 8], features, targets: Targets::Classes(vec![0]) };
        let shuffled = patch_shuffled(&samples);
        assert_ne!(shuffled.features, samples.features);
        let mut sorted = shuffled.features.clone();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(sorted, samples.features);
        // A 2×2 patch moves whole: pixel pairs of a patch row stay neighbours.
        for row in shuffled.features.chunks(2) {
            assert_eq!(row[1] - row[0], 1.0);
        }
    }

    #[test]
    fn downsampling_averages_blocks() {
        let samples =
            Samples { shape: vec![1, 2, 2], features: vec![1.0, 3.0, 5.0, 7.0], targets: Targets::Classes(vec![0]) };
        let small = downsampled(&samples, 2);
        assert_eq!((small.shape, small.features), (vec![1, 1, 1], vec![4.0]));
    }
}
