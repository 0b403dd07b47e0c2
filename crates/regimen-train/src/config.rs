//! The resolved configuration of a training run.
//!
//! One flat struct whose keys are the command-line flags (`batch_size` is `--batch-size`), so a
//! TOML file, the flags and the saved record of a run are the same data: a config file is merged
//! under the flags by key, and the resolved value is written next to the run to be diffed or
//! replayed. Every field has an explicit default; unknown keys are an error, not a silent no-op.

use std::path::{Path, PathBuf};

use regimen_data::Augment;
use regimen_monitor::{MinDelta, Mode, MonitorSpec, Span, StoppingRules};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use regimen_fs::FileError;

/// The most samples a built-in dataset may be generated with: they are for quick experiments, and
/// a mistyped size should be an error, not an exhausted memory.
const MAX_GENERATED_SAMPLES: usize = 10_000_000;

/// The `model` value that picks the model from the data's layout.
pub const AUTO_MODEL: &str = "auto";

/// The model `auto` stands for on samples of `shape`: `cnn` for images (`[channels, height,
/// width]`), `mlp` for vectors.
pub fn auto_model(shape: &[usize]) -> &'static str {
    if regimen_data::Layout::of(shape).is_image() { "cnn" } else { "mlp" }
}

/// How a run and `regimen check` say which model `auto` chose: `mlp, chosen for vector data`.
pub fn auto_choice(chosen: &str) -> String {
    let data = if chosen == "cnn" { "image" } else { "vector" };
    format!("{chosen}, chosen for {data} data")
}

/// Settings that say where and how a run is kept and shown, not how it trains: left out of the
/// run's hyperparameters ([`TrainConfig::params`]).
const BOOKKEEPING: [&str; 14] = [
    "store",
    "experiment",
    "run_name",
    "checkpoint_name",
    "device",
    "log_every",
    "grad_norm_every",
    "prediction_samples",
    "keep_top_k",
    "keep_every",
    "checkpoint_every_steps",
    "checkpoint_every_minutes",
    "restore_best",
    "dataset_size",
];

