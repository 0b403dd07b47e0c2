//! A 2-D convolution (groups = 1) and its gradients, as im2col and one matrix product per sample.
//!
//! The forward pass is `Y[co, pixel] = W[co, patch] · cols[patch, pixel] + b[co]` per sample, written
//! straight into NCHW (no NHWC copy); the input gradient is `dcols = Wᵀ · dY` followed by col2im,
//! the scatter-add of im2col. Samples are independent, so both run in parallel over samples with
//! no reduction. The weight gradient is one matrix product per sample: `dW[co, patch] += dY[co, pixel] ·
//! cols[patch, pixel]ᵀ`, where `cols` is the sample's im2col (one row per input channel and kernel
//! offset, one column per output pixel). The transpose is a stride given to the GEMM, never a copy.
//! Samples are split into fixed chunks, each chunk accumulates its own gradient in parallel, and the
//! partial gradients are added in chunk order.

use rayon::prelude::*;

/// The geometry of a 2-D convolution with one group and the same padding on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Samples in the batch.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Input height and width.
    pub input: [usize; 2],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride along height and width.
    pub stride: [usize; 2],
    /// Zero padding added on each side along height and width.
    pub padding: [usize; 2],
    /// Dilation along height and width.
    pub dilation: [usize; 2],
}

/// Upper bound on the partial weight gradients summed at the end (memory: this many weight-sized
/// buffers); enough chunks to keep 16 cores busy.
const MAX_CHUNKS: usize = 16;

impl Conv2dGeometry {
    /// Output height and width (floor division, as every framework does).
    pub fn output(&self) -> [usize; 2] {
        std::array::from_fn(|d| {
            let span = self.dilation[d] * (self.kernel[d] - 1) + 1;
            (self.input[d] + 2 * self.padding[d]).saturating_sub(span) / self.stride[d] + 1
        })
    }

