//! Command-line flags, and their resolution into a training config.
//!
//! Parsing happens in two phases (as ripgrep does): clap reads what the user typed into
//! `TrainArgs`, where every setting is optional; `resolve` then lays those flags over the
//! `--config` file and the defaults, key by key. A flag's long name is its config key in
//! kebab-case, so `--batch-size 32` and `batch_size = 32` are the same setting.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use regimen_data::Augment;
use regimen_train::TrainConfig;
use serde::Serialize;

/// Train neural networks the way the recipe says, and keep every run.
///
/// With no command, `regimen` runs `regimen train`: the quickstart, a CNN on the built-in `shapes`
/// images.
#[derive(Debug, Parser)]
#[command(name = "regimen", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model; with no flags, the quickstart (a CNN on the built-in `shapes` images).
    Train(Box<TrainArgs>),
    /// Evaluate a saved run on its validation or (explicitly) its test split.
    Eval(EvalArgs),
    /// Check a setup before training: data report, loss at init, input-independent baseline,
    /// overfit one batch, decreasing loss, gradient flow, determinism. Takes `regimen train`'s flags.
    Check(Box<crate::check::CheckArgs>),
    /// Average the predictions of several runs (or a sweep's best) and record the ensemble as a run.
    Ensemble(crate::ensemble::EnsembleArgs),
    /// Become one with the data: examples, outliers, balance, and the recipe's questions (local or
    /// global? how much downsampling? how noisy are the labels? shortcuts? variation?) answered by
    /// small probes. Takes `regimen train`'s data flags.
    Explore(Box<crate::explore::ExploreArgs>),
    /// Serve the dashboard's JSON API over the run store on 127.0.0.1:7070 (see /api/openapi.json).
    Ui(crate::ui::UiArgs),
    /// Find settings by measuring: `regimen find batch-size`, `regimen find lr`.
    #[command(subcommand)]
    Find(crate::find::FindCommand),
    /// Hyperparameter sweeps: random, grid, Sobol or TPE search with median, ASHA or Hyperband
    /// early termination, over worker processes that share the run store.
    #[command(subcommand)]
    Sweep(crate::sweep::SweepCommand),
    /// Find, inspect, annotate and delete recorded runs.
    #[command(flatten)]
    Store(crate::commands::StoreCommand),
}

fn skip_false(value: &bool) -> bool {
    !value
}

/// Flags of `regimen train`. Each is optional: unset flags come from `--config` or the defaults
/// (`skip_serializing_none` leaves them out of the table merged over the config file).
#[serde_with::skip_serializing_none]
#[derive(Debug, Default, Args, Serialize)]
#[serde(rename_all = "snake_case")]
pub struct TrainArgs {
    /// TOML file of settings (keys are the flag names with underscores); flags override it.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Print one JSON object with the outcome on stdout instead of the summary table.
    #[arg(long)]
    #[serde(skip)]
    pub json: bool,

