//! Early-termination schedulers: median stopping, ASHA and Hyperband, as pure decisions over the
//! values trials reported at their rungs.
//!
//! A trial trains in stretches. It stops at each of its rungs (resources, in epochs, where trials
//! are compared), reports its objective there, and the scheduler decides whether it goes on. Two
//! flavours:
//! - *stopping* (`promotion = false`, like Optuna's pruners): the decision is made at once, against
//!   the trials that reached the rung before it; a trial that is not good enough is pruned.
//! - *promotion* (`promotion = true`, ASHA as its paper describes it): the trial pauses at the rung,
//!   checkpointed; whenever a worker is free it promotes the best paused trial that is in the top
//!   1/η of its rung, which resumes from its exact checkpoint. Trials never promoted are pruned
//!   when the sweep runs out of other work.
//!
//! No trial is compared before the grace period (`grace`, the minimum resource): slow starters,
//! such as a small learning rate, are not cut early. Values are minimized (the caller negates an
//! objective to maximize). Everything here is a pure function of the reported values.

use std::fmt;
use std::str::FromStr;

/// Which scheduler ends trials early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    /// Every trial trains to the full budget.
    #[default]
    None,
    /// Stop a trial whose best value so far is worse than the median of the other trials at the
    /// same epoch (Optuna's `MedianPruner`); compares after every epoch from the grace period on.
    Median,
    /// Asynchronous successive halving: rungs at grace·η^k epochs; the top 1/η go on.
    Asha,
    /// Several ASHA brackets with different grace periods, so that a slow starter has a bracket
    /// where it is not compared early; each trial is assigned a bracket from its number.
    Hyperband,
}

impl SchedulerKind {
    /// Every kind, in declaration order.
    pub const ALL: [SchedulerKind; 4] =
        [SchedulerKind::None, SchedulerKind::Median, SchedulerKind::Asha, SchedulerKind::Hyperband];

    /// The lowercase name used in sweep files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SchedulerKind::None => "none",
            SchedulerKind::Median => "median",
            SchedulerKind::Asha => "asha",
            SchedulerKind::Hyperband => "hyperband",
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchedulerKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        SchedulerKind::ALL.into_iter().find(|k| k.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = SchedulerKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown scheduler `{text}`; choose one of {}", names.join(", "))
        })
    }
}

/// A scheduler and its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduler {
    /// Which one.
    pub kind: SchedulerKind,
    /// The grace period: the resource (epochs) before which no trial is compared.
    pub grace: u64,
    /// A trial's full budget (epochs).
    pub max: u64,
    /// The reduction factor η: the top 1/η of a rung go on.
    pub eta: u64,
    /// Pause at rungs and promote later (true) or decide at once (false).
    pub promotion: bool,
    /// Median stopping: how many other trials must have reported at an epoch before a trial can
    /// be stopped there.
    pub min_trials: usize,
    /// Seeds Hyperband's assignment of trials to brackets.
    pub seed: u64,
}

/// What the scheduler knows of one trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// The trial's number.
    pub number: u64,
    /// The (minimized) objective at each rung it reported at: (resource, value).
    pub rungs: Vec<(u64, f64)>,
    /// Whether it waits, paused at its last rung, for a promotion.
    pub paused: bool,
}

impl Standing {
    fn at(&self, resource: u64) -> Option<f64> {
        self.rungs.iter().find(|&&(at, _)| at == resource).map(|&(_, value)| value)
    }
}

impl Scheduler {
    /// Settings with the defaults: grace 1 epoch, η = 3, promotion for ASHA and Hyperband,
    /// median stopping after 5 trials.
    pub fn new(kind: SchedulerKind, max: u64) -> Scheduler {
        Scheduler {
            kind,
            grace: 1,
            max,
            eta: 3,
            promotion: matches!(kind, SchedulerKind::Asha | SchedulerKind::Hyperband),
            min_trials: 5,
            seed: 0,
        }
    }

