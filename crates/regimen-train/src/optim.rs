//! Building the optimizer from the configuration.
//!
//! Burn's optimizers share one type, `ModuleOptimizer`, so the choice is made once here and the
//! loop only calls `step(lr, model, grads)`. The learning rate comes from the schedule each step.

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{
    AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig, decay::WeightDecayConfig, momentum::MomentumConfig,
};

use crate::config::TrainConfig;

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
        _ => AdamConfig::new().with_epsilon(1e-8).with_weight_decay(decay).with_grad_clipping(clipping).init(),
    }
}
