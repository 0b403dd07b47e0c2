//! Which parameters matter: PED-ANOVA (Watanabe et al., IJCAI 2023), as Optuna's
//! `PedAnovaImportanceEvaluator` computes it.
//!
//! A parameter matters when the best trials are distributed along it differently from all the
//! trials: the importance of a parameter is the Pearson divergence between the density of the best
//! `target_quantile` of complete trials and the density of all of them, each estimated on the
//! parameter's own scale (log parameters in log space) over the domain, with a kernel density on a
//! grid for numbers and smoothed frequencies for choices. Unlike fANOVA it needs no surrogate model
//! and costs linear time in the trials; its values are shares that sum to 1.

use crate::sampler::{Outcome, Trial};
use crate::space::{Domain, SearchSpace};
use crate::value::Value;

/// Grid points on which numeric densities are compared.
const GRID: usize = 100;

/// Every searched (not fixed) parameter's importance, most important first (ties by name); shares
/// that sum to 1, or all 0 when fewer than two trials are complete or no parameter separates the
/// best trials from the rest. Values are minimized; `target_quantile` is the share of complete
/// trials counted as the best (Optuna's default is 0.1); at least two trials are.
pub fn ped_anova(space: &SearchSpace, history: &[Trial], target_quantile: f64) -> Vec<(String, f64)> {
    let mut done: Vec<&Trial> =
        history.iter().filter(|t| matches!(t.outcome, Outcome::Complete(v) if v.is_finite())).collect();
    done.sort_by(|a, b| value(a).total_cmp(&value(b)).then(a.number.cmp(&b.number)));
    let top = ((done.len() as f64 * target_quantile).ceil() as usize).max(2).min(done.len());
    let mut scores: Vec<(String, f64)> = space
        .params()
        .iter()
        .filter(|p| !matches!(p.domain, Domain::Fixed(_)))
        .map(|param| {
            let coordinate = |t: &&Trial| t.params.get(&param.name).and_then(|v| unit(&param.domain, v));
            let all: Vec<f64> = done.iter().filter_map(coordinate).collect();
            let best: Vec<f64> = done[..top].iter().filter_map(coordinate).collect();
            let score = if done.len() < 2 || best.len() < 2 {
                0.0
            } else {
                match &param.domain {
                    Domain::Categorical(choices) => categorical_divergence(&best, &all, choices.len()),
                    _ => numeric_divergence(&best, &all),
                }
            };
            (param.name.clone(), score)
        })
        .collect();
    let total: f64 = scores.iter().map(|(_, s)| s).sum();
    for (_, score) in &mut scores {
        *score = if total > 0.0 { *score / total } else { 0.0 };
    }
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scores
}

fn value(trial: &Trial) -> f64 {
    match trial.outcome {
        Outcome::Complete(v) => v,
        _ => f64::INFINITY,
    }
}

/// A value's position in its domain: in [0, 1] on the parameter's scale for numbers, the choice's
/// index for choices.
fn unit(domain: &Domain, value: &Value) -> Option<f64> {
    match domain {
        Domain::Categorical(choices) => choices.iter().position(|c| c == value).map(|i| i as f64),
        Domain::Float { low, high, log } => scaled(value.as_f64()?, *low, *high, *log),
        Domain::Int { low, high, log, .. } => scaled(value.as_f64()?, *low as f64, *high as f64, *log),
        Domain::Fixed(_) => None,
    }
}

fn scaled(x: f64, low: f64, high: f64, log: bool) -> Option<f64> {
    let (x, low, high) = if log { (x.ln(), low.ln(), high.ln()) } else { (x, low, high) };
    (high > low).then(|| ((x - low) / (high - low)).clamp(0.0, 1.0))
}

/// Pearson divergence ∫ p_all (p_best / p_all − 1)² between kernel densities on [0, 1].
fn numeric_divergence(best: &[f64], all: &[f64]) -> f64 {
    let grid: Vec<f64> = (0..GRID).map(|i| (i as f64 + 0.5) / GRID as f64).collect();
    let p_best = density(best, &grid);
    let p_all = density(all, &grid);
    p_best.iter().zip(&p_all).map(|(b, a)| a * (b / a - 1.0).powi(2)).sum()
}

