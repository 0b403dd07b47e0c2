//! CPU kernels for training convolutional networks, on plain `f32` slices in NCHW order.
//!
//! Burn's CPU backend composes these operations from generic tensor passes (transposes, per-input-
//! channel im2col, several full passes for batch norm, 64-bit pooling indices written and cast in a
//! second pass). Each kernel here is one or two passes over the data, parallel over independent
//! work (samples, channels, planes) in fixed chunks, so results do not depend on the thread count:
//! the same inputs give the same bits on 1 or 64 threads.
//!
//! `regimen-train` binds them to Burn through a backend extension; this crate knows nothing of
//! Burn, which keeps it fast to build and test.

pub mod adam;
pub mod conv;
pub mod norm;
pub mod pool;

/// Sums a slice in `f32` with eight independent accumulators, which the compiler vectorizes;
/// callers add these partial sums in `f64`, so long reductions keep their precision.
pub(crate) fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, value) in lanes.iter_mut().zip(chunk) {
            *lane += value;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    lanes.iter().sum::<f32>() + tail
}

/// The dot product of two equally long slices, vectorized like [`sum`].
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut a_chunks = a.chunks_exact(8);
    let mut b_chunks = b.chunks_exact(8);
    for (x, y) in (&mut a_chunks).zip(&mut b_chunks) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// Splits `count` items into at most `max_chunks` contiguous ranges of nearly equal size. The split
/// depends only on `count`, never on the number of threads, so reductions over the chunks add in the
/// same order on every machine.
pub(crate) fn fixed_chunks(count: usize, max_chunks: usize) -> impl Iterator<Item = std::ops::Range<usize>> + Clone {
    let chunks = count.clamp(1, max_chunks.max(1));
    let size = count.div_ceil(chunks).max(1);
    (0..count.div_ceil(size)).map(move |i| i * size..((i + 1) * size).min(count))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Deterministic pseudo-random inputs and finite differences for the kernel tests.

    /// `n` values in [-1, 1) from a simple LCG: reproducible with no dependency.
    pub fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Central finite difference of a scalar function of `x` at element `i`, in f64.
    pub fn finite_difference(x: &[f32], i: usize, f: impl Fn(&[f32]) -> f64) -> f64 {
        let h = 1e-2f32;
        let mut plus = x.to_vec();
        plus[i] += h;
        let mut minus = x.to_vec();
        minus[i] -= h;
        (f(&plus) - f(&minus)) / (2.0 * h as f64)
    }

    /// Asserts two slices agree within `tolerance` relative to the larger magnitude (at least 1).
    pub fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32, what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            let scale = a.abs().max(e.abs()).max(1.0);
            assert!((a - e).abs() <= tolerance * scale, "{what}[{i}]: {a} vs {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_chunks_cover_every_item_once() {
        for count in [0, 1, 2, 7, 16, 17, 64, 1000] {
            let ranges: Vec<_> = fixed_chunks(count, 16).collect();
            assert!(ranges.len() <= 16);
            let covered: Vec<usize> = ranges.into_iter().flatten().collect();
            assert_eq!(covered, (0..count).collect::<Vec<_>>(), "count {count}");
        }
    }

    #[test]
    fn sums_and_dots_match_the_plain_loop() {
        let a = testing::values(1003, 1);
        let b = testing::values(1003, 2);
        let plain: f64 = a.iter().map(|&v| v as f64).sum();
        assert!((sum(&a) as f64 - plain).abs() < 1e-3);
        let plain: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        assert!((dot(&a, &b) as f64 - plain).abs() < 1e-3);
    }
}
