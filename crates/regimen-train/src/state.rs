//! The training state a checkpoint carries besides weights and optimizer moments.
//!
//! Exact resume rests on one rule: everything random is a pure function of the seed and a
//! position (the order of epoch `e`, the augmentation of sample position `p`, the dropout masks of
//! step `s`), so the state to save is the position itself plus the few accumulators the loop
//! keeps: the LR schedule, the monitor, the running training metrics of the epoch in progress,
//! and the history of epoch summaries.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use regimen_data::{SplitMix64, mix64};
use regimen_monitor::MonitorState;
use regimen_schedule::SchedulerState;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::evaluate::MeterState;
use crate::observer::EpochSummary;

/// Version of the [`TrainState`] layout.
pub const STATE_FORMAT: u32 = 1;

/// Where a run stands, saved in every checkpoint as `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Version of this layout.
    pub format: u32,
    /// Optimizer steps taken.
    pub step: u64,
    /// The epoch in progress, or just completed (1-based).
    pub epoch: u64,
    /// Batches of `epoch` already trained on; equal to the steps per epoch when it is complete.
    pub batches_done: u64,
    /// The resolved configuration of the run.
    pub config: TrainConfig,
    /// Fingerprint of the data it trains on; a resume on other data is refused.
    pub dataset_fingerprint: String,
    /// The learning-rate schedule's state.
    pub scheduler: SchedulerState,
    /// The monitor's state: best so far, patience reference, grace period.
    pub monitor: MonitorState,
    /// Running training metrics of the epoch in progress.
    pub train_meter: MeterState,
    /// Sum of the training losses not yet logged as `train.loss_step`, and their count.
    pub loss_window: (f64, u64),
    /// Summaries of the completed epochs.
    pub history: Vec<EpochSummary>,
    /// Each metric's best point so far, mid-epoch evaluations included.
    #[serde(default)]
    pub bests: crate::trainer::Bests,
    /// Ids of the model's float parameters in visiting order: the optimizer's state is keyed by
    /// them, and a freshly built model gets new random ones.
    pub param_ids: Vec<u64>,
}

/// The ids of `model`'s float parameters, in the order Burn visits them.
pub fn param_ids<M: Module>(model: &M) -> Vec<u64> {
    struct Collect(Vec<u64>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id.val());
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

/// Gives `model`'s float parameters the ids `ids` (in visiting order), so that a saved optimizer
/// state applies to a model rebuilt and loaded from weights. `None` when the count differs (the
/// checkpoint comes from another architecture).
pub fn assign_param_ids<M: Module>(model: M, ids: &[u64]) -> Option<M> {
    if param_ids(&model).len() != ids.len() {
        return None;
    }
    struct Assign<'a>(std::slice::Iter<'a, u64>);
    impl ModuleMapper for Assign<'_> {
        fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if let Some(&id) = self.0.next() {
                param.id = ParamId::from(id);
            }
            param
        }
    }
    Some(model.map(&mut Assign(ids.iter())))
}

/// The seed of the random streams of optimizer step `step` (dropout masks and any other sampling
/// in the forward pass): a pure function of the run's seed and the step, so a resumed run draws
/// exactly what the uninterrupted one would have.
pub fn step_seed(seed: u64, step: u64) -> u64 {
    // SplitMix64's state after `step + 1` draws, offset by the seed and mixed: consecutive steps
    // get unrelated seeds.
    mix64(seed ^ step.wrapping_add(1).wrapping_mul(SplitMix64::GAMMA))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mlp, MlpConfig};

    fn mlp(device: &Device) -> Mlp {
        MlpConfig { inputs: 3, hidden: vec![4], outputs: 2, activation: "relu".into(), dropout: 0.0, batch_norm: true }
            .init(device)
    }

    #[test]
    fn ids_move_from_one_model_to_a_rebuilt_one() {
        let device = Device::flex();
        let original = mlp(&device);
        let ids = param_ids(&original);
        assert_eq!(
            ids.len(),
            8,
            "two linear layers (weight, bias), batch norm (gamma, beta, running mean and variance)"
        );
        let rebuilt = mlp(&device);
        assert_ne!(param_ids(&rebuilt), ids);
        let rebuilt = assign_param_ids(rebuilt, &ids).unwrap();
        let same = param_ids(&rebuilt).iter().zip(&ids).filter(|(a, b)| a == b).count();
        // Batch norm's running statistics keep their own ids: they have no optimizer state.
        assert_eq!(same, 6, "every trainable parameter takes its saved id");
        assert!(assign_param_ids(mlp(&device), &ids[..3]).is_none());
    }

    #[test]
    fn step_seeds_differ_per_step_and_per_run_seed() {
        let seeds: std::collections::BTreeSet<u64> = (0..1000).map(|s| step_seed(42, s)).collect();
        assert_eq!(seeds.len(), 1000);
        assert_ne!(step_seed(1, 5), step_seed(2, 5));
        assert_eq!(step_seed(7, 9), step_seed(7, 9));
    }

    #[test]
    fn step_seeds_never_change() {
        // Dropout masks are drawn from these seeds: a different value would change what a resumed
        // run, or a rerun with the same seed, trains on. The values come from the original inline
        // SplitMix64 code.
        assert_eq!(step_seed(42, 0), 0xbdd7_3226_2feb_6e95);
        assert_eq!(step_seed(42, 1), 0xd963_9a00_6c85_adb0);
        assert_eq!(step_seed(7, 123_456), 0x49da_1592_3edc_7013);
        assert_eq!(step_seed(u64::MAX, u64::MAX), 0xb4d0_55fc_f2cb_bd7b);
    }
}
