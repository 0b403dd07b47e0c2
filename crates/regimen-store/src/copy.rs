//! Copying runs from one store to another (`regimen store copy`): a laptop's SQLite store published
//! to the team's PostgreSQL store, or a team run brought home.
//!
//! Everything goes through [`RunStore`], so any pair of backends works. A run is copied whole or
//! not at all, and a run the destination already has is left alone, which makes a copy idempotent:
//! run it again after an interruption and it finishes the job. The order protects the destination:
//! the run's folder (checkpoints, exports, pictures) is copied first, file by file through a
//! temporary name, and only then is the run recorded, in one batch, so a recorded run never points
//! at missing files. Runs still `running` are skipped: their later points would never follow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::StoreError;
use crate::layout::{RUNS_DIR, is_safe_component};
use crate::model::{NewRun, ParamValue, RunDetail, RunState, Write};
use crate::query::Query;
use crate::store::RunStore;
use regimen_fs::FileError;

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Runs recorded in the destination.
    pub copied: Vec<String>,
    /// Runs the destination already had.
    pub present: Vec<String>,
    /// Runs still running in the source, left for a later copy.
    pub running: Vec<String>,
    /// Files copied into the destination's run folders.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Copies the runs of `source` that `query` selects into `destination`.
pub fn copy_runs(source: &dyn RunStore, destination: &dyn RunStore, query: &Query) -> Result<CopyReport, StoreError> {
    let mut report = CopyReport::default();
    for row in source.list_runs(query)? {
        let id = row.run_id;
        if row.status == RunState::Running {
            report.running.push(id);
            continue;
        }
        let present = match destination.resolve(&id) {
            Ok(found) => found == id,
            Err(StoreError::RunNotFound { .. } | StoreError::AmbiguousRun { .. }) => false,
            Err(error) => return Err(error),
        };
        if let (Some(from), Some(to)) = (source.root(), destination.root()) {
            let (files, bytes) = copy_folder(&run_folder(from, &id), &run_folder(to, &id))?;
            report.files += files;
            report.bytes += bytes;
        }
        if present {
            report.present.push(id);
            continue;
        }
        let detail = source.get_run(&id)?;
        write_run(destination, &detail)?;
        for (key, value) in &detail.row.tags {
            destination.set_tag(&id, key, value)?;
        }
        report.copied.push(id);
    }
    Ok(report)
}

fn run_folder(root: &Path, id: &str) -> PathBuf {
    root.join(RUNS_DIR).join(id)
}

/// Records one run, as `source` has it, in a single batch.
fn write_run(destination: &dyn RunStore, detail: &RunDetail) -> Result<(), StoreError> {
    let row = &detail.row;
    if !is_safe_component(&row.run_id) {
        return Err(StoreError::Invalid {
            what: "run id",
            value: row.run_id.clone(),
            why: "it cannot name a run folder in the destination",
        });
    }
    // The flattened parameters flatten to themselves, so the destination lists the same params.
    let params: serde_json::Map<String, Value> = row
        .params
        .iter()
        .map(|(key, value)| {
            let value = match value {
                ParamValue::Number(n) => Value::from(*n),
                ParamValue::Text(s) => Value::from(s.as_str()),
            };
            (key.clone(), value)
        })
        .collect();
    let start = NewRun {
        run_id: row.run_id.clone(),
        name: row.name.clone(),
        experiment: row.experiment.clone(),
        started_at: row.started_at,
        seed: detail.seed,
        monitor: row.monitor.clone(),
        task: detail.task,
        params: Value::Object(params),
        config: detail.config.clone(),
        dataset: detail.dataset.clone(),
        provenance: detail.provenance.clone(),
        environment: detail.environment.clone(),
    };
    let mut batch = vec![Write::Start(&start)];
    let by_key: BTreeMap<&str, _> = detail.series.iter().map(|(k, v)| (k.as_str(), v)).collect();
    for (key, points) in by_key {
        batch.extend(points.iter().map(|p| Write::Scalar {
            key,
            step: p.step,
            epoch: p.epoch,
            wall: p.wall,
            value: p.value,
        }));
    }
    batch.extend(detail.reports.iter().map(|r| Write::Report {
        split: &r.split,
        step: r.step,
        epoch: r.epoch,
        wall: r.wall,
        body: &r.body,
    }));
    batch.extend(detail.artifacts.iter().map(|a| Write::Artifact {
        kind: &a.kind,
        path: &a.path,
        bytes: a.bytes,
        checksum: a.checksum.as_deref(),
        wall: a.recorded_at,
    }));
    // A person's note keeps its kind and time: `note` is a notice level of its own.
    batch.extend(detail.notes.iter().map(|n| Write::Notice {
        level: n.kind.as_str(),
        message: &n.body,
        wall: n.created_at,
    }));
    batch.push(Write::Heartbeat { at: detail.heartbeat_at });
    if row.status != RunState::Running {
        let at = row.ended_at.unwrap_or(detail.heartbeat_at);
        batch.push(Write::End { status: row.status, reason: row.reason.as_deref(), at });
    }
    destination.write(&row.run_id, &batch)
}

