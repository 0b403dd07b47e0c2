//! What to watch and what counts as progress: [`MonitorSpec`], [`MinDelta`], [`Span`]. The
//! [`Mode`] of a metric comes from the one metric vocabulary in `regimen-metrics`.

use std::fmt;
use std::str::FromStr;

use regimen_metrics::Mode;
use serde::{Deserialize, Serialize};

use crate::MonitorError;

/// The smallest change that counts as progress: absolute (`0.001`) or relative to the reference
/// value (`1%`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MinDelta {
    /// An absolute amount in the metric's units.
    Absolute(f64),
    /// A fraction of the magnitude of the reference value (`0.01` for `1%`).
    Relative(f64),
}

impl Default for MinDelta {
    fn default() -> Self {
        MinDelta::Absolute(0.0)
    }
}

impl MinDelta {
    /// The margin a value must beat `reference` by.
    pub fn margin(self, reference: f64) -> f64 {
        match self {
            MinDelta::Absolute(delta) => delta,
            MinDelta::Relative(fraction) => fraction * reference.abs(),
        }
    }
}

impl fmt::Display for MinDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MinDelta::Absolute(delta) => write!(f, "{delta}"),
            MinDelta::Relative(fraction) => write!(f, "{}%", fraction * 100.0),
        }
    }
}

impl FromStr for MinDelta {
    type Err = MonitorError;

    fn from_str(text: &str) -> Result<MinDelta, MonitorError> {
        let error = || MonitorError::Parse {
            what: "min_delta",
            text: text.to_string(),
            expected: "a non-negative number (`0.001`) or a percentage of the best value (`1%`)",
        };
        let trimmed = text.trim();
        let (number, relative) = match trimmed.strip_suffix('%') {
            Some(number) => (number.trim(), true),
            None => (trimmed, false),
        };
        let value: f64 = number.parse().map_err(|_| error())?;
        if !(value.is_finite() && value >= 0.0) {
            return Err(error());
        }
        Ok(if relative { MinDelta::Relative(value / 100.0) } else { MinDelta::Absolute(value) })
    }
}

/// The unit of a [`Span`]: patience and grace periods are counted in one of these, always named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Validations (at epoch ends and every `val_every_steps`).
    Evaluations,
    /// Epochs, counted in optimizer steps (so mid-epoch validations count fractionally).
    Epochs,
    /// Optimizer steps.
    Steps,
}

/// An amount with its unit, such as `5 epochs`, `10 evaluations` or `2000 steps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    /// How many.
    pub amount: u64,
    /// Of what.
    pub unit: Unit,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::Evaluations => "evaluations",
            Unit::Epochs => "epochs",
            Unit::Steps => "steps",
        };
        write!(f, "{} {unit}", self.amount)
    }
}

impl FromStr for Span {
    type Err = MonitorError;

    /// Parses `5 epochs`, `5epochs`, `10 evals`, `2000 steps` (singular forms too). A bare number
    /// is an error: the unit is what people get wrong, so it is always written.
    fn from_str(text: &str) -> Result<Span, MonitorError> {
        let error = || MonitorError::Parse {
            what: "span",
            text: text.to_string(),
            expected: "a count with its unit, such as `5 epochs`, `10 evaluations` or `2000 steps`",
        };
        let trimmed = text.trim();
        let digits = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
        let amount: u64 = trimmed[..digits].parse().map_err(|_| error())?;
        let unit = match trimmed[digits..].trim() {
            "epoch" | "epochs" => Unit::Epochs,
            "eval" | "evals" | "evaluation" | "evaluations" => Unit::Evaluations,
            "step" | "steps" => Unit::Steps,
            _ => return Err(error()),
        };
        Ok(Span { amount, unit })
    }
}

/// The one description of "the metric that matters": which key, which direction, and what
/// counts as real progress. Early stopping, the `best` checkpoint and reduce-on-plateau all read
/// the same spec, so they never disagree about which epoch was best.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorSpec {
    /// The logged key, such as `val.macro_f1` or `val.loss`.
    pub metric: String,
    /// Which way it improves.
    pub mode: Mode,
    /// The smallest change that counts as progress for patience.
    pub min_delta: MinDelta,
}

