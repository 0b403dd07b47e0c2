//! Live diagnosis while a run trains: per-layer gradient norms every few steps with exploding and
//! vanishing warnings, an overfitting warning as soon as the evaluations show it, the predictions
//! on a fixed validation batch at each epoch end, and the recipe's verdict when the run ends.
//!
//! Everything goes to the run's event sink: the norms as `grad_norm.<layer>` and `grad_norm`
//! scalars, warnings as notices, the predictions as `predictions` reports and the final verdict
//! as a `diagnosis` report, so `regimen diagnose RUN` can show all of it later. The judging itself
//! is `regimen_doctor`'s (pure functions on numbers); this module only measures and records.

use burn::prelude::*;
use regimen_data::{BatchBuilder, BatchTargets, PreparedData, Targets, Task};
use regimen_doctor::diagnose::{DIAGNOSIS_REPORT, DiagnoseOptions, MetricSeries, PREDICTIONS_REPORT, diagnose};
use regimen_doctor::format::round_to;
use regimen_doctor::gradients::{GRAD_NORM_KEY, GradientWatch};
use regimen_doctor::{Check, CheckStatus};
use regimen_events::{Event, EventSink};
use regimen_metrics::{TaskInfo, argmax};
use serde_json::json;

use crate::batches::{EpochPlan, HostBatch};
use crate::error::TrainError;
use crate::evaluate::host_outputs;
use crate::model::Network;
use crate::observer::EpochSummary;
use crate::trainer::Reporter;

/// What the live diagnosis keeps between steps and epochs.
pub struct LiveDiagnosis {
    grad_norm_every: u64,
    watch: GradientWatch,
    task: TaskInfo,
    overfitting_announced: bool,
    probe: Option<Probe>,
}

/// The fixed validation batch whose predictions are recorded each epoch.
struct Probe {
    features: Vec<f32>,
    targets: BatchTargets,
    len: usize,
}

impl LiveDiagnosis {
    /// Prepares the diagnosis of a run on `data`: gradient norms every `grad_norm_every` steps
    /// (0: never) and predictions on the first `prediction_samples` validation samples (0: none).
    pub fn new(data: &PreparedData, grad_norm_every: u64, prediction_samples: usize) -> LiveDiagnosis {
        let len = prediction_samples.min(data.val.len());
        let probe = (len > 0).then(|| {
            let order: Vec<u32> = (0..len as u32).collect();
            let plan = EpochPlan {
                samples: &data.val,
                order: &order,
                batch_size: len,
                training: false,
                augment: None,
                first_batch: 0,
            };
            let HostBatch { features, targets, len } = plan.build(&BatchBuilder, 0);
            Probe { features, targets, len }
        });
        LiveDiagnosis {
            grad_norm_every,
            watch: GradientWatch::new(),
            task: task_info(data),
            overfitting_announced: false,
            probe,
        }
    }

    /// Whether the gradients of the step that makes the run's step count `step` are measured: the
    /// first step (a reference at init), every `grad_norm_every`-th, and the last of each epoch (so
    /// that short runs get one point per epoch).
    pub fn gradients_due(&self, step: u64, last_of_epoch: bool) -> bool {
        self.grad_norm_every > 0 && (step == 1 || last_of_epoch || step.is_multiple_of(self.grad_norm_every))
    }

    /// Logs the per-layer gradient norms a step measured (before its update) at `step`, and
    /// raises the exploding and vanishing warnings the first time they apply.
    pub fn log_gradients(
        &mut self,
        norms: &[(String, f64)],
        (step, epoch): (u64, u64),
        reporter: &mut Reporter<'_>,
    ) -> Result<(), TrainError> {
        let sink = &mut *reporter.sink;
        let global = norms.iter().map(|(_, n)| n * n).sum::<f64>().sqrt();
        sink.record(&Event::Scalar { key: GRAD_NORM_KEY, step, epoch, value: global })?;
        for (layer, value) in norms {
            sink.record(&Event::Scalar { key: &format!("{GRAD_NORM_KEY}.{layer}"), step, epoch, value: *value })?;
        }
        for check in self.watch.observe(step, epoch, norms) {
            announce(&check, reporter)?;
        }
        Ok(())
    }

    /// At an epoch end: records the predictions of `model` (in validation mode, on `device`) on the
    /// fixed batch, and warns the first time the evaluations so far show overfitting.
    pub fn epoch_end<M: Network>(
        &mut self,
        model: &M,
        device: &Device,
        history: &[EpochSummary],
        reporter: &mut Reporter<'_>,
    ) -> Result<(), TrainError> {
        let Some(last) = history.last() else { return Ok(()) };
        if let Some(probe) = &self.probe {
            let input = Tensor::from_data(
                TensorData::new(probe.features.clone(), [probe.len, probe.features.len() / probe.len]),
                device,
            );
            let outputs = host_outputs(model.forward(input))?;
            let body = predictions(&outputs, &probe.targets, probe.len);
            let report = Event::Report { split: PREDICTIONS_REPORT, step: last.step, epoch: last.epoch, body: &body };
            reporter.sink.record(&report)?;
        }
        if !self.overfitting_announced {
            let overfitting =
                diagnose(&series_of(history), &self.task, &DiagnoseOptions::default()).into_iter().find(|c| {
                    c.name == "overfitting" && c.status != CheckStatus::Pass && c.measured.contains_key("best_epoch")
                });
            if let Some(check) = overfitting {
                self.overfitting_announced = true;
                announce(&check, reporter)?;
            }
        }
        Ok(())
    }

