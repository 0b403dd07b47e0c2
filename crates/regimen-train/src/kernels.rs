//! The fast CPU path of the convolutional models: convolution, batch norm in training and 2×2
//! max-pooling through `regimen-kernels`, bound to Burn with a backend extension.
//!
//! Burn's CPU backend (Flex) composes these operations from generic passes: its convolution weight
//! gradient transposes the activations twice and runs an im2col per input channel, its forward
//! convolution copies the input to NHWC first, batch norm makes about eight passes each way, and
//! max-pooling writes 64-bit indices and casts them. The
//! [`CpuTraining`] extension replaces them, on the CPU only, with the kernels of `regimen-kernels`,
//! differentiated by hand-written backward steps. The models call [`conv2d`], [`batch_norm`] and
//! [`max_pool2d`], which take the extension on a CPU device and the module's own forward on any
//! other device or for any configuration the kernels do not cover, so GPU backends and exotic
//! layers behave as before. Parameters, running statistics and checkpoints are the modules' own.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, DispatchDevice, Flex, backend_extension};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use regimen_kernels::adam::{AdamStep, adam_step};
use regimen_kernels::conv::{
    Conv2dGeometry, channel_sums, conv2d as conv2d_forward, conv2d_input_grad, conv2d_weight_grad,
};
use regimen_kernels::norm::{NormShape, batch_norm_train as norm_forward, batch_norm_train_backward as norm_backward};
use regimen_kernels::pool::{max_pool2x2, max_pool2x2_backward};

/// Training operations with a fast CPU implementation. Implemented for Flex (the forward pass) and
/// for autodiff on Flex (forward plus a backward step); calling them on another backend panics, so
/// they are only reached through [`conv2d`], [`batch_norm`] and [`max_pool2d`], which check the device.
#[backend_extension(Flex, Autodiff)]
pub trait CpuTraining: Backend {
    /// A 2-D convolution with a bias, one group and symmetric padding.
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// [`CpuTraining::fast_conv2d`] without a bias (the extension macro takes no optional tensors).
    fn fast_conv2d_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// Batch norm with the batch's statistics: the output, the mean and the biased variance.
    fn fast_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// 2×2 max-pooling with stride 2, no padding, floor mode.
    fn fast_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// One Adam step for a parameter: the updated parameter and both moments, each updated in
    /// place when nothing else holds it.
    fn fast_adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// A tensor's values as a contiguous slice (copied only when the layout is not contiguous).
fn values(tensor: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(tensor.to_contiguous().as_slice::<f32>().expect("contiguous").to_vec()),
    }
}

fn tensor(values: Vec<f32>, shape: impl Into<burn::tensor::Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn dims4(tensor: &FlexTensor) -> [usize; 4] {
    let shape = tensor.layout().shape();
    [shape[0], shape[1], shape[2], shape[3]]
}

fn geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Conv2dGeometry {
    let [batch, in_channels, height, width] = dims4(x);
    let [out_channels, _, kernel_height, kernel_width] = dims4(weight);
    Conv2dGeometry {
        batch,
        in_channels,
        out_channels,
        input: [height, width],
        kernel: [kernel_height, kernel_width],
        stride: options.stride,
        padding: options.padding_begin(),
        dilation: options.dilation,
    }
}

fn norm_shape(x: &FlexTensor) -> NormShape {
    let shape = x.layout().shape();
    NormShape { batch: shape[0], channels: shape[1], plane: shape.num_elements() / (shape[0] * shape[1]).max(1) }
}

/// The convolution forward on Flex.
fn flex_conv(x: &FlexTensor, weight: &FlexTensor, bias: Option<&FlexTensor>, options: &ConvOptions<2>) -> FlexTensor {
    let geometry = geometry(x, weight, options);
    let bias = bias.map(values);
    let output = conv2d_forward(&geometry, &values(x), &values(weight), bias.as_deref());
    let [height, width] = geometry.output();
    tensor(output, [geometry.batch, geometry.out_channels, height, width])
}

/// Batch norm forward on Flex: the output, mean and variance tensors.
fn flex_batch_norm(x: &FlexTensor, gamma: &FlexTensor, beta: &FlexTensor, epsilon: f64) -> [FlexTensor; 3] {
    let shape = norm_shape(x);
    let result = norm_forward(shape, &values(x), &values(gamma), &values(beta), epsilon);
    [
        tensor(result.output, x.layout().shape().clone()),
        tensor(result.mean, [shape.channels]),
        tensor(result.variance, [shape.channels]),
    ]
}

/// Max-pooling forward on Flex, with the indices the backward step needs.
fn flex_max_pool(x: &FlexTensor) -> (FlexTensor, Vec<u32>) {
    let [batch, channels, height, width] = dims4(x);
    let pooled = max_pool2x2(&values(x), batch * channels, height, width);
    (tensor(pooled.output, [batch, channels, height / 2, width / 2]), pooled.indices)
}

impl CpuTraining for Flex {
    fn fast_conv2d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        flex_conv(&x, &weight, Some(&bias), &options)
    }

    fn fast_conv2d_unbiased(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        flex_conv(&x, &weight, None, &options)
    }

    fn fast_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let [output, mean, variance] = flex_batch_norm(&x, &gamma, &beta, epsilon);
        (output, mean, variance)
    }

    fn fast_max_pool2x2(x: FlexTensor) -> FlexTensor {
        flex_max_pool(&x).0
    }

    fn fast_adam_step(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        step: AdamStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (mut param, mut moment_1, mut moment_2) = (owned(param), owned(moment_1), owned(moment_2));
        let len = param.layout().num_elements();
        adam_step(
            &step,
            &mut param.storage_mut::<f32>()[..len],
            &values(&grad),
            &mut moment_1.storage_mut::<f32>()[..len],
            &mut moment_2.storage_mut::<f32>()[..len],
        );
        (param, moment_1, moment_2)
    }
}

