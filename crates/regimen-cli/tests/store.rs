//! End-to-end: training records runs in the store, and `runs`, `show`, `tag`, `note`, `rm`, `gc`
//! and `eval` read and change them through the real binary.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Runs `regimen` expecting success; returns stdout as text.
fn regimen_text(args: &[&str]) -> String {
    let out = regimen(args);
    assert!(out.status.success(), "regimen {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array().unwrap().iter().map(|r| r["run_id"].as_str().unwrap()).collect()
}

#[test]
fn trained_runs_are_listed_filtered_sorted_shown_annotated_evaluated_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().display().to_string();
    let fast_run = train_tiny(dir.path(), &["--epochs", "2", "--lr", "0.01"]);
    let slow_run = train_tiny(dir.path(), &["--epochs", "2", "--lr", "0.001"]);
    let (fast, slow) = (fast_run["run_id"].as_str().unwrap(), slow_run["run_id"].as_str().unwrap());
    assert!(dir.path().join("store.sqlite").is_file(), "the store lives beside the run folders");

    // Both runs, with params and each metric's best and last.
    let list = regimen_json(&["runs", "--store", &store, "--json"]);
    let mut listed = ids(&list);
    listed.sort_unstable();
    let mut expected = vec![fast, slow];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    for run in list.as_array().unwrap() {
        assert_eq!(run["status"], "finished");
        assert!(run["name"].as_str().unwrap().starts_with("mlp-spirals"), "{run}");
        assert!(run["params"]["lr"].is_number(), "{run}");
        assert_eq!(run["params"]["model"], "mlp");
        for key in ["val.acc", "val.loss", "train.loss"] {
            assert!(run["metrics"][key]["best"].is_number(), "{key} has no best: {run}");
            assert!(run["metrics"][key]["last"].is_number(), "{key} has no last: {run}");
        }
    }
    let summary_best = fast_run["best"]["val.acc"].as_f64().unwrap();
    let listed_fast = list.as_array().unwrap().iter().find(|r| r["run_id"] == fast).unwrap();
    assert_eq!(listed_fast["metrics"]["val.acc"]["best"].as_f64().unwrap(), summary_best, "store and summary agree");

    // A filter selects; a bad one points at the mistake and fails.
    let filtered = regimen_json(&["runs", "--store", &store, "--filter", "params.lr < 0.005", "--json"]);
    assert_eq!(ids(&filtered), [slow]);
    let stderr = regimen_fails(&["runs", "--store", &store, "--filter", "params.lr < and"]);
    assert!(stderr.contains('^') && stderr.contains("column 13"), "{stderr}");
    let stderr = regimen_fails(&["runs", "--store", &store, "--filter", "metrics.val.nope > 1"]);
    assert!(stderr.contains('^') && stderr.contains("val.nope"), "{stderr}");

    // Sorting follows the metric, descending with `-`.
    let sorted = regimen_json(&["runs", "--store", &store, "--sort", "-metrics.val.acc", "--json"]);
    let accs: Vec<f64> =
        sorted.as_array().unwrap().iter().map(|r| r["metrics"]["val.acc"]["best"].as_f64().unwrap()).collect();
    assert!(accs[0] >= accs[1], "{accs:?}");
    let ascending = regimen_json(&["runs", "--store", &store, "--sort", "metrics.val.acc", "--limit", "1", "--json"]);
    assert_eq!(ids(&ascending), [ids(&sorted)[1]]);

    // The table has the default columns and the chosen ones.
    let table = regimen_text(&["runs", "--store", &store]);
    for needle in ["run_id", "status", "val.acc best", "val.loss best", fast, slow, "finished"] {
        assert!(table.contains(needle), "table lacks {needle}:\n{table}");
    }
    let table = regimen_text(&["runs", "--store", &store, "--columns", "run_id,params.lr,metrics.val.loss.last"]);
    assert!(table.lines().next().unwrap().contains("val.loss last") && table.contains("0.001"), "{table}");

    // Tags and notes show up in `show`, beside the provenance and sparklines.
    regimen_text(&["tag", fast, "arch=mlp", "stage=baseline", "--store", &store]);
    let stderr = regimen_fails(&["tag", fast, "archmlp", "--store", &store]);
    assert!(stderr.contains("`archmlp`"), "{stderr}");
    regimen_text(&["note", fast, "lr 1e-2 learns faster", "--store", &store]);
    let tagged = regimen_json(&["runs", "--store", &store, "--filter", "tags.arch = 'mlp'", "--json"]);
    assert_eq!(ids(&tagged), [fast]);

    let shown = regimen_text(&["show", fast, "--store", &store]);
    let fingerprint = fast_run["dataset"]["fingerprint"].as_str().unwrap();
    for needle in [
        fast,
        "finished",
        fingerprint,
        "stage",
        "baseline",
        "lr 1e-2 learns faster",
        "checkpoint",
        "model.final",
        "seed",
        "val.acc",
    ] {
        assert!(shown.contains(needle), "show lacks {needle}:\n{shown}");
    }
    assert!(shown.chars().any(|c| ('▁'..='█').contains(&c)), "show has no sparkline:\n{shown}");
    assert!(shown.contains("train") && shown.contains("val"), "{shown}");

    // Evaluating on the test split is recorded in the store.
    regimen_json(&["eval", fast, "--split", "test", "--store", &store, "--json"]);
    let shown = regimen_text(&["show", fast, "--store", &store]);
    assert!(shown.lines().any(|l| l.trim_start().starts_with("test")), "no test report:\n{shown}");
    assert!(shown.contains("on the test split"), "no evaluation notice:\n{shown}");

    // Deleting asks, refuses without a terminal, and with --yes removes the record and the folder.
    let stderr = regimen_fails(&["rm", slow, "--store", &store]);
    assert!(stderr.contains("--yes"), "{stderr}");
    assert!(dir.path().join("runs").join(slow).is_dir());
    regimen_text(&["rm", slow, "--yes", "--store", &store]);
    assert!(!dir.path().join("runs").join(slow).exists(), "the run folder is gone");
    assert_eq!(ids(&regimen_json(&["runs", "--store", &store, "--json"])), [fast]);
    regimen_fails(&["show", slow, "--store", &store]);
    regimen_text(&["gc", "--store", &store]);
    assert_eq!(ids(&regimen_json(&["runs", "--store", &store, "--json"])), [fast]);
}

