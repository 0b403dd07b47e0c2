//! End-to-end: `regimen check` on setups built to pass and to fail its checks, through the real
//! binary: the exit code, the JSON report and the saved artifacts.

mod common;

use std::path::Path;

use common::*;
use regimen_data::SplitMix64;
use serde_json::Value;

/// Runs `regimen check ARGS --json --store STORE`; returns the exit code and the report.
fn check(store: &Path, args: &[&str]) -> (i32, Value) {
    let store = store.display().to_string();
    let mut all = vec!["check", "--json", "--store", store.as_str()];
    all.extend_from_slice(args);
    let out = regimen(&all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "regimen {all:?} panicked:\n{stderr}");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout of {all:?} is not JSON ({e}):\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout))
    });
    (out.status.code().unwrap_or(-1), report)
}

/// The check named `name` in a report.
fn named<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn status<'a>(report: &'a Value, name: &str) -> &'a str {
    named(report, name)["status"].as_str().unwrap_or_default()
}

/// The checks that did not pass, for assertion messages.
fn not_passing(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .filter(|c| c["status"] != "pass")
                .map(|c| format!("{} {}: {}", c["status"], c["name"], c["message"]))
                .collect()
        })
        .unwrap_or_default()
}

/// A small, quick CNN setup on `shapes` (the checks' budgets cut to match).
const SMALL: &[&str] = &[
    "--dataset-size",
    "600",
    "--channels",
    "4,8",
    "--batch-size",
    "32",
    "--steps",
    "40",
    "--overfit-steps",
    "150",
    "--determinism-steps",
    "3",
];

