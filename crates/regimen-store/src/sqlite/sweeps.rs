//! [`SweepStore`] on SQLite: the `sweeps` and `trials` tables of schema version 4.

use std::collections::BTreeMap;
use std::time::Duration;

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::{Durability, SqliteStore};
use crate::blocks::unsigned;
use crate::error::StoreError;
use crate::sweep::{Claim, NewSweep, SweepRow, SweepStatus, SweepStore, TrialRecord, TrialState, TrialUpdate};
use crate::time::Timestamp;

const TRIAL_COLUMNS: &str = "number, params, state, run_id, worker, lease_until, attempts, target, resource, value, \
                             rungs, message, version, updated_at, violation";

impl SqliteStore {
    fn now(&self) -> Timestamp {
        self.options.clock.now()
    }

    /// The row id, sweep id and status of the sweep named by id, unique id prefix, or name.
    fn find_sweep(&self, tx: &Transaction<'_>, id_or_name: &str) -> Result<(i64, String), StoreError> {
        let sql = self.sql("find a sweep");
        let exact = tx
            .query_row(
                "SELECT id, sweep_id FROM sweeps WHERE sweep_id = ?1
                 UNION ALL SELECT * FROM (SELECT id, sweep_id FROM sweeps WHERE name = ?1 ORDER BY created_at DESC, id DESC LIMIT 1)
                 LIMIT 1",
                [id_or_name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(&sql)?;
        if let Some(found) = exact {
            return Ok(found);
        }
        let mut stmt = tx
            .prepare_cached("SELECT id, sweep_id FROM sweeps WHERE substr(sweep_id, 1, length(?1)) = ?1 LIMIT 2")
            .map_err(&sql)?;
        let matches = stmt
            .query_map([id_or_name], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(&sql)?
            .collect::<Result<Vec<(i64, String)>, _>>()
            .map_err(&sql)?;
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(StoreError::SweepNotFound { id: id_or_name.to_string() }),
        }
    }

    /// Bumps the sweep's change counter and returns the new value.
    fn bump(&self, tx: &Transaction<'_>, sweep: i64) -> Result<i64, StoreError> {
        tx.query_row("UPDATE sweeps SET version = version + 1 WHERE id = ?1 RETURNING version", [sweep], |r| r.get(0))
            .map_err(self.sql("count a sweep change"))
    }

    fn trial_from_row(&self, r: &Row<'_>) -> Result<TrialRecord, StoreError> {
        let sql = self.sql("read a trial");
        let text = |i: usize| -> Result<String, StoreError> { r.get::<_, String>(i).map_err(&sql) };
        let params_text = text(1)?;
        let params =
            serde_json::from_str(&params_text).map_err(|_| self.corrupt("trial's parameters", &params_text))?;
        let state_text = text(2)?;
        let state = TrialState::parse(&state_text).ok_or_else(|| self.corrupt("trial state", &state_text))?;
        let rungs_text = text(10)?;
        let rungs: Vec<(u64, Option<f64>)> =
            serde_json::from_str(&rungs_text).map_err(|_| self.corrupt("trial's rungs", &rungs_text))?;
        Ok(TrialRecord {
            number: unsigned(r.get(0).map_err(&sql)?),
            params,
            state,
            run_id: r.get(3).map_err(&sql)?,
            worker: r.get(4).map_err(&sql)?,
            lease_until: r.get::<_, Option<i64>>(5).map_err(&sql)?.map(Timestamp),
            attempts: u32::try_from(r.get::<_, i64>(6).map_err(&sql)?).unwrap_or(0),
            target: unsigned(r.get(7).map_err(&sql)?),
            resource: unsigned(r.get(8).map_err(&sql)?),
            value: r.get(9).map_err(&sql)?,
            rungs: rungs.into_iter().map(|(at, value)| (at, value.unwrap_or(f64::NAN))).collect(),
            message: r.get(11).map_err(&sql)?,
            version: unsigned(r.get(12).map_err(&sql)?),
            updated_at: Timestamp(r.get(13).map_err(&sql)?),
            violation: r.get(14).map_err(&sql)?,
        })
    }

    fn corrupt(&self, what: &'static str, value: &str) -> StoreError {
        StoreError::Corrupt { path: self.db_path.clone(), what, value: value.to_string() }
    }

    fn trial(&self, tx: &Transaction<'_>, sweep: i64, number: u64) -> Result<Option<TrialRecord>, StoreError> {
        let sql = self.sql("read a trial");
        let query = format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE sweep = ?1 AND number = ?2");
        let mut stmt = tx.prepare_cached(&query).map_err(&sql)?;
        let mut rows = stmt.query(params![sweep, number as i64]).map_err(&sql)?;
        match rows.next().map_err(&sql)? {
            Some(row) => Ok(Some(self.trial_from_row(row)?)),
            None => Ok(None),
        }
    }

    fn sweep_row(&self, tx: &Transaction<'_>, sweep: i64) -> Result<SweepRow, StoreError> {
        let sql = self.sql("read a sweep");
        let (sweep_id, name, spec, parent, status, created_at): (String, String, String, Option<String>, String, i64) =
            tx.query_row(
                "SELECT sweep_id, name, spec, parent, status, created_at FROM sweeps WHERE id = ?1",
                [sweep],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .map_err(&sql)?;
        let spec = serde_json::from_str(&spec).map_err(|_| self.corrupt("sweep definition", &spec))?;
        let status = SweepStatus::parse(&status).ok_or_else(|| self.corrupt("sweep status", &status))?;
        let mut counts = BTreeMap::new();
        let mut stmt =
            tx.prepare_cached("SELECT state, count(*) FROM trials WHERE sweep = ?1 GROUP BY state").map_err(&sql)?;
        let rows = stmt
            .query_map([sweep], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(&sql)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&sql)?;
        for (state, count) in rows {
            let state = TrialState::parse(&state).ok_or_else(|| self.corrupt("trial state", &state))?;
            counts.insert(state, unsigned(count));
        }
        Ok(SweepRow { sweep_id, name, spec, parent, status, created_at: Timestamp(created_at), counts })
    }

    /// Frees a trial whose worker is gone (`stale`), or ends it `failed` once it was claimed
    /// `max_attempts` times.
    #[allow(clippy::too_many_arguments)]
    fn give_up_or_free(
        &self,
        tx: &Transaction<'_>,
        sweep: i64,
        number: i64,
        attempts: i64,
        max_attempts: u32,
        why: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (state, message) = if attempts >= i64::from(max_attempts) {
            ("failed", format!("{why}; gave up after {attempts} attempts"))
        } else {
            ("stale", why.to_string())
        };
        let version = self.bump(tx, sweep)?;
        tx.execute(
            "UPDATE trials SET state = ?3, lease_until = NULL, message = ?4, version = ?5, updated_at = ?6
             WHERE sweep = ?1 AND number = ?2",
            params![sweep, number, state, message, version, now],
        )
        .map_err(self.sql("free a trial"))?;
        Ok(())
    }

    /// The lease's end, `lease` after now.
    fn lease_end(&self, lease: Duration) -> i64 {
        self.now().0.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    }
}

impl SweepStore for SqliteStore {
    fn create_sweep(&self, sweep: &NewSweep) -> Result<(), StoreError> {
        let spec = sweep.spec.to_string();
        self.write_tx_with(Durability::SurvivesProcessDeath, "create a sweep", |tx, _| {
            let sql = self.sql("create a sweep");
            let exists: bool = tx
                .query_row("SELECT EXISTS (SELECT 1 FROM sweeps WHERE sweep_id = ?1)", [&sweep.sweep_id], |r| r.get(0))
                .map_err(&sql)?;
            if exists {
                return Err(StoreError::DuplicateSweep { id: sweep.sweep_id.clone() });
            }
            tx.execute(
                "INSERT INTO sweeps (sweep_id, name, spec, parent, status, created_at) VALUES (?1, ?2, ?3, ?4, 'active', ?5)",
                params![sweep.sweep_id, sweep.name, spec, sweep.parent, sweep.created_at.0],
            )
            .map_err(&sql)?;
            Ok(())
        })
    }

    fn get_sweep(&self, id_or_name: &str) -> Result<SweepRow, StoreError> {
        self.read_tx("read a sweep", |tx| {
            let (pk, _) = self.find_sweep(tx, id_or_name)?;
            self.sweep_row(tx, pk)
        })
    }

    fn list_sweeps(&self) -> Result<Vec<SweepRow>, StoreError> {
        self.read_tx("list sweeps", |tx| {
            let sql = self.sql("list sweeps");
            let mut stmt =
                tx.prepare_cached("SELECT id FROM sweeps ORDER BY created_at DESC, id DESC").map_err(&sql)?;
            let ids = stmt
                .query_map([], |r| r.get::<_, i64>(0))
                .map_err(&sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&sql)?;
            ids.into_iter().map(|pk| self.sweep_row(tx, pk)).collect()
        })
    }

    fn set_sweep_status(&self, sweep_id: &str, status: SweepStatus) -> Result<(), StoreError> {
        self.write_tx_with(Durability::SurvivesProcessDeath, "change a sweep's status", |tx, _| {
            let (pk, _) = self.find_sweep(tx, sweep_id)?;
            tx.execute("UPDATE sweeps SET status = ?2 WHERE id = ?1", params![pk, status.as_str()])
                .map_err(self.sql("change a sweep's status"))?;
            Ok(())
        })
    }

    fn trials_since(&self, sweep_id: &str, version: u64) -> Result<(Vec<TrialRecord>, u64), StoreError> {
        self.read_tx("read a sweep's trials", |tx| {
            let sql = self.sql("read a sweep's trials");
            let (pk, _) = self.find_sweep(tx, sweep_id)?;
            let current: i64 =
                tx.query_row("SELECT version FROM sweeps WHERE id = ?1", [pk], |r| r.get(0)).map_err(&sql)?;
            let query = format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE sweep = ?1 AND version > ?2 ORDER BY number");
            let mut stmt = tx.prepare_cached(&query).map_err(&sql)?;
            let mut rows = stmt.query(params![pk, i64::try_from(version).unwrap_or(i64::MAX)]).map_err(&sql)?;
            let mut trials = Vec::new();
            while let Some(row) = rows.next().map_err(&sql)? {
                trials.push(self.trial_from_row(row)?);
            }
            Ok((trials, unsigned(current)))
        })
    }

    fn claim_trial(
        &self,
        sweep_id: &str,
        claim: &Claim,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<TrialRecord>, StoreError> {
        self.write_tx_with(Durability::SurvivesProcessDeath, "claim a trial", |tx, _| {
            let sql = self.sql("claim a trial");
            let (pk, _) = self.find_sweep(tx, sweep_id)?;
            let status: String =
                tx.query_row("SELECT status FROM sweeps WHERE id = ?1", [pk], |r| r.get(0)).map_err(&sql)?;
            if status != SweepStatus::Active.as_str() {
                return Ok(None);
            }
            let (now, until) = (self.now().0, self.lease_end(lease));
            match claim {
                Claim::New { number, params: values, target } => {
                    if self.trial(tx, pk, *number)?.is_some() {
                        return Ok(None);
                    }
                    let version = self.bump(tx, pk)?;
                    tx.execute(
                        "INSERT INTO trials (sweep, number, params, state, worker, lease_until, attempts, target, resource,
                                             rungs, version, updated_at)
                         VALUES (?1, ?2, ?3, 'running', ?4, ?5, 1, ?6, 0, '[]', ?7, ?8)",
                        params![pk, *number as i64, values.to_string(), worker, until, *target as i64, version, now],
                    )
                    .map_err(&sql)?;
                }
                Claim::Continue { number, version, target } => {
                    let Some(trial) = self.trial(tx, pk, *number)? else { return Ok(None) };
                    if trial.version != *version || !matches!(trial.state, TrialState::Paused | TrialState::Stale) {
                        return Ok(None);
                    }
                    let next = self.bump(tx, pk)?;
                    // A promotion is the same attempt going on; continuing a stale trial is a retry.
                    let retry = i64::from(trial.state == TrialState::Stale);
                    tx.execute(
                        "UPDATE trials SET state = 'running', worker = ?3, lease_until = ?4, attempts = attempts + ?8,
                                           target = ?5, version = ?6, updated_at = ?7
                         WHERE sweep = ?1 AND number = ?2",
                        params![pk, *number as i64, worker, until, *target as i64, next, now, retry],
                    )
                    .map_err(&sql)?;
                }
            }
            let number = match claim {
                Claim::New { number, .. } | Claim::Continue { number, .. } => *number,
            };
            self.trial(tx, pk, number)
        })
    }

    fn renew_lease(&self, sweep_id: &str, number: u64, worker: &str, lease: Duration) -> Result<bool, StoreError> {
        self.write_tx_with(Durability::SurvivesProcessDeath, "renew a trial's lease", |tx, _| {
            let (pk, _) = self.find_sweep(tx, sweep_id)?;
            let until = self.lease_end(lease);
            let changed = tx
                .execute(
                    "UPDATE trials SET lease_until = ?4
                     WHERE sweep = ?1 AND number = ?2 AND worker = ?3 AND state = 'running'
                       AND (SELECT status FROM sweeps WHERE id = ?1) = 'active'",
                    params![pk, number as i64, worker, until],
                )
                .map_err(self.sql("renew a trial's lease"))?;
            Ok(changed == 1)
        })
    }

    fn update_trial(
        &self,
        sweep_id: &str,
        number: u64,
        worker: &str,
        update: &TrialUpdate,
    ) -> Result<bool, StoreError> {
        self.write_tx_with(Durability::SurvivesProcessDeath, "update a trial", |tx, _| {
            let (pk, _) = self.find_sweep(tx, sweep_id)?;
            let Some(mut trial) = self.trial(tx, pk, number)? else { return Ok(false) };
            if trial.state != TrialState::Running || trial.worker.as_deref() != Some(worker) {
                return Ok(false);
            }
            trial.apply(update);
            let version = self.bump(tx, pk)?;
            tx.execute(
                "UPDATE trials SET state = ?3, run_id = ?4, lease_until = ?5, resource = ?6, value = ?7, rungs = ?8,
                                   message = ?9, version = ?10, updated_at = ?11, violation = ?12
                 WHERE sweep = ?1 AND number = ?2",
                params![
                    pk,
                    number as i64,
                    trial.state.as_str(),
                    trial.run_id,
                    trial.lease_until.map(|t| t.0),
                    trial.resource as i64,
                    trial.value,
                    trial.rungs_json(),
                    trial.message,
                    version,
                    self.now().0,
                    trial.violation
                ],
            )
            .map_err(self.sql("update a trial"))?;
            Ok(true)
        })
    }

    fn prune_paused(&self, sweep_id: &str, number: u64, version: u64, message: &str) -> Result<bool, StoreError> {
        self.write_tx_with(Durability::SurvivesProcessDeath, "prune a paused trial", |tx, _| {
            let (pk, _) = self.find_sweep(tx, sweep_id)?;
            let Some(trial) = self.trial(tx, pk, number)? else { return Ok(false) };
            if trial.version != version || trial.state != TrialState::Paused {
                return Ok(false);
            }
            let next = self.bump(tx, pk)?;
            tx.execute(
                "UPDATE trials SET state = 'pruned', message = ?3, version = ?4, updated_at = ?5
                 WHERE sweep = ?1 AND number = ?2",
                params![pk, number as i64, message, next, self.now().0],
            )
            .map_err(self.sql("prune a paused trial"))?;
            Ok(true)
        })
    }

    fn stop_trial(&self, sweep_id: &str, number: u64, message: &str) -> Result<bool, StoreError> {
        self.write_tx_with(Durability::SurvivesProcessDeath, "stop a trial", |tx, _| {
            let (pk, _) = self.find_sweep(tx, sweep_id)?;
            let Some(trial) = self.trial(tx, pk, number)? else {
                return Err(StoreError::Invalid {
                    what: "trial number",
                    value: number.to_string(),
                    why: "the sweep has no such trial",
                });
            };
            if trial.state.is_final() {
                return Ok(false);
            }
            let next = self.bump(tx, pk)?;
            tx.execute(
                "UPDATE trials SET state = 'pruned', message = ?3, lease_until = NULL, version = ?4, updated_at = ?5
                 WHERE sweep = ?1 AND number = ?2",
                params![pk, number as i64, message, next, self.now().0],
            )
            .map_err(self.sql("stop a trial"))?;
            Ok(true)
        })
    }

    fn abandon_worker(&self, sweep_id: &str, worker: &str, max_attempts: u32) -> Result<Vec<u64>, StoreError> {
        self.write_tx_with(Durability::SurvivesProcessDeath, "release a dead worker's trials", |tx, _| {
            let sql = self.sql("release a dead worker's trials");
            let (pk, _) = self.find_sweep(tx, sweep_id)?;
            let mut stmt = tx
                .prepare_cached(
                    "SELECT number, attempts FROM trials WHERE sweep = ?1 AND worker = ?2 AND state = 'running'
                     ORDER BY number",
                )
                .map_err(&sql)?;
            let held = stmt
                .query_map(params![pk, worker], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                .map_err(&sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&sql)?;
            let now = self.now().0;
            for &(number, attempts) in &held {
                self.give_up_or_free(tx, pk, number, attempts, max_attempts, "its worker process is gone", now)?;
            }
            Ok(held.into_iter().map(|(number, _)| unsigned(number)).collect())
        })
    }

    fn trial_run(&self, sweep_id: &str, number: u64) -> Result<Option<String>, StoreError> {
        self.read_tx("find a trial's run", |tx| {
            let (_, sweep_id) = self.find_sweep(tx, sweep_id)?;
            tx.query_row(
                "SELECT run_id FROM runs WHERE sweep_id = ?1 AND trial_id = ?2 ORDER BY started_at DESC, id DESC LIMIT 1",
                params![sweep_id, number.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql("find a trial's run"))
        })
    }

    fn expire_leases(&self, sweep_id: &str, max_attempts: u32) -> Result<Vec<u64>, StoreError> {
        let now = self.now().0;
        let select = "SELECT number, attempts FROM trials WHERE sweep = ?1 AND state = 'running' AND lease_until < ?2
                      ORDER BY number";
        let expired = |tx: &Transaction<'_>, pk: i64| -> Result<Vec<(i64, i64)>, StoreError> {
            let sql = self.sql("find expired leases");
            let mut stmt = tx.prepare_cached(select).map_err(&sql)?;
            stmt.query_map(params![pk, now], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(&sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&sql)
        };
        // Look first without the write lock: every worker calls this before deciding.
        let found = self.read_tx("find expired leases", |tx| {
            let (pk, _) = self.find_sweep(tx, sweep_id)?;
            expired(tx, pk)
        })?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        self.write_tx_with(Durability::SurvivesProcessDeath, "expire leases", |tx, _| {
            let (pk, _) = self.find_sweep(tx, sweep_id)?;
            let mut numbers = Vec::new();
            for (number, attempts) in expired(tx, pk)? {
                let why = "its worker stopped renewing the lease: the process probably died";
                self.give_up_or_free(tx, pk, number, attempts, max_attempts, why, now)?;
                numbers.push(unsigned(number));
            }
            Ok(numbers)
        })
    }
}
