//! The [`Monitor`]: follows one metric over a run's evaluations, says when it improved (save
//! `best`) and when to stop (the recipe's three reasons plus NaN).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Mode;
use crate::spec::{MinDelta, MonitorSpec, Span, Unit};

/// When to stop a run early. Every rule is off when its field is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoppingRules {
    /// Stop after this long without a significant improvement (beyond `min_delta`).
    pub patience: Option<Span>,
    /// Stop at once when the metric is worse than this value (a loss above it, an accuracy below).
    pub divergence_threshold: Option<f64>,
    /// Stop when, after the grace period, the best value so far is not better than this.
    pub baseline: Option<f64>,
    /// A warm-up from the start of training during which neither patience nor the baseline can
    /// stop the run, so slow starters are not penalized.
    pub grace: Option<Span>,
}

/// Where in training an evaluation happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Optimizer steps so far.
    pub step: u64,
    /// Epoch (1-based) the evaluation belongs to.
    pub epoch: u64,
    /// Optimizer steps in one epoch, to count spans given in epochs.
    pub steps_per_epoch: u64,
}

/// One evaluation's value and where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// The metric's value.
    pub value: f64,
    /// Optimizer steps so far.
    pub step: u64,
    /// Epoch (1-based).
    pub epoch: u64,
    /// Evaluations so far, this one included (1-based).
    pub evaluation: u64,
}

/// Everything a [`Monitor`] remembers, saved in checkpoints so a resumed run stops exactly where
/// the uninterrupted one would.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorState {
    /// Evaluations seen.
    pub evaluations: u64,
    /// The best value so far (strictly better than every earlier one).
    pub best: Option<Mark>,
    /// The last significant improvement: where patience counts from.
    pub reference: Option<Mark>,
    /// The first evaluation after the grace period, once it has happened.
    pub grace_ended: Option<Mark>,
}

/// Why a run was stopped early.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// The metric became NaN or infinite.
    NotFinite {
        /// The metric.
        metric: String,
        /// The value.
        value: f64,
        /// Where.
        step: u64,
    },
    /// The metric crossed the divergence threshold.
    Diverged {
        /// The metric.
        metric: String,
        /// The value.
        value: f64,
        /// The threshold it crossed.
        threshold: f64,
        /// Which way is better.
        mode: Mode,
    },
    /// No significant improvement for the patience.
    NoProgress {
        /// The metric.
        metric: String,
        /// The patience that ran out.
        patience: Span,
        /// The smallest improvement that would have counted.
        min_delta: MinDelta,
        /// The last significant improvement.
        since: Mark,
    },
    /// After the grace period the best value is still not better than the baseline.
    BelowBaseline {
        /// The metric.
        metric: String,
        /// The best value so far.
        best: f64,
        /// The baseline it had to beat.
        baseline: f64,
        /// The grace period, if any.
        grace: Option<Span>,
    },
}

