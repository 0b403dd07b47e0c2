//! The Parzen estimator of TPE: a weighted mixture of product kernels over a group of parameters.
//!
//! Follows Optuna's `_ParzenEstimator` in multivariate mode: one kernel per observation plus a
//! prior kernel (centre of the domain, bandwidth the domain's width) of weight 1; observation
//! weights from [`default_weights`] (older trials ramp down once there are more than 25); a numeric
//! kernel's bandwidth is the larger gap to its neighbours among the observations (the domain's
//! ends count as neighbours, except for the outermost kernels, which take their inner gap), as
//! Optuna 5.0 does; clipped to `[(high - low) / min(100, n + 2), high - low]` (Optuna's "magic
//! clip"). The older rule, `0.2 n^(-1/(d+4)) (high - low)` for every kernel, was measurably worse
//! on BBOB (BENCHMARKS.md); numeric kernels are
//! normals truncated to the domain, on a log scale for log parameters; integers get the mass of
//! the truncated normal over `[x - step/2, x + step/2]`; categorical kernels put mass 1 on the
//! observed choice plus `prior_weight / (n + 1)` on every choice, normalized.

use rand_chacha::ChaCha8Rng;

use super::truncnorm;
use crate::sampler::unit;

/// The weight of the prior kernel, relative to an observation's (Optuna's default).
const PRIOR_WEIGHT: f64 = 1.0;

/// How one parameter is modelled, in the coordinates a point carries for it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dim {
    /// A float in `[low, high]`; the coordinate is the value, or its `ln` for log parameters
    /// (then `low` and `high` are `ln` too).
    Continuous { low: f64, high: f64 },
    /// An integer `low + k step`; the coordinate is the integer.
    Discrete { low: f64, high: f64, step: f64 },
    /// A log-scale integer in `[low, high]`; the coordinate is the integer, kernels live in `ln`
    /// space over `[ln(low - 1/2), ln(high + 1/2)]`.
    LogDiscrete { low: f64, high: f64 },
    /// One of `n` choices; the coordinate is the index.
    Categorical { n: usize },
}

impl Dim {
    /// The interval the kernels of a numeric dimension live on.
    fn kernel_bounds(self) -> (f64, f64) {
        match self {
            Dim::Continuous { low, high } => (low, high),
            Dim::Discrete { low, high, step } => (low - 0.5 * step, high + 0.5 * step),
            Dim::LogDiscrete { low, high } => (libm::log(low - 0.5), libm::log(high + 0.5)),
            Dim::Categorical { .. } => unreachable!("categorical dimensions have no bounds"),
        }
    }

    /// A point's coordinate in kernel space.
    fn to_kernel(self, x: f64) -> f64 {
        match self {
            Dim::LogDiscrete { .. } => libm::log(x),
            _ => x,
        }
    }
}

/// The kernels of one dimension.
enum Kernels {
    Numeric {
        dim: Dim,
        mus: Vec<f64>,
        sigmas: Vec<f64>,
        /// `ln` of each kernel's mass on the domain (plus, for continuous kernels, the rest of
        /// the normalizing constant: `ln sigma + ln sqrt(2 pi)`).
        log_norm: Vec<f64>,
    },
    Categorical {
        /// Per kernel, the probability of each choice.
        probs: Vec<Vec<f64>>,
        log_probs: Vec<Vec<f64>>,
    },
}

/// A mixture of product kernels over some dimensions.
pub(crate) struct ParzenEstimator {
    weights: Vec<f64>,
    log_weights: Vec<f64>,
    dims: Vec<Kernels>,
}

/// Optuna's `default_weights`: equal weights up to 25 observations; beyond, the newest 25 keep
/// weight 1 and older ones ramp linearly from `1/n` up (observations in trial-number order).
pub(crate) fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let start = 1.0 / n as f64;
    let mut w: Vec<f64> = (0..ramp)
        .map(|i| if ramp == 1 { start } else { start + (1.0 - start) * i as f64 / (ramp - 1) as f64 })
        .collect();
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

