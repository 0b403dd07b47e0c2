//! The store's one error type.
//!
//! Every variant names what was being done, on which file or run, and what to do about it, because
//! these messages reach the command line unchanged. Filter and sort errors have their own type
//! ([`crate::QueryError`]) since they carry the text the user typed and a column to point at.

use std::path::PathBuf;

use crate::query::QueryError;
use regimen_fs::FileError;

/// Errors from a [`crate::RunStore`] or the sink that feeds it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database engine failed.
    #[error("the run store at {path} failed while trying to {action}: {source}")]
    Database {
        /// The database file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// What the store was doing, as a verb phrase.
        action: &'static str,
        /// What the engine said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database server failed, or stayed unreachable for as long as the store retries.
    #[error("the run store {store} failed while trying to {action}: {source}")]
    Server {
        /// The store's URL, without its password.
        store: String,
        /// What the store was doing, as a verb phrase.
        action: &'static str,
        /// What the server or the connection said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another process held the database's write lock for longer than the store is willing to wait.
    #[error(
        "the run store at {path} stayed locked by another process for {waited_ms} ms while trying to {action}; \
         retry, or look for a hung process holding it (`fuser {path}`)"
    )]
    Busy {
        /// The database file.
        path: PathBuf,
        /// What the store was doing.
        action: &'static str,
        /// How long it waited, in milliseconds.
        waited_ms: u64,
    },
    /// The database was written by a newer Regimen.
    #[error(
        "the run store at {path} has schema version {found}, but this Regimen only knows versions up to \
         {supported}; upgrade Regimen, or point it at another store folder"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The version found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A file or folder of the store could not be read, written or removed.
    #[error(transparent)]
    Io(#[from] FileError),
    /// A store URL of a kind this build has no backend for.
    #[error(
        "cannot open the run store `{spec}`: this build has no `{scheme}` backend; give a folder path for the \
         embedded SQLite store, or a postgres:// URL for a team store"
    )]
    UnsupportedStore {
        /// What was given.
        spec: String,
        /// Its scheme.
        scheme: String,
    },
    /// No run has this id or id prefix.
    #[error("no run has the id or id prefix `{id}`; `regimen runs` lists the runs in this store")]
    RunNotFound {
        /// What was asked for.
        id: String,
    },
    /// Several runs start with this prefix.
    #[error("the id prefix `{prefix}` matches {} runs ({}); type more characters", candidates.len(), candidates.join(", "))]
    AmbiguousRun {
        /// What was asked for.
        prefix: String,
        /// The matching run ids (at most ten).
        candidates: Vec<String>,
    },
    /// A run with this id already exists.
    #[error("a run with the id `{id}` already exists in the store; run ids must be unique")]
    DuplicateRun {
        /// The id.
        id: String,
    },
    /// A sweep with this id already exists.
    #[error("a sweep with the id `{id}` already exists in the store; sweep ids must be unique")]
    DuplicateSweep {
        /// The id.
        id: String,
    },
    /// No sweep has this id, id prefix or name.
    #[error("no sweep has the id, id prefix or name `{id}`; `regimen sweep ls` lists the sweeps in this store")]
    SweepNotFound {
        /// What was asked for.
        id: String,
    },
    /// A value given to the store cannot be stored as is.
    #[error("invalid {what} `{value}`: {why}")]
    Invalid {
        /// What the value is: `run id`, `tag key`.
        what: &'static str,
        /// The value received.
        value: String,
        /// Why it is refused and what is accepted.
        why: &'static str,
    },
    /// The database holds something this build cannot read (a status it does not know, bad JSON).
    #[error("the run store at {path} holds an unreadable {what}: `{value}`; was it edited by hand?")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What could not be read.
        what: &'static str,
        /// The value found.
        value: String,
    },
    /// The filter or sort of a query is wrong.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The background writer of a sink is gone (it panicked or its store failed for good).
    #[error("the run store's background writer stopped: {reason}")]
    WriterGone {
        /// What is known about why.
        reason: String,
    },
}
