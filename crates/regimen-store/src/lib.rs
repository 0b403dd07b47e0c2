//! The embedded run store: where every run's record lives, and how `regimen runs` finds them.
//!
//! The layers, bottom up:
//! - [`RunStore`] ([`store`]): the contract every backend implements, written on the trait.
//! - [`model`]: the plain values that cross it (what a run records, what a listing shows).
//! - [`query`]: the filter and sort language, parsed and evaluated the same way for every backend.
//! - [`SqliteStore`] ([`sqlite`]): the embedded default, one SQLite file in WAL mode beside the
//!   run folders; `postgres::PostgresStore` (feature `postgres`): the team store, one PostgreSQL
//!   database shared by many machines. Both pass the [`conformance`] suite; no caller knows which
//!   it has. [`copy_runs`] moves runs between any two.
//! - [`StoreSink`] ([`sink`]): the [`regimen_events::EventSink`] that feeds a store from a
//!   background thread so that the training loop never waits on a disk.
//!
//! The store knows nothing about training, Burn or the command line: it records events and answers
//! queries.

mod blocks;
pub mod copy;
pub mod error;
pub mod layout;
pub mod model;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod query;
pub mod sink;
pub mod sqlite;
pub mod store;
pub mod sweep;
pub mod time;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use copy::{CopyReport, copy_runs};
pub use error::StoreError;

/// A `running` run whose heartbeat is older than this is considered crashed (see
/// [`RunStore::reconcile`]); the runs write a heartbeat every few seconds.
pub const CRASH_AFTER: std::time::Duration = std::time::Duration::from_secs(30);
pub use layout::{ARTIFACTS_ENV, CACHE_ENV, RunDir, artifacts_folder, open, open_existing, resolve_spec};
pub use model::{
    ArtifactRecord, GcOptions, GcReport, MetricPoint, MetricSummary, NewRun, Note, NoteKind, ParamValue, ReportRecord,
    RunDetail, RunRow, RunState, SeriesView, Write, flatten_params,
};
pub use query::{Filter, Query, QueryError, QueryErrorKind, Sort};
pub use regimen_events::Provenance;
pub use regimen_metrics::{Mode, Monitored, TaskInfo};
pub use sink::{SinkOptions, StoreSink};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use store::RunStore;
pub use sweep::{Claim, NewSweep, SweepRow, SweepStatus, SweepStore, TrialRecord, TrialState, TrialUpdate};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