#[test]
fn reading_commands_do_not_create_a_store_and_say_when_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let missing_arg = missing.display().to_string();
    assert_eq!(regimen_json(&["runs", "--store", &missing_arg, "--json"]), Value::Array(Vec::new()));
    let stderr = regimen_fails(&["show", "abc", "--store", &missing_arg]);
    assert!(stderr.contains("no run store"), "{stderr}");
    assert!(!missing.exists(), "a reading command created {}", missing.display());
    let stderr = regimen_fails(&["runs", "--store", &missing_arg, "--sort", "-"]);
    assert!(stderr.contains('^'), "{stderr}");
}

/// Runs `regimen note RUN --edit` with `editor` as $EDITOR (and no $VISUAL).
fn note_with_editor(store: &str, run: &str, editor: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_regimen"))
        .args(["note", run, "--edit", "--store", store])
        .env_remove("VISUAL")
        .env("EDITOR", editor)
        .output()
        .unwrap()
}

/// Writes an executable shell script that stands in for a person at the editor.
fn editor_script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn note_edit_opens_the_editor_and_keeps_the_draft_when_the_editor_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_arg = store.display().to_string();
    let run = train_tiny(&store, &["--epochs", "2", "--lr", "0.01"]);
    let run = run["run_id"].as_str().unwrap();

    // An editor that fails after writing: nothing is saved, the draft stays and says so.
    let failing = editor_script(dir.path(), "failing", "printf 'half a thought\\n' >> \"$1\"; exit 3");
    let out = note_with_editor(&store_arg, run, &failing);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("exited with exit status: 3") && stderr.contains("draft is kept"),
        "{stderr}"
    );
    let draft = store.join(format!("note-{run}.md"));
    assert!(std::fs::read_to_string(&draft).unwrap().contains("half a thought"));

    // Opening it again continues the draft; the hint line is not saved, the draft is removed.
    let finishing = editor_script(dir.path(), "finishing", "printf '## lr 1e-2\\nconverges in 2 epochs\\n' >> \"$1\"");
    let out = note_with_editor(&store_arg, run, &finishing);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!draft.exists());
    let shown = regimen_text(&["show", run, "--store", &store_arg]);
    assert!(shown.contains("half a thought") && shown.contains("converges in 2 epochs"), "{shown}");
    assert!(!shown.contains("this line is removed"), "{shown}");

    // Saving only the hint cancels.
    let unchanged = editor_script(dir.path(), "unchanged", "true");
    let out = note_with_editor(&store_arg, run, &unchanged);
    assert!(String::from_utf8_lossy(&out.stderr).contains("the note is empty; nothing was saved"));
    // Text and --edit together are refused.
    let both = regimen(&["note", run, "text", "--edit", "--store", &store_arg]);
    assert!(!both.status.success() && String::from_utf8_lossy(&both.stderr).contains("cannot be used with"));
}

