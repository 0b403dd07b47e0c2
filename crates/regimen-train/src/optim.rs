//! Building the optimizer from the configuration.
//!
//! Burn's optimizers share one type, `ModuleOptimizer`, so the choice is made once here and the
//! loop only calls `step(lr, model, grads)`. The learning rate comes from the schedule each step.

use burn::backend::Dispatch;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{
    Adam, AdamConfig, AdamState, AdamWConfig, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer,
    SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig,
};
use burn::prelude::*;

use crate::config::TrainConfig;
use crate::kernels::{CpuTraining, on_cpu};
use regimen_kernels::adam::AdamStep;

/// Creates the optimizer named by `config.optimizer` with its weight decay and clipping.
///
/// Adam uses PyTorch's epsilon (1e-8) so results compare with the frameworks users know; SGD's
/// momentum has no dampening, as in PyTorch.
pub fn build_optimizer(config: &TrainConfig) -> ModuleOptimizer {
    let clipping = config.grad_clip.map(|norm| GradientClippingConfig::Norm(norm as f32));
    let decay = (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32));
    match config.optimizer.as_str() {
        "adamw" => AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(config.weight_decay as f32)
            .with_grad_clipping(clipping)
            .init(),
        "sgd" => SgdConfig::new()
            .with_weight_decay(decay)
            .with_momentum((config.momentum > 0.0).then(|| {
                MomentumConfig::new().with_momentum(config.momentum).with_dampening(0.0).with_nesterov(config.nesterov)
            }))
            .with_gradient_clipping(clipping)
            .init(),
        _ => {
            let adam = FusedAdam::new(1e-8, config.weight_decay as f32);
            let optimizer = ModuleOptimizer::from(adam);
            match clipping {
                Some(clipping) => optimizer.with_grad_clipping(clipping.init()),
                None => optimizer,
            }
        }
    }
}

/// Adam whose CPU step is one fused pass per parameter (`regimen-kernels`), and Burn's own Adam on
/// any other device.
///
/// Its state is Burn's [`AdamState`], so checkpoints written with either load into the other, and
/// the arithmetic is Burn's, in the same order per element: the fused step gives the same bits.
#[derive(Clone)]
pub struct FusedAdam {
    fallback: Adam,
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    l2: f32,
}

impl FusedAdam {
    /// Adam with Burn's default betas (0.9, 0.999), the given epsilon and L2 weight decay (0: none).
    pub fn new(epsilon: f32, l2: f32) -> Self {
        let decay = (l2 > 0.0).then(|| WeightDecayConfig::new(l2));
        let config = AdamConfig::new().with_epsilon(epsilon).with_weight_decay(decay);
        Self { fallback: config.build(), beta_1: 0.9, beta_2: 0.999, epsilon, l2 }
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if !on_cpu(&tensor) || state.as_ref().is_some_and(|s| s.momentum.max_moment_2.is_some()) {
            return self.fallback.step(lr, tensor, grad, state);
        }
        let (time, moment_1, moment_2) = match state {
            Some(state) => (state.momentum.time + 1, state.momentum.moment_1, state.momentum.moment_2),
            None => (1, tensor.zeros_like(), tensor.zeros_like()),
        };
        let (tensor, moment_1, moment_2) = <Dispatch as CpuTraining>::fast_adam_step(
            tensor.into_dispatch(),
            grad.into_dispatch(),
            moment_1.into_dispatch(),
            moment_2.into_dispatch(),
            AdamStep {
                learning_rate: lr as f32,
                beta_1: self.beta_1,
                beta_2: self.beta_2,
                epsilon: self.epsilon,
                time: time as i32,
                l2: self.l2,
                decoupled_decay: 0.0,
            },
        );
        let momentum =
            AdaptiveMomentumState::new(time, Tensor::from_dispatch(moment_1), Tensor::from_dispatch(moment_2));
        (Tensor::from_dispatch(tensor), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        Adam::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;

    /// Three steps of an optimizer on a small linear layer; the weights after each, as bits.
    fn trajectory(mut optimizer: ModuleOptimizer) -> Vec<Vec<u32>> {
        let device = Device::flex().autodiff();
        device.seed(7);
        let mut layer: Linear = LinearConfig::new(5, 3).init(&device);
        let x = Tensor::<2>::from_data([[0.5f32, -1.0, 2.0, 0.0, 1.5], [1.0, 0.25, -0.5, 3.0, -2.0]], &device);
        let mut weights = Vec::new();
        for _ in 0..3 {
            let loss = layer.forward(x.clone()).powi_scalar(2).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &layer);
            layer = optimizer.step(1e-2, layer, grads);
            weights.push(layer.weight.val().into_data().iter::<f32>().map(f32::to_bits).collect());
        }
        weights
    }

    #[test]
    fn the_fused_adam_takes_the_same_steps_as_burns_bit_for_bit() {
        for l2 in [0.0, 1e-2] {
            let decay = (l2 > 0.0).then(|| WeightDecayConfig::new(l2));
            let burn = AdamConfig::new().with_epsilon(1e-8).with_weight_decay(decay).init();
            let fused = ModuleOptimizer::from(FusedAdam::new(1e-8, l2));
            assert_eq!(trajectory(fused), trajectory(burn), "weight decay {l2}");
        }
    }
}
