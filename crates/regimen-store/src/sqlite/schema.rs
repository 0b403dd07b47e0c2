//! The SQLite schema, as an ordered list of migrations.
//!
//! The file's `PRAGMA user_version` is the number of the last migration applied. Opening a store
//! applies the missing ones in order inside one `BEGIN IMMEDIATE` transaction, so that several
//! processes opening a new store at once agree (the first migrates, the others find it done), and a
//! failed migration leaves the file as it was. Migrations are append-only: a released one is never
//! edited, a change is a new entry.
//!
//! Times are integer milliseconds since the Unix epoch. NaN values in summaries are stored as NULL
//! (SQLite has no NaN) and read back as NaN. Metric keys are interned in `metric_keys`. Metric
//! points live in `metric_blocks`, packed by [`crate::blocks`] (version 2; version 1 kept a row per
//! point in `metrics`).

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior, params};

use crate::blocks::{BLOCK_POINTS, BlockEncoder};
use crate::error::StoreError;
use crate::time::Timestamp;

/// One step of the schema's history.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The `user_version` the file has once this migration is applied; 1, 2, 3... in order.
    pub version: i64,
    /// The statements, run as one batch.
    pub sql: &'static str,
    /// Moves data in ways SQL cannot express, after `sql` and in the same transaction.
    pub convert: Option<fn(&Connection) -> rusqlite::Result<()>>,
}

/// Every migration, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, sql: V1, convert: None },
    Migration { version: 2, sql: V2, convert: Some(pack_points_v2) },
    Migration { version: 3, sql: V3, convert: None },
    Migration { version: 4, sql: V4, convert: None },
    Migration { version: 5, sql: V5, convert: None },
    Migration { version: 6, sql: V6, convert: None },
    Migration { version: 7, sql: V7, convert: None },
    Migration { version: 8, sql: V8, convert: Some(summarize_blocks_v8) },
];

const V1: &str = "
CREATE TABLE experiments (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    run_id        TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    status        TEXT NOT NULL CHECK (status IN ('running', 'finished', 'stopped_early', 'diverged',
                                                  'failed', 'interrupted', 'killed', 'crashed')),
    reason        TEXT,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    heartbeat_at  INTEGER NOT NULL,
    host          TEXT,
    command       TEXT,
    git_commit    TEXT,
    git_dirty     INTEGER,
    seed          INTEGER NOT NULL,          -- the u64 seed, bit-cast to i64
    config        TEXT NOT NULL,             -- JSON
    dataset       TEXT NOT NULL,             -- JSON
    environment   TEXT NOT NULL,             -- JSON
    sweep_id      TEXT,
    trial_id      TEXT
);
CREATE INDEX runs_by_experiment ON runs(experiment_id);
CREATE INDEX runs_by_status ON runs(status, heartbeat_at);

CREATE TABLE params (
    run   INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key   TEXT NOT NULL,
    num   REAL,
    text  TEXT,
    CHECK ((num IS NULL) <> (text IS NULL)),
    PRIMARY KEY (run, key)
) WITHOUT ROWID;
CREATE INDEX params_by_key ON params(key, num, text);

CREATE TABLE metric_keys (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE
);

-- The hot table. Clustered on (run, key, step, seq), which is also the index that series reads and
-- deletes use; `seq` numbers a series' points in arrival order, so two points at one step are kept.
-- No foreign keys: checking two per row would halve the write rate, and the writer takes `run` and
-- `key` from rows it has just read or written in the same transaction; `delete_run` deletes the
-- points explicitly.
CREATE TABLE metrics (
    run      INTEGER NOT NULL,
    key      INTEGER NOT NULL,
    step     INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    epoch    INTEGER NOT NULL,
    wall_ms  INTEGER NOT NULL,
    value    REAL,                           -- NULL is NaN
    PRIMARY KEY (run, key, step, seq)
) WITHOUT ROWID;

