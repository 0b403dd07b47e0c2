//! Sweeps end to end: the real binary, real worker and trial processes, a real store.

mod common;

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{regimen, regimen_fails, regimen_json};
use serde_json::Value;

/// A small sweep: TPE over the learning rate and dropout of a tiny MLP on spirals, ASHA with
/// promotions over 4 epochs (rungs at 1, 3 and 4).
fn sweep_file(dir: &Path, trials: u64, extra: &str) -> PathBuf {
    let path = dir.join("tiny.toml");
    let text = format!(
        r#"
[sweep]
trials = {trials}
sampler = "tpe"
scheduler = "asha"
objective = "val.acc"
seed = 3
{extra}

[train]
dataset = "spirals"
dataset_size = 300
model = "mlp"
hidden = [16]
epochs = 4
log_every = 5

[params]
lr = "loguniform(1e-3, 1e-1)"
dropout = "uniform(0.0, 0.3)"
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn run_sweep(file: &Path, store: &Path, jobs: &str) -> Value {
    regimen_json(&["sweep", "run", file.to_str().unwrap(), "-j", jobs, "--store", store.to_str().unwrap(), "--json"])
}

fn total(counts: &Value) -> u64 {
    counts.as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum()
}

#[test]
fn an_asha_sweep_runs_end_to_end_and_its_promoted_best_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = sweep_file(dir.path(), 6, "");
    let outcome = run_sweep(&file, &store, "2");
    assert_eq!(outcome["status"], "finished", "{outcome}");
    assert_eq!(total(&outcome["trials"]), 6, "{outcome}");
    let best = &outcome["best"];
    let run_id = best["run_id"].as_str().unwrap();
    assert!(best["value"].as_f64().unwrap() > 0.0 && best["params"]["lr"].is_f64(), "{outcome}");
    assert!(outcome["budget"]["saved_fraction"].as_f64().unwrap() > 0.0, "ASHA saves compute: {outcome}");

    let store_arg = store.to_str().unwrap();
    let sweep_id = outcome["sweep_id"].as_str().unwrap();
    let plots = dir.path().join("plots");
    let report = regimen_json(&[
        "sweep",
        "report",
        sweep_id,
        "--store",
        store_arg,
        "--json",
        "--plots",
        plots.to_str().unwrap(),
    ]);
    assert_eq!(report["best"]["run_id"], run_id);
    for name in ["lr", "dropout", "best_so_far"] {
        let png = image::open(plots.join(format!("{name}.png"))).unwrap();
        assert!(png.width() > 300, "{name}.png");
        let svg = std::fs::read_to_string(plots.join(format!("{name}.svg"))).unwrap();
        assert!(svg.contains("val.acc") || svg.contains("acc"), "{name}.svg");
    }
    assert!(std::fs::read_to_string(plots.join("lr.svg")).unwrap().contains("lr (log scale)"));
    let trials = report["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 6);
    for trial in trials {
        assert!(trial["run_id"].is_string() && trial["params"].is_object(), "{trial}");
        assert!(["complete", "pruned"].contains(&trial["state"].as_str().unwrap()), "{trial}");
    }
    assert!(report["importance"]["lr"].is_f64() && report["importance"]["dropout"].is_f64(), "{report}");
    assert!(report["variance_explained"]["lr"].is_f64(), "{report}");
    let runs = regimen_json(&["runs", "--store", store_arg, "--json"]);
    let listed: Vec<&str> = runs.as_array().unwrap().iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert!(listed.contains(&run_id));
    assert!(runs.as_array().unwrap().iter().any(|r| r["status"] == "killed"), "pruned trials end killed");

    // The best trial paused at epochs 1 and 3 and was promoted twice; trained without pausing, the
    // same configuration gives the same weights, bit for bit.
    let best_trial = trials.iter().find(|t| t["run_id"] == run_id).unwrap();
    assert_eq!(best_trial["epochs"], 4);
    let rungs: Vec<u64> = best_trial["rungs"].as_array().unwrap().iter().map(|r| r[0].as_u64().unwrap()).collect();
    assert_eq!(rungs, [1, 3, 4], "{best_trial}");
    let reference = dir.path().join("reference");
    let config = store.join("sweeps").join(sweep_id).join("train.toml");
    let (lr, dropout) = (best["params"]["lr"].to_string(), best["params"]["dropout"].to_string());
    let plain = regimen_json(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--lr",
        &lr,
        "--dropout",
        &dropout,
        "--store",
        reference.to_str().unwrap(),
        "--json",
    ]);
    let read = |path: PathBuf| std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let promoted = read(store.join("runs").join(run_id).join("model.safetensors"));
    let uninterrupted = read(PathBuf::from(plain["run_dir"].as_str().unwrap()).join("model.safetensors"));
    assert!(promoted == uninterrupted, "the promoted trial differs from the uninterrupted run");

    // The best configuration again with two new seeds: mean ± std beside the sweep's value.
    let rerun =
        regimen_json(&["sweep", "rerun", sweep_id, "--top-k", "1", "--seeds", "2", "--store", store_arg, "--json"]);
    let config = &rerun["configs"][0];
    assert_eq!(
        (config["trial"].as_u64(), config["original"].as_f64()),
        (best_trial["number"].as_u64(), best["value"].as_f64())
    );
    assert_eq!(config["values"].as_array().unwrap().len(), 2, "{rerun}");
    assert!(config["mean"].is_f64() && config["std"].is_f64(), "{rerun}");
    assert_ne!(config["seeds"][0], config["seeds"][1]);

    // Coarse to fine: a child sweep in a box around the best trial, recorded with its lineage.
    let zoom =
        regimen_json(&["sweep", "zoom", sweep_id, "--top-k", "3", "--trials", "2", "--store", store_arg, "--json"]);
    assert_eq!((zoom["status"].as_str(), zoom["parent"].as_str()), (Some("finished"), Some(sweep_id)), "{zoom}");
    let changes = zoom["zoom"]["changes"].as_array().unwrap();
    let lr = changes.iter().find(|c| c["name"] == "lr").unwrap();
    assert_eq!((lr["before"].as_str(), lr["narrowed"].as_bool()), (Some("loguniform:0.001:0.1"), Some(true)), "{lr}");
    let zoom_id = zoom["sweep_id"].as_str().unwrap();
    let zoomed = regimen_json(&["sweep", "report", zoom_id, "--store", store_arg, "--json"]);
    let bounds: Vec<f64> = lr["after"].as_str().unwrap().split(':').skip(1).map(|x| x.parse().unwrap()).collect();
    for trial in zoomed["trials"].as_array().unwrap() {
        let value = trial["params"]["lr"].as_f64().unwrap();
        assert!(bounds[0] <= value && value <= bounds[1], "{value} outside {bounds:?}");
    }

    // Running the same command again finds the finished sweep and changes nothing.
    let again = run_sweep(&file, &store, "2");
    assert_eq!((again["sweep_id"].as_str(), &again["best"]), (Some(sweep_id), &outcome["best"]));
    let listed = regimen_json(&["sweep", "ls", "--store", store_arg, "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 3, "the sweep, its rerun and its zoom: {listed}");
    assert!(listed.as_array().unwrap().iter().any(|s| s["parent"] == sweep_id), "{listed}");
    let stderr = regimen_fails(&["sweep", "report", "nope", "--store", store_arg]);
    assert!(stderr.contains("`nope`") && stderr.contains("regimen sweep ls"), "{stderr}");
}

/// What to kill, once `lines` trial events have been printed.
enum Kill {
    /// The whole process group: the sweep, its workers, their trials.
    Everything,
    /// Only the `regimen train` processes of the trials (their workers live on and retry them),
    /// then, a few trial events later, everything.
    TrialsThenEverything,
}

/// Starts `regimen sweep run -j JOBS` in its own process group, waits for `lines` trial events on
/// stderr, then kills what `kill` says with SIGKILL; returns once the sweep process has ended, and
/// whether a trial process alone was killed.
fn kill_after(file: &Path, store: &Path, jobs: &str, lines: usize, kill: Kill) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regimen"))
        .args(["sweep", "run", file.to_str().unwrap(), "-j", jobs, "--store", store.to_str().unwrap()])
        .env_remove("REGIMEN_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let group = child.id();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut wait_for = |events: usize| {
        let mut seen = 0;
        while seen < events {
            let line = stderr.next().expect("the sweep is still running").unwrap();
            seen += usize::from(line.contains(" trial "));
        }
    };
    wait_for(lines);
    let mut trial_killed = false;
    if let Kill::TrialsThenEverything = kill {
        // Trials are the `regimen train` children whose command line names this store; between
        // two stretches there may be none, so try at the next few events.
        let pattern = format!("regimen train .*--store {}", store.display());
        for _ in 0..5 {
            if Command::new("pkill").args(["-KILL", "-f", &pattern]).status().unwrap().success() {
                trial_killed = true;
                break;
            }
            wait_for(1);
        }
        wait_for(3);
    }
    let killed = Command::new("kill").args(["-KILL", "--", &format!("-{group}")]).status().unwrap();
    assert!(killed.success());
    let _ = child.wait();
    trial_killed
}

#[test]
fn killing_everything_at_random_moments_then_running_again_finishes_with_nothing_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = sweep_file(dir.path(), 8, "max_retries = 5");
    // Trial events ("trial 3 → epoch 1", "trial 3 paused at ...") at which to kill: early, during
    // promotions, late; with 2 workers and with 8 on one store; everything, or only the trials
    // (their workers retry them). Fixed, so a failure can be replayed.
    kill_after(&file, &store, "2", 3, Kill::Everything);
    let trial_killed = kill_after(&file, &store, "8", 5, Kill::TrialsThenEverything);
    kill_after(&file, &store, "8", 4, Kill::Everything);
    kill_after(&file, &store, "2", 6, Kill::Everything);
    let outcome = run_sweep(&file, &store, "2");
    assert_eq!(outcome["status"], "finished", "{outcome}");
    let sweep_id = outcome["sweep_id"].as_str().unwrap();
    let store_arg = store.to_str().unwrap();
    let report = regimen_json(&["sweep", "report", sweep_id, "--store", store_arg, "--json"]);
    let trials = report["trials"].as_array().unwrap();
    let numbers: Vec<u64> = trials.iter().map(|t| t["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..8).collect::<Vec<_>>(), "every trial once");
    for trial in trials {
        let state = trial["state"].as_str().unwrap();
        assert!(["complete", "pruned"].contains(&state), "no trial lost, failed or left running: {trial}");
    }
    assert!(trials.iter().any(|t| t["state"] == "complete" && t["epochs"] == 4));
    assert!(trial_killed, "with 8 workers some trial is always training");
    assert!(trials.iter().any(|t| t["attempts"].as_u64().unwrap() >= 2), "a killed trial was retried");
    let status = regimen_json(&["sweep", "status", sweep_id, "--store", store_arg, "--json"]);
    assert_eq!(status["running"], Value::Array(vec![]));
}

#[test]
fn eight_workers_share_one_store_without_lock_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = dir.path().join("wide.toml");
    std::fs::write(
        &file,
        r#"
[sweep]
trials = 16
objective = "val.loss"

[train]
dataset = "spirals"
dataset_size = 200
model = "mlp"
hidden = [8]
epochs = 1

[params]
lr = "loguniform(1e-3, 1e-1)"
"#,
    )
    .unwrap();
    let out =
        regimen(&["sweep", "run", file.to_str().unwrap(), "-j", "8", "--store", store.to_str().unwrap(), "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for bad in ["locked", "busy", "error", "panicked"] {
        assert!(!stderr.to_lowercase().contains(bad), "{bad}: {stderr}");
    }
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["trials"]["complete"], 16, "{outcome}");
    let workers: std::collections::BTreeSet<&str> =
        stderr.lines().filter_map(|l| l.split(" trial ").next()).filter(|w| w.contains(':')).collect();
    assert!(workers.len() > 1, "several workers took trials: {workers:?}");
}

#[test]
fn a_mistake_in_the_sweep_file_is_named_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = sweep_file(dir.path(), 4, "");
    let text = std::fs::read_to_string(&file).unwrap().replace("dropout =", "drop_out =");
    std::fs::write(&file, text).unwrap();
    let store = dir.path().join("store");
    let stderr = regimen_fails(&["sweep", "run", file.to_str().unwrap(), "--store", store.to_str().unwrap()]);
    assert!(stderr.contains("drop_out") && stderr.contains("regimen train --help"), "{stderr}");
}

/// The protocol's Python example, as docs/sweep-protocol.md shows it: parameters substituted into
/// its command line, metrics from its stdout and from the file Regimen names, median stopping by
/// SIGTERM, and a run in the store for every trial.
#[test]
fn a_python_script_is_swept_through_the_protocol_and_median_stopping_ends_its_bad_trials() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sweep-script");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.toml");
    let text = std::fs::read_to_string(example.join("sweep.toml")).unwrap().replace("trials = 12", "trials = 8");
    std::fs::write(&file, text).unwrap();
    let store = dir.path().join("store");
    let python = std::env::var("REGIMEN_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = example.join("train.py");
    let outcome = regimen_json(&[
        "sweep",
        "run",
        file.to_str().unwrap(),
        "-j",
        "2",
        "--store",
        store.to_str().unwrap(),
        "--json",
        "--",
        &python,
        script.to_str().unwrap(),
        "--lr",
        "{lr}",
        "--epochs",
        "6",
    ]);
    assert_eq!(outcome["status"], "finished", "{outcome}");
    assert_eq!(total(&outcome["trials"]), 8, "{outcome}");
    assert!(outcome["trials"]["complete"].as_u64().unwrap() >= 1, "{outcome}");
    assert!(outcome["trials"]["pruned"].as_u64().unwrap_or(0) >= 1, "median stopping stops someone: {outcome}");
    assert!(outcome["best"]["value"].as_f64().unwrap() < 0.4, "a good learning rate was found: {outcome}");
    let runs = regimen_json(&["runs", "--store", store.to_str().unwrap(), "--json"]);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 8, "one run per trial");
    let best = runs.iter().find(|r| r["run_id"] == outcome["best"]["run_id"]).unwrap();
    assert_eq!(best["status"], "finished");
    assert!(best["metrics"]["final.weight_norm"].is_object(), "the metrics file is read too: {best}");
    assert!(runs.iter().any(|r| r["status"] == "killed"), "stopped trials end killed");
}

