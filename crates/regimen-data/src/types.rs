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
