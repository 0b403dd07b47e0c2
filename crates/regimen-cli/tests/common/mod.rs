//! Helpers for the end-to-end tests: run the real `regimen` binary, write data in real formats.

#![allow(dead_code)] // each test file uses its own subset of the helpers

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `regimen` with `args` and returns its output.
pub fn regimen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regimen"))
        .args(args)
        .env_remove("REGIMEN_STORE")
        .output()
        .expect("the regimen binary runs")
}

/// Runs `regimen` expecting success; returns stdout parsed as JSON.
pub fn regimen_json(args: &[&str]) -> serde_json::Value {
    let out = regimen(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "regimen {args:?} failed:\n{stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout)))
}

/// Trains a tiny MLP (hidden layer of 16) on 300 generated spirals into `store`, with `extra`
/// flags (which must set `--epochs`); returns its `--json` summary.
pub fn train_tiny(store: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--dataset", "spirals", "--dataset-size", "300", "--model", "mlp", "--hidden", "16"];
    args.extend_from_slice(extra);
    train_tiny_with(store, &args)
}

/// Trains with exactly `args` (which must set the data, model and `--epochs`) into `store`; returns
/// its `--json` summary.
pub fn train_tiny_with(store: &Path, args: &[&str]) -> serde_json::Value {
    let store = store.display().to_string();
    let mut all = vec!["train"];
    all.extend_from_slice(args);
    all.extend(["--store", &store, "--json"]);
    regimen_json(&all)
}

/// Runs `regimen` expecting a clean failure (non-zero exit, no panic); returns stderr.
pub fn regimen_fails(args: &[&str]) -> String {
    let out = regimen(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "regimen {args:?} should fail but succeeded:\n{stderr}");
    assert!(!stderr.contains("panicked"), "regimen {args:?} panicked:\n{stderr}");
    assert!(stderr.contains("error:"), "no error message:\n{stderr}");
    stderr
}

/// Writes an IDX file: magic `0x0000_08_NN` (unsigned bytes, NN dimensions), sizes, data.
pub fn write_idx(path: &Path, dims: &[u32], data: &[u8], gzip: bool) {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    write_maybe_gz(path, &bytes, gzip);
}

fn write_maybe_gz(path: &Path, bytes: &[u8], gzip: bool) {
    if gzip {
        let file = std::fs::File::create(path).unwrap();
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap();
    } else {
        std::fs::write(path, bytes).unwrap();
    }
}

/// A tiny learnable image task: class k has a bright vertical bar at column 2+4k.
pub fn bar_image(class: usize, jitter: usize, size: usize) -> Vec<u8> {
    let mut pixels = vec![0u8; size * size];
    let column = (2 + 4 * class + jitter) % size;
    for row in 0..size {
        pixels[row * size + column] = 255;
    }
    pixels
}

/// Writes an MNIST-style IDX folder (train and t10k pairs) with `classes` learnable classes.
pub fn write_mnist_like(dir: &Path, train: usize, test: usize, gzip: bool) {
    let suffix = if gzip { ".gz" } else { "" };
    for (prefix, n) in [("train", train), ("t10k", test)] {
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let class = i % 3;
            images.extend(bar_image(class, i % 2, 8));
            labels.push(class as u8);
        }
        write_idx(&dir.join(format!("{prefix}-images-idx3-ubyte{suffix}")), &[n as u32, 8, 8], &images, gzip);
        write_idx(&dir.join(format!("{prefix}-labels-idx1-ubyte{suffix}")), &[n as u32], &labels, gzip);
    }
}

/// Writes CIFAR-10 binary batches: 3073-byte records (label, then R, G, B planes of 32×32);
/// class k has a bright band at rows 3k..3k+3.
pub fn write_cifar_like(dir: &Path, per_batch: usize) {
    for name in ["data_batch_1.bin", "data_batch_2.bin", "test_batch.bin"] {
        let mut bytes = Vec::new();
        for i in 0..per_batch {
            let class = (i % 10) as u8;
            bytes.push(class);
            for channel in 0..3u8 {
                for p in 0..1024usize {
                    let on = p / 32 / 3 == usize::from(class);
                    bytes.push(if on { 200 } else { 20 + channel });
                }
            }
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Writes a folder of class subfolders with PNG images.
pub fn write_png_folder(dir: &Path, per_class: usize, size: u32) -> PathBuf {
    for (class, name) in ["left", "right"].iter().enumerate() {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..per_class {
            let img = image::GrayImage::from_fn(size, size, |x, _| {
                let bright = (x < size / 2) == (class == 0);
                image::Luma([if bright { 220 } else { (i * 7 % 40) as u8 }])
            });
            img.save(folder.join(format!("{i}.png"))).unwrap();
        }
    }
    dir.to_path_buf()
}

/// Writes a CSV with a header: two features and a label column `species` (two classes).
pub fn write_csv(path: &Path, rows: usize) {
    let mut text = String::from("x1,x2,species\n");
    for i in 0..rows {
        let class = i % 2;
        let x1 = class as f64 * 2.0 + (i % 7) as f64 * 0.1;
        let x2 = -(class as f64) + (i % 5) as f64 * 0.1;
        text.push_str(&format!("{x1},{x2},{}\n", if class == 0 { "setosa" } else { "virginica" }));
    }
    std::fs::write(path, text).unwrap();
}

/// Common flags for a fast run in a temporary store.
pub fn fast(store: &Path) -> Vec<String> {
    vec!["--store".into(), store.display().to_string(), "--json".into()]
}