impl ParzenEstimator {
    /// Fits the estimator to `observations` (one point per trial, in trial-number order, with a
    /// coordinate per dimension of `dims`).
    pub(crate) fn new(dims: &[Dim], observations: &[Vec<f64>]) -> Self {
        let n = observations.len();
        let mut weights = default_weights(n);
        weights.push(if n == 0 { 1.0 } else { PRIOR_WEIGHT });
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        let log_weights = weights.iter().map(|w| libm::log(*w)).collect();
        let kernels = dims
            .iter()
            .enumerate()
            .map(|(j, &dim)| match dim {
                Dim::Categorical { n: choices } => {
                    let mut probs = Vec::with_capacity(n + 1);
                    for obs in observations {
                        let mut row = vec![PRIOR_WEIGHT / (n + 1) as f64; choices];
                        row[obs[j] as usize] += 1.0;
                        let sum: f64 = row.iter().sum();
                        probs.push(row.into_iter().map(|p| p / sum).collect::<Vec<_>>());
                    }
                    probs.push(vec![1.0 / choices as f64; choices]);
                    let log_probs = probs.iter().map(|row| row.iter().map(|p| libm::log(*p)).collect()).collect();
                    Kernels::Categorical { probs, log_probs }
                }
                _ => {
                    let (low, high) = dim.kernel_bounds();
                    let width = high - low;
                    let mut mus: Vec<f64> = observations.iter().map(|obs| dim.to_kernel(obs[j])).collect();
                    // Each kernel as wide as the larger gap to its neighbours in sorted order, with the
                    // domain's ends as outer neighbours (Optuna 5.0, `consider_endpoints=False`: the
                    // outermost kernels take their inner gap).
                    let mut order: Vec<usize> = (0..n).collect();
                    order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
                    let mut sorted = vec![low];
                    sorted.extend(order.iter().map(|&i| mus[i]));
                    sorted.push(high);
                    let mut gaps: Vec<f64> =
                        (1..=n).map(|i| (sorted[i] - sorted[i - 1]).max(sorted[i + 1] - sorted[i])).collect();
                    if n >= 2 {
                        gaps[0] = sorted[2] - sorted[1];
                        gaps[n - 1] = sorted[n] - sorted[n - 1];
                    }
                    let min_sigma = width / (n as f64 + 2.0).min(100.0);
                    let mut sigmas = vec![0.0; n];
                    for (rank, &i) in order.iter().enumerate() {
                        sigmas[i] = gaps[rank].clamp(min_sigma, width);
                    }
                    mus.push(0.5 * (low + high));
                    sigmas.push(width);
                    let log_norm = mus
                        .iter()
                        .zip(&sigmas)
                        .map(|(mu, s)| {
                            let mass = truncnorm::log_gauss_mass((low - mu) / s, (high - mu) / s);
                            match dim {
                                Dim::Continuous { .. } => mass + libm::log(*s) + truncnorm::LN_SQRT_2PI,
                                _ => mass,
                            }
                        })
                        .collect();
                    Kernels::Numeric { dim, mus, sigmas, log_norm }
                }
            })
            .collect();
        ParzenEstimator { weights, log_weights, dims: kernels }
    }

    /// Draws `count` points: a kernel by weight, then each coordinate from that kernel.
    pub(crate) fn sample(&self, rng: &mut ChaCha8Rng, count: usize) -> Vec<Vec<f64>> {
        (0..count)
            .map(|_| {
                let k = pick(&self.weights, unit(rng));
                self.dims.iter().map(|kernels| sample_one(kernels, k, unit(rng))).collect()
            })
            .collect()
    }

    /// The log density (log probability for discrete dimensions) of the mixture at `x`, and the
    /// number of kernel-dimension evaluations it took (TPE's unit of work).
    pub(crate) fn log_pdf(&self, x: &[f64]) -> (f64, u64) {
        // A streaming log-sum-exp over the kernels.
        let (mut max, mut sum) = (f64::NEG_INFINITY, 0.0);
        for (k, log_w) in self.log_weights.iter().enumerate() {
            let t = log_w + self.dims.iter().zip(x).map(|(kernels, &xj)| log_pdf_one(kernels, k, xj)).sum::<f64>();
            if t > max {
                sum = sum * libm::exp(max - t) + 1.0;
                max = t;
            } else if t > f64::NEG_INFINITY {
                sum += libm::exp(t - max);
            }
        }
        let work = (self.log_weights.len() * self.dims.len().max(1)) as u64;
        if max == f64::NEG_INFINITY { (max, work) } else { (max + libm::log(sum), work) }
    }
}

/// The index whose cumulative weight first exceeds `u` (the last one if rounding leaves none).
fn pick(weights: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        if u < acc {
            return i;
        }
    }
    weights.len() - 1
}

fn sample_one(kernels: &Kernels, k: usize, u: f64) -> f64 {
    match kernels {
        Kernels::Categorical { probs, .. } => pick(&probs[k], u) as f64,
        Kernels::Numeric { dim, mus, sigmas, .. } => {
            let (low, high) = dim.kernel_bounds();
            let (mu, s) = (mus[k], sigmas[k]);
            let x = (mu + s * truncnorm::sample((low - mu) / s, (high - mu) / s, u)).clamp(low, high);
            match *dim {
                Dim::Continuous { .. } => x,
                Dim::Discrete { low, high, step } => {
                    let steps = libm::round((high - low) / step);
                    low + libm::round((x - low) / step).clamp(0.0, steps) * step
                }
                Dim::LogDiscrete { low, high } => libm::round(libm::exp(x)).clamp(low, high),
                Dim::Categorical { .. } => unreachable!(),
            }
        }
    }
}