    // ---- Data ----
    /// Built-in generated dataset: `shapes` (28×28 images, the default) or `spirals` (2-D points).
    #[arg(long, value_name = "NAME", help_heading = "Data")]
    pub dataset: Option<String>,
    /// Number of samples to generate for a built-in dataset.
    #[arg(long, value_name = "N", help_heading = "Data")]
    pub dataset_size: Option<usize>,
    /// A data file or folder: CSV, IDX (MNIST), CIFAR-10 binary, or a folder of class subfolders.
    #[arg(long, value_name = "PATH", help_heading = "Data")]
    pub data: Option<PathBuf>,
    /// A dataset manifest (dataset.toml) that names a dataset and combines several sources.
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub dataset_file: Option<PathBuf>,
    /// Format of --data when it cannot be detected.
    #[arg(long, value_name = "csv|idx|cifar|folder", help_heading = "Data")]
    pub format: Option<String>,
    /// CSV column holding the label.
    #[arg(long, value_name = "COLUMN", help_heading = "Data")]
    pub label: Option<String>,
    /// Task, when it cannot be inferred from the labels.
    #[arg(long, value_name = "classification|regression", help_heading = "Data")]
    pub task: Option<String>,
    /// Declared class names, comma-separated; a label outside them is an error.
    #[arg(long, value_name = "A,B,..", value_delimiter = ',', help_heading = "Data")]
    pub classes: Option<Vec<String>>,
    /// Validation fraction [default: 20% for small data, shrinking toward 1% for millions].
    #[arg(long, value_name = "F", help_heading = "Data")]
    pub val_fraction: Option<f64>,
    /// Test fraction [default: as the validation fraction].
    #[arg(long, value_name = "F", help_heading = "Data")]
    pub test_fraction: Option<f64>,
    /// Validation size in samples (instead of a fraction).
    #[arg(long, value_name = "N", help_heading = "Data")]
    pub val_count: Option<usize>,
    /// Test size in samples (instead of a fraction).
    #[arg(long, value_name = "N", help_heading = "Data")]
    pub test_count: Option<usize>,
    /// Seed of the train/val/test split, separate from --seed [default: 0].
    #[arg(long, value_name = "N", help_heading = "Data")]
    pub split_seed: Option<u64>,
    /// Do not normalize features (normalization is fitted on the train split only).
    #[arg(long, help_heading = "Data")]
    #[serde(skip)]
    pub no_normalize: bool,

    // ---- Augmentation ----
    /// Standard image augmentation: random flips, 2-pixel crops and 10° rotations.
    #[arg(long, help_heading = "Augmentation")]
    #[serde(skip)]
    pub augment: bool,
    /// Random horizontal flips.
    #[arg(long, help_heading = "Augmentation")]
    #[serde(skip_serializing_if = "skip_false")]
    pub augment_flip: bool,
    /// Random crops after zero padding by this many pixels.
    #[arg(long, value_name = "PIXELS", help_heading = "Augmentation")]
    pub augment_crop: Option<usize>,
    /// Random rotations up to this many degrees.
    #[arg(long, value_name = "DEGREES", help_heading = "Augmentation")]
    pub augment_rotate: Option<f32>,
    /// Additive Gaussian noise with this standard deviation.
    #[arg(long, value_name = "STD", help_heading = "Augmentation")]
    pub augment_noise: Option<f32>,

    // ---- Model ----
    /// Model: `mlp`, `cnn` or `resnet` [default: `cnn` for images, `mlp` for vectors].
    #[arg(long, value_name = "NAME", help_heading = "Model")]
    pub model: Option<String>,
    /// Hidden sizes, comma-separated: MLP layers [default: 256,256] or the CNN's dense head.
    #[arg(long, value_name = "N,N,..", value_delimiter = ',', help_heading = "Model")]
    pub hidden: Option<Vec<usize>>,
    /// CNN channels per conv block, comma-separated [default: 32,64].
    #[arg(long, value_name = "N,N,..", value_delimiter = ',', help_heading = "Model")]
    pub channels: Option<Vec<usize>>,
    /// MLP activation: relu, gelu, tanh or selu [default: relu].
    #[arg(long, value_name = "NAME", help_heading = "Model")]
    pub activation: Option<String>,
    /// Dropout probability before dense layers [default: 0].
    #[arg(long, value_name = "P", help_heading = "Model")]
    pub dropout: Option<f64>,
    /// Batch normalization in the MLP.
    #[arg(long, help_heading = "Model")]
    #[serde(skip_serializing_if = "skip_false")]
    pub batch_norm: bool,
    /// ResNet residual blocks per stage [default: 2].
    #[arg(long, value_name = "N", help_heading = "Model")]
    pub depth: Option<usize>,
    /// ResNet channels of the first stage [default: 16].
    #[arg(long, value_name = "N", help_heading = "Model")]
    pub width: Option<usize>,

