//! `regimen sweep worker`: pulls trials from a sweep in the store and trains them, one at a time,
//! until the sweep has no work left.
//!
//! Each stretch of training is a `regimen train` child process (a new run, or `--resume` of the
//! trial's run), paused at the trial's next rung with `--pause-after-epoch`. The worker renews its
//! lease while the child trains; a child outlives neither its worker (the kernel sends it SIGTERM
//! when the worker dies, and it checkpoints) nor a lost lease. Trials are numbered from 0; a new
//! trial's parameters come from the sampler, shown the history the worker keeps in memory and
//! updates with only what changed in the store.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use regimen_store::{
    Claim, RunDir, RunState, RunStore, SweepStatus, Timestamp, TrialRecord, TrialState, TrialUpdate, Write,
};
use regimen_sweep::{Outcome, Params, Sampler, Standing, Trial, new_sampler};

use super::spec::SweepFile;

mod script;

/// How long a claim holds without renewal. Long enough for a busy machine, short enough that a
/// dead worker's trial is picked up again soon; `REGIMEN_SWEEP_LEASE_SECONDS` overrides it.
const LEASE: Duration = Duration::from_secs(60);

/// How often a worker with nothing to do looks again.
const POLL: Duration = Duration::from_millis(500);

/// One worker of one sweep.
pub struct Worker {
    store: Arc<dyn RunStore>,
    /// The store as the trials' `--store` names it (a folder or a URL).
    store_root: PathBuf,
    /// Shared storage of checkpoints, when run folders are not shared.
    pub mirror: Option<Arc<dyn regimen_artifacts::ArtifactStore>>,
    sweep_id: String,
    sweep: SweepFile,
    folder: PathBuf,
    id: String,
    lease: Duration,
    sampler: Box<dyn Sampler>,
    /// Every trial's parameters, when decided up front (a rerun).
    plan: Vec<serde_json::Value>,
    /// Trials of the sweep this one zoomed from that lie in its space, renumbered from 0; the
    /// sweep's own trial `n` is `inherited.len() + n` to the sampler.
    inherited: Vec<Trial>,
    /// The device this worker's new trials train on, over the `[train]` table's.
    pub device: Option<String>,
    trials: BTreeMap<u64, TrialRecord>,
    history: BTreeMap<u64, Trial>,
    seen: u64,
}

/// What to do next.
enum Job {
    Claim(Claim),
    Wait,
    Done,
}

/// How a stretch of training ended.
struct Stretch {
    /// The child died of a signal (it was killed): the trial is retried, not failed.
    killed: bool,
    run_id: Option<String>,
    status: Option<String>,
    epochs: u64,
    reason: Option<String>,
}

impl Worker {
    /// The folder that holds the run folders: the store folder, or a team store's artifact folder.
    fn runs_root(&self) -> &Path {
        self.store.root().unwrap_or(&self.store_root)
    }