/// `tensor` contiguous from the start of its buffer, so that its storage can be updated in place
/// (shared storage is still copied on write by `storage_mut`).
fn owned(tensor: FlexTensor) -> FlexTensor {
    if tensor.is_contiguous() && tensor.layout().start_offset() == 0 { tensor } else { tensor.to_contiguous() }
}

/// Backward of [`CpuTraining::fast_conv2d`]: the input, weight and bias gradients from
/// `regimen-kernels`.
#[derive(Debug)]
struct ConvStep;

impl<const N: usize> Backward<Flex, N> for ConvStep {
    type State = (burn::backend::autodiff::NodeId, burn::backend::autodiff::NodeId, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
        let weight: FlexTensor = checkpointer.retrieve_node_output(weight_state);
        let mut parents = ops.parents.into_iter();
        let (x_node, weight_node, bias_node) =
            (parents.next().flatten(), parents.next().flatten(), parents.next().flatten());
        if let Some(node) = bias_node {
            let [batch, channels, _, _] = dims4(&grad);
            grads.register::<Flex>(node.id, tensor(channel_sums(&values(&grad), batch, channels), [channels]));
        }
        if let Some(node) = weight_node {
            let geometry = geometry(&x, &weight, &options);
            let weight_grad = conv2d_weight_grad(&geometry, &values(&x), &values(&grad));
            grads.register::<Flex>(node.id, tensor(weight_grad, weight.layout().shape().clone()));
        }
        if let Some(node) = x_node {
            let geometry = geometry(&x, &weight, &options);
            let x_grad = conv2d_input_grad(&geometry, &values(&weight), &values(&grad));
            grads.register::<Flex>(node.id, tensor(x_grad, x.layout().shape().clone()));
        }
    }
}

/// Backward of [`CpuTraining::fast_batch_norm_train`].
#[derive(Debug)]
struct BatchNormStep;

impl Backward<Flex, 3> for BatchNormStep {
    type State = (burn::backend::autodiff::NodeId, burn::backend::autodiff::NodeId, FlexTensor, FlexTensor, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [x_node, gamma_node, beta_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, gamma_state, mean, variance, epsilon) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x_state);
        let gamma: FlexTensor = checkpointer.retrieve_node_output(gamma_state);
        let shape = norm_shape(&x);
        let result = norm_backward(
            shape,
            &values(&x),
            &values(&gamma),
            &values(&mean),
            &values(&variance),
            epsilon,
            &values(&grad),
        );
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, tensor(result.x, x.layout().shape().clone()));
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, tensor(result.gamma, [shape.channels]));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, tensor(result.beta, [shape.channels]));
        }
    }
}

