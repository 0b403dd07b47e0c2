//! Batch normalization in training: the batch's statistics, the normalized output and the
//! gradients, as per-channel passes over NCHW data.
//!
//! Forward reads the input twice (mean, then the centered variance: the two-pass variance Burn and
//! PyTorch compute, not the cancellation-prone `E[x²] − E[x]²`) and writes the output once.
//! Backward reads the input and the output gradient once for the two per-channel sums and once more
//! for the input gradient. Per-channel sums run in parallel over channels, element-wise passes in
//! parallel over `(sample, channel)` planes.

use rayon::prelude::*;

/// The shape of batch-normalized data: `[batch, channels, plane]` (`plane` is height × width, or 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormShape {
    /// Samples.
    pub batch: usize,
    /// Channels (features), normalized independently.
    pub channels: usize,
    /// Elements per sample and channel.
    pub plane: usize,
}

impl NormShape {
    fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }

    fn count(&self) -> f64 {
        (self.batch * self.plane) as f64
    }

    /// Σ over samples and positions of `f(plane of x, plane of y)` for channel `c`, in f64.
    fn channel_sum(&self, c: usize, x: &[f32], y: &[f32], f: impl Fn(&[f32], &[f32]) -> f32) -> f64 {
        (0..self.batch)
            .map(|n| {
                let range = (n * self.channels + c) * self.plane..(n * self.channels + c + 1) * self.plane;
                f(&x[range.clone()], &y[range]) as f64
            })
            .sum()
    }

    /// Runs `f(channel, plane)` over every `(sample, channel)` plane of `data` in parallel.
    fn for_each_plane(&self, data: &mut [f32], f: impl Fn(usize, usize, &mut [f32]) + Sync) {
        let min_planes = (4096 / self.plane.max(1)).max(1);
        data.par_chunks_mut(self.plane.max(1))
            .enumerate()
            .with_min_len(min_planes)
            .for_each(|(index, plane)| f(index % self.channels, index, plane));
    }
}

/// What the forward pass returns: the output, and the batch mean and biased variance per channel
/// (what running statistics are updated with, and what the backward pass needs).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormOutput {
    /// The normalized, scaled and shifted input, same shape as the input.
    pub output: Vec<f32>,
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// Biased variance per channel.
    pub variance: Vec<f32>,
}

/// Normalizes `x` with its own batch statistics: `(x − mean) / sqrt(variance + epsilon) · gamma + beta`.
pub fn batch_norm_train(shape: NormShape, x: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64) -> BatchNormOutput {
    assert_eq!(x.len(), shape.len(), "batch_norm_train: input length");
    let count = shape.count();
    let mean: Vec<f32> = (0..shape.channels)
        .into_par_iter()
        .map(|c| (shape.channel_sum(c, x, x, |a, _| super::sum(a)) / count) as f32)
        .collect();
    let variance: Vec<f32> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let m = mean[c];
            let squares = shape.channel_sum(c, x, x, |a, _| {
                let mut lanes = [0.0f32; 8];
                let mut chunks = a.chunks_exact(8);
                for chunk in &mut chunks {
                    for (lane, v) in lanes.iter_mut().zip(chunk) {
                        *lane += (v - m) * (v - m);
                    }
                }
                lanes.iter().sum::<f32>() + chunks.remainder().iter().map(|v| (v - m) * (v - m)).sum::<f32>()
            });
            (squares / count) as f32
        })
        .collect();
    let (scale, shift) = affine(&mean, &variance, gamma, beta, epsilon);
    let mut output = vec![0.0f32; x.len()];
    shape.for_each_plane(&mut output, |c, index, out| {
        let input = &x[index * shape.plane..(index + 1) * shape.plane];
        for (o, v) in out.iter_mut().zip(input) {
            *o = v * scale[c] + shift[c];
        }
    });
    BatchNormOutput { output, mean, variance }
}

/// The per-channel `scale = gamma / sqrt(variance + epsilon)` and `shift = beta − mean · scale` that
/// make normalization one multiply-add per element.
fn affine(mean: &[f32], variance: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = variance.iter().zip(gamma).map(|(&v, &g)| g / (v as f64 + epsilon).sqrt() as f32).collect();
    let shift = beta.iter().zip(mean).zip(&scale).map(|((&b, &m), &s)| b - m * s).collect();
    (scale, shift)
}

/// The gradients of [`batch_norm_train`] with respect to its input, `gamma` and `beta`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormGrads {
    /// Gradient of the input, same shape as the input.
    pub x: Vec<f32>,
    /// Gradient of `gamma` per channel.
    pub gamma: Vec<f32>,
    /// Gradient of `beta` per channel.
    pub beta: Vec<f32>,
}