/// Every setting of a training run. Defaults follow the recipe: Adam at 1e-3, a CNN on `shapes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Built-in generated dataset (`shapes`, `spirals`); ignored when `data` is set.
    pub dataset: String,
    /// Number of samples to generate for a built-in dataset (its default when absent).
    pub dataset_size: Option<usize>,
    /// A data file or folder in a real format.
    pub data: Option<PathBuf>,
    /// A dataset manifest (`dataset.toml`) that combines several sources; see `regimen_data::manifest`.
    pub dataset_file: Option<PathBuf>,
    /// Format of `data` (`csv`, `idx`, `cifar`, `folder`); detected when absent.
    pub format: Option<String>,
    /// CSV label column.
    pub label: Option<String>,
    /// `classification` or `regression`; inferred when absent.
    pub task: Option<String>,
    /// Declared class names; a label outside them is an error.
    pub classes: Option<Vec<String>>,
    /// Validation fraction (with `test_fraction`); the recipe's rule by size when absent.
    pub val_fraction: Option<f64>,
    /// Test fraction.
    pub test_fraction: Option<f64>,
    /// Validation size in samples (instead of fractions).
    pub val_count: Option<usize>,
    /// Test size in samples.
    pub test_count: Option<usize>,
    /// Seed of the split, kept apart from `seed` so that changing the training seed keeps the split.
    pub split_seed: u64,
    /// Fit normalization on the train split and apply it to every split.
    pub normalize: bool,

    /// Model: `mlp`, `cnn`, `resnet`, or `auto` (the default): `cnn` for images, `mlp` for
    /// vectors. A run records the model it resolved to.
    pub model: String,
    /// Hidden layer sizes: the MLP's layers, the CNN's dense head.
    pub hidden: Option<Vec<usize>>,
    /// Convolution channels of the CNN, one per conv block.
    pub channels: Vec<usize>,
    /// Activation of the MLP: `relu`, `gelu`, `tanh`, `selu`.
    pub activation: String,
    /// Dropout probability before dense layers.
    pub dropout: f64,
    /// Batch normalization in the MLP (always on in the CNN and ResNet).
    pub batch_norm: bool,
    /// Residual blocks per stage of the ResNet.
    pub depth: usize,
    /// Channels of the ResNet's first stage (doubled at each of the three stages).
    pub width: usize,

    /// Passes over the training split.
    pub epochs: u64,
    /// Samples per optimizer step.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// `adam`, `adamw` or `sgd`.
    pub optimizer: String,
    /// Weight decay (L2 for Adam and SGD, decoupled for AdamW).
    pub weight_decay: f64,
    /// SGD momentum (0 disables it).
    pub momentum: f64,
    /// Nesterov momentum for SGD.
    pub nesterov: bool,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// Learning-rate schedule: `constant`, `step:EPOCHS:GAMMA`, `cosine[:warmup=STEPS]`,
    /// `onecycle`, `plateau[:factor=F,patience=P]`.
    pub schedule: String,
    /// Label smoothing for the cross-entropy loss.
    pub label_smoothing: f64,

    /// Random horizontal flips (images).
    pub augment_flip: bool,
    /// Random crops after zero padding by this many pixels (images).
    pub augment_crop: usize,
    /// Random rotations up to this many degrees (images).
    pub augment_rotate: f32,
    /// Additive Gaussian noise with this standard deviation.
    pub augment_noise: f32,

    /// Log the running training loss every this many steps.
    pub log_every: u64,
    /// Also validate every this many steps (validation always runs at each epoch end).
    pub val_every_steps: Option<u64>,
    /// Evaluate exactly on a fixed subset of this many training samples at each epoch end.
    pub train_eval_subset: Option<usize>,
    /// Top-k accuracy to report for classification.
    pub top_k: usize,
    /// Log per-layer gradient norms every this many steps (and at the first); 0 turns it off.
    pub grad_norm_every: u64,
    /// Record the predictions on this many fixed validation samples at each epoch end; 0 turns it off.
    pub prediction_samples: usize,

    /// The metric that selects the best checkpoint and drives early stopping and
    /// reduce-on-plateau; `val.macro_f1` for classification and `val.loss` for regression when absent.
    pub monitor: Option<String>,
    /// `min` or `max`; inferred from the metric name when absent.
    pub monitor_mode: Option<String>,
    /// Smallest change that counts as progress for patience: absolute (`0.001`) or relative (`1%`).
    pub min_delta: String,
    /// Stop after this long without progress, with its unit: `5 epochs`, `10 evaluations`,
    /// `2000 steps`. Off when absent.
    pub patience: Option<String>,
    /// Stop at once when the monitored metric is worse than this value.
    pub es_divergence: Option<f64>,
    /// Stop when, after the grace period, the monitored metric has not beaten this value.
    pub es_baseline: Option<f64>,
    /// Grace period before patience and the baseline may stop the run: `3 epochs`, `500 steps`.
    pub es_start_from: Option<String>,
    /// At the end, make the best checkpoint's weights the final model (otherwise the last ones).
    pub restore_best: bool,
    /// Besides the last two and the best, keep the `k` best checkpoints.
    pub keep_top_k: usize,
    /// Also keep the checkpoint of every `n`-th epoch.
    pub keep_every: Option<u64>,
    /// Also checkpoint every this many steps (a checkpoint is always taken at each epoch end).
    pub checkpoint_every_steps: Option<u64>,
    /// Also checkpoint when this many minutes have passed since the last checkpoint.
    pub checkpoint_every_minutes: Option<f64>,
    /// Start from pretrained weights (fresh optimizer): a run id or name (its best checkpoint), a
    /// run or checkpoint folder, or a safetensors file with Regimen's or PyTorch's tensor names.
    /// Tensors whose shape differs, such as a head for another class count, start fresh.
    pub init_from: Option<PathBuf>,
    /// Renames of `init_from`'s tensors before they are matched: `REGEX=REPLACEMENT`.
    pub init_map: Vec<String>,
    /// Modules that do not train: module paths with `*` (`blocks.*`, `conv*`) or `all-but-head`.
    pub freeze: Vec<String>,
    /// Epoch from which the frozen modules train too, at `lr` times `backbone_lr_scale`.
    pub unfreeze_at: Option<u64>,
    /// Learning-rate factor of the modules `freeze` names, once `unfreeze_at` lets them train.
    pub backbone_lr_scale: f64,
    /// Template of the run name; `{key}` is any config key, `{dataset}` or `{data_id}`.
    pub run_name: String,
    /// Template of checkpoint folder names; adds `{epoch}`, `{step}`, `{metric}` and `{value}`.
    pub checkpoint_name: String,

    /// Seed of initialization, shuffling, augmentation and dropout.
    pub seed: u64,
    /// `cpu`, `cuda[:N]` or `wgpu`.
    pub device: String,
    /// Folder of the run store.
    pub store: PathBuf,
    /// Experiment name that groups runs.
    pub experiment: String,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            dataset: "shapes".into(),
            dataset_size: None,
            data: None,
            dataset_file: None,
            format: None,
            label: None,
            task: None,
            classes: None,
            val_fraction: None,
            test_fraction: None,
            val_count: None,
            test_count: None,
            split_seed: 0,
            normalize: true,
            model: AUTO_MODEL.into(),
            hidden: None,
            channels: vec![32, 64],
            activation: "relu".into(),
            dropout: 0.0,
            batch_norm: false,
            depth: 2,
            width: 16,
            epochs: 8,
            batch_size: 64,
            lr: 1e-3,
            optimizer: "adam".into(),
            weight_decay: 0.0,
            momentum: 0.9,
            nesterov: false,
            grad_clip: None,
            schedule: "constant".into(),
            label_smoothing: 0.0,
            augment_flip: false,
            augment_crop: 0,
            augment_rotate: 0.0,
            augment_noise: 0.0,
            log_every: 10,
            val_every_steps: None,
            train_eval_subset: None,
            top_k: 3,
            grad_norm_every: 100,
            prediction_samples: 16,
            monitor: None,
            monitor_mode: None,
            min_delta: "0".into(),
            patience: None,
            es_divergence: None,
            es_baseline: None,
            es_start_from: None,
            restore_best: true,
            keep_top_k: 0,
            keep_every: None,
            checkpoint_every_steps: None,
            checkpoint_every_minutes: None,
            init_from: None,
            init_map: Vec::new(),
            freeze: Vec::new(),
            unfreeze_at: None,
            backbone_lr_scale: 0.1,
            run_name: "{model}-{dataset}-{data_id}-lr{lr}-{optimizer}-bs{batch_size}".into(),
            checkpoint_name:
                "{model}-{dataset}-{data_id}-lr{lr}-{optimizer}-wd{weight_decay}-ep{epoch}-step{step}-{metric}{value}"
                    .into(),
            seed: 42,
            device: "cpu".into(),
            store: PathBuf::from(".regimen"),
            experiment: "default".into(),
        }
    }
}