/// Backward of [`CpuTraining::fast_max_pool2x2`]: the forward's 32-bit indices and the input shape.
#[derive(Debug)]
struct MaxPoolStep;

impl Backward<Flex, 1> for MaxPoolStep {
    type State = (Arc<[u32]>, [usize; 4]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [x_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (indices, [batch, channels, height, width]) = ops.state;
        if let Some(node) = x_node {
            let x_grad = max_pool2x2_backward(&values(&grad), &indices, batch * channels, height, width);
            grads.register::<Flex>(node.id, tensor(x_grad, [batch, channels, height, width]));
        }
    }
}

/// The convolution forward, recorded with [`ConvStep`] as its backward (parents: input, weight
/// and, when `N` is 3, bias).
fn tracked_conv<C: CheckpointStrategy, const N: usize>(
    nodes: [burn::backend::autodiff::ops::NodeGuard; N],
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    bias: Option<FlexTensor>,
    options: ConvOptions<2>,
) -> FloatTensor<Autodiff<Flex, C>> {
    match ConvStep.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let state = (prep.checkpoint(&x), prep.checkpoint(&weight), options.clone());
            prep.finish(state, flex_conv(x.primitive(), weight.primitive(), bias.as_ref(), &options))
        }
        OpsKind::UnTracked(prep) => prep.finish(flex_conv(x.primitive(), weight.primitive(), bias.as_ref(), &options)),
    }
}

impl<C: CheckpointStrategy> CpuTraining for Autodiff<Flex, C> {
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node(), bias.node()];
        tracked_conv::<C, 3>(nodes, x, weight, Some(bias.into_primitive()), options)
    }

    fn fast_conv2d_unbiased(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node()];
        tracked_conv::<C, 2>(nodes, x, weight, None, options)
    }

    fn fast_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [output, mean, variance] = flex_batch_norm(x.primitive(), gamma.primitive(), beta.primitive(), epsilon);
        let output = match BatchNormStep.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&gamma), mean.clone(), variance.clone(), epsilon);
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (output, Self::from_inner(mean), Self::from_inner(variance))
    }

    fn fast_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let dims = dims4(x.primitive());
        match MaxPoolStep.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (output, indices) = flex_max_pool(x.primitive());
                prep.finish((indices.into(), dims), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(flex_max_pool(x.primitive()).0),
        }
    }

    /// Optimizers update inner (untracked) tensors; this is the same step on their primitives.
    fn fast_adam_step(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (param, moment_1, moment_2) = Flex::fast_adam_step(
            param.into_primitive(),
            grad.into_primitive(),
            moment_1.into_primitive(),
            moment_2.into_primitive(),
            step,
        );
        (Self::from_inner(param), Self::from_inner(moment_1), Self::from_inner(moment_2))
    }
}

/// Whether `tensor` lives on the CPU (Flex) backend, with or without autodiff, as `f32`: where the
/// kernels apply.
pub(crate) fn on_cpu<const D: usize>(tensor: &Tensor<D>) -> bool {
    matches!(tensor.device().inner().as_dispatch(), DispatchDevice::Flex(_)) && tensor.dtype() == DType::F32
}

/// `conv.forward(x)`, through the fast kernels on the CPU when the convolution has one group and
/// the same padding on both sides (every built-in model's convolutions).
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => Some([top, left]),
        _ => None,
    };
    let [_, _, height, width] = x.dims();
    let [_, _, kernel_height, kernel_width] = conv.weight.dims();
    // A kernel wider than the padded input has no output position; Burn's own path says so.
    let fits = |[top, left]: [usize; 2]| {
        kernel_height > 0
            && kernel_width > 0
            && conv.dilation[0] * (kernel_height - 1) < height + 2 * top
            && conv.dilation[1] * (kernel_width - 1) < width + 2 * left
    };
    let Some(padding) = padding.filter(|&padding| on_cpu(&x) && conv.groups == 1 && fits(padding)) else {
        return conv.forward(x);
    };
    let options = ConvOptions::new(conv.stride, padding, conv.dilation, 1);
    let (x, weight) = (x.into_dispatch(), conv.weight.val().into_dispatch());
    Tensor::from_dispatch(match &conv.bias {
        Some(bias) => <Dispatch as CpuTraining>::fast_conv2d(x, weight, bias.val().into_dispatch(), options),
        None => <Dispatch as CpuTraining>::fast_conv2d_unbiased(x, weight, options),
    })
}

