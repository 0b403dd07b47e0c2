//! A multi-layer perceptron with optional batch normalization and dropout.

use burn::module::Module;
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig,
    activation::{Activation, ActivationConfig},
};
use burn::prelude::*;

use super::Network;

/// Shape and regularization of an [`Mlp`].
#[derive(Debug, Clone)]
pub struct MlpConfig {
    /// Input features.
    pub inputs: usize,
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Outputs.
    pub outputs: usize,
    /// `relu`, `gelu`, `tanh` or `selu` (anything else means relu).
    pub activation: String,
    /// Dropout probability after each hidden layer.
    pub dropout: f64,
    /// Batch normalization after each hidden linear layer.
    pub batch_norm: bool,
}

/// Linear layers with an activation between them: `inputs → hidden… → outputs`.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    norms: Vec<BatchNorm>,
    activation: Activation,
    dropout: Dropout,
    output: Linear,
}

impl MlpConfig {
    /// Creates the network with freshly initialized weights.
    pub fn init(&self, device: &Device) -> Mlp {
        let mut layers = Vec::with_capacity(self.hidden.len());
        let mut norms = Vec::new();
        let mut width = self.inputs;
        for &size in &self.hidden {
            layers.push(LinearConfig::new(width, size).init(device));
            if self.batch_norm {
                norms.push(BatchNormConfig::new(size).init(device));
            }
            width = size;
        }
        let activation = match self.activation.as_str() {
            "gelu" => ActivationConfig::Gelu,
            "tanh" => ActivationConfig::Tanh,
            "selu" => ActivationConfig::Selu,
            _ => ActivationConfig::Relu,
        };
        Mlp {
            layers,
            norms,
            activation: activation.init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            output: LinearConfig::new(width, self.outputs).init(device),
        }
    }
}

impl Network for Mlp {
    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let mut x = input;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if let Some(norm) = self.norms.get(i) {
                x = crate::kernels::batch_norm(norm, x);
            }
            x = self.dropout.forward(self.activation.forward(x));
        }
        self.output.forward(x)
    }
}
