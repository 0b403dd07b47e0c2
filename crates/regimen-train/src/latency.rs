//! Inference latency, measured once at the end of a run: what a deployed model would cost per
//! sample, so that a sweep can hold its trials to a latency budget (`latency.p95_ms <= 20`).

use std::time::Instant;

use regimen_data::{BatchBuilder, Samples};

use crate::batches::{EpochPlan, HostBatch};
use crate::error::TrainError;
use crate::evaluate::host_outputs;
use crate::model::Network;

/// Forward passes at batch size 1 that are timed (after a few untimed ones).
const SINGLE_REPEATS: usize = 30;
/// Forward passes at the training batch size that are timed.
const BATCH_REPEATS: usize = 10;
/// Untimed passes first: the first calls allocate and warm caches.
const WARMUP: usize = 3;

/// Milliseconds per sample, as the run records them under `latency.*`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Median at batch size 1.
    pub p50_ms: f64,
    /// 95th percentile at batch size 1.
    pub p95_ms: f64,
    /// Median per sample at the training batch size.
    pub batch_p50_ms: f64,
    /// 95th percentile per sample at the training batch size.
    pub batch_p95_ms: f64,
}

impl Latency {
    /// The metric keys and values, as they are logged.
    pub fn metrics(&self) -> [(&'static str, f64); 4] {
        [
            ("latency.p50_ms", self.p50_ms),
            ("latency.p95_ms", self.p95_ms),
            ("latency.batch_p50_ms", self.batch_p50_ms),
            ("latency.batch_p95_ms", self.batch_p95_ms),
        ]
    }
}

/// Times `model` (in validation mode) on `samples`, a forward pass and the read-back of its
/// outputs, at batch size 1 and at `batch_size`; `None` without samples.
pub fn measure<M: Network>(
    model: &M,
    samples: &Samples,
    batch_size: usize,
    device: &burn::prelude::Device,
) -> Result<Option<Latency>, TrainError> {
    if samples.is_empty() {
        return Ok(None);
    }
    let timed = |size: usize, repeats: usize| -> Result<Vec<f64>, TrainError> {
        let order: Vec<u32> = (0..samples.len() as u32).collect();
        let plan =
            EpochPlan { samples, order: &order, batch_size: size, training: false, augment: None, first_batch: 0 };
        let mut millis = Vec::with_capacity(repeats);
        for i in 0..WARMUP + repeats {
            let mut batch: HostBatch = plan.build(&BatchBuilder, i % plan.batches());
            let rows = batch.targets.len().max(1) as f64;
            let started = Instant::now();
            host_outputs(model.forward(batch.input(device)))?;
            if i >= WARMUP {
                millis.push(started.elapsed().as_secs_f64() * 1e3 / rows);
            }
        }
        Ok(millis)
    };
    let single = timed(1, SINGLE_REPEATS)?;
    let batched = timed(batch_size.clamp(1, samples.len()), BATCH_REPEATS)?;
    Ok(Some(Latency {
        p50_ms: percentile(&single, 0.50),
        p95_ms: percentile(&single, 0.95),
        batch_p50_ms: percentile(&batched, 0.50),
        batch_p95_ms: percentile(&batched, 0.95),
    }))
}

/// The nearest-rank percentile `q` of non-empty values.
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 10.0);
        assert_eq!(percentile(&values, 0.95), 19.0);
        assert_eq!(percentile(&[3.0], 0.95), 3.0);
    }
}
