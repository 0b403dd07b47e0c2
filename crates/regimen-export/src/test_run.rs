//! One run with every kind of record, shared by the unit tests of each format.

use std::collections::BTreeMap;
use std::path::Path;

use regimen_store::{
    ArtifactRecord, MetricPoint, Mode, Monitored, Note, NoteKind, ParamValue, Provenance, ReportRecord, RunDetail,
    RunRow, RunState, TaskInfo, Timestamp,
};
use serde_json::json;

/// 2024-05-01T12:00:00Z.
pub(crate) const START_MS: i64 = 1_714_564_800_000;

/// A diverged run with three `train.loss` points (0.5, +inf, NaN), one `val.acc` point (0.0), a
/// report, two notes and an artifact.
pub(crate) fn sample_run() -> RunDetail {
    let at = |ms: i64| Timestamp(START_MS + ms);
    let point = |step, wall_ms, value| MetricPoint { step, epoch: 1, wall: at(wall_ms), value };
    let series = BTreeMap::from([
        (
            "train.loss".to_string(),
            vec![point(1, 1_250, 0.5), point(2, 2_000, f64::INFINITY), point(3, 3_000, f64::NAN)],
        ),
        ("val.acc".to_string(), vec![point(1, 1_500, 0.0)]),
    ]);
    let params = BTreeMap::from([
        ("optim.lr".to_string(), ParamValue::Number(0.01)),
        ("model".to_string(), ParamValue::Text("mlp | wide".to_string())),
    ]);
    RunDetail {
        row: RunRow {
            run_id: "r1".to_string(),
            dataset: None,
            name: "mlp-baseline".to_string(),
            experiment: "baseline".to_string(),
            status: RunState::Diverged,
            reason: Some("loss became NaN".to_string()),
            monitor: Some(Monitored { metric: "val.acc".to_string(), mode: Mode::Max }),
            started_at: at(0),
            ended_at: Some(at(10_000)),
            params,
            metrics: BTreeMap::new(),
            tags: BTreeMap::from([("owner".to_string(), "ada".to_string())]),
        },
        heartbeat_at: at(9_000),
        seed: 7,
        task: Some(TaskInfo::Classification { classes: 2, majority_share: Some(0.5) }),
        config: json!({"model": "mlp | wide", "optim": {"lr": 0.01}}),
        dataset: json!({"name": "moons"}),
        provenance: Provenance {
            host: Some("gpu-box.lab".to_string()),
            command: Some("regimen train --lr 0.01".to_string()),
            git_commit: Some("abc123".to_string()),
            git_dirty: Some(true),
            sweep_id: None,
            trial_id: None,
            init_run: None,
            init_weights: None,
        },
        environment: json!({"threads": 2}),
        series,
        reports: vec![ReportRecord {
            split: "val".to_string(),
            step: 1,
            epoch: 1,
            wall: at(1_500),
            body: json!({"acc": 0.0}),
        }],
        notes: vec![
            Note { created_at: at(3_000), kind: NoteKind::Warn, body: "loss is NaN".to_string() },
            Note { created_at: at(20_000), kind: NoteKind::Note, body: "lr too **high**".to_string() },
        ],
        artifacts: vec![ArtifactRecord {
            kind: "checkpoint.last".to_string(),
            path: "runs/r1/last.safetensors".to_string(),
            bytes: 1024,
            checksum: None,
            recorded_at: at(2_500),
        }],
    }
}

/// The names in `folder`, sorted: what a write left behind.
pub(crate) fn entries(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("readable folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
