//! The [`RunStore`] conformance suite: one set of cases that every implementation must pass.
//!
//! Each case is a public function taking a [`Harness`] (a fresh, empty store plus the manual clock
//! it was built with). [`conformance_suite!`](crate::conformance_suite) turns the whole list into
//! one `#[test]` per case for an implementation:
//!
//! ```ignore
//! regimen_store::conformance_suite!(postgres, |clock| Some((Arc::new(open_test_db(clock)), Box::new(guard))));
//! ```
//!
//! The factory must build the store with the given clock and a crash threshold of
//! [`STALE_AFTER`]. Other crates get this module with the `conformance` feature.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::error::StoreError;
use crate::model::{GcOptions, NewRun, NoteKind, ParamValue, RunState, Write};
use crate::query::Query;
use crate::sink::{SinkOptions, StoreSink};
use crate::store::RunStore;
use crate::sweep::{Claim, NewSweep, SweepStatus, TrialState, TrialUpdate};
use crate::time::{Clock, ManualClock, Timestamp};
use regimen_events::{Event, EventSink, Provenance, RunStart, RunStatus};
use regimen_fs::FileError;
use regimen_metrics::{Mode, Monitored, TaskInfo};

/// The crash threshold the factory must give the store.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// Where the manual clock starts: 2024-05-01T12:00:00Z.
pub const T0: Timestamp = Timestamp(1_714_564_800_000);

/// Builds a fresh, empty store that reads time from the clock; the second value is kept alive
/// as long as the store (a temporary folder, a database guard). `None` when the backend's server is
/// not available to this test run: the case is skipped (the factory says why on stderr, and fails
/// instead where the environment requires the backend).
pub type Factory = fn(Arc<ManualClock>) -> Option<(Arc<dyn RunStore>, Box<dyn Any>)>;

/// A fresh store under test and the clock it reads.
pub struct Harness {
    /// The store.
    pub store: Arc<dyn RunStore>,
    /// Its clock, starting at [`T0`].
    pub clock: Arc<ManualClock>,
    _keep: Box<dyn Any>,
}

impl Harness {
    /// Builds a harness from a factory; `None` when the factory's backend is not available.
    pub fn new(factory: Factory) -> Option<Harness> {
        let clock = Arc::new(ManualClock::new(T0));
        let (store, keep) = factory(Arc::clone(&clock))?;
        Some(Harness { store, clock, _keep: keep })
    }

    fn start(&self, run: &NewRun) -> Result<(), StoreError> {
        self.store.write(&run.run_id, &[Write::Start(run)])
    }
}

/// A start record with the given id, learning rate and model name.
pub fn sample_run(run_id: &str, lr: f64, model: &str) -> NewRun {
    NewRun {
        run_id: run_id.to_string(),
        name: format!("{model}-{run_id}"),
        experiment: "baseline".to_string(),
        started_at: T0,
        seed: u64::MAX - 1,
        monitor: Some(Monitored { metric: "val.acc".to_string(), mode: Mode::Max }),
        task: Some(TaskInfo::Classification { classes: 2, majority_share: Some(0.5) }),
        params: json!({"lr": lr, "model": model, "optim": {"momentum": 0.9, "nesterov": true}, "data": null}),
        config: json!({"lr": lr, "model": model, "optim": {"momentum": 0.9, "nesterov": true}, "data": null, "store": "/x"}),
        dataset: json!({"name": "moons", "fingerprint": "f00d"}),
        provenance: Provenance {
            host: Some("box".to_string()),
            command: Some("regimen train".to_string()),
            git_commit: Some("0123abc".to_string()),
            git_dirty: Some(false),
            sweep_id: None,
            trial_id: None,
            init_run: None,
            init_weights: None,
        },
        environment: json!({"threads": 2}),
    }
}

fn scalar(key: &str, step: u64, value: f64) -> Write<'_> {
    Write::Scalar { key, step, epoch: step / 10 + 1, wall: T0.plus(Duration::from_millis(step)), value }
}

fn ids(store: &dyn RunStore, filter: Option<&str>, sort: Option<&str>) -> Result<Vec<String>, StoreError> {
    let query = Query::parse(filter, sort, None)?;
    Ok(store.list_runs(&query)?.into_iter().map(|r| r.run_id).collect())
}

/// A started run reads back with everything it was started with.
pub fn start_then_get(h: &Harness) -> Result<(), StoreError> {
    let mut run = sample_run("r1", 0.01, "mlp");
    run.provenance.sweep_id = Some("sweep-1".into());
    run.provenance.trial_id = Some("7".into());
    run.provenance.init_run = Some("r0".into());
    run.provenance.init_weights = Some("runs/r0/checkpoints/best/model.safetensors (blake3 0123456789abcdef)".into());
    h.start(&run)?;
    let detail = h.store.get_run("r1")?;
    assert_eq!(detail.row.run_id, "r1");
    assert_eq!(detail.row.name, "mlp-r1");
    assert_eq!(detail.row.experiment, "baseline");
    assert_eq!(detail.row.status, RunState::Running);
    assert_eq!(detail.row.started_at, T0);
    assert_eq!(detail.row.ended_at, None);
    assert_eq!(detail.heartbeat_at, T0);
    assert_eq!(detail.row.params.get("lr"), Some(&ParamValue::Number(0.01)));
    assert_eq!(detail.row.params.get("model"), Some(&ParamValue::Text("mlp".into())));
    assert_eq!(detail.row.params.get("optim.momentum"), Some(&ParamValue::Number(0.9)));
    assert_eq!(detail.row.params.get("optim.nesterov"), Some(&ParamValue::Text("true".into())));
    assert!(!detail.row.params.contains_key("data"));
    assert!(!detail.row.params.contains_key("store"), "params are the hyperparameters, not the whole config");
    assert_eq!(detail.provenance, run.provenance);
    assert_eq!(detail.seed, u64::MAX - 1);
    assert_eq!((detail.row.monitor, detail.task), (run.monitor, run.task));
    assert_eq!((detail.config, detail.dataset, detail.environment), (run.config, run.dataset, run.environment));
    assert!(
        detail.series.is_empty() && detail.reports.is_empty() && detail.notes.is_empty() && detail.artifacts.is_empty()
    );
    Ok(())
}