/// `norm.forward(x)`, through the fast kernels when training on the CPU; the running statistics are
/// updated exactly as Burn's module updates them.
pub fn batch_norm<const D: usize>(norm: &BatchNorm, x: Tensor<D>) -> Tensor<D> {
    if !(on_cpu(&x) && x.device().is_autodiff() && norm.training.is_enabled()) || D < 2 {
        return norm.forward(x);
    }
    let (output, mean, variance) = <Dispatch as CpuTraining>::fast_batch_norm_train(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        norm.epsilon,
    );
    let (mean, variance): (Tensor<1>, Tensor<1>) = (Tensor::from_dispatch(mean), Tensor::from_dispatch(variance));
    let device = mean.device();
    let running_mean = norm.running_mean.value_sync().to_device(&device);
    let running_var = norm.running_var.value_sync().to_device(&device);
    let running_mean = running_mean.mul_scalar(1.0 - norm.momentum).add(mean.detach().mul_scalar(norm.momentum));
    let running_var = running_var.mul_scalar(1.0 - norm.momentum).add(variance.detach().mul_scalar(norm.momentum));
    norm.running_mean.update(running_mean.detach());
    norm.running_var.update(running_var.detach());
    Tensor::from_dispatch(output)
}

/// `pool.forward(x)`, through the fast kernel on the CPU for 2×2 windows with stride 2 and no
/// padding or dilation (the CNN's pooling).
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let plain = pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(pool.padding, PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0));
    if !(plain && on_cpu(&x)) {
        return pool.forward(x);
    }
    Tensor::from_dispatch(<Dispatch as CpuTraining>::fast_max_pool2x2(x.into_dispatch()))
}

#[cfg(test)]
mod tests {
    //! Every fast operation against Burn's own module on the same autodiff CPU device: outputs,
    //! input gradients and parameter gradients, on the shapes the built-in models use plus odd sizes
    //! and batch 1.
    use super::*;
    use burn::module::Param;
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::nn::{BatchNormConfig, PaddingConfig2d};

    fn device() -> Device {
        Device::flex().autodiff()
    }

    /// Reproducible values in [-1, 1) with no dependency: an LCG.
    fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<D> {
        let count = shape.iter().product();
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let values: Vec<f32> = (0..count)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_data(TensorData::new(values, shape), &device())
    }

