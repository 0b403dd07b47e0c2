//! A scrambled Sobol sequence: points that fill the unit cube more evenly than random ones.
//!
//! With few trials, low-discrepancy points leave fewer holes than independent draws, and, unlike
//! a grid, every trial tries a new value of every parameter. The direction numbers are Joe and
//! Kuo's (`new-joe-kuo-6.21201`, 40 dimensions here), points are taken in Gray-code order (the
//! order of scipy's `qmc.Sobol`) and computed directly from the trial number, so any worker can
//! compute any point. The sequence is randomized by the seed with a linear matrix scramble and a
//! digital shift (Matoušek 1998; what scipy does), which keeps its net structure, makes every
//! point uniform on `[0, 1)` and gives independent sequences for different seeds. Point 0 (the
//! origin before scrambling) is skipped: trial `n` takes point `n + 1`. Each searched parameter
//! (fixed ones excepted) takes the next dimension in space order; inactive conditional parameters
//! keep theirs, and parameters beyond the 40th get seeded random numbers instead.

use rand::RngCore;

use crate::sampler::{Sampler, Stream, Trial, assemble, rng_for, unit};
use crate::space::{Domain, SearchSpace};
use crate::value::Params;

/// Bits of each coordinate: the sequence repeats after 2^32 points.
const BITS: usize = 32;

/// Joe and Kuo's parameters for dimensions 2 to 40: the degree `s` of the primitive polynomial,
/// its middle coefficients `a` as an integer, and the `s` initial direction numbers `m`.
/// Dimension 1 is van der Corput's sequence.
const JOE_KUO: [(usize, u32, [u32; 8]); 39] = [
    (1, 0, [1, 0, 0, 0, 0, 0, 0, 0]),
    (2, 1, [1, 3, 0, 0, 0, 0, 0, 0]),
    (3, 1, [1, 3, 1, 0, 0, 0, 0, 0]),
    (3, 2, [1, 1, 1, 0, 0, 0, 0, 0]),
    (4, 1, [1, 1, 3, 3, 0, 0, 0, 0]),
    (4, 4, [1, 3, 5, 13, 0, 0, 0, 0]),
    (5, 2, [1, 1, 5, 5, 17, 0, 0, 0]),
    (5, 4, [1, 1, 5, 5, 5, 0, 0, 0]),
    (5, 7, [1, 1, 7, 11, 19, 0, 0, 0]),
    (5, 11, [1, 1, 5, 1, 1, 0, 0, 0]),
    (5, 13, [1, 1, 1, 3, 11, 0, 0, 0]),
    (5, 14, [1, 3, 5, 5, 31, 0, 0, 0]),
    (6, 1, [1, 3, 3, 9, 7, 49, 0, 0]),
    (6, 13, [1, 1, 1, 15, 21, 21, 0, 0]),
    (6, 16, [1, 3, 1, 13, 27, 49, 0, 0]),
    (6, 19, [1, 1, 1, 15, 7, 5, 0, 0]),
    (6, 22, [1, 3, 1, 15, 13, 25, 0, 0]),
    (6, 25, [1, 1, 5, 5, 19, 61, 0, 0]),
    (7, 1, [1, 3, 7, 11, 23, 15, 103, 0]),
    (7, 4, [1, 3, 7, 13, 13, 15, 69, 0]),
    (7, 7, [1, 1, 3, 13, 7, 35, 63, 0]),
    (7, 8, [1, 3, 5, 9, 1, 25, 53, 0]),
    (7, 14, [1, 3, 1, 13, 9, 35, 107, 0]),
    (7, 19, [1, 3, 1, 5, 27, 61, 31, 0]),
    (7, 21, [1, 1, 5, 11, 19, 41, 61, 0]),
    (7, 28, [1, 3, 5, 3, 3, 13, 69, 0]),
    (7, 31, [1, 1, 7, 13, 1, 19, 1, 0]),
    (7, 32, [1, 3, 7, 5, 13, 19, 59, 0]),
    (7, 37, [1, 1, 3, 9, 25, 29, 41, 0]),
    (7, 41, [1, 3, 5, 13, 23, 1, 55, 0]),
    (7, 42, [1, 3, 7, 3, 13, 59, 17, 0]),
    (7, 50, [1, 3, 1, 3, 5, 53, 69, 0]),
    (7, 55, [1, 1, 5, 5, 23, 33, 13, 0]),
    (7, 56, [1, 1, 7, 7, 1, 61, 123, 0]),
    (7, 59, [1, 1, 7, 9, 13, 61, 49, 0]),
    (7, 62, [1, 3, 3, 5, 3, 55, 33, 0]),
    (8, 14, [1, 3, 1, 15, 31, 13, 49, 245]),
    (8, 21, [1, 3, 5, 15, 31, 59, 63, 97]),
    (8, 22, [1, 3, 1, 11, 11, 11, 77, 249]),
];

/// Dimensions with direction numbers; parameters beyond them get seeded random numbers.
pub(crate) const MAX_DIMS: usize = JOE_KUO.len() + 1;

/// The direction numbers `v_1 .. v_32` of dimension `dim` (0-based), as 32-bit binary fractions.
pub(crate) fn directions(dim: usize) -> [u32; BITS] {
    let mut v = [0u32; BITS];
    if dim == 0 {
        for (k, vk) in v.iter_mut().enumerate() {
            *vk = 1 << (BITS - 1 - k);
        }
        return v;
    }
    let (s, a, m) = JOE_KUO[dim - 1];
    for k in 0..s {
        v[k] = m[k] << (BITS - 1 - k);
    }
    for k in s..BITS {
        let mut x = v[k - s] ^ (v[k - s] >> s);
        for l in 1..s {
            if (a >> (s - 1 - l)) & 1 == 1 {
                x ^= v[k - l];
            }
        }
        v[k] = x;
    }
    v
}

