//! The one error type of this crate.
//!
//! Checks do not fail: a problem in the data is a [`crate::Check`] with status FAIL. Only drawing
//! the sample grid can go wrong in a way that is not a finding about the data: the batch does not
//! match its shape (a bug in the caller) or the picture cannot be written.

use std::path::PathBuf;

/// Why the sample grid could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// The batch buffer does not hold whole samples of the given shape, or the labels do not match.
    #[error(
        "the batch holds {values} values and {labels} labels, which is not a whole number of samples of shape {shape:?} with one label each; pass the batch buffer and targets exactly as the batch builder filled them"
    )]
    Shape {
        /// Number of values in the buffer.
        values: usize,
        /// Number of labels given.
        labels: usize,
        /// The sample shape given.
        shape: Vec<usize>,
    },
    /// The PNG could not be written.
    #[error("cannot write the sample grid to {path}: {source}; check that the folder exists and is writable")]
    Write {
        /// Where the picture was to be written.
        path: PathBuf,
        /// What went wrong.
        source: image::ImageError,
    },
}
