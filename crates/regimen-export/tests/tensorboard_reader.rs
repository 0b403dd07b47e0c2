//! A run recorded in a real SQLite store, exported as a TensorBoard event file, read back by
//! TensorBoard's own Python reader: the only proof that TensorBoard accepts what we write.
//!
//! The interpreter is `$REGIMEN_PYTHON` (default `python3`; a relative path such as
//! `.ci/.venv/bin/python` is taken from the repository root). Without the `tensorboard` package the
//! test prints a loud notice and passes, unless `REGIMEN_REQUIRE_PYTHON_READERS=1` (as in CI),
//! where it fails and says to run `.ci/setup-python.sh`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use regimen_export::{Format, HPARAMS_TEXT_TAG, RUN_TEXT_TAG, export};
use regimen_store::{
    Mode, Monitored, NewRun, Provenance, RunDetail, RunState, RunStore, SqliteStore, TaskInfo, Timestamp, Write,
};
use serde_json::{Value, json};

/// Reads the event file with TensorBoard, prints what it found as JSON: every scalar (with its
/// value's float32 bits, so that NaN and infinities survive JSON), the text summaries, and the
/// record count after checking each record's two CRCs with TensorBoard's own `masked_crc32c`.
const READER: &str = r#"
import json, struct, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
from tensorboard.util import tensor_util

path = sys.argv[1]
data = open(path, "rb").read()
records, offset = 0, 0
while offset < len(data):
    header = data[offset:offset + 8]
    (length,) = struct.unpack("<Q", header)
    (header_crc,) = struct.unpack("<I", data[offset + 8:offset + 12])
    body = data[offset + 12:offset + 12 + length]
    (body_crc,) = struct.unpack("<I", data[offset + 12 + length:offset + 16 + length])
    assert header_crc == masked_crc32c(header), f"record {records}: length crc"
    assert body_crc == masked_crc32c(body), f"record {records}: data crc"
    offset += 16 + length
    records += 1

accumulator = EventAccumulator(path, size_guidance={"scalars": 0, "tensors": 0})
accumulator.Reload()
tags = accumulator.Tags()
bits = lambda v: struct.unpack("<I", struct.pack("<f", v))[0]
print(json.dumps({
    "records": records,
    "file_version": accumulator.file_version,
    "scalars": {
        tag: [[e.step, e.wall_time, bits(e.value)] for e in accumulator.Scalars(tag)]
        for tag in tags["scalars"]
    },
    "texts": {
        tag: [tensor_util.make_ndarray(e.tensor_proto).item().decode() for e in accumulator.Tensors(tag)]
        for tag in tags["tensors"]
    },
}))
"#;

/// `$REGIMEN_PYTHON`, default `python3`; a relative path with a folder in it
/// (`.ci/.venv/bin/python`) is taken from the repository root, since tests run in the crate's
/// folder.
fn python() -> PathBuf {
    let python = PathBuf::from(std::env::var_os("REGIMEN_PYTHON").unwrap_or_else(|| "python3".into()));
    if python.is_relative() && python.components().count() > 1 {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(python)
    } else {
        python
    }
}

/// Whether TensorBoard's reader can run; fails or skips (loudly) when it cannot.
fn tensorboard_available() -> bool {
    let python = python();
    let probe = Command::new(&python).args(["-c", "import tensorboard"]).output();
    let problem = match probe {
        Ok(output) if output.status.success() => return true,
        Ok(output) => String::from_utf8_lossy(&output.stderr).trim().lines().last().unwrap_or("no output").to_string(),
        Err(error) => format!("could not run it: {error}"),
    };
    let message = format!(
        "TensorBoard's reader is not available from `{}` ({problem}). Run `.ci/setup-python.sh` \
         and set REGIMEN_PYTHON=.ci/.venv/bin/python.",
        python.display()
    );
    if std::env::var("REGIMEN_REQUIRE_PYTHON_READERS").as_deref() == Ok("1") {
        panic!("{message}");
    }
    // Straight to the process's stderr: the test harness captures `eprintln!` of passing tests.
    let banner = "!".repeat(100);
    let _ = writeln!(std::io::stderr(), "\n{banner}\nSKIPPED tensorboard_reader: {message}\n{banner}");
    false
}

