//! The trivial baselines every model check is measured against: what a model that ignores its
//! input can do.
//!
//! For classification that model predicts the class priors of the train split: its cross-entropy is
//! the entropy of the priors and its accuracy the share of the majority class. A freshly
//! initialized network should predict roughly uniform probabilities, whose cross-entropy is `ln C`
//! whatever the labels are. For regression the trivial model predicts the train mean, with a mean
//! squared error equal to the target variance; a fresh network predicts roughly zero, with an
//! error of the mean square of the targets.

use regimen_data::{Samples, Targets, Task};
use regimen_metrics::Moments;

/// Smallest prior used for a class with no train sample, so that its log prior stays finite.
const MIN_PRIOR: f64 = 1e-8;

/// What a model that ignores its input achieves on the train split.
#[derive(Debug, Clone, PartialEq)]
pub enum TrivialBaseline {
    /// Classification.
    Classification {
        /// Share of each class in the train split.
        priors: Vec<f64>,
        /// The label smoothing of the loss, which raises every cross-entropy.
        smoothing: f64,
    },
    /// Regression.
    Regression {
        /// Mean of the train targets.
        mean: f64,
        /// Population variance of the train targets.
        variance: f64,
    },
}

impl TrivialBaseline {
    /// The baseline of `train` for `task`, with the loss's label smoothing.
    pub fn of(task: &Task, train: &Samples, smoothing: f64) -> TrivialBaseline {
        match (task, &train.targets) {
            (Task::Classification { classes }, Targets::Classes(labels)) => {
                let mut counts = vec![0usize; classes.len().max(1)];
                for &label in labels {
                    if let Some(count) = counts.get_mut(label as usize) {
                        *count += 1;
                    }
                }
                let total = counts.iter().sum::<usize>().max(1) as f64;
                TrivialBaseline::Classification {
                    priors: counts.iter().map(|&c| c as f64 / total).collect(),
                    smoothing,
                }
            }
            (_, Targets::Values(values)) => {
                let targets = Moments::of(values.iter().map(|&v| f64::from(v)));
                TrivialBaseline::Regression {
                    mean: targets.mean().unwrap_or(0.0),
                    variance: targets.variance().unwrap_or(0.0),
                }
            }
            (_, Targets::Classes(_)) => TrivialBaseline::Regression { mean: 0.0, variance: 0.0 },
        }
    }

    /// The loss of a neutral initialization: `ln C` for uniform class probabilities (with or
    /// without label smoothing), or the mean square of the targets for outputs of zero.
    pub fn neutral_loss(&self) -> f64 {
        match self {
            TrivialBaseline::Classification { priors, .. } => (priors.len() as f64).ln(),
            TrivialBaseline::Regression { mean, variance } => variance + mean * mean,
        }
    }

    /// The lowest loss a model that ignores its input can reach: the entropy of the (smoothed)
    /// label priors, or the target variance.
    pub fn constant_loss(&self) -> f64 {
        match self {
            TrivialBaseline::Classification { priors, smoothing } => {
                let k = priors.len() as f64;
                priors
                    .iter()
                    .map(|&p| (1.0 - smoothing) * p + smoothing / k)
                    .filter(|&q| q > 0.0)
                    .map(|q| -q * q.ln())
                    .sum()
            }
            TrivialBaseline::Regression { variance, .. } => *variance,
        }
    }

    /// The output bias that makes a network with zero output weights the best constant model:
    /// the log priors, or the target mean.
    pub fn output_bias(&self) -> Vec<f32> {
        match self {
            TrivialBaseline::Classification { priors, .. } => {
                priors.iter().map(|&p| p.max(MIN_PRIOR).ln() as f32).collect()
            }
            TrivialBaseline::Regression { mean, .. } => vec![*mean as f32],
        }
    }

    /// Accuracy of always answering the majority class; `None` for regression.
    pub fn majority_share(&self) -> Option<f64> {
        match self {
            TrivialBaseline::Classification { priors, .. } => Some(priors.iter().copied().fold(0.0, f64::max)),
            TrivialBaseline::Regression { .. } => None,
        }
    }

    /// Whether every class has the same share (within one sample in a thousand).
    pub fn balanced(&self) -> bool {
        match self {
            TrivialBaseline::Classification { priors, .. } => {
                let uniform = 1.0 / priors.len() as f64;
                priors.iter().all(|p| (p - uniform).abs() < 1e-3)
            }
            TrivialBaseline::Regression { .. } => false,
        }
    }

    /// The trivial model in words, for messages.
    pub fn describe(&self) -> String {
        match self {
            TrivialBaseline::Classification { .. } => "predicting the class priors".into(),
            TrivialBaseline::Regression { .. } => "predicting the mean".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(labels: Vec<u32>, k: usize) -> (Task, Samples) {
        let task = Task::Classification { classes: (0..k).map(|c| c.to_string()).collect() };
        let n = labels.len();
        (task, Samples { shape: vec![1], features: vec![0.0; n], targets: Targets::Classes(labels) })
    }

    #[test]
    fn balanced_classes_have_ln_c_everywhere() {
        let (task, train) = classes((0..100).map(|i| i % 5).collect(), 5);
        let baseline = TrivialBaseline::of(&task, &train, 0.0);
        assert!((baseline.neutral_loss() - 5f64.ln()).abs() < 1e-12);
        assert!((baseline.constant_loss() - 5f64.ln()).abs() < 1e-12);
        assert_eq!(baseline.majority_share(), Some(0.2));
        assert!(baseline.balanced());
    }

    #[test]
    fn imbalanced_classes_have_a_lower_prior_entropy() {
        let (task, train) = classes((0..100).map(|i| u32::from(i >= 90)).collect(), 2);
        let baseline = TrivialBaseline::of(&task, &train, 0.0);
        let entropy = -(0.9f64 * 0.9f64.ln() + 0.1 * 0.1f64.ln());
        assert!((baseline.constant_loss() - entropy).abs() < 1e-12);
        assert!((baseline.neutral_loss() - 2f64.ln()).abs() < 1e-12);
        assert_eq!(baseline.majority_share(), Some(0.9));
        assert!(!baseline.balanced());
        let bias = baseline.output_bias();
        assert!((f64::from(bias[0]) - 0.9f64.ln()).abs() < 1e-6);
        // Smoothing pulls the targets toward uniform, so the entropy rises.
        assert!(TrivialBaseline::of(&task, &train, 0.2).constant_loss() > entropy);
    }

    #[test]
    fn regression_uses_mean_and_variance() {
        let train =
            Samples { shape: vec![1], features: vec![0.0; 4], targets: Targets::Values(vec![1.0, 2.0, 3.0, 4.0]) };
        let baseline = TrivialBaseline::of(&Task::Regression, &train, 0.0);
        assert_eq!(baseline.constant_loss(), 1.25);
        assert_eq!(baseline.neutral_loss(), 1.25 + 2.5 * 2.5);
        assert_eq!(baseline.output_bias(), vec![2.5]);
        assert_eq!(baseline.majority_share(), None);
    }
}
