//! A schedule joined to a run: validation once, then a pure rate per step.
//!
//! Four of the five schedules are closed-form functions of the step. Reduce-on-plateau is the only
//! one with state, and its state is kept small and exact: the number of reductions so far (the rate
//! is recomputed from it, not carried as a float that drifts) and two counters. Whether a
//! validation made progress is the run monitor's call, not the scheduler's. [`Scheduler::state`] and [`Scheduler::restore`] move that state through a checkpoint.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::{ScheduleError, ScheduleSpec};

/// A validated schedule for one run.
///
/// The training loop drives it as follows:
/// - [`new`](Self::new) once, when the run starts, with the run's base rate and length; then
///   [`restore`](Self::restore) when the run resumes from a checkpoint;
/// - [`lr`](Self::lr) before every optimizer step, with the 0-based global step (counting across
///   epochs), handing the result to the optimizer; it has no side effects, so it may be called
///   any number of times, for any step;
/// - [`on_validation`](Self::on_validation) after every validation the run's monitor judged, with
///   its verdict; only [`ScheduleSpec::Plateau`] reacts, and the new rate applies from the next
///   call to `lr`;
/// - [`state`](Self::state) whenever a checkpoint is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduler {
    spec: ScheduleSpec,
    base_lr: f64,
    total_steps: u64,
    steps_per_epoch: u64,
    state: SchedulerState,
}

/// The mutable part of a [`Scheduler`], to save in a checkpoint and [`restore`](Scheduler::restore)
/// on resume, so that the resumed run gets exactly the rates of an uninterrupted one.
///
/// Only reduce-on-plateau changes it; the other schedules always have the default state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// Times the rate was multiplied by the plateau factor.
    reductions: u32,
    /// Validations since the last progress (reset by a reduction and during cool-down).
    bad_evaluations: u32,
    /// Validations still to ignore after the last reduction.
    cooldown_remaining: u32,
}

fn invalid(name: &'static str, expected: &'static str, value: impl ToString) -> ScheduleError {
    ScheduleError::InvalidArgument { name, expected, value: value.to_string() }
}

/// `Ok` when `value` is finite and strictly positive.
fn positive(name: &'static str, value: f64) -> Result<(), ScheduleError> {
    if value.is_finite() && value > 0.0 { Ok(()) } else { Err(invalid(name, "positive and finite", value)) }
}

/// `Ok` when `value` lies in the open interval `(0, 1)`.
fn open_unit(name: &'static str, value: f64) -> Result<(), ScheduleError> {
    if value > 0.0 && value < 1.0 { Ok(()) } else { Err(invalid(name, "in (0, 1)", value)) }
}

/// `Ok` when `value` lies in `[0, base_lr]`.
fn floor_lr(name: &'static str, value: f64, base_lr: f64) -> Result<(), ScheduleError> {
    if (0.0..=base_lr).contains(&value) {
        Ok(())
    } else {
        Err(ScheduleError::InvalidArgument {
            name,
            expected: "in [0, base_lr]",
            value: format!("{value} with base_lr {base_lr}"),
        })
    }
}

/// Cosine interpolation from `start` (at `pct = 0`) to `end` (at `pct = 1`), as PyTorch writes it.
fn anneal_cos(start: f64, end: f64, pct: f64) -> f64 {
    end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0)
}

