//! The order of samples in an epoch and the assembly of batches.
//!
//! Both are pure functions of numbers saved in a checkpoint: the order of epoch `e` depends only on
//! `(seed, e)`, and the augmentation of the sample at position `p` of that epoch only on
//! `(seed, e, p)`. A run resumed in the middle of an epoch therefore sees exactly the batches an
//! uninterrupted run would have seen, without saving any RNG state. Building a batch is the hot
//! path of training, so [`BatchBuilder::fill`] writes into buffers the caller keeps and reuses, and
//! allocates nothing once they have grown to a batch's size.

use crate::augment::{Augment, augment_into};
use crate::rng::{DOMAIN_AUGMENT, DOMAIN_ORDER, below, rng_for};
use crate::types::{Samples, Targets};

/// The order of samples `0..n` in epoch `epoch`: a permutation that depends only on `(seed, epoch)`.
///
/// A Fisher–Yates shuffle driven by ChaCha8 keyed with the seed and the epoch, with its own bounded
/// integer sampling, so the order does not change with the version of `rand` either.
///
/// # Panics
///
/// When `n` exceeds `u32::MAX` (more samples than a batch index can hold).
pub fn epoch_order(seed: u64, epoch: u64, n: usize) -> Vec<u32> {
    assert!(u32::try_from(n).is_ok(), "epoch_order: {n} samples exceed u32::MAX");
    let mut rng = rng_for(DOMAIN_ORDER, seed, epoch, 0);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        let j = below(&mut rng, i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// The targets of one batch, in the integer and float types a training loop feeds to a loss.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchTargets {
    /// Class indices.
    Classes(Vec<i64>),
    /// Regression values.
    Values(Vec<f32>),
}

impl Default for BatchTargets {
    fn default() -> Self {
        BatchTargets::Classes(Vec::new())
    }
}

impl BatchTargets {
    /// Number of targets.
    pub fn len(&self) -> usize {
        match self {
            BatchTargets::Classes(v) => v.len(),
            BatchTargets::Values(v) => v.len(),
        }
    }

    /// True when there are no targets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Fills batch buffers from samples. It holds no state: the buffers belong to the caller, who keeps
/// them across batches (and may keep one set per worker thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchBuilder;

impl BatchBuilder {
    /// Writes the samples at `indices` into `features` (row-major, one sample after the other) and
    /// their targets into `targets`, replacing what the buffers held.
    ///
    /// With `augment = Some((augment, seed, epoch, first_position))`, the sample at `indices[j]` is
    /// augmented with an RNG seeded from `(seed, epoch, first_position + j)`, where `first_position`
    /// is the position of this batch's first sample in the epoch order. No allocation happens once
    /// the buffers have reached a batch's size.
    ///
    /// # Panics
    ///
    /// When an index is out of range for `samples` (a bug in the caller).
    pub fn fill(
        &self,
        samples: &Samples,
        indices: &[u32],
        augment: Option<(&Augment, u64, u64, u64)>,
        features: &mut Vec<f32>,
        targets: &mut BatchTargets,
    ) {
        let len = samples.sample_len();
        features.clear();
        match augment {
            Some((aug, seed, epoch, first_position)) if !aug.is_identity() && len > 0 => {
                features.resize(indices.len() * len, 0.0);
                for ((position, &i), out) in (first_position..).zip(indices).zip(features.chunks_exact_mut(len)) {
                    let mut rng = rng_for(DOMAIN_AUGMENT, seed, epoch, position);
                    augment_into(samples.row(i as usize), &samples.shape, aug, &mut rng, out);
                }
            }
            _ => {
                for &i in indices {
                    features.extend_from_slice(samples.row(i as usize));
                }
            }
        }
        match (&samples.targets, &mut *targets) {
            (Targets::Classes(source), BatchTargets::Classes(out)) => {
                out.clear();
                out.extend(indices.iter().map(|&i| i64::from(source[i as usize])));
            }
            (Targets::Values(source), BatchTargets::Values(out)) => {
                out.clear();
                out.extend(indices.iter().map(|&i| source[i as usize]));
            }
            (Targets::Classes(source), _) => {
                *targets = BatchTargets::Classes(indices.iter().map(|&i| i64::from(source[i as usize])).collect());
            }
            (Targets::Values(source), _) => {
                *targets = BatchTargets::Values(indices.iter().map(|&i| source[i as usize]).collect());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn images(n: usize) -> Samples {
        Samples {
            shape: vec![1, 2, 2],
            features: (0..n * 4).map(|v| v as f32).collect(),
            targets: Targets::Classes((0..n as u32).collect()),
        }
    }

    #[test]
    fn orders_differ_between_epochs_and_seeds() {
        let a = epoch_order(1, 0, 100);
        assert_eq!(a, epoch_order(1, 0, 100));
        assert_ne!(a, epoch_order(1, 1, 100));
        assert_ne!(a, epoch_order(2, 0, 100));
        assert!(epoch_order(1, 0, 0).is_empty());
        assert_eq!(epoch_order(1, 0, 1), vec![0]);
    }

    #[test]
    fn fills_plain_batches() {
        let samples = images(5);
        let (mut features, mut targets) = (Vec::new(), BatchTargets::default());
        BatchBuilder.fill(&samples, &[3, 1], None, &mut features, &mut targets);
        assert_eq!(features, vec![12.0, 13.0, 14.0, 15.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(targets, BatchTargets::Classes(vec![3, 1]));
        let values = Samples { targets: Targets::Values(vec![0.5; 5]), ..images(5) };
        BatchBuilder.fill(&values, &[0], None, &mut features, &mut targets);
        assert_eq!(targets, BatchTargets::Values(vec![0.5]));
        assert_eq!(targets.len(), 1);
        assert!(!targets.is_empty());
    }

    #[test]
    fn buffers_are_reused_without_reallocation() {
        let samples = images(64);
        let aug = Augment { hflip: true, crop_padding: 1, rotate_degrees: 10.0, noise_std: 0.1 };
        let (mut features, mut targets) = (Vec::new(), BatchTargets::default());
        let order = epoch_order(0, 0, 64);
        BatchBuilder.fill(&samples, &order[..16], Some((&aug, 0, 0, 0)), &mut features, &mut targets);
        let (pointer, capacity) = (features.as_ptr(), features.capacity());
        let BatchTargets::Classes(t) = &targets else { panic!("classes expected") };
        let target_pointer = t.as_ptr();
        for (b, batch) in order.chunks(16).enumerate() {
            BatchBuilder.fill(&samples, batch, Some((&aug, 0, 0, 16 * b as u64)), &mut features, &mut targets);
            assert_eq!((features.as_ptr(), features.capacity()), (pointer, capacity));
            let BatchTargets::Classes(t) = &targets else { panic!("classes expected") };
            assert_eq!(t.as_ptr(), target_pointer);
        }
    }

    #[test]
    fn augmentation_depends_on_position_not_batching() {
        // One batch of 8 equals two batches of 4 with the right first positions: resume-safe.
        let samples = images(8);
        let aug = Augment { noise_std: 1.0, ..Augment::default() };
        let order = epoch_order(9, 3, 8);
        let (mut whole, mut t) = (Vec::new(), BatchTargets::default());
        BatchBuilder.fill(&samples, &order, Some((&aug, 9, 3, 0)), &mut whole, &mut t);
        let (mut first, mut second) = (Vec::new(), Vec::new());
        BatchBuilder.fill(&samples, &order[..4], Some((&aug, 9, 3, 0)), &mut first, &mut t);
        BatchBuilder.fill(&samples, &order[4..], Some((&aug, 9, 3, 4)), &mut second, &mut t);
        first.extend_from_slice(&second);
        assert_eq!(whole, first);
        let mut other_epoch = Vec::new();
        BatchBuilder.fill(&samples, &order, Some((&aug, 9, 4, 0)), &mut other_epoch, &mut t);
        assert_ne!(whole, other_epoch);
    }

    #[test]
    fn identity_augmentation_copies() {
        let samples = images(3);
        let (mut a, mut b, mut t) = (Vec::new(), Vec::new(), BatchTargets::default());
        BatchBuilder.fill(&samples, &[2, 0], Some((&Augment::default(), 1, 1, 1)), &mut a, &mut t);
        BatchBuilder.fill(&samples, &[2, 0], None, &mut b, &mut t);
        assert_eq!(a, b);
    }

    proptest! {
        /// Every epoch order is a permutation of `0..n` and a pure function of (seed, epoch).
        #[test]
        fn epoch_order_is_a_deterministic_permutation(seed in any::<u64>(), epoch in any::<u64>(), n in 0usize..500) {
            let order = epoch_order(seed, epoch, n);
            prop_assert_eq!(&order, &epoch_order(seed, epoch, n));
            let mut sorted = order.clone();
            sorted.sort_unstable();
            prop_assert_eq!(sorted, (0..n as u32).collect::<Vec<_>>());
        }
    }
}
