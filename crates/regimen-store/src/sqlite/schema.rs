//! The SQLite schema, as an ordered list of migrations.
//!
//! The file's `PRAGMA user_version` is the number of the last migration applied. Opening a store
//! applies the missing ones in order inside one `BEGIN IMMEDIATE` transaction, so that several
//! processes opening a new store at once agree (the first migrates, the others find it done), and a
//! failed migration leaves the file as it was. Migrations are append-only: a released one is never
//! edited, a change is a new entry.
//!
//! Times are integer milliseconds since the Unix epoch. NaN metric values are stored as NULL (SQLite
//! has no NaN) and read back as NaN. Metric keys are interned in `metric_keys` so that a million
//! points cost a million small integer rows rather than a million strings.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;

/// One step of the schema's history.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The `user_version` the file has once this migration is applied; 1, 2, 3... in order.
    pub version: i64,
    /// The statements, run as one batch.
    pub sql: &'static str,
}

/// Every migration, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration { version: 1, sql: V1 }];

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
        let expected = ["artifacts", "experiments", "metric_keys", "metric_summary", "metrics", "notes", "params", "reports", "runs", "tags"];
        assert_eq!(tables(&conn), expected);
        // Opening again applies nothing.
        assert_eq!(migrate(&mut conn, MIGRATIONS, Path::new(":memory:"))?, latest());
        Ok(())
    }

    #[test]
    fn upgrades_apply_only_the_missing_migrations_in_order() -> Result<(), StoreError> {
        let history = [
            Migration { version: 1, sql: "CREATE TABLE a (x INTEGER);" },
            Migration { version: 2, sql: "ALTER TABLE a ADD COLUMN y TEXT;" },
            Migration { version: 3, sql: "CREATE TABLE b (z INTEGER); INSERT INTO b SELECT count(*) FROM a;" },
        ];
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Database { path: path.into(), action: "open", source })?;
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
            Migration { version: 1, sql: "CREATE TABLE a (x INTEGER);" },
            Migration { version: 2, sql: "CREATE TABLE b (x INTEGER); CREATE TABLE a (y INTEGER);" },
        ];
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Database { path: path.into(), action: "open", source })?;
        assert!(migrate(&mut conn, &history, path).is_err());
        assert_eq!(version(&conn), 0);
        assert!(tables(&conn).is_empty());
        Ok(())
    }

    #[test]
    fn a_newer_file_is_refused() -> Result<(), StoreError> {
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Database { path: path.into(), action: "open", source })?;
        conn.pragma_update(None, "user_version", 99).map_err(|source| StoreError::Database { path: path.into(), action: "set", source })?;
        let e = migrate(&mut conn, MIGRATIONS, path).err();
        assert!(matches!(e, Some(StoreError::SchemaTooNew { found: 99, .. })), "{e:?}");
        Ok(())
    }
}