    /// Length of one im2col row set: input channels times kernel area.
    pub fn patch(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    fn input_plane(&self) -> usize {
        self.input[0] * self.input[1]
    }

    fn output_plane(&self) -> usize {
        let [height, width] = self.output();
        height * width
    }

    /// Whether im2col is the identity: a 1×1 kernel with stride 1 and no padding reads the input
    /// plane as it is.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// For a stride-1 convolution that keeps the width, the im2col row of kernel offset
    /// `(ky, offset_x)` is one contiguous run of the input plane shifted by a constant: the rows
    /// read from inside the plane are `block`, and within it `inside` (relative to `block`) reads
    /// `source`. Copying the run at once replaces a short copy per output row.
    fn shifted_run(&self, ky: usize, offset_x: isize) -> Option<ShiftedRun> {
        let [out_height, out_width] = self.output();
        let [height, width] = self.input;
        if self.stride != [1, 1] || out_width != width || width == 0 {
            return None;
        }
        let shift_y = (ky * self.dilation[0]) as isize - self.padding[0] as isize;
        let first = (-shift_y).clamp(0, out_height as isize) as usize;
        let last = (height as isize - shift_y).clamp(first as isize, out_height as isize) as usize;
        let block = first * width..last * width;
        let start = (first as isize + shift_y) * width as isize + offset_x;
        let lo = (-start).clamp(0, block.len() as isize);
        let hi = ((height * width) as isize - start).clamp(lo, block.len() as isize);
        // An empty run reads nothing (and its start may lie before the plane).
        let source = if lo < hi { (start + lo) as usize..(start + hi) as usize } else { 0..0 };
        Some(ShiftedRun {
            block,
            inside: lo as usize..hi as usize,
            source,
            width,
            wrapped_left: offset_x.clamp(-(width as isize), 0).unsigned_abs(),
            wrapped_right: offset_x.clamp(0, width as isize) as usize,
        })
    }

    /// Writes one sample's im2col into `cols` (`patch × output pixels`, row-major); positions in the
    /// padding are zero.
    fn im2col(&self, sample: &[f32], cols: &mut [f32]) {
        let [out_height, out_width] = self.output();
        let [height, width] = self.input;
        let pixels = out_height * out_width;
        let mut row = 0;
        for channel in 0..self.in_channels {
            let plane = &sample[channel * height * width..(channel + 1) * height * width];
            for ky in 0..self.kernel[0] {
                for kx in 0..self.kernel[1] {
                    let target = &mut cols[row * pixels..(row + 1) * pixels];
                    let offset_x = (kx * self.dilation[1]) as isize - self.padding[1] as isize;
                    row += 1;
                    if let Some(run) = self.shifted_run(ky, offset_x) {
                        // One copy of the whole run, then zeros where a row wrapped into its neighbour.
                        target[..run.block.start].fill(0.0);
                        target[run.block.end..].fill(0.0);
                        let block = &mut target[run.block.clone()];
                        block[..run.inside.start].fill(0.0);
                        block[run.inside.end..].fill(0.0);
                        block[run.inside.clone()].copy_from_slice(&plane[run.source.clone()]);
                        run.zero_wrapped(block);
                        continue;
                    }
                    for oy in 0..out_height {
                        let iy = (oy * self.stride[0] + ky * self.dilation[0]) as isize - self.padding[0] as isize;
                        let line = &mut target[oy * out_width..(oy + 1) * out_width];
                        if iy < 0 || iy >= height as isize {
                            line.fill(0.0);
                            continue;
                        }
                        let source = &plane[iy as usize * width..(iy as usize + 1) * width];
                        if self.stride[1] == 1 {
                            // Columns whose input x = ox + offset_x falls inside the row.
                            let first = (-offset_x).clamp(0, out_width as isize) as usize;
                            let last = (width as isize - offset_x).clamp(first as isize, out_width as isize) as usize;
                            line[..first].fill(0.0);
                            if first < last {
                                let start = (first as isize + offset_x) as usize;
                                line[first..last].copy_from_slice(&source[start..start + (last - first)]);
                            }
                            line[last..].fill(0.0);
                        } else {
                            for (ox, value) in line.iter_mut().enumerate() {
                                let ix = (ox * self.stride[1]) as isize + offset_x;
                                *value = if ix < 0 || ix >= width as isize { 0.0 } else { source[ix as usize] };
                            }
                        }
                    }
                }
            }
        }
    }
}

/// See [`Conv2dGeometry::shifted_run`].
struct ShiftedRun {
    block: std::ops::Range<usize>,
    inside: std::ops::Range<usize>,
    source: std::ops::Range<usize>,
    width: usize,
    /// Leading and trailing columns of each row that the shifted run took from the row before or
    /// after: they are padding, and must be zero.
    wrapped_left: usize,
    wrapped_right: usize,
}

impl ShiftedRun {
    fn zero_wrapped(&self, block: &mut [f32]) {
        if self.wrapped_left + self.wrapped_right > 0 {
            for line in block.chunks_exact_mut(self.width) {
                line[..self.wrapped_left].fill(0.0);
                line[self.width - self.wrapped_right..].fill(0.0);
            }
        }
    }
}

/// A matrix read from a slice through its strides: a transpose is a view, never a copy.
#[derive(Debug, Clone, Copy)]
struct Matrix<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    fn transposed(self) -> Self {
        Self { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// Whether every element the strides reach lies in the slice.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`, with `dst` row-major; on this thread
/// (callers parallelize over samples), through the `gemm` crate's micro-kernels.
fn matmul(dst: &mut [f32], lhs: Matrix<'_>, rhs: Matrix<'_>, accumulate: bool) {
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    assert!(rhs.rows == k && dst.len() >= m * n && lhs.in_bounds() && rhs.in_bounds(), "matmul: shapes");
    // SAFETY: the assertion above keeps every access of the three views inside its slice; `dst` is
    // a unique borrow, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The convolution of `x` `[batch, in, h, w]` with `weight` `[out, in, kh, kw]`, plus `bias`
/// `[out]` when given: `[batch, out, oh, ow]`.
pub fn conv2d(geometry: &Conv2dGeometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let g = geometry;
    let (patch, pixels, plane) = (g.patch(), g.output_plane(), g.input_plane());
    assert_eq!(x.len(), g.batch * g.in_channels * plane, "conv2d: input length");
    assert_eq!(weight.len(), g.out_channels * patch, "conv2d: weight length");
    let mut output = vec![0.0f32; g.batch * g.out_channels * pixels];
    if pixels == 0 {
        return output;
    }
    let columns = if g.is_pointwise() { 0 } else { patch * pixels };
    output.par_chunks_mut(g.out_channels * pixels).enumerate().for_each_init(
        || vec![0.0f32; columns],
        |cols, (n, out)| {
            let sample = &x[n * g.in_channels * plane..(n + 1) * g.in_channels * plane];
            let cols: &[f32] = if g.is_pointwise() {
                sample
            } else {
                g.im2col(sample, cols);
                cols
            };
            // out[co, pixel] = Σ_p weight[co, p] · cols[p, pixel]
            let weight = Matrix::row_major(weight, g.out_channels, patch);
            matmul(out, weight, Matrix::row_major(cols, patch, pixels), false);
            if let Some(bias) = bias {
                for (row, &b) in out.chunks_exact_mut(pixels).zip(bias) {
                    row.iter_mut().for_each(|v| *v += b);
                }
            }
        },
    );
    output
}

/// The gradient of the loss with respect to the convolution's input, `[batch, in, h, w]`, given the
/// weight and the gradient of the output `[batch, out, oh, ow]`.
pub fn conv2d_input_grad(geometry: &Conv2dGeometry, weight: &[f32], output_grad: &[f32]) -> Vec<f32> {
    let g = geometry;
    let (patch, pixels, plane) = (g.patch(), g.output_plane(), g.input_plane());
    assert_eq!(weight.len(), g.out_channels * patch, "conv2d_input_grad: weight length");
    assert_eq!(output_grad.len(), g.batch * g.out_channels * pixels, "conv2d_input_grad: gradient length");
    let mut input_grad = vec![0.0f32; g.batch * g.in_channels * plane];
    if pixels == 0 || plane == 0 {
        return input_grad;
    }
    let pointwise = g.is_pointwise();
    input_grad.par_chunks_mut(g.in_channels * plane).enumerate().for_each_init(
        || vec![0.0f32; if pointwise { 0 } else { patch * pixels }],
        |cols, (n, dx)| {
            let grad = &output_grad[n * g.out_channels * pixels..(n + 1) * g.out_channels * pixels];
            let target = if pointwise { &mut dx[..] } else { &mut cols[..] };
            // target[p, pixel] = Σ_co weight[co, p] · grad[co, pixel] (the weight read transposed)
            let weight = Matrix::row_major(weight, g.out_channels, patch).transposed();
            matmul(target, weight, Matrix::row_major(grad, g.out_channels, pixels), false);
            if !pointwise {
                g.col2im(cols, dx);
            }
        },
    );
    input_grad
}

impl Conv2dGeometry {
    /// Adds one sample's im2col-shaped gradient back onto the input positions it was read from
    /// (the adjoint of [`Conv2dGeometry::im2col`]); `sample` must start zeroed.
    fn col2im(&self, cols: &mut [f32], sample: &mut [f32]) {
        let [out_height, out_width] = self.output();
        let [height, width] = self.input;
        let pixels = out_height * out_width;
        let mut row = 0;
        for channel in 0..self.in_channels {
            let plane = &mut sample[channel * height * width..(channel + 1) * height * width];
            for ky in 0..self.kernel[0] {
                for kx in 0..self.kernel[1] {
                    let source = &mut cols[row * pixels..(row + 1) * pixels];
                    let offset_x = (kx * self.dilation[1]) as isize - self.padding[1] as isize;
                    row += 1;
                    if let Some(run) = self.shifted_run(ky, offset_x) {
                        let block = &mut source[run.block.clone()];
                        run.zero_wrapped(block);
                        for (t, v) in plane[run.source.clone()].iter_mut().zip(&block[run.inside.clone()]) {
                            *t += v;
                        }
                        continue;
                    }
                    let source = &*source;
                    for oy in 0..out_height {
                        let iy = (oy * self.stride[0] + ky * self.dilation[0]) as isize - self.padding[0] as isize;
                        if iy < 0 || iy >= height as isize {
                            continue;
                        }
                        let line = &source[oy * out_width..(oy + 1) * out_width];
                        let target = &mut plane[iy as usize * width..(iy as usize + 1) * width];
                        if self.stride[1] == 1 {
                            let first = (-offset_x).clamp(0, out_width as isize) as usize;
                            let last = (width as isize - offset_x).clamp(first as isize, out_width as isize) as usize;
                            if first < last {
                                let start = (first as isize + offset_x) as usize;
                                for (t, v) in target[start..start + (last - first)].iter_mut().zip(&line[first..last]) {
                                    *t += v;
                                }
                            }
                        } else {
                            for (ox, v) in line.iter().enumerate() {
                                let ix = (ox * self.stride[1]) as isize + offset_x;
                                if ix >= 0 && ix < width as isize {
                                    target[ix as usize] += v;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The gradient of the loss with respect to the convolution's weight, `[out, in, kh, kw]`, given
/// the input `x` `[batch, in, h, w]` and the gradient of the output `[batch, out, oh, ow]`.
pub fn conv2d_weight_grad(geometry: &Conv2dGeometry, x: &[f32], output_grad: &[f32]) -> Vec<f32> {
    let g = geometry;
    let (patch, pixels, plane) = (g.patch(), g.output_plane(), g.input_plane());
    assert_eq!(x.len(), g.batch * g.in_channels * plane, "conv2d_weight_grad: input length");
    assert_eq!(output_grad.len(), g.batch * g.out_channels * pixels, "conv2d_weight_grad: gradient length");
    let weight_len = g.out_channels * patch;
    let partials: Vec<Vec<f32>> = super::fixed_chunks(g.batch, MAX_CHUNKS)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|samples| {
            let mut partial = vec![0.0f32; weight_len];
            let mut cols = vec![0.0f32; patch * pixels];
            for n in samples {
                g.im2col(&x[n * g.in_channels * plane..(n + 1) * g.in_channels * plane], &mut cols);
                let grad = &output_grad[n * g.out_channels * pixels..(n + 1) * g.out_channels * pixels];
                // partial[co, p] += Σ_pixel grad[co, pixel] · cols[p, pixel]
                let grad = Matrix::row_major(grad, g.out_channels, pixels);
                matmul(&mut partial, grad, Matrix::row_major(&cols, patch, pixels).transposed(), true);
            }
            partial
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut total = partials.next().unwrap_or_else(|| vec![0.0; weight_len]);
    for partial in partials {
        for (sum, value) in total.iter_mut().zip(&partial) {
            *sum += value;
        }
    }
    total
}

/// The gradient with respect to a per-channel bias: the sum of the output gradient
/// `[batch, channels, plane]` over samples and positions.
pub fn channel_sums(output_grad: &[f32], batch: usize, channels: usize) -> Vec<f32> {
    let plane = output_grad.len() / (batch * channels).max(1);
    (0..channels)
        .into_par_iter()
        .map(|c| {
            let total: f64 = (0..batch)
                .map(|n| super::sum(&output_grad[(n * channels + c) * plane..(n * channels + c + 1) * plane]) as f64)
                .sum();
            total as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, finite_difference, values};

    /// The convolution itself, by its definition, in f64: the reference the gradients are checked by.
    fn convolve(g: &Conv2dGeometry, x: &[f32], weight: &[f32]) -> Vec<f64> {
        let [oh, ow] = g.output();
        let [h, w] = g.input;
        let [kh, kw] = g.kernel;
        let mut out = vec![0.0f64; g.batch * g.out_channels * oh * ow];
        for n in 0..g.batch {
            for co in 0..g.out_channels {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = 0.0f64;
                        for ci in 0..g.in_channels {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = (oy * g.stride[0] + ky * g.dilation[0]) as isize - g.padding[0] as isize;
                                    let ix = (ox * g.stride[1] + kx * g.dilation[1]) as isize - g.padding[1] as isize;
                                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                        acc += x[((n * g.in_channels + ci) * h + iy as usize) * w + ix as usize] as f64
                                            * weight[((co * g.in_channels + ci) * kh + ky) * kw + kx] as f64;
                                    }
                                }
                            }
                        }
                        out[((n * g.out_channels + co) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
        out
    }

    fn check(g: Conv2dGeometry) {
        let [oh, ow] = g.output();
        let x = values(g.batch * g.in_channels * g.input[0] * g.input[1], 1);
        let weight = values(g.out_channels * g.patch(), 2);
        let upstream = values(g.batch * g.out_channels * oh * ow, 3);
        let loss = |w: &[f32]| -> f64 { convolve(&g, &x, w).iter().zip(&upstream).map(|(y, u)| y * *u as f64).sum() };
        // The loss is linear in the weight, so the finite difference is exact up to rounding.
        let expected: Vec<f32> = (0..weight.len()).map(|i| finite_difference(&weight, i, loss) as f32).collect();
        assert_close(&conv2d_weight_grad(&g, &x, &upstream), &expected, 2e-3, "weight grad");
        // The forward pass against the definition, with and without a bias.
        let bias = values(g.out_channels, 4);
        let reference = convolve(&g, &x, &weight);
        let with_bias: Vec<f32> = reference
            .iter()
            .enumerate()
            .map(|(i, &v)| (v + bias[i / (oh * ow) % g.out_channels] as f64) as f32)
            .collect();
        assert_close(&conv2d(&g, &x, &weight, Some(&bias)), &with_bias, 1e-5, "forward with bias");
        let plain: Vec<f32> = reference.iter().map(|&v| v as f32).collect();
        assert_close(&conv2d(&g, &x, &weight, None), &plain, 1e-5, "forward");
        // The input gradient: the loss is linear in x too.
        let loss_x =
            |x: &[f32]| -> f64 { convolve(&g, x, &weight).iter().zip(&upstream).map(|(y, u)| y * *u as f64).sum() };
        let expected: Vec<f32> = (0..x.len()).map(|i| finite_difference(&x, i, loss_x) as f32).collect();
        assert_close(&conv2d_input_grad(&g, &weight, &upstream), &expected, 2e-3, "input grad");
        let bias: Vec<f32> = (0..g.out_channels)
            .map(|c| {
                (0..g.batch)
                    .flat_map(|n| (0..oh * ow).map(move |p| (n, p)))
                    .map(|(n, p)| upstream[(n * g.out_channels + c) * oh * ow + p])
                    .sum()
            })
            .collect();
        assert_close(&channel_sums(&upstream, g.batch, g.out_channels), &bias, 1e-5, "bias grad");
    }

    fn geometry(
        batch: usize,
        channels: [usize; 2],
        input: [usize; 2],
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Conv2dGeometry {
        Conv2dGeometry {
            batch,
            in_channels: channels[0],
            out_channels: channels[1],
            input,
            kernel: [kernel, kernel],
            stride: [stride, stride],
            padding: [padding, padding],
            dilation: [1, 1],
        }
    }

    #[test]
    fn weight_and_bias_gradients_match_finite_differences_on_the_models_shapes() {
        check(geometry(3, [1, 4], [7, 7], 3, 1, 1)); // the CNN's 3×3, padding 1
        check(geometry(1, [3, 2], [5, 6], 3, 1, 1)); // batch 1, odd sizes
        check(geometry(2, [2, 3], [7, 5], 3, 2, 1)); // ResNet's strided 3×3
        check(geometry(2, [3, 4], [6, 6], 1, 2, 0)); // ResNet's 1×1 projection
        check(geometry(17, [2, 2], [4, 4], 3, 1, 0)); // more samples than chunks, no padding
        check(geometry(2, [3, 5], [4, 5], 1, 1, 0)); // pointwise: im2col is the identity
        check(geometry(2, [2, 2], [2, 2], 3, 1, 1)); // kernel wider than the unpadded input
        check(geometry(2, [2, 3], [6, 7], 5, 1, 2)); // 5×5 "same": runs shifted by two columns
        check(geometry(1, [1, 2], [5, 1], 3, 1, 1)); // one column: every neighbour is padding
        check(geometry(1, [1, 1], [1, 1], 3, 1, 1)); // one pixel: most kernel rows read nothing
        // Kernel offsets that land wholly in the padding left of a narrow row, where the output
        // is narrower than the input (so no shifted run): a first-valid column past the row's end.
        let mut wide = geometry(1, [1, 2], [2, 3], 2, 1, 4);
        wide.dilation = [1, 9];
        check(wide);
        let mut same_dilated = geometry(2, [2, 2], [7, 6], 3, 1, 2);
        same_dilated.dilation = [2, 2];
        check(same_dilated);
        let mut dilated = geometry(2, [2, 2], [8, 7], 3, 1, 2);
        dilated.dilation = [2, 1];
        check(dilated);
    }

    #[test]
    fn the_weight_gradient_does_not_depend_on_the_thread_count() {
        let g = geometry(33, [3, 5], [9, 9], 3, 1, 1);
        let x = values(g.batch * 3 * 81, 4);
        let upstream = values(g.batch * 5 * 81, 5);
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let four = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
        let a = one.install(|| conv2d_weight_grad(&g, &x, &upstream));
        let b = four.install(|| conv2d_weight_grad(&g, &x, &upstream));
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}
