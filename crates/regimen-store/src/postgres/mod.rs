//! The team [`RunStore`]: one PostgreSQL database shared by every machine, with run folders
//! (checkpoints, exports, images) in a folder given beside it.
//!
//! Why it is built this way:
//! - **The same model as SQLite** ([`schema`]): metric points packed into blocks with summaries,
//!   and the same [`crate::conformance`] suite, sweeps and trials included. No caller knows which
//!   backend it has.
//! - **A bounded pool** (r2d2) of synchronous `postgres` clients: the store's methods take `&self`
//!   from many threads (the sink's writer, a dashboard's requests) and each transaction borrows one
//!   connection.
//! - **Retried, never dropped**: a transaction that fails because the connection was lost, the
//!   server restarted, or PostgreSQL chose it as a deadlock or serialization victim is run again
//!   on a fresh connection, with growing pauses, for up to [`PostgresOptions::retry_for`]; only
//!   then is the error reported (the sink keeps its batch and reports). A failure during `COMMIT`
//!   itself is not retried, since the batch may have been written.
//! - **The database's clock** by default ([`TimeSource::Database`]): leases, heartbeats and crash
//!   detection compare times taken on one machine, never the workers' own clocks, which drift.
//! - **Sweep writes lock the sweep's row** (`FOR UPDATE`): each bumps the sweep's change counter,
//!   so writers of one sweep take turns and the compare-and-swap of a claim is exact. Continuing a
//!   trial first locks its row with `SKIP LOCKED`, so a worker that lost the race to another one
//!   moves on at once instead of waiting for it.

mod schema;
mod sweeps;
#[cfg(any(test, feature = "conformance"))]
pub mod testing;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, IsolationLevel, NoTls, Row, Statement, Transaction};
use r2d2_postgres::PostgresConnectionManager;
use regimen_events::Provenance;
use regimen_metrics::{Monitored, TaskInfo};
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
use crate::time::{Clock, Timestamp};

type Pool = r2d2::Pool<Manager>;

/// How long opening a store retries an unreachable server.
const OPEN_RETRY: Duration = Duration::from_secs(10);

/// Where a [`PostgresStore`] reads "now" from.
#[derive(Debug, Clone)]
pub enum TimeSource {
    /// The database server's clock: one clock for every machine sharing the store.
    Database,
    /// A clock of this process (tests use a [`crate::ManualClock`]).
    Clock(Arc<dyn Clock>),
}

/// How a [`PostgresStore`] behaves; the defaults suit a team store.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Where "now" comes from, for notes, leases and crash detection.
    pub time: TimeSource,
    /// A `running` run whose heartbeat is older than this is considered crashed.
    pub stale_after: Duration,
    /// How long a transaction is retried while the server cannot be reached.
    pub retry_for: Duration,
    /// The most connections this store object opens at once.
    pub pool_size: u32,
    /// The folder that holds the run folders (`runs/<run id>/`): checkpoints and other artifacts.
    pub artifacts: Option<PathBuf>,
}

impl Default for PostgresOptions {
    fn default() -> PostgresOptions {
        PostgresOptions {
            time: TimeSource::Database,
            stale_after: crate::CRASH_AFTER,
            retry_for: Duration::from_secs(60),
            pool_size: 4,
            artifacts: None,
        }
    }
}

/// A run store in a PostgreSQL database.
pub struct PostgresStore {
    /// The URL without its password, for messages.
    name: String,
    options: PostgresOptions,
    pool: Pool,
    /// Metric key ids known to be committed; cleared when a transaction fails.
    key_ids: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Whether a URL names a PostgreSQL database (`postgres://` or `postgresql://`).
pub fn is_postgres_url(spec: &str) -> bool {
    spec.starts_with("postgres://") || spec.starts_with("postgresql://")
}

/// The URL with its password replaced by `***`, fit for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Whether an error is worth retrying on a fresh connection: the connection is gone, or the
/// server asked for a retry (serialization failure, deadlock, shutting down, too many clients).
fn is_transient(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => {
            [
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(code)
                || code.code().starts_with("08")
        }
        // No SQLSTATE: an I/O error on the socket, a refused or reset connection.
        None => true,
    }
}

/// What went wrong inside a transaction: an answer for the caller, or a database error that may be
/// retried.
enum Failure {
    Store(StoreError),
    Db(postgres::Error),
    /// The pool could not hand out a connection in time (the server is unreachable).
    Pool(r2d2::Error),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        Failure::Store(error)
    }
}

impl From<postgres::Error> for Failure {
    fn from(error: postgres::Error) -> Failure {
        Failure::Db(error)
    }
}

/// A pooled connection and the statements it has prepared, by SQL text. The `postgres` client
/// parses a query given as text on every call, one round trip before the one that runs it; with the
/// cache each statement is parsed once per connection, which halves the round trips of a claim.
pub(crate) struct Connection {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// Opens [`Connection`]s for the pool.
struct Manager(PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        Ok(Connection { client: self.0.connect()?, statements: HashMap::new() })
    }

    fn is_valid(&self, connection: &mut Connection) -> Result<(), postgres::Error> {
        connection.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, connection: &mut Connection) -> bool {
        connection.client.is_closed()
    }
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// A transaction on a pooled connection, with the connection's statement cache.
pub(crate) struct Tx<'a> {
    tx: Transaction<'a>,
    statements: &'a mut HashMap<String, Statement>,
}

