//! End-to-end: `regimen train` and `regimen eval` on built-in data and on each real file format.

mod common;

use common::*;

fn args<'a>(base: &'a [&'a str], extra: &'a [String]) -> Vec<&'a str> {
    base.iter().copied().chain(extra.iter().map(String::as_str)).collect()
}

#[test]
fn help_lists_commands_and_grouped_flags() {
    let out = regimen(&["train", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in ["Data:", "Model:", "Optimization:", "--batch-size", "--config", "--device"] {
        assert!(help.contains(needle), "train --help lacks {needle}:\n{help}");
    }
    let top = String::from_utf8_lossy(&regimen(&["--help"]).stdout).to_string();
    assert!(top.contains("train") && top.contains("eval"), "{top}");
}

#[test]
fn small_cnn_run_reports_json_saves_checkpoints_and_evaluates_test_explicitly() {
    let store = tempfile::tempdir().unwrap();
    let extra = fast(store.path());
    let json = regimen_json(&args(
        &["train", "--dataset", "shapes", "--dataset-size", "600", "--epochs", "2", "--channels", "8,16"],
        &extra,
    ));
    assert_eq!(json["status"], "finished");
    assert_eq!(json["epochs"], 2);
    assert!(json["seconds"].as_f64().unwrap() > 0.0);
    for key in ["val.acc", "val.loss", "val.macro_f1", "train.loss"] {
        assert!(json["best"][key].is_number(), "best lacks {key}: {json}");
        assert!(json["final"][key].is_number(), "final lacks {key}: {json}");
    }
    assert_eq!(json["dataset"]["name"], "shapes");
    assert_eq!(json["dataset"]["fingerprint"].as_str().unwrap().len(), 64);
    let sizes = &json["dataset"]["sizes"];
    let total: u64 = ["train", "val", "test"].iter().map(|s| sizes[s].as_u64().unwrap()).sum();
    assert_eq!(total, 600);
    for which in ["best", "last"] {
        let path = json["checkpoints"][which].as_str().unwrap();
        assert!(std::path::Path::new(path).join("model.safetensors").is_file(), "{which} checkpoint missing: {path}");
    }
    assert!(std::path::Path::new(json["final_model"]["path"].as_str().unwrap()).is_file(), "{json}");
    let run_dir = std::path::PathBuf::from(json["run_dir"].as_str().unwrap());
    assert!(run_dir.join("config.toml").is_file());
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    assert!(events.contains("\"run_started\"") && events.contains("\"run_ended\""));
    assert!(!events.contains("\"split\":\"test\""), "training must never evaluate the test split");

    let run_id = json["run_id"].as_str().unwrap();
    let store_arg = store.path().display().to_string();
    let eval = regimen_json(&["eval", run_id, "--split", "test", "--store", &store_arg, "--json"]);
    assert_eq!(eval["split"], "test");
    assert_eq!(eval["samples"], sizes["test"]);
    assert!(eval["metrics"]["test.acc"].as_f64().unwrap() >= 0.0);
    let shown = regimen(&["show", run_id, "--store", &store_arg]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("on the test split"), "test use is recorded in the run: {text}");
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    assert!(events.contains("\"split\":\"test\""), "and in its log");
}

/// Per-epoch metrics of a run: every scalar event except timings, as (key, step, value bits).
fn metric_series(run_dir: &str) -> Vec<(String, u64, u64)> {
    let events = std::fs::read_to_string(std::path::Path::new(run_dir).join("events.jsonl")).unwrap();
    events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "scalar" && !regimen_metrics::measures_the_machine(e["key"].as_str().unwrap()))
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_string(),
                e["step"].as_u64().unwrap(),
                e["value"].as_f64().unwrap().to_bits(),
            )
        })
        .collect()
}

#[test]
fn same_seed_twice_gives_bitwise_identical_metrics_and_another_seed_does_not() {
    let store = tempfile::tempdir().unwrap();
    let extra = fast(store.path());
    let run = |seed: &str| {
        regimen_json(&args(
            &[
                "train",
                "--dataset",
                "shapes",
                "--dataset-size",
                "400",
                "--epochs",
                "2",
                "--channels",
                "8",
                "--dropout",
                "0.2",
                "--augment",
                "--log-every",
                "2",
                "--seed",
                seed,
            ],
            &extra,
        ))
    };
    let (a, b, c) = (run("7"), run("7"), run("8"));
    let series_a = metric_series(a["run_dir"].as_str().unwrap());
    assert!(series_a.len() > 10, "too few metrics logged: {}", series_a.len());
    assert_eq!(series_a, metric_series(b["run_dir"].as_str().unwrap()));
    assert_ne!(series_a, metric_series(c["run_dir"].as_str().unwrap()));
}

