//! 2×2 max-pooling with stride 2 (the pooling of the built-in CNN), forward with 32-bit indices and
//! backward by scattering into them.
//!
//! Each output keeps the first maximum of its window in row-major order, and a NaN anywhere in the
//! window wins, as in PyTorch: a diverging activation shows up in the loss instead of being pooled
//! away. Odd heights and widths drop the last row or column (floor mode).

use rayon::prelude::*;

/// The forward pass: the pooled planes and, for each output, the position of its maximum within
/// its input plane (`y · width + x`).
#[derive(Debug, Clone, PartialEq)]
pub struct MaxPoolOutput {
    /// `[planes, height / 2, width / 2]`.
    pub output: Vec<f32>,
    /// Same shape as `output`.
    pub indices: Vec<u32>,
}

/// Pools `x`, `planes` planes of `height × width` (planes = batch × channels).
pub fn max_pool2x2(x: &[f32], planes: usize, height: usize, width: usize) -> MaxPoolOutput {
    assert_eq!(x.len(), planes * height * width, "max_pool2x2: input length");
    assert!(height * width <= u32::MAX as usize, "max_pool2x2: a plane of {height}×{width} overflows 32-bit indices");
    let (out_height, out_width) = (height / 2, width / 2);
    let out_plane = out_height * out_width;
    let mut output = vec![0.0f32; planes * out_plane];
    let mut indices = vec![0u32; planes * out_plane];
    if out_plane == 0 {
        return MaxPoolOutput { output, indices };
    }
    output.par_chunks_mut(out_plane).zip(indices.par_chunks_mut(out_plane)).enumerate().for_each(|(p, (out, idx))| {
        let plane = &x[p * height * width..(p + 1) * height * width];
        for oy in 0..out_height {
            let top = &plane[2 * oy * width..(2 * oy + 1) * width];
            let bottom = &plane[(2 * oy + 1) * width..(2 * oy + 2) * width];
            for ox in 0..out_width {
                let x0 = 2 * ox;
                let candidates = [
                    (top[x0], 2 * oy * width + x0),
                    (top[x0 + 1], 2 * oy * width + x0 + 1),
                    (bottom[x0], (2 * oy + 1) * width + x0),
                    (bottom[x0 + 1], (2 * oy + 1) * width + x0 + 1),
                ];
                let mut best = candidates[0];
                for &(value, index) in &candidates[1..] {
                    if value > best.0 || (value.is_nan() && !best.0.is_nan()) {
                        best = (value, index);
                    }
                }
                out[oy * out_width + ox] = best.0;
                idx[oy * out_width + ox] = best.1 as u32;
            }
        }
    });
    MaxPoolOutput { output, indices }
}

/// The input gradient of [`max_pool2x2`]: each output's gradient goes to the position of its maximum.
pub fn max_pool2x2_backward(
    output_grad: &[f32],
    indices: &[u32],
    planes: usize,
    height: usize,
    width: usize,
) -> Vec<f32> {
    assert_eq!(output_grad.len(), indices.len(), "max_pool2x2_backward: gradient and indices differ in length");
    let out_plane = (height / 2) * (width / 2);
    let mut x_grad = vec![0.0f32; planes * height * width];
    if out_plane == 0 {
        return x_grad;
    }
    x_grad.par_chunks_mut(height * width).enumerate().for_each(|(p, plane)| {
        let range = p * out_plane..(p + 1) * out_plane;
        // Windows do not overlap, so each position receives at most one gradient.
        for (&grad, &index) in output_grad[range.clone()].iter().zip(&indices[range]) {
            plane[index as usize] = grad;
        }
    });
    x_grad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::values;

    fn reference(x: &[f32], planes: usize, h: usize, w: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for p in 0..planes {
            for oy in 0..h / 2 {
                for ox in 0..w / 2 {
                    let at = |dy: usize, dx: usize| x[p * h * w + (2 * oy + dy) * w + 2 * ox + dx];
                    out.push(at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1)));
                }
            }
        }
        out
    }

    #[test]
    fn pools_the_maximum_and_routes_its_gradient_back() {
        for (planes, h, w) in [(3, 4, 4), (1, 5, 7), (2, 28, 28), (1, 1, 4)] {
            let x = values(planes * h * w, 9);
            let pooled = max_pool2x2(&x, planes, h, w);
            assert_eq!(pooled.output, reference(&x, planes, h, w));
            let upstream = values(pooled.output.len(), 10);
            let grad = max_pool2x2_backward(&upstream, &pooled.indices, planes, h, w);
            // The gradient of Σ pooled · upstream: upstream at each window's maximum, zero elsewhere.
            for (i, (&g, &v)) in grad.iter().zip(&x).enumerate() {
                let (p, y, xx) = (i / (h * w), i % (h * w) / w, i % w);
                let window =
                    (y < h / 2 * 2 && xx < w / 2 * 2).then(|| p * (h / 2) * (w / 2) + (y / 2) * (w / 2) + xx / 2);
                match window {
                    Some(o) if pooled.output[o] == v => assert_eq!(g, upstream[o]),
                    _ => assert_eq!(g, 0.0),
                }
            }
        }
    }

    #[test]
    fn ties_keep_the_first_maximum_and_nan_wins() {
        let pooled = max_pool2x2(&[1.0, 1.0, 1.0, 1.0, 0.0, f32::NAN, 5.0, 1.0], 2, 2, 2);
        assert_eq!(pooled.indices, vec![0, 1]);
        assert_eq!(pooled.output[0], 1.0);
        assert!(pooled.output[1].is_nan());
    }
}
