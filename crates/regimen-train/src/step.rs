//! The one training step, shared by the trainer and by `regimen check`.
//!
//! A step: seed the device from the run's seed and the step's index (so dropout is a pure function
//! of the position, and a resumed run draws the same masks), forward, loss, backward, optimizer
//! step at the scheduled rate. Optional probes read the gradients before the update and measure
//! the update after it; they only read, so a probed step changes nothing. The checks judge exactly
//! the training a run does because they call this same code.

use burn::module::ParamGroup;
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use regimen_data::Task;

use crate::batches::HostBatch;
use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::evaluate::{Objective, host_outputs};
use crate::grads::{LayerGradient, WeightSnapshot, global_grad_norm, layer_grad_norms, layer_gradients};
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
    /// Each layer's gradient norm (what live diagnosis logs).
    LayerNorms,
    /// The global norm, every layer's gradient and the update-to-weight ratios.
    Layers,
}

/// What a probed step measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepProbe {
    /// Global gradient norm.
    pub grad_norm: Option<f64>,
    /// Each layer's gradient norm, before the update.
    pub layer_norms: Vec<(String, f64)>,
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

/// Takes training steps with the configured optimizer and loss, seeding each from its index.
pub(crate) struct Stepper {
    optimizer: ModuleOptimizer,
    objective: Objective,
    seed: u64,
    /// Parameters trained at a multiple of the scheduled rate (a fine-tuned backbone).
    scaled: Option<(ParamGroup, f64)>,
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
            scaled: None,
            step: 0,
        }
    }

    /// From now on, `group` trains at `factor` times the scheduled rate.
    pub fn scale_lr(&mut self, group: ParamGroup, factor: f64) {
        self.scaled = Some((group, factor));
    }

    /// The optimizer, to save in a checkpoint.
    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optimizer
    }

    /// Continues from a checkpoint: its optimizer (with the moments loaded) and its step count.
    pub fn resume(&mut self, optimizer: ModuleOptimizer, step: u64) {
        self.optimizer = optimizer;
        self.step = step;
    }

    /// One step on `batch` at learning rate `lr`. The updated model comes back whatever happens,
    /// with the step's result or the error reading its outputs back to the host.
    pub fn step<M: Network>(
        &mut self,
        model: M,
        batch: &mut HostBatch,
        lr: f64,
        device: &Device,
        probe: Probe,
    ) -> (M, Result<StepResult, TrainError>) {
        device.seed(step_seed(self.seed, self.step));
        let outputs = model.forward(batch.input(device));
        let loss = self.objective.loss(outputs.clone(), &batch.targets, device);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut measured = StepProbe::default();
        let snapshot = (probe == Probe::Layers).then(|| WeightSnapshot::of(&model));
        if matches!(probe, Probe::Norm | Probe::Layers) {
            measured.grad_norm = Some(global_grad_norm(&model, &grads));
        }
        if probe == Probe::LayerNorms {
            measured.layer_norms = layer_grad_norms(&model, &grads);
        }
        if probe == Probe::Layers {
            measured.layers = layer_gradients(&model, &grads);
        }
        let rates: ModuleLearningRate = match &self.scaled {
            Some((group, factor)) => ModuleLrScheduler::new(lr).with_group(group.clone(), lr * factor).step(),
            None => lr.into(),
        };
        let model = self.optimizer.step(rates, model, grads);
        if let Some(snapshot) = snapshot {
            measured.update_ratios = snapshot.update_ratios(&model);
        }
        let loss = f64::from(loss.into_scalar::<f32>());
        self.step += 1;
        let result = host_outputs(outputs.detach()).map(|outputs| StepResult { loss, outputs, probe: measured });
        (model, result)
    }
}