/// Backward of [`batch_norm_train`], given the statistics it returned and the output gradient.
pub fn batch_norm_train_backward(
    shape: NormShape,
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f64,
    output_grad: &[f32],
) -> BatchNormGrads {
    assert_eq!(x.len(), shape.len(), "batch_norm_train_backward: input length");
    assert_eq!(output_grad.len(), shape.len(), "batch_norm_train_backward: gradient length");
    let inv_std: Vec<f32> = variance.iter().map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32).collect();
    // Σ dy and Σ dy · x̂ per channel, with x̂ = (x − mean) · inv_std: Σ dy·x̂ = inv_std · (Σ dy·x − mean · Σ dy).
    let sums: Vec<(f64, f64)> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let dy = shape.channel_sum(c, output_grad, output_grad, |g, _| super::sum(g));
            let dy_x = shape.channel_sum(c, output_grad, x, super::dot);
            (dy, (dy_x - mean[c] as f64 * dy) * inv_std[c] as f64)
        })
        .collect();
    let beta_grad: Vec<f32> = sums.iter().map(|&(dy, _)| dy as f32).collect();
    let gamma_grad: Vec<f32> = sums.iter().map(|&(_, dy_xhat)| dy_xhat as f32).collect();
    // dx = gamma · inv_std · (dy − Σdy/M − x̂ · Σ(dy·x̂)/M)
    let count = shape.count();
    let coefficients: Vec<[f32; 3]> = (0..shape.channels)
        .map(|c| {
            let k = gamma[c] * inv_std[c];
            let (dy, dy_xhat) = sums[c];
            [k, k * (dy / count) as f32, k * inv_std[c] * (dy_xhat / count) as f32]
        })
        .collect();
    let mut x_grad = vec![0.0f32; x.len()];
    shape.for_each_plane(&mut x_grad, |c, index, out| {
        let range = index * shape.plane..(index + 1) * shape.plane;
        let [k, mean_term, slope] = coefficients[c];
        let m = mean[c];
        for ((o, g), v) in out.iter_mut().zip(&output_grad[range.clone()]).zip(&x[range]) {
            *o = k * g - mean_term - slope * (v - m);
        }
    });
    BatchNormGrads { x: x_grad, gamma: gamma_grad, beta: beta_grad }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, finite_difference, values};

    const EPSILON: f64 = 1e-5;

    /// Σ output · upstream in f64, through the kernel's own forward: the scalar whose gradients the
    /// backward must produce.
    fn loss(shape: NormShape, x: &[f32], gamma: &[f32], beta: &[f32], upstream: &[f32]) -> f64 {
        let out = batch_norm_train(shape, x, gamma, beta, EPSILON).output;
        out.iter().zip(upstream).map(|(&o, &u)| o as f64 * u as f64).sum()
    }

    fn check(shape: NormShape) {
        let x: Vec<f32> = values(shape.len(), 1).iter().map(|v| v * 2.0 + 0.5).collect();
        let gamma: Vec<f32> = values(shape.channels, 2).iter().map(|v| 1.0 + v / 2.0).collect();
        let beta = values(shape.channels, 3);
        let upstream = values(shape.len(), 4);

        // Forward against the definition in f64.
        let forward = batch_norm_train(shape, &x, &gamma, &beta, EPSILON);
        let per_channel = |c: usize| {
            (0..shape.batch)
                .flat_map(move |n| (0..shape.plane).map(move |p| (n * shape.channels + c) * shape.plane + p))
        };
        for c in 0..shape.channels {
            let m: f64 = per_channel(c).map(|i| x[i] as f64).sum::<f64>() / shape.count();
            let v: f64 = per_channel(c).map(|i| (x[i] as f64 - m).powi(2)).sum::<f64>() / shape.count();
            assert!((forward.mean[c] as f64 - m).abs() < 1e-5 && (forward.variance[c] as f64 - v).abs() < 1e-4);
            for i in per_channel(c) {
                let expected = (x[i] as f64 - m) / (v + EPSILON).sqrt() * gamma[c] as f64 + beta[c] as f64;
                assert!((forward.output[i] as f64 - expected).abs() < 1e-4, "output[{i}]");
            }
        }

        let grads = batch_norm_train_backward(shape, &x, &gamma, &forward.mean, &forward.variance, EPSILON, &upstream);
        let numeric = |slice: &[f32], f: &dyn Fn(&[f32]) -> f64| -> Vec<f32> {
            (0..slice.len()).map(|i| finite_difference(slice, i, f) as f32).collect()
        };
        let dx = numeric(&x, &|x| loss(shape, x, &gamma, &beta, &upstream));
        let dgamma = numeric(&gamma, &|g| loss(shape, &x, g, &beta, &upstream));
        let dbeta = numeric(&beta, &|b| loss(shape, &x, &gamma, b, &upstream));
        assert_close(&grads.x, &dx, 2e-2, "x grad");
        assert_close(&grads.gamma, &dgamma, 2e-2, "gamma grad");
        assert_close(&grads.beta, &dbeta, 2e-2, "beta grad");
    }

    #[test]
    fn forward_and_gradients_match_the_definition_and_finite_differences() {
        check(NormShape { batch: 4, channels: 3, plane: 9 });
        check(NormShape { batch: 1, channels: 2, plane: 13 }); // batch 1, odd plane
        check(NormShape { batch: 5, channels: 4, plane: 1 }); // rank 2: [batch, features]
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let shape = NormShape { batch: 7, channels: 5, plane: 600 };
        let x = values(shape.len(), 5);
        let gamma = values(5, 6);
        let beta = values(5, 7);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let four = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
        let a = one.install(|| batch_norm_train(shape, &x, &gamma, &beta, EPSILON));
        let b = four.install(|| batch_norm_train(shape, &x, &gamma, &beta, EPSILON));
        assert_eq!(a, b);
    }
}