/// A second start with the same id, writes to unknown runs and unsafe ids are refused.
pub fn bad_writes_are_refused(h: &Harness) -> Result<(), StoreError> {
    h.start(&sample_run("r1", 0.01, "mlp"))?;
    assert!(matches!(h.start(&sample_run("r1", 0.02, "cnn")), Err(StoreError::DuplicateRun { .. })));
    assert!(matches!(h.store.write("nope", &[scalar("loss", 1, 1.0)]), Err(StoreError::RunNotFound { .. })));
    for bad in ["", "..", "a/b"] {
        let result = h.start(&sample_run(bad, 0.1, "mlp"));
        assert!(matches!(result, Err(StoreError::Invalid { .. })), "{bad:?}: {result:?}");
    }
    let other = sample_run("r2", 0.1, "mlp");
    assert!(matches!(h.store.write("r3", &[Write::Start(&other)]), Err(StoreError::Invalid { .. })));
    h.store.write("r1", &[])?;
    Ok(())
}

/// A batch that fails part-way leaves nothing behind.
pub fn batches_are_atomic(h: &Harness) -> Result<(), StoreError> {
    h.start(&sample_run("r1", 0.01, "mlp"))?;
    let again = sample_run("r1", 0.01, "mlp");
    let result = h.store.write("r1", &[scalar("train.loss", 1, 0.5), Write::Start(&again)]);
    assert!(result.is_err());
    let fresh = sample_run("r2", 0.01, "mlp");
    assert!(h.store.write("r2", &[Write::Start(&fresh), scalar("train.loss", 1, 0.5), Write::Start(&fresh)]).is_err());
    assert!(h.store.get_run("r1")?.series.is_empty());
    assert!(matches!(h.store.get_run("r2"), Err(StoreError::RunNotFound { .. })));
    Ok(())
}

/// Metric points come back in step order; the summary has best by direction and last by step,
/// across batches, with NaN kept in the series but never best.
pub fn metric_series_and_summaries(h: &Harness) -> Result<(), StoreError> {
    h.start(&sample_run("r1", 0.01, "mlp"))?;
    h.store.write(
        "r1",
        &[scalar("val.acc", 10, 0.5), scalar("train.loss", 10, 0.9), scalar("lr", 10, 0.1), scalar("val.acc", 20, 0.8)],
    )?;
    h.store.write(
        "r1",
        &[
            scalar("val.acc", 30, 0.7),
            scalar("train.loss", 30, f64::NAN),
            scalar("train.loss", 20, 0.4),
            scalar("lr", 30, 0.05),
        ],
    )?;
    h.store.write("r1", &[scalar("val.mse", 5, f64::NAN)])?;
    let detail = h.store.get_run("r1")?;
    let metrics = &detail.row.metrics;
    assert_eq!(
        (metrics["val.acc"].best, metrics["val.acc"].last, metrics["val.acc"].last_step, metrics["val.acc"].count),
        (Some(0.8), 0.7, 30, 3)
    );
    assert_eq!(metrics["train.loss"].best, Some(0.4));
    assert_eq!((metrics["val.acc"].best_step, metrics["val.acc"].best_epoch), (Some(20), Some(3)));
    assert_eq!(metrics["train.loss"].best_step, Some(20), "found in the second batch");
    assert!(metrics["train.loss"].last.is_nan());
    assert_eq!((metrics["lr"].best, metrics["lr"].last), (None, 0.05));
    assert_eq!(metrics["val.mse"].best, None);
    let steps: Vec<u64> = detail.series["train.loss"].iter().map(|p| p.step).collect();
    assert_eq!(steps, [10, 20, 30]);
    let point = detail.series["val.acc"][1];
    assert_eq!((point.step, point.epoch, point.wall, point.value), (20, 3, T0.plus(Duration::from_millis(20)), 0.8));
    assert!(detail.series["train.loss"][2].value.is_nan());
    // A write shows in `changes`; a read does not.
    let before = h.store.changes()?;
    h.store.get_run("r1")?;
    assert_eq!(h.store.changes()?, before);
    h.store.write("r1", &[scalar("train.acc", 40, 0.9)])?;
    assert_ne!(h.store.changes()?, before);
    let detail = h.store.get_run("r1")?;
    // One series alone is the same series, by id prefix too; an unknown key is empty.
    assert_eq!(h.store.series("r", "val.acc")?, detail.series["val.acc"]);
    assert!(h.store.series("r1", "val.nothing")?.is_empty());
    let ids = ids(
        &*h.store,
        Some("metrics.val.acc > 0.75 and metrics.val.acc.last < 0.75 and metrics.lr.last = 0.05"),
        None,
    )?;
    assert_eq!(ids, ["r1"]);
    Ok(())
}

