//! The embedded [`RunStore`]: one SQLite file, `<root>/store.sqlite`, next to the run folders
//! `<root>/runs/<run id>/`.
//!
//! Why these settings:
//! - **WAL journal**: readers (`regimen runs`, a dashboard) never block the writer and the writer
//!   never blocks them; several training processes can share one store.
//! - **`BEGIN IMMEDIATE` for every write**: the write lock is taken up front, so a transaction
//!   never fails half-way when upgrading from read to write (`SQLITE_BUSY_SNAPSHOT`).
//! - **`busy_timeout` plus our own retry with backoff**: SQLite waits for another writer's lock by
//!   itself, and a transaction that still finds the file busy is retried with growing pauses for up
//!   to [`SqliteOptions::busy_wait`] before [`StoreError::Busy`] is reported. "database is locked" is
//!   not an error users should ever see from concurrent runs.
//! - **`synchronous = FULL`**: the sink's contract says a flushed event is durable. Writes come in
//!   batches of thousands of points, so one fsync per commit is cheap.
//! - **Metric points packed into blocks** (`blocks.rs`): a batch stores each series it touches as
//!   one row of up to 4096 encoded points, not a row per point, which took
//!   sustained ingest from about 0.6M to well over 1M points/s and the file from 37 to 11 bytes a
//!   point. Listings read the per-series summaries kept beside them; `get_run` decodes whole series.
//! - **One connection per store object**, behind a mutex: the writer thread of a sink and the CLI
//!   each open their own store, so the mutex is never contended in practice, and `&self` methods
//!   stay simple.

mod schema;
mod sweeps;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use regimen_events::Provenance;
use regimen_metrics::{Monitored, TaskInfo};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::Value;

use crate::blocks::{self, BLOCK_POINTS, BlockEncoder, Summary, columns, finite_or_null, ms, unsigned};
use crate::error::StoreError;
use crate::layout::{RUNS_DIR, is_safe_component, remove_orphan_folders, remove_run_folder};
use crate::model::{
    ArtifactRecord, GcOptions, GcReport, MetricPoint, MetricSummary, NewRun, Note, NoteKind, ParamValue, ReportRecord,
    RunDetail, RunRow, RunState, SeriesView, Write, check_tag_key, flatten_params,
};
use crate::query::Query;
use crate::store::RunStore;
use crate::time::{Clock, SystemClock, Timestamp};
use regimen_fs::FileError;

/// How durable a write's commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Synced to the disk before the commit returns (`synchronous = FULL`): survives a power
    /// failure. Runs' records are written this way.
    Synced,
    /// In the write-ahead log, not yet synced (`synchronous = NORMAL`): survives the death of any
    /// process, and a power failure may undo the last commits, never corrupt the file. Sweep
    /// bookkeeping is written this way: the lease protocol repairs what a power failure undoes (a
    /// lost claim is claimed again, a lost completion expires and the trial is continued).
    SurvivesProcessDeath,
}

/// The database file's name inside the store folder.
pub const DB_FILE: &str = "store.sqlite";

/// How a [`SqliteStore`] behaves; the defaults suit production.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Where "now" comes from, for notes and crash detection.
    pub clock: Arc<dyn Clock>,
    /// A `running` run whose heartbeat is older than this is considered crashed.
    pub stale_after: Duration,
    /// How long a write waits in total for other processes' locks before giving up.
    pub busy_wait: Duration,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            clock: Arc::new(SystemClock),
            stale_after: crate::CRASH_AFTER,
            busy_wait: Duration::from_secs(60),
        }
    }
}

/// A run's columns as listed: id, run id, name, experiment, status, reason, start, end, monitored
/// metric and mode.
type ListedRun = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

struct Inner {
    conn: Connection,
    /// Transactions this store committed: SQLite's `data_version` counts only other connections'.
    own_writes: u64,
    /// Metric key ids known to be committed; cleared when a transaction fails.
    key_ids: HashMap<String, i64>,
}

/// A run store in a SQLite file (or in memory, for tests and throwaway use).
pub struct SqliteStore {
    root: Option<PathBuf>,
    db_path: PathBuf,
    options: SqliteOptions,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("db_path", &self.db_path).finish_non_exhaustive()
    }
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

fn db_error(path: &Path, action: &'static str, source: rusqlite::Error) -> StoreError {
    StoreError::Database { path: path.to_path_buf(), action, source }
}

/// Runs `f` until it succeeds or fails with something other than a busy database, backing off
/// between tries, for at most `busy_wait` in total.
fn retry<T>(
    path: &Path,
    busy_wait: Duration,
    action: &'static str,
    mut f: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    let mut attempt: u32 = 0;
    loop {
        match f() {
            Err(StoreError::Database { source, .. }) if is_busy(&source) => {
                if started.elapsed() >= busy_wait {
                    let waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    return Err(StoreError::Busy { path: path.to_path_buf(), action, waited_ms });
                }
                // Spread the retries of processes that collided, without a random number generator.
                attempt = attempt.wrapping_add(1);
                let jitter = u64::from((std::process::id() ^ attempt.wrapping_mul(2_654_435_761)) % 1000);
                std::thread::sleep(pause + Duration::from_micros(jitter));
                pause = (pause * 2).min(Duration::from_millis(250));
            }
            other => return other,
        }
    }
}

