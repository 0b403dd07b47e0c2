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

    /// Whether a sample is an image or a table row; see [`Layout`].
    pub fn layout(&self) -> Layout {
        Layout::of(&self.shape)
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

/// How the values of one sample are laid out: an image or a table row.
///
/// A sample of shape `[channels, height, width]` is an image stored channel-major, anything else a
/// table row of independent columns. Normalization (per channel or per column), augmentation (only
/// images are flipped, cropped and rotated), the data checks and the convolutional models all ask
/// this one type, so they cannot disagree about what is an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[channels, height, width]`, channel-major: each channel is a `height × width` plane.
    Image {
        /// Number of channels.
        channels: usize,
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
    },
    /// A row of independent values, one per column (the product of the shape's dimensions).
    Table {
        /// Number of columns.
        columns: usize,
    },
}

impl Layout {
    /// The layout of samples of `shape`.
    pub fn of(shape: &[usize]) -> Layout {
        match *shape {
            [channels, height, width] => Layout::Image { channels, height, width },
            _ => Layout::Table { columns: shape.iter().product() },
        }
    }

    /// True for images.
    pub fn is_image(&self) -> bool {
        matches!(self, Layout::Image { .. })
    }

    /// Number of groups of values that share statistics such as normalization's mean and std:
    /// channels for images, columns for tables.
    pub fn groups(&self) -> usize {
        match *self {
            Layout::Image { channels, .. } => channels,
            Layout::Table { columns } => columns,
        }
    }

    /// Number of consecutive values of a sample in one group: a channel's `height × width` pixels,
    /// or 1 for a column.
    pub fn group_len(&self) -> usize {
        match *self {
            Layout::Image { height, width, .. } => height * width,
            Layout::Table { .. } => 1,
        }
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
    fn three_dimensional_shapes_are_images() {
        let image = Layout::of(&[3, 4, 5]);
        assert_eq!(image, Layout::Image { channels: 3, height: 4, width: 5 });
        assert_eq!((image.is_image(), image.groups(), image.group_len()), (true, 3, 20));
        let table = samples().layout();
        assert_eq!(table, Layout::Table { columns: 2 });
        assert_eq!((table.is_image(), table.groups(), table.group_len()), (false, 2, 1));
        assert_eq!(Layout::of(&[2, 3]), Layout::Table { columns: 6 }, "two-dimensional samples are tables");
        assert_eq!(Layout::of(&[1, 2, 3, 4]), Layout::Table { columns: 24 });
    }

    #[test]
    fn task_outputs() {
        assert_eq!(Task::Regression.num_outputs(), 1);
        let task = Task::Classification { classes: vec!["a".into(), "b".into()] };
        assert_eq!(task.num_outputs(), 2);
    }
}
