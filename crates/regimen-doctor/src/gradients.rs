//! `gradient_flow` during and after training: the per-layer gradient norms a run logs every few
//! steps (`grad_norm.<layer>`, and `grad_norm` for the whole model), judged for the two ways
//! gradients fail.
//!
//! - **Exploding**: the global norm is not finite, or jumps to [`EXPLODE_GROWTH`] times the median
//!   of the norms logged before it (a spike that usually comes with a loss spike).
//! - **Vanishing**: the smallest layer norm is below [`VANISH_RATIO`] of the largest, so that layer
//!   (usually one near the input) barely learns while the others do.
//!
//! [`GradientWatch`] judges the norms as they arrive, for warnings while the run trains, and
//! [`gradient_flow`] replays it over a finished run's series for `regimen diagnose`. Like the rest
//! of the crate it works on numbers only.

use crate::Check;
use crate::diagnose::MetricSeries;
use crate::format::{fmt_num, num};
use regimen_metrics::median;

/// Key of the global gradient norm series; each layer's is this with `.<layer>` appended.
pub const GRAD_NORM_KEY: &str = "grad_norm";

/// A global norm at least this many times the median of the earlier ones is a spike. Norms drift by
/// a factor of a few over a healthy run; an order of magnitude at once is a blow-up in progress.
pub const EXPLODE_GROWTH: f64 = 10.0;

/// Logged norms needed before a spike can be judged against their median.
pub const EXPLODE_HISTORY: usize = 3;

/// A layer whose gradient norm is below this fraction of the largest layer's barely moves: with
/// Adam it still takes steps, but with SGD its updates are a ten-thousandth of the others'.
pub const VANISH_RATIO: f64 = 1e-4;

/// Judges the gradient norms of a run as they are logged, and says so once per problem.
#[derive(Debug, Clone, Default)]
pub struct GradientWatch {
    earlier: Vec<f64>,
    exploding: Option<Check>,
    vanishing: Option<Check>,
}

impl GradientWatch {
    /// A watch that has seen nothing yet.
    pub fn new() -> GradientWatch {
        GradientWatch::default()
    }

    /// Takes the norms of one step, `(layer, norm)` per layer, and returns the warnings they raise
    /// for the first time in this run (exploding, vanishing; at most one of each per run).
    pub fn observe(&mut self, step: u64, epoch: u64, layers: &[(String, f64)]) -> Vec<Check> {
        let mut raised = Vec::new();
        let global = layers.iter().map(|(_, n)| n * n).sum::<f64>().sqrt();
        if self.exploding.is_none()
            && let Some(check) = exploding(step, epoch, global, &self.earlier)
        {
            self.exploding = Some(check.clone());
            raised.push(check);
        }
        if self.vanishing.is_none()
            && let Some(check) = vanishing(step, epoch, layers)
        {
            self.vanishing = Some(check.clone());
            raised.push(check);
        }
        if global.is_finite() {
            self.earlier.push(global);
        }
        raised
    }

    /// The verdict on everything observed: the first problem of each kind, or a pass.
    pub fn verdict(&self) -> Check {
        let problems: Vec<&Check> = self.exploding.iter().chain(&self.vanishing).collect();
        match problems.as_slice() {
            [] => {
                let (low, high) =
                    self.earlier.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &n| (lo.min(n), hi.max(n)));
                let mut check = if self.earlier.is_empty() {
                    Check::warn("gradient_flow", "No gradient norms were logged (--grad-norm-every 0?).")
                } else {
                    Check::pass(
                        "gradient_flow",
                        format!(
                            "Gradient norms stayed in a healthy range over {} logged steps: global norm from {} to {}, \
                             no spike and no layer below {VANISH_RATIO:e} of the largest.",
                            self.earlier.len(),
                            fmt_num(low),
                            fmt_num(high)
                        ),
                    )
                };
                check.measure("logged_steps", self.earlier.len());
                check.measure("min_global_norm", num(low));
                check.measure("max_global_norm", num(high));
                check
            }
            [one] => (*one).clone(),
            [first, second, ..] => {
                let mut check = (*first).clone();
                check.message = format!("{} {}", first.message, second.message);
                check.advice = Some(format!(
                    "{} {}",
                    first.advice.clone().unwrap_or_default(),
                    second.advice.clone().unwrap_or_default()
                ));
                check.measured.extend(second.measured.clone());
                check
            }
        }
    }
}