impl Scheduler {
    /// Joins `spec` to a run of `total_steps` optimizer steps, `steps_per_epoch` of them per epoch,
    /// with base learning rate `base_lr`.
    ///
    /// `base_lr` is the rate of the constant schedule, the start of step decay, the peak of the
    /// cosine schedule and the start of reduce-on-plateau; for one-cycle it is the peak unless the
    /// spec sets `max_lr`.
    ///
    /// # Errors
    /// [`ScheduleError::InvalidArgument`], naming the argument and echoing its value, when:
    /// `base_lr` is not positive and finite; `total_steps` or `steps_per_epoch` is 0; step's
    /// `step_size` is 0 or `gamma` is outside `(0, 1]`; cosine's `warmup_steps` is not below
    /// `total_steps` or `min_lr` is outside `[0, base_lr]`; one-cycle's `max_lr`, `div_factor` or
    /// `final_div_factor` is not positive and finite, `pct_start` is outside `(0, 1)`, or
    /// `pct_start × total_steps ≤ 1` (the rising phase would have no length); plateau's `factor` is
    /// outside `(0, 1)` or `min_lr` outside `[0, base_lr]`.
    pub fn new(
        spec: ScheduleSpec,
        base_lr: f64,
        total_steps: u64,
        steps_per_epoch: u64,
    ) -> Result<Self, ScheduleError> {
        positive("base_lr", base_lr)?;
        if total_steps == 0 {
            return Err(invalid("total_steps", "at least 1", total_steps));
        }
        if steps_per_epoch == 0 {
            return Err(invalid("steps_per_epoch", "at least 1", steps_per_epoch));
        }
        match spec {
            ScheduleSpec::Constant => {}
            ScheduleSpec::Step { step_size, gamma } => {
                if step_size == 0 {
                    return Err(invalid("step step_size", "at least 1 epoch", step_size));
                }
                if !(gamma > 0.0 && gamma <= 1.0) {
                    return Err(invalid("step gamma", "in (0, 1]", gamma));
                }
            }
            ScheduleSpec::Cosine { warmup_steps, min_lr } => {
                if warmup_steps >= total_steps {
                    return Err(ScheduleError::InvalidArgument {
                        name: "cosine warmup_steps",
                        expected: "below total_steps, leaving at least one step to anneal",
                        value: format!("{warmup_steps} with total_steps {total_steps}"),
                    });
                }
                floor_lr("cosine min_lr", min_lr, base_lr)?;
            }
            ScheduleSpec::OneCycle { max_lr, pct_start, div_factor, final_div_factor } => {
                if let Some(max_lr) = max_lr {
                    positive("onecycle max_lr", max_lr)?;
                }
                open_unit("onecycle pct_start", pct_start)?;
                positive("onecycle div_factor", div_factor)?;
                positive("onecycle final_div_factor", final_div_factor)?;
                if pct_start * total_steps as f64 <= 1.0 {
                    return Err(ScheduleError::InvalidArgument {
                        name: "onecycle pct_start × total_steps",
                        expected: "above 1, so that the rising phase spans at least one step",
                        value: format!("{pct_start} × {total_steps}"),
                    });
                }
            }
            ScheduleSpec::Plateau { factor, min_lr, .. } => {
                open_unit("plateau factor", factor)?;
                floor_lr("plateau min_lr", min_lr, base_lr)?;
            }
        }
        Ok(Self { spec, base_lr, total_steps, steps_per_epoch, state: SchedulerState::default() })
    }

    /// The spec this scheduler was built from.
    pub fn spec(&self) -> &ScheduleSpec {
        &self.spec
    }

    /// The base learning rate this scheduler was built with.
    pub fn base_lr(&self) -> f64 {
        self.base_lr
    }

