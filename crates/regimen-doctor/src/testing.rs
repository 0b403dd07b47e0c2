//! Small hand-built datasets shared by this crate's tests.

use regimen_data::{Samples, SplitMix64, Targets, Task, mix64};

/// A classification task with classes named `c0`, `c1`, ...
pub(crate) fn classes(k: usize) -> Task {
    Task::Classification { classes: (0..k).map(|c| format!("c{c}")).collect() }
}

/// A uniform value in `[-1, 1)` that depends only on `(seed, i)`.
pub(crate) fn uniform(seed: u64, i: u64) -> f32 {
    let z = mix64(seed.wrapping_mul(SplitMix64::GAMMA) ^ i.wrapping_add(0x6A09_E667_F3BC_C909));
    (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// `n` random table rows of `d` features in `[-1, 1)`, labels `i % k`; rows `offset..offset + n` of
/// one endless random table, so sets built with disjoint ranges share no row.
pub(crate) fn random_rows(n: usize, d: usize, k: u32, offset: usize) -> Samples {
    let features = (offset..offset + n).flat_map(|i| (0..d).map(move |j| uniform(i as u64, j as u64))).collect();
    let labels = (offset..offset + n).map(|i| i as u32 % k).collect();
    Samples { shape: vec![d], features, targets: Targets::Classes(labels) }
}
