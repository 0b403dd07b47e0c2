//! [`SweepStore`] on PostgreSQL.
//!
//! Every write locks its sweep's row first (`SELECT … FOR UPDATE`): the write bumps the sweep's
//! change counter anyway, and holding the row makes each read-then-write below exact, as SQLite's
//! single writer makes it there. A continuation first takes the trial's row with
//! `FOR UPDATE SKIP LOCKED`, so that when several workers go for the same paused or stale trial,
//! the ones that lost learn it at once instead of queueing behind the winner.

use std::collections::BTreeMap;
use std::time::Duration;

use postgres::Row;

use super::{Failure, PostgresStore, Tx};
use crate::blocks::unsigned;
use crate::error::StoreError;
use crate::sweep::{Claim, NewSweep, SweepRow, SweepStatus, SweepStore, TrialRecord, TrialState, TrialUpdate};
use crate::time::Timestamp;

const TRIAL_COLUMNS: &str = "number, params, state, run_id, worker, lease_until, attempts, target, resource, value, \
                             rungs, message, version, updated_at, violation";

impl PostgresStore {
    /// The row id and sweep id of the sweep named by id, unique id prefix, or name.
    fn find_sweep(&self, tx: &mut Tx<'_>, id_or_name: &str) -> Result<(i64, String), Failure> {
        let exact = tx.query_opt(
            "(SELECT id, sweep_id FROM sweeps WHERE sweep_id = $1)
             UNION ALL (SELECT id, sweep_id FROM sweeps WHERE name = $1 ORDER BY created_at DESC, id DESC LIMIT 1)
             LIMIT 1",
            &[&id_or_name],
        )?;
        if let Some(row) = exact {
            return Ok((row.get(0), row.get(1)));
        }
        let matches: Vec<(i64, String)> = tx
            .query("SELECT id, sweep_id FROM sweeps WHERE starts_with(sweep_id, $1) LIMIT 2", &[&id_or_name])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(StoreError::SweepNotFound { id: id_or_name.to_string() }.into()),
        }
    }

    /// Finds a sweep and locks its row until the transaction ends; returns its row id and status.
    fn lock_sweep(&self, tx: &mut Tx<'_>, id_or_name: &str) -> Result<(i64, String), Failure> {
        // Workers name the sweep by its id: one round trip finds and locks it.
        if let Some(row) =
            tx.query_opt("SELECT id, status FROM sweeps WHERE sweep_id = $1 FOR UPDATE", &[&id_or_name])?
        {
            return Ok((row.get(0), row.get(1)));
        }
        let (pk, _) = self.find_sweep(tx, id_or_name)?;
        let row = tx.query_one("SELECT status FROM sweeps WHERE id = $1 FOR UPDATE", &[&pk])?;
        Ok((pk, row.get(0)))
    }

    /// Bumps the sweep's change counter and returns the new value.
    fn bump(&self, tx: &mut Tx<'_>, sweep: i64) -> Result<i64, Failure> {
        Ok(tx.query_one("UPDATE sweeps SET version = version + 1 WHERE id = $1 RETURNING version", &[&sweep])?.get(0))
    }

    fn trial_from_row(&self, r: &Row) -> Result<TrialRecord, StoreError> {
        let params_text: String = r.get(1);
        let params =
            serde_json::from_str(&params_text).map_err(|_| self.corrupt("trial's parameters", params_text.clone()))?;
        let state_text: String = r.get(2);
        let state = TrialState::parse(&state_text).ok_or_else(|| self.corrupt("trial state", state_text.clone()))?;
        let rungs_text: String = r.get(10);
        let rungs: Vec<(u64, Option<f64>)> =
            serde_json::from_str(&rungs_text).map_err(|_| self.corrupt("trial's rungs", rungs_text.clone()))?;
        Ok(TrialRecord {
            number: unsigned(r.get(0)),
            params,
            state,
            run_id: r.get(3),
            worker: r.get(4),
            lease_until: r.get::<_, Option<i64>>(5).map(Timestamp),
            attempts: u32::try_from(r.get::<_, i64>(6)).unwrap_or(0),
            target: unsigned(r.get(7)),
            resource: unsigned(r.get(8)),
            value: r.get(9),
            rungs: rungs.into_iter().map(|(at, value)| (at, value.unwrap_or(f64::NAN))).collect(),
            message: r.get(11),
            version: unsigned(r.get(12)),
            updated_at: Timestamp(r.get(13)),
            violation: r.get(14),
        })
    }

    fn trial(&self, tx: &mut Tx<'_>, sweep: i64, number: u64) -> Result<Option<TrialRecord>, Failure> {
        let query = format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE sweep = $1 AND number = $2");
        match tx.query_opt(&query, &[&sweep, &(number as i64)])? {
            Some(row) => Ok(Some(self.trial_from_row(&row)?)),
            None => Ok(None),
        }
    }

    fn sweep_row(&self, tx: &mut Tx<'_>, sweep: i64) -> Result<SweepRow, Failure> {
        let r = tx.query_one(
            "SELECT sweep_id, name, spec, parent, status, created_at FROM sweeps WHERE id = $1",
            &[&sweep],
        )?;
        let spec_text: String = r.get(2);
        let spec = serde_json::from_str(&spec_text).map_err(|_| self.corrupt("sweep definition", spec_text.clone()))?;
        let status_text: String = r.get(4);
        let status =
            SweepStatus::parse(&status_text).ok_or_else(|| self.corrupt("sweep status", status_text.clone()))?;
        let mut counts = BTreeMap::new();
        for row in tx.query("SELECT state, count(*) FROM trials WHERE sweep = $1 GROUP BY state", &[&sweep])? {
            let state_text: String = row.get(0);
            let state =
                TrialState::parse(&state_text).ok_or_else(|| self.corrupt("trial state", state_text.clone()))?;
            counts.insert(state, unsigned(row.get(1)));
        }
        Ok(SweepRow {
            sweep_id: r.get(0),
            name: r.get(1),
            spec,
            parent: r.get(3),
            status,
            created_at: Timestamp(r.get(5)),
            counts,
        })
    }

    /// Frees a trial whose worker is gone (`stale`), or ends it `failed` once it was claimed
    /// `max_attempts` times.
    #[allow(clippy::too_many_arguments)]
    fn give_up_or_free(
        &self,
        tx: &mut Tx<'_>,
        sweep: i64,
        number: i64,
        attempts: i64,
        max_attempts: u32,
        why: &str,
        now: Timestamp,
    ) -> Result<(), Failure> {
        let (state, message) = if attempts >= i64::from(max_attempts) {
            ("failed", format!("{why}; gave up after {attempts} attempts"))
        } else {
            ("stale", why.to_string())
        };
        let version = self.bump(tx, sweep)?;
        tx.execute(
            "UPDATE trials SET state = $3, lease_until = NULL, message = $4, version = $5, updated_at = $6
             WHERE sweep = $1 AND number = $2",
            &[&sweep, &number, &state, &message, &version, &now.0],
        )?;
        Ok(())
    }

    /// The trials of a sweep matching `condition` (with `$1` the sweep and `$2` the time), as
    /// (number, attempts).
    fn held(
        &self,
        tx: &mut Tx<'_>,
        sql: &str,
        sweep: i64,
        other: &(dyn postgres::types::ToSql + Sync),
    ) -> Result<Vec<(i64, i64)>, Failure> {
        Ok(tx.query(sql, &[&sweep, other])?.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

fn lease_end(now: Timestamp, lease: Duration) -> i64 {
    now.plus(lease).0
}

impl SweepStore for PostgresStore {
    fn create_sweep(&self, sweep: &NewSweep) -> Result<(), StoreError> {
        let spec = sweep.spec.to_string();
        self.write_tx("create a sweep", |tx| {
            let inserted = tx.execute(
                "INSERT INTO sweeps (sweep_id, name, spec, parent, status, created_at) VALUES ($1, $2, $3, $4, 'active', $5)
                 ON CONFLICT (sweep_id) DO NOTHING",
                &[&sweep.sweep_id, &sweep.name, &spec, &sweep.parent, &sweep.created_at.0],
            )?;
            if inserted == 0 {
                return Err(StoreError::DuplicateSweep { id: sweep.sweep_id.clone() }.into());
            }
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
            let ids: Vec<i64> = tx
                .query("SELECT id FROM sweeps ORDER BY created_at DESC, id DESC", &[])?
                .iter()
                .map(|r| r.get(0))
                .collect();
            ids.into_iter().map(|pk| self.sweep_row(tx, pk)).collect()
        })
    }

    fn set_sweep_status(&self, sweep_id: &str, status: SweepStatus) -> Result<(), StoreError> {
        self.write_tx("change a sweep's status", |tx| {
            let (pk, _) = self.lock_sweep(tx, sweep_id)?;
            tx.execute("UPDATE sweeps SET status = $2 WHERE id = $1", &[&pk, &status.as_str()])?;
            Ok(())
        })
    }

    fn trials_since(&self, sweep_id: &str, version: u64) -> Result<(Vec<TrialRecord>, u64), StoreError> {
        self.read_tx("read a sweep's trials", |tx| {
            let (pk, _) = self.find_sweep(tx, sweep_id)?;
            let current: i64 = tx.query_one("SELECT version FROM sweeps WHERE id = $1", &[&pk])?.get(0);
            let query = format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE sweep = $1 AND version > $2 ORDER BY number");
            let rows = tx.query(&query, &[&pk, &i64::try_from(version).unwrap_or(i64::MAX)])?;
            let trials = rows.iter().map(|row| self.trial_from_row(row)).collect::<Result<Vec<_>, _>>()?;
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
        self.write_tx("claim a trial", |tx| {
            if let Claim::Continue { number, version, .. } = claim {
                let (pk, _) = self.find_sweep(tx, sweep_id)?;
                // Another worker continuing the same trial holds its row: this claim lost.
                let free = tx.query_opt(
                    "SELECT 1 FROM trials WHERE sweep = $1 AND number = $2 AND version = $3
                       AND state IN ('paused', 'stale') FOR UPDATE SKIP LOCKED",
                    &[&pk, &(*number as i64), &i64::try_from(*version).unwrap_or(i64::MAX)],
                )?;
                if free.is_none() {
                    return Ok(None);
                }
            }
            let (pk, status) = self.lock_sweep(tx, sweep_id)?;
            if status != SweepStatus::Active.as_str() {
                return Ok(None);
            }
            let now = self.now(tx)?;
            let until = lease_end(now, lease);
            let number = match claim {
                Claim::New { number, params: values, target } => {
                    if self.trial(tx, pk, *number)?.is_some() {
                        return Ok(None);
                    }
                    let version = self.bump(tx, pk)?;
                    tx.execute(
                        "INSERT INTO trials (sweep, number, params, state, worker, lease_until, attempts, target, resource,
                                             rungs, version, updated_at)
                         VALUES ($1, $2, $3, 'running', $4, $5, 1, $6, 0, '[]', $7, $8)",
                        &[&pk, &(*number as i64), &values.to_string(), &worker, &until, &(*target as i64), &version, &now.0],
                    )?;
                    *number
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
                        "UPDATE trials SET state = 'running', worker = $3, lease_until = $4, attempts = attempts + $8,
                                           target = $5, version = $6, updated_at = $7
                         WHERE sweep = $1 AND number = $2",
                        &[&pk, &(*number as i64), &worker, &until, &(*target as i64), &next, &now.0, &retry],
                    )?;
                    *number
                }
            };
            self.trial(tx, pk, number)
        })
    }

    fn renew_lease(&self, sweep_id: &str, number: u64, worker: &str, lease: Duration) -> Result<bool, StoreError> {
        self.write_tx("renew a trial's lease", |tx| {
            let (pk, status) = self.lock_sweep(tx, sweep_id)?;
            if status != SweepStatus::Active.as_str() {
                return Ok(false);
            }
            let until = lease_end(self.now(tx)?, lease);
            let changed = tx.execute(
                "UPDATE trials SET lease_until = $4
                 WHERE sweep = $1 AND number = $2 AND worker = $3 AND state = 'running'",
                &[&pk, &(number as i64), &worker, &until],
            )?;
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
        self.write_tx("update a trial", |tx| {
            let (pk, _) = self.lock_sweep(tx, sweep_id)?;
            let Some(mut trial) = self.trial(tx, pk, number)? else { return Ok(false) };
            if trial.state != TrialState::Running || trial.worker.as_deref() != Some(worker) {
                return Ok(false);
            }
            trial.apply(update);
            let version = self.bump(tx, pk)?;
            let now = self.now(tx)?;
            tx.execute(
                "UPDATE trials SET state = $3, run_id = $4, lease_until = $5, resource = $6, value = $7, rungs = $8,
                                   message = $9, version = $10, updated_at = $11, violation = $12
                 WHERE sweep = $1 AND number = $2",
                &[
                    &pk,
                    &(number as i64),
                    &trial.state.as_str(),
                    &trial.run_id,
                    &trial.lease_until.map(|t| t.0),
                    &(trial.resource as i64),
                    &trial.value,
                    &trial.rungs_json(),
                    &trial.message,
                    &version,
                    &now.0,
                    &trial.violation,
                ],
            )?;
            Ok(true)
        })
    }

    fn prune_paused(&self, sweep_id: &str, number: u64, version: u64, message: &str) -> Result<bool, StoreError> {
        self.write_tx("prune a paused trial", |tx| {
            let (pk, _) = self.lock_sweep(tx, sweep_id)?;
            let Some(trial) = self.trial(tx, pk, number)? else { return Ok(false) };
            if trial.version != version || trial.state != TrialState::Paused {
                return Ok(false);
            }
            let next = self.bump(tx, pk)?;
            let now = self.now(tx)?;
            tx.execute(
                "UPDATE trials SET state = 'pruned', message = $3, version = $4, updated_at = $5
                 WHERE sweep = $1 AND number = $2",
                &[&pk, &(number as i64), &message, &next, &now.0],
            )?;
            Ok(true)
        })
    }

    fn stop_trial(&self, sweep_id: &str, number: u64, message: &str) -> Result<bool, StoreError> {
        self.write_tx("stop a trial", |tx| {
            let (pk, _) = self.lock_sweep(tx, sweep_id)?;
            let Some(trial) = self.trial(tx, pk, number)? else {
                return Err(StoreError::Invalid {
                    what: "trial number",
                    value: number.to_string(),
                    why: "the sweep has no such trial",
                }
                .into());
            };
            if trial.state.is_final() {
                return Ok(false);
            }
            let next = self.bump(tx, pk)?;
            let now = self.now(tx)?;
            tx.execute(
                "UPDATE trials SET state = 'pruned', message = $3, lease_until = NULL, version = $4, updated_at = $5
                 WHERE sweep = $1 AND number = $2",
                &[&pk, &(number as i64), &message, &next, &now.0],
            )?;
            Ok(true)
        })
    }

    fn abandon_worker(&self, sweep_id: &str, worker: &str, max_attempts: u32) -> Result<Vec<u64>, StoreError> {
        self.write_tx("release a dead worker's trials", |tx| {
            let (pk, _) = self.lock_sweep(tx, sweep_id)?;
            let held = self.held(
                tx,
                "SELECT number, attempts FROM trials WHERE sweep = $1 AND worker = $2 AND state = 'running' ORDER BY number",
                pk,
                &worker,
            )?;
            let now = self.now(tx)?;
            for &(number, attempts) in &held {
                self.give_up_or_free(tx, pk, number, attempts, max_attempts, "its worker process is gone", now)?;
            }
            Ok(held.into_iter().map(|(number, _)| unsigned(number)).collect())
        })
    }

    fn trial_run(&self, sweep_id: &str, number: u64) -> Result<Option<String>, StoreError> {
        self.read_tx("find a trial's run", |tx| {
            let (_, sweep_id) = self.find_sweep(tx, sweep_id)?;
            Ok(tx
                .query_opt(
                    "SELECT run_id FROM runs WHERE sweep_id = $1 AND trial_id = $2 ORDER BY started_at DESC, id DESC LIMIT 1",
                    &[&sweep_id, &number.to_string()],
                )?
                .map(|r| r.get(0)))
        })
    }

    fn expire_leases(&self, sweep_id: &str, max_attempts: u32) -> Result<Vec<u64>, StoreError> {
        let select = "SELECT number, attempts FROM trials WHERE sweep = $1 AND state = 'running' AND lease_until < $2
                      ORDER BY number";
        // Look first without locking the sweep: every worker calls this before deciding.
        let found = self.read_tx("find expired leases", |tx| {
            let (pk, _) = self.find_sweep(tx, sweep_id)?;
            let now = self.now(tx)?;
            self.held(tx, select, pk, &now.0)
        })?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        self.write_tx("expire leases", |tx| {
            let (pk, _) = self.lock_sweep(tx, sweep_id)?;
            let now = self.now(tx)?;
            let mut numbers = Vec::new();
            for (number, attempts) in self.held(tx, select, pk, &now.0)? {
                let why = "its worker stopped renewing the lease: the process probably died";
                self.give_up_or_free(tx, pk, number, attempts, max_attempts, why, now)?;
                numbers.push(unsigned(number));
            }
            Ok(numbers)
        })
    }
}
