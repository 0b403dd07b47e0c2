//! The [`RunStore`] trait: the one interface between Regimen and wherever runs are kept.
//!
//! It sits at the bottom of the crate so that callers (the sink, the CLI, a future sweep engine or
//! dashboard) depend on it and never on SQLite: a PostgreSQL store implements the same methods and
//! passes the same conformance suite ([`crate::conformance`]).

use std::path::Path;
use std::time::Duration;

use crate::error::StoreError;
use crate::model::{GcOptions, GcReport, MetricPoint, RunDetail, RunRow, SeriesView, Write};
use crate::query::Query;
use crate::sweep::SweepStore;
use crate::time::Timestamp;

/// A place where runs are recorded and queried.
///
/// # Who calls what
/// - [`write`](RunStore::write) is called by the background writer thread of a
///   [`crate::StoreSink`], never by the training thread, with batches of thousands of writes.
/// - [`list_runs`](RunStore::list_runs), [`get_run`](RunStore::get_run) and
///   [`resolve`](RunStore::resolve) are called by the CLI (`regimen runs`, `show`, `compare`) and
///   by dashboards, possibly while runs are being written by other threads or processes.
/// - [`set_tag`](RunStore::set_tag), [`add_note`](RunStore::add_note),
///   [`delete_run`](RunStore::delete_run), [`gc`](RunStore::gc) and
///   [`reconcile`](RunStore::reconcile) are user commands.
///
/// # Thread and process safety
/// Every method takes `&self` and may be called from any thread at once; an implementation
/// serializes internally. Several processes may open one store at a time and write to it: an
/// implementation waits for and retries on the other writers' locks rather than failing, and
/// reports [`StoreError::Busy`] only after waiting for tens of seconds.
///
/// # What never changes once written
/// A run's identity, start record (name, experiment, config and hence params, dataset, provenance,
/// sweep link), its metric points and its reports never change once `write` has returned `Ok`. The
/// status starts as `running` and changes through [`Write::End`] (a later end replaces an earlier
/// one), through crash detection, which marks a `running` run with a stale heartbeat `crashed`,
/// and through a heartbeat, which puts a `crashed` run back to `running`. Tags (one value per key, last write wins), notes (append only),
/// artifacts (one record per path, last write wins) and the heartbeat are mutable. Only
/// [`delete_run`](RunStore::delete_run) removes anything.
///
/// # Sweeps
/// Every store keeps sweeps too ([`SweepStore`], a supertrait), so that a backend that passes the
/// conformance suite runs sweeps with no further work.
pub trait RunStore: SweepStore + Send + Sync {
    /// The folder of the store (artifacts live in `runs/<run id>/` below it); `None` for a store
    /// with no folder, such as an in-memory one.
    fn root(&self) -> Option<&Path>;

    /// Applies a batch of writes to one run, all or nothing, in order.
    ///
    /// A batch that creates the run starts with [`Write::Start`]; any other write to an unknown
    /// run fails with [`StoreError::RunNotFound`], and a second `Start` with
    /// [`StoreError::DuplicateRun`]. Writes after [`Write::End`] are accepted (a run may still
    /// report a test evaluation or an artifact after it ended); a later `End` replaces the earlier.
    /// An empty batch does nothing.
    fn write(&self, run_id: &str, batch: &[Write<'_>]) -> Result<(), StoreError>;

    /// Runs matching the query's filter, sorted and limited as it says, with crash detection
    /// applied first (see [`reconcile`](RunStore::reconcile)).
    fn list_runs(&self, query: &Query) -> Result<Vec<RunRow>, StoreError>;

    /// The full id of the run whose id is `id_or_prefix` or starts with it.
    ///
    /// An exact match wins over prefix matches; several prefix matches are
    /// [`StoreError::AmbiguousRun`].
    fn resolve(&self, id_or_prefix: &str) -> Result<String, StoreError>;

    /// Everything about one run, including every metric series, by id or unique id prefix.
    fn get_run(&self, id_or_prefix: &str) -> Result<RunDetail, StoreError>;

    /// A number that differs after anything was written to the store, by this process or another:
    /// a live view compares it between polls and reads again only when it changed.
    fn changes(&self) -> Result<u64, StoreError>;

    /// One metric series of a run, in step order (empty when the run has no such key): what a
    /// chart reads, without the rest of [`RunStore::get_run`].
    fn series(&self, id_or_prefix: &str, key: &str) -> Result<Vec<MetricPoint>, StoreError>;

    /// The points of one series with steps in `from..=to`, in step order, for a chart whose
    /// buckets are `span` steps wide. A stored stretch of points lying within fewer than `span`
    /// steps may come back as only its extremes: the points at its lowest and highest step, at its
    /// lowest and highest finite value, and its first NaN. Every spike is therefore still there,
    /// whatever the zoom, while a zoomed-out chart reads a few points per stretch. `total` counts
    /// every point in the range; `span` 0 returns them all.
    fn series_range(
        &self,
        id_or_prefix: &str,
        key: &str,
        from: u64,
        to: u64,
        span: u64,
    ) -> Result<SeriesView, StoreError>;

    /// Sets tag `key` of a run to `value`, replacing an earlier value.
    fn set_tag(&self, id_or_prefix: &str, key: &str, value: &str) -> Result<(), StoreError>;

    /// Removes tag `key` from a run; returns whether it was there.
    fn remove_tag(&self, id_or_prefix: &str, key: &str) -> Result<bool, StoreError>;

    /// Appends a markdown note to a run, stamped with the store's clock.
    fn add_note(&self, id_or_prefix: &str, markdown: &str) -> Result<(), StoreError>;

    /// Deletes a run, everything recorded about it, and its folder `runs/<run id>/` when the store
    /// has a root. Returns the full id of the deleted run.
    fn delete_run(&self, id_or_prefix: &str) -> Result<String, StoreError>;

    /// Marks `crashed` every `running` run whose last heartbeat is more than `stale_after` before
    /// `now`, and returns their ids. Idempotent.
    fn reconcile(&self, now: Timestamp, stale_after: Duration) -> Result<Vec<String>, StoreError>;

    /// Removes run folders that no run owns (older than the grace period) and compacts storage.
    fn gc(&self, options: &GcOptions) -> Result<GcReport, StoreError>;

    /// Records the base error of the dataset named `dataset` (the human-level or best-known error,
    /// a fraction in `[0, 1)`), replacing an earlier one; `None` forgets it.
    fn set_base_error(&self, dataset: &str, error: Option<f64>) -> Result<(), StoreError>;

    /// The base error recorded for the dataset named `dataset`, if any.
    fn base_error(&self, dataset: &str) -> Result<Option<f64>, StoreError>;
}
