//! Grid search: every combination of a few points per parameter, in a seeded order.
//!
//! Continuous parameters get a handful of points on their own scale (endpoints included),
//! integers all their values when there are few, else points on their step grid. Conditional
//! parameters multiply only the branches where they are active, so the grid holds each distinct
//! configuration once. Trial `number` takes grid point `perm(number mod size)`, where `perm` is a
//! seeded bijection (a Feistel network with cycle walking), so that the first trials of a sweep
//! already spread over the grid instead of sweeping the last parameter first, and any worker can
//! compute its point without knowing the others'.

use crate::sampler::{Sampler, Stream, Trial, rng_for};
use crate::space::SearchSpace;
use crate::value::{Params, Value};
use rand::RngCore;

/// Points per continuous parameter (and per integer parameter with more values).
pub(crate) const GRID_POINTS: usize = 5;

/// The grid of a search space: per parameter its points, and how many configurations each point
/// leads to below it (through the conditional parameters it activates).
pub(crate) struct Grid<'a> {
    space: &'a SearchSpace,
    /// Per parameter, its grid points.
    points: Vec<Vec<Value>>,
    /// Per parameter, the indices of the parameters conditional on it.
    children: Vec<Vec<usize>>,
    /// Per parameter, the number of configurations of its subtree when it is active.
    count: Vec<u64>,
}

impl<'a> Grid<'a> {
    pub(crate) fn new(space: &'a SearchSpace, points_per_continuous: usize) -> Self {
        let params = space.params();
        let index = |name: &str| params.iter().position(|p| p.name == name);
        let points: Vec<Vec<Value>> = params.iter().map(|p| p.domain.grid_points(points_per_continuous)).collect();
        let mut children = vec![Vec::new(); params.len()];
        for (i, p) in params.iter().enumerate() {
            if let Some(parent) = p.condition.as_ref().and_then(|c| index(&c.parent)) {
                children[parent].push(i);
            }
        }
        let mut grid = Grid { space, points, children, count: vec![1; params.len()] };
        // Children come after their parents, so a reverse walk sees every subtree before its root.
        for i in (0..params.len()).rev() {
            grid.count[i] = (0..grid.points[i].len()).fold(0u64, |sum, v| sum.saturating_add(grid.weight(i, v)));
        }
        grid
    }

    /// Configurations below point `v` of parameter `i`: the product over the children it activates.
    fn weight(&self, i: usize, v: usize) -> u64 {
        let value = &self.points[i][v];
        self.active_children(i, value).fold(1u64, |prod, c| prod.saturating_mul(self.count[c]))
    }

    fn active_children(&self, i: usize, value: &Value) -> impl Iterator<Item = usize> + '_ {
        let params = self.space.params();
        let value = value.clone();
        self.children[i]
            .iter()
            .copied()
            .filter(move |&c| params[c].condition.as_ref().is_some_and(|cond| cond.values.contains(&value)))
    }

    fn roots(&self) -> impl Iterator<Item = usize> + '_ {
        self.space.params().iter().enumerate().filter(|(_, p)| p.condition.is_none()).map(|(i, _)| i)
    }

    /// The number of distinct configurations (saturating).
    pub(crate) fn size(&self) -> u64 {
        self.roots().fold(1u64, |prod, r| prod.saturating_mul(self.count[r]))
    }

    /// Configuration `index` (below `size()`), in a fixed mixed-radix order.
    pub(crate) fn point(&self, mut index: u64) -> Params {
        let mut out = Params::new();
        for r in self.roots() {
            self.decode(r, index % self.count[r], &mut out);
            index /= self.count[r];
        }
        out
    }

    fn decode(&self, i: usize, mut index: u64, out: &mut Params) {
        for v in 0..self.points[i].len() {
            let w = self.weight(i, v);
            if index < w {
                let value = self.points[i][v].clone();
                let children: Vec<usize> = self.active_children(i, &value).collect();
                out.insert(self.space.params()[i].name.clone(), value);
                for c in children {
                    self.decode(c, index % self.count[c], out);
                    index /= self.count[c];
                }
                return;
            }
            index -= w;
        }
        unreachable!("grid index beyond the subtree's count");
    }
}