    /// The learning rate for global optimizer step `step` (0-based).
    ///
    /// A pure function of `step` and, for reduce-on-plateau, of the validations seen so far. Steps
    /// at or past `total_steps` keep the final rate of the cosine and one-cycle schedules (PyTorch's
    /// `OneCycleLR` raises there instead); step decay keeps decaying.
    pub fn lr(&self, step: u64) -> f64 {
        let base = self.base_lr;
        let last = self.total_steps - 1;
        match self.spec {
            ScheduleSpec::Constant => base,
            ScheduleSpec::Step { step_size, gamma } => {
                let decays = step / self.steps_per_epoch / step_size;
                base * gamma.powi(i32::try_from(decays).unwrap_or(i32::MAX))
            }
            ScheduleSpec::Cosine { warmup_steps, min_lr } => {
                if step < warmup_steps {
                    return base * (step + 1) as f64 / (warmup_steps + 1) as f64;
                }
                let span = last - warmup_steps;
                let pct = if span == 0 { 1.0 } else { ((step - warmup_steps) as f64 / span as f64).min(1.0) };
                anneal_cos(base, min_lr, pct)
            }
            ScheduleSpec::OneCycle { max_lr, pct_start, div_factor, final_div_factor } => {
                let max_lr = max_lr.unwrap_or(base);
                let initial_lr = max_lr / div_factor;
                let final_lr = initial_lr / final_div_factor;
                // PyTorch's phase boundary, a float: the step at which the rate peaks.
                let peak = pct_start * self.total_steps as f64 - 1.0;
                let step = step.min(last) as f64;
                if step <= peak {
                    anneal_cos(initial_lr, max_lr, step / peak)
                } else {
                    anneal_cos(max_lr, final_lr, (step - peak) / (last as f64 - peak))
                }
            }
            ScheduleSpec::Plateau { factor, min_lr, .. } => plateau_lr(base, factor, min_lr, self.state.reductions),
        }
    }

    /// Tells the scheduler that a validation happened and whether the run's monitor judged it
    /// progress (an improvement beyond its `min_delta`); returns whether the rate was just reduced.
    ///
    /// Only [`ScheduleSpec::Plateau`] reacts; the other schedules return `false`. As in PyTorch,
    /// more than `patience` validations in a row without progress reduce the rate (to no less
    /// than `min_lr`), and the `cooldown` validations after a reduction do not count as bad. A
    /// validation that would reduce a rate already at `min_lr` still starts a cool-down but
    /// returns `false`.
    pub fn on_validation(&mut self, progressed: bool) -> bool {
        let ScheduleSpec::Plateau { factor, patience, cooldown, min_lr } = self.spec else {
            return false;
        };
        let state = &mut self.state;
        if progressed {
            state.bad_evaluations = 0;
        } else {
            state.bad_evaluations = state.bad_evaluations.saturating_add(1);
        }
        if state.cooldown_remaining > 0 {
            state.cooldown_remaining -= 1;
            state.bad_evaluations = 0;
        }
        if state.bad_evaluations <= patience {
            return false;
        }
        state.cooldown_remaining = cooldown;
        state.bad_evaluations = 0;
        let current = plateau_lr(self.base_lr, factor, min_lr, state.reductions);
        let reduced = plateau_lr(self.base_lr, factor, min_lr, state.reductions + 1) < current;
        if reduced {
            state.reductions += 1;
        }
        reduced
    }

    /// The state to save in a checkpoint.
    pub fn state(&self) -> SchedulerState {
        self.state.clone()
    }

    /// Continues from a state saved by [`state`](Self::state) on a scheduler built with the same
    /// arguments.
    ///
    /// # Errors
    /// [`ScheduleError::InvalidState`] when the state cannot come from this scheduler: plateau
    /// state given to another schedule, or more reductions than it takes to reach `min_lr`. The
    /// scheduler is then unchanged.
    pub fn restore(&mut self, state: SchedulerState) -> Result<(), ScheduleError> {
        let error = |reason: String| Err(ScheduleError::InvalidState { reason });
        match self.spec {
            ScheduleSpec::Plateau { factor, min_lr, .. }
                if state.reductions > 0
                    && plateau_lr(self.base_lr, factor, min_lr, state.reductions - 1)
                        <= plateau_lr(self.base_lr, factor, min_lr, state.reductions) =>
            {
                return error(format!(
                    "{} reductions by {factor} from {} go below min_lr {min_lr}; was the state saved \
                     with another schedule or learning rate?",
                    state.reductions, self.base_lr
                ));
            }
            ScheduleSpec::Plateau { .. } => {}
            _ if state != SchedulerState::default() => {
                return error(format!(
                    "the state holds reduce-on-plateau progress but the schedule is {}",
                    self.spec.kind_name()
                ));
            }
            _ => {}
        }
        self.state = state;
        Ok(())
    }
}