impl TrainConfig {
    /// Where the data comes from, as the start of a run or check says it: the manifest, the data
    /// path or the built-in dataset.
    pub fn data_source(&self) -> String {
        match (&self.dataset_file, &self.data) {
            (Some(file), _) => format!("manifest {}", file.display()),
            (None, Some(path)) => path.display().to_string(),
            (None, None) => format!("built-in `{}`", self.dataset),
        }
    }

    /// Reads a TOML config file; keys it does not set keep their defaults.
    pub fn from_toml_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            TrainError::Io(FileError { path: path.to_path_buf(), action: "read the config file", source })
        })?;
        Self::from_toml_str(&text).map_err(|message| TrainError::Config { origin: path.display().to_string(), message })
    }

    /// Parses TOML text; the error is toml's message, which names the line and key.
    pub fn from_toml_str(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The config as TOML, as saved next to a run.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# could not encode config: {e}\n"))
    }

    /// Checks values that no type can: ranges, names, combinations.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |key: &str, value: String, expected: &str| {
            Err(TrainError::Config {
                origin: "the resolved configuration".into(),
                message: format!("`{key}` is {value}, but it must be {expected}"),
            })
        };
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "at least 1");
        }
        if let Some(size) = self.dataset_size
            && !(1..=MAX_GENERATED_SAMPLES).contains(&size)
        {
            return bad("dataset_size", size.to_string(), "between 1 and 10,000,000 samples");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0".into(), "at least 1");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", self.lr.to_string(), "a positive number such as 1e-3");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", self.dropout.to_string(), "in [0, 1)");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label_smoothing", self.label_smoothing.to_string(), "in [0, 1)");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight_decay", self.weight_decay.to_string(), "zero or positive");
        }
        if let Some(clip) = self.grad_clip
            && !(clip.is_finite() && clip > 0.0)
        {
            return bad("grad_clip", clip.to_string(), "a positive number");
        }
        if self.log_every == 0 {
            return bad("log_every", "0".into(), "at least 1");
        }
        if self.val_every_steps == Some(0) {
            return bad("val_every_steps", "0".into(), "at least 1");
        }
        if self.top_k == 0 {
            return bad("top_k", "0".into(), "at least 1");
        }
        if !["adam", "adamw", "sgd"].contains(&self.optimizer.as_str()) {
            return bad("optimizer", format!("`{}`", self.optimizer), "one of adam, adamw, sgd");
        }
        if ![AUTO_MODEL, "mlp", "cnn", "resnet"].contains(&self.model.as_str()) {
            return bad("model", format!("`{}`", self.model), "one of auto, mlp, cnn, resnet");
        }
        if !["relu", "gelu", "tanh", "selu"].contains(&self.activation.as_str()) {
            return bad("activation", format!("`{}`", self.activation), "one of relu, gelu, tanh, selu");
        }
        if self.channels.is_empty() || self.channels.contains(&0) {
            return bad("channels", format!("{:?}", self.channels), "a list of positive sizes");
        }
        if self.hidden.as_ref().is_some_and(|h| h.contains(&0)) {
            return bad("hidden", format!("{:?}", self.hidden), "a list of positive sizes");
        }
        if self.depth == 0 || self.width == 0 {
            return bad("depth/width", format!("{}/{}", self.depth, self.width), "positive");
        }
        if let (Some(data), Some(file)) = (&self.data, &self.dataset_file) {
            return bad(
                "data",
                format!("`{}` while `dataset_file` is `{}`", data.display(), file.display()),
                "left out when a dataset manifest is given (list the file as one of its sources)",
            );
        }
        if let Some(epoch) = self.unfreeze_at {
            if self.freeze.is_empty() {
                return bad("unfreeze_at", epoch.to_string(), "given with `freeze`, which names what it unfreezes");
            }
            if epoch < 2 {
                return bad("unfreeze_at", epoch.to_string(), "at least 2 (at 1 nothing would ever be frozen)");
            }
        }
        if !(self.backbone_lr_scale.is_finite() && self.backbone_lr_scale > 0.0) {
            return bad("backbone_lr_scale", self.backbone_lr_scale.to_string(), "a positive number such as 0.1");
        }
        for rename in &self.init_map {
            crate::transfer::Rename::parse(rename)?;
        }
        if self.checkpoint_every_steps == Some(0) {
            return bad("checkpoint_every_steps", "0".into(), "at least 1");
        }
        if let Some(minutes) = self.checkpoint_every_minutes
            && self.checkpoint_interval().is_none()
        {
            return bad(
                "checkpoint_every_minutes",
                minutes.to_string(),
                "a positive number of minutes no larger than about 3e17",
            );
        }
        if !self.checkpoint_name.contains("{step}") {
            return bad(
                "checkpoint_name",
                format!("`{}`", self.checkpoint_name),
                "a template containing {step}, so names are unique",
            );
        }
        self.stopping()?;
        self.split()?;
        Ok(())
    }

    /// How the data is split: fractions, counts, or the recipe's rule by size when neither is set.
    /// Mixing fractions and counts is an error, not a silent choice of one.
    pub fn split(&self) -> Result<regimen_data::SplitSpec, TrainError> {
        use regimen_data::SplitSpec;
        let fractions = self.val_fraction.is_some() || self.test_fraction.is_some();
        let counts = self.val_count.is_some() || self.test_count.is_some();
        Ok(match (fractions, counts) {
            (false, false) => SplitSpec::Auto,
            (true, false) => {
                let (val, test) = (self.val_fraction, self.test_fraction);
                SplitSpec::Fractions { val: val.or(test).unwrap_or(0.2), test: test.or(val).unwrap_or(0.2) }
            }
            (false, true) => {
                let (val, test) = (self.val_count, self.test_count);
                SplitSpec::Counts { val: val.or(test).unwrap_or(0), test: test.or(val).unwrap_or(0) }
            }
            (true, true) => {
                return Err(TrainError::Config {
                    origin: "the split settings".into(),
                    message: "both fractions (val_fraction, test_fraction) and counts (val_count, test_count) are \
                              set; give one kind"
                        .into(),
                });
            }
        })
    }

    /// The time between two timed checkpoints; `None` when off or out of range.
    pub fn checkpoint_interval(&self) -> Option<std::time::Duration> {
        let minutes = self.checkpoint_every_minutes?;
        (minutes > 0.0).then(|| std::time::Duration::try_from_secs_f64(minutes * 60.0).ok()).flatten()
    }

    /// The augmentation of training samples that the `augment_*` settings describe.
    ///
    /// Training, `regimen check`'s picture of the first batch and its short training runs all build
    /// it here, so they cannot augment differently.
    pub fn augment(&self) -> Augment {
        Augment {
            hflip: self.augment_flip,
            crop_padding: self.augment_crop,
            rotate_degrees: self.augment_rotate,
            noise_std: self.augment_noise,
        }
    }

    /// The config with `model = auto` resolved for samples of `shape`: `cnn` for images
    /// (`[channels, height, width]`), `mlp` otherwise. Returns the chosen model's name when it
    /// was chosen here, so the caller can say so.
    pub fn resolve_model(&mut self, shape: &[usize]) -> Option<&'static str> {
        if self.model != AUTO_MODEL {
            return None;
        }
        let chosen = auto_model(shape);
        self.model = chosen.to_string();
        Some(chosen)
    }

    /// The run's hyperparameters: the settings that apply to this run's model and optimizer, without
    /// bookkeeping (store, experiment, name templates, device, logging and checkpoint cadence).
    /// What filters, comparisons, sweeps and dashboards line runs up by.
    pub fn params(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("a config is always serializable to JSON");
        let Some(map) = value.as_object_mut() else { return value };
        let unused: &[&str] = match self.model.as_str() {
            "mlp" => &["channels", "depth", "width"],
            "cnn" => &["activation", "batch_norm", "depth", "width"],
            "resnet" => &["channels", "hidden", "activation", "batch_norm", "dropout"],
            _ => &[],
        };
        let optimizer: &[&str] = if self.optimizer == "sgd" { &[] } else { &["momentum", "nesterov"] };
        for key in BOOKKEEPING.iter().chain(unused).chain(optimizer) {
            map.remove(*key);
        }
        if self.data.is_some() {
            map.remove("dataset");
        }
        value
    }

    /// The early-stopping rules these settings describe.
    pub fn stopping(&self) -> Result<StoppingRules, TrainError> {
        let config_error = |error: regimen_monitor::MonitorError| TrainError::Config {
            origin: "the resolved configuration".into(),
            message: error.to_string(),
        };
        let span = |text: &Option<String>| text.as_deref().map(str::parse::<Span>).transpose().map_err(config_error);
        Ok(StoppingRules {
            patience: span(&self.patience)?,
            divergence_threshold: self.es_divergence,
            baseline: self.es_baseline,
            grace: span(&self.es_start_from)?,
        })
    }

    /// The monitor spec: `monitor` (or the task's default), its mode and `min_delta`.
    pub fn monitor_spec(&self, default_metric: &str) -> Result<MonitorSpec, TrainError> {
        let config_error = |error: regimen_monitor::MonitorError| TrainError::Config {
            origin: "the resolved configuration".into(),
            message: error.to_string(),
        };
        let mode =
            self.monitor_mode.as_deref().map(str::parse::<Mode>).transpose().map_err(|e| TrainError::Config {
                origin: "the `monitor_mode` setting".into(),
                message: e.to_string(),
            })?;
        let min_delta: MinDelta = self.min_delta.parse().map_err(config_error)?;
        MonitorSpec::new(self.monitor.as_deref().unwrap_or(default_metric), mode, min_delta).map_err(config_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trips_the_resolved_config() {
        let config = TrainConfig { lr: 3e-4, hidden: Some(vec![64, 32]), ..TrainConfig::default() };
        assert_eq!(TrainConfig::from_toml_str(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn params_are_the_settings_that_apply_without_bookkeeping() {
        let mlp = TrainConfig { model: "mlp".into(), ..TrainConfig::default() }.params();
        for gone in ["channels", "depth", "width", "store", "experiment", "device", "run_name", "momentum"] {
            assert!(mlp.get(gone).is_none(), "{gone} in {mlp}");
        }
        for kept in ["lr", "hidden", "activation", "batch_size", "seed", "dataset", "optimizer"] {
            assert!(mlp.get(kept).is_some(), "{kept} missing from {mlp}");
        }
        let cnn = TrainConfig { model: "cnn".into(), optimizer: "sgd".into(), ..TrainConfig::default() }.params();
        assert!(cnn.get("channels").is_some() && cnn.get("momentum").is_some() && cnn.get("depth").is_none());
    }

    #[test]
    fn auto_picks_a_cnn_for_images_and_an_mlp_for_vectors() {
        let mut config = TrainConfig::default();
        assert_eq!(config.clone().resolve_model(&[3, 8, 8]), Some("cnn"));
        assert_eq!(config.resolve_model(&[2]), Some("mlp"));
        assert_eq!(config.model, "mlp");
        assert_eq!(config.resolve_model(&[3, 8, 8]), None, "an explicit model is kept");
    }

    #[test]
    fn a_huge_checkpoint_interval_is_refused_not_a_panic() {
        let config = TrainConfig { checkpoint_every_minutes: Some(1e300), ..TrainConfig::default() };
        assert!(config.validate().unwrap_err().to_string().contains("checkpoint_every_minutes"));
        let config = TrainConfig { checkpoint_every_minutes: Some(0.5), ..TrainConfig::default() };
        assert_eq!(config.checkpoint_interval(), Some(std::time::Duration::from_secs(30)));
    }

    #[test]
    fn augment_settings_become_the_augmentation() {
        assert!(TrainConfig::default().augment().is_identity());
        let config = TrainConfig {
            augment_flip: true,
            augment_crop: 3,
            augment_rotate: 5.0,
            augment_noise: 0.1,
            ..TrainConfig::default()
        };
        let expected = Augment { hflip: true, crop_padding: 3, rotate_degrees: 5.0, noise_std: 0.1 };
        assert_eq!(config.augment(), expected);
    }

    #[test]
    fn a_partial_file_keeps_defaults_for_the_rest() {
        let config = TrainConfig::from_toml_str("model = \"mlp\"\nepochs = 3\n").unwrap();
        assert_eq!(config.model, "mlp");
        assert_eq!(config.epochs, 3);
        assert_eq!(config.lr, 1e-3);
    }

    #[test]
    fn an_unknown_key_is_an_error_that_names_it() {
        let error = TrainConfig::from_toml_str("learning_rate = 0.1\n").unwrap_err();
        assert!(error.contains("learning_rate"), "{error}");
    }

    #[test]
    fn validation_echoes_the_bad_value() {
        let config = TrainConfig { lr: -1.0, ..TrainConfig::default() };
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("`lr` is -1"), "{message}");
        let config = TrainConfig { optimizer: "adagrad".into(), ..TrainConfig::default() };
        assert!(config.validate().unwrap_err().to_string().contains("adagrad"));
    }
}