    /// Checks the settings; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.max == 0 {
            return Err("a trial's budget (`epochs`) must be at least 1".into());
        }
        if self.kind != SchedulerKind::None && (self.grace == 0 || self.grace > self.max) {
            return Err(format!("`grace` must be between 1 and the budget of {} epochs, not {}", self.max, self.grace));
        }
        if self.eta < 2 {
            return Err(format!("`eta` (the reduction factor) must be at least 2, not {}", self.eta));
        }
        if self.kind == SchedulerKind::Median && self.promotion {
            return Err("median stopping decides at once; it has no promotion flavour".into());
        }
        Ok(())
    }

    /// How many brackets Hyperband uses: one per power of η between the grace period and the
    /// budget.
    pub fn brackets(&self) -> u32 {
        if self.kind != SchedulerKind::Hyperband {
            return 1;
        }
        let mut count = 1;
        let mut resource = self.grace.saturating_mul(self.eta);
        while resource <= self.max {
            count += 1;
            resource = resource.saturating_mul(self.eta);
        }
        count
    }

    /// The bracket of trial `number` (0 is the most aggressive, with the shortest grace period).
    /// Hyperband gives bracket `s` (from the least aggressive, s = 0) a share of trials
    /// proportional to ⌈(s_max + 1)/(s + 1)·η^s⌉, as its paper's schedule does; the draw is a
    /// hash of the seed and the number, so every worker agrees without talking.
    pub fn bracket(&self, number: u64) -> u32 {
        let brackets = self.brackets();
        if brackets == 1 {
            return 0;
        }
        let s_max = brackets - 1;
        let weights: Vec<u64> = (0..brackets)
            .map(|b| {
                let s = s_max - b;
                let eta_s = self.eta.saturating_pow(s);
                (u64::from(s_max + 1) * eta_s).div_ceil(u64::from(s + 1))
            })
            .collect();
        let total: u64 = weights.iter().sum();
        let mut draw = splitmix(self.seed ^ number.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % total;
        for (b, weight) in weights.iter().enumerate() {
            if draw < *weight {
                return b as u32;
            }
            draw -= weight;
        }
        0
    }

    /// The resources at which trial `number` reports and may be stopped, ascending; the last is
    /// always the full budget.
    pub fn rungs(&self, number: u64) -> Vec<u64> {
        let mut rungs = Vec::new();
        match self.kind {
            SchedulerKind::None => {}
            SchedulerKind::Median => rungs.extend(self.grace..self.max),
            SchedulerKind::Asha | SchedulerKind::Hyperband => {
                let mut resource = self.grace.saturating_mul(self.eta.saturating_pow(self.bracket(number)));
                while resource < self.max {
                    rungs.push(resource);
                    resource = resource.saturating_mul(self.eta);
                }
            }
        }
        rungs.push(self.max);
        rungs
    }

    /// Where trial `number` trains to after reaching `resource` (the first rung for 0).
    pub fn next_target(&self, number: u64, resource: u64) -> u64 {
        self.rungs(number).into_iter().find(|&r| r > resource).unwrap_or(self.max)
    }

    /// The stopping flavour's decision for trial `number`, which just reported `value` at rung
    /// `resource`: whether it goes on. `all` holds every trial of the sweep, this one included.
    pub fn keep_going(&self, number: u64, resource: u64, value: f64, all: &[Standing]) -> bool {
        if resource >= self.max || resource < self.grace {
            return true;
        }
        match self.kind {
            SchedulerKind::None => true,
            SchedulerKind::Median => {
                let others: Vec<f64> = all
                    .iter()
                    .filter(|s| s.number != number)
                    .filter_map(|s| best_up_to(s, resource))
                    .filter(|v| v.is_finite())
                    .collect();
                if others.len() < self.min_trials {
                    return true;
                }
                let mine = all.iter().find(|s| s.number == number).and_then(|s| best_up_to(s, resource));
                let mine = mine.map_or(value, |m| m.min(value));
                regimen_metrics::median(others).is_none_or(|median| mine <= median)
            }
            SchedulerKind::Asha | SchedulerKind::Hyperband => {
                let bracket = self.bracket(number);
                let mut competing: Vec<f64> = all
                    .iter()
                    .filter(|s| s.number != number && self.bracket(s.number) == bracket)
                    .filter_map(|s| s.at(resource))
                    .collect();
                competing.push(value);
                if !value.is_finite() {
                    return false;
                }
                competing.retain(|v| v.is_finite());
                competing.sort_by(f64::total_cmp);
                let index = (competing.len() / self.eta as usize).saturating_sub(1);
                value <= competing[index]
            }
        }
    }

    /// The promotion flavour's next promotion: the paused trial to continue and the resource to
    /// train it to, from the highest rung down, best value first; `None` when no paused trial is
    /// among the top ⌊n/η⌋ of the n trials that reported at its rung (ranked by value, then by
    /// number, so that ties never promote more than ⌊n/η⌋).
    ///
    /// When the sweep is `draining` (no new trials to start, none running), each rung promotes at
    /// least one trial, so that the best trial always reaches the full budget even when fewer than
    /// η trials got to its rung.
    pub fn promotion(&self, all: &[Standing], draining: bool) -> Option<(u64, u64)> {
        let mut best: Option<(u64, f64, u64)> = None; // (rung, value, number)
        for trial in all.iter().filter(|s| s.paused) {
            let Some(&(resource, value)) = trial.rungs.last() else { continue };
            if resource >= self.max || !value.is_finite() {
                continue;
            }
            let bracket = self.bracket(trial.number);
            let mut ranked: Vec<(f64, u64)> = all
                .iter()
                .filter(|s| self.bracket(s.number) == bracket)
                .filter_map(|s| s.at(resource).map(|v| (v, s.number)))
                .filter(|(v, _)| v.is_finite())
                .collect();
            ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut top = ranked.len() / self.eta as usize;
            if draining {
                top = top.max(1);
            }
            if !ranked[..top].iter().any(|&(_, number)| number == trial.number) {
                continue;
            }
            let better = best.is_none_or(|(r, v, n)| {
                resource > r || (resource == r && (value < v || (value == v && trial.number < n)))
            });
            if better {
                best = Some((resource, value, trial.number));
            }
        }
        best.map(|(resource, _, number)| (number, self.next_target(number, resource)))
    }
}

