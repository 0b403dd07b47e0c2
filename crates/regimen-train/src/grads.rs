//! Per-layer views of a model's parameters and gradients: gradient norms, weight norms, the size
//! of an optimizer update relative to the weights, and units that received no gradient at all.
//!
//! A *layer* is a module that owns parameters directly, named by its path in the model the way
//! Burn's record keys name it, without enum variants: `blocks.0.conv`, `dense.1`, `output`. All
//! parameter tensors of a layer (weight and bias, or batch norm's gamma and beta) are aggregated
//! into one number, because that is the unit a person reasons about ("the first conv layer's
//! gradient vanished"). Layers come in the order Burn visits the model, which is the order of the
//! struct's fields: for the built-in models, from the input to the output.
//!
//! Everything is read back from the device in one transfer per quantity (the per-layer sums are
//! concatenated first), so these functions cost a few milliseconds and can run during training,
//! every `n` steps, for live logging.
//!
//! Dead ReLU units are measured from gradients, which needs no access to the activations and so
//! works on any [`Network`]: a unit whose every parameter slice (a column of a linear layer's
//! weight, the filter of a convolution channel, its bias, its batch-norm scale and shift) gets an
//! exactly zero gradient on a batch did not pass gradient for a single sample of that batch. Behind
//! a ReLU, that is a unit that was inactive on every sample. The measure is per batch, so a unit
//! that fires on fewer than one sample in a batch also counts.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::model::Network;

/// One float parameter tensor, flattened, with the layer that owns it.
struct Entry {
    /// Path of the owning layer, e.g. `blocks.0.conv`.
    layer: String,
    /// The parameter's id (the key of its gradient and of its optimizer state).
    id: ParamId,
    /// The parameter's shape.
    dims: Vec<usize>,
    /// The parameter's values, detached and flattened.
    value: Tensor<1>,
    /// Its gradient, flattened, when `grads` holds one.
    grad: Option<Tensor<1>>,
    /// Whether the optimizer trains it (batch-norm running statistics are not trained).
    trainable: bool,
}

/// Collects every float parameter of a model with its layer path.
struct Collect<'a> {
    path: Vec<String>,
    grads: Option<&'a GradientsParams>,
    entries: Vec<Entry>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        // The variant of an enum of models (`BuiltinModel::Cnn`) is not part of a layer's name.
        let part = if container_type.starts_with("Enum:") { String::new() } else { name.to_owned() };
        self.path.push(part);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let parts: Vec<&str> = self.path.iter().map(String::as_str).filter(|p| !p.is_empty()).collect();
        let layer = match parts.split_last() {
            Some((_, [])) | None => "(root)".to_owned(),
            Some((_, owner)) => owner.join("."),
        };
        let tensor = param.val();
        let dims = tensor.dims().to_vec();
        let len: usize = dims.iter().product();
        let trainable = tensor.is_require_grad();
        let grad = self.grads.and_then(|grads| grads.get::<D>(param.id)).map(|g| g.reshape([len]));
        self.entries.push(Entry { layer, id: param.id, dims, value: tensor.detach().reshape([len]), grad, trainable });
    }
}

fn collect<M: Module>(model: &M, grads: Option<&GradientsParams>) -> Vec<Entry> {
    let mut visitor = Collect { path: Vec::new(), grads, entries: Vec::new() };
    model.visit(&mut visitor);
    visitor.entries
}

/// Layer names in visiting order, each once, with the indices of their entries.
fn group(entries: &[Entry], keep: impl Fn(&Entry) -> bool) -> Vec<(String, Vec<usize>)> {
    let mut layers: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, entry) in entries.iter().enumerate().filter(|(_, e)| keep(e)) {
        match layers.iter_mut().find(|(name, _)| *name == entry.layer) {
            Some((_, members)) => members.push(i),
            None => layers.push((entry.layer.clone(), vec![i])),
        }
    }
    layers
}

