//! Dataset manifests end to end: two CSV files with different class names trained as one named
//! dataset, its lineage in `show`, `datasets` and `compare`, and the errors and warnings about
//! sources that do not fit together.

mod common;

use std::path::Path;

use common::{regimen, regimen_fails, regimen_json};

/// A CSV of `n` points of two noisy blobs, classes named `names`, shifted by `offset`.
fn blobs(path: &Path, n: usize, names: [&str; 2], offset: f32) {
    let mut text = String::from("x1,x2,y\n");
    for i in 0..n {
        let class = i % 2;
        let jitter = ((i * 37 % 101) as f32 / 101.0 - 0.5) * 0.8;
        let (x, y) = if class == 0 { (-1.0 + jitter, 0.5 - jitter) } else { (1.0 - jitter, -0.5 + jitter) };
        text.push_str(&format!("{},{},{}\n", x + offset, y, names[class]));
    }
    std::fs::write(path, text).unwrap();
}

const MANIFEST: &str = r#"
name = "blobs-two-labs"

[[sources]]
name = "lab-a"
path = "a.csv"
label = "y"

[[sources]]
name = "lab-b"
path = "b.csv"
label = "y"
label_map = { links = "left", rechts = "right" }
"#;

#[test]
fn a_manifest_of_two_csv_files_trains_and_records_both_sources() {
    let dir = tempfile::tempdir().unwrap();
    blobs(&dir.path().join("a.csv"), 200, ["left", "right"], 0.0);
    blobs(&dir.path().join("b.csv"), 150, ["links", "rechts"], 0.05);
    let manifest = dir.path().join("dataset.toml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let store = dir.path().join("store");
    let store_arg = store.to_str().unwrap();
    let train = |file: &Path| {
        regimen_json(&[
            "train",
            "--dataset-file",
            file.to_str().unwrap(),
            "--model",
            "mlp",
            "--hidden",
            "8",
            "--epochs",
            "5",
            "--lr",
            "0.03",
            "--store",
            store_arg,
            "--json",
        ])
    };
    let first = train(&manifest);
    assert!(first["best"]["val.acc"].as_f64().unwrap() > 0.9, "{first}");
    let id = first["run_id"].as_str().unwrap();

    let shown = String::from_utf8_lossy(&regimen(&["show", id, "--store", store_arg]).stdout).to_string();
    assert!(shown.contains("dataset    blobs-two-labs · fingerprint "), "{shown}");
    for (name, file, total) in [("lab-a", "a.csv", 200), ("lab-b", "b.csv", 150)] {
        let line =
            shown.lines().find(|l| l.contains(&format!("source   {name} · "))).unwrap_or_else(|| panic!("{shown}"));
        assert!(line.contains(file) && line.contains(&format!("{total} samples · train/val/test ")), "{line}");
        let split: Vec<usize> = line.rsplit(' ').next().unwrap().split('/').map(|n| n.parse().unwrap()).collect();
        assert_eq!(split.iter().sum::<usize>(), total, "{line}");
        assert!(split.iter().all(|&n| n > 0), "{line}");
    }

    // One source changed: another dataset, told apart by `compare` and listed by `datasets`.
    blobs(&dir.path().join("b.csv"), 150, ["links", "rechts"], 0.3);
    let second = train(&manifest);
    let other = second["run_id"].as_str().unwrap();
    let compared = String::from_utf8_lossy(&regimen(&["compare", id, other, "--store", store_arg]).stdout).to_string();
    let differs = compared.split("dataset differs:").nth(1).unwrap_or_else(|| panic!("{compared}"));
    let differs = differs.split("\n\n").next().unwrap();
    assert!(differs.contains("fingerprint") && differs.contains("source lab-b"), "{compared}");
    assert!(!differs.contains("source lab-a"), "lab-a did not change: {compared}");
    let datasets = regimen_json(&["datasets", "--store", store_arg, "--json"]);
    let datasets = datasets.as_array().unwrap();
    assert_eq!(datasets.len(), 2, "{datasets:?}");
    assert!(datasets.iter().all(|d| d["name"] == "blobs-two-labs" && d["sources"].as_array().unwrap().len() == 2));
    let lab_a: Vec<&serde_json::Value> = datasets.iter().map(|d| &d["sources"][0]["fingerprint"]).collect();
    let lab_b: Vec<&serde_json::Value> = datasets.iter().map(|d| &d["sources"][1]["fingerprint"]).collect();
    assert!(lab_a[0] == lab_a[1] && lab_b[0] != lab_b[1], "only lab-b changed: {datasets:?}");
}

#[test]
fn sources_that_do_not_fit_together_are_an_error_and_a_lopsided_source_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    blobs(&dir.path().join("a.csv"), 200, ["left", "right"], 0.0);
    std::fs::write(dir.path().join("b.csv"), "x1,x3,y\n1,2,links\n2,3,rechts\n").unwrap();
    let manifest = dir.path().join("dataset.toml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let store = dir.path().join("store");
    let args = |extra: &[&str]| {
        let mut args = vec!["train", "--dataset-file", manifest.to_str().unwrap(), "--model", "mlp", "--epochs", "1"];
        args.extend_from_slice(extra);
        args.extend(["--store", store.to_str().unwrap()]);
        args.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let stderr = regimen_fails(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        stderr.contains("a.csv) and `lab-b` (") && stderr.contains("b.csv) have different feature columns"),
        "{stderr}"
    );

    // One sample only: it lands in one split, and the run says so (and `check` reports it).
    std::fs::write(dir.path().join("b.csv"), "x1,x2,y\n-1,0.5,links\n").unwrap();
    let out = regimen(&args(&["--json"]).iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: source `lab-b`: 1 of its 1 samples are in "), "{stderr}");
    let checks = dir.path().join("checks-store");
    let check = regimen(&[
        "check",
        "--dataset-file",
        manifest.to_str().unwrap(),
        "--model",
        "mlp",
        "--json",
        "--store",
        checks.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let sources = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "sources").unwrap();
    assert_eq!(sources["status"], "warn", "{sources}");
}
