//! The team store end to end: the real binary against a real PostgreSQL server (started by
//! `.ci/run`; see `regimen_store::postgres::testing`), with run folders in an artifact folder.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use regimen_artifacts::conformance::TestBucket;
use regimen_store::postgres::testing::TestDatabase;
use serde_json::Value;

/// Runs `regimen` in folder `cwd` with run folders in `artifacts`.
fn regimen_at(cwd: &Path, artifacts: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regimen"))
        .args(args)
        .current_dir(cwd)
        .env_remove("REGIMEN_STORE")
        .env(regimen_store::ARTIFACTS_ENV, artifacts)
        .output()
        .expect("the regimen binary runs")
}

fn json_at(cwd: &Path, artifacts: &Path, args: &[&str]) -> Value {
    let out = regimen_at(cwd, artifacts, args);
    assert!(out.status.success(), "regimen {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn a_run_trains_into_postgres_resumes_and_reads_back_from_another_folder() {
    let Some(database) = TestDatabase::create() else { return };
    let url = database.url();
    let (laptop, elsewhere, artifacts) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let tiny = ["--dataset", "spirals", "--dataset-size", "300", "--model", "mlp", "--hidden", "16"];
    let mut args = vec!["train"];
    args.extend(tiny);
    args.extend(["--epochs", "2", "--store", url, "--json"]);
    let trained = json_at(laptop.path(), artifacts.path(), &args);
    assert_eq!(trained["status"], "finished", "{trained}");
    let run_id = trained["run_id"].as_str().unwrap();
    let run_dir = artifacts.path().join("runs").join(run_id);
    assert!(run_dir.join("checkpoints").is_dir(), "checkpoints go to the artifact folder");
    assert!(!laptop.path().join(".regimen").exists() && !artifacts.path().join("store.sqlite").exists());

    // Another folder (another machine with the same database and artifact folder) sees everything.
    let listed = json_at(elsewhere.path(), artifacts.path(), &["runs", "--store", url, "--json"]);
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["run_id"], run_id);
    assert!(rows[0]["metrics"]["val.acc"]["best"].as_f64().unwrap() > 0.0, "{listed}");

    let resumed = json_at(
        elsewhere.path(),
        artifacts.path(),
        &["train", "--resume", run_id, "--epochs", "5", "--store", url, "--json"],
    );
    assert_eq!(resumed["status"], "finished", "{resumed}");
    assert_eq!(resumed["run_id"], run_id, "a resume continues the same run");
    assert!(resumed["steps"].as_u64() > trained["steps"].as_u64(), "{resumed}");

    let tagged = regimen_at(elsewhere.path(), artifacts.path(), &["tag", run_id, "team=vision", "--store", url]);
    assert!(tagged.status.success(), "{}", String::from_utf8_lossy(&tagged.stderr));
    // The team's run comes home with its folder, and a second copy does nothing.
    let home = laptop.path().join("home");
    let home_arg = home.to_str().unwrap();
    let copied = json_at(laptop.path(), artifacts.path(), &["store", "copy", url, home_arg, "--json"]);
    assert_eq!(copied["copied"], serde_json::json!([run_id]), "{copied}");
    assert!(home.join("runs").join(run_id).join("checkpoints").is_dir());
    let again = json_at(laptop.path(), artifacts.path(), &["store", "copy", url, home_arg, "--json"]);
    assert_eq!((again["copied"].as_array().unwrap().len(), again["files"].as_u64()), (0, Some(0)), "{again}");
    let home_runs = json_at(laptop.path(), artifacts.path(), &["runs", "--store", home_arg, "--json"]);
    let team_runs = json_at(laptop.path(), artifacts.path(), &["runs", "--store", url, "--json"]);
    assert_eq!(home_runs[0]["metrics"], team_runs[0]["metrics"], "the copy lists as the original");

    let shown = regimen_at(laptop.path(), artifacts.path(), &["show", run_id, "--store", url]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success() && text.contains("team") && text.contains("vision"), "{text}");
    assert!(text.contains("finished"), "{text}");
}

#[test]
fn two_workers_share_a_sweep_through_postgres() {
    let Some(database) = TestDatabase::create() else { return };
    let url = database.url();
    let (dir, artifacts) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = dir.path().join("tiny.toml");
    std::fs::write(
        &file,
        r#"
[sweep]
trials = 4
sampler = "random"
scheduler = "asha"
objective = "val.acc"
seed = 5

[train]
dataset = "spirals"
dataset_size = 300
model = "mlp"
hidden = [16]
epochs = 3
log_every = 5

[params]
lr = "loguniform(1e-3, 1e-1)"
"#,
    )
    .unwrap();
    let outcome = json_at(
        dir.path(),
        artifacts.path(),
        &["sweep", "run", file.to_str().unwrap(), "-j", "2", "--store", url, "--json"],
    );
    assert_eq!(outcome["status"], "finished", "{outcome}");
    let counts = outcome["trials"].as_object().unwrap();
    assert_eq!(counts.values().map(|n| n.as_u64().unwrap()).sum::<u64>(), 4, "{outcome}");
    assert!(counts.keys().all(|state| state == "complete" || state == "pruned"), "{outcome}");
    let best = outcome["best"]["run_id"].as_str().unwrap();
    assert!(artifacts.path().join("runs").join(best).join("checkpoints").is_dir(), "{outcome}");
    let listed = json_at(dir.path(), artifacts.path(), &["runs", "--store", url, "--json"]);
    assert!(listed.as_array().unwrap().len() >= 4, "every trial is a run in the team store: {listed}");
}