/// Trains a run that monitors `val.loss` with an explicit mode into `store`.
fn train_monitoring_loss(store: &str, lr: &str) -> Value {
    let flags = ["--epochs", "4", "--lr", lr, "--monitor", "val.loss", "--monitor-mode", "min", "--keep-top-k", "4"];
    train_tiny(Path::new(store), &flags)
}

#[test]
fn every_reader_reports_the_same_best_value_and_epoch_of_the_monitored_metric() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().display().to_string();
    let summary = train_monitoring_loss(&store, "0.03");
    let other = train_monitoring_loss(&store, "0.001");
    let run = summary["run_id"].as_str().unwrap();
    let best = summary["best_at"]["val.loss"]["value"].as_f64().unwrap();
    let epoch = summary["best_at"]["val.loss"]["epoch"].as_u64().unwrap();
    assert_eq!(summary["best"]["val.loss"].as_f64(), Some(best));
    assert_eq!(summary["monitor"], serde_json::json!({"metric": "val.loss", "mode": "min"}));

    // `regimen runs`.
    let list = regimen_json(&["runs", "--store", &store, "--json"]);
    let row = list.as_array().unwrap().iter().find(|r| r["run_id"] == run).unwrap();
    assert_eq!(row["monitor"], summary["monitor"]);
    assert_eq!(row["metrics"]["val.loss"]["best"].as_f64(), Some(best));
    assert_eq!(row["metrics"]["val.loss"]["best_epoch"].as_u64(), Some(epoch));

    // `regimen show`.
    let shown = regimen_text(&["show", run, "--store", &store]);
    let expected = format!("best {:.4} at epoch {epoch}", best);
    assert!(shown.contains(&expected), "`{expected}` not in:\n{shown}");

    // `regimen compare`.
    let other_id = other["run_id"].as_str().unwrap();
    let compared = regimen_json(&["compare", run, other_id, "--store", &store, "--json"]);
    assert_eq!(compared["metric"], "val.loss");
    assert_eq!(compared["metrics"]["val.loss"][0].as_f64(), Some(best));
    assert_eq!(compared["best_epochs"]["val.loss"][0].as_u64(), Some(epoch));
    let other_best = other["best"]["val.loss"].as_f64().unwrap();
    let winner = if best <= other_best { run } else { other_id };
    assert_eq!(compared["winner"], winner, "the lower val.loss wins");

    // `regimen diagnose`.
    let out = regimen(&["diagnose", run, "--store", &store, "--json"]);
    let diagnosed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(diagnosed["monitor"]["best"].as_f64(), Some(best), "{diagnosed}");
    assert_eq!(diagnosed["monitor"]["best_epoch"].as_u64(), Some(epoch));
    let overfitting = diagnosed["checks"].as_array().unwrap().iter().find(|c| c["name"] == "overfitting").unwrap();
    if let Some(seen) = overfitting["measured"]["best_epoch"].as_u64() {
        assert_eq!(seen, epoch, "the verdict sees the same best epoch: {overfitting}");
    }

    // The best checkpoint's name carries the same epoch and value.
    let checkpoint = summary["checkpoints"]["best"].as_str().unwrap();
    let name = Path::new(checkpoint).file_name().unwrap().to_str().unwrap();
    assert!(name.contains(&format!("-ep{epoch}-")) && name.ends_with(&format!("valloss{best:.4}")), "{name}");
}

#[test]
fn a_store_url_this_build_cannot_open_is_a_clear_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let train = |store: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_regimen"))
            .args(["train", "--dataset", "spirals", "--dataset-size", "200", "--epochs", "1", "--store", store])
            .current_dir(dir.path())
            .env_remove("REGIMEN_STORE")
            .env_remove(regimen_store::ARTIFACTS_ENV)
            .output()
            .unwrap()
    };
    let out = train("s3://bucket/runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no `s3` backend") && stderr.contains("postgres:// URL"), "{stderr}");
    // A team store that cannot be reached names itself, without its password, and gives up.
    let out = train("postgres://ann:s3cret@127.0.0.1:1/runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("postgres://ann:***@127.0.0.1:1/runs") && !stderr.contains("s3cret"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no folder named after the scheme, no artifact folder"
    );
}

#[test]
fn a_relative_store_records_absolute_run_paths() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regimen"))
        .args(["train", "--dataset", "spirals", "--dataset-size", "200", "--epochs", "1", "--store", "store", "--json"])
        .current_dir(dir.path())
        .env_remove("REGIMEN_STORE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_dir = std::path::Path::new(summary["run_dir"].as_str().unwrap());
    assert!(run_dir.is_absolute() && run_dir.starts_with(dir.path()), "{}", run_dir.display());
}
