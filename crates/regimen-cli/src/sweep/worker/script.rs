//! Trials that run any program: `regimen sweep run sweep.toml -- python train.py --lr {lr}`.
//!
//! The protocol (docs/sweep-protocol.md): the program gets its parameters in its command line
//! (`{name}` placeholders) and in `REGIMEN_PARAMS` (JSON), and reports metrics as JSON objects, one
//! per line, on stdout or appended to the file `REGIMEN_METRICS_FILE` names:
//! `{"epoch": 1, "step": 120, "val.loss": 0.31}`. Every number but `step` and `epoch` is a metric.
//! The worker records them in a Regimen run of its own, so the trial is listed, shown and compared
//! like any run. A scheduler compares trials at the epochs the program reports; a trial it stops
//! gets SIGTERM and, after `kill_grace` seconds, SIGKILL. Exit status 0 is a complete trial, any
//! other a failed one, death by a signal nobody sent a retried one.

use std::collections::BTreeMap;
use std::io::{BufRead, Read as _, Seek as _, SeekFrom};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use regimen_metrics::Monitored;
use regimen_store::{NewRun, Provenance, RunDir, RunState, Timestamp, TrialRecord, TrialState, TrialUpdate, Write};
use serde_json::{Value as Json, json};

use super::{Worker, describe, die_with_parent, params_of, terminate};

/// One reported line: its step, epoch and metrics.
struct Reported {
    step: Option<u64>,
    epoch: Option<u64>,
    metrics: Vec<(String, f64)>,
}

/// Parses a protocol line; `None` for anything that is not a JSON object with a number in it
/// (ordinary output, which goes to the trial's log).
fn parse_line(line: &str) -> Option<Reported> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') {
        return None;
    }
    let object: serde_json::Map<String, Json> = serde_json::from_str(trimmed).ok()?;
    let count = |key: &str| object.get(key).and_then(Json::as_u64);
    let metrics: Vec<(String, f64)> = object
        .iter()
        .filter(|(k, _)| k.as_str() != "step" && k.as_str() != "epoch")
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect();
    (!metrics.is_empty()).then(|| Reported { step: count("step"), epoch: count("epoch"), metrics })
}

/// How the program's run went, as the worker saw it.
enum Ending {
    Exited(std::process::ExitStatus),
    Stopped { epoch: u64 },
    Lost,
}