/// Coordinate `dim` of point `index` for direction numbers `v`: the XOR of the directions of the
/// set bits of the Gray code of `index`.
fn coordinate(v: &[u32; BITS], index: u64) -> u32 {
    let gray = index ^ (index >> 1);
    (0..BITS).filter(|k| (gray >> k) & 1 == 1).fold(0, |x, k| x ^ v[k])
}

/// Multiplies `x` (bit 31 the most significant digit) by a lower-triangular binary matrix with a
/// unit diagonal, given by its rows.
fn scramble(rows: &[u32; BITS], x: u32) -> u32 {
    (0..BITS).fold(0, |out, i| out | (((rows[i] & x).count_ones() & 1) << (BITS - 1 - i)))
}

/// The scrambled Sobol sampler of a seed.
pub(crate) struct SobolSampler {
    seed: u64,
    /// Per dimension, the scrambled direction numbers.
    directions: Vec<[u32; BITS]>,
    /// Per dimension, the digital shift.
    shift: Vec<u32>,
}

impl SobolSampler {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = rng_for(seed, Stream::Sobol, 0);
        let mut directions = Vec::with_capacity(MAX_DIMS);
        let mut shift = Vec::with_capacity(MAX_DIMS);
        for dim in 0..MAX_DIMS {
            let mut rows = [0u32; BITS];
            for (i, row) in rows.iter_mut().enumerate() {
                // Digit i (from the most significant) mixes in the random higher digits.
                let diagonal = 1u32 << (BITS - 1 - i);
                let above = !((diagonal << 1).wrapping_sub(1));
                *row = diagonal | (rng.next_u32() & above);
            }
            directions.push(directions_scrambled(&rows, dim));
            shift.push(rng.next_u32());
        }
        SobolSampler { seed, directions, shift }
    }

    /// Coordinate `dim` of scrambled point `index`, in `[0, 1)`.
    pub(crate) fn point(&self, dim: usize, index: u64) -> f64 {
        f64::from(coordinate(&self.directions[dim], index) ^ self.shift[dim]) / (1u64 << BITS) as f64
    }
}

fn directions_scrambled(rows: &[u32; BITS], dim: usize) -> [u32; BITS] {
    directions(dim).map(|v| scramble(rows, v))
}

impl Sampler for SobolSampler {
    fn suggest(&mut self, space: &SearchSpace, _history: &[Trial], number: u64) -> Params {
        let index = number.wrapping_add(1);
        let mut extra = rng_for(self.seed, Stream::Sobol, index);
        // Fixed parameters take no dimension, so that the best (lowest) dimensions go to the
        // searched ones.
        let mut dim = 0;
        assemble(space, |_, p| {
            if let Domain::Fixed(v) = &p.domain {
                return v.clone();
            }
            let u = if dim < MAX_DIMS { self.point(dim, index) } else { unit(&mut extra) };
            dim += 1;
            p.domain.at_unit(u)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn raw(dim: usize, index: u64) -> f64 {
        f64::from(coordinate(&directions(dim), index)) / (1u64 << BITS) as f64
    }

    #[test]
    fn first_points_match_the_published_sequence() {
        // scipy.stats.qmc.Sobol(d=3, scramble=False).random(8), Joe-Kuo directions.
        let expected = [
            [0.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.75, 0.25, 0.25],
            [0.25, 0.75, 0.75],
            [0.375, 0.375, 0.625],
            [0.875, 0.875, 0.125],
            [0.625, 0.125, 0.875],
            [0.125, 0.625, 0.375],
        ];
        for (i, row) in expected.iter().enumerate() {
            for (d, want) in row.iter().enumerate() {
                assert_eq!(raw(d, i as u64), *want, "point {i} dim {d}");
            }
        }
    }

    #[test]
    fn the_table_is_well_formed_and_every_dimension_is_stratified() {
        for (i, (s, a, m)) in JOE_KUO.iter().enumerate() {
            assert!(*a < 1 << (s - 1), "row {i}");
            for (k, mk) in m.iter().enumerate().take(*s) {
                assert!(mk % 2 == 1 && *mk < 1 << (k + 1), "row {i}: m{k} = {mk}");
            }
        }
        // The first 2^m points of each dimension hit each interval [j/2^m, (j+1)/2^m) once.
        for dim in 0..MAX_DIMS {
            let cells: BTreeSet<u64> = (0..256).map(|i| (raw(dim, i) * 256.0) as u64).collect();
            assert_eq!(cells.len(), 256, "dim {dim}");
        }
    }

    #[test]
    fn scrambled_points_are_in_the_unit_interval_stratified_and_seeded() {
        let a = SobolSampler::new(1);
        let b = SobolSampler::new(2);
        for dim in 0..MAX_DIMS {
            // Scrambling keeps the stratification of the first 2^m points (index 0 included).
            let cells: BTreeSet<u64> = (0..64).map(|i| (a.point(dim, i) * 64.0) as u64).collect();
            assert_eq!(cells.len(), 64, "dim {dim}");
            for i in 0..64 {
                let u = a.point(dim, i);
                assert!((0.0..1.0).contains(&u));
            }
        }
        assert_ne!(a.point(0, 1), b.point(0, 1));
        assert_eq!(a.point(3, 5), SobolSampler::new(1).point(3, 5));
    }
}
