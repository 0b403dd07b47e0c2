//! Models: the [`Network`] trait every trainable model implements, and the built-in ones.
//!
//! A network maps a batch of flattened samples `[batch, features]` to outputs `[batch, outputs]`
//! (class logits, or one value for regression). Taking flat rows keeps one interface for tables
//! and images: an image model reshapes to `[batch, channels, height, width]` itself, which costs
//! nothing. A user-defined Burn module gets all of Regimen's machinery by implementing this trait.

mod cnn;
mod mlp;
mod resnet;

pub use cnn::{Cnn, CnnConfig};
pub use mlp::{Mlp, MlpConfig};
pub use resnet::{ResNet, ResNetConfig};

use burn::module::Module;
use burn::prelude::*;
use regimen_data::{Layout, PreparedData};

use crate::config::TrainConfig;
use crate::error::TrainError;

/// A model Regimen can train.
pub trait Network: Module + 'static {
    /// Maps flattened inputs `[batch, features]` to outputs `[batch, outputs]`.
    fn forward(&self, input: Tensor<2>) -> Tensor<2>;
}

/// One of the built-in models, chosen by `--model`.
#[derive(Module, Debug)]
pub enum BuiltinModel {
    /// A multi-layer perceptron.
    Mlp(Mlp),
    /// A LeNet-style convolutional network.
    Cnn(Cnn),
    /// A small CIFAR-style residual network.
    ResNet(ResNet),
}

impl Network for BuiltinModel {
    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        match self {
            BuiltinModel::Mlp(m) => m.forward(input),
            BuiltinModel::Cnn(m) => m.forward(input),
            BuiltinModel::ResNet(m) => m.forward(input),
        }
    }
}

/// Builds the built-in model `config` names for `data`: its sample shape and the outputs its task
/// needs. The constructor [`crate::train`], [`crate::resume`], `regimen check` and evaluation all use.
pub fn build_for(data: &PreparedData, config: &TrainConfig, device: &Device) -> Result<BuiltinModel, TrainError> {
    build_builtin(config, &data.shape, data.task.num_outputs(), device)
}

/// Builds the model named in `config` for samples of `input_shape` and `outputs` outputs.
pub fn build_builtin(
    config: &TrainConfig,
    input_shape: &[usize],
    outputs: usize,
    device: &Device,
) -> Result<BuiltinModel, TrainError> {
    let features: usize = input_shape.iter().product();
    let model = match config.model.as_str() {
        crate::config::AUTO_MODEL => crate::config::auto_model(input_shape),
        named => named,
    };
    match model {
        "mlp" => Ok(BuiltinModel::Mlp(
            MlpConfig {
                inputs: features,
                hidden: config.hidden.clone().unwrap_or_else(|| vec![256, 256]),
                outputs,
                activation: config.activation.clone(),
                dropout: config.dropout,
                batch_norm: config.batch_norm,
            }
            .init(device),
        )),
        "cnn" => Ok(BuiltinModel::Cnn(
            CnnConfig {
                input: image_shape(input_shape, "cnn")?,
                channels: config.channels.clone(),
                hidden: config.hidden.clone().unwrap_or_default(),
                outputs,
                dropout: config.dropout,
            }
            .init(device)?,
        )),
        "resnet" => Ok(BuiltinModel::ResNet(
            ResNetConfig {
                input: image_shape(input_shape, "resnet")?,
                depth: config.depth,
                width: config.width,
                outputs,
            }
            .init(device),
        )),
        other => Err(TrainError::Model(format!("unknown model `{other}`; choose mlp, cnn or resnet"))),
    }
}

/// The `[channels, height, width]` of image samples, which the convolutional models are built for;
/// for table samples an error that points to the MLP.
fn image_shape(shape: &[usize], model: &str) -> Result<[usize; 3], TrainError> {
    match Layout::of(shape) {
        Layout::Image { channels, height, width } => Ok([channels, height, width]),
        Layout::Table { .. } => Err(TrainError::Model(format!(
            "the {model} model needs images of shape [channels, height, width], but samples have \
             shape {shape:?}; use `--model mlp` for tabular data"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convolutional_models_take_only_images() {
        assert!(matches!(image_shape(&[3, 32, 32], "cnn"), Ok([3, 32, 32])));
        let error = image_shape(&[2], "resnet").map_err(|e| e.to_string());
        assert!(matches!(&error, Err(m) if m.contains("resnet") && m.contains("--model mlp")), "{error:?}");
    }
}