    // ---- Optimization ----
    /// Passes over the training split [default: 8].
    #[arg(long, value_name = "N", help_heading = "Optimization")]
    pub epochs: Option<u64>,
    /// Samples per step [default: 64].
    #[arg(long, value_name = "N", help_heading = "Optimization")]
    pub batch_size: Option<usize>,
    /// Learning rate [default: 1e-3].
    #[arg(long, value_name = "LR", help_heading = "Optimization")]
    pub lr: Option<f64>,
    /// Optimizer: adam (default), adamw or sgd.
    #[arg(long, value_name = "NAME", help_heading = "Optimization")]
    pub optimizer: Option<String>,
    /// Weight decay [default: 0].
    #[arg(long, value_name = "W", help_heading = "Optimization")]
    pub weight_decay: Option<f64>,
    /// SGD momentum; 0 disables it [default: 0.9].
    #[arg(long, value_name = "M", help_heading = "Optimization")]
    pub momentum: Option<f64>,
    /// Nesterov momentum for SGD.
    #[arg(long, help_heading = "Optimization")]
    #[serde(skip_serializing_if = "skip_false")]
    pub nesterov: bool,
    /// Clip the global gradient norm to this value.
    #[arg(long, value_name = "NORM", help_heading = "Optimization")]
    pub grad_clip: Option<f64>,
    /// LR schedule: constant, step:EPOCHS:GAMMA, cosine[:warmup=STEPS], onecycle, plateau[:factor=F,patience=P] (plateau watches --monitor).
    #[arg(long, value_name = "SPEC", help_heading = "Optimization")]
    pub schedule: Option<String>,
    /// Label smoothing of the cross-entropy loss [default: 0].
    #[arg(long, value_name = "EPS", help_heading = "Optimization")]
    pub label_smoothing: Option<f64>,

    // ---- Logging and evaluation ----
    /// Log the training loss every N steps [default: 10].
    #[arg(long, value_name = "N", help_heading = "Logging")]
    pub log_every: Option<u64>,
    /// Also validate every N steps (validation always runs at each epoch end).
    #[arg(long, value_name = "N", help_heading = "Logging")]
    pub val_every_steps: Option<u64>,
    /// Evaluate exactly on a fixed subset of N training samples at each epoch end.
    #[arg(long, value_name = "N", help_heading = "Logging")]
    pub train_eval_subset: Option<usize>,
    /// Log per-layer gradient norms every N steps and at the first (0: off) [default: 100].
    #[arg(long, value_name = "N", help_heading = "Logging")]
    pub grad_norm_every: Option<u64>,
    /// Record predictions on N fixed validation samples at each epoch end (0: off) [default: 16].
    #[arg(long, value_name = "N", help_heading = "Logging")]
    pub prediction_samples: Option<usize>,
    /// Report top-k accuracy for this k [default: 3].
    #[arg(long, value_name = "K", help_heading = "Logging")]
    pub top_k: Option<usize>,
    /// Folder of the run store, or a postgres:// URL of a team store [default: .regimen].
    #[arg(long, value_name = "PATH", env = "REGIMEN_STORE", help_heading = "Logging")]
    pub store: Option<PathBuf>,
    /// Experiment name grouping runs [default: default].
    #[arg(long, value_name = "NAME", help_heading = "Logging")]
    pub experiment: Option<String>,