CREATE TABLE metric_summary (
    run         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key         INTEGER NOT NULL REFERENCES metric_keys(id),
    count       INTEGER NOT NULL,
    min_value   REAL,                        -- NULL while every value is NaN
    max_value   REAL,
    last_step   INTEGER NOT NULL,
    last_epoch  INTEGER NOT NULL,
    last_value  REAL,
    PRIMARY KEY (run, key)
) WITHOUT ROWID;

CREATE TABLE reports (
    id       INTEGER PRIMARY KEY,
    run      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    split    TEXT NOT NULL,
    step     INTEGER NOT NULL,
    epoch    INTEGER NOT NULL,
    wall_ms  INTEGER NOT NULL,
    body     TEXT NOT NULL                   -- JSON
);
CREATE INDEX reports_by_run ON reports(run, id);

CREATE TABLE tags (
    run    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run, key)
) WITHOUT ROWID;

CREATE TABLE notes (
    id          INTEGER PRIMARY KEY,
    run         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('note', 'info', 'warn')),
    body        TEXT NOT NULL                -- markdown
);
CREATE INDEX notes_by_run ON notes(run, id);

CREATE TABLE artifacts (
    run          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    path         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    checksum     TEXT,                       -- BLAKE3, hex
    recorded_at  INTEGER NOT NULL,
    PRIMARY KEY (run, path)
) WITHOUT ROWID;
";

/// Metric points packed into blocks, one row per series per batch (see [`crate::blocks`]); the
/// rows of `metrics` are moved into blocks by [`pack_points_v2`], which then drops that table.
const V2: &str = "
-- `id` orders a series' blocks by arrival: a new row's id is above every existing one. The index
-- serves a run's series in (key, id) order and deletes by run.
CREATE TABLE metric_blocks (
    id      INTEGER PRIMARY KEY,
    run     INTEGER NOT NULL,
    key     INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    points  BLOB NOT NULL
);
CREATE INDEX metric_blocks_by_series ON metric_blocks(run, key);
";

/// What a run resolved at its start and every reader needs: the monitored metric with its
/// direction (which decides the metric's "best"), and the task with its trivial baseline (JSON);
/// and where each series reached its extremes (the earliest point on ties), so that a best value
/// comes with its step and epoch. NULL for what was recorded before version 3. Metric blocks now
/// go with their run (`ON DELETE CASCADE`): one foreign-key check per block of points costs
/// nothing measurable, and deleting a run can no longer leave points behind.
const V3: &str = "
CREATE TABLE metric_blocks_v3 (
    id      INTEGER PRIMARY KEY,
    run     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key     INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    points  BLOB NOT NULL
);
INSERT INTO metric_blocks_v3 (id, run, key, count, points)
    SELECT id, run, key, count, points FROM metric_blocks WHERE run IN (SELECT id FROM runs);
DROP TABLE metric_blocks;
ALTER TABLE metric_blocks_v3 RENAME TO metric_blocks;
CREATE INDEX metric_blocks_by_series ON metric_blocks(run, key);

ALTER TABLE runs ADD COLUMN monitor_metric TEXT;
ALTER TABLE runs ADD COLUMN monitor_mode TEXT CHECK (monitor_mode IN ('min', 'max'));
ALTER TABLE runs ADD COLUMN task TEXT;
ALTER TABLE metric_summary ADD COLUMN min_step INTEGER;
ALTER TABLE metric_summary ADD COLUMN min_epoch INTEGER;
ALTER TABLE metric_summary ADD COLUMN max_step INTEGER;
ALTER TABLE metric_summary ADD COLUMN max_epoch INTEGER;
";

