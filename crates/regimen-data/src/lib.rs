//! Datasets for Regimen.
//!
//! Everything a training run needs from its data, as plain `f32` rows: built-in generated datasets
//! ([`generated`]), loaders for real formats (CSV, IDX, CIFAR-10 binary, image folders; [`load()`]),
//! seeded stable splits and the dataset's identity ([`split`]), normalization fitted on the train
//! split ([`normalize`]), all three put together by [`prepare()`], and per-sample augmentation and
//! the per-epoch order of batches ([`augment`], [`batch`]).
//!
//! # Invariants
//!
//! - **No Burn.** This crate knows nothing about tensors or models. It builds and tests in seconds,
//!   and the data a model sees can be checked without a model.
//! - **Pure functions of seeds.** Generated data depends only on its seed; a sample's split only on
//!   its content and the split seed; an epoch's order only on `(seed, epoch)`; a sample's
//!   augmentation only on `(seed, epoch, position)`. Runs are reproducible across machines and a
//!   resumed run continues exactly where it stopped, with no RNG state to save.
//! - **No panics on data.** Every problem with a file or its content is a [`DataError`] naming the
//!   file, line or sample, column and value, and saying what to do. The only panics are documented
//!   caller bugs (an index out of range).

pub mod augment;
pub mod batch;
pub mod error;
pub mod generated;
pub mod load;
pub mod manifest;
pub mod normalize;
pub mod prepare;
mod rng;
pub mod split;
mod types;

pub use augment::{Augment, augment_into};
pub use batch::{BatchBuilder, BatchTargets, epoch_order};
pub use error::{CsvCell, DataError, Position};
pub use generated::{BUILTIN_DATASETS, builtin};
pub use load::{Format, LoadOptions, TaskKind, detect_format, feature_names, load, open};
pub use manifest::{Lineage, Manifest, SourceRecord};
pub use normalize::{NormAxis, Normalization};
pub use prepare::{PreparedData, prepare, short_fingerprint};
pub use rng::{SplitMix64, mix64};
pub use split::{DatasetIdentity, SplitIndices, SplitName, SplitSpec, auto_fraction, fingerprint, split_indices};
pub use types::*;
