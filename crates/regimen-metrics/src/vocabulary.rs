//! The metric vocabulary: what a logged key means, which way it improves, and which value of a
//! series is its best.
//!
//! Every part of Regimen that judges a metric reads this module and nothing else: the monitor
//! (early stopping, the `best` checkpoint, reduce-on-plateau), the run store's per-metric "best",
//! the `regimen runs` query language, `regimen compare`, `regimen show`, export and diagnosis. It
//! used to be re-implemented in each, and the copies disagreed at the edges (`sys.acc`,
//! `top0_acc`, names with no known direction).
//!
//! A key is `<split>.<name>`: `val.macro_f1`, `train.loss`, `train_eval.top5_acc`, `test.r2`. Only
//! keys of a known split and a metric name this crate produces have an inherent [`Mode`]; anything
//! else (`lr`, `sys.samples_per_sec`, `grad_norm.conv1`, `val.perplexity`) has none, unless a run
//! records one for its monitored key ([`Monitored`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Lower is better: losses and errors.
    Min,
    /// Higher is better: accuracies, F1, R².
    Max,
}

impl Mode {
    /// The direction of a metric name (the part after the split): `loss`, `mse` and `mae` go
    /// down; `acc`, `macro_f1`, `r2` and `top{k}_acc` (`k ≥ 1`, no leading zero) go up; any other
    /// name has no direction.
    pub fn of_name(name: &str) -> Option<Mode> {
        match name {
            "loss" | "mse" | "mae" => Some(Mode::Min),
            "acc" | "macro_f1" | "r2" => Some(Mode::Max),
            _ => {
                let k = name.strip_prefix("top")?.strip_suffix("_acc")?;
                let valid = !k.is_empty() && !k.starts_with('0') && k.bytes().all(|b| b.is_ascii_digit());
                valid.then_some(Mode::Max)
            }
        }
    }

    /// The direction of a logged key such as `val.acc`: the key must parse as a [`MetricKey`]
    /// (a known split, then a name) whose name has a direction.
    pub fn of_key(key: &str) -> Option<Mode> {
        MetricKey::parse(key).and_then(|key| Mode::of_name(key.name))
    }

    /// Whether `candidate` is strictly better than `incumbent`. A non-finite candidate is never
    /// better; a finite candidate beats a non-finite incumbent.
    pub fn is_better(self, candidate: f64, incumbent: f64) -> bool {
        if !candidate.is_finite() {
            return false;
        }
        if !incumbent.is_finite() {
            return true;
        }
        match self {
            Mode::Min => candidate < incumbent,
            Mode::Max => candidate > incumbent,
        }
    }

    /// The lowercase name, as written on the command line and in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Min => "min",
            Mode::Max => "max",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode that is neither `min` nor `max`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid mode `{0}`: expected `min` or `max`")]
pub struct ParseModeError(pub String);

impl FromStr for Mode {
    type Err = ParseModeError;

    fn from_str(text: &str) -> Result<Mode, ParseModeError> {
        match text.trim() {
            "min" => Ok(Mode::Min),
            "max" => Ok(Mode::Max),
            other => Err(ParseModeError(other.to_string())),
        }
    }
}

/// The names with a direction, in words, for help texts (kept beside [`Mode::of_name`]).
pub const DIRECTIONS_HELP: &str = "loss, mse and mae go down; acc, top{k}_acc, macro_f1 and r2 go up";

/// The splits whose evaluations are logged as `<split>.<name>`.
pub const SPLITS: [&str; 4] = ["train", "val", "train_eval", "test"];

/// Whether `key` measures the machine rather than the model: timings, throughput and memory
/// (`sys.*`) and inference latency (`latency.*`). No rerun repeats these bit for bit, so
/// reproducibility checks leave them out; every other metric is a function of seed, data and
/// config.
pub fn measures_the_machine(key: &str) -> bool {
    key.starts_with("sys.") || key.starts_with("latency.")
}

/// A logged metric key split into its parts: `val.macro_f1` is split `val`, name `macro_f1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricKey<'a> {
    /// One of [`SPLITS`].
    pub split: &'a str,
    /// The metric name after the split.
    pub name: &'a str,
}

impl<'a> MetricKey<'a> {
    /// Splits `key` at its first dot; `None` unless the part before it is one of [`SPLITS`] and
    /// the part after it is non-empty.
    pub fn parse(key: &'a str) -> Option<MetricKey<'a>> {
        let (split, name) = key.split_once('.')?;
        (SPLITS.contains(&split) && !name.is_empty()).then_some(MetricKey { split, name })
    }

    /// The name's inherent direction (see [`Mode::of_name`]).
    pub fn mode(self) -> Option<Mode> {
        Mode::of_name(self.name)
    }
}

/// The metric a run is judged by, and its direction, as the run resolved them: what selected its
/// `best` checkpoint, drove early stopping and reduce-on-plateau. Readers of a run use this rather
/// than guessing the trainer's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitored {
    /// The logged key, such as `val.macro_f1`.
    pub metric: String,
    /// Which way it improves.
    pub mode: Mode,
}

