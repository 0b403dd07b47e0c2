//! Hooks for whoever watches a run: a progress bar, a notebook, a test.
//!
//! Every hook has an empty default, so an observer implements only what it shows. Observers see
//! read-only snapshots; they cannot change the run (stopping rules and checkpoints are the
//! engine's business).

use std::collections::BTreeMap;
use std::path::Path;

use regimen_data::DatasetIdentity;

/// Where the current epoch stands, passed to [`Observer::on_step`].
#[derive(Debug, Clone, Copy)]
pub struct StepProgress {
    /// Epoch (1-based).
    pub epoch: u64,
    /// Steps done in this epoch.
    pub step_in_epoch: u64,
    /// Steps this epoch has.
    pub steps_in_epoch: u64,
    /// Running mean training loss over the epoch so far.
    pub loss: f64,
    /// Running training accuracy (classification) so far in the epoch.
    pub accuracy: Option<f64>,
    /// Training samples per second so far in the epoch.
    pub samples_per_sec: f64,
}

/// What an epoch produced, passed to [`Observer::on_epoch_end`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochSummary {
    /// Epoch (1-based).
    pub epoch: u64,
    /// Optimizer steps taken in the run so far.
    pub step: u64,
    /// Every epoch-level scalar: `train.loss`, `val.acc`, `lr`, `sys.samples_per_sec`, ...
    pub metrics: BTreeMap<String, f64>,
    /// Wall-clock seconds the epoch took, validation included.
    pub seconds: f64,
}

/// Who a run is and what it trains on, passed to [`Observer::on_run_start`].
#[derive(Debug, Clone, Copy)]
pub struct RunInfo<'a> {
    /// Unique id of the run.
    pub run_id: &'a str,
    /// Human-readable name.
    pub name: &'a str,
    /// The run's folder.
    pub run_dir: &'a Path,
    /// The data's identity: name, fingerprint, split seed, fractions, sizes.
    pub dataset: &'a DatasetIdentity,
    /// Trainable parameters of the model.
    pub parameters: usize,
}

/// Receives progress of a run. All hooks default to doing nothing.
pub trait Observer {
    /// The run folder exists and training is about to begin.
    fn on_run_start(&mut self, _info: &RunInfo<'_>) {}
    /// An epoch of `steps` steps begins.
    fn on_epoch_start(&mut self, _epoch: u64, _epochs: u64, _steps: u64) {}
    /// A training step finished.
    fn on_step(&mut self, _progress: &StepProgress) {}
    /// An epoch finished, validation included.
    fn on_epoch_end(&mut self, _summary: &EpochSummary) {}
    /// Something the user should know: a warning or a stop reason (`level` is `warn`), or a
    /// decision made for them such as the model chosen for the data (`info`).
    fn on_notice(&mut self, _level: &str, _message: &str) {}
    /// Whether to pause the run after epoch `epoch` (counted from 1, never asked after the last):
    /// it saves a checkpoint, ends `interrupted`, and `regimen train --resume` continues it
    /// exactly as if it had never stopped. A sweep pauses trials at its rungs this way.
    fn pause_after(&mut self, _epoch: u64) -> bool {
        false
    }
}

/// An observer that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Observer for Silent {}
