//! Crash safety end to end: SIGKILL at chosen points, resume, and compare bit for bit with the run
//! that was never interrupted; damaged checkpoints, a full disk, and early stopping.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{regimen, regimen_json};
use serde_json::Value;

/// A small run that exercises every random stream and every piece of state: dropout, noise
/// augmentation (prefetched batches), batch norm's running statistics, mid-epoch validation, step
/// checkpoints, a plateau schedule.
const RUN: &[&str] = &[
    "train",
    "--dataset",
    "spirals",
    "--dataset-size",
    "400",
    "--model",
    "mlp",
    "--hidden",
    "32,32",
    "--batch-norm",
    "--dropout",
    "0.2",
    "--augment-noise",
    "0.05",
    "--epochs",
    "4",
    "--batch-size",
    "16",
    "--checkpoint-every-steps",
    "5",
    "--val-every-steps",
    "7",
    "--schedule",
    "plateau:patience=0",
    "--monitor",
    "val.acc",
    "--log-every",
    "3",
];

fn with_store(args: &[&str], store: &Path) -> Vec<String> {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(["--store".to_string(), store.display().to_string()]);
    all
}

/// Runs `regimen` with a fault planned; returns its output.
fn regimen_with_fault(args: &[String], fault: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_regimen"));
    command.args(args).env_remove("REGIMEN_STORE").env_remove("REGIMEN_FAULT");
    if let Some(fault) = fault {
        command.env("REGIMEN_FAULT", fault);
    }
    command.output().expect("the regimen binary runs")
}

fn only_run_dir(store: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(store.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.remove(0)
}

/// The newest checkpoint folder (by step, read from the manifests).
fn newest_checkpoint(run_dir: &Path) -> PathBuf {
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(run_dir.join("checkpoints")).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(path.join("manifest.json")) else { continue };
        let manifest: Value = serde_json::from_str(&text).unwrap();
        let step = manifest["step"].as_u64().unwrap() * 2 + u64::from(manifest["epoch_complete"].as_bool().unwrap());
        if best.as_ref().is_none_or(|(s, _)| step > *s) {
            best = Some((step, path));
        }
    }
    best.expect("a checkpoint").1
}

/// Every metric point the store holds for the run, but timings: (key, step, value as text).
fn series(store: &Path, run_id: &str) -> Vec<(String, u64, String)> {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("run.jsonl");
    let store_arg = store.display().to_string();
    let done =
        regimen(&["export", run_id, "--format", "jsonl", "--out", file.to_str().unwrap(), "--store", &store_arg]);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let mut points: Vec<(String, u64, String)> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|v| v["type"] == "point" && !regimen_metrics::measures_the_machine(v["key"].as_str().unwrap()))
        .map(|v| (v["key"].as_str().unwrap().to_string(), v["step"].as_u64().unwrap(), v["value"].to_string()))
        .collect();
    points.sort();
    points
}

#[test]
fn sigkill_at_many_points_then_resume_gives_the_uninterrupted_run_bit_for_bit() {
    let reference = tempfile::tempdir().unwrap();
    let mut args = with_store(RUN, reference.path());
    args.push("--json".into());
    let done = regimen_with_fault(&args, None);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let expected: Value = serde_json::from_slice(&done.stdout).unwrap();
    let expected_dir = PathBuf::from(expected["run_dir"].as_str().unwrap());

    let store = tempfile::tempdir().unwrap();
    // Each fault is counted within its own process: the first kill lands after the first
    // checkpoint (step 5), the others at steps, validations and checkpoint writes of resumed runs.
    let faults = ["step:6", "validation:2", "checkpoint:3", "step:9", "validation:3"];
    let mut args = with_store(RUN, store.path());
    for (i, fault) in faults.iter().enumerate() {
        let killed = regimen_with_fault(&args, Some(fault));
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{fault} should SIGKILL the run:\n{}",
            String::from_utf8_lossy(&killed.stderr)
        );
        let run_dir = only_run_dir(store.path());
        let newest = newest_checkpoint(&run_dir);
        assert!(newest.join("model.safetensors").is_file(), "kill {i} ({fault}) left no loadable checkpoint");
        assert!(!std::fs::read_dir(run_dir.join("checkpoints")).unwrap().any(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.ends_with(".tmp")
        }));
        args = vec![
            "train".into(),
            "--resume".into(),
            run_dir.display().to_string(),
            "--store".into(),
            store.path().display().to_string(),
        ];
    }
    args.push("--json".into());
    let done = regimen_with_fault(&args, None);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let resumed: Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(resumed["status"], "finished");
    assert_eq!(resumed["steps"], expected["steps"]);
    let run_dir = only_run_dir(store.path());
    assert_eq!(
        resumed["run_id"].as_str().unwrap(),
        run_dir.file_name().unwrap().to_str().unwrap(),
        "the same run continues"
    );

    let read = |path: PathBuf| std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        read(newest_checkpoint(&run_dir).join("model.safetensors"))
            == read(newest_checkpoint(&expected_dir).join("model.safetensors")),
        "final weights differ from the uninterrupted run"
    );
    assert!(
        read(run_dir.join("model.safetensors")) == read(expected_dir.join("model.safetensors")),
        "final models differ"
    );
    let expected_series = series(reference.path(), expected["run_id"].as_str().unwrap());
    let resumed_series = series(store.path(), resumed["run_id"].as_str().unwrap());
    assert!(expected_series.len() > 50, "{}", expected_series.len());
    assert_eq!(resumed_series, expected_series, "the stored metric series differ");
    for (key, value) in expected["best"].as_object().unwrap() {
        if !regimen_metrics::measures_the_machine(key) {
            assert_eq!(&resumed["best"][key], value, "{key}");
        }
    }
}