    // ---- Checkpoints and early stopping ----
    /// Continue a run from its newest good checkpoint: a run id (or prefix), run folder or
    /// checkpoint folder. The run's own config is used; other settings are refused.
    #[arg(long, value_name = "RUN|PATH", help_heading = "Checkpoints and early stopping")]
    #[serde(skip)]
    pub resume: Option<String>,
    /// Pause after this epoch: save a checkpoint and stop, `interrupted`, so that `--resume`
    /// continues exactly (a sweep pauses trials at its rungs this way). Allowed with --resume.
    #[arg(long, value_name = "EPOCH", help_heading = "Checkpoints and early stopping")]
    #[serde(skip)]
    pub pause_after_epoch: Option<u64>,
    /// Start a new run from pretrained weights, with a fresh optimizer: a run id or name (its best
    /// checkpoint), a run or checkpoint folder, or a .safetensors file with Regimen's or PyTorch's
    /// tensor names. Tensors whose shape differs (a head for another class count) start fresh.
    #[arg(long, value_name = "RUN|PATH", help_heading = "Transfer learning")]
    pub init_from: Option<PathBuf>,
    /// Rename --init-from's tensors before matching: REGEX=REPLACEMENT (repeatable), e.g.
    /// 'features\.(\d+)=blocks.$1.conv'.
    #[arg(long, value_name = "REGEX=TO", help_heading = "Transfer learning")]
    pub init_map: Option<Vec<String>>,
    /// Modules that do not train, comma-separated: module paths with `*` (`blocks.*`, `conv*`) or
    /// `all-but-head`. Their batch norms keep their running statistics.
    #[arg(long, value_name = "PATTERN,..", value_delimiter = ',', help_heading = "Transfer learning")]
    pub freeze: Option<Vec<String>>,
    /// Epoch from which the --freeze modules train too, at the learning rate times --backbone-lr-scale.
    #[arg(long, value_name = "EPOCH", help_heading = "Transfer learning")]
    pub unfreeze_at: Option<u64>,
    /// Learning-rate factor of the --freeze modules once --unfreeze-at lets them train [default: 0.1].
    #[arg(long, value_name = "FACTOR", help_heading = "Transfer learning")]
    pub backbone_lr_scale: Option<f64>,
    /// Metric that selects the best checkpoint and drives early stopping and plateau schedules
    /// [default: val.macro_f1, or val.loss for regression].
    #[arg(long, value_name = "KEY", help_heading = "Checkpoints and early stopping")]
    pub monitor: Option<String>,
    /// Direction of --monitor when its name does not tell: min or max.
    #[arg(long, value_name = "min|max", help_heading = "Checkpoints and early stopping")]
    pub monitor_mode: Option<String>,
    /// Smallest change that counts as progress: absolute (0.001) or relative (1%) [default: 0].
    #[arg(long, value_name = "DELTA", help_heading = "Checkpoints and early stopping")]
    pub min_delta: Option<String>,
    /// Stop early after this long without progress, with a unit: "5 epochs", "10 evals", "2000 steps".
    #[arg(long, value_name = "SPAN", help_heading = "Checkpoints and early stopping")]
    pub patience: Option<String>,
    /// Stop at once when the monitored metric is worse than this value.
    #[arg(long, value_name = "VALUE", help_heading = "Checkpoints and early stopping")]
    pub es_divergence: Option<f64>,
    /// Stop when the monitored metric has not beaten this value by the end of the grace period.
    #[arg(long, value_name = "VALUE", help_heading = "Checkpoints and early stopping")]
    pub es_baseline: Option<f64>,
    /// Grace period before patience and the baseline apply: "3 epochs", "500 steps".
    #[arg(long, value_name = "SPAN", help_heading = "Checkpoints and early stopping")]
    pub es_start_from: Option<String>,
    /// Keep the last weights as the final model instead of restoring the best checkpoint's.
    #[arg(long, help_heading = "Checkpoints and early stopping")]
    #[serde(skip)]
    pub no_restore_best: bool,
    /// Also keep the K best checkpoints (the last two and the best are always kept).
    #[arg(long, value_name = "K", help_heading = "Checkpoints and early stopping")]
    pub keep_top_k: Option<usize>,
    /// Also keep the checkpoint of every N-th epoch.
    #[arg(long, value_name = "N", help_heading = "Checkpoints and early stopping")]
    pub keep_every: Option<u64>,
    /// Also checkpoint every N steps (a checkpoint is always taken at each epoch end).
    #[arg(long, value_name = "N", help_heading = "Checkpoints and early stopping")]
    pub checkpoint_every_steps: Option<u64>,
    /// Also checkpoint when T minutes have passed since the last one.
    #[arg(long, value_name = "T", help_heading = "Checkpoints and early stopping")]
    pub checkpoint_every_minutes: Option<f64>,
    /// Run name template: {model}, {dataset}, {data_id}, any config key
    /// [default: {model}-{dataset}-{data_id}-lr{lr}-{optimizer}-bs{batch_size}].
    #[arg(long, value_name = "TEMPLATE", help_heading = "Checkpoints and early stopping")]
    pub run_name: Option<String>,
    /// Checkpoint folder name template; adds {epoch}, {step} (required), {metric}, {value}.
    #[arg(long, value_name = "TEMPLATE", help_heading = "Checkpoints and early stopping")]
    pub checkpoint_name: Option<String>,

