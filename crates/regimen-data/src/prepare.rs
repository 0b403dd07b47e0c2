//! From a loaded source to the three splits a run trains and evaluates on.
//!
//! The order is fixed and matters: fingerprint the raw content, split it, fit the normalization on
//! the train split only, then apply that same normalization to all three splits. Doing it in one
//! function keeps every caller from getting the order wrong (fitting on all data leaks the test set).

use crate::error::DataError;
use crate::normalize::Normalization;
use crate::split::{DatasetIdentity, SplitSpec, fingerprint, split_indices};
use crate::types::{Samples, Source, Task};

/// The data of a run, split and normalized, with its identity.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedData {
    /// What identifies this data and its split.
    pub identity: DatasetIdentity,
    /// The task.
    pub task: Task,
    /// The shape of one sample.
    pub shape: Vec<usize>,
    /// The training split.
    pub train: Samples,
    /// The validation split.
    pub val: Samples,
    /// The test split (the source's own when it has one).
    pub test: Samples,
    /// The normalization fitted on `train` and applied to all splits, when asked for.
    pub normalization: Option<Normalization>,
}

/// The short form of a dataset fingerprint shown in names and messages: its first four hex digits,
/// the one length used everywhere (a full fingerprint is 64).
pub fn short_fingerprint(fingerprint: &str) -> &str {
    fingerprint.get(..4).unwrap_or(fingerprint)
}

/// Splits `source` as `split` asks with `split_seed`, then, when `normalize` is set, fits a
/// normalization on the train split and applies it to all three.
pub fn prepare(source: Source, split: &SplitSpec, split_seed: u64, normalize: bool) -> Result<PreparedData, DataError> {
    let fingerprint = fingerprint(&source);
    let indices = split_indices(&source, split, split_seed)?;
    let mut train = source.data.subset(&indices.train);
    let mut val = source.data.subset(&indices.val);
    let test_from_source = source.test.is_some();
    let mut test = match source.test {
        Some(test) => test,
        None => source.data.subset(&indices.test),
    };
    let normalization = normalize.then(|| Normalization::fit(&train));
    if let Some(n) = &normalization {
        n.apply(&mut train);
        n.apply(&mut val);
        n.apply(&mut test);
    }
    let identity = DatasetIdentity {
        name: source.name,
        short_id: short_fingerprint(&fingerprint).to_owned(),
        fingerprint,
        split_seed,
        fractions: indices.fractions,
        sizes: [train.len(), val.len(), test.len()],
        test_from_source,
        lineage: None,
    };
    Ok(PreparedData { identity, task: source.task, shape: source.data.shape, train, val, test, normalization })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::{shapes, spirals};
    use crate::split::SplitName;

    #[test]
    fn prepares_shapes_with_identity() -> Result<(), DataError> {
        let p = prepare(shapes(500, 1), &SplitSpec::Auto, 42, true)?;
        assert_eq!(p.identity.sizes, [300, 100, 100]);
        assert_eq!(p.identity.short_id.len(), 4);
        assert!(p.identity.fingerprint.starts_with(&p.identity.short_id));
        assert_eq!(p.identity.name, "shapes");
        assert!(!p.identity.test_from_source);
        assert_eq!(p.shape, vec![1, 28, 28]);
        assert_eq!(p.normalization.as_ref().map(|n| n.mean.len()), Some(1));
        // The train split is centred; the others are only roughly.
        let mean: f32 = p.train.features.iter().sum::<f32>() / p.train.features.len() as f32;
        assert!(mean.abs() < 1e-3, "{mean}");
        Ok(())
    }

    #[test]
    fn normalization_is_fitted_on_train_only() -> Result<(), DataError> {
        let source = spirals(300, 1);
        let p = prepare(source.clone(), &SplitSpec::Auto, 3, true)?;
        let raw = prepare(source, &SplitSpec::Auto, 3, false)?;
        assert!(raw.normalization.is_none());
        assert_eq!(p.normalization, Some(Normalization::fit(&raw.train)));
        Ok(())
    }

    #[test]
    fn same_seed_same_identity() -> Result<(), DataError> {
        let a = prepare(spirals(90, 1), &SplitSpec::Auto, 5, false)?;
        let b = prepare(spirals(90, 1), &SplitSpec::Auto, 5, false)?;
        assert_eq!(a, b);
        Ok(())
    }

    #[test]
    fn source_test_split_is_used() -> Result<(), DataError> {
        let mut source = spirals(90, 1);
        source.test = Some(spirals(12, 2).data);
        let p = prepare(source, &SplitSpec::Auto, 5, false)?;
        assert!(p.identity.test_from_source);
        assert_eq!(p.identity.sizes, [72, 18, 12]);
        Ok(())
    }

    #[test]
    fn empty_split_propagates() {
        let err = prepare(spirals(3, 1), &SplitSpec::Fractions { val: 0.1, test: 0.1 }, 0, true);
        assert!(matches!(err, Err(DataError::EmptySplit { split: SplitName::Val, .. })));
    }
}