/// Reports, notices, notes and artifacts are kept; an artifact's later record replaces the earlier.
pub fn reports_notes_and_artifacts(h: &Harness) -> Result<(), StoreError> {
    h.start(&sample_run("r1", 0.01, "mlp"))?;
    let body = json!({"per_class": [{"class": "a", "f1": 0.5}], "confusion": [[1, 2], [3, 4]]});
    let t = |ms: u64| T0.plus(Duration::from_millis(ms));
    h.store.write(
        "r1",
        &[
            Write::Report { split: "val", step: 10, epoch: 1, wall: t(1), body: &body },
            Write::Notice { level: "warn", message: "loss spiked", wall: t(2) },
            Write::Notice { level: "info", message: "stopping early", wall: t(3) },
            Write::Artifact {
                kind: "checkpoint.last",
                path: "runs/r1/checkpoints/last.mpk",
                bytes: 10,
                checksum: None,
                wall: t(4),
            },
        ],
    )?;
    h.clock.advance(Duration::from_secs(1));
    h.store.add_note("r1", "# Looks good\nTry a **lower** lr.")?;
    h.store.write(
        "r1",
        &[Write::Artifact {
            kind: "checkpoint.last",
            path: "runs/r1/checkpoints/last.mpk",
            bytes: 20,
            checksum: Some("abcd"),
            wall: t(5),
        }],
    )?;
    let detail = h.store.get_run("r1")?;
    assert_eq!(detail.reports.len(), 1);
    assert_eq!((detail.reports[0].split.as_str(), detail.reports[0].step, &detail.reports[0].body), ("val", 10, &body));
    let notes: Vec<(NoteKind, &str)> = detail.notes.iter().map(|n| (n.kind, n.body.as_str())).collect();
    assert_eq!(
        notes,
        [
            (NoteKind::Warn, "loss spiked"),
            (NoteKind::Info, "stopping early"),
            (NoteKind::Note, "# Looks good\nTry a **lower** lr.")
        ]
    );
    assert_eq!(detail.notes[2].created_at, T0.plus(Duration::from_secs(1)));
    assert_eq!(detail.artifacts.len(), 1);
    assert_eq!(
        (detail.artifacts[0].bytes, detail.artifacts[0].checksum.as_deref(), detail.artifacts[0].recorded_at),
        (20, Some("abcd"), t(5))
    );
    assert!(matches!(h.store.add_note("nope", "x"), Err(StoreError::RunNotFound { .. })));
    Ok(())
}

/// An end records status, reason and time; later writes are still accepted.
pub fn ending_a_run(h: &Harness) -> Result<(), StoreError> {
    h.start(&sample_run("r1", 0.01, "mlp"))?;
    let end = T0.plus(Duration::from_secs(60));
    h.store.write(
        "r1",
        &[Write::End { status: RunState::StoppedEarly, reason: Some("val.loss stopped improving"), at: end }],
    )?;
    h.store.write("r1", &[scalar("test.acc", 100, 0.9), Write::Heartbeat { at: end.plus(Duration::from_secs(1)) }])?;
    let row = h.store.get_run("r1")?.row;
    assert_eq!(
        (row.status, row.reason.as_deref(), row.ended_at),
        (RunState::StoppedEarly, Some("val.loss stopped improving"), Some(end))
    );
    assert_eq!(row.metrics["test.acc"].last, 0.9);
    Ok(())
}

/// Tags are set, replaced, removed and filtered on; bad keys are refused.
pub fn tags(h: &Harness) -> Result<(), StoreError> {
    h.start(&sample_run("r1", 0.01, "mlp"))?;
    h.start(&sample_run("r2", 0.01, "cnn"))?;
    h.store.set_tag("r1", "arch", "mlp")?;
    h.store.set_tag("r1", "arch", "cnn")?;
    h.store.set_tag("r2", "arch", "cnn")?;
    h.store.set_tag("r2", "paper.fig", "3")?;
    assert_eq!(h.store.get_run("r1")?.row.tags.get("arch").map(String::as_str), Some("cnn"));
    assert_eq!(ids(&*h.store, Some("tags.arch = 'cnn'"), Some("run_id"))?, ["r1", "r2"]);
    assert!(h.store.remove_tag("r1", "arch")?);
    assert!(!h.store.remove_tag("r1", "arch")?);
    assert_eq!(ids(&*h.store, Some("tags.arch = 'cnn' and tags.paper.fig = '3'"), None)?, ["r2"]);
    for bad in ["", "a b", ".x", "x.", "a=b"] {
        assert!(matches!(h.store.set_tag("r1", bad, "v"), Err(StoreError::Invalid { .. })), "{bad:?}");
    }
    Ok(())
}

/// Runs are found by full id or unique prefix; ambiguity and absence are errors.
pub fn resolving_ids(h: &Harness) -> Result<(), StoreError> {
    for id in ["abc1", "abc2", "abd", "ab"] {
        h.start(&sample_run(id, 0.1, "mlp"))?;
    }
    assert_eq!(h.store.resolve("abd")?, "abd");
    assert_eq!(h.store.resolve("abc1")?, "abc1");
    assert_eq!(h.store.resolve("ab")?, "ab");
    assert_eq!(h.store.get_run("abc2")?.row.run_id, "abc2");
    match h.store.resolve("abc") {
        Err(StoreError::AmbiguousRun { candidates, .. }) => assert_eq!(candidates, ["abc1", "abc2"]),
        other => panic!("expected an ambiguity, got {other:?}"),
    }
    assert!(matches!(h.store.resolve("x"), Err(StoreError::RunNotFound { .. })));
    assert!(matches!(h.store.resolve(""), Err(StoreError::RunNotFound { .. })));
    assert!(matches!(h.store.resolve("a%"), Err(StoreError::RunNotFound { .. })));
    Ok(())
}

