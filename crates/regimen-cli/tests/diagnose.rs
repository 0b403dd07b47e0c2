//! Live diagnosis end to end: a run that overfits and one that underfits get the recipe's verdict
//! and remedies while they train, in their summary, and again from `regimen diagnose RUN`.

mod common;

use common::{regimen, regimen_json};
use serde_json::Value;

fn check<'a>(checks: &'a Value, name: &str) -> &'a Value {
    checks
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {checks}"))
}

/// `regimen diagnose RUN --json` for the only run of `store`.
fn diagnose(store: &str) -> Value {
    let runs = regimen_json(&["runs", "--store", store, "--json"]);
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let out = regimen(&["diagnose", &run_id, "--store", store, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn an_overfitting_run_is_flagged_as_it_trains_with_the_high_variance_remedies() {
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().unwrap();
    // 50 training images for a 512×512 MLP: it memorizes them and the validation loss climbs.
    let out = regimen(&[
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
        "20",
        "--lr",
        "3e-3",
        "--store",
        store_arg,
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Overfitting: the validation loss has stayed above its best"),
        "warned while training:\n{stderr}"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let diagnosis = &summary["diagnosis"];
    assert_eq!(check(diagnosis, "overfitting")["status"], "warn", "{diagnosis:#}");
    let bias_variance = check(diagnosis, "bias_variance");
    assert_eq!(bias_variance["measured"]["high_variance"], true, "{bias_variance:#}");
    assert_eq!(bias_variance["measured"]["high_bias"], false, "{bias_variance:#}");
    assert!(
        bias_variance["advice"].as_str().unwrap().starts_with("High variance: get more data, regularize"),
        "{bias_variance}"
    );
    assert_eq!(check(diagnosis, "underfitting")["status"], "pass");

    // The same verdict from the store, with the evidence.
    let report = diagnose(store_arg);
    assert_eq!(report["status"], "warn", "{report:#}");
    assert_eq!(check(&report["checks"], "overfitting")["status"], "warn");
    assert_eq!(check(&report["checks"], "bias_variance")["measured"]["high_variance"], true);
    let epochs = report["evidence"]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 20);
    assert!(
        epochs[19]["metrics"]["val.loss"].as_f64().unwrap() > epochs[0]["metrics"]["val.loss"].as_f64().unwrap() * 0.9
    );
    // One gradient norm per layer (weight and bias aggregated), logged at step 1 and each epoch end.
    let grads = report["evidence"]["grad_norms"].as_object().unwrap();
    let layers: Vec<&String> = grads.keys().collect();
    assert_eq!(layers, ["(all layers)", "layers.0", "layers.1", "output"], "{grads:?}");
    assert_eq!(grads["output"]["points"], 20, "{grads:?}");
    // Predictions on the same 16 validation images at each epoch end.
    let predictions = report["evidence"]["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 20);
    assert_eq!(predictions[0]["targets"], predictions[19]["targets"], "the batch is fixed");
    assert_eq!(predictions[19]["predicted"].as_array().unwrap().len(), 16);

    // And as text, with the remedies and the prediction table.
    let runs = regimen_json(&["runs", "--store", store_arg, "--json"]);
    let text = regimen(&["diagnose", runs[0]["run_id"].as_str().unwrap(), "--store", store_arg]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("WARN  overfitting") && text.contains("regularize"), "{text}");
    assert!(text.contains("predictions on the fixed validation batch") && text.contains("ep20"), "{text}");
}

#[test]
fn a_linear_model_on_spirals_underfits_with_the_high_bias_remedies() {
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().unwrap();
    let config = store.path().join("linear.toml");
    std::fs::write(&config, "hidden = []\n").unwrap();
    let summary = regimen_json(&[
        "train",
        "--dataset",
        "spirals",
        "--model",
        "mlp",
        "--config",
        config.to_str().unwrap(),
        "--epochs",
        "10",
        "--store",
        store_arg,
        "--json",
    ]);
    let diagnosis = &summary["diagnosis"];
    let underfitting = check(diagnosis, "underfitting");
    assert_ne!(underfitting["status"], "pass", "{underfitting:#}");
    assert!(underfitting["advice"].as_str().unwrap().contains("try a bigger network"), "{underfitting}");
    let bias_variance = check(diagnosis, "bias_variance");
    assert_eq!(bias_variance["measured"]["high_bias"], true, "{bias_variance:#}");
    assert_eq!(bias_variance["measured"]["high_variance"], false, "{bias_variance:#}");
    assert_eq!(check(diagnosis, "overfitting")["status"], "pass");

    let report = diagnose(store_arg);
    assert_eq!(check(&report["checks"], "bias_variance")["measured"]["high_bias"], true);
    assert_ne!(check(&report["checks"], "underfitting")["status"], "pass");
}

#[test]
fn diagnose_explains_a_bad_target_error_and_an_unknown_run() {
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().unwrap();
    regimen_json(&["train", "--dataset", "spirals", "--model", "mlp", "--epochs", "1", "--store", store_arg, "--json"]);
    let runs = regimen_json(&["runs", "--store", store_arg, "--json"]);
    let run_id = runs[0]["run_id"].as_str().unwrap();
    let bad = common::regimen_fails(&["diagnose", run_id, "--target-error", "5", "--store", store_arg]);
    assert!(bad.contains("--target-error 5 is not a fraction"), "{bad}");
    let unknown = common::regimen_fails(&["diagnose", "nope", "--store", store_arg]);
    assert!(unknown.contains("nope"), "{unknown}");
}

#[test]
fn a_recorded_base_error_turns_bias_into_avoidable_bias_in_diagnose_and_runs() {
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().unwrap();
    common::train_tiny(store.path(), &["--epochs", "2"]);
    let before = diagnose(store_arg);
    let verdict = check(&before["checks"], "bias_variance");
    assert_eq!(verdict["measured"]["target_error"], 0.0);
    assert!(verdict["message"].as_str().unwrap().contains("over the target 0.0%"), "{verdict}");

    let set = regimen(&["dataset", "set-base-error", "spirals", "0.25", "--store", store_arg]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let after = diagnose(store_arg);
    let verdict = check(&after["checks"], "bias_variance");
    let (train, bias) =
        (verdict["measured"]["train_error"].as_f64().unwrap(), verdict["measured"]["bias"].as_f64().unwrap());
    assert!((bias - (train - 0.25)).abs() < 1e-9, "{verdict}");
    assert!(verdict["message"].as_str().unwrap().contains("over the dataset's base error 25.0%"), "{verdict}");
    let table = String::from_utf8_lossy(&regimen(&["runs", "--store", store_arg]).stdout).to_string();
    assert!(table.contains("avoidable bias") && table.contains("variance"), "{table}");
    let listed = regimen_json(&["datasets", "--store", store_arg, "--json"]);
    assert_eq!(listed[0]["base_error"], 0.25);
    let bad = common::regimen_fails(&["dataset", "set-base-error", "spirals", "25", "--store", store_arg]);
    assert!(bad.contains("not a fraction"), "{bad}");
}
