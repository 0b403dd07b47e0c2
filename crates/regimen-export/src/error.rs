//! The crate's error types: one for a failed export, one for an unknown format name.
//!
//! Every message names the file or folder involved and what to do, because they reach the command
//! line unchanged.

use std::path::PathBuf;

use crate::Format;
use regimen_fs::FileError;

/// Why an export failed. Whatever the reason, no partial output file was left behind.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The folder that should hold the output does not exist.
    #[error("cannot write {path}: the folder {folder} does not exist; create it first or choose another output path")]
    MissingFolder {
        /// The file or folder the export would have written.
        path: PathBuf,
        /// The missing folder.
        folder: PathBuf,
    },
    /// A TensorBoard export was pointed at something that is not a folder.
    #[error("cannot write TensorBoard events into {path}: it exists and is not a folder; choose a folder")]
    NotAFolder {
        /// The path given.
        path: PathBuf,
    },
    /// The run id cannot be used as a file or folder name.
    #[error("run id `{run_id}` cannot name an output file: it is empty, `.`, `..` or contains a path separator")]
    UnsafeRunId {
        /// The run id.
        run_id: String,
    },
    /// Writing, syncing or moving a file failed.
    #[error(transparent)]
    Io(#[from] FileError),
}

/// A format name that [`Format`]'s `FromStr` does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown export format `{given}`; expected one of: {}", Format::names())]
pub struct UnknownFormatError {
    /// The name that was given.
    pub given: String,
}
