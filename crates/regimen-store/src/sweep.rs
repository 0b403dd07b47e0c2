//! Sweeps and their trials: what a hyperparameter sweep keeps in the store, and the
//! [`SweepStore`] contract that lets any number of worker processes share one sweep.
//!
//! A sweep is a search space and its settings (opaque JSON to the store) plus numbered trials. A
//! trial is a set of parameters and, once started, a Regimen run (linked by the run's
//! `sweep_id`/`trial_id` provenance). Workers pull work: they read what changed since they last
//! looked ([`SweepStore::trials_since`]), decide what to run, and claim it with a compare-and-swap
//! ([`SweepStore::claim_trial`]) that fails harmlessly when another worker was faster. A claim is
//! a lease that the worker renews; a trial whose lease ran out is `stale`, never "running"
//! forever, and another worker may continue it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::blocks::finite_or_null;
use crate::error::StoreError;
use crate::time::Timestamp;

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialState {
    /// A worker holds its lease and is training it.
    Running,
    /// It reached a rung and waits there, checkpointed, for a promotion (ASHA with promotions).
    Paused,
    /// It trained to its full budget.
    Complete,
    /// The scheduler ended it early.
    Pruned,
    /// Its training failed, or it went stale too many times.
    Failed,
    /// Its worker stopped renewing the lease (the process died); another worker may continue it.
    Stale,
}

impl TrialState {
    /// Every state, in declaration order.
    pub const ALL: [TrialState; 6] = [
        TrialState::Running,
        TrialState::Paused,
        TrialState::Complete,
        TrialState::Pruned,
        TrialState::Failed,
        TrialState::Stale,
    ];

    /// The lowercase name used in the database, on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Running => "running",
            TrialState::Paused => "paused",
            TrialState::Complete => "complete",
            TrialState::Pruned => "pruned",
            TrialState::Failed => "failed",
            TrialState::Stale => "stale",
        }
    }

    /// The state with this name, if any.
    pub fn parse(name: &str) -> Option<TrialState> {
        TrialState::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether nothing more will happen to the trial.
    pub fn is_final(self) -> bool {
        matches!(self, TrialState::Complete | TrialState::Pruned | TrialState::Failed)
    }
}

impl fmt::Display for TrialState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a sweep still takes work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SweepStatus {
    /// Workers claim and start trials.
    Active,
    /// A user stopped it: no new claims; running trials stop at their next heartbeat.
    Stopped,
    /// Every trial reached a final state.
    Finished,
}

impl SweepStatus {
    /// The lowercase name used in the database and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SweepStatus::Active => "active",
            SweepStatus::Stopped => "stopped",
            SweepStatus::Finished => "finished",
        }
    }

    /// The status with this name, if any.
    pub fn parse(name: &str) -> Option<SweepStatus> {
        [SweepStatus::Active, SweepStatus::Stopped, SweepStatus::Finished].into_iter().find(|s| s.as_str() == name)
    }
}

/// What is recorded once when a sweep is created. Immutable once written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSweep {
    /// Unique id.
    pub sweep_id: String,
    /// Human-readable name (by default the space file's stem).
    pub name: String,
    /// The sweep's definition (space, sampler, scheduler, objective, fixed settings), for workers
    /// that join later and for `report`.
    pub spec: Value,
    /// The sweep this one was zoomed from.
    pub parent: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A sweep as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// Unique id.
    pub sweep_id: String,
    /// Human-readable name.
    pub name: String,
    /// The definition it was created with.
    pub spec: Value,
    /// The sweep this one was zoomed from.
    pub parent: Option<String>,
    /// Whether it still takes work.
    pub status: SweepStatus,
    /// When it was created.
    pub created_at: Timestamp,
    /// How many trials are in each state (states with none are absent).
    pub counts: BTreeMap<TrialState, u64>,
}