    // ---- Execution ----
    /// Seed of initialization, shuffling, augmentation and dropout [default: 42].
    #[arg(long, value_name = "N", help_heading = "Execution")]
    pub seed: Option<u64>,
    /// Device: cpu (default), cuda[:N] or wgpu (GPU builds only).
    #[arg(long, value_name = "DEVICE", help_heading = "Execution")]
    pub device: Option<String>,
}

impl TrainArgs {
    /// For `--resume`: refuses every setting but `--store` and `--epochs` (which leaves the run
    /// training longer), since a resumed run keeps its own config; returns the store folder.
    pub fn resume_store(&self) -> anyhow::Result<PathBuf> {
        let mut flags = toml::Table::try_from(self).context("could not encode the flags")?;
        let store = flags.remove("store").and_then(|v| v.as_str().map(PathBuf::from));
        flags.remove("epochs"); // leaves the run training longer
        let mut given: Vec<String> = flags.keys().map(|k| format!("--{}", k.replace('_', "-"))).collect();
        for (set, flag) in [
            (self.config.is_some(), "--config"),
            (self.no_normalize, "--no-normalize"),
            (self.augment, "--augment"),
            (self.no_restore_best, "--no-restore-best"),
        ] {
            if set {
                given.push(flag.to_string());
            }
        }
        if !given.is_empty() {
            anyhow::bail!(
                "--resume continues a run with the config it was started with; drop {} \
                 (to change settings, start a new run with --init-from CHECKPOINT)",
                given.join(", ")
            );
        }
        Ok(store.unwrap_or_else(|| TrainConfig::default().store))
    }

    /// Lays the flags over the config file (if any) over the defaults, and validates the result.
    pub fn resolve(&self) -> anyhow::Result<TrainConfig> {
        let mut table = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("could not read the config file {}", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("the config file {} is not valid TOML", path.display()))?
            }
            None => toml::Table::new(),
        };
        let flags = toml::Table::try_from(self).context("could not encode the flags")?;
        table.extend(flags);
        if self.no_restore_best {
            table.insert("restore_best".into(), toml::Value::Boolean(false));
        }
        if self.no_normalize {
            table.insert("normalize".into(), toml::Value::Boolean(false));
        }
        if self.augment {
            let standard = Augment::standard();
            for (key, value) in [
                ("augment_flip", toml::Value::Boolean(standard.hflip)),
                ("augment_crop", toml::Value::Integer(standard.crop_padding as i64)),
                ("augment_rotate", toml::Value::Float(f64::from(standard.rotate_degrees))),
                ("augment_noise", toml::Value::Float(f64::from(standard.noise_std))),
            ] {
                table.entry(key).or_insert(value);
            }
        }
        let origin = match &self.config {
            Some(path) => format!("{} and the flags", path.display()),
            None => "the flags".to_string(),
        };
        let config: TrainConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("invalid configuration in {origin}: {}", e.message()))?;
        config.validate()?;
        Ok(config)
    }
}

