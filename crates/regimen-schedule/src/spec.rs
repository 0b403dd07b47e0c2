//! The configuration of a schedule, as plain data.
//!
//! A spec says which schedule and with which shape parameters, but not the base learning rate or
//! the run length: those come from the run and are joined to the spec in [`Scheduler::new`], which
//! is also where every range is checked (some checks, such as the warm-up fitting in the run, need
//! both). Optional fields default to PyTorch's defaults when deserializing and parsing.
//!
//! [`Scheduler::new`]: crate::Scheduler::new

use std::fmt;

use serde::{Deserialize, Serialize};

/// A learning-rate schedule, before it is joined to a base learning rate and a run length.
///
/// Serialized with a `kind` tag: `{"kind": "cosine", "warmup_steps": 500, "min_lr": 0.0}`. Its
/// `Display` writes the CLI syntax that its `FromStr` reads, with every field spelled out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduleSpec {
    /// The base learning rate at every step.
    Constant,
    /// PyTorch's `StepLR`: the base rate times `gamma` to the power `epoch / step_size` (integer
    /// division), where `epoch = step / steps_per_epoch`.
    Step {
        /// Epochs between two decays; at least 1.
        step_size: u64,
        /// Multiplicative decay, in `(0, 1]`; defaults to 0.1.
        #[serde(default = "defaults::gamma")]
        gamma: f64,
    },
    /// Linear warm-up then cosine annealing.
    ///
    /// Step `s < warmup_steps` gets `base_lr · (s + 1) / (warmup_steps + 1)`, rising from near 0;
    /// step `warmup_steps` gets `base_lr`, and the rate then follows a half cosine down to `min_lr`
    /// at the last step (`total_steps − 1`) and stays there. With no warm-up this is PyTorch's
    /// `CosineAnnealingLR` with `T_max = total_steps − 1` and `eta_min = min_lr`.
    Cosine {
        /// Steps of linear warm-up, fewer than the total; defaults to 0.
        #[serde(default)]
        warmup_steps: u64,
        /// Rate at the last step, in `[0, base_lr]`; defaults to 0.
        #[serde(default)]
        min_lr: f64,
    },
    /// PyTorch's `OneCycleLR` with cosine annealing, two phases and no momentum cycling: from
    /// `max_lr / div_factor` up to `max_lr` over the first `pct_start` of the run, then down to
    /// `max_lr / div_factor / final_div_factor` at the last step.
    OneCycle {
        /// The peak rate; `None` (the default) peaks at the scheduler's base learning rate, so
        /// that `onecycle` on the command line works with the run's `lr`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_lr: Option<f64>,
        /// Fraction of the steps spent rising, in `(0, 1)`; defaults to 0.3.
        #[serde(default = "defaults::pct_start")]
        pct_start: f64,
        /// The starting rate is `max_lr / div_factor`; defaults to 25.
        #[serde(default = "defaults::div_factor")]
        div_factor: f64,
        /// The final rate is the starting rate over `final_div_factor`; defaults to 10⁴.
        #[serde(default = "defaults::final_div_factor")]
        final_div_factor: f64,
    },
    /// PyTorch's `ReduceLROnPlateau`, judged by the run's monitor: multiply the rate by `factor`
    /// after more than `patience` validations without progress, then ignore `cooldown`
    /// validations, never going below `min_lr`.
    ///
    /// What counts as progress is not decided here: the run's one monitor spec (its metric, its
    /// direction and its `min_delta`) judges every validation, mid-epoch ones included, and the
    /// scheduler is told the answer ([`crate::Scheduler::on_validation`]). So early stopping, the
    /// `best` checkpoint and the plateau never disagree about whether the run improved.
    Plateau {
        /// Multiplicative decay, in `(0, 1)`; defaults to 0.1.
        #[serde(default = "defaults::factor")]
        factor: f64,
        /// Validations without progress tolerated before a reduction; defaults to 10.
        #[serde(default = "defaults::patience")]
        patience: u32,
        /// Validations ignored after a reduction; defaults to 0.
        #[serde(default)]
        cooldown: u32,
        /// Floor of the rate, in `[0, base_lr]`; defaults to 0.
        #[serde(default)]
        min_lr: f64,
    },
}

impl ScheduleSpec {
    /// The name of the schedule kind, as in the CLI syntax (`"onecycle"`, not the serde tag).
    pub fn kind_name(&self) -> &'static str {
        match self {
            ScheduleSpec::Constant => "constant",
            ScheduleSpec::Step { .. } => "step",
            ScheduleSpec::Cosine { .. } => "cosine",
            ScheduleSpec::OneCycle { .. } => "onecycle",
            ScheduleSpec::Plateau { .. } => "plateau",
        }
    }
}

impl fmt::Display for ScheduleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleSpec::Constant => write!(f, "constant"),
            ScheduleSpec::Step { step_size, gamma } => write!(f, "step:{step_size}:{gamma}"),
            ScheduleSpec::Cosine { warmup_steps, min_lr } => {
                write!(f, "cosine:warmup={warmup_steps},min_lr={min_lr}")
            }
            ScheduleSpec::OneCycle { max_lr, pct_start, div_factor, final_div_factor } => {
                write!(f, "onecycle:")?;
                if let Some(max_lr) = max_lr {
                    write!(f, "max_lr={max_lr},")?;
                }
                write!(f, "pct_start={pct_start},div_factor={div_factor},final_div_factor={final_div_factor}")
            }
            ScheduleSpec::Plateau { factor, patience, cooldown, min_lr } => {
                write!(f, "plateau:factor={factor},patience={patience},cooldown={cooldown},min_lr={min_lr}")
            }
        }
    }
}

/// PyTorch's defaults, shared by serde and the CLI parser.
pub(crate) mod defaults {
    pub(crate) fn gamma() -> f64 {
        0.1
    }
    pub(crate) fn pct_start() -> f64 {
        0.3
    }
    pub(crate) fn div_factor() -> f64 {
        25.0
    }
    pub(crate) fn final_div_factor() -> f64 {
        1e4
    }
    pub(crate) fn factor() -> f64 {
        0.1
    }
    pub(crate) fn patience() -> u32 {
        10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_uses_a_kind_tag_and_pytorch_defaults() {
        let spec: ScheduleSpec = serde_json::from_str(r#"{"kind": "one_cycle"}"#).unwrap();
        let expected = ScheduleSpec::OneCycle { max_lr: None, pct_start: 0.3, div_factor: 25.0, final_div_factor: 1e4 };
        assert_eq!(spec, expected);
        let spec: ScheduleSpec = serde_json::from_str(r#"{"kind": "plateau", "cooldown": 2}"#).unwrap();
        let expected = ScheduleSpec::Plateau { factor: 0.1, patience: 10, cooldown: 2, min_lr: 0.0 };
        assert_eq!(spec, expected);
        let json = serde_json::to_string(&ScheduleSpec::Step { step_size: 3, gamma: 0.5 }).unwrap();
        assert_eq!(json, r#"{"kind":"step","step_size":3,"gamma":0.5}"#);
        assert!(serde_json::from_str::<ScheduleSpec>(r#"{"kind": "step"}"#).is_err(), "step_size is required");
    }
}
