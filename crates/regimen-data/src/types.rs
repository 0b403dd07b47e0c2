//! The data model shared by loaders, splits and the training loop.

use serde::{Deserialize, Serialize};

/// What a dataset asks a model to predict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Task {
    /// One label out of `classes` (class names, index = label value).
    Classification {
        /// Class names; a label `k` means `classes[k]`.
        classes: Vec<String>,
    },
    /// One real value per sample.
    Regression,
}

impl Task {
    /// Number of model outputs this task needs: classes for classification, 1 for regression.
    pub fn num_outputs(&self) -> usize {
        match self {
            Task::Classification { classes } => classes.len(),
            Task::Regression => 1,
        }
    }
}

/// Targets of a set of samples, one per sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Class indices for classification.
    Classes(Vec<u32>),
    /// Real values for regression.
    Values(Vec<f32>),
}

impl Targets {
    /// Number of targets.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes(v) => v.len(),
            Targets::Values(v) => v.len(),
        }
    }

    /// True when there are no targets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Samples held in memory: `features` is row-major, one row of `shape.iter().product()` values per
/// sample. Images are `[channels, height, width]`, tables `[columns]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// Shape of one sample's features.
    pub shape: Vec<usize>,
    /// All features, `len() * sample_len()` values.
    pub features: Vec<f32>,
    /// One target per sample.
    pub targets: Targets,
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Number of feature values in one sample: the product of `shape`.
    pub fn sample_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The features of sample `i`.
    ///
    /// # Panics
    ///
    /// When `i >= self.len()`: indices come from this crate's own splits and orders, so an index out
    /// of range is a bug in the caller, not bad data.
    pub fn row(&self, i: usize) -> &[f32] {
        let len = self.sample_len();
        &self.features[i * len..(i + 1) * len]
    }

    /// A new set holding the samples at `indices`, in that order (an index may repeat).
    ///
    /// # Panics
    ///
    /// When an index is out of range, as for [`Samples::row`].
    pub fn subset(&self, indices: &[usize]) -> Samples {
        let mut features = Vec::with_capacity(indices.len() * self.sample_len());
        for &i in indices {
            features.extend_from_slice(self.row(i));
        }
        let targets = match &self.targets {
            Targets::Classes(v) => Targets::Classes(indices.iter().map(|&i| v[i]).collect()),
            Targets::Values(v) => Targets::Values(indices.iter().map(|&i| v[i]).collect()),
        };
        Samples { shape: self.shape.clone(), features, targets }
    }
}

/// What a loader or a generator returns: a named dataset, its task, its samples, and the format's
/// own test split when it has one (MNIST's `t10k` files, CIFAR's `test_batch.bin`, a `test/` folder).
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Short name of the dataset: the built-in name, or the file or folder name without extension.
    pub name: String,
    /// What the dataset asks a model to predict.
    pub task: Task,
    /// The samples to split into train, validation and (when `test` is `None`) test.
    pub data: Samples,
    /// The format's own test split, used as is instead of carving a test split out of `data`.
    pub test: Option<Samples>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Samples {
        Samples {
            shape: vec![2],
            features: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            targets: Targets::Classes(vec![0, 1, 2]),
        }
    }

    #[test]
    fn len_and_rows() {
        let s = samples();
        assert_eq!(s.len(), 3);
        assert!(!s.is_empty());
        assert_eq!(s.sample_len(), 2);
        assert_eq!(s.row(1), &[2.0, 3.0]);
    }

    #[test]
    fn subset_keeps_order_and_targets() {
        let s = samples().subset(&[2, 0, 2]);
        assert_eq!(s.features, vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
        assert_eq!(s.targets, Targets::Classes(vec![2, 0, 2]));
        let values = Samples { targets: Targets::Values(vec![0.5, 1.5, 2.5]), ..samples() };
        assert_eq!(values.subset(&[1]).targets, Targets::Values(vec![1.5]));
        assert!(samples().subset(&[]).is_empty());
    }

    #[test]
    fn task_outputs() {
        assert_eq!(Task::Regression.num_outputs(), 1);
        let task = Task::Classification { classes: vec!["a".into(), "b".into()] };
        assert_eq!(task.num_outputs(), 2);
    }
}