/// Satisficing: every run records its inference latency, and a constraint on it decides which
/// trials can be best; an impossible one leaves none, and says so.
#[test]
fn constraints_on_the_recorded_latency_decide_which_trials_can_win() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = dir.path().join("fast.toml");
    std::fs::write(
        &file,
        r#"
[sweep]
trials = 3
objective = "val.loss"
constraints = ["latency.p95_ms <= 1e6"]

[train]
dataset = "spirals"
dataset_size = 200
model = "mlp"
hidden = [8]
epochs = 1

[params]
lr = "loguniform(1e-3, 1e-1)"
"#,
    )
    .unwrap();
    let (file_arg, store_arg) = (file.to_str().unwrap(), store.to_str().unwrap());
    let met = regimen_json(&["sweep", "run", file_arg, "--store", store_arg, "--json"]);
    assert!(met["best"]["run_id"].is_string() && met["infeasible"] == 0, "{met}");
    let report = regimen_json(&["sweep", "report", met["sweep_id"].as_str().unwrap(), "--store", store_arg, "--json"]);
    assert!(report["trials"].as_array().unwrap().iter().all(|t| t["violation"] == 0.0 && t["feasible"] == true));
    let runs = regimen_json(&["runs", "--store", store_arg, "--json"]);
    assert!(runs[0]["metrics"]["latency.p95_ms"].is_object(), "every run records its latency: {}", runs[0]);

    let impossible = [
        "sweep",
        "run",
        file_arg,
        "--store",
        store_arg,
        "--constraint",
        "latency.p95_ms <= 0",
        "--constraint",
        "val.acc > 2",
        "--json",
    ];
    let none = regimen_json(&impossible);
    assert_eq!((none["best"].is_null(), none["infeasible"].as_u64()), (true, Some(3)), "{none}");
    assert_eq!(none["constraints"].as_array().unwrap().len(), 3, "{none}");
    let text = regimen(&["sweep", "report", none["sweep_id"].as_str().unwrap(), "--store", store_arg]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("no completed trial meets latency.p95_ms <= 1000000"), "{text}");
}

