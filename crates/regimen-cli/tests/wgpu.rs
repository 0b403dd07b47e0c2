//! The wgpu backend end to end: a short MLP run on `--device wgpu` trains, through every path that
//! is not the CPU's (Burn's own modules and Adam instead of Regimen's CPU kernels). Compiled only
//! with `--features wgpu`; CI runs it on Mesa's software Vulkan driver (lavapipe), which needs no
//! GPU: slow, but the same wgpu and CubeCL code a GPU runs.
#![cfg(feature = "wgpu")]

mod common;

use serde_json::Value;

#[test]
fn an_mlp_trains_on_the_wgpu_device_and_its_loss_falls() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let json = common::train_tiny(&store, &["--device", "wgpu", "--epochs", "6", "--lr", "0.01"]);
    assert_eq!(json["status"], "finished", "{json}");
    let run_id = json["run_id"].as_str().unwrap();

    let file = dir.path().join("run.jsonl");
    let store_arg = store.display().to_string();
    let out = common::regimen(&[
        "export",
        run_id,
        "--format",
        "jsonl",
        "--out",
        file.to_str().unwrap(),
        "--store",
        &store_arg,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let run = lines.iter().find(|v| v["type"] == "run").expect("the run record");
    assert_eq!(run["config"]["device"], "wgpu", "{run}");
    let losses: Vec<f64> = lines
        .iter()
        .filter(|v| v["type"] == "point" && v["key"] == "train.loss")
        .map(|v| v["value"].as_f64().unwrap())
        .collect();
    assert!(losses.len() >= 6, "one training loss per epoch at least: {losses:?}");
    // Three classes: ln 3 ≈ 1.10 at chance. On the CPU the same run goes 1.08 → 0.80.
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(first.is_finite() && last.is_finite(), "{losses:?}");
    assert!(last < 0.9 * first, "the training loss did not fall: {losses:?}");
}