    /// A worker for `sweep_id`, whose definition is `sweep`, with its files in `folder`.
    pub fn new(
        store: Arc<dyn RunStore>,
        store_root: PathBuf,
        sweep_id: String,
        sweep: SweepFile,
        plan: Vec<serde_json::Value>,
        folder: PathBuf,
    ) -> Worker {
        let lease = std::env::var("REGIMEN_SWEEP_LEASE_SECONDS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map_or(LEASE, Duration::from_secs_f64);
        let sampler = new_sampler(sweep.settings.sampler, sweep.settings.seed);
        Worker {
            store,
            store_root,
            mirror: None,
            sweep_id,
            sweep,
            folder,
            id: worker_id(),
            lease,
            sampler,
            plan,
            inherited: Vec::new(),
            device: None,
            trials: BTreeMap::new(),
            history: BTreeMap::new(),
            seen: 0,
        }
    }

    /// Starts the sampler from the trials of the sweep this one zoomed from.
    pub fn inherit(&mut self, parent: &[TrialRecord], parent_sweep: &SweepFile) -> anyhow::Result<()> {
        let history: Vec<Trial> = parent.iter().map(|t| trial_of(parent_sweep, t)).collect::<anyhow::Result<_>>()?;
        self.inherited = regimen_sweep::inherit(&self.sweep.space, &history);
        for (i, trial) in self.inherited.iter_mut().enumerate() {
            trial.number = i as u64;
        }
        Ok(())
    }

    fn max_attempts(&self) -> u32 {
        self.sweep.settings.max_retries.saturating_add(1)
    }

    /// Works until the sweep is finished or stopped.
    pub fn run(&mut self) -> anyhow::Result<()> {
        loop {
            if regimen_train::interrupt::requested() {
                return Ok(());
            }
            self.free_dead_workers()?;
            self.store.expire_leases(&self.sweep_id, self.max_attempts())?;
            self.sync()?;
            if self.store.get_sweep(&self.sweep_id)?.status != SweepStatus::Active {
                return Ok(());
            }
            match self.next_job() {
                Job::Claim(claim) => {
                    if let Some(trial) = self.store.claim_trial(&self.sweep_id, &claim, &self.id, self.lease)? {
                        if self.sweep.command.is_empty() {
                            self.train(trial)?;
                        } else {
                            self.train_script(trial)?;
                        }
                    }
                }
                Job::Wait => std::thread::sleep(POLL),
                Job::Done => return self.finish(),
            }
        }
    }

    /// Reads what changed in the store since the last look.
    fn sync(&mut self) -> anyhow::Result<()> {
        let (changed, version) = self.store.trials_since(&self.sweep_id, self.seen)?;
        for trial in changed {
            self.history.insert(trial.number, trial_of(&self.sweep, &trial)?);
            self.trials.insert(trial.number, trial);
        }
        self.seen = version;
        Ok(())
    }

    /// Trials on this machine whose worker process no longer exists are freed at once, so that
    /// running the sweep again after a kill continues without waiting for leases to run out.
    fn free_dead_workers(&mut self) -> anyhow::Result<()> {
        let host = format!("{}:", hostname());
        let dead: Vec<String> = self
            .trials
            .values()
            .filter(|t| t.state == TrialState::Running)
            .filter_map(|t| t.worker.clone())
            .filter(|w| w.strip_prefix(&host).and_then(|pid| pid.parse::<i32>().ok()).is_some_and(|pid| !alive(pid)))
            .collect();
        // A whole sweep killed (by its user, or a reboot) is not its trials' fault: freed this way,
        // a trial is never given up on.
        for worker in dead {
            self.store.abandon_worker(&self.sweep_id, &worker, u32::MAX)?;
        }
        Ok(())
    }

    fn standings(&self) -> Vec<Standing> {
        self.trials
            .values()
            .map(|t| Standing {
                number: t.number,
                rungs: t.rungs.iter().map(|&(at, v)| (at, self.sweep.minimized(v))).collect(),
                paused: t.state == TrialState::Paused,
            })
            .collect()
    }

    fn next_job(&mut self) -> Job {
        if let Some(stale) = self.trials.values().find(|t| t.state == TrialState::Stale) {
            let claim = Claim::Continue { number: stale.number, version: stale.version, target: stale.target };
            return Job::Claim(claim);
        }
        let scheduler = &self.sweep.scheduler;
        let next = self.trials.keys().next_back().map_or(0, |n| n + 1);
        let draining =
            next >= self.sweep.settings.trials && !self.trials.values().any(|t| t.state == TrialState::Running);
        if scheduler.promotion
            && let Some((number, target)) = scheduler.promotion(&self.standings(), draining)
        {
            let version = self.trials[&number].version;
            return Job::Claim(Claim::Continue { number, version, target });
        }
        if next < self.sweep.settings.trials {
            let params = match self.plan.get(next as usize) {
                Some(planned) => planned.clone(),
                None => {
                    let offset = self.inherited.len() as u64;
                    let own = self.history.values().map(|t| Trial { number: offset + t.number, ..t.clone() });
                    let history: Vec<Trial> = self.inherited.iter().cloned().chain(own).collect();
                    let params = self.sampler.suggest(&self.sweep.space, &history, offset + next);
                    serde_json::to_value(&params).expect("parameters always serialize to JSON")
                }
            };
            return Job::Claim(Claim::New { number: next, params, target: scheduler.next_target(next, 0) });
        }
        if self.trials.values().any(|t| t.state == TrialState::Running) { Job::Wait } else { Job::Done }
    }

    /// No work is left: paused trials that were never promoted are pruned, and the sweep is over.
    fn finish(&mut self) -> anyhow::Result<()> {
        for trial in self.trials.values().filter(|t| t.state == TrialState::Paused) {
            let message = format!(
                "pruned by {}: not in the top 1/{} at epoch {}",
                self.sweep.scheduler.kind, self.sweep.scheduler.eta, trial.resource
            );
            if self.store.prune_paused(&self.sweep_id, trial.number, trial.version, &message)? {
                self.end_run_pruned(trial.run_id.as_deref(), &message)?;
            }
        }
        self.sync()?;
        if self.trials.values().all(|t| t.state.is_final()) {
            self.store.set_sweep_status(&self.sweep_id, SweepStatus::Finished)?;
        }
        Ok(())
    }

    /// Trains a claimed trial to its target, and on through the rungs the stopping flavour lets it
    /// pass; records how it ended.
    fn train(&mut self, mut trial: TrialRecord) -> anyhow::Result<()> {
        let number = trial.number;
        let params = params_of(&trial.params)?;
        say!("{} trial {number} → epoch {} · {}", self.id, trial.target, describe(&params));
        loop {
            let run_id = match &trial.run_id {
                Some(id) => Some(id.clone()),
                None => self.store.trial_run(&self.sweep_id, number)?,
            };
            let Some(stretch) = self.train_stretch(number, &params, run_id.as_deref(), trial.target)? else {
                return Ok(()); // the lease was lost or the worker is stopping: nothing more to record
            };
            let run_id = stretch.run_id.clone().or(run_id);
            let (value, violation) = match &run_id {
                Some(id) => self.judge(id, stretch.epochs)?,
                None => (None, None),
            };
            let status = stretch.status.as_deref().unwrap_or("failed");
            let mut update = TrialUpdate {
                run_id: run_id.clone(),
                reached: Some((stretch.epochs, value)),
                rung: true,
                ..TrialUpdate::default()
            };
            let at_budget = stretch.epochs >= self.sweep.scheduler.max;
            let (state, note) = match status {
                "finished" | "stopped_early" => (TrialState::Complete, None),
                _ if at_budget && status == "interrupted" => (TrialState::Complete, None),
                "interrupted" if stretch.epochs == trial.target => {
                    if self.sweep.scheduler.promotion {
                        (TrialState::Paused, None)
                    } else {
                        self.sync()?;
                        let minimized = value.map_or(f64::NAN, |v| self.sweep.minimized(v));
                        let mut standings = self.standings();
                        if let Some(me) = standings.iter_mut().find(|s| s.number == number) {
                            me.rungs.retain(|&(at, _)| at != stretch.epochs);
                        }
                        if self.sweep.scheduler.keep_going(number, stretch.epochs, minimized, &standings) {
                            if !self.store.update_trial(&self.sweep_id, number, &self.id, &update)? {
                                return Ok(());
                            }
                            trial.run_id = run_id;
                            trial.target = self.sweep.scheduler.next_target(number, stretch.epochs);
                            say!("{} trial {number} goes on → epoch {}", self.id, trial.target);
                            continue;
                        }
                        (
                            TrialState::Pruned,
                            Some(format!("pruned by {} at epoch {}", self.sweep.scheduler.kind, stretch.epochs)),
                        )
                    }
                }
                _ if stretch.killed && trial.attempts < self.max_attempts() => {
                    update.rung = false;
                    update.reached = None;
                    (TrialState::Stale, Some("its training process was killed; it will be continued".to_string()))
                }
                _ => {
                    update.rung = false;
                    let why = stretch.reason.clone().unwrap_or_else(|| format!("training ended `{status}`"));
                    (TrialState::Failed, Some(format!("{why} (log: {})", self.log_path(number).display())))
                }
            };
            if state == TrialState::Pruned {
                self.end_run_pruned(run_id.as_deref(), note.as_deref().unwrap_or("pruned"))?;
            }
            if state == TrialState::Complete {
                update.violation = violation;
            }
            update.state = Some(state);
            update.message = note;
            let shown = value.map_or("n/a".to_string(), |v| format!("{v:.4}"));
            say!(
                "{} trial {number} {state} at epoch {} · {} {shown}",
                self.id,
                stretch.epochs,
                self.sweep.settings.objective
            );
            self.store.update_trial(&self.sweep_id, number, &self.id, &update)?;
            return Ok(());
        }
    }

    /// A pruned trial's run ends `killed` (a supervisor ended it), with the scheduler's reason,
    /// rather than staying `interrupted` as if it could still go on.
    fn end_run_pruned(&self, run_id: Option<&str>, reason: &str) -> anyhow::Result<()> {
        if let Some(run_id) = run_id {
            let end = Write::End { status: RunState::Killed, reason: Some(reason), at: Timestamp::now() };
            self.store.write(run_id, &[end])?;
        }
        Ok(())
    }

    fn log_path(&self, number: u64) -> PathBuf {
        self.folder.join(format!("trial-{number:04}.log"))
    }

    /// Opens trial `number`'s log for appending, with a line that says who starts what.
    fn open_log(&self, number: u64, what: &str) -> anyhow::Result<std::fs::File> {
        let path = self.log_path(number);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("could not open the trial log {}", path.display()))?;
        // The log is for reading; a full disk here must not stop the trial.
        let _ = writeln!(log, "--- {} · {what}", self.id);
        Ok(log)
    }

