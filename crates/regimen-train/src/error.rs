//! Errors of the training engine, each naming the file, value or setting at fault.

use std::path::PathBuf;

use regimen_data::DataError;
use regimen_events::SinkError;
use regimen_fs::FileError;
use regimen_store::StoreError;

/// Everything that can stop a run before or while it trains.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The data could not be loaded, split or prepared.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A setting is invalid.
    #[error("invalid configuration in {origin}: {message}")]
    Config {
        /// Where the setting came from: a file path or "the command line".
        origin: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] FileError),
    /// The run log could not be written.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The run store could not be opened or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The requested device is unknown or not compiled in.
    #[error("cannot use device `{spec}`: {message}")]
    Device {
        /// What the user asked for.
        spec: String,
        /// Why it cannot be used and what to do.
        message: String,
    },
    /// The model does not fit the data.
    #[error("the model does not fit the data: {0}")]
    Model(String),
    /// The model's outputs do not have the width the task needs (a user network built for another
    /// number of classes): caught at the first step, never left to become NaN metrics.
    #[error(
        "the model's outputs do not fit the task: {values} values for {samples} samples, but the task needs \
         {expected} per sample; build the network with `data.task.num_outputs()` outputs"
    )]
    OutputWidth {
        /// Output values of the batch.
        values: usize,
        /// Samples in the batch.
        samples: usize,
        /// Outputs per sample the task needs.
        expected: usize,
    },
    /// The train split cannot fill one batch.
    #[error(
        "the train split has {samples} sample(s), too few for one training batch of at least 2; use more data \
         or smaller validation and test shares"
    )]
    SplitTooSmall {
        /// Samples in the train split.
        samples: usize,
    },
    /// A checkpoint could not be written or read.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong and what to do.
        message: String,
    },
    /// No run matches what the user named.
    #[error("no run `{name}` in the store at {}: `regimen runs` lists the runs", store.display())]
    RunNotFound {
        /// The run id or path given.
        name: String,
        /// The store searched.
        store: PathBuf,
    },
}

impl From<regimen_schedule::ScheduleError> for TrainError {
    fn from(error: regimen_schedule::ScheduleError) -> Self {
        TrainError::Config { origin: "the `schedule` setting".into(), message: error.to_string() }
    }
}