/// A Gaussian kernel density on the grid (Scott's bandwidth, at least a grid step, with a prior
/// kernel over the whole domain so that no point has zero density), normalized to sum to 1.
fn density(points: &[f64], grid: &[f64]) -> Vec<f64> {
    let n = points.len() as f64;
    let mean = points.iter().sum::<f64>() / n;
    let std = (points.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let bandwidth = (std * n.powf(-0.2)).clamp(1.0 / GRID as f64, 1.0);
    let mut p: Vec<f64> = grid
        .iter()
        .map(|x| {
            let kernels: f64 = points.iter().map(|c| (-0.5 * ((x - c) / bandwidth).powi(2)).exp()).sum();
            kernels / (n * bandwidth) + 1.0 / (n + 1.0)
        })
        .collect();
    let total: f64 = p.iter().sum();
    p.iter_mut().for_each(|v| *v /= total);
    p
}

/// Pearson divergence between choice frequencies, each smoothed by one observation spread over
/// the choices (as TPE's categorical prior).
fn categorical_divergence(best: &[f64], all: &[f64], choices: usize) -> f64 {
    let frequencies = |points: &[f64]| -> Vec<f64> {
        let mut counts = vec![1.0 / choices as f64; choices];
        for &i in points {
            counts[i as usize] += 1.0;
        }
        let total: f64 = counts.iter().sum();
        counts.into_iter().map(|c| c / total).collect()
    };
    let (p_best, p_all) = (frequencies(best), frequencies(all));
    p_best.iter().zip(&p_all).map(|(b, a)| a * (b / a - 1.0).powi(2)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Params;

    fn space() -> SearchSpace {
        let table = toml::from_str(
            r#"
lr = "loguniform(1e-5, 1e-1)"
noise = "uniform(0, 1)"
opt = ["adam", "sgd"]
"#,
        )
        .unwrap();
        SearchSpace::from_toml(&table).unwrap()
    }

    /// Trials on a grid where only `lr` decides the value: the best are the ones near 1e-3.
    fn history() -> Vec<Trial> {
        (0..200u64)
            .map(|number| {
                let lr = 10f64.powf(-5.0 + 4.0 * ((number * 37 % 200) as f64 / 199.0));
                let noise = (number * 53 % 200) as f64 / 199.0;
                let opt = if number % 2 == 0 { "adam" } else { "sgd" };
                let mut params = Params::new();
                params.insert("lr".into(), Value::Float(lr));
                params.insert("noise".into(), Value::Float(noise));
                params.insert("opt".into(), Value::Str(opt.into()));
                Trial { number, params, outcome: Outcome::Complete((lr.log10() + 3.0).powi(2)) }
            })
            .collect()
    }

    #[test]
    fn the_parameter_that_decides_the_value_is_the_important_one() {
        let importance = ped_anova(&space(), &history(), 0.1);
        assert_eq!(importance[0].0, "lr", "{importance:?}");
        assert!(importance[0].1 > 0.8, "{importance:?}");
        let total: f64 = importance.iter().map(|(_, s)| s).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_choice_that_decides_is_found_too() {
        let mut trials = history();
        for t in &mut trials {
            let sgd = t.params["opt"] == Value::Str("sgd".into());
            t.outcome = Outcome::Complete(if sgd { 1.0 } else { 0.0 } + (t.number % 7) as f64 * 1e-3);
        }
        let importance = ped_anova(&space(), &trials, 0.1);
        assert_eq!(importance[0].0, "opt", "{importance:?}");
    }

    #[test]
    fn too_few_trials_give_no_importance() {
        let trials = history();
        assert!(ped_anova(&space(), &trials[..1], 0.1).iter().all(|(_, s)| *s == 0.0));
        assert_eq!(ped_anova(&space(), &[], 0.1).len(), 3);
    }
}