/// Flags of `regimen eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Run id (or a unique prefix of it), the path of a run folder, or of a checkpoint folder.
    pub run: String,
    /// Split to evaluate: val or test. Training never reads the test split; this is where it is used.
    #[arg(long, default_value = "val", value_parser = ["val", "test"])]
    pub split: String,
    /// Weights to evaluate: best, last, a checkpoint folder or a safetensors file.
    #[arg(long, default_value = "best", value_name = "best|last|PATH")]
    pub checkpoint: String,
    /// Folder of the run store.
    #[arg(long, default_value = ".regimen", env = "REGIMEN_STORE", value_name = "PATH")]
    pub store: PathBuf,
    /// Print the evaluation as JSON.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: &[&str]) -> anyhow::Result<TrainConfig> {
        let cli = Cli::try_parse_from(std::iter::once("regimen").chain(args.iter().copied()))?;
        match cli.command {
            Some(Command::Train(args)) => args.resolve(),
            other => panic!("expected train, got {other:?}"),
        }
    }

    #[test]
    fn no_flags_gives_the_quickstart_defaults() {
        assert_eq!(resolve(&["train"]).unwrap(), TrainConfig::default());
    }

    #[test]
    fn list_and_negated_flags_parse() {
        let config = resolve(&["train", "--hidden", "64,32", "--no-normalize", "--batch-norm"]).unwrap();
        assert_eq!(config.hidden, Some(vec![64, 32]));
        assert!(!config.normalize);
        assert!(config.batch_norm);
    }

    #[test]
    fn flags_override_the_config_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, "lr = 0.01\nepochs = 3\nmodel = \"mlp\"\n").unwrap();
        let config = resolve(&["train", "--config", path.to_str().unwrap(), "--lr", "0.5"]).unwrap();
        assert_eq!(config.lr, 0.5);
        assert_eq!(config.epochs, 3);
        assert_eq!(config.model, "mlp");
        assert_eq!(config.batch_size, TrainConfig::default().batch_size);
    }

    #[test]
    fn augment_preset_fills_only_unset_augmentations() {
        let config = resolve(&["train", "--augment", "--augment-rotate", "5"]).unwrap();
        assert!(config.augment_flip);
        assert_eq!(config.augment_crop, 2);
        assert_eq!(config.augment_rotate, 5.0);
        let config = resolve(&["train", "--augment"]).unwrap();
        assert_eq!(config.augment(), Augment::standard());
    }

    #[test]
    fn a_typo_in_the_config_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, "learning_rate = 0.01\n").unwrap();
        let error = resolve(&["train", "--config", path.to_str().unwrap()]).unwrap_err();
        assert!(format!("{error:#}").contains("learning_rate"), "{error:#}");
    }

    #[test]
    fn resume_refuses_settings_other_than_the_store() {
        let parse = |args: &[&str]| match Cli::try_parse_from(std::iter::once("regimen").chain(args.iter().copied()))
            .unwrap()
            .command
        {
            Some(Command::Train(args)) => args.resume_store(),
            other => panic!("expected train, got {other:?}"),
        };
        assert_eq!(parse(&["train", "--resume", "abc", "--store", "/tmp/s"]).unwrap(), PathBuf::from("/tmp/s"));
        let error = parse(&["train", "--resume", "abc", "--lr", "0.1", "--augment"]).unwrap_err().to_string();
        assert!(error.contains("--lr") && error.contains("--augment") && error.contains("--init-from"), "{error}");
    }

    #[test]
    fn early_stopping_flags_reach_the_config() {
        let config = resolve(&[
            "train",
            "--patience",
            "3 epochs",
            "--monitor",
            "val.acc",
            "--min-delta",
            "1%",
            "--no-restore-best",
        ])
        .unwrap();
        assert_eq!(config.patience.as_deref(), Some("3 epochs"));
        assert_eq!(config.monitor.as_deref(), Some("val.acc"));
        assert!(!config.restore_best);
        let error = resolve(&["train", "--patience", "3"]).unwrap_err();
        assert!(format!("{error:#}").contains("5 epochs"), "{error:#}");
    }

    #[test]
    fn invalid_values_echo_what_was_given() {
        let error = resolve(&["train", "--epochs", "0"]).unwrap_err();
        assert!(format!("{error:#}").contains("`epochs` is 0"), "{error:#}");
    }
}
