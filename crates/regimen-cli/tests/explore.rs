//! `regimen explore` end to end: its answers on `shapes`, and on constructed data whose right
//! answer is known: a column that copies the label, a corner pixel that encodes the class, 30% of
//! labels flipped, a single class, and a texture task against a shape task.

mod common;

use std::path::Path;

use common::regimen;
use serde_json::Value;

/// A deterministic number in [0, 1) for `(i, salt)`.
fn unit(i: usize, salt: u64) -> f64 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs `regimen explore` with `args` into `out`; returns the exit code and the JSON report.
fn explore(args: &[&str], out: &Path) -> (Option<i32>, Value) {
    let mut all = vec!["explore", "--out", out.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let output = regimen(&all);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code(), report)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name}: {report}"))
}

/// Three well-separated blobs (`x1`, `x2`), with `flip` of the labels moved to another class and,
/// when `leak`, a column that copies the label.
fn blobs(path: &Path, n: usize, flip: f64, leak: bool) -> usize {
    let mut text = String::from(if leak { "x1,x2,leak,y\n" } else { "x1,x2,y\n" });
    let mut flipped = 0;
    for i in 0..n {
        let class = i % 3;
        let (cx, cy) = [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0)][class];
        let x = cx + (unit(i, 1) - 0.5) * 2.0;
        let y = cy + (unit(i, 2) - 0.5) * 2.0;
        let label = if unit(i, 3) < flip {
            flipped += 1;
            (class + 1 + (unit(i, 4) * 2.0) as usize) % 3
        } else {
            class
        };
        let leak = if leak { format!("{label}.0,") } else { String::new() };
        text.push_str(&format!("{x:.4},{y:.4},{leak}c{label}\n"));
    }
    std::fs::write(path, text).unwrap();
    flipped
}

#[test]
fn on_shapes_global_shape_matters_and_half_resolution_is_enough() {
    let dir = tempfile::tempdir().unwrap();
    // As the README runs it: all 10,000 images, the default probes (about 40 s on 2 cores).
    let (code, report) = explore(&["--dataset", "shapes"], dir.path());
    assert_eq!(code, Some(0), "{report}");
    let answer = check(&report, "local_or_global");
    assert!(answer["message"].as_str().unwrap().contains("global context matters"), "{answer}");
    let answer = check(&report, "downsampling");
    assert!(answer["measured"]["affordable_factor"].as_u64().unwrap() >= 2, "{answer}");
    assert_eq!(check(&report, "shortcuts")["status"], "pass");
    assert_eq!(check(&report, "label_noise")["status"], "pass", "shapes' labels are all right");
    for picture in ["examples.png", "outliers.png"] {
        assert!(image::open(dir.path().join(picture)).is_ok(), "{picture}");
    }
}

#[test]
fn a_column_that_copies_the_label_is_named_as_a_shortcut() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leak.csv");
    blobs(&data, 600, 0.3, true);
    let (code, report) = explore(&["--data", data.to_str().unwrap(), "--label", "y"], &dir.path().join("out"));
    assert_eq!(code, Some(0), "{report}");
    let shortcut = check(&report, "shortcuts");
    assert_eq!(shortcut["status"], "warn", "{shortcut}");
    assert!(shortcut["message"].as_str().unwrap().starts_with("Column `leak` alone predicts the label"), "{shortcut}");
}

#[test]
fn thirty_percent_flipped_labels_are_estimated_within_ten_points() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("noisy.csv");
    let flipped = blobs(&data, 1500, 0.3, false) as f64 / 1500.0;
    let (_, report) = explore(&["--data", data.to_str().unwrap(), "--probe-epochs", "8"], &dir.path().join("out"));
    let noise = check(&report, "label_noise");
    let estimate = noise["measured"]["estimated_share"].as_f64().unwrap();
    assert!((estimate - flipped).abs() <= 0.10, "estimated {estimate:.3}, flipped {flipped:.3}: {noise}");
    assert_eq!(noise["status"], "warn");
    assert!(!report["label_noise"]["suspects"].as_array().unwrap().is_empty());
}

#[test]
fn a_single_class_gives_a_data_report_with_a_fail_and_exit_code_4() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("one.csv");
    let rows: String = (0..500).map(|i| format!("{},{},0\n", unit(i, 1), unit(i, 2))).collect();
    std::fs::write(&data, format!("a,b,y\n{rows}")).unwrap();
    let (code, report) =
        explore(&["--data", data.to_str().unwrap(), "--task", "classification"], &dir.path().join("out"));
    assert_eq!(code, Some(4), "{report}");
    let balance = check(&report, "class_balance");
    assert_eq!(balance["status"], "fail");
    assert!(balance["message"].as_str().unwrap().contains("1 class (`0`) in 500 samples"), "{balance}");
    assert_eq!(check(&report, "finite_features")["status"], "pass", "the data report is all there");
}

/// A folder of 16×16 PNG images per class: `draw(class, i)` gives each pixel's brightness.
fn png_folder(root: &Path, classes: &[&str], per_class: usize, draw: impl Fn(usize, usize, u32, u32) -> u8) {
    for (c, name) in classes.iter().enumerate() {
        let folder = root.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..per_class {
            let picture = image::GrayImage::from_fn(16, 16, |x, y| image::Luma([draw(c, i, x, y)]));
            picture.save(folder.join(format!("{i}.png"))).unwrap();
        }
    }
}

#[test]
fn a_corner_pixel_that_encodes_the_class_is_named_as_a_shortcut() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("corner");
    png_folder(&data, &["a", "b", "c"], 80, |c, i, x, y| {
        if (x, y) == (0, 0) { (c * 120) as u8 } else { (unit(i * 256 + (y * 16 + x) as usize, c as u64) * 255.0) as u8 }
    });
    let (_, report) = explore(&["--data", data.to_str().unwrap(), "--samples", "300"], &dir.path().join("out"));
    let shortcut = check(&report, "shortcuts");
    assert_eq!(shortcut["status"], "warn", "{shortcut}");
    assert!(shortcut["message"].as_str().unwrap().contains("(row 0, column 0)"), "{shortcut}");
}

#[test]
fn patch_shuffling_does_not_hurt_a_texture_task() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("stripes");
    // Horizontal against vertical stripes, at random phases, with noise: the label is in every patch.
    png_folder(&data, &["horizontal", "vertical"], 300, |c, i, x, y| {
        let phase = (unit(i, 7 + c as u64) * 4.0) as u32;
        let along = if c == 0 { y } else { x };
        let stripe = if (along + phase) % 4 < 2 { 200.0 } else { 50.0 };
        (stripe + (unit(i * 256 + (y * 16 + x) as usize, 9) - 0.5) * 60.0) as u8
    });
    let (_, report) = explore(&["--data", data.to_str().unwrap(), "--samples", "400"], &dir.path().join("out"));
    let answer = check(&report, "local_or_global");
    assert!(answer["message"].as_str().unwrap().contains("local features suffice"), "{answer}");
}