/// The recipe's habit: one batch size for the whole sweep, the largest the heaviest configuration
/// fits; measured once, recorded, and kept when the sweep is continued.
#[test]
fn the_batch_size_from_the_heaviest_configuration_is_found_once_and_used_by_every_trial() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = dir.path().join("heavy.toml");
    std::fs::write(
        &file,
        r#"
[sweep]
trials = 3
objective = "val.loss"

[train]
dataset = "shapes"
dataset_size = 300
model = "mlp"
epochs = 1

[params]
lr = "loguniform(1e-3, 1e-1)"
hidden = [8, 4096]   # 784×4096 weights and Adam's two moments: tens of MB heavier
"#,
    )
    .unwrap();
    let (file_arg, store_arg) = (file.to_str().unwrap(), store.to_str().unwrap());
    let args = [
        "sweep",
        "run",
        file_arg,
        "--batch-size-from-heaviest",
        "--memory-limit",
        "1GiB",
        "--store",
        store_arg,
        "--json",
    ];
    let outcome = regimen_json(&args);
    let chosen = &outcome["batch_size_from_heaviest"];
    assert_eq!(chosen["params"]["hidden"], 4096, "the heavier choice: {outcome}");
    assert_eq!(chosen["params"]["lr"], 0.1, "numeric parameters at their upper bound: {outcome}");
    let batch = chosen["batch_size"].as_u64().unwrap();
    assert!(batch >= 1 && chosen["memory_model"]["bytes_per_sample"].is_f64(), "{outcome}");
    let runs = regimen_json(&["runs", "--store", store_arg, "--json"]);
    assert_eq!(runs.as_array().unwrap().len(), 3);
    for run in runs.as_array().unwrap() {
        assert_eq!(run["params"]["batch_size"].as_f64(), Some(batch as f64), "{}", run["params"]);
    }
    let again = regimen_json(&args);
    assert_eq!(again["batch_size_from_heaviest"], outcome["batch_size_from_heaviest"], "not measured again");
}

