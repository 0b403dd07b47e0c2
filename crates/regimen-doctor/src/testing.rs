//! Helpers shared by this crate's tests: snapshots and small hand-built datasets.

use std::fs;
use std::path::Path;

use regimen_data::{Samples, Targets, Task};

/// Compares `actual` with the snapshot file `src/snapshots/<name>`; with `UPDATE_SNAPSHOTS=1` in the
/// environment, writes it instead.
pub(crate) fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        let written =
            fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).and_then(|()| fs::write(&path, actual));
        assert!(written.is_ok(), "cannot write snapshot {}: {written:?}", path.display());
        return;
    }
    let expected = fs::read_to_string(&path);
    assert!(expected.is_ok(), "snapshot {} is missing; run the tests with UPDATE_SNAPSHOTS=1", path.display());
    let expected = expected.unwrap_or_default();
    assert!(
        expected == actual,
        "snapshot {} differs (rerun with UPDATE_SNAPSHOTS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// A classification task with classes named `c0`, `c1`, ...
pub(crate) fn classes(k: usize) -> Task {
    Task::Classification { classes: (0..k).map(|c| format!("c{c}")).collect() }
}

/// A uniform value in `[-1, 1)` that depends only on `(seed, i)`.
pub(crate) fn uniform(seed: u64, i: u64) -> f32 {
    let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_add(0x6A09_E667_F3BC_C909);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// `n` random table rows of `d` features in `[-1, 1)`, labels `i % k`; rows `offset..offset + n` of
/// one endless random table, so sets built with disjoint ranges share no row.
pub(crate) fn random_rows(n: usize, d: usize, k: u32, offset: usize) -> Samples {
    let features = (offset..offset + n).flat_map(|i| (0..d).map(move |j| uniform(i as u64, j as u64))).collect();
    let labels = (offset..offset + n).map(|i| i as u32 % k).collect();
    Samples { shape: vec![d], features, targets: Targets::Classes(labels) }
}
