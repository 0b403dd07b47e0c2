//! Regimen as a library: train your own Burn model with all of Regimen's machinery.
//!
//! Implement [`Network`] for your module and hand a constructor to [`train_with`]; Regimen loads and
//! splits the data, seeds everything, trains, validates, logs each event to the run folder and
//! the run store, and saves the best and last weights, exactly as `regimen train` does for the
//! built-in models. Where runs are kept is a [`Recorder`]: a folder for run folders and any
//! [`store::RunStore`] (the SQLite one that `regimen runs` reads, an in-memory one, or none). See
//! `examples/custom_model.rs`. Call [`keep_freed_memory`] at the start of your `main`, as the
//! `regimen` binary does: without it glibc re-faults every step's buffers and training runs at up
//! to half speed.
//!
//! ```no_run
//! use regimen::{Recorder, Silent, TrainConfig, train};
//! let config = TrainConfig { dataset: "spirals".into(), ..TrainConfig::default() };
//! let recorder = Recorder::new(".regimen", Some(regimen::store::open(".regimen".as_ref())?));
//! let summary = train(&config, &recorder, &mut Silent)?;
//! println!("{}: {:?}", summary.run_id, summary.best.get("val.acc"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use regimen_train::{
    BuiltinModel, CheckpointChoice, EpochSummary, Evaluation, FitContext, FitOutcome, Network, Observer, Recorder,
    Reporter, RunInfo, RunSummary, Silent, StepProgress, TrainConfig, TrainError, Trainer, evaluate_run, fit,
    load_data, resume, resume_with, train, train_with,
};

/// Keeps freed memory in the process: call it first thing in `main` (it doubled MLP throughput).
pub use regimen_train::system::keep_freed_memory;

/// The Burn version Regimen is built on, re-exported so your model uses the same one.
pub use burn;
/// Datasets, loaders, splits and augmentation.
pub use regimen_data as data;
/// Events and sinks.
pub use regimen_events as events;
/// Metric meters and reports.
pub use regimen_metrics as metrics;
/// Learning-rate schedules.
pub use regimen_schedule as schedule;
/// Run stores: the `RunStore` trait, the embedded SQLite store, queries.
pub use regimen_store as store;