/// Writes a finished run through the store, with a NaN, infinities, zeros, a tiny value and a
/// value that float32 rounds, then reads it back as the CLI would.
fn recorded_run(root: &Path) -> RunDetail {
    let store = SqliteStore::open(root).expect("open the store");
    let started = Timestamp::parse_rfc3339("2024-05-01T12:00:00Z").expect("valid time");
    let run = NewRun {
        run_id: "run-42".to_string(),
        name: "mlp | wide".to_string(),
        experiment: "export".to_string(),
        started_at: started,
        seed: 7,
        monitor: Some(Monitored { metric: "val.acc".to_string(), mode: Mode::Max }),
        task: Some(TaskInfo::Classification { classes: 2, majority_share: None }),
        params: json!({"model": "mlp", "optim": {"lr": 0.01, "momentum": 0.9}, "epochs": 3}),
        config: json!({"model": "mlp", "optim": {"lr": 0.01, "momentum": 0.9}, "epochs": 3}),
        dataset: json!({"name": "moons", "rows": 300}),
        provenance: Provenance {
            host: Some("box.local".to_string()),
            command: Some("regimen train --lr 0.01".to_string()),
            git_commit: Some("0123abc".to_string()),
            git_dirty: Some(false),
            sweep_id: None,
            trial_id: None,
            init_run: None,
            init_weights: None,
        },
        environment: json!({}),
    };
    let loss = [2.5, 0.1, f64::NAN, f64::INFINITY, 1e-30, 0.0];
    let acc = [0.0, 0.5, 1.0 / 3.0];
    let lr = [0.01, 1e-7, -f64::INFINITY];
    let mut writes = vec![Write::Start(&run)];
    for (i, value) in loss.into_iter().enumerate() {
        let step = i as u64 + 1;
        writes.push(Write::Scalar {
            key: "train.loss",
            step,
            epoch: 1,
            wall: started.plus(Duration::from_millis(250 * step)),
            value,
        });
    }
    for (series, key) in [(acc, "val.acc"), (lr, "lr")] {
        for (i, value) in series.into_iter().enumerate() {
            let step = 2 * i as u64 + 2;
            writes.push(Write::Scalar {
                key,
                step,
                epoch: i as u64 + 1,
                wall: started.plus(Duration::from_secs(step)),
                value,
            });
        }
    }
    writes.push(Write::End { status: RunState::Finished, reason: None, at: started.plus(Duration::from_secs(10)) });
    store.write(&run.run_id, &writes).expect("write the run");
    store.get_run("run-4").expect("read the run back by prefix")
}

#[test]
fn tensorboard_reads_every_point_we_export() {
    if !tensorboard_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let run = recorded_run(&dir.path().join("store"));
    let event_file = export(&run, Format::TensorBoard, &dir.path().join("tb")).expect("export");

    let output = Command::new(python()).args(["-c", READER]).arg(&event_file).output().expect("run python");
    assert!(output.status.success(), "TensorBoard's reader failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let read: Value = serde_json::from_slice(&output.stdout).expect("the reader prints JSON");

    let points: usize = run.series.values().map(Vec::len).sum();
    assert_eq!(read["records"], json!(1 + 2 + points), "version, two texts, one record per point");
    assert_eq!(read["file_version"], json!(2.0));

    let scalars = read["scalars"].as_object().expect("scalars by tag");
    let mut tags: Vec<&String> = scalars.keys().collect();
    tags.sort();
    assert_eq!(tags, run.series.keys().collect::<Vec<_>>(), "exactly the run's metric keys");
    for (key, points) in &run.series {
        let events = scalars[key].as_array().expect("events of a tag");
        assert_eq!(events.len(), points.len(), "{key}");
        for (point, event) in points.iter().zip(events) {
            assert_eq!(event[0], json!(point.step), "{key} step");
            assert_eq!(event[1].as_f64(), Some(point.wall.0 as f64 / 1000.0), "{key} wall time at step {}", point.step);
            let bits = event[2].as_u64().and_then(|b| u32::try_from(b).ok()).expect("float32 bits");
            let value = f32::from_bits(bits);
            let expected = point.value as f32;
            if expected.is_nan() {
                assert!(value.is_nan(), "{key} at step {}: {value}, expected NaN", point.step);
            } else {
                assert_eq!(value.to_bits(), expected.to_bits(), "{key} at step {}: {value} != {expected}", point.step);
            }
        }
    }

    let texts = &read["texts"];
    let run_text = texts[RUN_TEXT_TAG][0].as_str().expect("the run's description");
    assert!(run_text.contains("| run id | run-42 |"), "{run_text}");
    assert!(run_text.contains("| name | mlp \\| wide |"), "{run_text}");
    assert!(run_text.contains("| status | finished |"), "{run_text}");
    let hparams = texts[HPARAMS_TEXT_TAG][0].as_str().expect("the hyperparameters");
    assert!(hparams.contains("| optim.lr | 0.01 |") && hparams.contains("| epochs | 3 |"), "{hparams}");
}
