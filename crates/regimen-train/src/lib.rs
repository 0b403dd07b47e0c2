//! Regimen's training engine on Burn.
//!
//! Given a [`TrainConfig`] and a [`Recorder`] (where the run is kept: a folder and, optionally,
//! any [`regimen_store::RunStore`]), [`train`] loads and splits the data, builds a built-in model (or the
//! user's own [`Network`] with [`train_with`]), trains it with the configured optimizer and
//! schedule, validates every epoch, logs every event to the run's folder, and saves the `best` and
//! `last` weights. [`evaluate_run`] later scores a saved run on its held-out test split, the only
//! place that split is ever read.
//!
//! The Burn-dependent crates are this one, the `regimen` facade over it and the benchmark harness;
//! data, metrics, schedules, events, the store and the doctor build without Burn. The training loop
//! is a [`Trainer`] a caller can drive a few steps or epochs at a time.

mod batches;
pub mod check;
pub mod checkpoint;
mod config;
mod device;
mod diagnosis;
mod ensemble;
mod error;
mod evaluate;
pub mod explore;
mod faults;
mod find;
mod grads;
pub mod interrupt;
pub mod kernels;
mod latency;
pub mod mirror;
pub mod model;
mod naming;
mod observer;
pub mod optim;
mod provenance;
mod run;
mod state;
mod step;
pub mod system;
mod trainer;
pub mod transfer;

pub use config::{AUTO_MODEL, TrainConfig};
pub use device::parse_device;
pub use ensemble::{EnsembleOutcome, Member, ensemble};
pub use error::TrainError;
pub use find::{BatchProbe, RangePoint, RangeTest, lr_range_test, probe_batch_size, suggest_lr};
pub use grads::layer_grad_norms;
pub use latency::Latency;
pub use model::{BuiltinModel, Network};
pub use observer::{EpochSummary, Observer, RunInfo, Silent, StepProgress};
pub use regimen_events::RunStatus;
pub use run::{
    CheckpointChoice, Checkpoints, Evaluation, Recorder, RunSummary, evaluate_run, load_data, resume, resume_with,
    train, train_with,
};
pub use state::TrainState;
pub use trainer::{BestPoint, Bests, FinalModel, FitContext, FitOutcome, Reporter, Trainer, fit, monitor_spec};
