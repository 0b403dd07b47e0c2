//! `regimen find batch-size` end to end: real probe processes, real peak memory.

mod common;

use common::{regimen_fails, regimen_json};

const TINY: &[&str] = &["--dataset", "spirals", "--dataset-size", "400", "--model", "mlp", "--hidden", "32"];

#[test]
fn the_largest_batch_within_a_memory_limit_is_found_with_a_memory_model() {
    let store = tempfile::tempdir().unwrap();
    let mut args = vec!["find", "batch-size", "--memory-limit", "2GiB", "--json", "--store"];
    args.push(store.path().to_str().unwrap());
    args.extend_from_slice(TINY);
    let found = regimen_json(&args);
    // 400 spirals leave 240 training samples; a tiny MLP fits them all in one batch.
    assert_eq!(
        (found["batch_size"].as_u64(), found["capped_by_training_split"].as_bool()),
        (Some(240), Some(true)),
        "{found}"
    );
    let probes = found["probes"].as_array().unwrap();
    let sizes: Vec<u64> = probes.iter().map(|p| p["batch_size"].as_u64().unwrap()).collect();
    assert_eq!(&sizes[..4], [1, 2, 4, 8], "doubling from 1: {sizes:?}");
    assert!(probes.iter().all(|p| p["fits"] == true && p["peak_rss_bytes"].as_u64().unwrap() > 1_000_000));
    assert!(found["memory_model"]["fixed_bytes"].as_f64().unwrap() > 0.0, "{found}");
    assert!(found["memory_model"]["bytes_per_sample"].is_f64(), "{found}");
    assert!(std::fs::read_dir(store.path()).map_or(true, |mut d| d.next().is_none()), "probes record no runs");
}

#[test]
fn a_limit_below_what_even_one_sample_needs_is_a_clear_error_not_a_crash() {
    let store = tempfile::tempdir().unwrap();
    let mut args = vec!["find", "batch-size", "--memory-limit", "1MiB", "--store", store.path().to_str().unwrap()];
    args.extend_from_slice(TINY);
    let stderr = regimen_fails(&args);
    assert!(stderr.contains("even a batch of 1 needs") && stderr.contains("--memory-limit"), "{stderr}");
}

#[test]
fn a_limit_between_probes_stops_the_doubling_and_searches_below_it() {
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().to_str().unwrap();
    let shapes = ["--dataset", "shapes", "--dataset-size", "1200", "--channels", "8,16"];
    let mut probe_args = vec!["find", "batch-size", "--memory-limit", "64GiB", "--json", "--store", store_arg];
    probe_args.extend_from_slice(&shapes);
    let unlimited = regimen_json(&probe_args);
    let model = &unlimited["memory_model"];
    let (fixed, per_sample) = (model["fixed_bytes"].as_f64().unwrap(), model["bytes_per_sample"].as_f64().unwrap());
    assert!(per_sample > 0.0, "memory grows with the batch: {unlimited}");
    // A limit the model puts at about 300 samples (of 720): the answer must fit and be near it.
    let limit = ((fixed + 300.0 * per_sample) / 0.9) as u64;
    let limit_text = limit.to_string();
    let mut args = vec!["find", "batch-size", "--memory-limit", &limit_text, "--json", "--store", store_arg];
    args.extend_from_slice(&shapes);
    let found = regimen_json(&args);
    let batch = found["batch_size"].as_u64().unwrap();
    assert!((100..720).contains(&batch), "{found}");
    assert_eq!(found["capped_by_training_split"], false);
    let over: Vec<&serde_json::Value> =
        found["probes"].as_array().unwrap().iter().filter(|p| p["fits"] == false).collect();
    assert!(!over.is_empty(), "some probe went over the budget: {found}");
    for probe in over {
        assert!(probe["batch_size"].as_u64().unwrap() > batch, "only larger batches fail: {found}");
    }
}

/// Spirals that a short run can learn: 1,200 training samples, 75 steps an epoch at batch 16.
const LEARNABLE: &[&str] =
    &["--dataset", "spirals", "--dataset-size", "2000", "--model", "mlp", "--hidden", "32,32", "--batch-size", "16"];

#[test]
fn the_suggested_learning_rate_beats_a_hundred_times_more_and_less_in_a_short_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let plot = dir.path().join("lr.svg");
    let mut args = vec!["find", "lr", "--json", "--store", store.to_str().unwrap(), "--plot", plot.to_str().unwrap()];
    args.extend_from_slice(LEARNABLE);
    let found = regimen_json(&args);
    let lr = found["lr"].as_f64().unwrap();
    assert!((1e-8..1.0).contains(&lr), "{found}");
    let spread = &found["spread"];
    assert!(spread["low"].as_f64().unwrap() <= lr && lr <= spread["high"].as_f64().unwrap(), "{found}");
    assert_eq!(found["tests"].as_array().unwrap().len(), 3, "three seeds");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.contains("learning rate (log scale)") && svg.contains("suggestion"), "the plot marks it");
    let loss_at = |rate: f64| {
        let rate = format!("{rate}");
        let mut train = vec!["--epochs", "1", "--lr", rate.as_str(), "--seed", "7"];
        train.extend_from_slice(LEARNABLE);
        let summary = common::train_tiny_with(&store, &train);
        summary["best"]["val.loss"].as_f64().unwrap_or(f64::INFINITY)
    };
    let (at, above, below) = (loss_at(lr), loss_at(lr * 100.0), loss_at(lr / 100.0));
    assert!(at < above && at < below, "val.loss {at} at {lr:e}, {above} at 100×, {below} at 1/100×");
}

#[test]
fn the_range_test_only_reads_pretrained_weights_and_repeats_itself_exactly() {
    let store = tempfile::tempdir().unwrap();
    let summary = common::train_tiny(store.path(), &["--epochs", "1"]);
    let run_dir = std::path::PathBuf::from(summary["run_dir"].as_str().unwrap());
    let snapshot = || {
        let mut files: Vec<(String, Vec<u8>)> = walk(&run_dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors" || e == "bin" || e == "json"))
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = snapshot();
    assert!(before.iter().any(|(p, _)| p.ends_with("model.safetensors")));
    let weights = run_dir.join("model.safetensors");
    let store_arg = store.path().to_str().unwrap();
    let args = [
        "find",
        "lr",
        "--json",
        "--steps",
        "30",
        "--seeds",
        "1",
        "--init-from",
        weights.to_str().unwrap(),
        "--dataset",
        "spirals",
        "--dataset-size",
        "300",
        "--model",
        "mlp",
        "--hidden",
        "16",
        "--store",
        store_arg,
    ];
    let first = regimen_json(&args);
    let second = regimen_json(&args);
    assert_eq!(first["tests"][0]["points"], second["tests"][0]["points"], "same seed, same data, same curve");
    assert!(before == snapshot(), "the run's weights, optimizer state and checkpoints are unchanged");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}