impl StopReason {
    /// Whether the run diverged (NaN, infinity or past the threshold) rather than stalled.
    pub fn is_divergence(&self) -> bool {
        matches!(self, StopReason::NotFinite { .. } | StopReason::Diverged { .. })
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::NotFinite { metric, value, step } => {
                write!(f, "{metric} became {value} at step {step}; the last good checkpoint is kept")
            }
            StopReason::Diverged { metric, value, threshold, mode } => {
                let side = if *mode == Mode::Min { "above" } else { "below" };
                write!(f, "{metric} = {value:.6} went {side} the divergence threshold {threshold}")
            }
            StopReason::NoProgress { metric, patience, min_delta, since } => write!(
                f,
                "no improvement of {metric} beyond {min_delta} for {patience} (best {:.6} at epoch {}, step {})",
                since.value, since.epoch, since.step
            ),
            StopReason::BelowBaseline { metric, best, baseline, grace } => {
                write!(f, "{metric} reached only {best:.6}, not better than the baseline {baseline}")?;
                match grace {
                    Some(grace) => write!(f, " after the grace period of {grace}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// What one evaluation means for the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The value is the best so far: save the `best` checkpoint.
    pub improved: bool,
    /// The value beats the last significant improvement by more than `min_delta`: patience
    /// starts over, and so does reduce-on-plateau's count of validations without progress.
    pub progressed: bool,
    /// Stop the run, and why.
    pub stop: Option<StopReason>,
}

/// Follows the monitored metric over evaluations; see [`Monitor::observe`].
#[derive(Debug, Clone)]
pub struct Monitor {
    spec: MonitorSpec,
    rules: StoppingRules,
    state: MonitorState,
}

impl Monitor {
    /// A monitor with no evaluations seen.
    pub fn new(spec: MonitorSpec, rules: StoppingRules) -> Monitor {
        Monitor { spec, rules, state: MonitorState::default() }
    }

    /// The spec it follows.
    pub fn spec(&self) -> &MonitorSpec {
        &self.spec
    }

    /// The best evaluation so far.
    pub fn best(&self) -> Option<Mark> {
        self.state.best
    }

    /// Its state, to save in a checkpoint.
    pub fn state(&self) -> &MonitorState {
        &self.state
    }

    /// Continues from a saved state.
    pub fn restore(&mut self, state: MonitorState) {
        self.state = state;
    }

    /// Takes one evaluation of the metric.
    ///
    /// In order: a NaN or infinite value stops at once; so does a value past the divergence
    /// threshold; then the best and the patience reference are updated; then, outside the grace
    /// period, the baseline and the patience are checked. Patience counts from the last
    /// significant improvement or from the end of the grace period, whichever is later.
    pub fn observe(&mut self, value: f64, at: Position) -> Verdict {
        self.state.evaluations += 1;
        let mark = Mark { value, step: at.step, epoch: at.epoch, evaluation: self.state.evaluations };
        let metric = &self.spec.metric;
        if !value.is_finite() {
            let stop = StopReason::NotFinite { metric: metric.clone(), value, step: at.step };
            return Verdict { improved: false, progressed: false, stop: Some(stop) };
        }
        if let Some(threshold) = self.rules.divergence_threshold
            && self.spec.mode.is_better(threshold, value)
        {
            let stop = StopReason::Diverged { metric: metric.clone(), value, threshold, mode: self.spec.mode };
            return Verdict { improved: false, progressed: false, stop: Some(stop) };
        }
        let improved = self.state.best.is_none_or(|best| self.spec.is_better(value, best.value));
        if improved {
            self.state.best = Some(mark);
        }
        let progressed = self.state.reference.is_none_or(|reference| self.spec.is_significant(value, reference.value));
        if progressed {
            self.state.reference = Some(mark);
        }
        if self.rules.grace.is_some_and(|grace| !elapsed(grace, None, &mark, at.steps_per_epoch)) {
            return Verdict { improved, progressed, stop: None };
        }
        let grace_ended = *self.state.grace_ended.get_or_insert(mark);

        let best = self.state.best.map_or(value, |b| b.value);
        if let Some(baseline) = self.rules.baseline
            && !self.spec.is_better(best, baseline)
        {
            let stop = StopReason::BelowBaseline { metric: metric.clone(), best, baseline, grace: self.rules.grace };
            return Verdict { improved, progressed, stop: Some(stop) };
        }
        if let Some(patience) = self.rules.patience
            && let Some(reference) = self.state.reference
        {
            let anchor = if reference.step >= grace_ended.step { reference } else { grace_ended };
            if elapsed(patience, Some(&anchor), &mark, at.steps_per_epoch) {
                let stop = StopReason::NoProgress {
                    metric: metric.clone(),
                    patience,
                    min_delta: self.spec.min_delta,
                    since: reference,
                };
                return Verdict { improved, progressed, stop: Some(stop) };
            }
        }
        Verdict { improved, progressed, stop: None }
    }
}

/// Whether `span` has passed between `from` (the start of training when `None`) and `now`.
fn elapsed(span: Span, from: Option<&Mark>, now: &Mark, steps_per_epoch: u64) -> bool {
    let (from_step, from_evaluation) = from.map_or((0, 0), |m| (m.step, m.evaluation));
    match span.unit {
        Unit::Evaluations => now.evaluation - from_evaluation >= span.amount,
        Unit::Steps => now.step - from_step >= span.amount,
        Unit::Epochs => now.step - from_step >= span.amount.saturating_mul(steps_per_epoch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: u64 = 10;

    fn monitor(metric: &str, min_delta: &str, rules: StoppingRules) -> Monitor {
        Monitor::new(MonitorSpec::new(metric, None, min_delta.parse().unwrap()).unwrap(), rules)
    }

    /// Feeds one value per epoch; returns the epoch that stopped and why.
    fn run(monitor: &mut Monitor, values: &[f64]) -> Option<(u64, StopReason)> {
        values.iter().enumerate().find_map(|(i, &value)| {
            let epoch = i as u64 + 1;
            let verdict = monitor.observe(value, Position { step: epoch * STEPS, epoch, steps_per_epoch: STEPS });
            verdict.stop.map(|stop| (epoch, stop))
        })
    }

    fn span(text: &str) -> Option<Span> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn patience_counts_evaluations_without_progress() {
        let rules = StoppingRules { patience: span("2 evals"), ..Default::default() };
        let mut m = monitor("val.loss", "0", rules);
        let (epoch, reason) = run(&mut m, &[1.0, 0.8, 0.9, 0.85, 0.7]).unwrap();
        assert_eq!(epoch, 4, "two evaluations after the best at epoch 2");
        assert!(matches!(reason, StopReason::NoProgress { since, .. } if since.epoch == 2));
        assert_eq!(m.best().unwrap().epoch, 2);
    }

    #[test]
    fn patience_in_steps_and_epochs_counts_optimizer_steps() {
        // Evaluations every 5 steps (two per epoch): 2 epochs of patience = 20 steps = 4 evaluations.
        let rules = StoppingRules { patience: span("2 epochs"), ..Default::default() };
        let mut m = monitor("val.acc", "0", rules);
        let mut stopped = None;
        for (i, value) in [0.5, 0.6, 0.6, 0.6, 0.6, 0.6].into_iter().enumerate() {
            let step = (i as u64 + 1) * 5;
            let at = Position { step, epoch: step.div_ceil(STEPS), steps_per_epoch: STEPS };
            if m.observe(value, at).stop.is_some() {
                stopped = Some(step);
                break;
            }
        }
        assert_eq!(stopped, Some(30), "best at step 10, stop 20 steps later");

        let rules = StoppingRules { patience: span("15 steps"), ..Default::default() };
        let mut m = monitor("val.acc", "0", rules);
        assert_eq!(run(&mut m, &[0.5, 0.6, 0.6, 0.6]).unwrap().0, 4, "step 40 is 20 ≥ 15 steps after step 20");
    }

    #[test]
    fn min_delta_decides_what_counts_as_progress_but_best_is_strict() {
        let rules = StoppingRules { patience: span("2 evals"), ..Default::default() };
        let mut m = monitor("val.loss", "0.1", rules.clone());
        // Tiny improvements update the best checkpoint but do not reset patience.
        let mut improved = Vec::new();
        for (i, value) in [1.0, 0.95, 0.92, 0.91].into_iter().enumerate() {
            let epoch = i as u64 + 1;
            let verdict = m.observe(value, Position { step: epoch * STEPS, epoch, steps_per_epoch: STEPS });
            improved.push(verdict.improved);
            if verdict.stop.is_some() {
                break;
            }
        }
        assert_eq!(improved, vec![true, true, true], "stopped at the third evaluation");
        assert_eq!(m.best().unwrap().value, 0.92);

        let mut relative = monitor("val.loss", "10%", rules);
        assert!(run(&mut relative, &[1.0, 0.85, 0.7, 0.6]).is_none(), "each step beats 10% of the reference");
    }

    #[test]
    fn nan_and_infinity_stop_at_once_and_are_never_best() {
        let mut m = monitor("val.loss", "0", StoppingRules::default());
        let (epoch, reason) = run(&mut m, &[1.0, f64::NAN]).unwrap();
        assert_eq!(epoch, 2);
        assert!(reason.is_divergence() && reason.to_string().contains("NaN"), "{reason}");
        assert_eq!(m.best().unwrap().value, 1.0);
        let mut m = monitor("val.acc", "0", StoppingRules::default());
        assert!(matches!(run(&mut m, &[f64::INFINITY]), Some((1, StopReason::NotFinite { .. }))));
    }

    #[test]
    fn the_divergence_threshold_stops_even_during_the_grace_period() {
        let rules = StoppingRules { divergence_threshold: Some(5.0), grace: span("10 epochs"), ..Default::default() };
        let mut m = monitor("val.loss", "0", rules);
        let (epoch, reason) = run(&mut m, &[2.0, 3.0, 6.0]).unwrap();
        assert_eq!(epoch, 3);
        assert!(reason.to_string().contains("above the divergence threshold 5"), "{reason}");

        let rules = StoppingRules { divergence_threshold: Some(0.3), ..Default::default() };
        let mut m = monitor("val.acc", "0", rules);
        assert_eq!(run(&mut m, &[0.5, 0.4, 0.2]).unwrap().0, 3, "an accuracy diverges downward");
    }

    #[test]
    fn slow_starters_are_not_stopped_by_the_baseline_before_the_grace_period_ends() {
        let rules = StoppingRules { baseline: Some(0.5), grace: span("3 epochs"), ..Default::default() };
        let mut slow = monitor("val.acc", "0", rules.clone());
        assert!(run(&mut slow, &[0.2, 0.3, 0.55, 0.6]).is_none(), "beat the baseline by the end of the grace period");
        let mut hopeless = monitor("val.acc", "0", rules);
        let (epoch, reason) = run(&mut hopeless, &[0.2, 0.3, 0.35, 0.6]).unwrap();
        assert_eq!(epoch, 3, "judged at the first evaluation after the grace period");
        assert!(reason.to_string().contains("baseline 0.5"), "{reason}");
    }

    #[test]
    fn patience_starts_counting_at_the_end_of_the_grace_period() {
        let rules = StoppingRules { patience: span("2 epochs"), grace: span("4 epochs"), ..Default::default() };
        let mut m = monitor("val.acc", "0", rules);
        // Best at epoch 1, flat after: without grace this stops at epoch 3; with it, at 4 + 2.
        let (epoch, _) = run(&mut m, &[0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]).unwrap();
        assert_eq!(epoch, 6);
    }

    #[test]
    fn a_restored_state_continues_exactly() {
        let rules = StoppingRules { patience: span("3 evals"), ..Default::default() };
        let values = [1.0, 0.7, 0.8, 0.75, 0.9, 0.6, 0.65, 0.7, 0.8];
        let mut whole = monitor("val.loss", "0.01", rules.clone());
        let expected = run(&mut whole, &values);
        let stopped_at = expected.as_ref().map_or(values.len(), |(epoch, _)| *epoch as usize);
        assert!(stopped_at > 3, "the sequence must run a while before stopping");
        for cut in 1..stopped_at {
            let mut first = monitor("val.loss", "0.01", rules.clone());
            assert!(run(&mut first, &values[..cut]).is_none());
            let mut resumed = monitor("val.loss", "0.01", rules.clone());
            resumed.restore(first.state().clone());
            let rest = values[cut..].iter().enumerate().find_map(|(i, &value)| {
                let epoch = (cut + i) as u64 + 1;
                let verdict = resumed.observe(value, Position { step: epoch * STEPS, epoch, steps_per_epoch: STEPS });
                verdict.stop.map(|stop| (epoch, stop))
            });
            assert_eq!(rest, expected, "cut at {cut}");
        }
    }
}