fn log_pdf_one(kernels: &Kernels, k: usize, x: f64) -> f64 {
    match kernels {
        Kernels::Categorical { log_probs, .. } => log_probs[k][x as usize],
        Kernels::Numeric { dim, mus, sigmas, log_norm } => {
            let (mu, s) = (mus[k], sigmas[k]);
            let (low, high) = dim.kernel_bounds();
            let cell = |a: f64, b: f64| truncnorm::log_gauss_mass((a.max(low) - mu) / s, (b.min(high) - mu) / s);
            match *dim {
                Dim::Continuous { .. } => {
                    let z = (x - mu) / s;
                    -0.5 * z * z - log_norm[k]
                }
                Dim::Discrete { step, .. } => cell(x - 0.5 * step, x + 0.5 * step) - log_norm[k],
                Dim::LogDiscrete { .. } => cell(libm::log(x - 0.5), libm::log(x + 0.5)) - log_norm[k],
                Dim::Categorical { .. } => unreachable!(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{Stream, rng_for};

    #[test]
    fn default_weights_match_optuna() {
        assert!(default_weights(0).is_empty());
        assert_eq!(default_weights(24), vec![1.0; 24]);
        assert_eq!(default_weights(25), vec![1.0; 25]);
        assert_eq!(default_weights(26)[0], 1.0 / 26.0);
        let w = default_weights(35);
        // numpy.linspace(1/35, 1, 10), then 25 ones.
        assert_eq!(w.len(), 35);
        assert!((w[0] - 1.0 / 35.0).abs() < 1e-15 && (w[9] - 1.0).abs() < 1e-15);
        assert!((w[1] - (1.0 / 35.0 + (1.0 - 1.0 / 35.0) / 9.0)).abs() < 1e-15);
    }

    #[test]
    fn densities_integrate_to_one() {
        let obs = [vec![0.2, 3.0, 1.0, 10.0], vec![0.9, 5.0, 0.0, 2.0], vec![0.5, 1.0, 2.0, 100.0]];
        let dims = [
            Dim::Continuous { low: 0.0, high: 1.0 },
            Dim::Discrete { low: 1.0, high: 5.0, step: 2.0 },
            Dim::Categorical { n: 3 },
            Dim::LogDiscrete { low: 1.0, high: 100.0 },
        ];
        for j in 0..dims.len() {
            let est = ParzenEstimator::new(&dims[j..=j], &obs.iter().map(|o| vec![o[j]]).collect::<Vec<_>>());
            let total: f64 = match dims[j] {
                Dim::Continuous { .. } => {
                    let n = 10_000;
                    (0..n).map(|i| libm::exp(est.log_pdf(&[(i as f64 + 0.5) / n as f64]).0) / n as f64).sum()
                }
                Dim::Discrete { .. } => [1.0, 3.0, 5.0].iter().map(|x| libm::exp(est.log_pdf(&[*x]).0)).sum(),
                Dim::Categorical { .. } => (0..3).map(|x| libm::exp(est.log_pdf(&[x as f64]).0)).sum(),
                Dim::LogDiscrete { .. } => (1..=100).map(|x| libm::exp(est.log_pdf(&[x as f64]).0)).sum(),
            };
            assert!((total - 1.0).abs() < 1e-6, "dim {j}: {total}");
        }
    }

    #[test]
    fn samples_stay_in_the_domain() {
        let dims = [
            Dim::Continuous { low: -2.0, high: 1.0 },
            Dim::Discrete { low: 16.0, high: 128.0, step: 16.0 },
            Dim::LogDiscrete { low: 8.0, high: 256.0 },
            Dim::Categorical { n: 2 },
        ];
        let obs = vec![vec![1.0, 128.0, 256.0, 1.0], vec![-2.0, 16.0, 8.0, 0.0]];
        let est = ParzenEstimator::new(&dims, &obs);
        let mut rng = rng_for(0, Stream::Tpe, 0);
        for x in est.sample(&mut rng, 500) {
            assert!((-2.0..=1.0).contains(&x[0]));
            assert!((16.0..=128.0).contains(&x[1]) && x[1] % 16.0 == 0.0, "{}", x[1]);
            assert!((8.0..=256.0).contains(&x[2]) && x[2].fract() == 0.0);
            assert!(x[3] == 0.0 || x[3] == 1.0);
            assert!(est.log_pdf(&x).0.is_finite());
        }
    }
}