impl MonitorSpec {
    /// A spec for `metric`, inferring the mode from the name when `mode` is `None`.
    ///
    /// Fails when the mode is not given and cannot be inferred (an unknown metric name).
    pub fn new(metric: &str, mode: Option<Mode>, min_delta: MinDelta) -> Result<MonitorSpec, MonitorError> {
        let mode = match mode.or_else(|| Mode::of_key(metric)) {
            Some(mode) => mode,
            None => return Err(MonitorError::UnknownMode { metric: metric.to_string() }),
        };
        Ok(MonitorSpec { metric: metric.to_string(), mode, min_delta })
    }

    /// Checks that the monitored key is one the run logs; the error lists those it does.
    pub fn check_available<'a>(&self, available: impl IntoIterator<Item = &'a str>) -> Result<(), MonitorError> {
        let mut keys: Vec<&str> = available.into_iter().collect();
        if keys.contains(&self.metric.as_str()) {
            return Ok(());
        }
        keys.sort_unstable();
        keys.dedup();
        Err(MonitorError::UnknownMetric { metric: self.metric.clone(), available: keys.join(", ") })
    }

    /// Whether `value` is strictly better than `best` (selects the `best` checkpoint).
    pub fn is_better(&self, value: f64, best: f64) -> bool {
        self.mode.is_better(value, best)
    }

    /// Whether `value` improves on `reference` by more than `min_delta` (resets patience).
    pub fn is_significant(&self, value: f64, reference: f64) -> bool {
        let margin = self.min_delta.margin(reference);
        value.is_finite()
            && match self.mode {
                Mode::Min => value < reference - margin,
                Mode::Max => value > reference + margin,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_without_an_obvious_direction_needs_an_explicit_mode() {
        let error = MonitorSpec::new("val.perplexity", None, MinDelta::default()).unwrap_err();
        assert!(error.to_string().contains("--monitor-mode"), "{error}");
        let spec = MonitorSpec::new("val.perplexity", Some(Mode::Min), MinDelta::default()).unwrap();
        assert_eq!(spec.mode, Mode::Min);
    }

    #[test]
    fn an_unknown_metric_lists_the_available_ones() {
        let spec = MonitorSpec::new("val.accuracy", Some(Mode::Max), MinDelta::default()).unwrap();
        let error = spec.check_available(["val.loss", "val.acc", "train.loss"]).unwrap_err().to_string();
        assert!(error.contains("val.accuracy") && error.contains("train.loss, val.acc, val.loss"), "{error}");
        assert!(spec.check_available(["val.accuracy"]).is_ok());
    }

    #[test]
    fn spans_always_name_their_unit() {
        assert_eq!("5 epochs".parse::<Span>().unwrap(), Span { amount: 5, unit: Unit::Epochs });
        assert_eq!("10evals".parse::<Span>().unwrap(), Span { amount: 10, unit: Unit::Evaluations });
        assert_eq!(" 2000 steps ".parse::<Span>().unwrap(), Span { amount: 2000, unit: Unit::Steps });
        assert_eq!("1 epoch".parse::<Span>().unwrap().to_string(), "1 epochs");
        for bad in ["5", "epochs", "-1 epochs", "5 days", "1.5 epochs", ""] {
            let error = bad.parse::<Span>().unwrap_err().to_string();
            assert!(error.contains("5 epochs"), "{bad}: {error}");
        }
    }

    #[test]
    fn min_delta_is_absolute_or_a_percentage() {
        assert_eq!("0.001".parse::<MinDelta>().unwrap(), MinDelta::Absolute(0.001));
        assert_eq!("1%".parse::<MinDelta>().unwrap(), MinDelta::Relative(0.01));
        assert!("-0.1".parse::<MinDelta>().is_err());
        assert!("abc%".parse::<MinDelta>().is_err());
        assert_eq!(MinDelta::Relative(0.1).margin(-2.0), 0.2);
    }

    #[test]
    fn better_is_strict_and_significant_needs_the_margin() {
        let loss = MonitorSpec::new("val.loss", None, MinDelta::Absolute(0.1)).unwrap();
        assert!(loss.is_better(0.99, 1.0));
        assert!(!loss.is_better(1.0, 1.0));
        assert!(!loss.is_better(f64::NAN, 1.0));
        assert!(!loss.is_significant(0.95, 1.0));
        assert!(loss.is_significant(0.85, 1.0));
        let acc = MonitorSpec::new("val.acc", None, MinDelta::Relative(0.01)).unwrap();
        assert!(acc.is_significant(0.81, 0.8) && !acc.is_significant(0.805, 0.8));
    }
}