/// Runs `regimen` as a machine whose run folders are in `cache`, with checkpoints shared on S3.
fn regimen_on(machine: &Path, bucket: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regimen"))
        .args(args)
        .current_dir(machine)
        .env_remove("REGIMEN_STORE")
        .env(regimen_store::ARTIFACTS_ENV, bucket)
        .env(regimen_store::CACHE_ENV, machine.join("cache"))
        .output()
        .expect("the regimen binary runs")
}

#[test]
fn a_run_continues_on_a_machine_that_did_not_write_its_checkpoints() {
    let (Some(database), Some(bucket)) = (TestDatabase::create(), TestBucket::create()) else { return };
    let (url, bucket_url) = (database.url(), bucket.url());
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let json = |out: Output| -> Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let tiny = ["train", "--dataset", "spirals", "--dataset-size", "300", "--model", "mlp", "--hidden", "16"];
    let mut args = tiny.to_vec();
    args.extend(["--epochs", "3", "--checkpoint-every-steps", "3", "--store", url, "--json"]);
    let trained = json(regimen_on(first.path(), &bucket_url, &args));
    let run_id = trained["run_id"].as_str().unwrap();

    // The first machine's checkpoints are on S3, published with their index, pruned ones gone.
    let store = regimen_artifacts::open(&bucket_url).unwrap();
    let listed = store.list(&format!("runs/{run_id}/checkpoints")).unwrap();
    let published: Vec<&str> =
        listed.iter().filter_map(|(key, _)| key.strip_suffix(&format!("/{}", regimen_artifacts::INDEX))).collect();
    let local: Vec<String> = std::fs::read_dir(first.path().join("cache/runs").join(run_id).join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(published.len(), local.len(), "S3 keeps what the local folder keeps: {listed:?} vs {local:?}");
    assert!(!published.is_empty());
    let final_model = std::fs::read(first.path().join("cache/runs").join(run_id).join("model.safetensors")).unwrap();
    assert_eq!(
        store.get(&format!("runs/{run_id}/model.safetensors")).unwrap(),
        Some(final_model),
        "the final model too"
    );

    // The second machine has nothing local; it continues the run from S3.
    let resumed = json(regimen_on(
        second.path(),
        &bucket_url,
        &["train", "--resume", run_id, "--epochs", "5", "--store", url, "--json"],
    ));
    assert_eq!((resumed["status"].as_str(), resumed["run_id"].as_str()), (Some("finished"), Some(run_id)), "{resumed}");
    assert!(resumed["steps"].as_u64() > trained["steps"].as_u64(), "{resumed}");
    assert!(second.path().join("cache/runs").join(run_id).join("checkpoints").is_dir());

    // A damaged object on S3 is refused with a message naming it, and nothing half-fetched stays.
    let third = tempfile::tempdir().unwrap();
    let index_key = store
        .list(&format!("runs/{run_id}/checkpoints"))
        .unwrap()
        .into_iter()
        .find(|(key, _)| key.ends_with("model.safetensors"))
        .map(|(key, _)| key)
        .unwrap();
    store.put(&index_key, b"not the weights").unwrap();
    let out = regimen_on(third.path(), &bucket_url, &["train", "--resume", run_id, "--epochs", "6", "--store", url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("does not match") && stderr.contains("model.safetensors"),
        "{stderr}"
    );
}

/// A process of one "machine" of the test: its own working folder and cache, the shared database
/// and bucket; its ` trial ` lines on stderr are forwarded to `events`.
fn start_on(
    machine: &Path,
    bucket: &str,
    args: &[&str],
    events: &std::sync::mpsc::Sender<String>,
) -> std::process::Child {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_regimen"))
        .args(args)
        .current_dir(machine)
        .env_remove("REGIMEN_STORE")
        .env(regimen_store::ARTIFACTS_ENV, bucket)
        .env(regimen_store::CACHE_ENV, machine.join("cache"))
        .env("REGIMEN_SWEEP_LEASE_SECONDS", "5")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let events = events.clone();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains(" trial ") {
                let _ = events.send(line);
            }
        }
    });
    child
}

fn kill_machine(child: &mut std::process::Child) {
    let group = format!("-{}", child.id());
    assert!(Command::new("kill").args(["-KILL", "--", &group]).status().unwrap().success());
    let _ = child.wait();
}

