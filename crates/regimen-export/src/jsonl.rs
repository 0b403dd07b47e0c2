//! A run as JSON lines: everything the store knows about it, one self-describing object a line.

use std::io::{self, Write};

use regimen_store::{ParamValue, RunDetail, RunRow};
use serde_json::{Map, Value, json};

/// The `schema_version` written in the header line; raised when a field changes meaning or goes.
pub const JSONL_SCHEMA_VERSION: u64 = 2;

/// Writes a run as JSON lines: one JSON object per line, each with a `"type"`.
///
/// Times are RFC 3339 strings in UTC with milliseconds (`"2024-05-01T12:00:01.250Z"`). JSON has
/// no NaN or infinity, so a non-finite number (a metric value, a parameter) is written as the
/// string `"NaN"`, `"inf"` or `"-inf"`; every other number is a JSON number. Lines, in order:
///
/// 1. One header, `"type": "run"`: `schema_version` ([`JSONL_SCHEMA_VERSION`]), `run_id`, `name`,
///    `experiment`, `status` (`finished`, `diverged`...), `reason` (or null), `started_at`,
///    `ended_at` (null while running), `heartbeat_at`, `seed`, `host`, `command`, `git_commit`,
///    `git_dirty` (each null when unknown), `sweep_id`, `trial_id` (null outside a sweep), `tags`
///    (object), `monitor` (`{"metric", "mode"}`, null for runs recorded before it was kept),
///    `task` (likewise), `params` (the run's flattened hyperparameters, `{"optim.lr": 0.01}`), and
///    `config`, `dataset`, `environment` as recorded.
/// 2. One `"type": "point"` per metric point: `key`, `step`, `epoch`, `wall_time`, `value`;
///    ordered by key, then as the store orders each series (step, then arrival).
/// 3. One `"type": "report"` per report, oldest first: `split`, `step`, `epoch`, `wall_time`,
///    `body` (the report object as recorded).
/// 4. One `"type": "note"` per note, oldest first: `kind` (`note` from a person, `info` or `warn`
///    from the training loop), `wall_time`, `markdown`.
/// 5. One `"type": "artifact"` per file the run produced: `kind`, `path`, `bytes`, `checksum`
///    (BLAKE3 hex, or null), `wall_time`.
///
/// Readers should skip lines whose `type` they do not know, so that later schema versions can
/// add kinds of lines.
pub fn write_jsonl(detail: &RunDetail, mut out: impl Write) -> io::Result<()> {
    write_line(&mut out, &header(detail))?;
    for (key, points) in &detail.series {
        for point in points {
            let line = json!({
                "type": "point",
                "key": key,
                "step": point.step,
                "epoch": point.epoch,
                "wall_time": point.wall.to_string(),
                "value": number(point.value),
            });
            write_line(&mut out, &line)?;
        }
    }
    for report in &detail.reports {
        let line = json!({
            "type": "report",
            "split": report.split,
            "step": report.step,
            "epoch": report.epoch,
            "wall_time": report.wall.to_string(),
            "body": report.body,
        });
        write_line(&mut out, &line)?;
    }
    for note in &detail.notes {
        let line = json!({
            "type": "note",
            "kind": note.kind.as_str(),
            "wall_time": note.created_at.to_string(),
            "markdown": note.body,
        });
        write_line(&mut out, &line)?;
    }
    for artifact in &detail.artifacts {
        let line = json!({
            "type": "artifact",
            "kind": artifact.kind,
            "path": artifact.path,
            "bytes": artifact.bytes,
            "checksum": artifact.checksum,
            "wall_time": artifact.recorded_at.to_string(),
        });
        write_line(&mut out, &line)?;
    }
    out.flush()
}

fn header(detail: &RunDetail) -> Value {
    let mut header = run_json(&detail.row);
    let fields = json!({
        "type": "run",
        "schema_version": JSONL_SCHEMA_VERSION,
        "heartbeat_at": detail.heartbeat_at.to_string(),
        "seed": detail.seed,
        "host": detail.provenance.host,
        "command": detail.provenance.command,
        "git_commit": detail.provenance.git_commit,
        "git_dirty": detail.provenance.git_dirty,
        "sweep_id": detail.provenance.sweep_id,
        "trial_id": detail.provenance.trial_id,
        "task": detail.task,
        "config": detail.config,
        "dataset": detail.dataset,
        "environment": detail.environment,
    });
    if let (Some(header), Value::Object(fields)) = (header.as_object_mut(), fields) {
        header.remove("metrics");
        header.extend(fields);
    }
    header
}