/// `list_runs` filters, sorts and limits, and reports query mistakes as query errors.
pub fn listing_runs(h: &Harness) -> Result<(), StoreError> {
    let runs = [("a", 0.001, "cnn", 0.95, 1), ("b", 0.1, "mlp", 0.80, 2), ("c", 0.005, "cnn", 0.91, 3)];
    for (id, lr, model, acc, minute) in runs {
        let run = NewRun { started_at: T0.plus(Duration::from_secs(60 * minute)), ..sample_run(id, lr, model) };
        h.start(&run)?;
        h.store.write(
            id,
            &[scalar("val.acc", 1, acc - 0.1), scalar("val.acc", 2, acc), scalar("val.macro_f1", 2, acc - 0.05)],
        )?;
        h.store.set_tag(id, "arch", model)?;
    }
    h.clock.advance(Duration::from_secs(300));
    h.store.write("a", &[Write::End { status: RunState::Finished, reason: None, at: h.clock.now() }])?;
    h.store.write("b", &[Write::Heartbeat { at: h.clock.now() }])?;
    h.store.write("c", &[Write::Heartbeat { at: h.clock.now() }])?;
    assert_eq!(ids(&*h.store, None, None)?, ["c", "b", "a"]);
    assert_eq!(
        ids(&*h.store, Some("params.lr < 0.01 and metrics.val.acc > 0.9 and tags.arch = 'cnn'"), None)?,
        ["c", "a"]
    );
    assert_eq!(ids(&*h.store, None, Some("-metrics.val.macro_f1"))?, ["a", "c", "b"]);
    assert_eq!(ids(&*h.store, Some("status = 'running'"), Some("params.lr"))?, ["c", "b"]);
    assert_eq!(ids(&*h.store, Some("experiment = 'baseline' and not name = 'mlp-b'"), Some("name"))?, ["a", "c"]);
    let limited = h.store.list_runs(&Query::parse(None, Some("-params.lr"), Some(2))?)?;
    assert_eq!(limited.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["b", "c"]);
    let row = &limited[0];
    assert_eq!((row.metrics["val.acc"].best, row.metrics["val.acc"].last), (Some(0.80), 0.80));
    assert_eq!(row.tags.get("arch").map(String::as_str), Some("mlp"));
    match h.store.list_runs(&Query::parse(Some("params.lrr < 1"), None, None)?) {
        Err(StoreError::Query(e)) => assert_eq!(e.kind, crate::QueryErrorKind::UnknownKey),
        other => panic!("expected an unknown key error, got {other:?}"),
    }
    match h.store.list_runs(&Query::parse(Some("params.model < 1"), None, None)?) {
        Err(StoreError::Query(e)) => assert_eq!(e.kind, crate::QueryErrorKind::TypeMismatch),
        other => panic!("expected a type error, got {other:?}"),
    }
    Ok(())
}

/// A running run whose heartbeat is older than the threshold reads as crashed; a heartbeat brings
/// it back; ended runs never crash.
pub fn heartbeats_and_crashes(h: &Harness) -> Result<(), StoreError> {
    h.start(&sample_run("live", 0.1, "mlp"))?;
    h.start(&sample_run("done", 0.1, "mlp"))?;
    h.store.write("done", &[Write::End { status: RunState::Finished, reason: None, at: T0 }])?;
    let status = |id: &str| -> Result<RunState, StoreError> {
        let rows = h.store.list_runs(&Query::all())?;
        Ok(rows.into_iter().find(|r| r.run_id == id).map_or(RunState::Failed, |r| r.status))
    };
    h.clock.advance(STALE_AFTER);
    assert_eq!(status("live")?, RunState::Running, "exactly at the threshold is still alive");
    h.clock.advance(Duration::from_millis(1));
    assert_eq!(status("live")?, RunState::Crashed);
    assert_eq!(status("done")?, RunState::Finished);
    let detail = h.store.get_run("live")?;
    assert!(detail.row.reason.as_deref().is_some_and(|r| r.contains("heartbeat")), "{:?}", detail.row.reason);
    assert_eq!(h.store.reconcile(h.clock.now(), STALE_AFTER)?, Vec::<String>::new());
    h.store.write("live", &[Write::Heartbeat { at: h.clock.now() }])?;
    assert_eq!(status("live")?, RunState::Running);
    assert_eq!(h.store.get_run("live")?.row.reason, None);
    h.clock.advance(STALE_AFTER * 2);
    assert_eq!(h.store.reconcile(h.clock.now(), STALE_AFTER)?, ["live"]);
    // A crashed run that records its end gets that end.
    h.store
        .write("live", &[Write::End { status: RunState::Failed, reason: Some("out of memory"), at: h.clock.now() }])?;
    assert_eq!(status("live")?, RunState::Failed);
    Ok(())
}

/// A resumed run drops what was recorded after its checkpoint's step and runs again.
pub fn resuming_a_run(h: &Harness) -> Result<(), StoreError> {
    h.start(&sample_run("r1", 0.1, "mlp"))?;
    let points: Vec<Write<'_>> = (1..=10).map(|step| scalar("train.loss", step, 1.0 / step as f64)).collect();
    h.store.write("r1", &points)?;
    let body = serde_json::json!({"acc": 0.5});
    for step in [4, 8] {
        h.store.write("r1", &[Write::Report { split: "val", step, epoch: 1, wall: T0, body: &body }])?;
    }
    h.store.write("r1", &[scalar("val.acc", 8, 0.9)])?;
    h.store.write("r1", &[Write::End { status: RunState::Failed, reason: Some("killed"), at: T0 }])?;
    h.store.write("r1", &[Write::Resume { from_step: 6, at: h.clock.now() }, scalar("train.loss", 7, 0.25)])?;
    let detail = h.store.get_run("r1")?;
    let steps: Vec<u64> = detail.series["train.loss"].iter().map(|p| p.step).collect();
    assert_eq!(steps, [1, 2, 3, 4, 5, 6, 7], "points after step 6 are dropped, the batch's own kept");
    assert!(!detail.series.contains_key("val.acc"), "a series left empty disappears");
    assert_eq!(detail.reports.len(), 1);
    assert_eq!((detail.row.status, detail.row.ended_at, detail.row.reason.clone()), (RunState::Running, None, None));
    let summary = detail.row.metrics["train.loss"];
    assert_eq!((summary.count, summary.last_step, summary.last, summary.best), (7, 7, 0.25, Some(1.0 / 6.0)));
    Ok(())
}

/// Deleting a run removes its records and its folder and nothing else.
pub fn deleting_runs(h: &Harness) -> Result<(), StoreError> {
    h.start(&sample_run("keep", 0.1, "mlp"))?;
    h.start(&sample_run("gone-1234", 0.1, "mlp"))?;
    for id in ["keep", "gone-1234"] {
        h.store.write(id, &[scalar("train.loss", 1, 1.0), Write::Notice { level: "info", message: "hi", wall: T0 }])?;
        h.store.set_tag(id, "t", "v")?;
    }
    let folder = h.store.root().map(|root| root.join("runs").join("gone-1234"));
    if let Some(folder) = &folder {
        std::fs::create_dir_all(folder.join("checkpoints"))
            .map_err(|source| StoreError::Io(FileError { path: folder.clone(), action: "create", source }))?;
    }
    assert_eq!(h.store.delete_run("gone")?, "gone-1234");
    assert!(folder.is_none_or(|f| !f.exists()));
    assert!(matches!(h.store.get_run("gone-1234"), Err(StoreError::RunNotFound { .. })));
    assert_eq!(ids(&*h.store, None, None)?, ["keep"]);
    assert_eq!(h.store.get_run("keep")?.series["train.loss"].len(), 1);
    assert!(matches!(h.store.delete_run("gone-1234"), Err(StoreError::RunNotFound { .. })));
    // The id can be used again.
    h.start(&sample_run("gone-1234", 0.1, "mlp"))?;
    assert!(h.store.get_run("gone-1234")?.series.is_empty());
    Ok(())
}