/// Copies the files under `from` into `to` that `to` lacks or holds with another size, each
/// through a temporary name; returns how many files and bytes were copied.
fn copy_folder(from: &Path, to: &Path) -> Result<(u64, u64), StoreError> {
    let io = |path: &Path, action, source| StoreError::Io(FileError { path: path.to_path_buf(), action, source });
    if !from.is_dir() {
        return Ok((0, 0));
    }
    std::fs::create_dir_all(to).map_err(|e| io(to, "create the run folder", e))?;
    let (mut files, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(from).map_err(|e| io(from, "list the run folder", e))? {
        let entry = entry.map_err(|e| io(from, "list the run folder", e))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(|e| io(&source, "inspect", e))?;
        if kind.is_dir() {
            let (f, b) = copy_folder(&source, &target)?;
            files += f;
            bytes += b;
        } else if kind.is_file() {
            let size = entry.metadata().map_err(|e| io(&source, "inspect", e))?.len();
            if std::fs::metadata(&target).is_ok_and(|m| m.len() == size) {
                continue;
            }
            let temporary = target.with_file_name(format!(".{}.copying", entry.file_name().to_string_lossy()));
            std::fs::copy(&source, &temporary).map_err(|e| io(&temporary, "copy a run file to", e))?;
            std::fs::rename(&temporary, &target).map_err(|e| io(&target, "put a copied run file in place at", e))?;
            files += 1;
            bytes += size;
        }
    }
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::conformance::sample_run;
    use crate::sqlite::SqliteStore;
    use crate::time::Timestamp;

    fn scalar(step: u64, value: f64) -> Write<'static> {
        Write::Scalar { key: "val.acc", step, epoch: 1, wall: Timestamp(step as i64), value }
    }

    /// A finished run with points, a report, a note, a tag, an artifact and a file; and a running one.
    fn fill(store: &dyn RunStore) -> Result<(), StoreError> {
        let run = sample_run("r1", 0.01, "mlp");
        let body = serde_json::json!({"acc": 0.9});
        store.write("r1", &[Write::Start(&run), scalar(1, 0.5), scalar(2, f64::NAN), scalar(3, 0.9)])?;
        store.write(
            "r1",
            &[
                Write::Report { split: "test", step: 3, epoch: 1, wall: Timestamp(9), body: &body },
                Write::Notice { level: "warn", message: "loss spiked", wall: Timestamp(5) },
                Write::Artifact {
                    kind: "checkpoint.best",
                    path: "runs/r1/checkpoints/best",
                    bytes: 4,
                    checksum: Some("ab"),
                    wall: Timestamp(7),
                },
                Write::End { status: RunState::StoppedEarly, reason: Some("patience"), at: Timestamp(10) },
            ],
        )?;
        store.add_note("r1", "**tried** a smaller lr")?;
        store.set_tag("r1", "stage", "baseline")?;
        if let Some(root) = store.root() {
            let folder = root.join("runs/r1/checkpoints/best");
            std::fs::create_dir_all(&folder).map_err(|e| StoreError::WriterGone { reason: e.to_string() })?;
            std::fs::write(folder.join("model.safetensors"), b"abcd")
                .map_err(|e| StoreError::WriterGone { reason: e.to_string() })?;
        }
        store.write(
            "r2",
            &[Write::Start(&sample_run("r2", 0.1, "cnn")), Write::Heartbeat { at: Timestamp(i64::MAX / 2) }],
        )?;
        Ok(())
    }

    fn open(dir: &Path) -> Result<Arc<dyn RunStore>, StoreError> {
        Ok(Arc::new(SqliteStore::open(dir)?))
    }

    #[test]
    fn a_copy_is_whole_faithful_and_idempotent() -> Result<(), StoreError> {
        let dirs = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
        let (source, destination) = (open(dirs.0.path())?, open(dirs.1.path())?);
        fill(source.as_ref())?;
        let all = Query::parse(None, None, None)?;
        let report = copy_runs(source.as_ref(), destination.as_ref(), &all)?;
        assert_eq!(
            (report.copied, report.running, report.files, report.bytes),
            (vec!["r1".to_string()], vec!["r2".to_string()], 1, 4)
        );
        let (before, after) = (source.get_run("r1")?, destination.get_run("r1")?);
        assert_eq!(after.row, before.row);
        assert_eq!(
            (after.seed, after.task, &after.config, &after.dataset),
            (before.seed, before.task, &before.config, &before.dataset)
        );
        assert_eq!((&after.provenance, &after.environment), (&before.provenance, &before.environment));
        assert_eq!(format!("{:?}", after.series), format!("{:?}", before.series), "NaN points included");
        assert_eq!(
            (&after.reports, &after.notes, &after.artifacts),
            (&before.reports, &before.notes, &before.artifacts)
        );
        assert_eq!(
            std::fs::read(dirs.1.path().join("runs/r1/checkpoints/best/model.safetensors")).ok(),
            Some(b"abcd".to_vec())
        );
        let again = copy_runs(source.as_ref(), destination.as_ref(), &all)?;
        assert_eq!((again.copied.len(), again.present, again.files), (0, vec!["r1".to_string()], 0), "nothing twice");
        Ok(())
    }
}
