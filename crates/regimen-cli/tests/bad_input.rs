//! End-to-end: bad input gives one clear error naming the file, line or value, a non-zero exit,
//! and never a panic.

mod common;

use common::*;

fn train_on(data: &std::path::Path, extra: &[&str]) -> String {
    let store = tempfile::tempdir().unwrap();
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--store",
        store.path().to_str().unwrap(),
        "--epochs",
        "1",
        "--model",
        "mlp",
    ];
    args.extend_from_slice(extra);
    regimen_fails(&args)
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = train_on(&dir.path().join("nope.csv"), &[]);
    assert!(stderr.contains("nope.csv"), "{stderr}");
}

#[test]
fn malformed_csv_row_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "a,b,label\n1,2,x\n3,oops,y\n").unwrap();
    let stderr = train_on(&csv, &[]);
    assert!(stderr.contains("bad.csv") && stderr.contains('3') && stderr.contains("oops"), "{stderr}");
}

#[test]
fn missing_label_column_lists_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("data.csv");
    write_csv(&csv, 10);
    let stderr = train_on(&csv, &["--label", "colour"]);
    assert!(stderr.contains("colour") && stderr.contains("species"), "{stderr}");
}

#[test]
fn nan_feature_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("nan.csv");
    std::fs::write(&csv, "a,b,label\n1,2,x\n3,NaN,y\n4,5,x\n").unwrap();
    let stderr = train_on(&csv, &[]);
    assert!(stderr.contains("nan.csv") && stderr.contains("NaN") && stderr.contains('3'), "{stderr}");
}

#[test]
fn label_outside_the_declared_classes() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("data.csv");
    write_csv(&csv, 10);
    let stderr = train_on(&csv, &["--label", "species", "--classes", "setosa,versicolor"]);
    assert!(stderr.contains("virginica"), "{stderr}");
}

#[test]
fn wrong_idx_magic_shows_what_was_found() {
    let dir = tempfile::tempdir().unwrap();
    write_mnist_like(dir.path(), 20, 10, false);
    let images = dir.path().join("train-images-idx3-ubyte");
    let mut bytes = std::fs::read(&images).unwrap();
    bytes[2] = 0x0D; // float data type instead of unsigned bytes
    std::fs::write(&images, bytes).unwrap();
    let stderr = train_on(dir.path(), &[]);
    assert!(stderr.contains("train-images-idx3-ubyte") && stderr.to_lowercase().contains("magic"), "{stderr}");
}

#[test]
fn images_of_mixed_sizes_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_png_folder(&dir.path().join("images"), 3, 10);
    image::GrayImage::new(12, 12).save(data.join("left").join("big.png")).unwrap();
    let stderr = train_on(&data, &[]);
    assert!(stderr.contains("big.png"), "{stderr}");
}

#[test]
fn empty_split_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("tiny.csv");
    write_csv(&csv, 4);
    let stderr = train_on(&csv, &["--label", "species", "--val-fraction", "0.01", "--test-fraction", "0.01"]);
    assert!(stderr.contains("split") && stderr.contains('0'), "{stderr}");
}

#[test]
fn unknown_builtin_dataset_lists_the_builtins() {
    let store = tempfile::tempdir().unwrap();
    let stderr = regimen_fails(&["train", "--dataset", "mnist", "--store", store.path().to_str().unwrap()]);
    assert!(stderr.contains("shapes") && stderr.contains("spirals"), "{stderr}");
}

#[test]
fn cnn_on_tabular_data_explains_the_mismatch() {
    let store = tempfile::tempdir().unwrap();
    let stderr =
        regimen_fails(&["train", "--dataset", "spirals", "--model", "cnn", "--store", store.path().to_str().unwrap()]);
    assert!(stderr.contains("--model mlp"), "{stderr}");
}

#[test]
fn unknown_device_and_missing_gpu_backend() {
    let store = tempfile::tempdir().unwrap();
    let s = store.path().to_str().unwrap();
    let stderr = regimen_fails(&["train", "--device", "tpu", "--store", s]);
    assert!(stderr.contains("tpu"), "{stderr}");
    let stderr = regimen_fails(&["train", "--device", "cuda", "--store", s]);
    assert!(stderr.contains("--features cuda"), "{stderr}");
}

#[test]
fn evaluating_an_unknown_run() {
    let store = tempfile::tempdir().unwrap();
    let stderr = regimen_fails(&["eval", "nope", "--store", store.path().to_str().unwrap()]);
    assert!(stderr.contains("nope"), "{stderr}");
}