/// `gc` removes only orphan folders past the grace period, and never on a dry run.
pub fn garbage_collection(h: &Harness) -> Result<(), StoreError> {
    h.start(&sample_run("owned", 0.1, "mlp"))?;
    let Some(root) = h.store.root().map(|r| r.to_path_buf()) else {
        let report = h.store.gc(&GcOptions::default())?;
        assert!(report.removed.is_empty());
        return Ok(());
    };
    for name in ["owned", "orphan"] {
        let dir = root.join("runs").join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|source| StoreError::Io(FileError { path: dir, action: "create", source }))?;
    }
    let recent = h.store.gc(&GcOptions::default())?;
    assert!(recent.removed.is_empty(), "a folder younger than the grace period is kept: {recent:?}");
    let now = GcOptions { orphan_grace: Duration::ZERO, vacuum: false, dry_run: true };
    assert_eq!(h.store.gc(&now)?.removed, [root.join("runs").join("orphan")]);
    assert!(root.join("runs").join("orphan").exists());
    let report = h.store.gc(&GcOptions { dry_run: false, vacuum: true, ..now })?;
    assert_eq!(report.removed, [root.join("runs").join("orphan")]);
    assert!(report.vacuumed);
    assert!(!root.join("runs").join("orphan").exists());
    assert!(root.join("runs").join("owned").exists());
    Ok(())
}

/// A [`StoreSink`] records a run's events into the store; `flush` makes them visible.
pub fn sink_end_to_end(h: &Harness) -> Result<(), StoreError> {
    let options = SinkOptions { clock: h.clock.clone(), ..SinkOptions::default() };
    let mut sink = StoreSink::new(Arc::clone(&h.store), options)?;
    let start = RunStart {
        run_id: "s1".into(),
        name: "mlp-moons".into(),
        started_at: "2024-05-01T12:00:00Z".into(),
        seed: 3,
        experiment: "sinks".into(),
        monitor: Monitored { metric: "val.loss".into(), mode: Mode::Min },
        task: TaskInfo::Regression { target_variance: None },
        params: json!({"experiment": "sinks", "lr": 0.1}),
        config: json!({"experiment": "sinks", "lr": 0.1}),
        dataset: json!({"name": "moons"}),
        provenance: Provenance { command: Some("regimen train".into()), ..Provenance::default() },
        environment: json!({"host": "box", "command": ["regimen", "train"]}),
    };
    let sink_error = |e: regimen_events::SinkError| StoreError::WriterGone { reason: e.to_string() };
    sink.record(&Event::RunStarted(&start)).map_err(sink_error)?;
    for step in 1..=1000 {
        sink.record(&Event::Scalar { key: "train.loss", step, epoch: 1, value: 1.0 / step as f64 })
            .map_err(sink_error)?;
    }
    let body = json!({"acc": 0.9});
    sink.record(&Event::Report { split: "val", step: 1000, epoch: 1, body: &body }).map_err(sink_error)?;
    sink.record(&Event::Notice { level: "warn", message: "slow" }).map_err(sink_error)?;
    sink.flush().map_err(sink_error)?;
    let detail = h.store.get_run("s1")?;
    assert_eq!((detail.row.experiment.as_str(), detail.row.status), ("sinks", RunState::Running));
    assert_eq!(detail.series["train.loss"].len(), 1000);
    assert_eq!(detail.row.metrics["train.loss"].best, Some(0.001));
    assert_eq!(detail.reports.len(), 1);
    assert_eq!(detail.provenance.command.as_deref(), Some("regimen train"));
    assert_eq!(detail.row.monitor, Some(start.monitor.clone()));
    sink.record(&Event::RunEnded { status: RunStatus::Finished, reason: None, seconds: 1.0 }).map_err(sink_error)?;
    drop(sink);
    assert_eq!(h.store.get_run("s1")?.row.status, RunState::Finished, "dropping the sink commits what is pending");

    // Events before the start are reported by the next flush, not lost silently.
    let mut early =
        StoreSink::new(Arc::clone(&h.store), SinkOptions { clock: h.clock.clone(), ..SinkOptions::default() })?;
    early.record(&Event::Scalar { key: "x", step: 1, epoch: 1, value: 1.0 }).map_err(sink_error)?;
    let flushed = early.flush();
    assert!(flushed.as_ref().is_err_and(|e| e.to_string().contains("before RunStarted")), "{flushed:?}");
    assert!(early.flush().is_ok(), "an error is reported once");
    Ok(())
}

