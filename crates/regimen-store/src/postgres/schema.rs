//! The PostgreSQL schema and its migrations.
//!
//! The tables mirror the SQLite store's (see `sqlite/schema.rs` for why each exists) in their final
//! form, so the two backends share one vocabulary: runs, params, metric blocks with summaries,
//! reports, notes, tags, artifacts, datasets, sweeps and trials. Differences are PostgreSQL's:
//! `BIGINT` identity keys, `DOUBLE PRECISION`, `BYTEA` blocks and `BOOLEAN`. JSON is kept as text,
//! exactly as written, so that a config reads back bit for bit (JSONB would reorder keys and respell
//! numbers).
//!
//! `regimen_schema` holds the version. Opening a store migrates it inside one transaction that
//! first takes a transaction-level advisory lock, so that many workers opening a new team store at
//! once migrate it once.

use postgres::GenericClient;

/// One schema change: the version it brings the database to, and its SQL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

/// Every migration, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration { version: 1, sql: V1 }];

/// The advisory lock key that serializes migrations ("regimen" in ASCII).
const MIGRATION_LOCK: i64 = 0x0072_6567_696d_656e;

const V1: &str = "
CREATE TABLE experiments (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE runs (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id         TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    experiment_id  BIGINT NOT NULL REFERENCES experiments(id),
    status         TEXT NOT NULL CHECK (status IN ('running', 'finished', 'stopped_early', 'diverged',
                                                   'failed', 'interrupted', 'killed', 'crashed')),
    reason         TEXT,
    started_at     BIGINT NOT NULL,
    ended_at       BIGINT,
    heartbeat_at   BIGINT NOT NULL,
    host           TEXT,
    command        TEXT,
    git_commit     TEXT,
    git_dirty      BOOLEAN,
    seed           BIGINT NOT NULL,           -- the u64 seed, bit-cast to i64
    config         TEXT NOT NULL,             -- JSON
    dataset        TEXT NOT NULL,             -- JSON
    environment    TEXT NOT NULL,             -- JSON
    sweep_id       TEXT,
    trial_id       TEXT,
    monitor_metric TEXT,
    monitor_mode   TEXT CHECK (monitor_mode IN ('min', 'max')),
    task           TEXT,                      -- JSON
    init_run       TEXT,
    init_weights   TEXT
);
CREATE INDEX runs_by_experiment ON runs(experiment_id);
CREATE INDEX runs_by_status ON runs(status, heartbeat_at);
CREATE INDEX runs_by_trial ON runs(sweep_id, trial_id);

CREATE TABLE params (
    run   BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key   TEXT NOT NULL,
    num   DOUBLE PRECISION,
    text  TEXT,
    CHECK ((num IS NULL) <> (text IS NULL)),
    PRIMARY KEY (run, key)
);

CREATE TABLE metric_keys (
    id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE
);

CREATE TABLE metric_blocks (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run             BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key             BIGINT NOT NULL,
    count           BIGINT NOT NULL,
    points          BYTEA NOT NULL,
    low_step        BIGINT,
    high_step       BIGINT,
    extremes_count  BIGINT,
    extremes        BYTEA
);
CREATE INDEX metric_blocks_by_series ON metric_blocks(run, key, id);

CREATE TABLE metric_summary (
    run         BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key         BIGINT NOT NULL REFERENCES metric_keys(id),
    count       BIGINT NOT NULL,
    min_value   DOUBLE PRECISION,             -- NULL while every value is NaN
    max_value   DOUBLE PRECISION,
    last_step   BIGINT NOT NULL,
    last_epoch  BIGINT NOT NULL,
    last_value  DOUBLE PRECISION,
    min_step    BIGINT,
    min_epoch   BIGINT,
    max_step    BIGINT,
    max_epoch   BIGINT,
    PRIMARY KEY (run, key)
);

CREATE TABLE reports (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run      BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    split    TEXT NOT NULL,
    step     BIGINT NOT NULL,
    epoch    BIGINT NOT NULL,
    wall_ms  BIGINT NOT NULL,
    body     TEXT NOT NULL                    -- JSON
);
CREATE INDEX reports_by_run ON reports(run, id);

CREATE TABLE tags (
    run    BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run, key)
);

CREATE TABLE notes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run         BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('note', 'info', 'warn')),
    body        TEXT NOT NULL                 -- markdown
);
CREATE INDEX notes_by_run ON notes(run, id);

CREATE TABLE artifacts (
    run          BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    path         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    bytes        BIGINT NOT NULL,
    checksum     TEXT,                        -- BLAKE3, hex
    recorded_at  BIGINT NOT NULL,
    PRIMARY KEY (run, path)
);

CREATE TABLE datasets (
    name        TEXT PRIMARY KEY,
    base_error  DOUBLE PRECISION NOT NULL
);

CREATE TABLE sweeps (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sweep_id    TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,                -- JSON
    parent      TEXT,
    status      TEXT NOT NULL CHECK (status IN ('active', 'stopped', 'finished')),
    created_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sweeps_by_name ON sweeps(name, created_at);

CREATE TABLE trials (
    sweep        BIGINT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
    number       BIGINT NOT NULL,
    params       TEXT NOT NULL,               -- JSON object
    state        TEXT NOT NULL CHECK (state IN ('running', 'paused', 'complete', 'pruned', 'failed', 'stale')),
    run_id       TEXT,
    worker       TEXT,
    lease_until  BIGINT,
    attempts     BIGINT NOT NULL,
    target       BIGINT NOT NULL,
    resource     BIGINT NOT NULL,
    value        DOUBLE PRECISION,            -- NULL when unknown or NaN
    rungs        TEXT NOT NULL,               -- JSON [[resource, value or null], ...]
    message      TEXT,
    version      BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    violation    DOUBLE PRECISION,
    PRIMARY KEY (sweep, number)
);
CREATE INDEX trials_by_version ON trials(sweep, version);
CREATE INDEX trials_running ON trials(sweep, state, lease_until);

-- Bumped after every committed write, read by `changes()`: a sequence never blocks and is seen by
-- every session at once.
CREATE SEQUENCE regimen_changes;
";

/// The newest version this build writes.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// What the migration found.
pub(crate) enum Migrated {
    /// The database is at the newest version now.
    Current,
    /// The database was written by a newer Regimen.
    TooNew(i64),
}

/// Brings the database to the newest version, in one transaction under the migration lock.
pub(crate) fn migrate(client: &mut impl GenericClient, migrations: &[Migration]) -> Result<Migrated, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS regimen_schema (version BIGINT NOT NULL)")?;
    let found: i64 = match tx.query_opt("SELECT version FROM regimen_schema", &[])? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO regimen_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    if found > migrations.last().map_or(0, |m| m.version) {
        return Ok(Migrated::TooNew(found));
    }
    for migration in migrations.iter().filter(|m| m.version > found) {
        tx.batch_execute(migration.sql)?;
        tx.execute("UPDATE regimen_schema SET version = $1", &[&migration.version])?;
    }
    tx.commit()?;
    Ok(Migrated::Current)
}
