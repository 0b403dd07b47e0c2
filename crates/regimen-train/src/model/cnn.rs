//! A LeNet-style convolutional network: conv-BN-ReLU-maxpool blocks, then a dense head.

use burn::module::Module;
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
    conv::{Conv2d, Conv2dConfig},
    pool::{MaxPool2d, MaxPool2dConfig},
};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::Network;
use crate::error::TrainError;
use crate::kernels::{batch_norm, conv2d, max_pool2d};

/// Shape of a [`Cnn`].
#[derive(Debug, Clone)]
pub struct CnnConfig {
    /// Input image shape `[channels, height, width]`.
    pub input: [usize; 3],
    /// Output channels of each conv block; each block halves height and width.
    pub channels: Vec<usize>,
    /// Hidden sizes of the dense head (empty: the last block feeds the output layer).
    pub hidden: Vec<usize>,
    /// Outputs.
    pub outputs: usize,
    /// Dropout probability before each dense layer.
    pub dropout: f64,
}

/// One conv3×3 (padding 1) → batch norm → ReLU → 2×2 max-pool block.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    norm: BatchNorm,
    pool: MaxPool2d,
}

/// Conv blocks followed by a dense head.
#[derive(Module, Debug)]
pub struct Cnn {
    blocks: Vec<ConvBlock>,
    dense: Vec<Linear>,
    dropout: Dropout,
    output: Linear,
    #[module(skip)]
    input: [usize; 3],
}

impl CnnConfig {
    /// Creates the network; fails when the image is too small for the number of blocks.
    pub fn init(&self, device: &Device) -> Result<Cnn, TrainError> {
        let [mut channels, mut height, mut width] = self.input;
        let mut blocks = Vec::with_capacity(self.channels.len());
        for &out in &self.channels {
            if height < 2 || width < 2 {
                return Err(TrainError::Model(format!(
                    "{} conv blocks halve a {}×{} image below 1×1; use fewer `channels`",
                    self.channels.len(),
                    self.input[1],
                    self.input[2]
                )));
            }
            blocks.push(ConvBlock {
                conv: Conv2dConfig::new([channels, out], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
                norm: BatchNormConfig::new(out).init(device),
                pool: MaxPool2dConfig::new([2, 2]).init(),
            });
            channels = out;
            height /= 2;
            width /= 2;
        }
        let mut features = channels * height * width;
        let mut dense = Vec::with_capacity(self.hidden.len());
        for &size in &self.hidden {
            dense.push(LinearConfig::new(features, size).init(device));
            features = size;
        }
        Ok(Cnn {
            blocks,
            dense,
            dropout: DropoutConfig::new(self.dropout).init(),
            output: LinearConfig::new(features, self.outputs).init(device),
            input: self.input,
        })
    }
}

impl Network for Cnn {
    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let [c, h, w] = self.input;
        let batch = input.dims()[0];
        let mut x: Tensor<4> = input.reshape([batch, c, h, w]);
        for block in &self.blocks {
            x = max_pool2d(&block.pool, relu(batch_norm(&block.norm, conv2d(&block.conv, x))));
        }
        let mut x: Tensor<2> = x.flatten(1, 3);
        for layer in &self.dense {
            x = relu(layer.forward(self.dropout.forward(x)));
        }
        self.output.forward(self.dropout.forward(x))
    }
}