/// A run's recorded monitor decides the best of its monitored key, in the recorded direction, even
/// against the name's inherent one; a key without any direction has no best; every reader (a
/// filter, a sort, the detail) sees the same value.
pub fn the_recorded_monitor_decides_best(h: &Harness) -> Result<(), StoreError> {
    let monitored = |metric: &str, mode| NewRun {
        monitor: Some(Monitored { metric: metric.to_string(), mode }),
        ..sample_run(metric, 0.01, "mlp")
    };
    h.start(&monitored("val.perplexity", Mode::Min))?;
    h.start(&monitored("val.loss", Mode::Max))?;
    for run in ["val.perplexity", "val.loss"] {
        h.store.write(run, &[scalar(run, 10, 3.0), scalar(run, 20, 2.0), scalar(run, 30, 5.0)])?;
    }
    h.store.write("val.perplexity", &[scalar("val.loss", 10, 3.0), scalar("val.loss", 20, 2.0)])?;
    let perplexity = h.store.get_run("val.perplexity")?;
    assert_eq!(perplexity.row.metrics["val.perplexity"].best, Some(2.0));
    assert_eq!(perplexity.row.metrics["val.loss"].best, Some(2.0), "not monitored: the inherent direction");
    let loss = h.store.get_run("val.loss")?;
    assert_eq!(loss.row.metrics["val.loss"].best, Some(5.0), "monitored with mode max");
    assert_eq!(loss.row.metrics["val.loss"].best_step, Some(30));
    h.store.write("val.loss", &[scalar("val.loss", 40, 5.0), scalar("val.loss", 25, 5.0)])?;
    assert_eq!(h.store.get_run("val.loss")?.row.metrics["val.loss"].best_step, Some(25), "the earliest on ties");
    assert_eq!(ids(&*h.store, Some("metrics.val.perplexity < 2.5"), None)?, ["val.perplexity"]);
    assert_eq!(ids(&*h.store, Some("metrics.val.loss > 4"), None)?, ["val.loss"]);
    Ok(())
}

fn new_sweep(sweep_id: &str, name: &str) -> NewSweep {
    NewSweep {
        sweep_id: sweep_id.to_string(),
        name: name.to_string(),
        spec: json!({"sampler": "tpe", "objective": "val.macro_f1"}),
        parent: None,
        created_at: T0,
    }
}

fn new_trial(number: u64) -> Claim {
    Claim::New { number, params: json!({"lr": 0.001 * (number as f64 + 1.0)}), target: 2 }
}

const LEASE: Duration = Duration::from_secs(60);

/// Sweeps are found by id, unique prefix or name, listed newest first, with trial counts.
pub fn sweeps_are_created_found_and_listed(h: &Harness) -> Result<(), StoreError> {
    h.store.create_sweep(&new_sweep("sw-alpha", "lr-search"))?;
    h.clock.advance(Duration::from_secs(1));
    let mut child = new_sweep("sw-beta", "lr-search");
    child.parent = Some("sw-alpha".into());
    child.created_at = h.clock.now();
    h.store.create_sweep(&child)?;
    assert!(matches!(h.store.create_sweep(&new_sweep("sw-alpha", "x")), Err(StoreError::DuplicateSweep { .. })));
    assert_eq!(h.store.get_sweep("sw-alpha")?.spec["sampler"], "tpe");
    assert_eq!(h.store.get_sweep("lr-search")?.sweep_id, "sw-beta", "a name finds the newest sweep");
    assert_eq!(h.store.get_sweep("sw-b")?.parent.as_deref(), Some("sw-alpha"));
    assert!(matches!(h.store.get_sweep("sw-"), Err(StoreError::SweepNotFound { .. })), "ambiguous prefix");
    assert!(matches!(h.store.get_sweep("nope"), Err(StoreError::SweepNotFound { .. })));
    h.store.claim_trial("sw-alpha", &new_trial(0), "w1", LEASE)?;
    let listed = h.store.list_sweeps()?;
    let ids: Vec<&str> = listed.iter().map(|s| s.sweep_id.as_str()).collect();
    assert_eq!(ids, ["sw-beta", "sw-alpha"]);
    assert_eq!(listed[1].counts.get(&TrialState::Running), Some(&1));
    assert_eq!(listed[1].status, SweepStatus::Active);
    Ok(())
}

/// Of two workers claiming the same trial, exactly one wins; a stopped sweep takes no claims.
pub fn claims_are_compare_and_swap(h: &Harness) -> Result<(), StoreError> {
    h.store.create_sweep(&new_sweep("s", "s"))?;
    let first = h.store.claim_trial("s", &new_trial(0), "w1", LEASE)?;
    let trial = first.ok_or_else(|| StoreError::SweepNotFound { id: "trial 0 not claimed".into() })?;
    assert_eq!((trial.state, trial.worker.as_deref(), trial.attempts), (TrialState::Running, Some("w1"), 1));
    assert_eq!(trial.lease_until, Some(h.clock.now().plus(LEASE)));
    assert_eq!(trial.params["lr"], 0.001);
    assert_eq!(h.store.claim_trial("s", &new_trial(0), "w2", LEASE)?, None, "the number is taken");
    let stale_version = Claim::Continue { number: 0, version: trial.version, target: 4 };
    assert_eq!(h.store.claim_trial("s", &stale_version, "w2", LEASE)?, None, "a running trial is not free");
    h.store.set_sweep_status("s", SweepStatus::Stopped)?;
    assert_eq!(h.store.claim_trial("s", &new_trial(1), "w2", LEASE)?, None, "a stopped sweep");
    assert!(!h.store.renew_lease("s", 0, "w1", LEASE)?, "a stopped sweep ends every lease");
    h.store.set_sweep_status("s", SweepStatus::Active)?;
    assert!(h.store.claim_trial("s", &new_trial(1), "w2", LEASE)?.is_some());
    Ok(())
}

/// Only the worker holding a trial renews or updates it; a final state releases the lease.
pub fn only_the_holder_writes_a_trial(h: &Harness) -> Result<(), StoreError> {
    h.store.create_sweep(&new_sweep("s", "s"))?;
    h.store.claim_trial("s", &new_trial(0), "w1", LEASE)?;
    let progress = TrialUpdate { run_id: Some("run-0".into()), ..TrialUpdate::default() };
    assert!(!h.store.update_trial("s", 0, "w2", &progress)?);
    assert!(!h.store.renew_lease("s", 0, "w2", LEASE)?);
    assert!(h.store.update_trial("s", 0, "w1", &progress)?);
    h.clock.advance(Duration::from_secs(30));
    assert!(h.store.renew_lease("s", 0, "w1", LEASE)?);
    let (trials, _) = h.store.trials_since("s", 0)?;
    assert_eq!(trials[0].lease_until, Some(h.clock.now().plus(LEASE)));
    assert_eq!(trials[0].run_id.as_deref(), Some("run-0"));
    let done = TrialUpdate {
        state: Some(TrialState::Complete),
        reached: Some((2, Some(0.75))),
        rung: true,
        violation: Some(1.5),
        ..TrialUpdate::default()
    };
    assert!(h.store.update_trial("s", 0, "w1", &done)?);
    let (trials, _) = h.store.trials_since("s", 0)?;
    let trial = &trials[0];
    assert_eq!((trial.state, trial.resource, trial.value), (TrialState::Complete, 2, Some(0.75)));
    assert_eq!(trial.violation, Some(1.5));
    assert_eq!(
        (trial.rungs.clone(), trial.lease_until, trial.run_id.as_deref()),
        (vec![(2, 0.75)], None, Some("run-0"))
    );
    assert!(!h.store.update_trial("s", 0, "w1", &progress)?, "a finished trial takes no more writes");
    Ok(())
}