/// One run as JSON, as `regimen runs --json` lists it and as the header of a JSON-lines export
/// starts: identity, state, times, the monitored metric, every param, every metric's best and
/// last, tags. Non-finite numbers follow [`number`].
pub fn run_json(row: &RunRow) -> Value {
    let params: Map<String, Value> = row
        .params
        .iter()
        .map(|(key, value)| {
            let value = match value {
                ParamValue::Number(n) => number(*n),
                ParamValue::Text(text) => Value::String(text.clone()),
            };
            (key.clone(), value)
        })
        .collect();
    let metrics: Map<String, Value> = row
        .metrics
        .iter()
        .map(|(key, m)| {
            let best = m.best.map_or(Value::Null, number);
            let summary = json!({
                "best": best,
                "best_step": m.best_step,
                "best_epoch": m.best_epoch,
                "last": number(m.last),
                "last_step": m.last_step,
                "count": m.count,
                "min": m.min.map_or(Value::Null, number),
                "max": m.max.map_or(Value::Null, number),
            });
            (key.clone(), summary)
        })
        .collect();
    json!({
        "run_id": row.run_id,
        "name": row.name,
        "experiment": row.experiment,
        "dataset": row.dataset,
        "status": row.status.as_str(),
        "reason": row.reason,
        "started_at": row.started_at.to_string(),
        "ended_at": row.ended_at.map(|t| t.to_string()),
        "monitor": row.monitor,
        "params": params,
        "metrics": metrics,
        "tags": row.tags,
    })
}

/// A JSON number, or the name of a non-finite value as a string: the one policy for non-finite
/// numbers in Regimen's JSON (JSON has no NaN, and `null` would lose which one it was).
pub fn number(value: f64) -> Value {
    if value.is_nan() {
        Value::from("NaN")
    } else if value == f64::INFINITY {
        Value::from("inf")
    } else if value == f64::NEG_INFINITY {
        Value::from("-inf")
    } else {
        Value::from(value)
    }
}

fn write_line(out: &mut impl Write, line: &Value) -> io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_run::sample_run;

    fn lines(run: &RunDetail) -> Vec<Value> {
        let mut out = Vec::new();
        write_jsonl(run, &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.ends_with('\n'));
        text.lines().map(|line| serde_json::from_str(line).expect("each line is JSON")).collect()
    }

    #[test]
    fn the_header_describes_the_run() {
        let header = &lines(&sample_run())[0];
        assert_eq!(
            header,
            &json!({
                "type": "run", "schema_version": 2, "run_id": "r1", "name": "mlp-baseline",
                "experiment": "baseline", "status": "diverged", "reason": "loss became NaN",
                "started_at": "2024-05-01T12:00:00.000Z", "ended_at": "2024-05-01T12:00:10.000Z",
                "heartbeat_at": "2024-05-01T12:00:09.000Z", "seed": 7, "host": "gpu-box.lab",
                "monitor": {"metric": "val.acc", "mode": "max"},
                "task": {"kind": "classification", "classes": 2, "majority_share": 0.5},
                "command": "regimen train --lr 0.01", "git_commit": "abc123", "git_dirty": true,
                "sweep_id": null, "trial_id": null, "tags": {"owner": "ada"},
                "params": {"model": "mlp | wide", "optim.lr": 0.01},
                "config": {"model": "mlp | wide", "optim": {"lr": 0.01}},
                "dataset": {"name": "moons"}, "environment": {"threads": 2},
            })
        );
    }

    #[test]
    fn points_reports_notes_and_artifacts_follow_in_order() {
        let lines = lines(&sample_run());
        assert_eq!(
            lines[1..],
            [
                json!({"type": "point", "key": "train.loss", "step": 1, "epoch": 1, "wall_time": "2024-05-01T12:00:01.250Z", "value": 0.5}),
                json!({"type": "point", "key": "train.loss", "step": 2, "epoch": 1, "wall_time": "2024-05-01T12:00:02.000Z", "value": "inf"}),
                json!({"type": "point", "key": "train.loss", "step": 3, "epoch": 1, "wall_time": "2024-05-01T12:00:03.000Z", "value": "NaN"}),
                json!({"type": "point", "key": "val.acc", "step": 1, "epoch": 1, "wall_time": "2024-05-01T12:00:01.500Z", "value": 0.0}),
                json!({"type": "report", "split": "val", "step": 1, "epoch": 1, "wall_time": "2024-05-01T12:00:01.500Z", "body": {"acc": 0.0}}),
                json!({"type": "note", "kind": "warn", "wall_time": "2024-05-01T12:00:03.000Z", "markdown": "loss is NaN"}),
                json!({"type": "note", "kind": "note", "wall_time": "2024-05-01T12:00:20.000Z", "markdown": "lr too **high**"}),
                json!({"type": "artifact", "kind": "checkpoint.last", "path": "runs/r1/last.safetensors", "bytes": 1024, "checksum": null, "wall_time": "2024-05-01T12:00:02.500Z"}),
            ]
        );
    }

    #[test]
    fn non_finite_numbers_become_strings() {
        assert_eq!(number(f64::NAN), json!("NaN"));
        assert_eq!(number(f64::INFINITY), json!("inf"));
        assert_eq!(number(f64::NEG_INFINITY), json!("-inf"));
        assert_eq!(number(-0.25), json!(-0.25));
        let mut run = sample_run();
        run.row.params.insert("clip".to_string(), ParamValue::Number(f64::INFINITY));
        assert_eq!(lines(&run)[0]["params"]["clip"], json!("inf"));
    }
}