/// `regimen sweep stop` ends a running sweep's trials cleanly (checkpointed, `stale`, nothing left
/// running), and the same `sweep run` continues it to the end.
#[test]
fn a_stopped_sweep_leaves_nothing_running_and_continues_later() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = sweep_file(dir.path(), 4, "");
    let (file_arg, store_arg) = (file.to_str().unwrap(), store.to_str().unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_regimen"))
        .args(["sweep", "run", file_arg, "--store", store_arg])
        .env_remove("REGIMEN_STORE")
        .env("REGIMEN_SWEEP_LEASE_SECONDS", "0.4")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let id = loop {
        let line = stderr.next().expect("the sweep starts").unwrap();
        if let Some(rest) = line.strip_prefix("sweep ") {
            break rest.split(':').next().unwrap().to_string();
        }
    };
    // Stop while a trial trains.
    while !stderr.next().expect("a trial starts").unwrap().contains(" trial ") {}
    let stopped = regimen(&["sweep", "stop", &id, "--store", store_arg]);
    assert!(stopped.status.success(), "{}", String::from_utf8_lossy(&stopped.stderr));
    let drain = std::thread::spawn(move || stderr.map_while(Result::ok).collect::<Vec<_>>());
    assert!(child.wait().unwrap().success(), "the sweep ends when stopped: {:?}", drain.join());
    let status = regimen_json(&["sweep", "status", &id, "--store", store_arg, "--json"]);
    assert_eq!((status["status"].as_str(), &status["running"]), (Some("stopped"), &Value::Array(vec![])), "{status}");
    let outcome = run_sweep(&file, &store, "1");
    assert_eq!((outcome["status"].as_str(), total(&outcome["trials"])), (Some("finished"), 4), "{outcome}");
}

