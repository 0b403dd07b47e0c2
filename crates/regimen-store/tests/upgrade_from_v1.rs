//! A store written by the first release (schema version 1, one row per metric point) opens with
//! this build, is upgraded in place, and reads back exactly what was written.
//!
//! `fixtures/store-v1.sqlite` was written through the version-1 `SqliteStore` by the calls that
//! [`expected_loss`] and the assertions below describe: run `old-1` got `train.loss` at steps
//! 1..=450 in three batches of 150 (NaN at step 77) and `val.acc` every 50 steps, then a batch
//! with a second `val.acc` point at step 100 and one at step 25, and a finished end; run `old-2`
//! got one `lr` point and a report; `old-1` then got a tag and a note.

use std::path::Path;
use std::time::Duration;

use regimen_fs::FileError;
use regimen_store::{Query, RunState, RunStore, SqliteStore, StoreError, Timestamp, Write};

const T0: Timestamp = Timestamp(1_714_564_800_000);

fn fixture_copy(dir: &Path) -> Result<std::path::PathBuf, StoreError> {
    let root = dir.join("store");
    std::fs::create_dir_all(&root)
        .map_err(|source| StoreError::Io(FileError { path: root.clone(), action: "create", source }))?;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1.sqlite");
    std::fs::copy(&fixture, root.join("store.sqlite"))
        .map_err(|source| StoreError::Io(FileError { path: fixture, action: "copy", source }))?;
    Ok(root)
}

fn schema_version(root: &Path) -> i64 {
    let db = root.join("store.sqlite");
    rusqlite::Connection::open(&db).and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0))).unwrap_or(-1)
}

/// The `train.loss` series of `old-1`: (step, epoch, wall, value).
fn expected_loss() -> Vec<(u64, u64, Timestamp, f64)> {
    (1..=450u64)
        .map(|step| {
            let value = if step == 77 { f64::NAN } else { 1.0 / step as f64 };
            (step, step / 100 + 1, T0.plus(Duration::from_millis(step)), value)
        })
        .collect()
}

#[test]
fn a_version_1_store_is_upgraded_and_reads_back_the_same() -> Result<(), StoreError> {
    let dir = tempfile::tempdir()
        .map_err(|source| StoreError::Io(FileError { path: "tmp".into(), action: "create", source }))?;
    let root = fixture_copy(dir.path())?;
    assert_eq!(schema_version(&root), 1);

    let store = SqliteStore::open(&root)?;
    assert_eq!(schema_version(&root), SqliteStore::schema_version());

    let detail = store.get_run("old-1")?;
    assert_eq!(detail.row.status, RunState::Finished);
    assert_eq!(detail.row.tags.get("arch").map(String::as_str), Some("mlp"));
    assert_eq!(detail.notes.len(), 1);
    let loss: Vec<_> = detail.series["train.loss"].iter().map(|p| (p.step, p.epoch, p.wall, p.value)).collect();
    let expected = expected_loss();
    assert_eq!(loss.len(), expected.len());
    for (got, want) in loss.iter().zip(&expected) {
        assert!(
            got.0 == want.0
                && got.1 == want.1
                && got.2 == want.2
                && (got.3 == want.3 || got.3.is_nan() && want.3.is_nan()),
            "{got:?} != {want:?}"
        );
    }
    // Step order, and arrival order within a step: the later 0.99 at step 100 follows the 0.1.
    let acc: Vec<(u64, f64)> = detail.series["val.acc"].iter().map(|p| (p.step, p.value)).collect();
    let mut want: Vec<(u64, f64)> = (1..=9).map(|i| (i * 50, i as f64 * 50.0 / 1000.0)).collect();
    want.insert(0, (25, 0.01));
    want.insert(3, (100, 0.99));
    assert_eq!(acc, want);
    let summary = detail.row.metrics["val.acc"];
    assert_eq!((summary.best, summary.last, summary.last_step, summary.count), (Some(0.99), 0.45, 450, 11));
    assert_eq!(detail.row.metrics["train.loss"].count, 450);

    let other = store.get_run("old-2")?;
    assert_eq!(other.series["lr"].len(), 1);
    assert_eq!(other.reports.len(), 1);
    let listed = store.list_runs(&Query::parse(Some("metrics.val.acc > 0.9"), None, None)?)?;
    assert_eq!(listed.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["old-1"]);

    // New points append to the upgraded series, and a deleted run takes its points with it.
    store.write("old-1", &[Write::Scalar { key: "train.loss", step: 451, epoch: 5, wall: T0, value: 0.001 }])?;
    assert_eq!(store.get_run("old-1")?.series["train.loss"].len(), 451);
    store.delete_run("old-2")?;
    drop(store);

    // Reopening applies nothing more.
    let store = SqliteStore::open(&root)?;
    assert_eq!(store.get_run("old-1")?.row.metrics["train.loss"].count, 451);
    assert!(matches!(store.get_run("old-2"), Err(StoreError::RunNotFound { .. })));
    Ok(())
}
