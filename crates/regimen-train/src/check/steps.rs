//! The training step the checks take, exactly as `fit` takes it, and the batches they feed it.
//!
//! The checks must judge the training a run would do, not a look-alike: the same epoch order, the
//! same augmentation, the same random streams per step (`step_seed`), the same loss, optimizer and
//! learning rate. So a step here is `fit`'s step (seed the device from the step, forward, loss,
//! backward, optimizer step) with optional probes that read gradients before the update and
//! measure the update after it; the probes only read, so a probed step changes nothing.

use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use regimen_data::{Augment, BatchBuilder, BatchTargets, Samples, Task, epoch_order};

use super::grads::{LayerGradient, WeightSnapshot, global_grad_norm, layer_gradients};
use crate::batches::{EpochPlan, HostBatch, batch_count};
use crate::config::TrainConfig;
use crate::evaluate::{Objective, host_outputs};
use crate::model::Network;
use crate::optim::build_optimizer;
use crate::state::step_seed;

/// How much a step measures besides its loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// Nothing.
    Off,
    /// The global gradient norm.
    Norm,
    /// The global norm, every layer's gradient and the update-to-weight ratios.
    Layers,
}

/// What a probed step measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepProbe {
    /// Global gradient norm.
    pub grad_norm: Option<f64>,
    /// Per-layer gradients, before the update.
    pub layers: Vec<LayerGradient>,
    /// Per-layer update-to-weight ratios of the update.
    pub update_ratios: Vec<(String, f64)>,
}

/// One step's outcome.
pub(crate) struct StepResult {
    /// Mean loss of the batch, before the update.
    pub loss: f64,
    /// The model's outputs on the batch, before the update.
    pub outputs: Vec<f32>,
    /// What the probe measured.
    pub probe: StepProbe,
}

/// Takes training steps with the configured optimizer and loss, seeding each step as `fit` does.
pub(crate) struct Stepper {
    optimizer: ModuleOptimizer,
    objective: Objective,
    seed: u64,
    /// Steps taken so far (the next step's index).
    pub step: u64,
}

impl Stepper {
    /// A stepper for `config`'s optimizer and seed, with a loss for `task` smoothed by `smoothing`.
    pub fn new(config: &TrainConfig, task: &Task, smoothing: f64, device: &Device) -> Stepper {
        Stepper {
            optimizer: build_optimizer(config),
            objective: Objective::for_task(task, smoothing, device),
            seed: config.seed,
            step: 0,
        }
    }

    /// One step on `batch` at learning rate `lr`.
    pub fn step<M: Network>(
        &mut self,
        model: M,
        batch: &mut HostBatch,
        lr: f64,
        device: &Device,
        probe: Probe,
    ) -> (M, StepResult) {
        device.seed(step_seed(self.seed, self.step));
        let outputs = model.forward(batch.input(device));
        let loss = self.objective.loss(outputs.clone(), &batch.targets, device);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut measured = StepProbe::default();
        let snapshot = (probe == Probe::Layers).then(|| WeightSnapshot::of(&model));
        if probe != Probe::Off {
            measured.grad_norm = Some(global_grad_norm(&model, &grads));
        }
        if probe == Probe::Layers {
            measured.layers = layer_gradients(&model, &grads);
        }
        let model = self.optimizer.step(lr, model, grads);
        if let Some(snapshot) = snapshot {
            measured.update_ratios = snapshot.update_ratios(&model);
        }
        let loss = f64::from(loss.into_scalar::<f32>());
        let outputs = host_outputs(outputs.detach());
        self.step += 1;
        (model, StepResult { loss, outputs, probe: measured })
    }
}

/// The training batches of a run, epoch after epoch, as `fit` draws them: the order of epoch `e`
/// from `(seed, e)` and each sample's augmentation from its position.
pub(crate) struct TrainBatches<'a> {
    samples: &'a Samples,
    batch_size: usize,
    seed: u64,
    augment: Option<Augment>,
    epoch: u64,
    order: Vec<u32>,
    next: usize,
    per_epoch: usize,
}