/// A seeded bijection of `0..size`: a four-round Feistel network on the smallest even number of
/// bits that covers `size`, walking the cycle until the image falls inside (expected under four
/// steps, as the bit domain is less than four times `size`).
pub(crate) fn permute(index: u64, size: u64, key: u64) -> u64 {
    if size <= 1 {
        return 0;
    }
    let bits = 64 - (size - 1).leading_zeros();
    let half = bits.div_ceil(2);
    let mask = (1u64 << half) - 1;
    let mut x = index;
    loop {
        let (mut l, mut r) = (x >> half, x & mask);
        for round in 0..4u64 {
            let f = splitmix64(key ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ r) & mask;
            (l, r) = (r, l ^ f);
        }
        x = (l << half) | r;
        if x < size {
            return x;
        }
    }
}

/// SplitMix64's finalizer: a fast, well-mixed hash of 64 bits.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Visits the grid of [`GRID_POINTS`] points per continuous parameter in a seeded order, wrapping
/// around after `grid_size` trials.
pub(crate) struct GridSampler {
    key: u64,
}

impl GridSampler {
    pub(crate) fn new(seed: u64) -> Self {
        GridSampler { key: rng_for(seed, Stream::Grid, 0).next_u64() }
    }
}

impl Sampler for GridSampler {
    fn suggest(&mut self, space: &SearchSpace, _history: &[Trial], number: u64) -> Params {
        let grid = Grid::new(space, GRID_POINTS);
        let size = grid.size();
        grid.point(permute(number % size, size, self.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn space(text: &str) -> SearchSpace {
        SearchSpace::from_toml(&toml::from_str(text).unwrap()).unwrap()
    }

    #[test]
    fn permutation_is_a_bijection() {
        for size in [1u64, 2, 3, 5, 16, 17, 100, 1000] {
            for key in [0, 1, 0xDEAD_BEEF] {
                let images: BTreeSet<u64> = (0..size).map(|i| permute(i, size, key)).collect();
                assert_eq!(images.len() as u64, size);
                assert!(images.iter().all(|&x| x < size));
            }
        }
        assert_ne!((0..10).map(|i| permute(i, 10, 1)).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_grid_visits_every_configuration_once_then_wraps() {
        let s = space(
            r#"
            lr = "loguniform(1e-4, 1e-1)"
            depth = "int(1, 3)"
            optimizer = ["adam", "sgd"]
            momentum = { sample = "uniform(0.5, 0.9)", when = { optimizer = "sgd" } }
            nesterov = { sample = [true, false], when = { momentum = 0.9 } }
            epochs = 2
            "#,
        );
        let size = s.grid_size(GRID_POINTS);
        // lr 5 x depth 3 x (adam 1 + sgd (4 momenta + 0.9 x 2 nesterov)).
        assert_eq!(size, 5 * 3 * (1 + 4 + 2));
        let mut sampler = GridSampler::new(7);
        let mut seen = BTreeSet::new();
        for n in 0..size {
            let p = sampler.suggest(&s, &[], n);
            assert!(s.contains(&p), "{p:?}");
            assert!(seen.insert(format!("{p:?}")), "repeated {p:?}");
        }
        assert_eq!(sampler.suggest(&s, &[], size), sampler.suggest(&s, &[], 0));
        assert_ne!(GridSampler::new(8).suggest(&s, &[], 0), sampler.suggest(&s, &[], 0));
    }

    #[test]
    fn an_empty_space_has_one_point() {
        let s = SearchSpace::default();
        assert_eq!(GridSampler::new(0).suggest(&s, &[], 5), Params::new());
    }
}