#[test]
fn sixteen_trials_on_four_machines_killed_at_random_finish_with_nothing_lost_or_doubled() {
    let (Some(database), Some(bucket)) = (TestDatabase::create(), TestBucket::create()) else { return };
    let (url, bucket_url) = (database.url(), bucket.url());
    let machines: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let file = machines[0].path().join("sweep.toml");
    std::fs::write(
        &file,
        r#"
[sweep]
trials = 16
sampler = "random"
scheduler = "asha"
objective = "val.acc"
seed = 11
max_retries = 5

[train]
dataset = "spirals"
dataset_size = 300
model = "mlp"
hidden = [16]
epochs = 4
log_every = 5

[params]
lr = "loguniform(1e-3, 1e-1)"
"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let (events, seen) = std::sync::mpsc::channel();
    let wait_for = |count: usize| {
        for _ in 0..count {
            seen.recv_timeout(std::time::Duration::from_secs(120)).expect("the sweep goes on");
        }
    };
    // Machine 0 creates the sweep and works on it; the others join as workers.
    let mut children: Vec<Option<std::process::Child>> = vec![None, None, None, None];
    children[0] =
        Some(start_on(machines[0].path(), &bucket_url, &["sweep", "run", file, "-j", "1", "--store", url], &events));
    wait_for(1);
    let listed = json_at(machines[0].path(), machines[0].path(), &["sweep", "ls", "--store", url, "--json"]);
    let sweep_id = listed[0]["sweep_id"].as_str().unwrap().to_string();
    let worker = ["sweep", "worker", sweep_id.as_str(), "--store", url];
    for m in 1..4 {
        children[m] = Some(start_on(machines[m].path(), &bucket_url, &worker, &events));
    }
    // Kills at fixed trial events, so that a failure replays: two workers mid-flight, then the
    // machine that created the sweep and another; each killed worker comes back.
    for (after, victims) in [(6, [1, 2]), (6, [0, 3])] {
        wait_for(after);
        for m in victims {
            kill_machine(children[m].as_mut().unwrap());
            children[m] = (m != 0).then(|| start_on(machines[m].path(), &bucket_url, &worker, &events));
        }
    }
    let finished =
        regimen_on(machines[0].path(), &bucket_url, &["sweep", "run", file, "-j", "1", "--store", url, "--json"]);
    assert!(finished.status.success(), "{}", String::from_utf8_lossy(&finished.stderr));
    let outcome: Value = serde_json::from_slice(&finished.stdout).unwrap();
    assert_eq!(outcome["status"], "finished", "{outcome}");
    for child in children.iter_mut().flatten() {
        let status = child.wait().unwrap();
        assert!(status.success(), "a worker ends cleanly once the sweep is finished: {status}");
    }

    let report =
        json_at(machines[1].path(), machines[1].path(), &["sweep", "report", &sweep_id, "--store", url, "--json"]);
    let trials = report["trials"].as_array().unwrap();
    let numbers: Vec<u64> = trials.iter().map(|t| t["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..16).collect::<Vec<_>>(), "every trial once: {report}");
    for trial in trials {
        assert!(
            ["complete", "pruned"].contains(&trial["state"].as_str().unwrap()),
            "nothing lost or left running: {trial}"
        );
    }
    let status =
        json_at(machines[1].path(), machines[1].path(), &["sweep", "status", &sweep_id, "--store", url, "--json"]);
    assert_eq!(status["running"], Value::Array(vec![]), "no zombie trials");
    // Some run trained on one machine and went on, from its S3 checkpoints, on another.
    let folders = |m: usize| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(machines[m].path().join("cache/runs"))
            .map(|entries| {
                entries
                    .map(|e| e.unwrap())
                    .filter(|e| e.path().join("checkpoints").is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let per_machine: Vec<_> = (0..4).map(folders).collect();
    let shared =
        (0..4).any(|a| (0..4).any(|b| a != b && per_machine[a].intersection(&per_machine[b]).next().is_some()));
    assert!(shared, "a trial continued on another machine from S3: {per_machine:?}");
    let promoted = trials.iter().filter(|t| t["state"] == "complete" && t["epochs"] == 4).count();
    assert!(promoted >= 1, "{report}");
    // A promotion (the same attempt going on, unlike a retry) that another machine continued.
    let promoted_elsewhere = trials.iter().any(|t| {
        let run = t["run_id"].as_str().unwrap_or_default();
        t["attempts"] == 1 && per_machine.iter().filter(|runs| runs.contains(run)).count() >= 2
    });
    assert!(promoted_elsewhere, "a promoted trial resumed from another machine's S3 checkpoint: {report}");
    let retried: Vec<u64> = trials.iter().filter_map(|t| t["attempts"].as_u64()).collect();
    assert!(retried.iter().any(|&a| a >= 2), "a killed machine's trial was retried elsewhere: {report}");
}
