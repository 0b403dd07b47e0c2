//! Several processes and threads writing into one store file at once: nothing lost, no
//! "database is locked".
//!
//! The process test re-runs this test binary: the parent starts eight children running the
//! `child_process_writer` test with an environment variable naming the store and their index; run
//! without that variable (as in a normal `cargo test`), that test does nothing.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use regimen_events::{Event, EventSink, RunStart, RunStatus};
use regimen_fs::FileError;
use regimen_store::{
    Mode, Monitored, Provenance, Query, RunState, RunStore, SinkOptions, SqliteStore, StoreError, StoreSink, TaskInfo,
    Write,
};
use serde_json::json;

const CHILD_ROOT: &str = "REGIMEN_STORE_TEST_CHILD_ROOT";
const CHILD_INDEX: &str = "REGIMEN_STORE_TEST_CHILD_INDEX";
const WRITERS: usize = 8;
const POINTS: u64 = 5_000;

fn start(run_id: &str) -> RunStart {
    RunStart {
        run_id: run_id.to_string(),
        name: run_id.to_string(),
        started_at: "2024-05-01T12:00:00Z".to_string(),
        seed: 1,
        experiment: "default".into(),
        monitor: Monitored { metric: "val.loss".into(), mode: Mode::Min },
        task: TaskInfo::Regression { target_variance: None },
        params: json!({"lr": 0.1, "writer": run_id}),
        config: json!({"lr": 0.1, "writer": run_id}),
        dataset: json!({}),
        provenance: Provenance::default(),
        environment: json!({}),
    }
}

/// What one writer does: a whole run through a sink with small batches, so that the writers'
/// transactions interleave.
fn log_run(store: Arc<dyn RunStore>, run_id: &str) -> Result<(), String> {
    let options = SinkOptions { max_batch: 250, linger: Duration::from_millis(1), ..SinkOptions::default() };
    let mut sink = StoreSink::new(store, options).map_err(|e| e.to_string())?;
    let start = start(run_id);
    sink.record(&Event::RunStarted(&start)).map_err(|e| e.to_string())?;
    for step in 1..=POINTS {
        sink.record(&Event::Scalar { key: "train.loss", step, epoch: 1, value: step as f64 })
            .map_err(|e| e.to_string())?;
        if step % 1000 == 0 {
            sink.record(&Event::Scalar { key: "val.acc", step, epoch: step / 1000, value: 0.5 })
                .map_err(|e| e.to_string())?;
            sink.flush().map_err(|e| e.to_string())?;
        }
    }
    sink.record(&Event::RunEnded { status: RunStatus::Finished, reason: None, seconds: 1.0 })
        .map_err(|e| e.to_string())?;
    sink.flush().map_err(|e| e.to_string())
}

fn check_all_runs(store: &SqliteStore, prefix: &str) -> Result<(), StoreError> {
    let rows = store.list_runs(&Query::parse(Some("name != ''"), Some("run_id"), None)?)?;
    let rows: Vec<_> = rows.into_iter().filter(|r| r.run_id.starts_with(prefix)).collect();
    assert_eq!(rows.len(), WRITERS);
    for row in &rows {
        assert_eq!(row.status, RunState::Finished, "{}", row.run_id);
        assert_eq!(row.metrics["train.loss"].count, POINTS, "{}", row.run_id);
        assert_eq!(row.metrics["train.loss"].last, POINTS as f64);
        assert_eq!(row.metrics["val.acc"].count, POINTS / 1000);
        let detail = store.get_run(&row.run_id)?;
        let steps: Vec<u64> = detail.series["train.loss"].iter().map(|p| p.step).collect();
        assert_eq!(steps, (1..=POINTS).collect::<Vec<_>>());
    }
    Ok(())
}

#[test]
fn eight_processes_share_one_store() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()
        .map_err(|source| StoreError::Io(FileError { path: "tmp".into(), action: "create", source }))?;
    let root = dir.path().join("store");
    let exe = std::env::current_exe()
        .map_err(|source| StoreError::Io(FileError { path: "test binary".into(), action: "find", source }))?;
    // The children create the store themselves, at once, which also exercises concurrent migration.
    let children: Vec<_> = (0..WRITERS)
        .map(|i| {
            Command::new(&exe)
                .args(["child_process_writer", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ROOT, &root)
                .env(CHILD_INDEX, i.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()
        .map_err(|source| StoreError::Io(FileError { path: exe.clone(), action: "start a child writer", source }))?;
    for child in children {
        let output = child.wait_with_output().map_err(|source| {
            StoreError::Io(FileError { path: exe.clone(), action: "wait for a child writer", source })
        })?;
        assert!(
            output.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let store = SqliteStore::open(&root)?;
    check_all_runs(&store, "proc-")?;
    Ok(())
}

/// One writer process; does nothing unless started by `eight_processes_share_one_store`.
#[test]
fn child_process_writer() -> Result<(), String> {
    let (Ok(root), Ok(index)) = (std::env::var(CHILD_ROOT), std::env::var(CHILD_INDEX)) else {
        return Ok(());
    };
    let store = SqliteStore::open(&root).map_err(|e| e.to_string())?;
    log_run(Arc::new(store), &format!("proc-{index}"))
}

#[test]
fn eight_threads_with_their_own_connections() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()
        .map_err(|source| StoreError::Io(FileError { path: "tmp".into(), action: "create", source }))?;
    let root = dir.path().join("store");
    let threads: Vec<_> = (0..WRITERS)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || -> Result<(), String> {
                let store = SqliteStore::open(&root).map_err(|e| e.to_string())?;
                log_run(Arc::new(store), &format!("thread-{i}"))
            })
        })
        .collect();
    // A reader lists runs while they are written.
    let reader = SqliteStore::open(&root)?;
    for _ in 0..20 {
        reader.list_runs(&Query::all())?;
    }
    for thread in threads {
        let result = thread.join().map_err(|_| StoreError::WriterGone { reason: "a writer thread panicked".into() })?;
        result.map_err(|reason| StoreError::WriterGone { reason })?;
    }
    check_all_runs(&reader, "thread-")
}

#[test]
fn small_direct_transactions_from_many_threads() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()
        .map_err(|source| StoreError::Io(FileError { path: "tmp".into(), action: "create", source }))?;
    let root = dir.path().join("store");
    let store = SqliteStore::open(&root)?;
    let run = regimen_store::NewRun::from_start(&start("direct"), regimen_store::Timestamp(0));
    store.write("direct", &[Write::Start(&run)])?;
    let threads: Vec<_> = (0..WRITERS as u64)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || -> Result<(), StoreError> {
                let store = SqliteStore::open(&root)?;
                for step in 0..100 {
                    let wall = regimen_store::Timestamp(0);
                    store.write(
                        "direct",
                        &[Write::Scalar { key: "x", step: i * 1000 + step, epoch: 1, wall, value: 1.0 }],
                    )?;
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| StoreError::WriterGone { reason: "a writer thread panicked".into() })??;
    }
    assert_eq!(store.get_run("direct")?.series["x"].len(), WRITERS * 100);
    Ok(())
}
