//! Regimen's training engine on Burn.
//!
//! Given a [`TrainConfig`], [`train`] loads and splits the data, builds a built-in model (or the
//! user's own [`Network`] with [`train_with`]), trains it with the configured optimizer and
//! schedule, validates every epoch, logs every event to the run's folder, and saves the `best` and
//! `last` weights. [`evaluate_run`] later scores a saved run on its held-out test split, the only
//! place that split is ever read.
//!
//! This is the only crate of the workspace that depends on Burn; data, metrics, schedules and
//! events live in crates that build without it.

pub mod batches;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod diagnosis;
pub mod error;
pub mod evaluate;
pub mod faults;
pub mod fit;
pub mod interrupt;
pub mod model;
pub mod naming;
pub mod observer;
pub mod optim;
pub mod run;
pub mod state;
pub mod system;

pub use config::TrainConfig;
pub use error::TrainError;
pub use fit::{FinalModel, FitContext, FitOutcome, fit};
pub use model::{BuiltinModel, Network};
pub use observer::{EpochSummary, Observer, RunInfo, Silent, StepProgress};
pub use regimen_events::RunStatus;
pub use run::{
    CheckpointChoice, Evaluation, RunSummary, evaluate_run, load_data, resume, resume_with, train, train_with,
};