    fn assert_close<const D: usize>(actual: Tensor<D>, expected: Tensor<D>, tolerance: f32, what: &str) {
        assert_eq!(actual.dims(), expected.dims(), "{what}: shapes");
        let actual = actual.into_data().try_to_vec::<f32>().unwrap();
        let expected = expected.into_data().try_to_vec::<f32>().unwrap();
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            assert!((a - e).abs() <= tolerance * a.abs().max(e.abs()).max(1.0), "{what}[{i}]: {a} vs {e}");
        }
    }

    /// The output and the gradients of Σ output · upstream with respect to `x` and `params`, from
    /// `forward` on a fresh copy of `x`.
    fn run<const D: usize, const E: usize>(
        x: &Tensor<D>,
        params: &[Tensor<1>],
        weights: &[Tensor<E>],
        upstream_seed: u64,
        forward: impl Fn(Tensor<D>) -> Tensor<D>,
    ) -> (Tensor<D>, Vec<Tensor<D>>, Vec<Tensor<1>>, Vec<Tensor<E>>) {
        let x = x.clone().detach().require_grad();
        assert!(on_cpu(&x), "the kernels apply to this tensor");
        let output = forward(x.clone());
        let upstream = random(output.dims(), upstream_seed);
        let grads = (output.clone() * upstream).sum().backward();
        let x_grad = x.grad(&grads).expect("input gradient").autodiff();
        let param_grads = params.iter().map(|p| p.grad(&grads).expect("parameter gradient").autodiff()).collect();
        let weight_grads = weights.iter().map(|w| w.grad(&grads).expect("weight gradient").autodiff()).collect();
        (output.detach(), vec![x_grad], param_grads, weight_grads)
    }

    #[test]
    fn convolutions_match_burns_module() {
        // (batch, in, out, height, width, kernel, stride, padding, bias)
        let cases = [
            (4, 1, 8, 28, 28, 3, 1, 1, true),  // the CNN's first block
            (2, 8, 16, 14, 14, 3, 1, 1, true), // its second
            (1, 3, 4, 9, 7, 3, 1, 1, false),   // batch 1, odd sizes, no bias (ResNet)
            (3, 4, 6, 9, 9, 3, 2, 1, false),   // ResNet's strided 3×3
            (2, 4, 6, 8, 8, 1, 2, 0, false),   // ResNet's 1×1 projection
            (2, 2, 3, 6, 5, 3, 1, 0, true),    // no padding
        ];
        for (i, (batch, input, output, height, width, kernel, stride, padding, bias)) in cases.into_iter().enumerate() {
            let conv = Conv2dConfig::new([input, output], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
                .with_bias(bias)
                .init(&device());
            let x = random([batch, input, height, width], i as u64);
            let mut params = Vec::new();
            if let Some(b) = &conv.bias {
                params.push(b.val());
            }
            let weights = [conv.weight.val()];
            let fast = run(&x, &params, &weights, 100 + i as u64, |x| conv2d(&conv, x));
            let slow = run(&x, &params, &weights, 100 + i as u64, |x| conv.forward(x));
            let what = format!("case {i}");
            assert_close(fast.0, slow.0, 1e-4, &format!("{what} output"));
            assert_close(fast.1[0].clone(), slow.1[0].clone(), 1e-4, &format!("{what} input grad"));
            assert_close(fast.3[0].clone(), slow.3[0].clone(), 1e-3, &format!("{what} weight grad"));
            for (f, s) in fast.2.into_iter().zip(slow.2) {
                assert_close(f, s, 1e-3, &format!("{what} bias grad"));
            }
        }
    }

    #[test]
    fn batch_norm_matches_burns_module_including_running_statistics() {
        for (i, shape) in [[4, 8, 14, 14], [1, 3, 5, 7], [6, 5, 1, 1]].into_iter().enumerate() {
            let channels = shape[1];
            let with_affine = |norm: BatchNorm| BatchNorm {
                gamma: Param::from_tensor(random([channels], 10 + i as u64).add_scalar(1.5)),
                beta: Param::from_tensor(random([channels], 20 + i as u64)),
                ..norm
            };
            let fast_norm = with_affine(BatchNormConfig::new(channels).init(&device()));
            let slow_norm = with_affine(BatchNormConfig::new(channels).init(&device()));
            let x = random(shape, 30 + i as u64).mul_scalar(3.0).add_scalar(0.7);
            let params = |n: &BatchNorm| vec![n.gamma.val(), n.beta.val()];
            let fast = run::<4, 1>(&x, &params(&fast_norm), &[], 40, |x| batch_norm(&fast_norm, x));
            let slow = run::<4, 1>(&x, &params(&slow_norm), &[], 40, |x| slow_norm.forward(x));
            assert_close(fast.0, slow.0, 1e-4, "output");
            assert_close(fast.1[0].clone(), slow.1[0].clone(), 1e-3, "input grad");
            for (f, s) in fast.2.into_iter().zip(slow.2) {
                assert_close(f, s, 1e-3, "gamma/beta grad");
            }
            assert_close(fast_norm.running_mean.value(), slow_norm.running_mean.value(), 1e-5, "running mean");
            assert_close(fast_norm.running_var.value(), slow_norm.running_var.value(), 1e-5, "running variance");
        }
    }

    #[test]
    fn max_pooling_matches_burns_module() {
        let pool = MaxPool2dConfig::new([2, 2]).init();
        for (i, shape) in [[4, 8, 28, 28], [1, 2, 5, 7], [2, 3, 2, 2]].into_iter().enumerate() {
            let x = random(shape, 50 + i as u64);
            let fast = run::<4, 1>(&x, &[], &[], 60, |x| max_pool2d(&pool, x));
            let slow = run::<4, 1>(&x, &[], &[], 60, |x| pool.forward(x));
            assert_close(fast.0, slow.0, 0.0, "output");
            assert_close(fast.1[0].clone(), slow.1[0].clone(), 0.0, "input grad");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Random shapes, odd sizes and batch 1 included, with the strides, paddings and kernels the
        /// built-in models use.
        #[test]
        fn random_convolutions_match_burns_module(
            batch in 1usize..4, input in 1usize..4, output in 1usize..5, height in 1usize..9,
            width in 1usize..9, kernel in proptest::sample::select(vec![1usize, 3]),
            stride in 1usize..3, padding in 0usize..2, bias: bool, seed in 0u64..1000,
        ) {
            proptest::prop_assume!(height + 2 * padding >= kernel && width + 2 * padding >= kernel);
            let conv = Conv2dConfig::new([input, output], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
                .with_bias(bias)
                .init(&device());
            let x = random([batch, input, height, width], seed);
            let params: Vec<Tensor<1>> = conv.bias.iter().map(|b| b.val()).collect();
            let weights = [conv.weight.val()];
            let fast = run(&x, &params, &weights, seed + 1, |x| conv2d(&conv, x));
            let slow = run(&x, &params, &weights, seed + 1, |x| conv.forward(x));
            assert_close(fast.0, slow.0, 1e-4, "output");
            assert_close(fast.1[0].clone(), slow.1[0].clone(), 1e-4, "input grad");
            assert_close(fast.3[0].clone(), slow.3[0].clone(), 1e-3, "weight grad");
            for (f, s) in fast.2.into_iter().zip(slow.2) {
                assert_close(f, s, 1e-3, "bias grad");
            }
        }

        #[test]
        fn random_batch_norms_and_poolings_match_burns_modules(
            batch in 1usize..5, channels in 1usize..5, height in 1usize..8, width in 1usize..8, seed in 0u64..1000,
        ) {
            let norm = |_: ()| BatchNormConfig::new(channels).init(&device());
            let (fast_norm, slow_norm) = (norm(()), norm(()));
            let x = random([batch, channels, height, width], seed).mul_scalar(2.0).add_scalar(0.3);
            let params = |n: &BatchNorm| vec![n.gamma.val(), n.beta.val()];
            let fast = run::<4, 1>(&x, &params(&fast_norm), &[], seed + 1, |x| batch_norm(&fast_norm, x));
            let slow = run::<4, 1>(&x, &params(&slow_norm), &[], seed + 1, |x| slow_norm.forward(x));
            assert_close(fast.0, slow.0, 1e-3, "norm output");
            assert_close(fast.1[0].clone(), slow.1[0].clone(), 2e-3, "norm input grad");
            for (f, s) in fast.2.into_iter().zip(slow.2) {
                assert_close(f, s, 2e-3, "gamma/beta grad");
            }
            if height >= 2 && width >= 2 {
                let pool = MaxPool2dConfig::new([2, 2]).init();
                let fast = run::<4, 1>(&x, &[], &[], seed + 2, |x| max_pool2d(&pool, x));
                let slow = run::<4, 1>(&x, &[], &[], seed + 2, |x| pool.forward(x));
                assert_close(fast.0, slow.0, 0.0, "pool output");
                assert_close(fast.1[0].clone(), slow.1[0].clone(), 0.0, "pool input grad");
            }
        }
    }

    #[test]
    fn a_kernel_wider_than_the_padded_input_does_what_burn_does() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([1, 2], [5, 5]).init(&device);
        let x = random([1, 1, 3, 3], 71).inner();
        let unwind = |f: &dyn Fn() -> TensorData| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let fast = unwind(&|| conv2d(&conv, x.clone()).into_data());
        let slow = unwind(&|| conv.forward(x.clone()).into_data());
        match (fast, slow) {
            (Ok(fast), Ok(slow)) => assert_eq!(fast, slow),
            (fast, slow) => assert_eq!(fast.is_ok(), slow.is_ok(), "one path panicked and the other did not"),
        }
    }

    #[test]
    fn evaluation_without_autodiff_takes_the_kernels_too() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([2, 3], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&device);
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let x = random([2, 2, 6, 6], 70).inner();
        assert!(on_cpu(&x) && !x.device().is_autodiff());
        assert_close(conv2d(&conv, x.clone()), conv.forward(x.clone()), 1e-5, "conv");
        assert_close(max_pool2d(&pool, x.clone()), pool.forward(x), 0.0, "pool");
    }
}