/// A lease that runs out makes the trial stale; another worker continues it; attempts run out.
pub fn leases_expire_to_stale_then_failed(h: &Harness) -> Result<(), StoreError> {
    h.store.create_sweep(&new_sweep("s", "s"))?;
    h.store.claim_trial("s", &new_trial(0), "w1", LEASE)?;
    h.clock.advance(LEASE);
    assert_eq!(h.store.expire_leases("s", 2)?, Vec::<u64>::new(), "exactly at the end the lease holds");
    h.clock.advance(Duration::from_millis(1));
    assert_eq!(h.store.expire_leases("s", 2)?, [0]);
    let (trials, _) = h.store.trials_since("s", 0)?;
    assert_eq!(trials[0].state, TrialState::Stale);
    assert!(!h.store.renew_lease("s", 0, "w1", LEASE)?, "the dead worker lost it");
    let version = trials[0].version;
    let continued = h.store.claim_trial("s", &Claim::Continue { number: 0, version, target: 2 }, "w2", LEASE)?;
    assert_eq!(continued.map(|t| (t.state, t.attempts)), Some((TrialState::Running, 2)));
    h.clock.advance(LEASE * 2);
    assert_eq!(h.store.expire_leases("s", 2)?, [0]);
    let (trials, _) = h.store.trials_since("s", 0)?;
    assert_eq!(trials[0].state, TrialState::Failed, "two attempts used up");
    assert!(trials[0].message.as_deref().is_some_and(|m| m.contains("lease") && m.contains("gave up")));
    // A worker known to be dead gives its trials up at once.
    h.store.claim_trial("s", &new_trial(1), "host:1", LEASE)?;
    h.store.claim_trial("s", &new_trial(2), "host:2", LEASE)?;
    assert_eq!(h.store.abandon_worker("s", "host:1", 2)?, [1]);
    let (trials, _) = h.store.trials_since("s", 0)?;
    assert_eq!((trials[1].state, trials[2].state), (TrialState::Stale, TrialState::Running));
    Ok(())
}

/// A trial's run is found through the run's provenance.
pub fn a_trial_finds_its_run(h: &Harness) -> Result<(), StoreError> {
    h.store.create_sweep(&new_sweep("s", "s"))?;
    assert_eq!(h.store.trial_run("s", 7)?, None);
    let mut run = sample_run("r-7", 0.1, "mlp");
    run.provenance.sweep_id = Some("s".into());
    run.provenance.trial_id = Some("7".into());
    h.start(&run)?;
    h.start(&sample_run("r-unrelated", 0.1, "mlp"))?;
    assert_eq!(h.store.trial_run("s", 7)?.as_deref(), Some("r-7"));
    assert_eq!(h.store.trial_run("s", 8)?, None);
    Ok(())
}