/// One trial as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrialRecord {
    /// Its number in the sweep, from 0; unique within the sweep.
    pub number: u64,
    /// The parameters (a JSON object).
    pub params: Value,
    /// Where it stands.
    pub state: TrialState,
    /// The run that trains it, once known.
    pub run_id: Option<String>,
    /// The worker holding or last holding it.
    pub worker: Option<String>,
    /// Until when the worker's lease holds (for `running` trials).
    pub lease_until: Option<Timestamp>,
    /// How many times it was started: its first claim and each retry after its worker died (a
    /// promotion continues the same attempt).
    pub attempts: u32,
    /// The resource (epochs) the current or next stretch of training runs to.
    pub target: u64,
    /// The resource (epochs) it has been trained for.
    pub resource: u64,
    /// The objective at `resource`, as the run recorded it (not negated).
    pub value: Option<f64>,
    /// The objective at each rung it reached: (resource, value), in order.
    pub rungs: Vec<(u64, f64)>,
    /// How far it broke the sweep's constraints (0 when it met them all); `None` when not
    /// judged (no constraints, or not complete).
    pub violation: Option<f64>,
    /// Why it ended, for failed and pruned trials.
    pub message: Option<String>,
    /// The sweep's change counter when this trial last changed (see [`SweepStore::trials_since`]).
    pub version: u64,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl TrialRecord {
    /// Applies a worker's report ([`SweepStore::update_trial`]): the run, the resource reached with
    /// its objective (appended to the rungs when it is a rung), the violation, the new state (any
    /// but `running` releases the lease) and the message (kept when the report has none). NaN
    /// values are kept as unknown.
    pub(crate) fn apply(&mut self, update: &TrialUpdate) {
        if let Some(run_id) = &update.run_id {
            self.run_id = Some(run_id.clone());
        }
        if let Some((resource, value)) = update.reached {
            self.resource = resource;
            self.value = value.and_then(finite_or_null);
            if update.rung {
                self.rungs.retain(|&(at, _)| at != resource);
                self.rungs.push((resource, value.unwrap_or(f64::NAN)));
            }
        }
        if let Some(violation) = update.violation {
            self.violation = finite_or_null(violation);
        }
        self.state = update.state.unwrap_or(TrialState::Running);
        if self.state != TrialState::Running {
            self.lease_until = None;
        }
        if let Some(message) = &update.message {
            self.message = Some(message.clone());
        }
    }

    /// The rungs as both stores keep them: JSON pairs `[resource, value]`, an unknown value null.
    pub(crate) fn rungs_json(&self) -> String {
        let pairs: Vec<(u64, Option<f64>)> =
            self.rungs.iter().map(|&(at, value)| (at, value.is_finite().then_some(value))).collect();
        serde_json::to_string(&pairs).expect("pairs of numbers always serialize")
    }
}

/// What a worker asks to take.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Start trial `number` (which must not exist yet) with these parameters, training to `target`.
    New {
        /// The trial number: one more than the highest the worker has seen.
        number: u64,
        /// The parameters, a JSON object.
        params: Value,
        /// The resource to train to before reporting.
        target: u64,
    },
    /// Continue a `paused` or `stale` trial from its checkpoint, training to `target`; only if it
    /// has not changed since the worker read it at `version`.
    Continue {
        /// The trial number.
        number: u64,
        /// Its version when the worker decided.
        version: u64,
        /// The resource to train to before reporting.
        target: u64,
    },
}

/// What a worker reports about a trial it holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrialUpdate {
    /// The new state; `None` keeps it `running` (a progress report).
    pub state: Option<TrialState>,
    /// The run that trains it (kept when `None`).
    pub run_id: Option<String>,
    /// The resource now reached, with the objective there; appended to the rungs when
    /// `rung` is set.
    pub reached: Option<(u64, Option<f64>)>,
    /// Whether `reached` is a rung the scheduler compares trials at.
    pub rung: bool,
    /// How far the trial broke the sweep's constraints (kept when `None`).
    pub violation: Option<f64>,
    /// Why it ended.
    pub message: Option<String>,
}

