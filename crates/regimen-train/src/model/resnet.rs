//! A small CIFAR-style residual network (He et al. 2016, section 4.2): a 3×3 stem, three stages
//! of basic blocks at widths w, 2w, 4w (the last two halving the resolution), global average
//! pooling and a linear classifier. `depth` blocks per stage gives 6·depth+2 layers.

use burn::module::Module;
use burn::nn::{
    BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d,
    conv::{Conv2d, Conv2dConfig},
    pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig},
};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::Network;
use crate::kernels::{batch_norm, conv2d};

/// Shape of a [`ResNet`].
#[derive(Debug, Clone)]
pub struct ResNetConfig {
    /// Input image shape `[channels, height, width]`.
    pub input: [usize; 3],
    /// Basic blocks per stage.
    pub depth: usize,
    /// Channels of the first stage.
    pub width: usize,
    /// Outputs.
    pub outputs: usize,
}

/// A 1×1 strided convolution that matches the shortcut to a block's new shape.
#[derive(Module, Debug)]
pub struct Projection {
    conv: Conv2d,
    norm: BatchNorm,
}

/// Two 3×3 conv-BN layers with an identity (or projected) shortcut.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    projection: Option<Projection>,
}

/// The residual network.
#[derive(Module, Debug)]
pub struct ResNet {
    stem: Conv2d,
    stem_norm: BatchNorm,
    blocks: Vec<BasicBlock>,
    pool: AdaptiveAvgPool2d,
    output: Linear,
    #[module(skip)]
    input: [usize; 3],
}

fn conv3x3(input: usize, output: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([input, output], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .init(device)
}

impl BasicBlock {
    fn new(input: usize, output: usize, stride: usize, device: &Device) -> Self {
        let projection = (stride != 1 || input != output).then(|| Projection {
            conv: Conv2dConfig::new([input, output], [1, 1])
                .with_stride([stride, stride])
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(output).init(device),
        });
        Self {
            conv1: conv3x3(input, output, stride, device),
            norm1: BatchNormConfig::new(output).init(device),
            conv2: conv3x3(output, output, 1, device),
            norm2: BatchNormConfig::new(output).init(device),
            projection,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.projection {
            Some(p) => batch_norm(&p.norm, conv2d(&p.conv, x.clone())),
            None => x.clone(),
        };
        let y = relu(batch_norm(&self.norm1, conv2d(&self.conv1, x)));
        let y = batch_norm(&self.norm2, conv2d(&self.conv2, y));
        relu(y + shortcut)
    }
}

impl ResNetConfig {
    /// Creates the network with freshly initialized weights.
    pub fn init(&self, device: &Device) -> ResNet {
        let mut blocks = Vec::with_capacity(3 * self.depth);
        let mut channels = self.width;
        for stage in 0..3 {
            let out = self.width << stage;
            for block in 0..self.depth {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                blocks.push(BasicBlock::new(channels, out, stride, device));
                channels = out;
            }
        }
        ResNet {
            stem: conv3x3(self.input[0], self.width, 1, device),
            stem_norm: BatchNormConfig::new(self.width).init(device),
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            output: LinearConfig::new(channels, self.outputs).init(device),
            input: self.input,
        }
    }
}

impl Network for ResNet {
    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let [c, h, w] = self.input;
        let batch = input.dims()[0];
        let mut x = relu(batch_norm(&self.stem_norm, conv2d(&self.stem, input.reshape([batch, c, h, w]))));
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.output.forward(self.pool.forward(x).flatten(1, 3))
    }
}