    /// One `regimen train` child, to epoch `target`; `None` when it was stopped because the lease
    /// was lost, the sweep was stopped, or this worker is stopping.
    fn train_stretch(
        &mut self,
        number: u64,
        params: &Params,
        run_id: Option<&str>,
        target: u64,
    ) -> anyhow::Result<Option<Stretch>> {
        if let (Some(mirror), Some(id)) = (&self.mirror, run_id) {
            // Another machine may have trained it so far: its checkpoints come from shared storage.
            regimen_train::mirror::fetch_checkpoints(mirror.as_ref(), self.runs_root(), id)?;
        }
        let resumable = run_id.filter(|id| {
            let dir = RunDir::of(self.runs_root(), id);
            regimen_train::checkpoint::latest(&dir.checkpoints()).is_ok()
        });
        let exe = std::env::current_exe().context("cannot find the regimen executable")?;
        let mut command = Command::new(exe);
        match resumable {
            Some(id) => {
                command.args(["train", "--resume", id]);
            }
            None => {
                command.args(["train", "--config"]).arg(self.folder.join("train.toml"));
                command.args(SweepFile::flags(params));
                if let Some(device) = &self.device {
                    command.args(["--device", device]);
                }
            }
        }
        command.arg("--store").arg(&self.store_root).arg("--json");
        crate::commands::share_run_folders(&mut command, self.runs_root());
        if target < self.sweep.scheduler.max {
            command.args(["--pause-after-epoch", &target.to_string()]);
        }
        let log = self.open_log(number, &format!("epoch {target} · {}", describe(params)))?;
        command
            .env("REGIMEN_SWEEP_ID", &self.sweep_id)
            .env("REGIMEN_TRIAL_ID", number.to_string())
            .env_remove("REGIMEN_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        die_with_parent(&mut command);
        let mut child = command.spawn().context("could not start `regimen train` for a trial")?;
        let stdout = child.stdout.take().context("the trial's output")?;
        let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
        let kept = self.supervise(&mut child, number)?;
        let status = child.wait().context("waiting for a trial")?;
        let output = reader.join().unwrap_or_default();
        if !kept {
            return Ok(None);
        }
        let summary: Option<serde_json::Value> = serde_json::from_str(&output).ok();
        let text = |key: &str| summary.as_ref().and_then(|s| s[key].as_str()).map(str::to_string);
        let epochs = summary.as_ref().and_then(|s| s["epochs"].as_u64()).unwrap_or(0);
        let mut reason = text("reason");
        if summary.is_none() {
            reason = Some(format!("`regimen train` exited with {status} and no summary"));
        }
        let killed = std::os::unix::process::ExitStatusExt::signal(&status).is_some();
        Ok(Some(Stretch { killed, run_id: text("run_id"), status: text("status"), epochs, reason }))
    }

    /// Renews the lease while the child trains; returns `false` when the trial must be given up
    /// (lease lost, sweep stopped, worker stopping), after asking the child to stop.
    fn supervise(&mut self, child: &mut Child, number: u64) -> anyhow::Result<bool> {
        let renew_every = self.lease / 4;
        let mut renewed = Instant::now();
        loop {
            if child.try_wait().context("watching a trial")?.is_some() {
                return Ok(true);
            }
            if regimen_train::interrupt::requested() {
                // The child got the same signal from the terminal, or gets it now; it checkpoints.
                terminate(child);
                let _ = child.wait();
                self.store.abandon_worker(&self.sweep_id, &self.id, u32::MAX)?;
                return Ok(false);
            }
            if renewed.elapsed() >= renew_every {
                if !self.store.renew_lease(&self.sweep_id, number, &self.id, self.lease)? {
                    terminate(child);
                    let _ = child.wait();
                    let stopped = self.store.get_sweep(&self.sweep_id)?.status == SweepStatus::Stopped;
                    if stopped {
                        let update = TrialUpdate {
                            state: Some(TrialState::Stale),
                            message: Some("the sweep was stopped".into()),
                            ..TrialUpdate::default()
                        };
                        self.store.update_trial(&self.sweep_id, number, &self.id, &update)?;
                    }
                    return Ok(false);
                }
                renewed = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The trial run's best objective over its first `epochs` epochs, in the sweep's direction,
    /// and how far its metrics' last values break the sweep's constraints.
    fn judge(&self, run_id: &str, epochs: u64) -> anyhow::Result<(Option<f64>, Option<f64>)> {
        let detail = self.store.get_run(run_id)?;
        let value = detail.series.get(&self.sweep.settings.objective).and_then(|series| {
            let values = series.iter().filter(|p| p.epoch <= epochs).map(|p| p.value);
            regimen_metrics::best(values, self.sweep.mode).map(|(_, v)| v)
        });
        let last = |key: &str| detail.series.get(key).and_then(|s| s.last()).map(|p| p.value);
        Ok((value, self.sweep.violation(last)))
    }
}

/// A stored trial as samplers see it: values minimized, unfinished trials as running (TPE's
/// constant liar), paused ones as pruned at their last rung.
pub fn trial_of(sweep: &SweepFile, trial: &TrialRecord) -> anyhow::Result<Trial> {
    let value = trial.value.map(|v| sweep.minimized(v));
    let outcome = match trial.state {
        TrialState::Running | TrialState::Stale => Outcome::Running,
        TrialState::Paused | TrialState::Pruned => Outcome::Pruned(value),
        TrialState::Complete => match (value, trial.violation) {
            (Some(_), Some(violation)) if violation > 0.0 => Outcome::Infeasible(violation),
            (Some(value), _) => Outcome::Complete(value),
            (None, _) => Outcome::Failed,
        },
        TrialState::Failed => Outcome::Failed,
    };
    Ok(Trial { number: trial.number, params: params_of(&trial.params)?, outcome })
}

/// `host:pid`, which tells a worker on the same machine whether this one is still alive.
pub fn worker_id() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Whether process `pid` exists (signal 0 checks without sending anything).
fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for the process; it has no other effect.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Asks a child to stop gracefully: it checkpoints and ends `interrupted`.
fn terminate(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: sending SIGTERM to our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

/// The kernel sends the child SIGTERM when this process dies, so that a killed worker leaves no
/// trial training behind it (which would then be continued twice).
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The parameters of a stored trial.
pub fn params_of(value: &serde_json::Value) -> anyhow::Result<Params> {
    serde_json::from_value(value.clone()).context("a trial's parameters in the store are not a table of values")
}

/// `lr=0.001 channels=16,32`.
pub fn describe(params: &Params) -> String {
    params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// The folder of a sweep's own files (the fixed config, trial logs) in the store.
pub fn folder(store_root: &Path, sweep_id: &str) -> PathBuf {
    store_root.join("sweeps").join(sweep_id)
}
