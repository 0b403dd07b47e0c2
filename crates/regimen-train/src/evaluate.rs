//! Loss functions, metric meters and evaluation of a model on a split.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig, MseLoss, Reduction};
use burn::prelude::*;
use regimen_data::{BatchBuilder, BatchTargets, Samples, Task};
use regimen_metrics::{ClassificationMeter, RegressionMeter, Report};

use crate::batches::{EpochPlan, HostBatch};
use crate::error::TrainError;
use crate::model::Network;

/// The loss a task is trained with: cross-entropy (optionally label-smoothed) or mean squared error.
pub enum Objective {
    /// Classification (boxed: the loss module is large next to `MseLoss`).
    CrossEntropy(Box<CrossEntropyLoss>),
    /// Regression.
    Mse(MseLoss),
}

impl Objective {
    /// The objective for `task`.
    pub fn for_task(task: &Task, label_smoothing: f64, device: &Device) -> Self {
        match task {
            Task::Classification { .. } => {
                let smoothing = (label_smoothing > 0.0).then_some(label_smoothing as f32);
                Objective::CrossEntropy(Box::new(CrossEntropyLossConfig::new().with_smoothing(smoothing).init(device)))
            }
            Task::Regression => Objective::Mse(MseLoss::new()),
        }
    }

    /// Mean loss of `outputs` against a batch's targets.
    pub fn loss(&self, outputs: Tensor<2>, targets: &BatchTargets, device: &Device) -> Tensor<1> {
        match (self, targets) {
            (Objective::CrossEntropy(loss), BatchTargets::Classes(classes)) => {
                let n = classes.len();
                let targets = Tensor::from_data(TensorData::new(classes.clone(), [n]), device);
                loss.forward(outputs, targets)
            }
            (Objective::Mse(loss), BatchTargets::Values(values)) => {
                let n = values.len();
                let targets = Tensor::from_data(TensorData::new(values.clone(), [n, 1]), device);
                loss.forward(outputs, targets, Reduction::Mean).reshape([1])
            }
            _ => unreachable!("the objective and the targets both come from the same task"),
        }
    }
}

/// Accumulates metrics for either kind of task.
pub enum Meter {
    /// Classification metrics, with a scratch buffer for label conversion.
    Classification(ClassificationMeter, Vec<u32>),
    /// Regression metrics.
    Regression(RegressionMeter),
}

impl Meter {
    /// A meter for `task` reporting top-`top_k` accuracy (capped at the number of classes).
    pub fn for_task(task: &Task, top_k: usize) -> Result<Self, TrainError> {
        match task {
            Task::Classification { classes } => {
                let meter = ClassificationMeter::new(classes.len(), top_k.min(classes.len()))
                    .map_err(|e| TrainError::Model(e.to_string()))?;
                Ok(Meter::Classification(meter, Vec::new()))
            }
            Task::Regression => Ok(Meter::Regression(RegressionMeter::new())),
        }
    }

    /// Adds a batch: model outputs (host copy), its targets, and its mean loss.
    ///
    /// # Errors
    /// [`TrainError::OutputWidth`] when the outputs do not hold one row per target of the width
    /// the task needs: a user [`Network`] built for another number of classes.
    pub fn update(&mut self, outputs: &[f32], targets: &BatchTargets, mean_loss: f64) -> Result<(), TrainError> {
        let loss_sum = mean_loss * targets.len() as f64;
        let width =
            |expected: usize| TrainError::OutputWidth { values: outputs.len(), samples: targets.len(), expected };
        match (self, targets) {
            (Meter::Classification(meter, labels), BatchTargets::Classes(classes)) => {
                labels.clear();
                labels.extend(classes.iter().map(|&c| c as u32));
                meter.update(outputs, labels, loss_sum).map_err(|_| width(meter.num_classes()))
            }
            (Meter::Regression(meter), BatchTargets::Values(values)) => {
                meter.update(outputs, values, loss_sum).map_err(|_| width(1))
            }
            _ => unreachable!("the meter and the targets both come from the same task"),
        }
    }

    /// Forgets everything seen.
    pub fn reset(&mut self) {
        match self {
            Meter::Classification(meter, _) => meter.reset(),
            Meter::Regression(meter) => meter.reset(),
        }
    }

    /// Mean loss so far.
    pub fn loss(&self) -> f64 {
        match self {
            Meter::Classification(meter, _) => meter.loss(),
            Meter::Regression(meter) => meter.loss(),
        }
    }

    /// Accuracy so far, for classification.
    pub fn accuracy(&self) -> Option<f64> {
        match self {
            Meter::Classification(meter, _) => Some(meter.accuracy()),
            Meter::Regression(_) => None,
        }
    }

    /// What it has seen, to save in a checkpoint taken mid-epoch.
    pub fn state(&self) -> MeterState {
        match self {
            Meter::Classification(meter, _) => MeterState::Classification(meter.clone()),
            Meter::Regression(meter) => MeterState::Regression(meter.clone()),
        }
    }

    /// Continues from a saved state of a meter for the same task.
    pub fn restore(&mut self, state: MeterState) {
        match (self, state) {
            (Meter::Classification(meter, _), MeterState::Classification(saved)) => *meter = saved,
            (Meter::Regression(meter), MeterState::Regression(saved)) => *meter = saved,
            _ => {}
        }
    }

    /// The full report.
    pub fn report(&self) -> Report {
        match self {
            Meter::Classification(meter, _) => meter.report().into(),
            Meter::Regression(meter) => meter.report().into(),
        }
    }
}

/// A [`Meter`]'s accumulated values, as saved in a checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeterState {
    /// Classification sums and confusion matrix.
    Classification(ClassificationMeter),
    /// Regression sums.
    Regression(RegressionMeter),
}

/// Copies a batch of outputs to the host as `f32`s.
///
/// # Errors
/// [`TrainError::Model`] when the device's data cannot be read as `f32`s.
pub fn host_outputs(outputs: Tensor<2>) -> Result<Vec<f32>, TrainError> {
    outputs
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Model(format!("the model's outputs could not be read back from the device: {e:?}")))
}

/// Evaluates `model` (in validation mode, on a device without autodiff) on every sample of `samples`.
///
/// # Errors
/// When the model's outputs do not fit the task (see [`Meter::update`]) or cannot be read back.
pub fn evaluate<M: Network>(
    model: &M,
    samples: &Samples,
    objective: &Objective,
    meter: &mut Meter,
    batch_size: usize,
    device: &Device,
) -> Result<Report, TrainError> {
    let order: Vec<u32> = (0..samples.len() as u32).collect();
    let plan = EpochPlan { samples, order: &order, batch_size, training: false, augment: None, first_batch: 0 };
    let builder = BatchBuilder;
    meter.reset();
    for index in 0..plan.batches() {
        let mut batch: HostBatch = plan.build(&builder, index);
        let outputs = model.forward(batch.input(device));
        let loss = objective.loss(outputs.clone(), &batch.targets, device);
        let loss: f32 = loss.into_scalar();
        meter.update(&host_outputs(outputs)?, &batch.targets, f64::from(loss))?;
    }
    Ok(meter.report())
}