/// The trial's best value at rungs up to `resource`.
fn best_up_to(standing: &Standing, resource: u64) -> Option<f64> {
    standing.rungs.iter().filter(|&&(at, _)| at <= resource).map(|&(_, v)| v).filter(|v| v.is_finite()).reduce(f64::min)
}

/// A well-mixed 64-bit hash (SplitMix64's finalizer).
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(number: u64, rungs: &[(u64, f64)], paused: bool) -> Standing {
        Standing { number, rungs: rungs.to_vec(), paused }
    }

    #[test]
    fn asha_rungs_grow_by_eta_from_the_grace_period_and_end_at_the_budget() {
        let mut asha = Scheduler::new(SchedulerKind::Asha, 27);
        assert_eq!(asha.rungs(0), [1, 3, 9, 27]);
        asha.grace = 2;
        assert_eq!(asha.rungs(0), [2, 6, 18, 27]);
        assert_eq!(asha.next_target(0, 0), 2);
        assert_eq!(asha.next_target(0, 6), 18);
        assert_eq!(Scheduler::new(SchedulerKind::None, 8).rungs(3), [8]);
        assert_eq!(Scheduler::new(SchedulerKind::Median, 4).rungs(3), [1, 2, 3, 4]);
    }

    #[test]
    fn nothing_is_compared_before_the_grace_period() {
        let mut asha = Scheduler::new(SchedulerKind::Asha, 9);
        asha.grace = 3;
        asha.promotion = false;
        let all = [standing(0, &[(1, 0.1)], false), standing(1, &[(1, 0.2)], false)];
        assert!(asha.keep_going(2, 1, 100.0, &all), "before the grace period every trial goes on");
        assert!(!asha.keep_going(2, 3, 100.0, &[standing(0, &[(3, 0.1)], false), standing(1, &[(3, 0.2)], false)]));
    }

    #[test]
    fn stopping_asha_keeps_the_top_third_as_optuna_does() {
        let asha = Scheduler { promotion: false, ..Scheduler::new(SchedulerKind::Asha, 9) };
        assert!(asha.keep_going(0, 1, 5.0, &[]), "the first at a rung goes on");
        let one = [standing(0, &[(1, 1.0)], false)];
        assert!(!asha.keep_going(1, 1, 2.0, &one), "of two, only the best goes on");
        assert!(asha.keep_going(1, 1, 0.5, &one));
        let five: Vec<Standing> = (0..5).map(|n| standing(n, &[(1, n as f64)], false)).collect();
        // Six values at the rung with this one: the top 6/3 = 2 go on.
        assert!(asha.keep_going(9, 1, 0.5, &five));
        assert!(!asha.keep_going(9, 1, 1.5, &five));
        assert!(!asha.keep_going(9, 1, f64::NAN, &five), "a NaN never goes on");
        assert!(asha.keep_going(9, 9, 100.0, &five), "the budget's end is not a rung to stop at");
    }

    #[test]
    fn promotion_picks_the_best_paused_trial_in_the_top_third_from_the_highest_rung() {
        let asha = Scheduler::new(SchedulerKind::Asha, 9);
        let mut all: Vec<Standing> = (0..5).map(|n| standing(n, &[(1, n as f64)], true)).collect();
        assert_eq!(asha.promotion(&all, false), Some((0, 3)), "5 at rung 1: the top one, trial 0, goes to 3");
        all[0] = standing(0, &[(1, 0.0)], false); // promoted, now running
        assert_eq!(asha.promotion(&all, false), None, "the top 1 was promoted already");
        all.push(standing(5, &[(1, 0.5)], true)); // a sixth: now the top 2 are promotable
        assert_eq!(asha.promotion(&all, false), Some((5, 3)));
        all[5].paused = false;
        all.extend((6..9).map(|n| standing(n, &[(1, 9.0), (3, n as f64)], true)));
        assert_eq!(asha.promotion(&all, false), Some((6, 9)), "the highest rung first");
        let nan: Vec<Standing> = (0..3).map(|n| standing(n, &[(1, f64::NAN)], true)).collect();
        assert_eq!(asha.promotion(&nan, false), None);
        // Ties: of four equal values the top ⌊4/3⌋ = 1 is promoted, once.
        let mut tied: Vec<Standing> = (0..4).map(|n| standing(n, &[(1, 0.5)], true)).collect();
        assert_eq!(asha.promotion(&tied, false), Some((0, 3)));
        tied[0].paused = false;
        assert_eq!(asha.promotion(&tied, false), None);
        // Two at rung 3 promote nobody, unless the sweep is draining: then the best goes on.
        let two = [standing(0, &[(1, 0.1), (3, 0.3)], true), standing(1, &[(1, 0.1), (3, 0.2)], true)];
        assert_eq!(asha.promotion(&two, false), None);
        assert_eq!(asha.promotion(&two, true), Some((1, 9)));
    }

    #[test]
    fn median_stops_a_trial_worse_than_the_median_of_the_others_after_enough_trials() {
        let median = Scheduler { promotion: false, min_trials: 3, ..Scheduler::new(SchedulerKind::Median, 5) };
        let others: Vec<Standing> = (0..3).map(|n| standing(n, &[(1, 4.0), (2, n as f64)], false)).collect();
        assert!(median.keep_going(9, 2, 1.0, &others), "at the median goes on");
        assert!(!median.keep_going(9, 2, 1.5, &others));
        assert!(median.keep_going(9, 2, 1.5, &others[..2]), "too few others to judge");
        let mine = standing(9, &[(1, 0.5)], false);
        let mut all = others.clone();
        all.push(mine);
        assert!(median.keep_going(9, 2, 3.0, &all), "its best so far counts, as Optuna's does");
    }

    #[test]
    fn hyperband_brackets_are_stable_weighted_and_have_their_own_grace_periods() {
        let hyperband = Scheduler::new(SchedulerKind::Hyperband, 27);
        assert_eq!(hyperband.brackets(), 4);
        let mut counts = [0u32; 4];
        for number in 0..4000 {
            let b = hyperband.bracket(number);
            assert_eq!(b, hyperband.bracket(number), "a pure function of the number");
            counts[b as usize] += 1;
            assert_eq!(hyperband.rungs(number)[0], 3u64.pow(b), "bracket {b} starts at its own grace period");
        }
        // Shares ∝ ⌈4/(s+1)·3^s⌉ for s = 3, 2, 1, 0: 27, 12, 6, 4 of 49.
        let expected = [27.0, 12.0, 6.0, 4.0];
        for (count, weight) in counts.iter().zip(expected) {
            let share = f64::from(*count) / 4000.0;
            assert!((share - weight / 49.0).abs() < 0.03, "{counts:?}");
        }
        let other = Scheduler { seed: 1, ..hyperband.clone() };
        assert!((0..100).any(|n| other.bracket(n) != hyperband.bracket(n)), "the seed matters");
    }

    #[test]
    fn settings_are_checked_with_the_setting_named() {
        let mut asha = Scheduler::new(SchedulerKind::Asha, 8);
        asha.eta = 1;
        assert!(asha.validate().unwrap_err().contains("eta"));
        asha.eta = 3;
        asha.grace = 9;
        assert!(asha.validate().unwrap_err().contains("grace"));
        let median = Scheduler { promotion: true, ..Scheduler::new(SchedulerKind::Median, 8) };
        assert!(median.validate().unwrap_err().contains("promotion"));
        assert_eq!("ASHA".to_lowercase().parse::<SchedulerKind>(), Ok(SchedulerKind::Asha));
        assert!("pbt".parse::<SchedulerKind>().unwrap_err().contains("asha"));
    }
}