impl<'a> TrainBatches<'a> {
    /// The batches `config` trains on from `samples`; `augment` false turns augmentation off.
    pub fn new(samples: &'a Samples, config: &TrainConfig, augment: bool) -> TrainBatches<'a> {
        let augmentation = Augment {
            hflip: config.augment_flip,
            crop_padding: config.augment_crop,
            rotate_degrees: config.augment_rotate,
            noise_std: config.augment_noise,
        };
        TrainBatches {
            samples,
            batch_size: config.batch_size,
            seed: config.seed,
            augment: (augment && !augmentation.is_identity()).then_some(augmentation),
            epoch: 1,
            order: epoch_order(config.seed, 1, samples.len()),
            next: 0,
            per_epoch: batch_count(samples.len(), config.batch_size, true),
        }
    }
}

impl Iterator for TrainBatches<'_> {
    type Item = HostBatch;

    fn next(&mut self) -> Option<HostBatch> {
        if self.per_epoch == 0 {
            return None;
        }
        if self.next == self.per_epoch {
            self.epoch += 1;
            self.order = epoch_order(self.seed, self.epoch, self.samples.len());
            self.next = 0;
        }
        let plan = EpochPlan {
            samples: self.samples,
            order: &self.order,
            batch_size: self.batch_size,
            training: true,
            augment: self.augment.as_ref().map(|a| (a, self.seed, self.epoch)),
            first_batch: 0,
        };
        let batch = plan.build(&BatchBuilder, self.next);
        self.next += 1;
        Some(batch)
    }
}

/// A batch of the samples at `indices`, without augmentation.
pub(crate) fn fixed_batch(samples: &Samples, indices: &[u32]) -> HostBatch {
    let mut features = Vec::with_capacity(indices.len() * samples.sample_len());
    let mut targets = BatchTargets::default();
    BatchBuilder.fill(samples, indices, None, &mut features, &mut targets);
    HostBatch { features, targets, len: indices.len() }
}

/// The share of correct answers in a batch's outputs (`classes` logits per sample); `None` for
/// regression.
pub(crate) fn batch_accuracy(outputs: &[f32], targets: &BatchTargets) -> Option<f64> {
    let BatchTargets::Classes(labels) = targets else { return None };
    if labels.is_empty() {
        return None;
    }
    let classes = outputs.len() / labels.len();
    let correct = outputs
        .chunks_exact(classes.max(1))
        .zip(labels)
        .filter(|(row, label)| {
            let best = row
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best });
            best.0 as i64 == **label
        })
        .count();
    Some(correct as f64 / labels.len() as f64)
}

/// A copy of `samples` with every feature zero: the input of the input-independent baseline.
pub(crate) fn zeroed(samples: &Samples) -> Samples {
    Samples {
        shape: samples.shape.clone(),
        features: vec![0.0; samples.features.len()],
        targets: samples.targets.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regimen_data::Targets;

    fn samples(n: usize) -> Samples {
        Samples {
            shape: vec![2],
            features: (0..2 * n).map(|v| v as f32).collect(),
            targets: Targets::Classes((0..n as u32).map(|i| i % 2).collect()),
        }
    }

    #[test]
    fn batches_follow_the_epoch_orders_of_fit() {
        let data = samples(10);
        let config = TrainConfig { batch_size: 4, ..TrainConfig::default() };
        let batches: Vec<HostBatch> = TrainBatches::new(&data, &config, true).take(4).collect();
        // 10 samples in batches of 4: 4, 4, 2, then epoch 2.
        assert_eq!(batches.iter().map(|b| b.len).collect::<Vec<_>>(), [4, 4, 2, 4]);
        let first = epoch_order(config.seed, 1, 10);
        assert_eq!(batches[0].features[..2], *data.row(first[0] as usize));
        let second = epoch_order(config.seed, 2, 10);
        assert_eq!(batches[3].features[..2], *data.row(second[0] as usize));
    }

    #[test]
    fn accuracy_counts_argmax_hits() {
        let outputs = [0.1, 0.9, 2.0, -1.0, 0.0, 0.5];
        assert_eq!(batch_accuracy(&outputs, &BatchTargets::Classes(vec![1, 0, 0])), Some(2.0 / 3.0));
        assert_eq!(batch_accuracy(&[1.0], &BatchTargets::Values(vec![1.0])), None);
        assert_eq!(zeroed(&samples(3)).features, vec![0.0; 6]);
    }
}
