//! Metric math for Regimen.
//!
//! The meters here turn a batch of model outputs and targets into running counts, and the counts
//! into a report at the end of an epoch. They work on plain `&[f32]` / `&[u32]` slices rather than
//! tensors so the crate knows nothing about Burn: it builds and tests in seconds, and the numbers a
//! run logs can be checked against hand-computed (or scikit-learn) values without a model.
//!
//! Meters sit on the training hot path and are updated once per batch, so an `update` never
//! allocates and never locks: everything it needs (the confusion matrix included) is allocated by
//! the constructor. Reports, which are built once per epoch, are free to allocate.
//!
//! Sums are kept in `f64` and compensated (Neumaier summation), and the variance of regression targets is
//! merged batch by batch with Chan's parallel form of Welford's algorithm, so a meter fed many small
//! batches reports the same numbers, up to rounding, as one fed a single large batch.
//!
//! Conventions for undefined values follow scikit-learn with `zero_division=0` where it has one
//! (precision, recall and F1 of a class with no predictions or no support are 0), and are `NaN`
//! where a mean over zero samples would be needed (a meter that saw nothing): a logging sink then
//! shows a gap rather than a plausible-looking 0.

mod classification;
mod regression;
mod report;
mod stats;
mod sum;
mod vocabulary;

pub use classification::{ClassStats, ClassificationMeter, ClassificationReport};
pub use regression::{RegressionMeter, RegressionReport};
pub use report::{Report, Scalar};
pub use stats::{Moments, argmax, median};
pub use vocabulary::{
    DIRECTIONS_HELP, MetricKey, Mode, Monitored, ParseModeError, SPLITS, TaskInfo, best, measures_the_machine,
};

/// An error from building or updating a meter.
///
/// Every message echoes the values received, so a caller can report it as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    /// A classification meter needs at least two classes.
    #[error("num_classes must be at least 2, got {num_classes}")]
    TooFewClasses {
        /// The number of classes received.
        num_classes: usize,
    },
    /// `top_k` must lie in `1..=num_classes`.
    #[error("top_k must be between 1 and num_classes ({num_classes}), got {top_k}")]
    InvalidTopK {
        /// The `top_k` received.
        top_k: usize,
        /// The number of classes of the meter.
        num_classes: usize,
    },
    /// The logits are not a `batch × num_classes` row-major matrix, where `batch` is the number of
    /// targets.
    #[error(
        "logits has {logits_len} values, but {batch} targets × {num_classes} classes needs \
         {batch} × {num_classes} values"
    )]
    LogitsShape {
        /// The length of the logits slice received.
        logits_len: usize,
        /// The number of targets received.
        batch: usize,
        /// The number of classes of the meter.
        num_classes: usize,
    },
    /// A target is not a class index of the meter.
    #[error("target {target} at batch index {index} is not a class index (num_classes is {num_classes})")]
    TargetOutOfRange {
        /// The position of the offending target in the batch.
        index: usize,
        /// The offending target.
        target: u32,
        /// The number of classes of the meter.
        num_classes: usize,
    },
    /// Predictions and targets of a regression batch differ in length.
    #[error("predictions has {predictions} values but targets has {targets}; they must match one to one")]
    LengthMismatch {
        /// The length of the predictions slice received.
        predictions: usize,
        /// The length of the targets slice received.
        targets: usize,
    },
}
