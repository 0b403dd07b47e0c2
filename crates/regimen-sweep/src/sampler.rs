//! The `Sampler` trait, what it is shown of a trial, and the choice among the samplers.

use std::fmt;
use std::str::FromStr;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::space::SearchSpace;
use crate::value::Params;

/// What became of a trial, as a sampler sees it. Values are to be MINIMIZED: the caller negates
/// the objective of a `max` sweep, so that samplers have one direction to think about.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Claimed and not finished: TPE counts it as a bad result ("constant liar"), so that
    /// parallel workers do not all try the same region.
    Running,
    /// Finished with this objective value.
    Complete(f64),
    /// Stopped early by a scheduler, with its last reported value if it reported one.
    Pruned(Option<f64>),
    /// Crashed or gave no value; samplers ignore it.
    Failed,
    /// Finished but broke a constraint, by this total violation (positive; larger is worse).
    Infeasible(f64),
}

/// One earlier trial, as shown to a sampler.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// The trial's number in its sweep (0, 1, 2, ...).
    pub number: u64,
    /// The parameters it ran with.
    pub params: Params,
    /// What became of it.
    pub outcome: Outcome,
}

/// Chooses the parameters of a sweep's trials.
///
/// Contract, for every implementation:
/// - `suggest` is a pure function of (seed, `number`, `space`, the content of `history`): the same
///   inputs give the same parameters, bit for bit, on every platform, whichever worker asks and
///   however often. A sampler keeps no state between calls that changes its answers, never does
///   I/O and never uses a global random number generator; several workers, each with its own
///   sampler built from the same seed, agree.
/// - The returned parameters satisfy `space.contains()`: every active parameter inside its
///   domain (bounds, log scale, step), inactive conditional parameters absent, fixed ones present.
/// - The cost is at most linear in `history.len()` (for a history in trial-number order, the order
///   the engine keeps), so that a sweep of thousands of trials does not slow down quadratically.
/// - `history` may contain trials of any outcome, in any state, including ones whose parameters
///   no longer fit `space` (a space edited between runs); samplers skip what they cannot use.
pub trait Sampler: Send {
    /// The parameters for trial `number`, given the trials before it (and those still running).
    fn suggest(&mut self, space: &SearchSpace, history: &[Trial], number: u64) -> Params;
}

/// Which sampler a sweep uses (`sampler = "tpe"` in a sweep file, `--sampler tpe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    /// Independent uniform draws on each parameter's own scale: the robust default.
    #[default]
    Random,
    /// Every combination of a few points per parameter, in a seeded order.
    Grid,
    /// A scrambled Sobol sequence: spread more evenly than random for the same trial count.
    Sobol,
    /// Tree-structured Parzen Estimator: models good and bad regions from the history.
    Tpe,
}

impl SamplerKind {
    /// Every kind, in the order the help text lists them.
    pub const ALL: [SamplerKind; 4] = [SamplerKind::Random, SamplerKind::Grid, SamplerKind::Sobol, SamplerKind::Tpe];

    /// The lowercase name used in sweep files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SamplerKind::Random => "random",
            SamplerKind::Grid => "grid",
            SamplerKind::Sobol => "sobol",
            SamplerKind::Tpe => "tpe",
        }
    }
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SamplerKind {
    type Err = String;

    /// Reads a lowercase name; the error lists the choices.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SamplerKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = SamplerKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown sampler `{s}`; choose one of {}", names.join(", "))
        })
    }
}

/// Builds the sampler `kind`, seeded with `seed`.
pub fn new_sampler(kind: SamplerKind, seed: u64) -> Box<dyn Sampler> {
    match kind {
        SamplerKind::Random => Box::new(crate::random::RandomSampler::new(seed)),
        SamplerKind::Grid => Box::new(crate::grid::GridSampler::new(seed)),
        SamplerKind::Sobol => Box::new(crate::sobol::SobolSampler::new(seed)),
        SamplerKind::Tpe => Box::new(crate::tpe::TpeSampler::new(seed)),
    }
}

/// Separates the random streams of the samplers, so that a grid order and a TPE draw with the
/// same seed are unrelated.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Random = 1,
    Grid = 2,
    Sobol = 3,
    Tpe = 4,
}

/// A ChaCha8 generator for (seed, purpose, number): the key is the seed and the purpose, the
/// stream the number, so that every trial has its own independent, portable sequence.
pub(crate) fn rng_for(seed: u64, stream: Stream, number: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(stream as u64).to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(number);
    rng
}

/// A uniform float in `[0, 1)` from 53 random bits (portable, unlike a distribution's internals).
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Builds a trial's parameters in space order (parents first), asking `value` for each active
/// parameter; `value` is called for inactive ones too (its answer dropped), so that a parameter's
/// value does not depend on which other parameters happen to be active.
pub(crate) fn assemble(
    space: &SearchSpace,
    mut value: impl FnMut(usize, &crate::space::Param) -> crate::value::Value,
) -> Params {
    let mut out = Params::new();
    for (i, p) in space.params().iter().enumerate() {
        let v = value(i, p);
        if space.is_active(p, &out) {
            out.insert(p.name.clone(), v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip_and_errors_list_choices() {
        for k in SamplerKind::ALL {
            assert_eq!(k.to_string().parse::<SamplerKind>(), Ok(k));
            let json = toml::Value::try_from(k).unwrap();
            assert_eq!(json.as_str(), Some(k.as_str()));
        }
        let e = "TPE".parse::<SamplerKind>().unwrap_err();
        assert!(e.contains("`TPE`") && e.contains("random, grid, sobol, tpe"), "{e}");
        assert_eq!(SamplerKind::default(), SamplerKind::Random);
    }

    #[test]
    fn streams_differ_by_seed_purpose_and_number() {
        let first = |seed, stream, n| rng_for(seed, stream, n).next_u64();
        let a = first(1, Stream::Random, 0);
        assert_eq!(a, first(1, Stream::Random, 0));
        assert_ne!(a, first(2, Stream::Random, 0));
        assert_ne!(a, first(1, Stream::Tpe, 0));
        assert_ne!(a, first(1, Stream::Random, 1));
    }
}