impl Tx<'_> {
    fn commit(self) -> Result<(), postgres::Error> {
        self.tx.commit()
    }

    /// The statement of `sql`, prepared on this connection once.
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.execute(&statement, params)
    }

    fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.query(&statement, params)
    }

    fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.query_one(&statement, params)
    }

    fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.query_opt(&statement, params)
    }
}

/// Bumps the change counter after a commit.
const BUMP_SQL: &str = "SELECT nextval('regimen_changes')";

/// The database's clock in milliseconds.
const NOW_SQL: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

impl PostgresStore {
    /// Connects to the database at `url` (a `postgres://` URL or a libpq `key=value` string),
    /// creating or migrating the schema.
    pub fn open(url: &str, options: PostgresOptions) -> Result<PostgresStore, StoreError> {
        let name = redact(url);
        let config: postgres::Config = url.parse().map_err(|source: postgres::Error| StoreError::Server {
            store: name.clone(),
            action: "read the store URL",
            source: Box::new(source),
        })?;
        let manager = Manager(PostgresConnectionManager::new(config, NoTls));
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(0))
            .connection_timeout(options.retry_for.clamp(Duration::from_millis(100), OPEN_RETRY))
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        let store = PostgresStore { name, options, pool, key_ids: Mutex::new(HashMap::new()) };
        // A server that cannot be reached at the start is most likely a wrong URL: say so sooner.
        let found = store.retry_within(OPEN_RETRY.min(store.options.retry_for), "migrate the schema", || {
            let mut connection = store.pool.get().map_err(Failure::Pool)?;
            Ok(schema::migrate(&mut connection.client, schema::MIGRATIONS)?)
        })?;
        if let schema::Migrated::TooNew(found) = found {
            return Err(StoreError::SchemaTooNew {
                path: PathBuf::from(&store.name),
                found,
                supported: schema::latest(),
            });
        }
        if let Some(folder) = &store.options.artifacts {
            let runs = folder.join(RUNS_DIR);
            std::fs::create_dir_all(&runs).map_err(|source| {
                StoreError::Io(regimen_fs::FileError { path: runs, action: "create the artifact folder", source })
            })?;
        }
        Ok(store)
    }

    /// The schema version this build writes.
    pub fn schema_version() -> i64 {
        schema::latest()
    }

    fn server(&self, action: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Server { store: self.name.clone(), action, source: Box::new(source) }
    }

    fn corrupt(&self, what: &'static str, value: impl Into<String>) -> StoreError {
        StoreError::Corrupt { path: PathBuf::from(&self.name), what, value: value.into() }
    }

    /// Runs `f` until it succeeds, fails for good, or transient failures have lasted
    /// [`PostgresOptions::retry_for`], backing off between tries.
    fn retry<T>(&self, action: &'static str, f: impl FnMut() -> Result<T, Failure>) -> Result<T, StoreError> {
        self.retry_within(self.options.retry_for, action, f)
    }

    /// [`PostgresStore::retry`] for at most `limit`.
    fn retry_within<T>(
        &self,
        limit: Duration,
        action: &'static str,
        mut f: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let error = match f() {
                Ok(value) => return Ok(value),
                Err(Failure::Store(error)) => return Err(error),
                Err(Failure::Db(error)) if !is_transient(&error) => return Err(self.server(action, error)),
                Err(Failure::Db(error)) => self.server(action, error),
                Err(Failure::Pool(error)) => self.server(action, error),
            };
            if let Ok(mut ids) = self.key_ids.lock() {
                ids.clear();
            }
            if started.elapsed() >= limit {
                return Err(error);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Runs `f` in a read-write transaction on a pooled connection, retried as a whole on
    /// transient failures; bumps the change counter after a commit.
    fn write_tx<T>(
        &self,
        action: &'static str,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        let mut committing = false;
        let value = self.retry(action, || {
            if committing {
                // The last try failed inside COMMIT: whether it was written is unknown, so it is
                // reported rather than written twice.
                return Err(Failure::Store(StoreError::Server {
                    store: self.name.clone(),
                    action,
                    source: "the connection was lost while committing; the write may or may not have been recorded"
                        .into(),
                }));
            }
            let mut connection = self.pool.get().map_err(Failure::Pool)?;
            let Connection { client, statements } = &mut *connection;
            let mut tx = Tx { tx: client.transaction()?, statements };
            let value = f(&mut tx)?;
            committing = true;
            tx.commit()?;
            committing = false;
            // After the commit, so that a reader who sees the new number also sees the write.
            let bump = match connection.statements.get(BUMP_SQL) {
                Some(statement) => statement.clone(),
                None => {
                    let statement = connection.client.prepare(BUMP_SQL)?;
                    connection.statements.insert(BUMP_SQL.to_string(), statement.clone());
                    statement
                }
            };
            connection.client.execute(&bump, &[])?;
            Ok(value)
        });
        if value.is_err()
            && let Ok(mut ids) = self.key_ids.lock()
        {
            ids.clear();
        }
        value
    }

    /// Runs `f` in a read-only transaction that sees one snapshot of the database.
    fn read_tx<T>(
        &self,
        action: &'static str,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T, Failure>,
    ) -> Result<T, StoreError> {
        self.retry(action, || {
            let mut connection = self.pool.get().map_err(Failure::Pool)?;
            let Connection { client, statements } = &mut *connection;
            let tx =
                client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
            let mut tx = Tx { tx, statements };
            let value = f(&mut tx)?;
            tx.commit()?;
            Ok(value)
        })
    }

    /// The current time: the database's, or the injected clock's.
    fn now(&self, tx: &mut Tx<'_>) -> Result<Timestamp, postgres::Error> {
        match &self.options.time {
            TimeSource::Clock(clock) => Ok(clock.now()),
            TimeSource::Database => Ok(Timestamp(tx.query_one(NOW_SQL, &[])?.get(0))),
        }
    }

    /// The time a writer reports for a heartbeat or an end: its own with an injected clock, the
    /// database's otherwise, so that crash detection compares times from one clock.
    fn stamp(&self, tx: &mut Tx<'_>, at: Timestamp) -> Result<Timestamp, postgres::Error> {
        match self.options.time {
            TimeSource::Clock(_) => Ok(at),
            TimeSource::Database => self.now(tx),
        }
    }

    /// The database id and full run id of `id_or_prefix`.
    fn find(&self, tx: &mut Tx<'_>, id_or_prefix: &str) -> Result<(i64, String), Failure> {
        if let Some(row) = tx.query_opt("SELECT id FROM runs WHERE run_id = $1", &[&id_or_prefix])? {
            return Ok((row.get(0), id_or_prefix.to_string()));
        }
        if id_or_prefix.is_empty() {
            return Err(StoreError::RunNotFound { id: String::new() }.into());
        }
        let matches: Vec<(i64, String)> = tx
            .query(
                "SELECT id, run_id FROM runs WHERE starts_with(run_id, $1) ORDER BY run_id LIMIT 10",
                &[&id_or_prefix],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        match matches.as_slice() {
            [] => Err(StoreError::RunNotFound { id: id_or_prefix.to_string() }.into()),
            [one] => Ok(one.clone()),
            _ => Err(StoreError::AmbiguousRun {
                prefix: id_or_prefix.to_string(),
                candidates: matches.into_iter().map(|m| m.1).collect(),
            }
            .into()),
        }
    }

    fn start_run(&self, tx: &mut Tx<'_>, run: &NewRun) -> Result<i64, Failure> {
        if !is_safe_component(&run.run_id) {
            return Err(StoreError::Invalid {
                what: "run id",
                value: run.run_id.clone(),
                why: "it names the run's folder, so it must be non-empty, not `.` or `..`, and contain no `/`, `\\` or NUL",
            }
            .into());
        }
        tx.execute(
            "INSERT INTO experiments (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&run.experiment, &run.started_at.0],
        )?;
        let experiment: i64 = tx.query_one("SELECT id FROM experiments WHERE name = $1", &[&run.experiment])?.get(0);
        let task = run.task.map(|task| serde_json::to_string(&task).expect("a task is always serializable"));
        let inserted = tx.query_opt(
            "INSERT INTO runs (run_id, name, experiment_id, status, started_at, heartbeat_at, host, command, git_commit,
                               git_dirty, seed, config, dataset, environment, sweep_id, trial_id, monitor_metric,
                               monitor_mode, task, init_run, init_weights)
             VALUES ($1, $2, $3, 'running', $4, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
             ON CONFLICT (run_id) DO NOTHING
             RETURNING id",
            &[
                &run.run_id,
                &run.name,
                &experiment,
                &run.started_at.0,
                &run.provenance.host,
                &run.provenance.command,
                &run.provenance.git_commit,
                &run.provenance.git_dirty,
                &(run.seed as i64),
                &run.config.to_string(),
                &run.dataset.to_string(),
                &run.environment.to_string(),
                &run.provenance.sweep_id,
                &run.provenance.trial_id,
                &run.monitor.as_ref().map(|m| m.metric.as_str()),
                &run.monitor.as_ref().map(|m| m.mode.as_str()),
                &task,
                &run.provenance.init_run,
                &run.provenance.init_weights,
            ],
        )?;
        let Some(row) = inserted else { return Err(StoreError::DuplicateRun { id: run.run_id.clone() }.into()) };
        let pk: i64 = row.get(0);
        for (key, value) in flatten_params(&run.params) {
            let (num, text) = match value {
                ParamValue::Number(n) => (finite_or_null(n), None),
                ParamValue::Text(s) => (None, Some(s)),
            };
            if num.is_some() || text.is_some() {
                tx.execute(
                    "INSERT INTO params (run, key, num, text) VALUES ($1, $2, $3, $4)",
                    &[&pk, &key, &num, &text],
                )?;
            }
        }
        Ok(pk)
    }

    fn key_id(&self, tx: &mut Tx<'_>, fresh: &mut HashMap<String, i64>, key: &str) -> Result<i64, Failure> {
        let known = self.key_ids.lock().ok().and_then(|ids| ids.get(key).copied());
        if let Some(id) = known.or_else(|| fresh.get(key).copied()) {
            return Ok(id);
        }
        tx.execute("INSERT INTO metric_keys (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", &[&key])?;
        let id: i64 = tx.query_one("SELECT id FROM metric_keys WHERE name = $1", &[&key])?.get(0);
        fresh.insert(key.to_string(), id);
        Ok(id)
    }

    /// Applies a batch to run `run_id`; returns the metric keys it created, to be cached once
    /// the transaction commits.
    fn apply(&self, tx: &mut Tx<'_>, run_id: &str, batch: &[Write<'_>]) -> Result<HashMap<String, i64>, Failure> {
        let mut writes = batch.iter().peekable();
        let pk = match writes.peek() {
            Some(Write::Start(run)) => {
                if run.run_id != run_id {
                    return Err(StoreError::Invalid {
                        what: "start record",
                        value: run.run_id.clone(),
                        why: "its run id differs from the run the batch is written to",
                    }
                    .into());
                }
                writes.next();
                self.start_run(tx, run)?
            }
            _ => tx
                .query_opt("SELECT id FROM runs WHERE run_id = $1", &[&run_id])?
                .map(|r| r.get::<_, i64>(0))
                .ok_or_else(|| StoreError::RunNotFound { id: run_id.to_string() })?,
        };
        let mut fresh_keys = HashMap::new();
        let mut series: HashMap<&str, (i64, Summary, BlockEncoder)> = HashMap::new();
        for write in writes {
            match *write {
                Write::Start(run) => return Err(StoreError::DuplicateRun { id: run.run_id.clone() }.into()),
                Write::Scalar { key, step, epoch, wall, value } => {
                    let (id, summary, block) = match series.entry(key) {
                        Entry::Occupied(entry) => entry.into_mut(),
                        Entry::Vacant(entry) => {
                            let id = self.key_id(tx, &mut fresh_keys, key)?;
                            entry.insert((id, Summary::new(ms(step), ms(epoch), value), BlockEncoder::new()))
                        }
                    };
                    summary.add(ms(step), ms(epoch), value);
                    block.push(step, epoch, wall, value);
                    if block.len() == BLOCK_POINTS {
                        store_block(tx, pk, *id, block)?;
                    }
                }
                Write::Report { split, step, epoch, wall, body } => {
                    tx.execute(
                        "INSERT INTO reports (run, split, step, epoch, wall_ms, body) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&pk, &split, &ms(step), &ms(epoch), &wall.0, &body.to_string()],
                    )?;
                }
                Write::Artifact { kind, path, bytes, checksum, wall } => {
                    tx.execute(
                        "INSERT INTO artifacts (run, path, kind, bytes, checksum, recorded_at) VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (run, path) DO UPDATE SET kind = excluded.kind, bytes = excluded.bytes,
                             checksum = excluded.checksum, recorded_at = excluded.recorded_at",
                        &[&pk, &path, &kind, &ms(bytes), &checksum, &wall.0],
                    )?;
                }
                Write::Notice { level, message, wall } => {
                    tx.execute(
                        "INSERT INTO notes (run, created_at, kind, body) VALUES ($1, $2, $3, $4)",
                        &[&pk, &wall.0, &NoteKind::of_level(level).as_str(), &message],
                    )?;
                }
                Write::Heartbeat { at } => {
                    let at = self.stamp(tx, at)?;
                    tx.execute(
                        "UPDATE runs SET heartbeat_at = greatest(heartbeat_at, $2),
                             reason = CASE status WHEN 'crashed' THEN NULL ELSE reason END,
                             status = CASE status WHEN 'crashed' THEN 'running' ELSE status END
                         WHERE id = $1",
                        &[&pk, &at.0],
                    )?;
                }
                Write::Resume { from_step, at } => {
                    let at = self.stamp(tx, at)?;
                    self.rewind(tx, pk, from_step, at)?
                }
                Write::End { status, reason, at } => {
                    let heartbeat = self.stamp(tx, at)?;
                    tx.execute(
                        "UPDATE runs SET status = $2, reason = $3, ended_at = $4, heartbeat_at = greatest(heartbeat_at, $5)
                         WHERE id = $1",
                        &[&pk, &status.as_str(), &reason, &at.0, &heartbeat.0],
                    )?;
                }
            }
        }
        for (id, _, block) in series.values_mut() {
            if block.len() > 0 {
                store_block(tx, pk, *id, block)?;
            }
        }
        for (key, s, _) in series.into_values() {
            insert_summary(tx, UPSERT_SUMMARY_SQL, pk, key, &s)?;
        }
        Ok(fresh_keys)
    }

    /// Drops the run's points and reports after `from_step`, recomputes the summaries of the
    /// series that lost points, and marks the run running again ([`Write::Resume`]).
    fn rewind(&self, tx: &mut Tx<'_>, pk: i64, from_step: u64, at: Timestamp) -> Result<(), Failure> {
        let mut by_key: BTreeMap<i64, Vec<MetricPoint>> = BTreeMap::new();
        for r in tx.query("SELECT key, count, points FROM metric_blocks WHERE run = $1 ORDER BY key, id", &[&pk])? {
            let key: i64 = r.get(0);
            let count: i64 = r.get(1);
            let points = by_key.entry(key).or_default();
            if usize::try_from(count).ok().and_then(|count| blocks::decode(r.get(2), count, points)).is_none() {
                return Err(self.corrupt("metric block", format!("key {key} of run {pk}")).into());
            }
        }
        for (key, points) in by_key {
            if points.iter().all(|p| p.step <= from_step) {
                continue;
            }
            tx.execute("DELETE FROM metric_blocks WHERE run = $1 AND key = $2", &[&pk, &key])?;
            tx.execute("DELETE FROM metric_summary WHERE run = $1 AND key = $2", &[&pk, &key])?;
            let kept: Vec<&MetricPoint> = points.iter().filter(|p| p.step <= from_step).collect();
            let Some(first) = kept.first() else { continue };
            let mut summary = Summary::new(ms(first.step), ms(first.epoch), first.value);
            let mut block = BlockEncoder::new();
            for (i, point) in kept.iter().enumerate() {
                summary.add(ms(point.step), ms(point.epoch), point.value);
                block.push(point.step, point.epoch, point.wall, point.value);
                if block.len() == BLOCK_POINTS || i + 1 == kept.len() {
                    store_block(tx, pk, key, &mut block)?;
                }
            }
            insert_summary(tx, INSERT_SUMMARY_SQL, pk, key, &summary)?;
        }
        tx.execute("DELETE FROM reports WHERE run = $1 AND step > $2", &[&pk, &ms(from_step)])?;
        tx.execute(
            "UPDATE runs SET status = 'running', reason = NULL, ended_at = NULL, heartbeat_at = greatest(heartbeat_at, $2)
             WHERE id = $1",
            &[&pk, &at.0],
        )?;
        Ok(())
    }

    /// Rows for every run, or for one run when `only` is given.
    fn load_rows(&self, tx: &mut Tx<'_>, only: Option<i64>) -> Result<Vec<(i64, RunRow)>, Failure> {
        let mut rows: BTreeMap<i64, RunRow> = BTreeMap::new();
        for r in tx.query(
            "SELECT r.id, r.run_id, r.name, e.name, r.status, r.reason, r.started_at, r.ended_at, r.monitor_metric,
                    r.monitor_mode, r.dataset::json ->> 'name'
             FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE $1::bigint IS NULL OR r.id = $1",
            &[&only],
        )? {
            let status: String = r.get(4);
            let status = RunState::parse(&status).ok_or_else(|| self.corrupt("run status", status.clone()))?;
            let monitor = match (r.get::<_, Option<String>>(8), r.get::<_, Option<String>>(9)) {
                (Some(metric), Some(mode)) => {
                    let mode = mode.parse().map_err(|_| self.corrupt("monitor mode", mode.clone()))?;
                    Some(Monitored { metric, mode })
                }
                _ => None,
            };
            let row = RunRow {
                run_id: r.get(1),
                name: r.get(2),
                experiment: r.get(3),
                dataset: r.get(10),
                status,
                reason: r.get(5),
                monitor,
                started_at: Timestamp(r.get(6)),
                ended_at: r.get::<_, Option<i64>>(7).map(Timestamp),
                params: BTreeMap::new(),
                metrics: BTreeMap::new(),
                tags: BTreeMap::new(),
            };
            rows.insert(r.get(0), row);
        }
        for r in tx.query("SELECT run, key, num, text FROM params WHERE $1::bigint IS NULL OR run = $1", &[&only])? {
            let value = match (r.get::<_, Option<f64>>(2), r.get::<_, Option<String>>(3)) {
                (Some(n), _) => ParamValue::Number(n),
                (None, Some(s)) => ParamValue::Text(s),
                (None, None) => continue,
            };
            if let Some(row) = rows.get_mut(&r.get::<_, i64>(0)) {
                row.params.insert(r.get(1), value);
            }
        }
        for r in tx.query("SELECT run, key, value FROM tags WHERE $1::bigint IS NULL OR run = $1", &[&only])? {
            if let Some(row) = rows.get_mut(&r.get::<_, i64>(0)) {
                row.tags.insert(r.get(1), r.get(2));
            }
        }
        for r in tx.query(
            "SELECT s.run, k.name, s.count, s.min_value, s.max_value, s.last_step, s.last_value, s.min_step,
                    s.min_epoch, s.max_step, s.max_epoch
             FROM metric_summary s JOIN metric_keys k ON k.id = s.key WHERE $1::bigint IS NULL OR s.run = $1",
            &[&only],
        )? {
            let key: String = r.get(1);
            let at = |i: usize| r.get::<_, Option<i64>>(i).map(unsigned);
            let min = r.get::<_, Option<f64>>(3).map(|value| (value, at(7), at(8)));
            let max = r.get::<_, Option<f64>>(4).map(|value| (value, at(9), at(10)));
            if let Some(row) = rows.get_mut(&r.get::<_, i64>(0)) {
                let summary = MetricSummary::from_extremes(
                    Monitored::mode_of(row.monitor.as_ref(), &key),
                    min,
                    max,
                    r.get::<_, Option<f64>>(6).unwrap_or(f64::NAN),
                    unsigned(r.get(5)),
                    unsigned(r.get(2)),
                );
                row.metrics.insert(key, summary);
            }
        }
        Ok(rows.into_iter().collect())
    }

    /// The metric series of run `pk` (all of them, or only `only`), in step order.
    fn read_series(
        &self,
        tx: &mut Tx<'_>,
        pk: i64,
        run_id: &str,
        only: Option<&str>,
    ) -> Result<BTreeMap<String, Vec<MetricPoint>>, Failure> {
        let mut series: BTreeMap<String, Vec<MetricPoint>> = BTreeMap::new();
        for r in tx.query(
            "SELECT k.name, b.count, b.points FROM metric_blocks b JOIN metric_keys k ON k.id = b.key
             WHERE b.run = $1 AND ($2::text IS NULL OR k.name = $2) ORDER BY b.key, b.id",
            &[&pk, &only],
        )? {
            let key: String = r.get(0);
            let count: i64 = r.get(1);
            let points = series.entry(key.clone()).or_default();
            if usize::try_from(count).ok().and_then(|count| blocks::decode(r.get(2), count, points)).is_none() {
                return Err(self.corrupt("metric block", format!("{count} points of `{key}` in run {run_id}")).into());
            }
        }
        // Blocks are in arrival order; a stable sort puts points in step order, ties by arrival.
        for points in series.values_mut() {
            points.sort_by_key(|p| p.step);
        }
        Ok(series)
    }

    fn detail(&self, tx: &mut Tx<'_>, pk: i64) -> Result<RunDetail, Failure> {
        let json = |what: &'static str, text: String| {
            serde_json::from_str::<Value>(&text).map_err(|_| Failure::Store(self.corrupt(what, text)))
        };
        let row = self
            .load_rows(tx, Some(pk))?
            .into_iter()
            .next()
            .map(|(_, row)| row)
            .ok_or_else(|| StoreError::RunNotFound { id: pk.to_string() })?;
        let r = tx.query_one(
            "SELECT heartbeat_at, host, command, git_commit, git_dirty, seed, config, dataset, environment, sweep_id,
                    trial_id, task, init_run, init_weights
             FROM runs WHERE id = $1",
            &[&pk],
        )?;
        let provenance = Provenance {
            host: r.get(1),
            command: r.get(2),
            git_commit: r.get(3),
            git_dirty: r.get(4),
            sweep_id: r.get(9),
            trial_id: r.get(10),
            init_run: r.get(12),
            init_weights: r.get(13),
        };
        let task = match r.get::<_, Option<String>>(11) {
            Some(text) => Some(serde_json::from_str::<TaskInfo>(&text).map_err(|_| self.corrupt("task", text))?),
            None => None,
        };
        let series = self.read_series(tx, pk, &row.run_id, None)?;
        let reports = tx
            .query("SELECT split, step, epoch, wall_ms, body FROM reports WHERE run = $1 ORDER BY id", &[&pk])?
            .into_iter()
            .map(|r| {
                Ok(ReportRecord {
                    split: r.get(0),
                    step: unsigned(r.get(1)),
                    epoch: unsigned(r.get(2)),
                    wall: Timestamp(r.get(3)),
                    body: json("report body", r.get(4))?,
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let notes = tx
            .query("SELECT created_at, kind, body FROM notes WHERE run = $1 ORDER BY id", &[&pk])?
            .into_iter()
            .map(|r| {
                let kind: String = r.get(1);
                Ok(Note {
                    created_at: Timestamp(r.get(0)),
                    kind: NoteKind::parse(&kind).ok_or_else(|| self.corrupt("note kind", kind))?,
                    body: r.get(2),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let artifacts = tx
            .query(
                "SELECT kind, path, bytes, checksum, recorded_at FROM artifacts WHERE run = $1 ORDER BY path",
                &[&pk],
            )?
            .into_iter()
            .map(|r| ArtifactRecord {
                kind: r.get(0),
                path: r.get(1),
                bytes: unsigned(r.get(2)),
                checksum: r.get(3),
                recorded_at: Timestamp(r.get(4)),
            })
            .collect();
        Ok(RunDetail {
            row,
            heartbeat_at: Timestamp(r.get(0)),
            seed: r.get::<_, i64>(5) as u64,
            task,
            config: json("config", r.get(6))?,
            dataset: json("dataset identity", r.get(7))?,
            provenance,
            environment: json("environment", r.get(8))?,
            series,
            reports,
            notes,
            artifacts,
        })
    }
}

/// Stores one block of a series of run `pk` with its summary (see [`crate::blocks::BlockSummary`]),
/// and empties it.
fn store_block(tx: &mut Tx<'_>, pk: i64, key: i64, block: &mut BlockEncoder) -> Result<(), postgres::Error> {
    let summary = block.summary();
    tx.execute(
        "INSERT INTO metric_blocks (run, key, count, points, low_step, high_step, extremes_count, extremes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &pk,
            &key,
            &(block.len() as i64),
            &block.bytes(),
            &summary.as_ref().map(|s| ms(s.low_step)),
            &summary.as_ref().map(|s| ms(s.high_step)),
            &summary.as_ref().map(|s| s.extremes_count as i64),
            &summary.as_ref().map(|s| s.extremes.as_slice()),
        ],
    )?;
    block.clear();
    Ok(())
}

/// Adds a series' summary of a batch to the stored one.
const UPSERT_SUMMARY_SQL: &str = "INSERT INTO metric_summary AS s (run, key, count, min_value, max_value, last_step, last_epoch, last_value,
                                              min_step, min_epoch, max_step, max_epoch)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (run, key) DO UPDATE SET
                 count = s.count + excluded.count,
                 min_value = CASE WHEN s.min_value IS NULL THEN excluded.min_value
                                  WHEN excluded.min_value IS NULL THEN s.min_value
                                  ELSE least(s.min_value, excluded.min_value) END,
                 max_value = CASE WHEN s.max_value IS NULL THEN excluded.max_value
                                  WHEN excluded.max_value IS NULL THEN s.max_value
                                  ELSE greatest(s.max_value, excluded.max_value) END,
                 min_step = CASE WHEN excluded.min_value IS NOT NULL AND (s.min_value IS NULL
                                      OR excluded.min_value < s.min_value
                                      OR (excluded.min_value = s.min_value AND excluded.min_step < s.min_step))
                                 THEN excluded.min_step ELSE s.min_step END,
                 min_epoch = CASE WHEN excluded.min_value IS NOT NULL AND (s.min_value IS NULL
                                      OR excluded.min_value < s.min_value
                                      OR (excluded.min_value = s.min_value AND excluded.min_step < s.min_step))
                                  THEN excluded.min_epoch ELSE s.min_epoch END,
                 max_step = CASE WHEN excluded.max_value IS NOT NULL AND (s.max_value IS NULL
                                      OR excluded.max_value > s.max_value
                                      OR (excluded.max_value = s.max_value AND excluded.max_step < s.max_step))
                                 THEN excluded.max_step ELSE s.max_step END,
                 max_epoch = CASE WHEN excluded.max_value IS NOT NULL AND (s.max_value IS NULL
                                      OR excluded.max_value > s.max_value
                                      OR (excluded.max_value = s.max_value AND excluded.max_step < s.max_step))
                                  THEN excluded.max_epoch ELSE s.max_epoch END,
                 last_value = CASE WHEN excluded.last_step >= s.last_step THEN excluded.last_value ELSE s.last_value END,
                 last_epoch = CASE WHEN excluded.last_step >= s.last_step THEN excluded.last_epoch ELSE s.last_epoch END,
                 last_step = greatest(s.last_step, excluded.last_step)";

/// Stores a series' summary afresh (a resumed run's, recomputed).
const INSERT_SUMMARY_SQL: &str =
    "INSERT INTO metric_summary (run, key, count, min_value, max_value, last_step, last_epoch, last_value,
                                         min_step, min_epoch, max_step, max_epoch)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// Inserts (with [`UPSERT_SUMMARY_SQL`], merges) one series' summary.
fn insert_summary(tx: &mut Tx<'_>, sql: &str, pk: i64, key: i64, s: &Summary) -> Result<(), postgres::Error> {
    let (min, max) = (columns(s.min), columns(s.max));
    tx.execute(
        sql,
        &[
            &pk,
            &key,
            &s.count,
            &min.0,
            &max.0,
            &s.last_step,
            &s.last_epoch,
            &finite_or_null(s.last),
            &min.1,
            &min.2,
            &max.1,
            &max.2,
        ],
    )?;
    Ok(())
}

fn first_column<T: for<'a> postgres::types::FromSql<'a>>(row: &Row) -> T {
    row.get(0)
}

impl RunStore for PostgresStore {
    fn root(&self) -> Option<&Path> {
        self.options.artifacts.as_deref()
    }

    fn write(&self, run_id: &str, batch: &[Write<'_>]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let fresh = self.write_tx("record run events", |tx| self.apply(tx, run_id, batch))?;
        if let Ok(mut ids) = self.key_ids.lock() {
            ids.extend(fresh);
        }
        Ok(())
    }

    fn list_runs(&self, query: &Query) -> Result<Vec<RunRow>, StoreError> {
        let now = self.read_tx("read the clock", |tx| Ok(self.now(tx)?))?;
        self.reconcile(now, self.options.stale_after)?;
        let rows = self.read_tx("list runs", |tx| self.load_rows(tx, None))?;
        Ok(query.apply(rows.into_iter().map(|(_, row)| row).collect())?)
    }

    fn resolve(&self, id_or_prefix: &str) -> Result<String, StoreError> {
        self.read_tx("look up a run", |tx| self.find(tx, id_or_prefix)).map(|(_, id)| id)
    }

    fn get_run(&self, id_or_prefix: &str) -> Result<RunDetail, StoreError> {
        let now = self.read_tx("read the clock", |tx| Ok(self.now(tx)?))?;
        self.reconcile(now, self.options.stale_after)?;
        self.read_tx("read a run", |tx| {
            let (pk, _) = self.find(tx, id_or_prefix)?;
            self.detail(tx, pk)
        })
    }

    fn changes(&self) -> Result<u64, StoreError> {
        self.retry("read the change counter", || {
            let mut connection = self.pool.get().map_err(Failure::Pool)?;
            // `is_called` is false until the first write: count it, so that the first write moves the number.
            let row = connection.client.query_one("SELECT last_value, is_called FROM regimen_changes", &[])?;
            let (last, called): (i64, bool) = (row.get(0), row.get(1));
            Ok(if called { unsigned(last) } else { 0 })
        })
    }

    fn series(&self, id_or_prefix: &str, key: &str) -> Result<Vec<MetricPoint>, StoreError> {
        self.read_tx("read a metric series", |tx| {
            let (pk, run_id) = self.find(tx, id_or_prefix)?;
            Ok(self.read_series(tx, pk, &run_id, Some(key))?.remove(key).unwrap_or_default())
        })
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
            let (pk, run_id) = self.find(tx, id_or_prefix)?;
            let mut view = SeriesView::default();
            let mut decoded = Vec::new();
            for r in tx.query(
                "SELECT b.count, b.low_step, b.high_step, b.extremes_count, b.extremes, b.points
                 FROM metric_blocks b JOIN metric_keys k ON k.id = b.key
                 WHERE b.run = $1 AND k.name = $2 AND (b.low_step IS NULL OR (b.high_step >= $3 AND b.low_step <= $4))
                 ORDER BY b.id",
                &[&pk, &key, &ms(from), &ms(to)],
            )? {
                let count: i64 = r.get(0);
                let extremes: Option<i64> = r.get(3);
                let summarized = blocks::read_as_extremes(from, to, span, (r.get(1), r.get(2)), extremes, count);
                let (bytes, points): (Option<&[u8]>, i64) =
                    if summarized { (r.get(4), extremes.unwrap_or(0)) } else { (Some(r.get(5)), count) };
                decoded.clear();
                let ok = bytes.zip(usize::try_from(points).ok()).and_then(|(b, n)| blocks::decode(b, n, &mut decoded));
                if ok.is_none() {
                    return Err(self
                        .corrupt("metric block", format!("{count} points of `{key}` in run {run_id}"))
                        .into());
                }
                blocks::add_to_view(&mut view, &mut decoded, summarized, count, from, to);
            }
            view.points.sort_by_key(|p| p.step);
            Ok(view)
        })
    }

    fn set_tag(&self, id_or_prefix: &str, key: &str, value: &str) -> Result<(), StoreError> {
        check_tag_key(key)?;
        self.write_tx("set a tag", |tx| {
            let (pk, _) = self.find(tx, id_or_prefix)?;
            tx.execute(
                "INSERT INTO tags (run, key, value) VALUES ($1, $2, $3) ON CONFLICT (run, key) DO UPDATE SET value = excluded.value",
                &[&pk, &key, &value],
            )?;
            Ok(())
        })
    }

    fn remove_tag(&self, id_or_prefix: &str, key: &str) -> Result<bool, StoreError> {
        self.write_tx("remove a tag", |tx| {
            let (pk, _) = self.find(tx, id_or_prefix)?;
            Ok(tx.execute("DELETE FROM tags WHERE run = $1 AND key = $2", &[&pk, &key])? > 0)
        })
    }

    fn add_note(&self, id_or_prefix: &str, markdown: &str) -> Result<(), StoreError> {
        self.write_tx("add a note", |tx| {
            let (pk, _) = self.find(tx, id_or_prefix)?;
            let now = self.now(tx)?;
            tx.execute(
                "INSERT INTO notes (run, created_at, kind, body) VALUES ($1, $2, 'note', $3)",
                &[&pk, &now.0, &markdown],
            )?;
            Ok(())
        })
    }

    fn delete_run(&self, id_or_prefix: &str) -> Result<String, StoreError> {
        let run_id = self.write_tx("delete a run", |tx| {
            let (pk, run_id) = self.find(tx, id_or_prefix)?;
            // Points, summaries, params, reports, notes, tags and artifacts go with it (ON DELETE CASCADE).
            tx.execute("DELETE FROM runs WHERE id = $1", &[&pk])?;
            Ok(run_id)
        })?;
        if let Some(root) = self.root() {
            remove_run_folder(root, &run_id)?;
        }
        Ok(run_id)
    }

    fn reconcile(&self, now: Timestamp, stale_after: Duration) -> Result<Vec<String>, StoreError> {
        let cutoff = now.0.saturating_sub(i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX));
        // Look first without writing: this runs before every listing.
        let any = self.read_tx("detect crashed runs", |tx| {
            Ok(tx
                .query_opt("SELECT 1 FROM runs WHERE status = 'running' AND heartbeat_at < $1 LIMIT 1", &[&cutoff])?
                .is_some())
        })?;
        if !any {
            return Ok(Vec::new());
        }
        let reason = format!(
            "no heartbeat for more than {} s and no recorded end: the process probably died",
            stale_after.as_secs()
        );
        self.write_tx("mark crashed runs", |tx| {
            let mut ids: Vec<String> = tx
                .query(
                    "UPDATE runs SET status = 'crashed', reason = $2 WHERE status = 'running' AND heartbeat_at < $1
                     RETURNING run_id",
                    &[&cutoff, &reason],
                )?
                .iter()
                .map(first_column)
                .collect();
            ids.sort();
            Ok(ids)
        })
    }

    fn gc(&self, options: &GcOptions) -> Result<GcReport, StoreError> {
        let mut report = GcReport::default();
        if let Some(root) = self.root() {
            let known: HashSet<String> = self.read_tx("list run ids", |tx| {
                Ok(tx.query("SELECT run_id FROM runs", &[])?.iter().map(first_column).collect())
            })?;
            report.removed = remove_orphan_folders(root, &known, options)?;
        }
        if options.vacuum && !options.dry_run {
            // VACUUM cannot run inside a transaction.
            self.retry("compact the database", || {
                let mut connection = self.pool.get().map_err(Failure::Pool)?;
                connection.client.batch_execute("VACUUM (ANALYZE)")?;
                Ok(())
            })?;
            report.vacuumed = true;
        }
        Ok(report)
    }

    fn set_base_error(&self, dataset: &str, error: Option<f64>) -> Result<(), StoreError> {
        self.write_tx("record a base error", |tx| {
            match error {
                Some(error) => tx.execute(
                    "INSERT INTO datasets (name, base_error) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET base_error = excluded.base_error",
                    &[&dataset, &error],
                )?,
                None => tx.execute("DELETE FROM datasets WHERE name = $1", &[&dataset])?,
            };
            Ok(())
        })
    }

    fn base_error(&self, dataset: &str) -> Result<Option<f64>, StoreError> {
        self.read_tx("read a base error", |tx| {
            Ok(tx.query_opt("SELECT base_error FROM datasets WHERE name = $1", &[&dataset])?.map(|r| r.get(0)))
        })
    }
}

#[cfg(test)]
mod tests;