#[test]
fn help_lists_the_train_flags_and_the_budgets() {
    let out = regimen(&["check", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    for needle in ["--steps", "--overfit-steps", "--out", "--json", "--lr", "--model", "Check:", "Data:"] {
        assert!(help.contains(needle), "check --help lacks {needle}:\n{help}");
    }
}

#[test]
fn the_quickstart_setup_passes_everything_and_saves_its_report() {
    let store = tempfile::tempdir().unwrap();
    let (code, report) = check(store.path(), &[]);
    assert_eq!(report["status"], "pass", "{:#?}", not_passing(&report));
    assert_eq!(code, 0);
    let data_checks = ["finite_features", "class_balance", "leakage", "sample_grid"];
    for name in data_checks.into_iter().chain(regimen_train::check::MODEL_CHECKS) {
        let check = named(&report, name);
        assert!(check["message"].as_str().is_some_and(|m| !m.is_empty()), "{check}");
        assert!(check["measured"].is_object(), "{check}");
    }
    // ln 5 at init, measured on the real model.
    let init = named(&report, "loss_at_init");
    assert!((init["measured"]["expected"].as_f64().unwrap() - 5f64.ln()).abs() < 1e-3, "{init}");
    // The artifacts land in <store>/checks/<time>/.
    let checks = std::fs::read_dir(store.path().join("checks")).unwrap().map(|e| e.unwrap().path()).collect::<Vec<_>>();
    assert_eq!(checks.len(), 1, "{checks:?}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(checks[0].join("check.json")).unwrap()).unwrap();
    assert_eq!(saved, report);
    assert!(checks[0].join("first_batch.png").is_file());
}

#[test]
fn a_learning_rate_of_10_is_flagged_as_exploding_and_exits_4() {
    let store = tempfile::tempdir().unwrap();
    let out = store.path().join("lr10");
    let out_arg = out.display().to_string();
    let mut args = SMALL.to_vec();
    args.extend(["--lr", "10", "--out", &out_arg]);
    let (code, report) = check(store.path(), &args);
    assert_eq!(code, 4, "a FAIL verdict exits 4, not 1 (an error): {:#?}", not_passing(&report));
    assert_eq!(report["status"], "fail");
    let flow = named(&report, "gradient_flow");
    assert_eq!(flow["status"], "fail", "{flow}");
    assert!(flow["message"].as_str().unwrap().starts_with("Exploding"), "{flow}");
    assert_eq!(status(&report, "update_ratio"), "fail");
    assert_eq!(status(&report, "overfit_one_batch"), "fail");
    // The data is fine: only model checks fail.
    assert_eq!(status(&report, "finite_features"), "pass");
    assert!(out.join("check.json").is_file() && out.join("first_batch.png").is_file());
}

/// A CSV of `rows` distinct rows of two features in two well-separated classes (row `i` has class
/// `i % 2`); `label` picks each row's label (0 or 1) from its index, and `informative` whether the
/// features carry the class (otherwise every row has the same features).
fn write_table(path: &Path, rows: usize, label: impl Fn(usize) -> usize, informative: bool) {
    let mut text = String::from("x1,x2,label\n");
    for i in 0..rows {
        let class = i % 2;
        let (x1, x2) = if informative {
            // Golden-ratio sequences: every row distinct, spread evenly over the unit square.
            (class as f64 * 3.0 + (i as f64 * 0.618_034).fract(), (i as f64 * 0.754_878).fract() - class as f64)
        } else {
            (0.5, 0.25)
        };
        text.push_str(&format!("{x1},{x2},{}\n", ["a", "b"][label(i)]));
    }
    std::fs::write(path, text).unwrap();
}

const TABLE: &[&str] = &[
    "--model",
    "mlp",
    "--hidden",
    "32,32",
    "--batch-size",
    "32",
    "--steps",
    "60",
    "--overfit-steps",
    "200",
    "--determinism-steps",
    "3",
];

#[test]
fn a_learnable_table_passes_the_model_checks() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("table.csv");
    write_table(&csv, 800, |i| i % 2, true);
    let data = csv.display().to_string();
    let mut args = TABLE.to_vec();
    args.extend(["--data", &data, "--label", "label"]);
    let (code, report) = check(dir.path(), &args);
    for name in ["overfit_one_batch", "decreasing_loss", "input_independent_baseline", "gradient_flow", "determinism"] {
        assert_eq!(status(&report, name), "pass", "{name}: {:#?}", not_passing(&report));
    }
    assert_eq!(code, i32::from(report["status"] == "fail"));
}

/// Writes an MNIST-style IDX folder of 8x8 images of three learnable classes (a bar whose column
/// gives the class, over faint per-image noise so that no two images are equal), each labelled
/// `label(i, class)`.
fn write_images(dir: &Path, train: usize, test: usize, label: impl Fn(usize, usize) -> usize) {
    for (prefix, n, offset) in [("train", train, 0), ("t10k", test, train)] {
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        for i in offset..offset + n {
            let class = i % 3;
            let mut pixels = bar_image(class, 0, 8);
            for (p, pixel) in pixels.iter_mut().enumerate() {
                *pixel = pixel.saturating_add((hash((i * 64 + p) as u64) % 61) as u8);
            }
            images.extend(pixels);
            labels.push(label(i, class) as u8);
        }
        write_idx(&dir.join(format!("{prefix}-images-idx3-ubyte")), &[n as u32, 8, 8], &images, false);
        write_idx(&dir.join(format!("{prefix}-labels-idx1-ubyte")), &[n as u32], &labels, false);
    }
}

/// A well-mixed hash: the first word of a SplitMix64 stream seeded with `x`.
fn hash(x: u64) -> u64 {
    SplitMix64::new(x).next_u64()
}

const IMAGES: &[&str] =
    &["--model", "mlp", "--hidden", "64", "--batch-size", "32", "--steps", "60", "--determinism-steps", "3"];

#[test]
fn shuffled_labels_overfit_one_batch_but_stay_at_chance() {
    let dir = tempfile::tempdir().unwrap();
    // Labels drawn independently of the images: a pseudo-random class per sample.
    write_images(dir.path(), 900, 150, |i, _| (hash(i as u64 ^ 0xABCD) % 3) as usize);
    let data = dir.path().display().to_string();
    let mut args = IMAGES.to_vec();
    args.extend(["--data", &data]);
    let (code, report) = check(dir.path(), &args);
    assert_eq!(status(&report, "overfit_one_batch"), "pass", "{:#?}", not_passing(&report));
    let baseline = named(&report, "input_independent_baseline");
    assert_eq!(baseline["status"], "fail", "{baseline}");
    assert!(baseline["message"].as_str().unwrap().contains("not using its input"), "{baseline}");
    assert_eq!(code, 4);

    // The same images with their true labels pass both.
    let dir = tempfile::tempdir().unwrap();
    write_images(dir.path(), 900, 150, |_, class| class);
    let data = dir.path().display().to_string();
    let mut args = IMAGES.to_vec();
    args.extend(["--data", &data]);
    let (_, report) = check(dir.path(), &args);
    for name in ["overfit_one_batch", "input_independent_baseline", "decreasing_loss"] {
        assert_eq!(status(&report, name), "pass", "{name}: {:#?}", not_passing(&report));
    }
}

#[test]
fn inputs_that_carry_nothing_fail_the_input_independent_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("blind.csv");
    write_table(&csv, 800, |i| i % 2, false);
    let data = csv.display().to_string();
    let mut args = TABLE.to_vec();
    args.extend(["--data", &data, "--label", "label"]);
    let (code, report) = check(dir.path(), &args);
    assert_eq!(status(&report, "input_independent_baseline"), "fail", "{:#?}", not_passing(&report));
    assert_eq!(
        status(&report, "overfit_one_batch"),
        "fail",
        "identical inputs with different labels cannot be memorized"
    );
    assert_eq!(code, 4);
}

#[test]
fn resume_and_init_from_are_refused() {
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().display().to_string();
    let stderr = regimen_fails(&["check", "--store", &store_arg, "--resume", "abc"]);
    assert!(stderr.contains("drop --resume"), "{stderr}");
    let stderr = regimen_fails(&["check", "--store", &store_arg, "--init-from", "x.safetensors"]);
    assert!(stderr.contains("drop --init-from"), "{stderr}");
    let stderr = regimen_fails(&["check", "--store", &store_arg, "--steps", "2"]);
    assert!(stderr.contains("`steps` is 2"), "{stderr}");
}

#[test]
fn without_model_a_table_gets_an_mlp_and_check_reports_the_data_and_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("table.csv");
    write_table(&csv, 300, |i| i % 2, true);
    let data = csv.display().to_string();
    let store = dir.path().display().to_string();

    // Training picks the MLP for vector data and says so.
    let out = regimen(&["train", "--data", &data, "--label", "label", "--epochs", "1", "--store", &store, "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("model: mlp, chosen for vector data"), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["model"], "mlp");

    // `regimen check` with no --model: the data report, then the model checks.
    let flags = ["--steps", "20", "--overfit-steps", "50", "--determinism-steps", "2"];
    let mut args = vec!["--data", data.as_str(), "--label", "label"];
    args.extend(flags);
    let (_, report) = check(dir.path(), &args);
    for name in ["finite_features", "class_balance", "model_choice", "loss_at_init", "overfit_one_batch"] {
        assert!(named(&report, name)["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}");
    }
    assert!(named(&report, "model_choice")["message"].as_str().unwrap().contains("mlp"));
}

#[test]
fn a_single_class_is_a_fail_in_the_users_terms_with_the_whole_data_report() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("one.csv");
    write_table(&csv, 200, |_| 0, true);
    let data = csv.display().to_string();
    let mut args = TABLE.to_vec();
    args.extend(["--data", &data, "--label", "label", "--task", "classification"]);
    let (code, report) = check(dir.path(), &args);
    assert_eq!(code, 4, "{report:#}");
    let balance = named(&report, "class_balance");
    assert_eq!(balance["status"], "fail");
    assert!(balance["message"].as_str().unwrap().contains("1 class (`a`) in 200 samples"), "{balance}");
    for name in ["finite_features", "valid_targets", "duplicates", "leakage"] {
        assert_eq!(status(&report, name), "pass", "{name} is still reported");
    }
}