impl Worker {
    /// Runs trial `trial` as the sweep's program, from the start (a program keeps no checkpoint
    /// Regimen could continue from), and records how it ended.
    pub(super) fn train_script(&mut self, trial: TrialRecord) -> anyhow::Result<()> {
        let number = trial.number;
        let params = params_of(&trial.params)?;
        say!("{} trial {number} · {}", self.id, describe(&params));
        let stamp: String = Timestamp::now().to_string().chars().filter(char::is_ascii_digit).take(14).collect();
        let (run_id, dir) = RunDir::create(self.runs_root(), &format!("{}-{}", &stamp[..8], &stamp[8..]))
            .with_context(|| format!("could not create a run folder in {}", self.runs_root().display()))?;
        let command = self.sweep.command_for(
            &params,
            &[("trial", number.to_string()), ("run_id", run_id.clone()), ("run_dir", dir.path().display().to_string())],
        );
        let metrics_file = dir.path().join("metrics.jsonl");
        let shell_line = shlex::try_join(command.iter().map(String::as_str)).unwrap_or_else(|_| command.join(" "));
        let objective = self.sweep.settings.objective.clone();
        let start = NewRun {
            run_id: run_id.clone(),
            name: format!("{}-trial-{number}", self.sweep_id),
            experiment: self.sweep_id.clone(),
            started_at: Timestamp::now(),
            seed: 0,
            monitor: Some(Monitored { metric: objective.clone(), mode: self.sweep.mode }),
            task: None,
            params: trial.params.clone(),
            config: json!({ "command": command }),
            dataset: json!({}),
            provenance: Provenance {
                host: Some(super::hostname()),
                command: Some(shell_line.clone()),
                git_commit: None,
                git_dirty: None,
                sweep_id: Some(self.sweep_id.clone()),
                trial_id: Some(number.to_string()),
                init_run: None,
                init_weights: None,
            },
            environment: json!({}),
        };
        self.store.write(&run_id, &[Write::Start(&start)])?;
        let update = TrialUpdate { run_id: Some(run_id.clone()), ..TrialUpdate::default() };
        if !self.store.update_trial(&self.sweep_id, number, &self.id, &update)? {
            return Ok(());
        }

        let log_path = self.log_path(number);
        let log = self.open_log(number, &shell_line)?;
        let mut process = Command::new(&command[0]);
        process
            .args(&command[1..])
            .env("REGIMEN_SWEEP_ID", &self.sweep_id)
            .env("REGIMEN_TRIAL_ID", number.to_string())
            .env("REGIMEN_RUN_ID", &run_id)
            .env("REGIMEN_RUN_DIR", dir.path())
            .env("REGIMEN_METRICS_FILE", &metrics_file)
            .env("REGIMEN_OBJECTIVE", &objective)
            .env("REGIMEN_PARAMS", trial.params.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.try_clone().context("the trial log")?);
        die_with_parent(&mut process);
        let mut child = match process.spawn() {
            Ok(child) => child,
            Err(error) => {
                let message = format!("could not start `{}`: {error}", command[0]);
                return self.end_script(number, &run_id, TrialState::Failed, None, 0, Some(message));
            }
        };

        // Lines from stdout arrive through a channel; ordinary output goes to the log.
        let (lines, received) = mpsc::channel::<String>();
        let stdout = child.stdout.take().context("the trial's output")?;
        let mut echo = log;
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if parse_line(&line).is_none() {
                    let _ = std::io::Write::write_all(&mut echo, format!("{line}\n").as_bytes());
                } else if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut tail = FileTail::default();
        let mut best: BTreeMap<u64, f64> = BTreeMap::new(); // objective's best so far, by epoch
        let (mut points, mut last_epoch) = (0u64, 0u64);
        let rungs = self.sweep.scheduler.rungs(number);
        let mut judged: Vec<u64> = Vec::new();
        let mut renewed = Instant::now();
        let ending = loop {
            let mut batch: Vec<String> = received.try_iter().collect();
            batch.extend(tail.read_new(&metrics_file));
            let exited = child.try_wait().context("watching a trial")?;
            if exited.is_some() {
                // Whatever the program printed before it ended.
                batch.extend(received.recv_timeout(Duration::from_millis(200)).ok());
                batch.extend(received.try_iter());
                batch.extend(tail.read_new(&metrics_file));
            }
            let mut stop_at = None;
            for line in batch {
                let Some(reported) = parse_line(&line) else { continue };
                points += 1;
                let epoch = reported.epoch.unwrap_or(last_epoch.max(1));
                last_epoch = last_epoch.max(epoch);
                let step = reported.step.unwrap_or(points);
                let wall = Timestamp::now();
                let writes: Vec<Write<'_>> = reported
                    .metrics
                    .iter()
                    .map(|(key, value)| Write::Scalar { key, step, epoch, wall, value: *value })
                    .collect();
                self.store.write(&run_id, &writes)?;
                let Some(&(_, value)) = reported.metrics.iter().find(|(k, _)| *k == objective) else { continue };
                let so_far = best.values().copied().chain([value]).filter(|v| v.is_finite());
                let so_far = regimen_metrics::best(so_far, self.sweep.mode).map_or(f64::NAN, |(_, v)| v);
                best.insert(epoch, so_far);
                if rungs.contains(&epoch) && epoch < self.sweep.scheduler.max && !judged.contains(&epoch) {
                    judged.push(epoch);
                    let at_rung =
                        TrialUpdate { reached: Some((epoch, Some(so_far))), rung: true, ..TrialUpdate::default() };
                    self.store.update_trial(&self.sweep_id, number, &self.id, &at_rung)?;
                    self.sync()?;
                    let mut standings = self.standings();
                    if let Some(me) = standings.iter_mut().find(|s| s.number == number) {
                        me.rungs.retain(|&(at, _)| at != epoch);
                    }
                    let minimized = self.sweep.minimized(so_far);
                    if !self.sweep.scheduler.keep_going(number, epoch, minimized, &standings) {
                        stop_at = Some(epoch);
                        break;
                    }
                }
            }
            if let Some(epoch) = stop_at {
                self.stop_gracefully(&mut child);
                break Ending::Stopped { epoch };
            }
            if let Some(status) = exited {
                break Ending::Exited(status);
            }
            if regimen_train::interrupt::requested() {
                terminate(&child);
                let _ = child.wait();
                self.store.abandon_worker(&self.sweep_id, &self.id, u32::MAX)?;
                break Ending::Lost;
            }
            if renewed.elapsed() >= self.lease / 4 {
                self.store.write(&run_id, &[Write::Heartbeat { at: Timestamp::now() }])?;
                if !self.store.renew_lease(&self.sweep_id, number, &self.id, self.lease)? {
                    self.stop_gracefully(&mut child);
                    break Ending::Lost;
                }
                renewed = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let value = best.values().copied().filter(|v| v.is_finite());
        let value = regimen_metrics::best(value, self.sweep.mode).map(|(_, v)| v);
        match ending {
            Ending::Lost => {
                let end = Write::End {
                    status: RunState::Interrupted,
                    reason: Some("the sweep took the trial back"),
                    at: Timestamp::now(),
                };
                self.store.write(&run_id, &[end])?;
                Ok(())
            }
            Ending::Stopped { epoch } => {
                let message = format!("pruned by {} at epoch {epoch}", self.sweep.scheduler.kind);
                self.end_script(number, &run_id, TrialState::Pruned, value, epoch, Some(message))
            }
            Ending::Exited(status) if status.success() => {
                self.end_script(number, &run_id, TrialState::Complete, value, last_epoch, None)
            }
            Ending::Exited(status) => {
                let killed = std::os::unix::process::ExitStatusExt::signal(&status).is_some();
                let state =
                    if killed && trial.attempts < self.max_attempts() { TrialState::Stale } else { TrialState::Failed };
                let message = format!("`{}` ended with {status} (log: {})", command[0], log_path.display());
                self.end_script(number, &run_id, state, value, last_epoch, Some(message))
            }
        }
    }

    /// SIGTERM, then SIGKILL after the sweep's grace period if the program is still there.
    fn stop_gracefully(&self, child: &mut std::process::Child) {
        terminate(child);
        let deadline = Instant::now() + Duration::from_secs_f64(self.sweep.settings.kill_grace.max(0.0));
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Records the end of a script trial in the sweep and in its run.
    fn end_script(
        &mut self,
        number: u64,
        run_id: &str,
        state: TrialState,
        value: Option<f64>,
        epochs: u64,
        message: Option<String>,
    ) -> anyhow::Result<()> {
        let status = match state {
            TrialState::Complete => RunState::Finished,
            TrialState::Pruned => RunState::Killed,
            TrialState::Stale => RunState::Interrupted,
            _ => RunState::Failed,
        };
        self.store.write(run_id, &[Write::End { status, reason: message.as_deref(), at: Timestamp::now() }])?;
        let violation = if state == TrialState::Complete { self.judge(run_id, u64::MAX)?.1 } else { None };
        let update = TrialUpdate {
            state: Some(state),
            run_id: Some(run_id.to_string()),
            reached: Some((epochs, value)),
            rung: state != TrialState::Stale && epochs > 0,
            violation,
            message,
        };
        let shown = value.map_or("n/a".to_string(), |v| format!("{v:.4}"));
        say!("{} trial {number} {state} at epoch {epochs} · {} {shown}", self.id, self.sweep.settings.objective);
        self.store.update_trial(&self.sweep_id, number, &self.id, &update)?;
        Ok(())
    }
}

/// Reads the complete lines appended to a file since the last read.
#[derive(Default)]
struct FileTail {
    offset: u64,
    partial: String,
}

impl FileTail {
    fn read_new(&mut self, path: &std::path::Path) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(path) else { return Vec::new() };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut text = String::new();
        let Ok(read) = file.read_to_string(&mut text) else { return Vec::new() };
        self.offset += read as u64;
        self.partial.push_str(&text);
        let Some(end) = self.partial.rfind('\n') else { return Vec::new() };
        let complete: String = self.partial.drain(..=end).collect();
        complete.lines().map(str::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_lines_are_json_objects_with_a_number() {
        let line = parse_line(r#"{"epoch": 2, "step": 40, "val.loss": 0.5, "note": "x"}"#).unwrap();
        assert_eq!((line.epoch, line.step), (Some(2), Some(40)));
        assert_eq!(line.metrics, [("val.loss".to_string(), 0.5)]);
        assert!(parse_line("epoch 2: loss 0.5").is_none());
        assert!(parse_line(r#"{"epoch": 2}"#).is_none(), "no metric in it");
        assert!(parse_line(r#"{"val.loss": "#).is_none());
    }

    #[test]
    fn a_file_tail_returns_only_complete_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let mut tail = FileTail::default();
        assert!(tail.read_new(&path).is_empty(), "no file yet");
        std::fs::write(&path, "a\nb").unwrap();
        assert_eq!(tail.read_new(&path), ["a"]);
        std::fs::write(&path, "a\nbc\nd\n").unwrap();
        assert_eq!(tail.read_new(&path), ["bc", "d"]);
        assert!(tail.read_new(&path).is_empty());
    }
}