/// The reduce-on-plateau rate after `reductions` reductions.
fn plateau_lr(base_lr: f64, factor: f64, min_lr: f64, reductions: u32) -> f64 {
    (base_lr * factor.powi(i32::try_from(reductions).unwrap_or(i32::MAX))).max(min_lr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scheduler(spec: ScheduleSpec, base_lr: f64, total_steps: u64, steps_per_epoch: u64) -> Scheduler {
        Scheduler::new(spec, base_lr, total_steps, steps_per_epoch).unwrap()
    }

    #[track_caller]
    fn assert_close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() <= 1e-12 * expected.abs().max(1.0), "expected {expected}, got {actual}");
    }

    fn plateau(factor: f64, patience: u32, cooldown: u32, min_lr: f64) -> ScheduleSpec {
        ScheduleSpec::Plateau { factor, patience, cooldown, min_lr }
    }

    #[test]
    fn constant_is_constant() {
        let s = scheduler(ScheduleSpec::Constant, 0.3, 10, 5);
        assert_eq!([s.lr(0), s.lr(9), s.lr(1_000)], [0.3; 3]);
    }

    #[test]
    fn step_follows_pytorch_step_lr() {
        // PyTorch's StepLR docstring: lr = 0.05 for epochs < 30, 0.005 for 30 ≤ epoch < 60,
        // 0.0005 for 60 ≤ epoch < 90.
        let s = scheduler(ScheduleSpec::Step { step_size: 30, gamma: 0.1 }, 0.05, 100, 1);
        assert_close(s.lr(0), 0.05);
        assert_close(s.lr(29), 0.05);
        assert_close(s.lr(30), 0.005);
        assert_close(s.lr(59), 0.005);
        assert_close(s.lr(60), 0.0005);
        // Epochs are counted in steps: with 10 steps per epoch, epoch 2 starts at step 20.
        let s = scheduler(ScheduleSpec::Step { step_size: 2, gamma: 0.5 }, 1.0, 100, 10);
        assert_eq!([s.lr(19), s.lr(20), s.lr(39), s.lr(40)], [1.0, 0.5, 0.5, 0.25]);
    }

    #[test]
    fn cosine_without_warmup_is_cosine_annealing() {
        // CosineAnnealingLR closed form with T_max = 10:
        // eta_min + (base - eta_min) · (1 + cos(π · step / 10)) / 2.
        let s = scheduler(ScheduleSpec::Cosine { warmup_steps: 0, min_lr: 0.1 }, 1.0, 11, 1);
        assert_eq!(s.lr(0), 1.0);
        assert_close(s.lr(5), 0.55);
        assert_close(s.lr(2), 0.1 + 0.9 * (1.0 + (0.2 * PI).cos()) / 2.0);
        assert_eq!(s.lr(10), 0.1, "ends at min_lr exactly");
        assert_eq!(s.lr(500), 0.1, "and stays there");
    }

    #[test]
    fn cosine_warmup_rises_from_near_zero_to_base() {
        let s = scheduler(ScheduleSpec::Cosine { warmup_steps: 4, min_lr: 0.0 }, 1.0, 15, 1);
        // Warm-up: (step + 1) / 5.
        for (step, expected) in [(0, 0.2), (1, 0.4), (2, 0.6), (3, 0.8)] {
            assert_close(s.lr(step), expected);
        }
        // Peak at the end of warm-up, then a half cosine over steps 4..=14.
        assert_eq!(s.lr(4), 1.0);
        assert_close(s.lr(9), 0.5);
        assert_eq!(s.lr(14), 0.0);

        let s = scheduler(ScheduleSpec::Cosine { warmup_steps: 1_000, min_lr: 1e-5 }, 0.1, 10_000, 100);
        assert!(s.lr(0) < 1e-3 * 0.1 + 1e-12, "starts near 0: {}", s.lr(0));
        assert!((1..1_000).all(|step| s.lr(step) > s.lr(step - 1)), "rises through the warm-up");
        assert_eq!(s.lr(1_000), 0.1);
        assert!((1_001..10_000).all(|step| s.lr(step) <= s.lr(step - 1)), "then decays");
        assert_eq!(s.lr(9_999), 1e-5);
    }

    #[test]
    fn cosine_warmup_up_to_the_last_step_ends_at_min_lr() {
        let s = scheduler(ScheduleSpec::Cosine { warmup_steps: 3, min_lr: 0.01 }, 1.0, 4, 1);
        assert_close(s.lr(2), 0.75);
        assert_eq!(s.lr(3), 0.01);
    }

    fn one_cycle(max_lr: Option<f64>, pct_start: f64) -> ScheduleSpec {
        ScheduleSpec::OneCycle { max_lr, pct_start, div_factor: 25.0, final_div_factor: 1e4 }
    }

    #[test]
    fn one_cycle_follows_pytorch() {
        // PyTorch OneCycleLR(max_lr=1, total_steps=100): initial = 1 / 25 = 0.04, final = 0.04 / 1e4;
        // phase 1 ends at step 0.3 · 100 − 1 = 29, phase 2 at 99, with
        // anneal(start, end, pct) = end + (start − end) / 2 · (cos(π · pct) + 1).
        let s = scheduler(one_cycle(Some(1.0), 0.3), 0.5, 100, 10);
        assert_close(s.lr(0), 0.04);
        assert_close(s.lr(10), 0.295_163_948_464_100_77); // anneal(0.04, 1, 10 / 29)
        assert_close(s.lr(29), 1.0);
        assert_close(s.lr(64), 0.500_002); // anneal(1, 4e-6, 35 / 70)
        assert_close(s.lr(99), 4e-6);
        assert_close(s.lr(1_000), 4e-6);
    }

    #[test]
    fn one_cycle_with_a_fractional_peak_step() {
        // total_steps = 10, pct_start = 0.25: phase 1 ends at step 1.5.
        let s = scheduler(one_cycle(None, 0.25), 1.0, 10, 1);
        assert_close(s.lr(0), 0.04);
        assert_close(s.lr(1), 0.76); // anneal(0.04, 1, 1 / 1.5) = 1 − 0.96 / 4
        assert_close(s.lr(2), 0.989_073_844_071_701_4); // anneal(1, 4e-6, 0.5 / 7.5)
        assert_close(s.lr(9), 4e-6);
    }

    #[test]
    fn one_cycle_peaks_at_base_lr_without_max_lr() {
        let s = scheduler(one_cycle(None, 0.3), 0.2, 100, 10);
        assert_close(s.lr(29), 0.2);
        assert_close(s.lr(0), 0.2 / 25.0);
    }

    #[test]
    fn plateau_reduces_after_patience_plus_one_validations_without_progress() {
        let mut s = scheduler(plateau(0.5, 2, 0, 0.0), 1.0, 100, 10);
        assert!(!s.on_validation(true), "the first value is progress");
        assert!(!s.on_validation(false));
        assert!(!s.on_validation(false));
        assert_eq!(s.lr(0), 1.0);
        assert!(s.on_validation(false), "third validation without progress with patience 2");
        assert_eq!(s.lr(0), 0.5);
        assert_eq!(s.lr(99), 0.5, "the rate does not depend on the step");
        // Progress resets the count.
        assert!(!s.on_validation(true));
        assert!(!s.on_validation(false));
        assert!(!s.on_validation(false));
        assert!(s.on_validation(false));
        assert_eq!(s.lr(0), 0.25);
    }

    #[test]
    fn plateau_honours_cooldown() {
        // PyTorch with patience 0 and cooldown 2 on a constant metric: validation 1 sets the best,
        // 2 reduces, 3 and 4 are cool-down, 5 reduces again.
        let mut s = scheduler(plateau(0.1, 0, 2, 0.0), 1.0, 100, 10);
        let reduced: Vec<bool> = (0..8).map(|i| s.on_validation(i == 0)).collect();
        assert_eq!(reduced, [false, true, false, false, true, false, false, true]);
        assert_close(s.lr(0), 1e-3);
    }

    #[test]
    fn plateau_stops_at_min_lr() {
        let mut s = scheduler(plateau(0.5, 0, 0, 0.3), 1.0, 100, 10);
        let reduced: Vec<bool> = (0..5).map(|i| s.on_validation(i == 0)).collect();
        assert_eq!(reduced, [false, true, true, false, false]);
        assert_eq!(s.lr(0), 0.3);
    }

    #[test]
    fn other_schedules_ignore_validation() {
        let mut s = scheduler(ScheduleSpec::Step { step_size: 1, gamma: 0.5 }, 1.0, 100, 10);
        assert!((0..20).all(|_| !s.on_validation(false)));
        assert_eq!(s.state(), SchedulerState::default());
    }

    #[test]
    fn invalid_arguments_are_rejected_with_the_value() {
        let cases: [(ScheduleSpec, f64, u64, u64, &str); 15] = [
            (ScheduleSpec::Constant, 0.0, 10, 1, "base_lr must be positive and finite, got 0"),
            (ScheduleSpec::Constant, f64::NAN, 10, 1, "base_lr must be positive and finite, got NaN"),
            (ScheduleSpec::Constant, f64::INFINITY, 10, 1, "base_lr must be positive and finite, got inf"),
            (ScheduleSpec::Constant, 0.1, 0, 1, "total_steps must be at least 1, got 0"),
            (ScheduleSpec::Constant, 0.1, 10, 0, "steps_per_epoch must be at least 1, got 0"),
            (
                ScheduleSpec::Step { step_size: 0, gamma: 0.1 },
                0.1,
                10,
                1,
                "step step_size must be at least 1 epoch, got 0",
            ),
            (ScheduleSpec::Step { step_size: 1, gamma: 1.5 }, 0.1, 10, 1, "step gamma must be in (0, 1], got 1.5"),
            (ScheduleSpec::Step { step_size: 1, gamma: 0.0 }, 0.1, 10, 1, "step gamma must be in (0, 1], got 0"),
            (
                ScheduleSpec::Cosine { warmup_steps: 10, min_lr: 0.0 },
                0.1,
                10,
                1,
                "cosine warmup_steps must be below total_steps, leaving at least one step to anneal, got 10 with \
                 total_steps 10",
            ),
            (
                ScheduleSpec::Cosine { warmup_steps: 0, min_lr: 0.2 },
                0.1,
                10,
                1,
                "cosine min_lr must be in [0, base_lr], got 0.2 with base_lr 0.1",
            ),
            (one_cycle(Some(-1.0), 0.3), 0.1, 10, 1, "onecycle max_lr must be positive and finite, got -1"),
            (one_cycle(None, 1.0), 0.1, 10, 1, "onecycle pct_start must be in (0, 1), got 1"),
            (
                one_cycle(None, 0.3),
                0.1,
                3,
                1,
                "onecycle pct_start × total_steps must be above 1, so that the rising phase spans at least one \
                 step, got 0.3 × 3",
            ),
            (plateau(1.0, 1, 0, 0.0), 0.1, 10, 1, "plateau factor must be in (0, 1), got 1"),
            (
                plateau(0.5, 1, 0, f64::NAN),
                0.1,
                10,
                1,
                "plateau min_lr must be in [0, base_lr], got NaN with base_lr 0.1",
            ),
        ];
        for (spec, base_lr, total_steps, steps_per_epoch, message) in cases {
            let error = Scheduler::new(spec.clone(), base_lr, total_steps, steps_per_epoch).unwrap_err();
            assert_eq!(error.to_string(), message, "{spec:?}");
        }
    }

    #[test]
    fn restore_rejects_foreign_states() {
        let mut plateau_scheduler = scheduler(plateau(0.5, 0, 0, 0.25), 1.0, 100, 10);
        plateau_scheduler.on_validation(true);
        plateau_scheduler.on_validation(false);
        let state = plateau_scheduler.state();

        let mut cosine = scheduler(ScheduleSpec::Cosine { warmup_steps: 0, min_lr: 0.0 }, 1.0, 100, 10);
        let error = cosine.restore(state.clone()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot restore scheduler state: the state holds reduce-on-plateau progress but the schedule is cosine"
        );
        cosine.restore(SchedulerState::default()).unwrap();

        let too_many = SchedulerState { reductions: 3, ..state.clone() };
        let error = plateau_scheduler.restore(too_many).unwrap_err();
        assert!(error.to_string().contains("3 reductions by 0.5 from 1 go below min_lr 0.25"), "{error}");
        assert_eq!(plateau_scheduler.state(), state, "unchanged after a rejected restore");
    }

    /// A sequence of monitor verdicts: progress or not.
    fn verdicts() -> impl Strategy<Value = Vec<bool>> {
        proptest::collection::vec(any::<bool>(), 0..60)
    }

    fn plateau_specs() -> impl Strategy<Value = ScheduleSpec> {
        (0.05f64..0.95, 0u32..4, 0u32..3, prop_oneof![Just(0.0), 1e-4f64..1e-2])
            .prop_map(|(factor, patience, cooldown, min_lr)| plateau(factor, patience, cooldown, min_lr))
    }

    proptest! {
        #[test]
        fn a_restored_state_continues_identically(
            spec in plateau_specs(),
            metrics in verdicts(),
            split in any::<prop::sample::Index>(),
        ) {
            let split = split.index(metrics.len() + 1);
            let mut straight = scheduler(spec.clone(), 0.1, 1_000, 10);
            let mut first = scheduler(spec.clone(), 0.1, 1_000, 10);
            for (step, &value) in metrics[..split].iter().enumerate() {
                prop_assert_eq!(straight.on_validation(value), first.on_validation(value));
                prop_assert_eq!(straight.lr(step as u64).to_bits(), first.lr(step as u64).to_bits());
            }
            let json = serde_json::to_string(&first.state()).unwrap();
            let mut resumed = scheduler(spec, 0.1, 1_000, 10);
            resumed.restore(serde_json::from_str(&json).unwrap()).unwrap();
            prop_assert_eq!(resumed.state(), straight.state());
            for (step, &value) in metrics.iter().enumerate().skip(split) {
                prop_assert_eq!(straight.on_validation(value), resumed.on_validation(value));
                prop_assert_eq!(straight.lr(step as u64).to_bits(), resumed.lr(step as u64).to_bits());
            }
            prop_assert_eq!(resumed.state(), straight.state());
        }

        #[test]
        fn rates_stay_within_bounds(
            warmup in 0u64..50,
            extra in 1u64..200,
            min_frac in 0.0f64..1.0,
            pct_start in 0.05f64..0.95,
            step in 0u64..400,
        ) {
            let total = warmup + extra;
            let base = 0.1;
            let cosine = scheduler(ScheduleSpec::Cosine { warmup_steps: warmup, min_lr: base * min_frac }, base, total, 7);
            let lr = cosine.lr(step);
            prop_assert!(lr > 0.0 || min_frac == 0.0);
            prop_assert!(lr <= base);
            if step >= warmup {
                prop_assert!(lr >= base * min_frac);
            }
            if let Ok(one_cycle) = Scheduler::new(one_cycle(None, pct_start), base, total, 7) {
                let lr = one_cycle.lr(step);
                prop_assert!(lr > 0.0 && lr <= base * (1.0 + 1e-12), "{}", lr);
            }
        }
    }
}