/// Reads back one `f64` per tensor of `sums` (each of one element) in a single transfer.
fn read_scalars(sums: Vec<Tensor<1>>) -> Vec<f64> {
    if sums.is_empty() {
        return Vec::new();
    }
    read(Tensor::cat(sums, 0))
}

/// Copies a tensor to the host as `f64`s.
fn read(tensor: Tensor<1>) -> Vec<f64> {
    let data = tensor.into_data().convert::<f32>();
    data.try_into_vec::<f32>().unwrap_or_default().into_iter().map(f64::from).collect()
}

/// The L2 norm of the gradient of each layer of `model`: all gradient tensors of a layer (weight
/// and bias, or gamma and beta) aggregated into one norm, in visiting order (input to output for
/// the built-in models). Layers without any gradient in `grads` are left out.
///
/// `grads` is what the training step computed,
/// `GradientsParams::from_grads(loss.backward(), &model)`, and `model` the model it was computed
/// for (before the optimizer step, which keeps the parameter ids). The layer names are paths like
/// `blocks.0.conv` or `output`, without enum variants. One transfer from the device.
pub fn layer_grad_norms<M: Network>(model: &M, grads: &GradientsParams) -> Vec<(String, f64)> {
    let entries = collect(model, Some(grads));
    let layers = group(&entries, |e| e.grad.is_some());
    let sums = layers
        .iter()
        .map(|(_, members)| {
            Tensor::cat(members.iter().filter_map(|&i| entries[i].grad.clone()).map(|g| g.square().sum()).collect(), 0)
                .sum()
        })
        .collect();
    layers.into_iter().map(|(name, _)| name).zip(read_scalars(sums).into_iter().map(f64::sqrt)).collect()
}

/// What one layer's gradient looks like on one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerGradient {
    /// Path of the layer.
    pub layer: String,
    /// Trainable values in the layer.
    pub params: usize,
    /// L2 norm of its gradient; 0 when it got none.
    pub grad_norm: f64,
    /// L2 norm of its trainable weights.
    pub weight_norm: f64,
    /// Whether any of its trainable parameters received a gradient at all (`false` for a layer
    /// the loss does not depend on).
    pub connected: bool,
    /// Output units (columns of a linear layer, channels of a convolution or batch norm) whose
    /// every parameter got an exactly zero gradient, and the number of units; `None` when the
    /// layer's parameters do not agree on a unit count.
    pub dead_units: Option<(usize, usize)>,
}

impl LayerGradient {
    /// Gradient norm over weight norm: the scale-free size of the gradient.
    pub fn relative(&self) -> f64 {
        if self.weight_norm > 0.0 { self.grad_norm / self.weight_norm } else { f64::NAN }
    }
}

/// The output units of a parameter of shape `dims`, following Burn's layouts: a linear weight is
/// `[inputs, outputs]`, a convolution's `[outputs, inputs, kernel…]`, a bias or a batch norm's
/// scale `[outputs]`.
fn unit_count(dims: &[usize]) -> usize {
    match dims {
        [_, outputs] => *outputs,
        [units, ..] => *units,
        [] => 0,
    }
}

/// The sum of absolute values of a flattened gradient per output unit (see [`unit_count`]).
fn per_unit(grad: Tensor<1>, dims: &[usize]) -> Tensor<1> {
    let abs = grad.abs();
    match *dims {
        [inputs, outputs] => abs.reshape([inputs, outputs]).sum_dim(0).reshape([outputs]),
        [units, ..] if dims.len() > 2 => {
            let rest = dims[1..].iter().product::<usize>();
            abs.reshape([units, rest]).sum_dim(1).reshape([units])
        }
        _ => abs,
    }
}

