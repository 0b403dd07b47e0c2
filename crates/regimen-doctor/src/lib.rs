//! The recipe doctor: checks to run before training, each ending in PASS, WARN or FAIL with the
//! numbers it measured, what they mean and what to try next.
//!
//! The recipe's first step is to "become one with the data": look at the distributions, the
//! imbalances, the outliers and the duplicates before any model exists, and look at exactly what
//! goes into the network. This crate does the part of that a program can do, on the plain `f32`
//! rows of `regimen-data`:
//!
//! | check                | module          | catches                                                  |
//! |----------------------|-----------------|----------------------------------------------------------|
//! | `finite_features`    | [`finite`]      | NaN and infinite inputs                                  |
//! | `valid_targets`      | [`finite`]      | labels out of range, NaN or huge regression targets      |
//! | `class_balance`      | [`balance`]     | imbalance, classes missing from a split                  |
//! | `label_distribution` | [`balance`]     | train, val and test labelled differently                 |
//! | `constant_features`  | [`constant`]    | features that never (or almost never) change             |
//! | `input_scale`        | [`scale`]       | inputs that reach the network unnormalized, outliers     |
//! | `duplicates`         | [`duplicates`]  | exact copies inside a split                              |
//! | `leakage`            | [`duplicates`]  | exact copies across splits                               |
//! | `conflicting_labels` | [`duplicates`]  | identical inputs with different labels                   |
//! | `near_duplicates`    | [`duplicates`]  | almost identical rows inside and across splits           |
//! | `sample_grid`        | [`grid`]        | a picture of the first batch as the network sees it      |
//!
//! After training, [`diagnose::diagnose`] reads a run's metric series and gives the recipe's
//! verdicts on it (underfitting, bias and variance, overfitting, and gradient flow from the logged
//! per-layer gradient norms, [`gradients`]), again as [`Check`]s.
//!
//! The report types ([`Check`], [`CheckStatus`], [`CheckReport`]) are shared with the checks that need a
//! model (loss at init, overfitting one batch), which live with Burn in `regimen-train`.
//!
//! # Invariants
//!
//! - **No Burn, no model.** Everything here runs on `Samples` and builds in seconds.
//! - **Checks decide, the caller acts.** A check reads data and returns [`Check`]s; it never prints,
//!   exits or changes the data. The only I/O is [`grid::sample_grid`] writing the picture it was
//!   asked for.
//! - **Every verdict is explained by its numbers.** Each check puts what it measured in
//!   `measured`, and every PASS/WARN/FAIL threshold is a named constant whose doc comment says why.
//! - **Linear time.** Every check is one or a few passes over the data (duplicates by hashing, not
//!   pairwise comparison), so all of them together take well under a second on 10,000 images.

pub mod balance;
pub mod constant;
pub mod diagnose;
pub mod duplicates;
mod error;
pub mod explore;
pub mod finite;
mod font;
pub mod format;
pub mod gradients;
pub mod grid;
mod report;
pub mod scale;
pub mod sources;
mod stats;
#[cfg(test)]
mod testing;

use regimen_data::{PreparedData, Samples, SplitName, Task};

pub use error::GridError;
pub use grid::sample_grid;
pub use report::{Check, CheckReport, CheckStatus, Measured};

/// The three splits of a dataset with its task, as they come out of the split, *before*
/// normalization: the data checks judge the data itself, and normalization is judged separately
/// (see [`scale::input_scale`]).
#[derive(Debug, Clone, Copy)]
pub struct Splits<'a> {
    /// What the dataset asks a model to predict.
    pub task: &'a Task,
    /// The training split.
    pub train: &'a Samples,
    /// The validation split.
    pub val: &'a Samples,
    /// The test split.
    pub test: &'a Samples,
}

impl<'a> Splits<'a> {
    /// The splits of data prepared by `regimen_data::prepare` (call it with `normalize = false` so
    /// that the checks see raw values).
    pub fn from_prepared(data: &'a PreparedData) -> Splits<'a> {
        Splits { task: &data.task, train: &data.train, val: &data.val, test: &data.test }
    }

    /// The three splits with their names, in the order train, val, test.
    pub fn each(&self) -> [(SplitName, &'a Samples); 3] {
        [(SplitName::Train, self.train), (SplitName::Val, self.val), (SplitName::Test, self.test)]
    }
}

/// Runs every data check, in the order a person should read them: values first (NaN), then labels,
/// features, scale and duplicates.
///
/// `splits` holds the raw splits; `seen_train` is the train split exactly as the network will see
/// it, that is normalized when the run normalizes (or the raw train split when it does not). The
/// picture of the first batch is separate ([`grid::sample_grid`]) because it needs a batch and a
/// path.
pub fn data_checks(splits: &Splits<'_>, seen_train: &Samples) -> Vec<Check> {
    let mut checks = vec![finite::finite_features(splits), finite::valid_targets(splits)];
    checks.extend(balance::class_balance(splits));
    checks.push(balance::label_distribution(splits));
    checks.push(constant::constant_features(splits));
    checks.push(scale::input_scale(splits, seen_train));
    checks.extend(duplicates::duplicate_checks(splits));
    checks
}