/// Hyperband in its stopping flavour (Optuna's pruners: decided at once, the trial trains on in the
/// same worker), workers pinned to devices, a parameter from the command line.
#[test]
fn hyperband_stops_trials_at_once_with_pinned_workers_and_a_command_line_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let file = sweep_file(dir.path(), 6, "promotion = false");
    let text = std::fs::read_to_string(&file).unwrap().replace("scheduler = \"asha\"", "scheduler = \"hyperband\"");
    std::fs::write(&file, text).unwrap();
    let outcome = regimen_json(&[
        "sweep",
        "run",
        file.to_str().unwrap(),
        "-j",
        "2",
        "--devices",
        "cpu,cpu",
        "--param",
        "dropout=uniform:0:0.1",
        "--store",
        store.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!((outcome["status"].as_str(), total(&outcome["trials"])), (Some("finished"), 6), "{outcome}");
    let report = regimen_json(&[
        "sweep",
        "report",
        outcome["sweep_id"].as_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--json",
    ]);
    for trial in report["trials"].as_array().unwrap() {
        let dropout = trial["params"]["dropout"].as_f64().unwrap();
        assert!((0.0..=0.1).contains(&dropout), "--param replaced the file's range: {trial}");
        assert!(["complete", "pruned"].contains(&trial["state"].as_str().unwrap()), "{trial}");
        assert_ne!(trial["state"], "paused", "the stopping flavour never pauses");
    }
    assert!(report["trials"].as_array().unwrap().iter().any(|t| t["state"] == "complete" && t["epochs"] == 4));
}