/// Gradient norm, weight norm, connection and dead units of each layer with trainable
/// parameters, in visiting order. Three transfers from the device.
pub fn layer_gradients<M: Network>(model: &M, grads: &GradientsParams) -> Vec<LayerGradient> {
    let entries = collect(model, Some(grads));
    let layers = group(&entries, |e| e.trainable);
    let zero = || Tensor::<1>::zeros([1], &entries[0].value.device());
    let mut grad_sums = Vec::with_capacity(layers.len());
    let mut weight_sums = Vec::with_capacity(layers.len());
    let mut units: Vec<Tensor<1>> = Vec::new();
    let mut unit_layout: Vec<Option<usize>> = Vec::with_capacity(layers.len());
    for (_, members) in &layers {
        let grads: Vec<Tensor<1>> =
            members.iter().filter_map(|&i| entries[i].grad.clone()).map(|g| g.square().sum()).collect();
        grad_sums.push(if grads.is_empty() { zero() } else { Tensor::cat(grads, 0).sum() });
        weight_sums
            .push(Tensor::cat(members.iter().map(|&i| entries[i].value.clone().square().sum()).collect(), 0).sum());
        let counts: Vec<usize> = members.iter().map(|&i| unit_count(&entries[i].dims)).collect();
        let all_have_grads = members.iter().all(|&i| entries[i].grad.is_some());
        match counts.first() {
            Some(&n) if n > 0 && all_have_grads && counts.iter().all(|&c| c == n) => {
                let per: Vec<Tensor<1>> = members
                    .iter()
                    .filter_map(|&i| entries[i].grad.clone().map(|g| per_unit(g, &entries[i].dims)))
                    .collect();
                units.push(per.into_iter().reduce(|a, b| a + b).unwrap_or_else(zero));
                unit_layout.push(Some(n));
            }
            _ => unit_layout.push(None),
        }
    }
    let grad_norms = read_scalars(grad_sums);
    let weight_norms = read_scalars(weight_sums);
    let unit_sums = if units.is_empty() { Vec::new() } else { read(Tensor::cat(units, 0)) };
    let mut offset = 0;
    layers
        .iter()
        .enumerate()
        .map(|(l, (name, members))| {
            let dead_units = unit_layout[l].map(|n| {
                let dead = unit_sums.get(offset..offset + n).map_or(0, |s| s.iter().filter(|&&v| v == 0.0).count());
                offset += n;
                (dead, n)
            });
            LayerGradient {
                layer: name.clone(),
                params: members.iter().map(|&i| entries[i].dims.iter().product::<usize>()).sum(),
                grad_norm: grad_norms.get(l).copied().unwrap_or(f64::NAN).sqrt(),
                weight_norm: weight_norms.get(l).copied().unwrap_or(f64::NAN).sqrt(),
                connected: members.iter().any(|&i| entries[i].grad.is_some()),
                dead_units,
            }
        })
        .collect()
}

/// The trainable weights of a model at one moment, to measure what an optimizer step changed.
///
/// Holding a snapshot keeps the old tensors alive, so the optimizer cannot update them in place
/// and copies them once: take snapshots on a few steps, not on every one.
pub struct WeightSnapshot {
    layers: Vec<(String, Vec<(ParamId, Tensor<1>)>)>,
}

impl WeightSnapshot {
    /// The trainable weights of `model`, by layer.
    pub fn of<M: Module>(model: &M) -> WeightSnapshot {
        let entries = collect(model, None);
        let layers = group(&entries, |e| e.trainable)
            .into_iter()
            .map(|(name, members)| (name, members.iter().map(|&i| (entries[i].id, entries[i].value.clone())).collect()))
            .collect();
        WeightSnapshot { layers }
    }