#[test]
fn a_damaged_checkpoint_is_detected_and_the_previous_one_is_used() {
    let store = tempfile::tempdir().unwrap();
    let killed = regimen_with_fault(&with_store(RUN, store.path()), Some("step:22"));
    assert_eq!(killed.status.signal(), Some(9));
    let run_dir = only_run_dir(store.path());
    let newest = newest_checkpoint(&run_dir);
    let weights = newest.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&weights, bytes).unwrap();

    let eval = regimen(&["eval", newest.to_str().unwrap(), "--store", store.path().to_str().unwrap()]);
    assert!(!eval.status.success());
    assert!(String::from_utf8_lossy(&eval.stderr).contains("corrupt"), "{}", String::from_utf8_lossy(&eval.stderr));

    let args = ["train", "--resume", run_dir.to_str().unwrap(), "--store", store.path().to_str().unwrap(), "--json"];
    let out = regimen(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let name = newest.file_name().unwrap().to_str().unwrap();
    assert!(
        stderr.contains("skipped a damaged checkpoint")
            && stderr.contains(name)
            && stderr.contains("model.safetensors is corrupt"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "finished");
}

#[test]
fn a_run_killed_before_its_first_checkpoint_cannot_resume_and_says_so() {
    let store = tempfile::tempdir().unwrap();
    let killed = regimen_with_fault(&with_store(RUN, store.path()), Some("step:2"));
    assert_eq!(killed.status.signal(), Some(9));
    let run_dir = only_run_dir(store.path());
    let out = regimen(&["train", "--resume", run_dir.to_str().unwrap(), "--store", store.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("holds no checkpoint"), "{stderr}");
}

#[test]
fn a_full_disk_during_a_checkpoint_write_fails_clearly_and_keeps_the_previous_checkpoint() {
    let store = tempfile::tempdir().unwrap();
    // Files are written model, optimizer, state, manifest: the 6th write is the second
    // checkpoint's optimizer state.
    let out = regimen_with_fault(&with_store(RUN, store.path()), Some("disk-full:6"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "an error exits with 1: {stderr}");
    assert!(stderr.contains("No space left on device") && stderr.contains("optimizer.bpk"), "{stderr}");
    let run_dir = only_run_dir(store.path());
    let checkpoints: Vec<String> = std::fs::read_dir(run_dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(checkpoints.len(), 1, "the first checkpoint is kept, the partial one removed: {checkpoints:?}");
    assert!(run_dir.join("checkpoints").join(&checkpoints[0]).join("manifest.json").is_file());

    let runs = regimen_json(&["runs", "--store", store.path().to_str().unwrap(), "--json"]);
    assert_eq!(runs[0]["status"], "failed");
    assert!(runs[0]["reason"].as_str().unwrap_or_default().contains("No space left"), "{runs}");

    let resumed = regimen(&["train", "--resume", run_dir.to_str().unwrap(), "--store", store.path().to_str().unwrap()]);
    assert!(
        resumed.status.success(),
        "the run resumes once there is space:\n{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
}

#[test]
fn an_overfitting_run_stops_early_and_hands_over_its_best_epoch() {
    let store = tempfile::tempdir().unwrap();
    let summary = regimen_json(&[
        "train",
        "--dataset",
        "shapes",
        "--dataset-size",
        "500",
        "--val-fraction",
        "0.4",
        "--test-fraction",
        "0.5",
        "--model",
        "mlp",
        "--hidden",
        "512,512",
        "--epochs",
        "60",
        "--lr",
        "3e-3",
        "--monitor",
        "val.loss",
        "--patience",
        "4 epochs",
        "--store",
        store.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(summary["status"], "stopped_early", "{summary}");
    let epochs = summary["epochs"].as_u64().unwrap();
    assert!(epochs < 60, "{summary}");
    assert!(summary["reason"].as_str().unwrap().contains("no improvement of val.loss"), "{summary}");
    let final_model = &summary["final_model"];
    assert_eq!(final_model["restored_best"], true, "{summary}");
    assert_eq!(final_model["epoch"].as_u64().unwrap(), epochs - 4, "the best epoch is the one patience counted from");
    assert!((summary["best"]["val.loss"].as_f64().unwrap()) < summary["final"]["val.loss"].as_f64().unwrap());
}

#[test]
fn a_killed_run_is_marked_crashed_and_keeps_everything_flushed_before_the_kill() {
    let store = tempfile::tempdir().unwrap();
    // A real SIGKILL at step 25: checkpoints at steps 5..20 and the epoch end at 15 flushed events.
    let killed = regimen_with_fault(&with_store(RUN, store.path()), Some("step:25"));
    assert_eq!(killed.status.signal(), Some(9));
    let store_arg = store.path().to_str().unwrap();
    let runs = regimen_json(&["runs", "--store", store_arg, "--json"]);
    assert_eq!(runs[0]["status"], "running", "the heartbeat is still fresh: {runs}");
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let points = series(store.path(), &run_id);
    // The checkpoint at step 20 flushed everything logged before it: the loss of steps 16-18.
    assert!(points.iter().any(|(key, step, _)| key == "train.loss_step" && *step == 18), "{points:?}");
    assert!(points.iter().any(|(key, step, _)| key == "val.acc" && *step == 15), "the first epoch end is stored");

    // The store notices the silence once the heartbeat is stale (30 s by default; 0 s here, so the
    // test need not wait).
    let out = Command::new(env!("CARGO_BIN_EXE_regimen"))
        .args(["runs", "--store", store_arg, "--json"])
        .env_remove("REGIMEN_STORE")
        .env("REGIMEN_STALE_AFTER", "0")
        .output()
        .unwrap();
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs[0]["status"], "crashed", "{runs}");
    assert_eq!(series(store.path(), &run_id), points, "nothing was lost or changed");

    // A killed run can be evaluated: its checkpoints carry everything, no summary is needed.
    let evaluation = regimen_json(&["eval", &run_id, "--split", "val", "--store", store_arg, "--json"]);
    assert!(evaluation["metrics"]["val.acc"].as_f64().is_some(), "{evaluation}");
    assert_eq!(evaluation["skipped"], serde_json::json!([]), "{evaluation}");
    let resumed = regimen(&["train", "--resume", &run_id, "--store", store_arg]);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let runs = regimen_json(&["runs", "--store", store_arg, "--json"]);
    assert_eq!(runs[0]["status"], "finished", "a resumed crashed run ends finished: {runs}");
}

#[test]
fn ctrl_c_saves_a_checkpoint_records_the_run_interrupted_and_resume_continues_it() {
    let store = tempfile::tempdir().unwrap();
    let mut args = with_store(RUN, store.path());
    let epochs = args.iter().position(|a| a == "--epochs").unwrap() + 1;
    args[epochs] = "400".to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_regimen"))
        .args(&args)
        .env_remove("REGIMEN_STORE")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training is under way: the first epoch line on stderr comes after the epoch's
    // checkpoint is saved. Then press Ctrl-C.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("epoch") {
        line.clear();
        let read = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(read > 0, "the run ended before its first epoch");
    }
    let drain = std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    drain.join().unwrap().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted run exits with 130");
    let store_arg = store.path().to_str().unwrap();
    let runs = regimen_json(&["runs", "--store", store_arg, "--json"]);
    assert_eq!(runs[0]["status"], "interrupted", "{runs}");
    let run_dir = only_run_dir(store.path());
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(newest_checkpoint(&run_dir).join("state.json")).unwrap())
            .unwrap();
    assert!(state["step"].as_u64().unwrap() < 400 * 15, "stopped early: {}", state["step"]);
}

/// A sweep's promotion: paused at one rung, continued to the next, then to the end, the run is the
/// one that never paused, bit for bit.
#[test]
fn a_run_paused_at_epochs_and_continued_equals_the_uninterrupted_run() {
    let reference = tempfile::tempdir().unwrap();
    let mut args = with_store(RUN, reference.path());
    args.push("--json".into());
    let done = regimen_with_fault(&args, None);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let expected: Value = serde_json::from_slice(&done.stdout).unwrap();

    let store = tempfile::tempdir().unwrap();
    let mut args = with_store(RUN, store.path());
    args.extend(["--pause-after-epoch".into(), "1".into(), "--json".into()]);
    let paused = regimen_with_fault(&args, None);
    assert_eq!(paused.status.code(), Some(130), "{}", String::from_utf8_lossy(&paused.stderr));
    let summary: Value = serde_json::from_slice(&paused.stdout).unwrap();
    assert_eq!((summary["status"].as_str(), summary["epochs"].as_u64()), (Some("interrupted"), Some(1)));
    assert!(summary["reason"].as_str().unwrap().contains("paused after epoch 1"), "{summary}");
    let run_id = summary["run_id"].as_str().unwrap().to_string();
    let store_arg = store.path().display().to_string();
    for pause in [Some("3"), None] {
        let mut args = vec!["train", "--resume", &run_id, "--store", &store_arg, "--json"];
        if let Some(epoch) = pause {
            args.extend(["--pause-after-epoch", epoch]);
        }
        let out = regimen(&args);
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        let want = if pause.is_some() { "interrupted" } else { "finished" };
        assert_eq!(summary["status"], want, "{}", String::from_utf8_lossy(&out.stderr));
    }
    let run_dir = only_run_dir(store.path());
    let expected_dir = PathBuf::from(expected["run_dir"].as_str().unwrap());
    let read = |path: PathBuf| std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        read(run_dir.join("model.safetensors")) == read(expected_dir.join("model.safetensors")),
        "final models differ"
    );
    assert_eq!(series(store.path(), &run_id), series(reference.path(), expected["run_id"].as_str().unwrap()));
}

#[test]
fn eval_names_a_damaged_best_checkpoint_and_the_one_it_used_instead() {
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().unwrap();
    let summary = common::train_tiny(store.path(), &["--epochs", "3", "--keep-top-k", "3"]);
    let best = PathBuf::from(summary["checkpoints"]["best"].as_str().unwrap());
    let run_id = summary["run_id"].as_str().unwrap();
    let weights = best.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&weights, bytes).unwrap();

    let out = regimen(&["eval", run_id, "--split", "val", "--checkpoint", "best", "--store", store_arg, "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let evaluation: Value = serde_json::from_slice(&out.stdout).unwrap();
    let used = evaluation["checkpoint"].as_str().unwrap();
    assert_ne!(used, best.to_str().unwrap(), "the damaged checkpoint is not used");
    let best_name = best.file_name().unwrap().to_str().unwrap();
    assert!(stderr.contains(best_name) && stderr.contains("damaged") && stderr.contains(used), "{stderr}");
    let warning = evaluation["skipped"][0].as_str().unwrap();
    assert!(warning.contains(best_name) && warning.contains(used), "{warning}");

    // The evaluation is recorded in the run, warning included.
    let shown = regimen(&["show", run_id, "--store", store_arg]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("is damaged"), "{text}");
}

/// "Leave it training": a finished run continued to more epochs is the run that was started with
/// them, bit for bit, when its schedule does not depend on the number of epochs; a cosine schedule
/// is refused with advice.
#[test]
fn a_finished_run_extended_to_more_epochs_equals_the_longer_run() {
    let reference = tempfile::tempdir().unwrap();
    let longer = common::train_tiny(reference.path(), &["--epochs", "5", "--dropout", "0.1"]);
    let store = tempfile::tempdir().unwrap();
    let short = common::train_tiny(store.path(), &["--epochs", "3", "--dropout", "0.1"]);
    assert_eq!(short["status"], "finished");
    let run_id = short["run_id"].as_str().unwrap();
    let store_arg = store.path().to_str().unwrap();
    let out = regimen(&["train", "--resume", run_id, "--epochs", "5", "--store", store_arg, "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("extended from 3 to 5 epochs"), "{stderr}");
    let extended: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((extended["run_id"].as_str(), extended["epochs"].as_u64()), (Some(run_id), Some(5)), "the same run");
    let read = |dir: &str| std::fs::read(PathBuf::from(dir).join("model.safetensors")).unwrap();
    assert!(
        read(extended["run_dir"].as_str().unwrap()) == read(longer["run_dir"].as_str().unwrap()),
        "the extended run differs from the 5-epoch run"
    );
    assert_eq!(series(store.path(), run_id), series(reference.path(), longer["run_id"].as_str().unwrap()));
    let stderr = common::regimen_fails(&["train", "--resume", run_id, "--epochs", "4", "--store", store_arg]);
    assert!(stderr.contains("5 epochs already"), "{stderr}");

    let cosine = common::train_tiny(store.path(), &["--epochs", "2", "--schedule", "cosine"]);
    let cosine_id = cosine["run_id"].as_str().unwrap();
    let stderr = common::regimen_fails(&["train", "--resume", cosine_id, "--epochs", "4", "--store", store_arg]);
    assert!(stderr.contains("cosine") && stderr.contains("--init-from"), "{stderr}");
}