#[test]
fn mlp_trains_on_spirals_with_sgd_and_a_schedule() {
    let store = tempfile::tempdir().unwrap();
    let extra = fast(store.path());
    let json = regimen_json(&args(
        &[
            "train",
            "--dataset",
            "spirals",
            "--model",
            "mlp",
            "--hidden",
            "64,64",
            "--epochs",
            "3",
            "--optimizer",
            "sgd",
            "--lr",
            "0.1",
            "--nesterov",
            "--schedule",
            "cosine:warmup=10",
            "--weight-decay",
            "1e-4",
            "--grad-clip",
            "5",
            "--train-eval-subset",
            "200",
            "--val-every-steps",
            "20",
        ],
        &extra,
    ));
    assert_eq!(json["status"], "finished");
    assert!(json["final"]["train_eval.acc"].is_number(), "{json}");
    assert!(json["best"]["val.acc"].as_f64().unwrap() > 0.4, "{json}");
}

#[test]
fn csv_classification_with_named_label_column() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("iris.csv");
    write_csv(&csv, 120);
    let extra = fast(&dir.path().join("store"));
    let json = regimen_json(&args(
        &[
            "train",
            "--data",
            csv.to_str().unwrap(),
            "--label",
            "species",
            "--model",
            "mlp",
            "--epochs",
            "3",
            "--lr",
            "0.01",
        ],
        &extra,
    ));
    assert_eq!(json["status"], "finished");
    assert!(json["best"]["val.acc"].as_f64().unwrap() > 0.8, "{json}");
}

#[test]
fn csv_regression_reports_r2() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("houses.csv");
    let mut text = String::from("rooms,age,price\n");
    for i in 0..200 {
        let rooms = (i % 6) as f64 + 1.0;
        let age = (i % 11) as f64 * 3.0;
        text.push_str(&format!("{rooms},{age},{}\n", 50.0 * rooms - age + (i % 3) as f64 * 0.5));
    }
    std::fs::write(&csv, text).unwrap();
    let extra = fast(&dir.path().join("store"));
    let json = regimen_json(&args(
        &[
            "train",
            "--data",
            csv.to_str().unwrap(),
            "--label",
            "price",
            "--task",
            "regression",
            "--model",
            "mlp",
            "--epochs",
            "15",
            "--lr",
            "0.01",
        ],
        &extra,
    ));
    assert!(json["final"]["val.r2"].is_number(), "{json}");
    assert_eq!(json["monitor"]["metric"], "val.loss");
    assert_eq!(json["monitor"]["mode"], "min");
}

#[test]
fn idx_folder_gzipped_uses_its_own_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    write_mnist_like(&data, 150, 30, true);
    let extra = fast(&dir.path().join("store"));
    let json = regimen_json(&args(
        &["train", "--data", data.to_str().unwrap(), "--model", "cnn", "--channels", "4", "--epochs", "2"],
        &extra,
    ));
    assert_eq!(json["dataset"]["sizes"]["test"], 30);
    assert_eq!(json["dataset"]["test_from_source"], true);
}

#[test]
fn cifar_binary_batches_train_a_small_resnet() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar_like(dir.path(), 50);
    let extra = fast(&dir.path().join("store"));
    let json = regimen_json(&args(
        &[
            "train",
            "--data",
            dir.path().to_str().unwrap(),
            "--format",
            "cifar",
            "--model",
            "resnet",
            "--depth",
            "1",
            "--width",
            "4",
            "--epochs",
            "1",
            "--batch-size",
            "8",
        ],
        &extra,
    ));
    assert_eq!(json["status"], "finished");
    assert_eq!(json["dataset"]["sizes"]["test"], 50);
}

#[test]
fn png_folder_trains_with_augmentation() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_png_folder(&dir.path().join("images"), 20, 12);
    let extra = fast(&dir.path().join("store"));
    let json = regimen_json(&args(
        &[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--channels",
            "4",
            "--epochs",
            "2",
            "--augment",
            "--augment-noise",
            "0.05",
        ],
        &extra,
    ));
    assert_eq!(json["status"], "finished");
}

#[test]
fn config_file_is_used_and_the_resolved_config_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("exp.toml");
    std::fs::write(&config, "dataset = \"spirals\"\nmodel = \"mlp\"\nepochs = 1\nhidden = [16]\n").unwrap();
    let extra = fast(&dir.path().join("store"));
    let json = regimen_json(&args(&["train", "--config", config.to_str().unwrap(), "--lr", "0.02"], &extra));
    let saved =
        std::fs::read_to_string(std::path::Path::new(json["run_dir"].as_str().unwrap()).join("config.toml")).unwrap();
    assert!(
        saved.contains("lr = 0.02") && saved.contains("hidden = [16]") && saved.contains("dataset = \"spirals\""),
        "{saved}"
    );
}

#[test]
fn diverging_run_stops_with_a_clear_reason_and_keeps_good_checkpoints() {
    let store = tempfile::tempdir().unwrap();
    let out = regimen(&[
        "train",
        "--dataset",
        "spirals",
        "--model",
        "mlp",
        "--epochs",
        "30",
        "--lr",
        "1e6",
        "--optimizer",
        "sgd",
        "--store",
        store.path().to_str().unwrap(),
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "diverged runs exit with 3:\n{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "diverged");
    assert!(json["reason"].as_str().unwrap().contains("lower the learning rate"), "{json}");
}