    /// The verdict on the run: underfitting, bias and variance, overfitting from the epoch
    /// summaries, and gradient flow from the norms this process logged. Recorded as the
    /// `diagnosis` report and returned.
    pub fn finish(&self, history: &[EpochSummary], sink: &mut dyn EventSink) -> Result<Vec<Check>, TrainError> {
        let Some(last) = history.last() else { return Ok(Vec::new()) };
        let mut checks = diagnose(&series_of(history), &self.task, &DiagnoseOptions::default());
        if self.grad_norm_every > 0 {
            checks.push(self.watch.verdict());
        }
        let body = json!({ "checks": checks });
        sink.record(&Event::Report { split: DIAGNOSIS_REPORT, step: last.step, epoch: last.epoch, body: &body })?;
        Ok(checks)
    }
}

/// Records a warning as a notice on the run and shows it.
fn announce(check: &Check, reporter: &mut Reporter<'_>) -> Result<(), TrainError> {
    let message = match &check.advice {
        Some(advice) => format!("{} {advice}", check.message),
        None => check.message.clone(),
    };
    reporter.notice("warn", &message)
}

/// What the run predicts, with the facts of its trivial baseline from the train split: the share
/// of the most frequent class, or the variance of the targets (the error of predicting their mean).
pub fn task_info(data: &PreparedData) -> TaskInfo {
    match (&data.task, &data.train.targets) {
        (Task::Classification { classes }, Targets::Classes(labels)) => {
            let mut counts = vec![0usize; classes.len()];
            for &label in labels {
                if let Some(count) = counts.get_mut(label as usize) {
                    *count += 1;
                }
            }
            let majority = counts.iter().max().copied().unwrap_or(0);
            let share = (!labels.is_empty()).then(|| majority as f64 / labels.len() as f64);
            TaskInfo::Classification { classes: classes.len(), majority_share: share }
        }
        (_, Targets::Values(values)) => {
            // Two passes (mean, then squared deviations): exact enough whatever the offset.
            let n = values.len() as f64;
            let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let variance = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
            TaskInfo::Regression { target_variance: (!values.is_empty() && variance.is_finite()).then_some(variance) }
        }
        _ => TaskInfo::Regression { target_variance: None },
    }
}

/// The epoch summaries as metric series.
fn series_of(history: &[EpochSummary]) -> MetricSeries {
    let mut series = MetricSeries::new();
    for summary in history {
        for (key, &value) in &summary.metrics {
            series.entry(key.clone()).or_default().push((summary.step, summary.epoch, value));
        }
    }
    series
}

/// The predictions on the fixed batch as a report body: for classification the predicted class,
/// its probability and the probability of the true class; for regression the predicted value.
fn predictions(outputs: &[f32], targets: &BatchTargets, len: usize) -> serde_json::Value {
    let width = outputs.len() / len.max(1);
    match targets {
        BatchTargets::Classes(labels) => {
            let mut predicted = Vec::with_capacity(len);
            let mut confidence = Vec::with_capacity(len);
            let mut true_probability = Vec::with_capacity(len);
            for (row, &label) in outputs.chunks_exact(width.max(1)).zip(labels) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exps: Vec<f64> = row.iter().map(|&x| f64::from(x - max).exp()).collect();
                let total: f64 = exps.iter().sum();
                let class = argmax(row).unwrap_or(0);
                predicted.push(class);
                confidence.push(round_to(exps.get(class).copied().unwrap_or(0.0) / total, 4));
                true_probability.push(round_to(exps.get(label as usize).copied().unwrap_or(0.0) / total, 4));
            }
            json!({ "targets": labels, "predicted": predicted, "confidence": confidence, "true_class_probability": true_probability })
        }
        BatchTargets::Values(values) => {
            let predicted: Vec<f64> =
                outputs.iter().step_by(width.max(1)).map(|&v| round_to(f64::from(v), 4)).collect();
            json!({ "targets": values, "predicted": predicted })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_predictions_carry_the_class_and_probabilities() {
        let outputs = [0.0f32, 2.0, 0.0, 5.0, 0.0, 0.0];
        let body = predictions(&outputs, &BatchTargets::Classes(vec![1, 1]), 2);
        assert_eq!(body["predicted"], json!([1, 0]));
        assert_eq!(body["targets"], json!([1, 1]));
        let confidence = body["confidence"].as_array().unwrap();
        assert!((confidence[0].as_f64().unwrap() - 0.7870).abs() < 1e-4);
        assert!(body["true_class_probability"][1].as_f64().unwrap() < 0.01);
    }

    #[test]
    fn regression_predictions_are_the_values() {
        let body = predictions(&[1.5, -2.0], &BatchTargets::Values(vec![1.0, -1.0]), 2);
        assert_eq!(body["predicted"], json!([1.5, -2.0]));
    }

    #[test]
    fn gradients_are_measured_at_the_first_step_and_every_n() {
        let live = |every| LiveDiagnosis {
            grad_norm_every: every,
            watch: GradientWatch::new(),
            task: TaskInfo::Regression { target_variance: None },
            overfitting_announced: false,
            probe: None,
        };
        assert!(
            live(50).gradients_due(1, false) && live(50).gradients_due(50, false) && live(50).gradients_due(100, false)
        );
        assert!(!live(50).gradients_due(2, false) && !live(50).gradients_due(49, false));
        assert!(live(50).gradients_due(49, true), "the last step of an epoch");
        assert!(!live(0).gradients_due(1, true));
    }
}