fn exploding(step: u64, epoch: u64, global: f64, earlier: &[f64]) -> Option<Check> {
    let advice = "Lower the learning rate (--lr, by 3-10×), add gradient clipping (--grad-clip 1.0), or use a warmup schedule; \
                  check the inputs are normalized.";
    if !global.is_finite() {
        let mut check = Check::warn(
            "gradient_flow",
            format!("Exploding gradients: the gradient norm became {global} at step {step} (epoch {epoch})."),
        )
        .with_advice(advice);
        check.measure("exploding_step", step);
        return Some(check);
    }
    if earlier.len() < EXPLODE_HISTORY {
        return None;
    }
    let median = median(earlier.iter().copied())?;
    if median > 0.0 && global >= EXPLODE_GROWTH * median {
        let mut check = Check::warn(
            "gradient_flow",
            format!(
                "Exploding gradients: the global gradient norm jumped to {} at step {step} (epoch {epoch}), {:.0}× the median {} of the earlier logged steps.",
                fmt_num(global),
                global / median,
                fmt_num(median)
            ),
        )
        .with_advice(advice);
        check.measure("exploding_step", step);
        check.measure("exploding_norm", num(global));
        check.measure("median_norm", num(median));
        return Some(check);
    }
    None
}

fn vanishing(step: u64, epoch: u64, layers: &[(String, f64)]) -> Option<Check> {
    let finite = || layers.iter().filter(|(_, n)| n.is_finite());
    let (largest, high) = finite().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let (smallest, low) = finite().min_by(|a, b| a.1.total_cmp(&b.1))?;
    if layers.len() < 2 || *high <= 0.0 || *low >= VANISH_RATIO * high {
        return None;
    }
    let mut check = Check::warn(
        "gradient_flow",
        format!(
            "Vanishing gradients: at step {step} (epoch {epoch}) layer {smallest} gets a gradient norm of {}, {:.1e} of the {} of {largest}; it barely learns.",
            fmt_num(*low),
            low / high,
            fmt_num(*high)
        ),
    )
    .with_advice(
        "Use ReLU-family activations instead of sigmoid/tanh, add batch normalization or residual connections (--model resnet), \
         check the initialization, or make the network shallower.",
    );
    check.measure("vanishing_step", step);
    check.measure("vanishing_layer", smallest.as_str());
    check.measure("vanishing_ratio", num(low / high));
    Some(check)
}