    /// For each layer, the norm of the change from this snapshot to `model`'s weights over the
    /// norm of the snapshot's weights: the update-to-weight ratio of the step in between (about
    /// 1e-3 is healthy). One transfer from the device.
    pub fn update_ratios<M: Module>(&self, model: &M) -> Vec<(String, f64)> {
        let now: BTreeMap<ParamId, Tensor<1>> = collect(model, None).into_iter().map(|e| (e.id, e.value)).collect();
        let mut sums = Vec::with_capacity(2 * self.layers.len());
        for (_, params) in &self.layers {
            let changes: Vec<Tensor<1>> = params
                .iter()
                .filter_map(|(id, old)| now.get(id).map(|new| (new.clone() - old.clone()).square().sum()))
                .collect();
            let sizes: Vec<Tensor<1>> = params.iter().map(|(_, old)| old.clone().square().sum()).collect();
            let device = params[0].1.device();
            sums.push(if changes.is_empty() { Tensor::zeros([1], &device) } else { Tensor::cat(changes, 0).sum() });
            sums.push(Tensor::cat(sizes, 0).sum());
        }
        let values = read_scalars(sums);
        self.layers
            .iter()
            .enumerate()
            .map(|(l, (name, _))| {
                let (change, size) = (values[2 * l].sqrt(), values[2 * l + 1].sqrt());
                (name.clone(), if size > 0.0 { change / size } else { f64::NAN })
            })
            .collect()
    }
}