/// `trials_since` returns each change once, by number, with the current counter.
pub fn trials_are_read_incrementally(h: &Harness) -> Result<(), StoreError> {
    h.store.create_sweep(&new_sweep("s", "s"))?;
    h.store.create_sweep(&new_sweep("other", "other"))?;
    for number in 0..3 {
        h.store.claim_trial("s", &new_trial(number), "w1", LEASE)?;
    }
    h.store.claim_trial("other", &new_trial(0), "w1", LEASE)?;
    let (all, seen) = h.store.trials_since("s", 0)?;
    assert_eq!(all.iter().map(|t| t.number).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(h.store.trials_since("s", seen)?, (Vec::new(), seen));
    let update = TrialUpdate { reached: Some((1, Some(0.5))), ..TrialUpdate::default() };
    h.store.update_trial("s", 1, "w1", &update)?;
    let (changed, now) = h.store.trials_since("s", seen)?;
    assert_eq!(changed.iter().map(|t| t.number).collect::<Vec<_>>(), [1]);
    assert!(now > seen && changed[0].version == now);
    Ok(())
}

/// A paused trial waits without a lease; it is continued once (by the fastest worker) or pruned.
pub fn paused_trials_are_promoted_or_pruned(h: &Harness) -> Result<(), StoreError> {
    h.store.create_sweep(&new_sweep("s", "s"))?;
    for number in 0..2 {
        h.store.claim_trial("s", &new_trial(number), "w1", LEASE)?;
        let pause = TrialUpdate {
            state: Some(TrialState::Paused),
            reached: Some((2, Some(f64::NAN))),
            rung: true,
            ..TrialUpdate::default()
        };
        h.store.update_trial("s", number, "w1", &pause)?;
    }
    h.clock.advance(LEASE * 10);
    assert_eq!(h.store.expire_leases("s", 3)?, Vec::<u64>::new(), "paused trials hold no lease");
    let (trials, _) = h.store.trials_since("s", 0)?;
    assert!(trials[0].value.is_none() && trials[0].rungs[0].1.is_nan(), "NaN reads back as unknown");
    let promote = Claim::Continue { number: 0, version: trials[0].version, target: 6 };
    let promoted = h.store.claim_trial("s", &promote, "w2", LEASE)?;
    assert_eq!(promoted.map(|t| (t.state, t.target, t.resource, t.attempts)), Some((TrialState::Running, 6, 2, 1)));
    assert_eq!(h.store.claim_trial("s", &promote, "w3", LEASE)?, None, "promoted once");
    assert!(!h.store.prune_paused("s", 1, trials[1].version + 100, "late")?, "an out-of-date version");
    assert!(h.store.prune_paused("s", 1, trials[1].version, "never promoted")?);
    let row = h.store.get_sweep("s")?;
    assert_eq!(row.counts.get(&TrialState::Pruned), Some(&1));
    assert_eq!(row.counts.get(&TrialState::Running), Some(&1));
    Ok(())
}

/// A person stops a running trial: it ends pruned, its worker can no longer renew or report, and
/// an ended trial cannot be stopped again.
pub fn a_person_stops_a_trial(h: &Harness) -> Result<(), StoreError> {
    h.store.create_sweep(&new_sweep("s", "s"))?;
    h.store.claim_trial("s", &new_trial(0), "w1", LEASE)?;
    assert!(h.store.stop_trial("s", 0, "stopped from the dashboard")?);
    let (trials, _) = h.store.trials_since("s", 0)?;
    assert_eq!(
        (trials[0].state, trials[0].message.as_deref()),
        (TrialState::Pruned, Some("stopped from the dashboard"))
    );
    assert!(!h.store.renew_lease("s", 0, "w1", LEASE)?, "the worker learns at its next renewal");
    let done = TrialUpdate { state: Some(TrialState::Complete), ..TrialUpdate::default() };
    assert!(!h.store.update_trial("s", 0, "w1", &done)?, "nor can it complete the trial");
    assert!(!h.store.stop_trial("s", 0, "again")?, "an ended trial stays as it ended");
    assert!(h.store.stop_trial("s", 7, "no such trial").is_err());
    Ok(())
}

/// A chart's read of a step range: exact with span 0; with a wider span, stretches may come back
/// as their extremes, but every extreme, NaN and end point is there and `total` counts them all.
pub fn ranged_series_keep_every_extreme(h: &Harness) -> Result<(), StoreError> {
    h.store.write("r", &[Write::Start(&sample_run("r", 0.1, "mlp"))])?;
    let value = |step: u64| match step {
        777 => 40.0,
        1234 => -3.0,
        1500 => f64::NAN,
        _ => (step as f64 * 0.01).sin(),
    };
    for batch in (0..2000u64).collect::<Vec<_>>().chunks(100) {
        let writes: Vec<Write<'_>> = batch.iter().map(|&step| scalar("train.loss", step, value(step))).collect();
        h.store.write("r", &writes)?;
    }
    let full = h.store.series("r", "train.loss")?;
    let exact = h.store.series_range("r", "train.loss", 500, 1600, 0)?;
    assert_eq!(exact.total, 1101);
    assert_eq!(exact.points.len(), 1101);
    assert!(
        exact
            .points
            .iter()
            .zip(&full[500..=1600])
            .all(|(a, b)| a.step == b.step && a.value.to_bits() == b.value.to_bits())
    );
    for (from, to, span) in [(0, 1999, 1000), (0, 1999, 150), (700, 1510, 400), (770, 780, 50)] {
        let view = h.store.series_range("r", "train.loss", from, to, span)?;
        let expected = full.iter().filter(|p| (from..=to).contains(&p.step)).count() as u64;
        assert_eq!(view.total, expected, "total of {from}..={to} at span {span}");
        assert!(view.points.windows(2).all(|w| w[0].step <= w[1].step), "in step order");
        assert!(view.points.iter().all(|p| (from..=to).contains(&p.step)), "inside the range");
        for step in [777, 1234, 1500, from, to] {
            if (from..=to).contains(&step) {
                assert!(view.points.iter().any(|p| p.step == step), "step {step} of {from}..={to} at span {span}");
            }
        }
    }
    assert!(
        h.store.series_range("r", "train.loss", 0, 1999, 1000)?.points.len() < 200,
        "summaries stand in for stretches"
    );
    assert!(h.store.series_range("r", "nothing", 0, 10, 5)?.points.is_empty());
    Ok(())
}

/// A dataset's base error is kept by name, replaced, and forgotten.
pub fn base_errors_are_kept_by_dataset_name(h: &Harness) -> Result<(), StoreError> {
    assert_eq!(h.store.base_error("shapes")?, None);
    h.store.set_base_error("shapes", Some(0.02))?;
    h.store.set_base_error("spirals", Some(0.1))?;
    h.store.set_base_error("shapes", Some(0.01))?;
    assert_eq!((h.store.base_error("shapes")?, h.store.base_error("spirals")?), (Some(0.01), Some(0.1)));
    h.store.set_base_error("shapes", None)?;
    assert_eq!(h.store.base_error("shapes")?, None);
    Ok(())
}

/// Expands to one `#[test]` per conformance case, in a module named `$name`, for the store built
/// by `$factory` (a [`Factory`]).
#[macro_export]
macro_rules! conformance_suite {
    ($name:ident, $factory:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::conformance_suite!(@cases $factory;
                start_then_get, bad_writes_are_refused, batches_are_atomic, metric_series_and_summaries,
                reports_notes_and_artifacts, ending_a_run, tags, resolving_ids, listing_runs,
                heartbeats_and_crashes, resuming_a_run, deleting_runs, garbage_collection, sink_end_to_end,
                the_recorded_monitor_decides_best, sweeps_are_created_found_and_listed,
                claims_are_compare_and_swap, only_the_holder_writes_a_trial, leases_expire_to_stale_then_failed,
                trials_are_read_incrementally, paused_trials_are_promoted_or_pruned, a_trial_finds_its_run,
                base_errors_are_kept_by_dataset_name, a_person_stops_a_trial, ranged_series_keep_every_extreme);
        }
    };
    (@cases $factory:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() -> Result<(), $crate::StoreError> {
                match $crate::conformance::Harness::new($factory) {
                    Some(harness) => $crate::conformance::$case(&harness),
                    None => Ok(()),
                }
            }
        )*
    };
}