/// Sweeps and their trials (see `crate::sweep`). `version` is the sweep's change counter; a trial
/// row carries the counter of its last change, so that workers read only what changed.
const V4: &str = "
CREATE TABLE sweeps (
    id          INTEGER PRIMARY KEY,
    sweep_id    TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,               -- JSON
    parent      TEXT,
    status      TEXT NOT NULL CHECK (status IN ('active', 'stopped', 'finished')),
    created_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sweeps_by_name ON sweeps(name, created_at);

CREATE TABLE trials (
    sweep        INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,
    params       TEXT NOT NULL,              -- JSON object
    state        TEXT NOT NULL CHECK (state IN ('running', 'paused', 'complete', 'pruned', 'failed', 'stale')),
    run_id       TEXT,
    worker       TEXT,
    lease_until  INTEGER,
    attempts     INTEGER NOT NULL,
    target       INTEGER NOT NULL,
    resource     INTEGER NOT NULL,
    value        REAL,                       -- NULL when unknown or NaN
    rungs        TEXT NOT NULL,              -- JSON [[resource, value or null], ...]
    message      TEXT,
    version      INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (sweep, number)
) WITHOUT ROWID;
CREATE INDEX trials_by_version ON trials(sweep, version);
";

/// How far a complete trial broke its sweep's satisficing constraints (0 when it met them all).
const V5: &str = "
ALTER TABLE trials ADD COLUMN violation REAL;
";

/// A run's lineage: the run and weights file it started from (`--init-from`).
const V6: &str = "
ALTER TABLE runs ADD COLUMN init_run TEXT;
ALTER TABLE runs ADD COLUMN init_weights TEXT;
";

/// Facts about datasets by name: the base (human-level or best-known) error.
const V7: &str = "
CREATE TABLE datasets (
    name        TEXT PRIMARY KEY,
    base_error  REAL NOT NULL
) WITHOUT ROWID;
";

/// Each metric block's step range and extremes (see [`crate::blocks::BlockSummary`]), so that a
/// zoomed-out chart reads a few points per block instead of decoding every point, and a zoomed-in
/// one skips the blocks outside its range; filled for existing blocks by [`summarize_blocks_v8`].
const V8: &str = "
ALTER TABLE metric_blocks ADD COLUMN low_step INTEGER;
ALTER TABLE metric_blocks ADD COLUMN high_step INTEGER;
ALTER TABLE metric_blocks ADD COLUMN extremes_count INTEGER;
ALTER TABLE metric_blocks ADD COLUMN extremes BLOB;
";

/// Summarizes every block written before version 8; one that does not decode is left without a
/// summary (readers then decode it and report it as corrupt, as before).
fn summarize_blocks_v8(conn: &Connection) -> rusqlite::Result<()> {
    let mut update = conn.prepare(
        "UPDATE metric_blocks SET low_step = ?2, high_step = ?3, extremes_count = ?4, extremes = ?5 WHERE id = ?1",
    )?;
    let mut select = conn.prepare("SELECT id, count, points FROM metric_blocks")?;
    let mut rows = select.query([])?;
    let mut points = Vec::new();
    let mut block = BlockEncoder::new();
    while let Some(row) = rows.next()? {
        let (id, count, bytes): (i64, i64, Vec<u8>) = (row.get(0)?, row.get(1)?, row.get(2)?);
        points.clear();
        block.clear();
        if usize::try_from(count).ok().and_then(|count| crate::blocks::decode(&bytes, count, &mut points)).is_none() {
            continue;
        }
        for p in &points {
            block.push(p.step, p.epoch, p.wall, p.value);
        }
        if let Some(s) = block.summary() {
            update.execute(params![
                id,
                crate::blocks::ms(s.low_step),
                crate::blocks::ms(s.high_step),
                s.extremes_count as i64,
                s.extremes
            ])?;
        }
    }
    Ok(())
}

/// Packs version 1's point rows into blocks, in (step, seq) order, which is the order they were
/// read back in, and drops the `metrics` table.
fn pack_points_v2(conn: &Connection) -> rusqlite::Result<()> {
    let mut insert = conn.prepare("INSERT INTO metric_blocks (run, key, count, points) VALUES (?1, ?2, ?3, ?4)")?;
    let mut flush = |series: (i64, i64), block: &mut BlockEncoder| -> rusqlite::Result<()> {
        if block.len() > 0 {
            insert.execute(params![series.0, series.1, block.len() as i64, block.bytes()])?;
            block.clear();
        }
        Ok(())
    };
    let mut select =
        conn.prepare("SELECT run, key, step, epoch, wall_ms, value FROM metrics ORDER BY run, key, step, seq")?;
    let mut rows = select.query([])?;
    let mut block = BlockEncoder::new();
    let mut current: Option<(i64, i64)> = None;
    while let Some(row) = rows.next()? {
        let series: (i64, i64) = (row.get(0)?, row.get(1)?);
        if let Some(previous) = current.filter(|&c| c != series || block.len() >= BLOCK_POINTS) {
            flush(previous, &mut block)?;
        }
        current = Some(series);
        let (step, epoch): (i64, i64) = (row.get(2)?, row.get(3)?);
        let value: Option<f64> = row.get(5)?;
        block.push(step as u64, epoch as u64, Timestamp(row.get(4)?), value.unwrap_or(f64::NAN));
    }
    if let Some(series) = current {
        flush(series, &mut block)?;
    }
    drop(rows);
    conn.execute_batch("DROP TABLE metrics;")
}

/// The schema version this build writes.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the file up to the last of `migrations`; returns the version it had before.
pub(crate) fn migrate(conn: &mut Connection, migrations: &[Migration], path: &Path) -> Result<i64, StoreError> {
    let db = |source| StoreError::Database { path: path.to_path_buf(), action: "migrate the schema", source };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(db)?;
    let supported = migrations.last().map_or(0, |m| m.version);
    if found > supported {
        return Err(StoreError::SchemaTooNew { path: path.to_path_buf(), found, supported });
    }
    for migration in migrations.iter().filter(|m| m.version > found) {
        tx.execute_batch(migration.sql).map_err(db)?;
        if let Some(convert) = migration.convert {
            convert(&tx).map_err(db)?;
        }
        tx.pragma_update(None, "user_version", migration.version).map_err(db)?;
    }
    tx.commit().map_err(db)?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap_or(-1)
    }

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = match conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") {
            Ok(stmt) => stmt,
            Err(e) => panic!("{e}"),
        };
        stmt.query_map([], |row| row.get(0)).map(|rows| rows.flatten().collect()).unwrap_or_default()
    }

    #[test]
    fn versions_count_up_from_one() {
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, i as i64 + 1);
        }
    }

    #[test]
    fn an_empty_database_is_brought_to_the_latest_version() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Database {
            path: PathBuf::from(":memory:"),
            action: "open",
            source,
        })?;
        assert_eq!(migrate(&mut conn, MIGRATIONS, Path::new(":memory:"))?, 0);
        assert_eq!(version(&conn), latest());
        let expected = [
            "artifacts",
            "datasets",
            "experiments",
            "metric_blocks",
            "metric_keys",
            "metric_summary",
            "notes",
            "params",
            "reports",
            "runs",
            "sweeps",
            "tags",
            "trials",
        ];
        assert_eq!(tables(&conn), expected);
        // Opening again applies nothing.
        assert_eq!(migrate(&mut conn, MIGRATIONS, Path::new(":memory:"))?, latest());
        Ok(())
    }

    #[test]
    fn upgrades_apply_only_the_missing_migrations_in_order() -> Result<(), StoreError> {
        let history = [
            Migration { version: 1, sql: "CREATE TABLE a (x INTEGER);", convert: None },
            Migration { version: 2, sql: "ALTER TABLE a ADD COLUMN y TEXT;", convert: None },
            Migration {
                version: 3,
                sql: "CREATE TABLE b (z INTEGER); INSERT INTO b SELECT count(*) FROM a;",
                convert: None,
            },
        ];
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Database {
            path: path.into(),
            action: "open",
            source,
        })?;
        assert_eq!(migrate(&mut conn, &history[..1], path)?, 0);
        assert_eq!(version(&conn), 1);
        assert_eq!(migrate(&mut conn, &history, path)?, 1);
        assert_eq!(version(&conn), 3);
        assert_eq!(tables(&conn), ["a", "b"]);
        Ok(())
    }

    #[test]
    fn a_failed_migration_leaves_the_file_as_it_was() -> Result<(), StoreError> {
        let history = [
            Migration { version: 1, sql: "CREATE TABLE a (x INTEGER);", convert: None },
            Migration { version: 2, sql: "CREATE TABLE b (x INTEGER); CREATE TABLE a (y INTEGER);", convert: None },
        ];
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Database {
            path: path.into(),
            action: "open",
            source,
        })?;
        assert!(migrate(&mut conn, &history, path).is_err());
        assert_eq!(version(&conn), 0);
        assert!(tables(&conn).is_empty());
        Ok(())
    }

    #[test]
    fn a_failed_conversion_leaves_the_file_as_it_was() -> Result<(), StoreError> {
        let history = [
            Migration { version: 1, sql: "CREATE TABLE a (x INTEGER);", convert: None },
            Migration {
                version: 2,
                sql: "CREATE TABLE b (x INTEGER);",
                convert: Some(|conn| conn.execute_batch("INSERT INTO missing VALUES (1);")),
            },
        ];
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Database {
            path: path.into(),
            action: "open",
            source,
        })?;
        assert_eq!(migrate(&mut conn, &history[..1], path)?, 0);
        assert!(migrate(&mut conn, &history, path).is_err());
        assert_eq!(version(&conn), 1);
        assert_eq!(tables(&conn), ["a"]);
        Ok(())
    }

    #[test]
    fn a_newer_file_is_refused() -> Result<(), StoreError> {
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Database {
            path: path.into(),
            action: "open",
            source,
        })?;
        conn.pragma_update(None, "user_version", 99).map_err(|source| StoreError::Database {
            path: path.into(),
            action: "set",
            source,
        })?;
        let e = migrate(&mut conn, MIGRATIONS, path).err();
        assert!(matches!(e, Some(StoreError::SchemaTooNew { found: 99, .. })), "{e:?}");
        Ok(())
    }

    #[test]
    fn version_eight_summarizes_the_blocks_written_before_it() -> Result<(), rusqlite::Error> {
        let mut conn = Connection::open_in_memory()?;
        let before: Vec<Migration> = MIGRATIONS.iter().copied().filter(|m| m.version < 8).collect();
        migrate(&mut conn, &before, Path::new(":memory:")).map_err(|_| rusqlite::Error::InvalidQuery)?;
        conn.execute_batch(
            "INSERT INTO experiments (id, name, created_at) VALUES (1, 'e', 0);
             INSERT INTO metric_keys (id, name) VALUES (1, 'train.loss');",
        )?;
        conn.execute(
            "INSERT INTO runs (id, run_id, name, experiment_id, status, started_at, heartbeat_at, seed, config, dataset, \
             environment) VALUES (1, 'r', 'r', 1, 'running', 0, 0, 0, '{}', '{}', '{}')",
            [],
        )?;
        let mut block = BlockEncoder::new();
        for (step, value) in [(4u64, 1.0), (5, 9.0), (6, -2.0), (7, 0.5)] {
            block.push(step, 0, Timestamp(0), value);
        }
        conn.execute(
            "INSERT INTO metric_blocks (run, key, count, points) VALUES (1, 1, 4, ?1)",
            params![block.bytes()],
        )?;
        migrate(&mut conn, MIGRATIONS, Path::new(":memory:")).map_err(|_| rusqlite::Error::InvalidQuery)?;
        let (low, high, kept): (i64, i64, i64) =
            conn.query_row("SELECT low_step, high_step, extremes_count FROM metric_blocks", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        assert_eq!((low, high, kept), (4, 7, 4));
        Ok(())
    }
}