/// The L2 norm of all gradients in `grads` of `model`'s parameters together: the global
/// gradient norm, for spotting growth and spikes step by step. One transfer.
pub fn global_grad_norm<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    let sums: Vec<Tensor<1>> =
        collect(model, Some(grads)).into_iter().filter_map(|e| e.grad).map(|g| g.square().sum()).collect();
    if sums.is_empty() {
        return 0.0;
    }
    read(Tensor::cat(sums, 0).sum()).first().copied().unwrap_or(f64::NAN).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;
    use crate::model::{BuiltinModel, Cnn, CnnConfig, Mlp, MlpConfig};
    use crate::optim::build_optimizer;

    fn mlp(device: &Device, hidden: Vec<usize>) -> Mlp {
        MlpConfig { inputs: 3, hidden, outputs: 2, activation: "relu".into(), dropout: 0.0, batch_norm: false }
            .init(device)
    }

    fn loss_grads<M: Network>(model: &M, input: Tensor<2>) -> GradientsParams {
        let loss = model.forward(input).square().sum();
        GradientsParams::from_grads(loss.backward(), model)
    }

    #[test]
    fn norms_aggregate_each_layers_tensors_under_its_path() {
        let device = Device::flex().autodiff();
        device.seed(1);
        let model = mlp(&device, vec![4, 5]);
        let input = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0, 1.0, 0.0, -0.5], [2, 3]), &device);
        let grads = loss_grads(&model, input);
        let norms = layer_grad_norms(&model, &grads);
        let names: Vec<&str> = norms.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["layers.0", "layers.1", "output"]);
        // The output layer's norm is the norm of its weight and bias gradients together.
        let weight: Vec<f32> =
            grads.get::<2>(output_ids(&model)[0]).unwrap().into_data().convert::<f32>().try_into_vec().unwrap();
        let bias: Vec<f32> =
            grads.get::<1>(output_ids(&model)[1]).unwrap().into_data().convert::<f32>().try_into_vec().unwrap();
        let expected = weight.iter().chain(&bias).map(|&g| f64::from(g).powi(2)).sum::<f64>().sqrt();
        assert!((norms[2].1 - expected).abs() < 1e-4 * expected.max(1.0), "{} vs {expected}", norms[2].1);
        assert!(norms.iter().all(|(_, n)| n.is_finite() && *n > 0.0), "{norms:?}");
    }

    /// Ids of the output layer's weight and bias (the last two float parameters).
    fn output_ids<M: Module>(model: &M) -> Vec<ParamId> {
        let entries = collect(model, None);
        entries[entries.len() - 2..].iter().map(|e| e.id).collect()
    }

    #[test]
    fn enum_variants_are_left_out_of_paths_and_running_stats_are_not_layers_to_train() {
        let device = Device::flex().autodiff();
        device.seed(2);
        let cnn: Cnn = CnnConfig { input: [1, 8, 8], channels: vec![3, 4], hidden: vec![6], outputs: 2, dropout: 0.0 }
            .init(&device)
            .unwrap();
        let model = BuiltinModel::Cnn(cnn);
        let input = Tensor::<2>::from_data(
            TensorData::new((0..128).map(|i| (i % 7) as f32 - 3.0).collect::<Vec<_>>(), [2, 64]),
            &device,
        );
        let grads = loss_grads(&model, input);
        let layers = layer_gradients(&model, &grads);
        let names: Vec<&str> = layers.iter().map(|l| l.layer.as_str()).collect();
        assert_eq!(names, ["blocks.0.conv", "blocks.0.norm", "blocks.1.conv", "blocks.1.norm", "dense.0", "output"]);
        assert!(layers.iter().all(|l| l.connected));
        assert_eq!(layers[0].params, 3 * 9 + 3);
        assert_eq!(layers[1].params, 3 + 3, "gamma and beta, not the running statistics");
        assert_eq!(layers[0].dead_units.map(|(_, n)| n), Some(3));
        assert_eq!(layers[4].dead_units.map(|(_, n)| n), Some(6));
        assert_eq!(layers[5].dead_units, Some((0, 2)));
    }

    #[test]
    fn a_unit_that_never_fires_is_dead() {
        let device = Device::flex().autodiff();
        device.seed(3);
        let model = mlp(&device, vec![4]);
        // Push the bias of hidden unit 0 far negative so that it never fires.
        struct Kill;
        impl burn::module::ModuleMapper for Kill {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                if D == 1 && param.val().dims()[0] == 4 {
                    param.map(|t| {
                        let mut values: Vec<f32> = t.clone().into_data().convert::<f32>().try_into_vec().unwrap();
                        values[0] = -100.0;
                        Tensor::<D>::from_data(TensorData::new(values, t.shape()), &t.device()).require_grad()
                    })
                } else {
                    param
                }
            }
        }
        // 64 inputs of mixed signs: every healthy unit fires for some of them.
        let values: Vec<f32> = (0..192).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        let input = || Tensor::<2>::from_data(TensorData::new(values.clone(), [64, 3]), &device);
        let healthy = layer_gradients(&model, &loss_grads(&model, input()));
        assert_eq!(healthy[0].dead_units, Some((0, 4)), "{healthy:?}");
        let model = model.map(&mut Kill);
        let layers = layer_gradients(&model, &loss_grads(&model, input()));
        assert_eq!(layers[0].layer, "layers.0");
        assert_eq!(layers[0].dead_units, Some((1, 4)), "{layers:?}");
        assert_eq!(layers[1].dead_units, Some((0, 2)));
    }

    #[test]
    fn update_ratio_is_the_relative_change_of_a_step() {
        let device = Device::flex().autodiff();
        device.seed(4);
        let model = mlp(&device, vec![4]);
        let input = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -1.0, 2.0, 1.0, 0.0, -0.5], [2, 3]), &device);
        let grads = loss_grads(&model, input);
        let config = TrainConfig { optimizer: "sgd".into(), momentum: 0.0, ..TrainConfig::default() };
        let mut optimizer = build_optimizer(&config);
        let before = WeightSnapshot::of(&model);
        let norms = layer_gradients(&model, &grads);
        let model = optimizer.step(0.01, model, grads);
        let ratios = before.update_ratios(&model);
        assert_eq!(ratios.len(), 2);
        // Plain SGD moves each layer by lr × its gradient.
        for ((name, ratio), layer) in ratios.iter().zip(&norms) {
            assert_eq!(name, &layer.layer);
            let expected = 0.01 * layer.grad_norm / layer.weight_norm;
            assert!((ratio - expected).abs() < 1e-3 * expected, "{name}: {ratio} vs {expected}");
        }
        assert!(global_grad_norm(&model, &GradientsParams::new()) == 0.0);
    }
}