/// The sweep half of a store: sweeps, trials, leases.
///
/// # Who calls what
/// `regimen sweep run` creates a sweep; every `regimen sweep worker` process (several per machine,
/// on several machines for a shared store) calls [`trials_since`](SweepStore::trials_since),
/// [`claim_trial`](SweepStore::claim_trial), [`renew_lease`](SweepStore::renew_lease) and
/// [`update_trial`](SweepStore::update_trial) in a loop; `regimen sweep status|ls|stop|report`
/// read and stop sweeps.
///
/// # Concurrency
/// Every write is one atomic transaction, durable against the death of any process; an
/// implementation may trade durability against a power failure for speed (SQLite does), since the
/// lease protocol repairs a lost claim (claimed again) or a lost completion (the lease expires and
/// the trial is continued). Claims are compare-and-swap: of several workers
/// claiming the same trial number or continuing the same trial at the same version, exactly one
/// gets `Some`, the others `None`, never an error. A lease lasts for the duration given, measured
/// on the store's clock; [`expire_leases`](SweepStore::expire_leases) turns `running` trials whose
/// lease ran out into `stale` (or `failed` once they used up their attempts). Only the worker
/// holding a trial may renew or update it.
///
/// # Reading incrementally
/// A sweep has a change counter, bumped by every trial write; each trial records the counter of
/// its last change. `trials_since(sweep, v)` returns the trials changed after `v` and the current
/// counter, so that a worker reads each change once and the cost of a suggestion does not grow
/// with re-reading the whole history.
pub trait SweepStore: Send + Sync {
    /// Records a new sweep; [`StoreError::DuplicateSweep`] when the id exists.
    fn create_sweep(&self, sweep: &NewSweep) -> Result<(), StoreError>;

    /// A sweep by id, unique id prefix, or name (the newest of that name).
    fn get_sweep(&self, id_or_name: &str) -> Result<SweepRow, StoreError>;

    /// Every sweep, newest first.
    fn list_sweeps(&self) -> Result<Vec<SweepRow>, StoreError>;

    /// Stops, reactivates or finishes a sweep.
    fn set_sweep_status(&self, sweep_id: &str, status: SweepStatus) -> Result<(), StoreError>;

    /// The trials changed after change counter `version` (all of them for 0), by number, and the
    /// sweep's current counter.
    fn trials_since(&self, sweep_id: &str, version: u64) -> Result<(Vec<TrialRecord>, u64), StoreError>;

    /// Takes a trial for `worker` with a lease of `lease`; `None` when the claim lost a race
    /// (the number exists, the trial changed, the sweep is not active).
    fn claim_trial(
        &self,
        sweep_id: &str,
        claim: &Claim,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<TrialRecord>, StoreError>;

    /// Extends the lease of a trial `worker` holds; `false` when it no longer holds it (the lease
    /// ran out and the trial went stale) or the sweep was stopped: the worker must stop the trial.
    fn renew_lease(&self, sweep_id: &str, number: u64, worker: &str, lease: Duration) -> Result<bool, StoreError>;

    /// Records progress or the end of a trial `worker` holds; `false` (and nothing written) when
    /// it no longer holds it. A final state or `paused` releases the lease.
    fn update_trial(&self, sweep_id: &str, number: u64, worker: &str, update: &TrialUpdate)
    -> Result<bool, StoreError>;

    /// Ends a `paused` trial unchanged since `version` as `pruned` (the sweep is over and it was
    /// never promoted); `false` when it changed.
    fn prune_paused(&self, sweep_id: &str, number: u64, version: u64, message: &str) -> Result<bool, StoreError>;

    /// Ends trial `number` as `pruned` with `message` at a person's request, whatever worker holds
    /// it: a `running`, `paused` or `stale` trial; `false` when it had already ended. A running
    /// trial's worker finds out at its next lease renewal, which now fails, and stops the training.
    fn stop_trial(&self, sweep_id: &str, number: u64, message: &str) -> Result<bool, StoreError>;

    /// Marks the `running` trials that `worker` holds `stale` at once, without waiting for the
    /// lease: the caller knows the worker is dead (a process of this machine that no longer
    /// exists). A trial claimed `max_attempts` times already becomes `failed`, as in
    /// [`expire_leases`](SweepStore::expire_leases). Returns their numbers.
    fn abandon_worker(&self, sweep_id: &str, worker: &str, max_attempts: u32) -> Result<Vec<u64>, StoreError>;

    /// The newest run that records itself as trial `number` of the sweep (its provenance's
    /// `sweep_id` and `trial_id`).
    fn trial_run(&self, sweep_id: &str, number: u64) -> Result<Option<String>, StoreError>;

    /// Marks `running` trials whose lease ran out `stale`, or `failed` when they were claimed
    /// `max_attempts` times already; returns their numbers.
    fn expire_leases(&self, sweep_id: &str, max_attempts: u32) -> Result<Vec<u64>, StoreError>;
}