/// The `gradient_flow` verdict on a run's logged series: [`GradientWatch`] replayed over the
/// `grad_norm.<layer>` points step by step. `None` when the run logged no gradient norms.
pub fn gradient_flow(metrics: &MetricSeries) -> Option<Check> {
    let prefix = format!("{GRAD_NORM_KEY}.");
    let mut steps: std::collections::BTreeMap<u64, (u64, Vec<(String, f64)>)> = Default::default();
    for (key, points) in metrics {
        let Some(layer) = key.strip_prefix(&prefix) else { continue };
        for &(step, epoch, value) in points {
            steps.entry(step).or_insert_with(|| (epoch, Vec::new())).1.push((layer.to_string(), value));
        }
    }
    if steps.is_empty() {
        return None;
    }
    let mut watch = GradientWatch::new();
    for (step, (epoch, layers)) in &steps {
        watch.observe(*step, *epoch, layers);
    }
    Some(watch.verdict())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus;

    fn layers(norms: &[f64]) -> Vec<(String, f64)> {
        norms.iter().enumerate().map(|(i, &n)| (format!("layer{i}"), n)).collect()
    }

    #[test]
    fn steady_norms_pass() {
        let mut watch = GradientWatch::new();
        for step in 1..=20 {
            assert!(watch.observe(step, 1, &layers(&[0.5, 1.0 + step as f64 * 0.01, 2.0])).is_empty());
        }
        assert_eq!(watch.verdict().status, CheckStatus::Pass);
    }

    #[test]
    fn a_spike_over_ten_times_the_median_warns_once() {
        let mut watch = GradientWatch::new();
        for step in 1..=5 {
            watch.observe(step, 1, &layers(&[1.0, 1.0]));
        }
        let raised = watch.observe(6, 2, &layers(&[20.0, 20.0]));
        assert_eq!(raised.len(), 1);
        assert!(
            raised[0].message.contains("Exploding") && raised[0].message.contains("step 6"),
            "{}",
            raised[0].message
        );
        assert!(watch.observe(7, 2, &layers(&[40.0, 40.0])).is_empty(), "warns once");
        assert_eq!(watch.verdict().status, CheckStatus::Warn);
    }

    #[test]
    fn a_spike_needs_history_and_growth_below_the_factor_is_fine() {
        let mut watch = GradientWatch::new();
        assert!(watch.observe(1, 1, &layers(&[1.0])).is_empty());
        assert!(watch.observe(2, 1, &layers(&[100.0])).is_empty(), "two earlier norms are not a median yet");
        let mut steady = GradientWatch::new();
        for step in 1..=4 {
            steady.observe(step, 1, &layers(&[1.0]));
        }
        assert!(steady.observe(5, 1, &layers(&[9.0])).is_empty());
    }

    #[test]
    fn a_non_finite_norm_is_exploding_at_once() {
        let mut watch = GradientWatch::new();
        let raised = watch.observe(1, 1, &layers(&[f64::NAN, 1.0]));
        assert_eq!(raised.len(), 1);
        assert!(raised[0].message.contains("NaN"));
    }

    #[test]
    fn a_layer_far_below_the_largest_is_vanishing() {
        let mut watch = GradientWatch::new();
        let raised = watch.observe(10, 1, &layers(&[1e-7, 1e-3, 1.0]));
        assert_eq!(raised.len(), 1);
        assert!(raised[0].message.contains("layer0"), "{}", raised[0].message);
        assert_eq!(raised[0].measured["vanishing_layer"], "layer0");
        assert!(watch.observe(11, 1, &layers(&[1e-3, 1.0])).is_empty(), "1e-3 of the largest is fine");
    }

    #[test]
    fn both_problems_are_in_the_verdict() {
        let mut watch = GradientWatch::new();
        for step in 1..=3 {
            watch.observe(step, 1, &layers(&[1.0, 1.0]));
        }
        watch.observe(4, 1, &layers(&[1e-9, 50.0]));
        let verdict = watch.verdict();
        assert!(verdict.message.contains("Exploding") && verdict.message.contains("Vanishing"), "{}", verdict.message);
    }

    #[test]
    fn the_series_of_a_run_are_replayed_step_by_step() {
        let mut metrics = MetricSeries::new();
        assert!(gradient_flow(&metrics).is_none());
        metrics.insert("grad_norm".into(), vec![(1, 1, 1.4)]);
        metrics
            .insert("grad_norm.input".into(), (1..=6).map(|s| (s * 10, 1, if s == 6 { 1e-9 } else { 1.0 })).collect());
        metrics.insert("grad_norm.output".into(), (1..=6).map(|s| (s * 10, 1, 1.0)).collect());
        let check = gradient_flow(&metrics).unwrap();
        assert_eq!(check.status, CheckStatus::Warn);
        assert!(check.message.contains("step 60") && check.message.contains("input"), "{}", check.message);
    }
}
