//! The batches the checks feed the trainer's own step ([`crate::step`]).
//!
//! The checks must judge the training a run would do, not a look-alike: the same epoch order, the
//! same augmentation, the same random streams per step, the same loss, optimizer and learning
//! rate. The step is shared with the trainer; this module draws the batches as the trainer does.

use regimen_data::{Augment, BatchBuilder, BatchTargets, Samples, epoch_order};
use regimen_metrics::argmax;

pub(crate) use crate::step::{Probe, StepProbe, Stepper};

use crate::batches::{EpochPlan, HostBatch, batch_count};
use crate::config::TrainConfig;

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
        let augmentation = config.augment();
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

/// The share of correct answers in a batch's outputs (`classes` logits per sample), with ties and
/// NaN logits resolved as the accuracy meter resolves them; `None` for regression.
pub(crate) fn batch_accuracy(outputs: &[f32], targets: &BatchTargets) -> Option<f64> {
    let BatchTargets::Classes(labels) = targets else { return None };
    if labels.is_empty() {
        return None;
    }
    let classes = outputs.len() / labels.len();
    let correct = outputs
        .chunks_exact(classes.max(1))
        .zip(labels)
        .filter(|(row, label)| argmax(row).is_some_and(|best| best as i64 == **label))
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