impl Monitored {
    /// The mode of `key` for a run that monitors `self`: the recorded mode for the monitored key,
    /// the inherent one ([`Mode::of_key`]) for any other.
    pub fn mode_of(monitored: Option<&Monitored>, key: &str) -> Option<Mode> {
        match monitored {
            Some(m) if m.metric == key => Some(m.mode),
            _ => Mode::of_key(key),
        }
    }
}

/// The index and value of the best of `values` in `mode`.
///
/// The rules, the same everywhere a "best" is shown: non-finite values (NaN, ±∞) are never best;
/// among the rest the strictly better wins, so on ties the earliest value wins; `None` when no
/// value is finite.
pub fn best<I: IntoIterator<Item = f64>>(values: I, mode: Mode) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for (index, value) in values.into_iter().enumerate() {
        if value.is_finite() && best.is_none_or(|(_, incumbent)| mode.is_better(value, incumbent)) {
            best = Some((index, value));
        }
    }
    best
}

/// What a run predicts, which fixes the trivial baseline its metrics are judged against.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskInfo {
    /// `classes` classes; `majority_share` is the train split's share of its most frequent class
    /// when known (always answering it scores that accuracy), otherwise chance `1/classes` is the
    /// baseline.
    Classification {
        /// Number of classes.
        classes: usize,
        /// Share of the largest class in the train split, in `[0, 1]`.
        majority_share: Option<f64>,
    },
    /// One real value per sample; the trivial baseline predicts the train mean (`R² = 0`).
    Regression {
        /// Variance of the train targets: the mean squared error of predicting their mean.
        target_variance: Option<f64>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_a_direction_and_keys_need_a_known_split() {
        assert_eq!(Mode::of_key("val.acc"), Some(Mode::Max));
        assert_eq!(Mode::of_key("train.loss"), Some(Mode::Min));
        assert_eq!(Mode::of_key("train_eval.top3_acc"), Some(Mode::Max));
        assert_eq!(Mode::of_key("test.r2"), Some(Mode::Max));
        assert_eq!(Mode::of_key("val.mse"), Some(Mode::Min));
        assert_eq!(Mode::of_key("val.mae"), Some(Mode::Min));
        for none in [
            "lr",
            "sys.acc",
            "sys.samples_per_sec",
            "val.perplexity",
            "val.top0_acc",
            "val.top01_acc",
            "val.top_acc",
            "val.topx_acc",
            "val.acc.extra",
            "acc",
            "val.",
            "grad_norm.conv1",
        ] {
            assert_eq!(Mode::of_key(none), None, "{none}");
        }
        assert_eq!(MetricKey::parse("train_eval.loss"), Some(MetricKey { split: "train_eval", name: "loss" }));
    }

    #[test]
    fn modes_round_trip_through_their_names() {
        for mode in [Mode::Min, Mode::Max] {
            assert_eq!(mode.to_string().parse::<Mode>(), Ok(mode));
        }
        assert!("up".parse::<Mode>().unwrap_err().to_string().contains("`min` or `max`"));
    }

    #[test]
    fn better_is_strict_and_never_picks_a_non_finite_value() {
        assert!(Mode::Min.is_better(0.5, 1.0));
        assert!(!Mode::Min.is_better(1.0, 1.0));
        assert!(Mode::Max.is_better(0.9, 0.8));
        assert!(!Mode::Max.is_better(f64::NAN, 0.1));
        assert!(!Mode::Max.is_better(f64::INFINITY, 0.1));
        assert!(Mode::Min.is_better(3.0, f64::NAN));
    }

    #[test]
    fn best_skips_non_finite_values_and_keeps_the_earliest_tie() {
        assert_eq!(best([0.9, 0.4, 0.5, 0.4], Mode::Min), Some((1, 0.4)));
        assert_eq!(best([0.6, 0.8, 0.8, f64::INFINITY], Mode::Max), Some((1, 0.8)));
        assert_eq!(best([f64::NAN, f64::NEG_INFINITY, 2.0], Mode::Min), Some((2, 2.0)));
        assert_eq!(best([f64::NAN], Mode::Max), None);
        assert_eq!(best([], Mode::Max), None);
    }

    #[test]
    fn a_recorded_monitor_gives_its_key_a_mode() {
        let monitored = Monitored { metric: "val.perplexity".into(), mode: Mode::Min };
        assert_eq!(Monitored::mode_of(Some(&monitored), "val.perplexity"), Some(Mode::Min));
        assert_eq!(Monitored::mode_of(Some(&monitored), "val.acc"), Some(Mode::Max));
        let odd = Monitored { metric: "val.loss".into(), mode: Mode::Max };
        assert_eq!(Monitored::mode_of(Some(&odd), "val.loss"), Some(Mode::Max));
        assert_eq!(Monitored::mode_of(None, "val.perplexity"), None);
    }
}
