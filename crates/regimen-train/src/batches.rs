//! Host batches: assembled (on a helper thread when augmentation makes that costly), then moved
//! into tensors.
//!
//! The order of samples is `epoch_order(seed, epoch)` and each sample's augmentation is seeded by
//! its position in the epoch, so what batch `i` of epoch `e` contains is a pure function of the
//! seed: a resumed run can start mid-epoch and see exactly the batches it would have seen. The
//! helper thread only copies rows and augments; it never touches the model or the RNG of the
//! backend, so prefetching changes timing, never results.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use burn::prelude::*;
use regimen_data::{Augment, BatchBuilder, BatchTargets, Samples};

/// One batch in host memory.
pub struct HostBatch {
    /// Row-major features, `len × sample_len`.
    pub features: Vec<f32>,
    /// Targets in the form the loss and the meters need.
    pub targets: BatchTargets,
    /// Samples in the batch.
    pub len: usize,
}

impl HostBatch {
    /// Inputs as a `[len, features]` tensor on `device` (the feature buffer moves, no copy).
    pub fn input(&mut self, device: &Device) -> Tensor<2> {
        let features = std::mem::take(&mut self.features);
        let width = features.len() / self.len.max(1);
        Tensor::from_data(TensorData::new(features, [self.len, width]), device)
    }
}

/// How one epoch's batches are drawn.
#[derive(Clone, Copy)]
pub struct EpochPlan<'a> {
    /// The samples to draw from.
    pub samples: &'a Samples,
    /// Sample order of the epoch.
    pub order: &'a [u32],
    /// Samples per batch.
    pub batch_size: usize,
    /// Whether the batches train the model (a trailing single sample is then dropped).
    pub training: bool,
    /// Augmentation with its seed and epoch; only ever set when training.
    pub augment: Option<(&'a Augment, u64, u64)>,
    /// Index of the first batch to produce (non-zero when resuming mid-epoch).
    pub first_batch: usize,
}

/// Number of batches `samples` samples make. A trailing batch of a single sample is dropped when
/// training (batch norm cannot normalize one sample); evaluation keeps every sample.
pub fn batch_count(samples: usize, batch_size: usize, training: bool) -> usize {
    let full = samples / batch_size;
    let rest = samples % batch_size;
    full + usize::from(rest > 1 || (rest == 1 && !training))
}

impl EpochPlan<'_> {
    /// Number of batches in the epoch.
    pub fn batches(&self) -> usize {
        batch_count(self.order.len(), self.batch_size, self.training)
    }

    /// Builds batch `index` into fresh buffers.
    pub fn build(&self, builder: &BatchBuilder, index: usize) -> HostBatch {
        let start = index * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        let indices = &self.order[start..end];
        let mut features = Vec::with_capacity(indices.len() * self.samples.sample_len());
        let mut targets = BatchTargets::default();
        let augment = self.augment.map(|(aug, seed, epoch)| (aug, seed, epoch, start as u64));
        builder.fill(self.samples, indices, augment, &mut features, &mut targets);
        HostBatch { features, targets, len: indices.len() }
    }

    /// Starts a helper thread that builds the epoch's batches ahead of use, two at a time.
    pub fn prefetch<'scope, 'env>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        builder: &'env BatchBuilder,
    ) -> Prefetch<'scope>
    where
        Self: 'env,
    {
        let (sender, receiver): (SyncSender<HostBatch>, Receiver<HostBatch>) = sync_channel(2);
        let handle = scope.spawn(move || {
            for index in self.first_batch..self.batches() {
                if sender.send(self.build(builder, index)).is_err() {
                    break; // the consumer stopped early (divergence, interruption)
                }
            }
        });
        Prefetch { receiver, _handle: handle }
    }
}

/// Batches arriving from a helper thread, in order.
pub struct Prefetch<'scope> {
    receiver: Receiver<HostBatch>,
    _handle: ScopedJoinHandle<'scope, ()>,
}

impl Prefetch<'_> {
    /// The next batch, waiting for it if needed; `None` after the last.
    pub fn recv(&self) -> Option<HostBatch> {
        self.receiver.recv().ok()
    }
}

/// An epoch's batches, built on a helper thread when augmenting (the costly case) and inline
/// otherwise: copying rows takes microseconds, and on a small machine a helper thread would take
/// a core from the compute threads at every step. Both give the same batches.
pub enum Batches<'scope, 'env> {
    /// Built ahead on a helper thread.
    Prefetched(Prefetch<'scope>),
    /// Built when asked for.
    Inline {
        /// The epoch.
        plan: EpochPlan<'env>,
        /// The batch filler.
        builder: &'env BatchBuilder,
        /// Index of the next batch.
        next: usize,
    },
}

impl<'scope, 'env> Batches<'scope, 'env> {
    /// Starts the epoch's batches, prefetching when `plan` augments.
    pub fn start(plan: EpochPlan<'env>, scope: &'scope Scope<'scope, 'env>, builder: &'env BatchBuilder) -> Self {
        if plan.augment.is_some() {
            Batches::Prefetched(plan.prefetch(scope, builder))
        } else {
            Batches::Inline { plan, builder, next: plan.first_batch }
        }
    }
}

impl Iterator for Batches<'_, '_> {
    type Item = HostBatch;

    /// The next batch; `None` after the last.
    fn next(&mut self) -> Option<HostBatch> {
        match self {
            Batches::Prefetched(prefetch) => prefetch.recv(),
            Batches::Inline { plan, builder, next } => {
                let index = *next;
                (index < plan.batches()).then(|| {
                    *next += 1;
                    plan.build(builder, index)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_count_keeps_partial_batches_but_never_a_lone_training_sample() {
        assert_eq!(batch_count(128, 64, true), 2);
        assert_eq!(batch_count(130, 64, true), 3);
        assert_eq!(batch_count(129, 64, true), 2, "a lone sample cannot be batch-normalized");
        assert_eq!(batch_count(129, 64, false), 3, "evaluation sees every sample");
        assert_eq!(batch_count(1, 64, true), 0);
        assert_eq!(batch_count(0, 64, false), 0);
    }
}