/// Stores one block of a series with its summary (see [`crate::blocks::BlockSummary`]).
fn insert_block(tx: &Transaction<'_>, run: i64, key: i64, block: &BlockEncoder) -> rusqlite::Result<()> {
    let summary = block.summary();
    tx.prepare_cached(
        "INSERT INTO metric_blocks (run, key, count, points, low_step, high_step, extremes_count, extremes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        run,
        key,
        block.len() as i64,
        block.bytes(),
        summary.as_ref().map(|s| ms(s.low_step)),
        summary.as_ref().map(|s| ms(s.high_step)),
        summary.as_ref().map(|s| s.extremes_count as i64),
        summary.as_ref().map(|s| s.extremes.as_slice()),
    ])?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the store in folder `root`: `root/store.sqlite` and `root/runs/`.
    pub fn open(root: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(root, SqliteOptions::default())
    }

    /// Opens the store in folder `root` with the given options.
    pub fn open_with(root: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let root = root.as_ref().to_path_buf();
        let runs = root.join(RUNS_DIR);
        std::fs::create_dir_all(&runs)
            .map_err(|source| StoreError::Io(FileError { path: runs, action: "create the store folder", source }))?;
        let db_path = root.join(DB_FILE);
        let open = || Connection::open(&db_path);
        SqliteStore::connect(Some(root.clone()), db_path.clone(), options, open)
    }

    /// A store that lives in memory only and has no folder; it disappears when dropped.
    pub fn in_memory(options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        SqliteStore::connect(None, PathBuf::from(":memory:"), options, Connection::open_in_memory)
    }

    fn connect(
        root: Option<PathBuf>,
        db_path: PathBuf,
        options: SqliteOptions,
        open: impl Fn() -> rusqlite::Result<Connection>,
    ) -> Result<SqliteStore, StoreError> {
        let action = "open the database";
        let mut conn = retry(&db_path, options.busy_wait, action, || {
            let setup = || -> rusqlite::Result<Connection> {
                let conn = open()?;
                conn.busy_timeout(Duration::from_secs(5))?;
                conn.pragma_update(None, "foreign_keys", "ON")?;
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
                conn.pragma_update(None, "synchronous", "FULL")?;
                // 32 MiB of page cache: a batch of thousands of rows touches many pages.
                conn.pragma_update(None, "cache_size", -32_000)?;
                Ok(conn)
            };
            setup().map_err(|e| db_error(&db_path, action, e))
        })?;
        retry(&db_path, options.busy_wait, "migrate the schema", || {
            schema::migrate(&mut conn, schema::MIGRATIONS, &db_path)
        })?;
        Ok(SqliteStore {
            root,
            db_path,
            options,
            inner: Mutex::new(Inner { conn, own_writes: 0, key_ids: HashMap::new() }),
        })
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The schema version this build writes.
    pub fn schema_version() -> i64 {
        schema::latest()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back an
        // unfinished transaction when the next one begins.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, retried as a whole while the file is busy.
    fn write_tx<T>(
        &self,
        action: &'static str,
        f: impl FnMut(&Transaction<'_>, &mut HashMap<String, i64>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_tx_with(Durability::Synced, action, f)
    }

    /// [`SqliteStore::write_tx`] with the commit's durability chosen.
    fn write_tx_with<T>(
        &self,
        durability: Durability,
        action: &'static str,
        mut f: impl FnMut(&Transaction<'_>, &mut HashMap<String, i64>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut inner = self.lock();
        let Inner { conn, key_ids, own_writes } = &mut *inner;
        let path = self.db_path.clone();
        let relaxed = durability == Durability::SurvivesProcessDeath;
        if relaxed {
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| db_error(&path, action, e))?;
        }
        let result = retry(&self.db_path, self.options.busy_wait, action, || {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| db_error(&path, action, e))?;
            let value = f(&tx, key_ids)?;
            tx.commit().map_err(|e| db_error(&path, action, e))?;
            Ok(value)
        });
        if relaxed {
            conn.pragma_update(None, "synchronous", "FULL").map_err(|e| db_error(&path, action, e))?;
        }
        match &result {
            Ok(_) => *own_writes += 1,
            Err(_) => key_ids.clear(),
        }
        result
    }

    /// Runs `f` in a read transaction, so that it sees one consistent snapshot.
    fn read_tx<T>(
        &self,
        action: &'static str,
        mut f: impl FnMut(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut inner = self.lock();
        let path = self.db_path.clone();
        retry(&self.db_path, self.options.busy_wait, action, || {
            let tx = inner
                .conn
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(|e| db_error(&path, action, e))?;
            let value = f(&tx)?;
            tx.commit().map_err(|e| db_error(&path, action, e))?;
            Ok(value)
        })
    }

    fn sql(&self, action: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| db_error(&self.db_path, action, source)
    }

    /// The database id and full run id of `id_or_prefix`.
    fn find(&self, tx: &Transaction<'_>, id_or_prefix: &str) -> Result<(i64, String), StoreError> {
        let sql = self.sql("look up a run");
        if let Some(pk) = tx
            .query_row("SELECT id FROM runs WHERE run_id = ?1", [id_or_prefix], |r| r.get(0))
            .optional()
            .map_err(&sql)?
        {
            return Ok((pk, id_or_prefix.to_string()));
        }
        if id_or_prefix.is_empty() {
            return Err(StoreError::RunNotFound { id: String::new() });
        }
        let mut stmt = tx
            .prepare_cached("SELECT id, run_id FROM runs WHERE substr(run_id, 1, ?1) = ?2 ORDER BY run_id LIMIT 10")
            .map_err(&sql)?;
        let length = i64::try_from(id_or_prefix.chars().count()).unwrap_or(i64::MAX);
        let matches: Vec<(i64, String)> = stmt
            .query_map(params![length, id_or_prefix], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(&sql)?
            .collect::<Result<_, _>>()
            .map_err(&sql)?;
        match matches.as_slice() {
            [] => Err(StoreError::RunNotFound { id: id_or_prefix.to_string() }),
            [one] => Ok(one.clone()),
            _ => Err(StoreError::AmbiguousRun {
                prefix: id_or_prefix.to_string(),
                candidates: matches.into_iter().map(|m| m.1).collect(),
            }),
        }
    }

    fn start_run(&self, tx: &Transaction<'_>, run: &NewRun) -> Result<i64, StoreError> {
        let sql = self.sql("record the start of a run");
        if !is_safe_component(&run.run_id) {
            return Err(StoreError::Invalid {
                what: "run id",
                value: run.run_id.clone(),
                why: "it names the run's folder, so it must be non-empty, not `.` or `..`, and contain no `/`, `\\` or NUL",
            });
        }
        let exists =
            tx.query_row("SELECT 1 FROM runs WHERE run_id = ?1", [&run.run_id], |_| Ok(())).optional().map_err(&sql)?;
        if exists.is_some() {
            return Err(StoreError::DuplicateRun { id: run.run_id.clone() });
        }
        tx.execute(
            "INSERT INTO experiments (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![run.experiment, run.started_at.0],
        )
        .map_err(&sql)?;
        let experiment: i64 = tx
            .query_row("SELECT id FROM experiments WHERE name = ?1", [&run.experiment], |r| r.get(0))
            .map_err(&sql)?;
        tx.execute(
            "INSERT INTO runs (run_id, name, experiment_id, status, started_at, heartbeat_at, host, command, git_commit,
                               git_dirty, seed, config, dataset, environment, sweep_id, trial_id, monitor_metric,
                               monitor_mode, task, init_run, init_weights)
             VALUES (?1, ?2, ?3, 'running', ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                     ?19)",
            params![
                run.run_id,
                run.name,
                experiment,
                run.started_at.0,
                run.provenance.host,
                run.provenance.command,
                run.provenance.git_commit,
                run.provenance.git_dirty,
                run.seed as i64,
                run.config.to_string(),
                run.dataset.to_string(),
                run.environment.to_string(),
                run.provenance.sweep_id,
                run.provenance.trial_id,
                run.monitor.as_ref().map(|m| m.metric.as_str()),
                run.monitor.as_ref().map(|m| m.mode.as_str()),
                run.task.map(|task| serde_json::to_string(&task).expect("a task is always serializable")),
                run.provenance.init_run,
                run.provenance.init_weights,
            ],
        )
        .map_err(&sql)?;
        let pk = tx.last_insert_rowid();
        let mut insert =
            tx.prepare_cached("INSERT INTO params (run, key, num, text) VALUES (?1, ?2, ?3, ?4)").map_err(&sql)?;
        for (key, value) in flatten_params(&run.params) {
            let (num, text) = match value {
                ParamValue::Number(n) => (finite_or_null(n), None),
                ParamValue::Text(s) => (None, Some(s)),
            };
            if num.is_some() || text.is_some() {
                insert.execute(params![pk, key, num, text]).map_err(&sql)?;
            }
        }
        Ok(pk)
    }

    fn key_id(&self, tx: &Transaction<'_>, cache: &mut HashMap<String, i64>, key: &str) -> Result<i64, StoreError> {
        if let Some(id) = cache.get(key) {
            return Ok(*id);
        }
        let sql = self.sql("record a metric key");
        tx.execute("INSERT INTO metric_keys (name) VALUES (?1) ON CONFLICT (name) DO NOTHING", [key]).map_err(&sql)?;
        let id = tx.query_row("SELECT id FROM metric_keys WHERE name = ?1", [key], |r| r.get(0)).map_err(&sql)?;
        cache.insert(key.to_string(), id);
        Ok(id)
    }

    fn apply(
        &self,
        tx: &Transaction<'_>,
        cache: &mut HashMap<String, i64>,
        run_id: &str,
        batch: &[Write<'_>],
    ) -> Result<(), StoreError> {
        let sql = self.sql("record run events");
        let mut writes = batch.iter().peekable();
        let pk = match writes.peek() {
            Some(Write::Start(run)) => {
                if run.run_id != run_id {
                    return Err(StoreError::Invalid {
                        what: "start record",
                        value: run.run_id.clone(),
                        why: "its run id differs from the run the batch is written to",
                    });
                }
                writes.next();
                self.start_run(tx, run)?
            }
            _ => tx
                .query_row("SELECT id FROM runs WHERE run_id = ?1", [run_id], |r| r.get(0))
                .optional()
                .map_err(&sql)?
                .ok_or_else(|| StoreError::RunNotFound { id: run_id.to_string() })?,
        };
        // Each series touched by the batch, by key name (one hash per point): its key id, its
        // summary and the block being filled.
        let mut series: HashMap<&str, (i64, Summary, BlockEncoder)> = HashMap::new();
        let store_block = |key: i64, block: &mut BlockEncoder| -> Result<(), StoreError> {
            insert_block(tx, pk, key, block).map_err(&sql)?;
            block.clear();
            Ok(())
        };
        for write in writes {
            match *write {
                Write::Start(run) => return Err(StoreError::DuplicateRun { id: run.run_id.clone() }),
                Write::Scalar { key, step, epoch, wall, value } => {
                    let (id, summary, block) = match series.entry(key) {
                        Entry::Occupied(entry) => entry.into_mut(),
                        Entry::Vacant(entry) => {
                            let id = self.key_id(tx, cache, key)?;
                            entry.insert((id, Summary::new(ms(step), ms(epoch), value), BlockEncoder::new()))
                        }
                    };
                    summary.add(ms(step), ms(epoch), value);
                    block.push(step, epoch, wall, value);
                    if block.len() == BLOCK_POINTS {
                        store_block(*id, block)?;
                    }
                }
                Write::Report { split, step, epoch, wall, body } => {
                    tx.prepare_cached(
                        "INSERT INTO reports (run, split, step, epoch, wall_ms, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .and_then(|mut s| s.execute(params![pk, split, ms(step), ms(epoch), wall.0, body.to_string()]))
                    .map_err(&sql)?;
                }
                Write::Artifact { kind, path, bytes, checksum, wall } => {
                    tx.prepare_cached(
                        "INSERT INTO artifacts (run, path, kind, bytes, checksum, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (run, path) DO UPDATE SET kind = excluded.kind, bytes = excluded.bytes,
                             checksum = excluded.checksum, recorded_at = excluded.recorded_at",
                    )
                    .and_then(|mut s| s.execute(params![pk, path, kind, ms(bytes), checksum, wall.0]))
                    .map_err(&sql)?;
                }
                Write::Notice { level, message, wall } => {
                    tx.prepare_cached("INSERT INTO notes (run, created_at, kind, body) VALUES (?1, ?2, ?3, ?4)")
                        .and_then(|mut s| s.execute(params![pk, wall.0, NoteKind::of_level(level).as_str(), message]))
                        .map_err(&sql)?;
                }
                Write::Heartbeat { at } => {
                    tx.prepare_cached(
                        "UPDATE runs SET heartbeat_at = max(heartbeat_at, ?2),
                             reason = CASE status WHEN 'crashed' THEN NULL ELSE reason END,
                             status = CASE status WHEN 'crashed' THEN 'running' ELSE status END
                         WHERE id = ?1",
                    )
                    .and_then(|mut s| s.execute(params![pk, at.0]))
                    .map_err(&sql)?;
                }
                Write::Resume { from_step, at } => self.rewind(tx, pk, from_step, at)?,
                Write::End { status, reason, at } => {
                    tx.prepare_cached("UPDATE runs SET status = ?2, reason = ?3, ended_at = ?4, heartbeat_at = max(heartbeat_at, ?4) WHERE id = ?1")
                        .and_then(|mut s| s.execute(params![pk, status.as_str(), reason, at.0]))
                        .map_err(&sql)?;
                }
            }
        }
        for (id, _, block) in series.values_mut() {
            if block.len() > 0 {
                store_block(*id, block)?;
            }
        }
        let mut upsert = tx
            .prepare_cached(
                "INSERT INTO metric_summary (run, key, count, min_value, max_value, last_step, last_epoch, last_value,
                                             min_step, min_epoch, max_step, max_epoch)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (run, key) DO UPDATE SET
                     count = count + excluded.count,
                     min_value = CASE WHEN min_value IS NULL THEN excluded.min_value
                                      WHEN excluded.min_value IS NULL THEN min_value
                                      ELSE min(min_value, excluded.min_value) END,
                     max_value = CASE WHEN max_value IS NULL THEN excluded.max_value
                                      WHEN excluded.max_value IS NULL THEN max_value
                                      ELSE max(max_value, excluded.max_value) END,
                     min_step = CASE WHEN excluded.min_value IS NOT NULL AND (min_value IS NULL
                                          OR excluded.min_value < min_value
                                          OR (excluded.min_value = min_value AND excluded.min_step < min_step))
                                     THEN excluded.min_step ELSE min_step END,
                     min_epoch = CASE WHEN excluded.min_value IS NOT NULL AND (min_value IS NULL
                                          OR excluded.min_value < min_value
                                          OR (excluded.min_value = min_value AND excluded.min_step < min_step))
                                      THEN excluded.min_epoch ELSE min_epoch END,
                     max_step = CASE WHEN excluded.max_value IS NOT NULL AND (max_value IS NULL
                                          OR excluded.max_value > max_value
                                          OR (excluded.max_value = max_value AND excluded.max_step < max_step))
                                     THEN excluded.max_step ELSE max_step END,
                     max_epoch = CASE WHEN excluded.max_value IS NOT NULL AND (max_value IS NULL
                                          OR excluded.max_value > max_value
                                          OR (excluded.max_value = max_value AND excluded.max_step < max_step))
                                      THEN excluded.max_epoch ELSE max_epoch END,
                     last_value = CASE WHEN excluded.last_step >= last_step THEN excluded.last_value ELSE last_value END,
                     last_epoch = CASE WHEN excluded.last_step >= last_step THEN excluded.last_epoch ELSE last_epoch END,
                     last_step = max(last_step, excluded.last_step)",
            )
            .map_err(&sql)?;
        for (key, s, _) in series.into_values() {
            let (min, max) = (columns(s.min), columns(s.max));
            upsert
                .execute(params![
                    pk,
                    key,
                    s.count,
                    min.0,
                    max.0,
                    s.last_step,
                    s.last_epoch,
                    finite_or_null(s.last),
                    min.1,
                    min.2,
                    max.1,
                    max.2
                ])
                .map_err(&sql)?;
        }
        Ok(())
    }

    /// Drops the run's points and reports after `from_step`, recomputes the summaries of the
    /// series that lost points, and marks the run running again ([`Write::Resume`]).
    fn rewind(&self, tx: &Transaction<'_>, pk: i64, from_step: u64, at: Timestamp) -> Result<(), StoreError> {
        let sql = self.sql("rewind a resumed run");
        let mut by_key: BTreeMap<i64, Vec<MetricPoint>> = BTreeMap::new();
        {
            let mut stmt = tx
                .prepare("SELECT key, count, points FROM metric_blocks WHERE run = ?1 ORDER BY key, id")
                .map_err(&sql)?;
            let mut cursor = stmt.query([pk]).map_err(&sql)?;
            while let Some(r) = cursor.next().map_err(&sql)? {
                let key: i64 = r.get(0).map_err(&sql)?;
                let count: i64 = r.get(1).map_err(&sql)?;
                let points = by_key.entry(key).or_default();
                let decoded = match r.get_ref(2).map_err(&sql)? {
                    ValueRef::Blob(bytes) => {
                        usize::try_from(count).ok().and_then(|count| blocks::decode(bytes, count, points))
                    }
                    _ => None,
                };
                if decoded.is_none() {
                    return Err(StoreError::Corrupt {
                        path: self.db_path.clone(),
                        what: "metric block",
                        value: format!("key {key} of run {pk}"),
                    });
                }
            }
        }
        for (key, points) in by_key {
            if points.iter().all(|p| p.step <= from_step) {
                continue;
            }
            tx.execute("DELETE FROM metric_blocks WHERE run = ?1 AND key = ?2", params![pk, key]).map_err(&sql)?;
            tx.execute("DELETE FROM metric_summary WHERE run = ?1 AND key = ?2", params![pk, key]).map_err(&sql)?;
            let kept: Vec<&MetricPoint> = points.iter().filter(|p| p.step <= from_step).collect();
            let Some(first) = kept.first() else { continue };
            let mut summary = Summary::new(ms(first.step), ms(first.epoch), first.value);
            let mut block = BlockEncoder::new();
            for (i, point) in kept.iter().enumerate() {
                summary.add(ms(point.step), ms(point.epoch), point.value);
                block.push(point.step, point.epoch, point.wall, point.value);
                if block.len() == BLOCK_POINTS || i + 1 == kept.len() {
                    insert_block(tx, pk, key, &block).map_err(&sql)?;
                    block.clear();
                }
            }
            let (min, max) = (columns(summary.min), columns(summary.max));
            tx.execute(
                "INSERT INTO metric_summary (run, key, count, min_value, max_value, last_step, last_epoch, last_value,
                                             min_step, min_epoch, max_step, max_epoch)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    pk,
                    key,
                    summary.count,
                    min.0,
                    max.0,
                    summary.last_step,
                    summary.last_epoch,
                    finite_or_null(summary.last),
                    min.1,
                    min.2,
                    max.1,
                    max.2
                ],
            )
            .map_err(&sql)?;
        }
        tx.execute("DELETE FROM reports WHERE run = ?1 AND step > ?2", params![pk, ms(from_step)]).map_err(&sql)?;
        tx.execute(
            "UPDATE runs SET status = 'running', reason = NULL, ended_at = NULL, heartbeat_at = max(heartbeat_at, ?2) WHERE id = ?1",
            params![pk, at.0],
        )
        .map_err(&sql)?;
        Ok(())
    }

    /// Loads rows for every run, or for one run when `only` is given.
    fn load_rows(&self, tx: &Transaction<'_>, only: Option<i64>) -> Result<Vec<(i64, RunRow)>, StoreError> {
        let sql = self.sql("read runs");
        let filter = if only.is_some() { "WHERE r.id = ?1" } else { "WHERE ?1 IS NULL" };
        let mut stmt = tx
            .prepare(&format!(
                "SELECT r.id, r.run_id, r.name, e.name, r.status, r.reason, r.started_at, r.ended_at, r.monitor_metric,
                        r.monitor_mode, json_extract(r.dataset, '$.name')
                 FROM runs r JOIN experiments e ON e.id = r.experiment_id {filter}"
            ))
            .map_err(&sql)?;
        let raw: Vec<ListedRun> = stmt
            .query_map([only], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ))
            })
            .map_err(&sql)?
            .collect::<Result<_, _>>()
            .map_err(&sql)?;
        let mut rows: BTreeMap<i64, RunRow> = BTreeMap::new();
        for (pk, run_id, name, experiment, status, reason, started, ended, monitor_metric, monitor_mode, dataset) in raw
        {
            let corrupt =
                |what: &'static str, value: String| StoreError::Corrupt { path: self.db_path.clone(), what, value };
            let status = RunState::parse(&status).ok_or_else(|| corrupt("run status", status.clone()))?;
            let monitor = match (monitor_metric, monitor_mode) {
                (Some(metric), Some(mode)) => {
                    let mode = mode.parse().map_err(|_| corrupt("monitor mode", mode.clone()))?;
                    Some(Monitored { metric, mode })
                }
                _ => None,
            };
            let row = RunRow {
                run_id,
                name,
                experiment,
                dataset,
                status,
                reason,
                monitor,
                started_at: Timestamp(started),
                ended_at: ended.map(Timestamp),
                params: BTreeMap::new(),
                metrics: BTreeMap::new(),
                tags: BTreeMap::new(),
            };
            rows.insert(pk, row);
        }
        let run_filter = if only.is_some() { "WHERE run = ?1" } else { "WHERE ?1 IS NULL" };
        let mut stmt = tx.prepare(&format!("SELECT run, key, num, text FROM params {run_filter}")).map_err(&sql)?;
        let mut cursor = stmt.query([only]).map_err(&sql)?;
        while let Some(r) = cursor.next().map_err(&sql)? {
            let (pk, key, num, text): (i64, String, Option<f64>, Option<String>) =
                (r.get(0).map_err(&sql)?, r.get(1).map_err(&sql)?, r.get(2).map_err(&sql)?, r.get(3).map_err(&sql)?);
            let value = match (num, text) {
                (Some(n), _) => ParamValue::Number(n),
                (None, Some(s)) => ParamValue::Text(s),
                (None, None) => continue,
            };
            if let Some(row) = rows.get_mut(&pk) {
                row.params.insert(key, value);
            }
        }
        let mut stmt = tx.prepare(&format!("SELECT run, key, value FROM tags {run_filter}")).map_err(&sql)?;
        let mut cursor = stmt.query([only]).map_err(&sql)?;
        while let Some(r) = cursor.next().map_err(&sql)? {
            let pk: i64 = r.get(0).map_err(&sql)?;
            if let Some(row) = rows.get_mut(&pk) {
                row.tags.insert(r.get(1).map_err(&sql)?, r.get(2).map_err(&sql)?);
            }
        }
        let mut stmt = tx
            .prepare(&format!(
                "SELECT s.run, k.name, s.count, s.min_value, s.max_value, s.last_step, s.last_value, s.min_step,
                        s.min_epoch, s.max_step, s.max_epoch
                 FROM metric_summary s JOIN metric_keys k ON k.id = s.key {}",
                run_filter.replace("run", "s.run")
            ))
            .map_err(&sql)?;
        let mut cursor = stmt.query([only]).map_err(&sql)?;
        while let Some(r) = cursor.next().map_err(&sql)? {
            let pk: i64 = r.get(0).map_err(&sql)?;
            let key: String = r.get(1).map_err(&sql)?;
            let count: i64 = r.get(2).map_err(&sql)?;
            let (min, max): (Option<f64>, Option<f64>) = (r.get(3).map_err(&sql)?, r.get(4).map_err(&sql)?);
            let last_step: i64 = r.get(5).map_err(&sql)?;
            let last: Option<f64> = r.get(6).map_err(&sql)?;
            let at = |i: usize| -> Result<Option<u64>, StoreError> {
                Ok(r.get::<_, Option<i64>>(i).map_err(&sql)?.map(unsigned))
            };
            let min = min.map(|value| Ok::<_, StoreError>((value, at(7)?, at(8)?))).transpose()?;
            let max = max.map(|value| Ok::<_, StoreError>((value, at(9)?, at(10)?))).transpose()?;
            if let Some(row) = rows.get_mut(&pk) {
                let summary = MetricSummary::from_extremes(
                    Monitored::mode_of(row.monitor.as_ref(), &key),
                    min,
                    max,
                    last.unwrap_or(f64::NAN),
                    unsigned(last_step),
                    unsigned(count),
                );
                row.metrics.insert(key, summary);
            }
        }
        Ok(rows.into_iter().collect())
    }

    /// The metric series of run `pk` (all of them, or only `only`), in step order.
    fn read_series(
        &self,
        tx: &Transaction<'_>,
        pk: i64,
        run_id: &str,
        only: Option<&str>,
    ) -> Result<BTreeMap<String, Vec<MetricPoint>>, StoreError> {
        let sql = self.sql("read a metric series");
        let corrupt =
            |what: &'static str, value: String| StoreError::Corrupt { path: self.db_path.clone(), what, value };
        let mut series: BTreeMap<String, Vec<MetricPoint>> = BTreeMap::new();
        let mut stmt = tx
            .prepare_cached(
                "SELECT k.name, b.count, b.points FROM metric_blocks b JOIN metric_keys k ON k.id = b.key
                 WHERE b.run = ?1 AND (?2 IS NULL OR k.name = ?2) ORDER BY b.key, b.id",
            )
            .map_err(&sql)?;
        let mut cursor = stmt.query(params![pk, only]).map_err(&sql)?;
        while let Some(r) = cursor.next().map_err(&sql)? {
            let key: String = r.get(0).map_err(&sql)?;
            let count: i64 = r.get(1).map_err(&sql)?;
            let block = r.get_ref(2).map_err(&sql)?;
            let points = series.entry(key.clone()).or_default();
            let decoded = match block {
                ValueRef::Blob(bytes) => {
                    usize::try_from(count).ok().and_then(|count| blocks::decode(bytes, count, points))
                }
                _ => None,
            };
            if decoded.is_none() {
                return Err(corrupt("metric block", format!("{count} points of `{key}` in run {run_id}")));
            }
        }
        // Blocks are in arrival order; a stable sort puts points in step order, ties by arrival.
        for points in series.values_mut() {
            points.sort_by_key(|p| p.step);
        }
        Ok(series)
    }

    fn detail(&self, tx: &Transaction<'_>, pk: i64) -> Result<RunDetail, StoreError> {
        let sql = self.sql("read a run");
        let corrupt =
            |what: &'static str, value: String| StoreError::Corrupt { path: self.db_path.clone(), what, value };
        let json =
            |what: &'static str, text: String| serde_json::from_str::<Value>(&text).map_err(|_| corrupt(what, text));
        let row = self
            .load_rows(tx, Some(pk))?
            .into_iter()
            .next()
            .map(|(_, row)| row)
            .ok_or_else(|| StoreError::RunNotFound { id: pk.to_string() })?;
        let record = tx
            .query_row(
                "SELECT heartbeat_at, host, command, git_commit, git_dirty, seed, config, dataset, environment, sweep_id,
                        trial_id, task, init_run, init_weights
                 FROM runs WHERE id = ?1",
                [pk],
                |r| {
                    let provenance = Provenance {
                        host: r.get(1)?,
                        command: r.get(2)?,
                        git_commit: r.get(3)?,
                        git_dirty: r.get(4)?,
                        sweep_id: r.get(9)?,
                        trial_id: r.get(10)?,
                        init_run: r.get(12)?,
                        init_weights: r.get(13)?,
                    };
                    let texts: [String; 3] = [r.get(6)?, r.get(7)?, r.get(8)?];
                    let task: Option<String> = r.get(11)?;
                    Ok((Timestamp(r.get(0)?), r.get::<_, i64>(5)? as u64, provenance, texts, task))
                },
            )
            .map_err(&sql)?;
        let (heartbeat_at, seed, provenance, [config, dataset, environment], task) = record;
        let task = match task {
            Some(text) => Some(serde_json::from_str::<TaskInfo>(&text).map_err(|_| corrupt("task", text))?),
            None => None,
        };
        let series = self.read_series(tx, pk, &row.run_id, None)?;
        let mut stmt = tx
            .prepare("SELECT split, step, epoch, wall_ms, body FROM reports WHERE run = ?1 ORDER BY id")
            .map_err(&sql)?;
        let raw: Vec<(String, i64, i64, i64, String)> = stmt
            .query_map([pk], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .map_err(&sql)?
            .collect::<Result<_, _>>()
            .map_err(&sql)?;
        let reports = raw
            .into_iter()
            .map(|(split, step, epoch, wall, body)| {
                Ok(ReportRecord {
                    split,
                    step: unsigned(step),
                    epoch: unsigned(epoch),
                    wall: Timestamp(wall),
                    body: json("report body", body)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut stmt =
            tx.prepare("SELECT created_at, kind, body FROM notes WHERE run = ?1 ORDER BY id").map_err(&sql)?;
        let raw: Vec<(i64, String, String)> = stmt
            .query_map([pk], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(&sql)?
            .collect::<Result<_, _>>()
            .map_err(&sql)?;
        let notes = raw
            .into_iter()
            .map(|(at, kind, body)| {
                Ok(Note {
                    created_at: Timestamp(at),
                    kind: NoteKind::parse(&kind).ok_or_else(|| corrupt("note kind", kind))?,
                    body,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut stmt = tx
            .prepare("SELECT kind, path, bytes, checksum, recorded_at FROM artifacts WHERE run = ?1 ORDER BY path")
            .map_err(&sql)?;
        let artifacts = stmt
            .query_map([pk], |r| {
                Ok(ArtifactRecord {
                    kind: r.get(0)?,
                    path: r.get(1)?,
                    bytes: unsigned(r.get(2)?),
                    checksum: r.get(3)?,
                    recorded_at: Timestamp(r.get(4)?),
                })
            })
            .map_err(&sql)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sql)?;
        Ok(RunDetail {
            row,
            heartbeat_at,
            seed,
            task,
            config: json("config", config)?,
            dataset: json("dataset identity", dataset)?,
            provenance,
            environment: json("environment", environment)?,
            series,
            reports,
            notes,
            artifacts,
        })
    }
}

impl RunStore for SqliteStore {
    fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    fn write(&self, run_id: &str, batch: &[Write<'_>]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write_tx("record run events", |tx, cache| self.apply(tx, cache, run_id, batch))
    }

    fn list_runs(&self, query: &Query) -> Result<Vec<RunRow>, StoreError> {
        self.reconcile(self.options.clock.now(), self.options.stale_after)?;
        let rows = self.read_tx("list runs", |tx| self.load_rows(tx, None))?;
        Ok(query.apply(rows.into_iter().map(|(_, row)| row).collect())?)
    }

    fn resolve(&self, id_or_prefix: &str) -> Result<String, StoreError> {
        self.read_tx("look up a run", |tx| self.find(tx, id_or_prefix)).map(|(_, id)| id)
    }

    fn get_run(&self, id_or_prefix: &str) -> Result<RunDetail, StoreError> {
        self.reconcile(self.options.clock.now(), self.options.stale_after)?;
        self.read_tx("read a run", |tx| {
            let (pk, _) = self.find(tx, id_or_prefix)?;
            self.detail(tx, pk)
        })
    }

    fn set_tag(&self, id_or_prefix: &str, key: &str, value: &str) -> Result<(), StoreError> {
        check_tag_key(key)?;
        self.write_tx("set a tag", |tx, _| {
            let (pk, _) = self.find(tx, id_or_prefix)?;
            tx.execute("INSERT INTO tags (run, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (run, key) DO UPDATE SET value = excluded.value", params![pk, key, value])
                .map_err(self.sql("set a tag"))?;
            Ok(())
        })
    }

    fn remove_tag(&self, id_or_prefix: &str, key: &str) -> Result<bool, StoreError> {
        self.write_tx("remove a tag", |tx, _| {
            let (pk, _) = self.find(tx, id_or_prefix)?;
            let removed = tx
                .execute("DELETE FROM tags WHERE run = ?1 AND key = ?2", params![pk, key])
                .map_err(self.sql("remove a tag"))?;
            Ok(removed > 0)
        })
    }

    fn add_note(&self, id_or_prefix: &str, markdown: &str) -> Result<(), StoreError> {
        let now = self.options.clock.now();
        self.write_tx("add a note", |tx, _| {
            let (pk, _) = self.find(tx, id_or_prefix)?;
            tx.execute(
                "INSERT INTO notes (run, created_at, kind, body) VALUES (?1, ?2, 'note', ?3)",
                params![pk, now.0, markdown],
            )
            .map_err(self.sql("add a note"))?;
            Ok(())
        })
    }

    fn set_base_error(&self, dataset: &str, error: Option<f64>) -> Result<(), StoreError> {
        self.write_tx("record a base error", |tx, _| {
            match error {
                Some(error) => tx.execute(
                    "INSERT INTO datasets (name, base_error) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET base_error = excluded.base_error",
                    params![dataset, error],
                ),
                None => tx.execute("DELETE FROM datasets WHERE name = ?1", [dataset]),
            }
            .map_err(self.sql("record a base error"))?;
            Ok(())
        })
    }

    fn changes(&self) -> Result<u64, StoreError> {
        let inner = self.lock();
        let version: i64 = inner
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| db_error(&self.db_path, "read the data version", e))?;
        Ok((version as u64).wrapping_shl(32).wrapping_add(inner.own_writes))
    }

    fn series_range(
        &self,
        id_or_prefix: &str,
        key: &str,
        from: u64,
        to: u64,
        span: u64,
    ) -> Result<SeriesView, StoreError> {
        self.read_tx("read a metric series", |tx| {
            let sql = self.sql("read a metric series");
            let (pk, run_id) = self.find(tx, id_or_prefix)?;
            let corrupt = |count: i64| StoreError::Corrupt {
                path: self.db_path.clone(),
                what: "metric block",
                value: format!("{count} points of `{key}` in run {run_id}"),
            };
            // Blocks without a step range (none since version 8) are always read.
            let mut stmt = tx
                .prepare_cached(
                    "SELECT b.count, b.low_step, b.high_step, b.extremes_count, b.extremes, b.points
                     FROM metric_blocks b JOIN metric_keys k ON k.id = b.key
                     WHERE b.run = ?1 AND k.name = ?2 AND (b.low_step IS NULL OR (b.high_step >= ?3 AND b.low_step <= ?4))
                     ORDER BY b.id",
                )
                .map_err(&sql)?;
            let mut cursor = stmt.query(params![pk, key, ms(from), ms(to)]).map_err(&sql)?;
            let mut view = SeriesView::default();
            let mut decoded = Vec::new();
            while let Some(r) = cursor.next().map_err(&sql)? {
                let count: i64 = r.get(0).map_err(&sql)?;
                let range: (Option<i64>, Option<i64>) = (r.get(1).map_err(&sql)?, r.get(2).map_err(&sql)?);
                let extremes: Option<i64> = r.get(3).map_err(&sql)?;
                let summarized = blocks::read_as_extremes(from, to, span, range, extremes, count);
                let (column, points) = if summarized { (4, extremes.unwrap_or(0)) } else { (5, count) };
                decoded.clear();
                let ok = match r.get_ref(column).map_err(&sql)? {
                    ValueRef::Blob(bytes) => {
                        usize::try_from(points).ok().and_then(|n| blocks::decode(bytes, n, &mut decoded))
                    }
                    _ => None,
                };
                ok.ok_or_else(|| corrupt(count))?;
                blocks::add_to_view(&mut view, &mut decoded, summarized, count, from, to);
            }
            // Blocks are in arrival order; a stable sort puts points in step order, ties by arrival.
            view.points.sort_by_key(|p| p.step);
            Ok(view)
        })
    }

    fn series(&self, id_or_prefix: &str, key: &str) -> Result<Vec<MetricPoint>, StoreError> {
        self.read_tx("read a metric series", |tx| {
            let (pk, run_id) = self.find(tx, id_or_prefix)?;
            Ok(self.read_series(tx, pk, &run_id, Some(key))?.remove(key).unwrap_or_default())
        })
    }

    fn base_error(&self, dataset: &str) -> Result<Option<f64>, StoreError> {
        self.read_tx("read a base error", |tx| {
            tx.query_row("SELECT base_error FROM datasets WHERE name = ?1", [dataset], |r| r.get(0))
                .optional()
                .map_err(self.sql("read a base error"))
        })
    }

    fn delete_run(&self, id_or_prefix: &str) -> Result<String, StoreError> {
        let run_id = self.write_tx("delete a run", |tx, _| {
            let (pk, run_id) = self.find(tx, id_or_prefix)?;
            // Points, summaries, params, reports, notes, tags and artifacts go with it (ON DELETE CASCADE).
            tx.execute("DELETE FROM runs WHERE id = ?1", [pk]).map_err(self.sql("delete a run"))?;
            Ok(run_id)
        })?;
        if let Some(root) = &self.root {
            remove_run_folder(root, &run_id)?;
        }
        Ok(run_id)
    }

    fn reconcile(&self, now: Timestamp, stale_after: Duration) -> Result<Vec<String>, StoreError> {
        let cutoff = now.0.saturating_sub(i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX));
        let select = "SELECT run_id FROM runs WHERE status = 'running' AND heartbeat_at < ?1 ORDER BY run_id";
        let stale = |tx: &Transaction<'_>| -> Result<Vec<String>, StoreError> {
            let sql = self.sql("detect crashed runs");
            let mut stmt = tx.prepare_cached(select).map_err(&sql)?;
            stmt.query_map([cutoff], |r| r.get(0)).map_err(&sql)?.collect::<Result<Vec<String>, _>>().map_err(&sql)
        };
        // Look first without the write lock: this runs before every listing.
        if self.read_tx("detect crashed runs", stale)?.is_empty() {
            return Ok(Vec::new());
        }
        let seconds = stale_after.as_secs();
        self.write_tx("mark crashed runs", |tx, _| {
            let ids = stale(tx)?;
            let reason =
                format!("no heartbeat for more than {seconds} s and no recorded end: the process probably died");
            tx.execute(
                "UPDATE runs SET status = 'crashed', reason = ?2 WHERE status = 'running' AND heartbeat_at < ?1",
                params![cutoff, reason],
            )
            .map_err(self.sql("mark crashed runs"))?;
            Ok(ids)
        })
    }

    fn gc(&self, options: &GcOptions) -> Result<GcReport, StoreError> {
        let mut report = GcReport::default();
        if let Some(root) = &self.root {
            let known = self.read_tx("list run ids", |tx| {
                let sql = self.sql("list run ids");
                let mut stmt = tx.prepare("SELECT run_id FROM runs").map_err(&sql)?;
                stmt.query_map([], |r| r.get(0)).map_err(&sql)?.collect::<Result<_, _>>().map_err(&sql)
            })?;
            report.removed = remove_orphan_folders(root, &known, options)?;
        }
        if options.vacuum && !options.dry_run {
            let inner = self.lock();
            let action = "compact the database";
            retry(&self.db_path, self.options.busy_wait, action, || {
                let compact = || -> rusqlite::Result<()> {
                    inner.conn.execute_batch("VACUUM")?;
                    inner.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                };
                compact().map_err(|e| db_error(&self.db_path, action, e))
            })?;
            report.vacuumed = true;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{Factory, STALE_AFTER};
    use crate::time::ManualClock;

    fn options(clock: Arc<ManualClock>) -> SqliteOptions {
        SqliteOptions { clock, stale_after: STALE_AFTER, busy_wait: Duration::from_secs(30) }
    }

    const ON_DISK: Factory = |clock| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary folder: {e}"));
        let store = SqliteStore::open_with(dir.path().join("store"), options(clock)).unwrap_or_else(|e| panic!("{e}"));
        Some((Arc::new(store), Box::new(dir)))
    };

    const IN_MEMORY: Factory = |clock| {
        let store = SqliteStore::in_memory(options(clock)).unwrap_or_else(|e| panic!("{e}"));
        Some((Arc::new(store), Box::new(())))
    };

    crate::conformance_suite!(conformance_on_disk, ON_DISK);
    crate::conformance_suite!(conformance_in_memory, IN_MEMORY);

    #[test]
    fn run_ids_that_escape_the_runs_folder_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\\b", "../x"] {
            assert!(!is_safe_component(bad), "{bad:?}");
        }
        assert!(is_safe_component("20240501-120000-mlp-moons"));
    }

    #[test]
    fn a_damaged_metric_block_is_reported_as_corrupt() -> Result<(), StoreError> {
        let store = SqliteStore::in_memory(SqliteOptions::default())?;
        let run = crate::conformance::sample_run("r1", 0.1, "mlp");
        store.write(
            "r1",
            &[
                Write::Start(&run),
                Write::Scalar { key: "train.loss", step: 1, epoch: 1, wall: run.started_at, value: 0.5 },
            ],
        )?;
        store.lock().conn.execute("UPDATE metric_blocks SET points = x'01ff'", []).map_err(store.sql("damage"))?;
        let e = store.get_run("r1").err();
        assert!(matches!(e, Some(StoreError::Corrupt { what: "metric block", .. })), "{e:?}");
        Ok(())
    }

    #[test]
    fn opening_creates_the_folder_layout_in_wal_mode() -> Result<(), StoreError> {
        let dir = tempfile::tempdir()
            .map_err(|source| StoreError::Io(FileError { path: "tmp".into(), action: "create", source }))?;
        let root = dir.path().join("store");
        let store = SqliteStore::open(&root)?;
        assert!(root.join(DB_FILE).is_file());
        assert!(root.join(RUNS_DIR).is_dir());
        let mode: String =
            store.lock().conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(store.sql("read"))?;
        assert_eq!(mode, "wal");
        let fk: i64 =
            store.lock().conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).map_err(store.sql("read"))?;
        assert_eq!(fk, 1);
        drop(store);
        // Reopening an existing store migrates nothing and works.
        SqliteStore::open(&root)?;
        Ok(())
    }

    #[test]
    fn sweep_writes_relax_durability_for_their_own_commit_only() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::WriterGone { reason: e.to_string() })?;
        let store = SqliteStore::open(dir.path())?;
        let synchronous = |store: &SqliteStore| -> i64 {
            store.lock().conn.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap_or(-1)
        };
        assert_eq!(synchronous(&store), 2, "FULL");
        let sweep = crate::NewSweep {
            sweep_id: "s".into(),
            name: "s".into(),
            spec: serde_json::json!({}),
            parent: None,
            created_at: Timestamp(0),
        };
        crate::SweepStore::create_sweep(&store, &sweep)?;
        let claim = crate::Claim::New { number: 0, params: serde_json::json!({}), target: 1 };
        crate::SweepStore::claim_trial(&store, "s", &claim, "w", Duration::from_secs(60))?;
        assert_eq!(synchronous(&store), 2, "back to FULL for the runs' writes");
        Ok(())
    }

    #[test]
    fn another_process_writing_shows_in_changes() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|source| {
            StoreError::Io(FileError { path: PathBuf::from("tmp"), action: "create a temporary folder", source })
        })?;
        let reader = SqliteStore::open(dir.path())?;
        let writer = SqliteStore::open(dir.path())?;
        let before = reader.changes()?;
        writer.write("r1", &[Write::Start(&crate::conformance::sample_run("r1", 0.1, "mlp"))])?;
        assert_ne!(reader.changes()?, before, "a commit by another connection is seen");
        Ok(())
    }

    #[test]
    fn deleting_a_run_deletes_its_metric_blocks() -> Result<(), StoreError> {
        let store = SqliteStore::in_memory(SqliteOptions::default())?;
        let run = crate::conformance::sample_run("r1", 0.1, "mlp");
        let wall = Timestamp(0);
        store.write(
            "r1",
            &[Write::Start(&run), Write::Scalar { key: "train.loss", step: 1, epoch: 1, wall, value: 1.0 }],
        )?;
        let blocks = |store: &SqliteStore| -> Result<i64, StoreError> {
            store
                .lock()
                .conn
                .query_row("SELECT count(*) FROM metric_blocks", [], |r| r.get(0))
                .map_err(store.sql("read"))
        };
        assert_eq!(blocks(&store)?, 1);
        store.delete_run("r1")?;
        assert_eq!(blocks(&store)?, 0, "the blocks went with their run");
        Ok(())
    }
}
