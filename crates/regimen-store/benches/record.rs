//! What the training thread pays per event, and what the store sustains.
//!
//! Records 1,000,000 `Scalar` events into a `StoreSink` over an on-disk `SqliteStore`, then
//! flushes. Prints the mean cost of `record` on the calling thread (target: under 1 µs) and the
//! sustained rate from the first record to the end of the flush, when every point is committed
//! (target: at least 1M points/s). Run with `cargo bench -p regimen-store`.

use std::sync::Arc;
use std::time::Instant;

use regimen_events::{Event, EventSink, RunStart, SinkError};
use regimen_store::{SinkOptions, SqliteStore, StoreError, StoreSink};

const EVENTS: u64 = 1_000_000;
const KEYS: [&str; 4] = ["train.loss", "train.acc", "lr", "sys.samples_per_sec"];

/// Why the benchmark could not run; printed by `main`'s `Debug` on failure.
enum BenchError {
    Store(StoreError),
    Sink(SinkError),
    Io(std::io::Error),
}

impl std::fmt::Debug for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Store(e) => write!(f, "{e}"),
            BenchError::Sink(e) => write!(f, "{e}"),
            BenchError::Io(e) => write!(f, "{e}"),
        }
    }
}

fn main() -> Result<(), BenchError> {
    let dir = tempfile::tempdir().map_err(BenchError::Io)?;
    let store = SqliteStore::open(dir.path()).map_err(BenchError::Store)?;
    let mut sink = StoreSink::new(Arc::new(store), SinkOptions::default()).map_err(BenchError::Store)?;
    let start = RunStart {
        run_id: "bench".into(),
        name: "bench".into(),
        started_at: "2024-05-01T12:00:00Z".into(),
        seed: 0,
        config: serde_json::json!({"lr": 0.1}),
        dataset: serde_json::json!({}),
        environment: serde_json::json!({}),
    };
    sink.record(&Event::RunStarted(&start)).map_err(BenchError::Sink)?;
    sink.flush().map_err(BenchError::Sink)?;

    let began = Instant::now();
    for i in 0..EVENTS {
        let key = KEYS[(i % 4) as usize];
        sink.record(&Event::Scalar { key, step: i / 4, epoch: 1, value: i as f64 * 1e-6 }).map_err(BenchError::Sink)?;
    }
    let recorded = began.elapsed();
    sink.flush().map_err(BenchError::Sink)?;
    let committed = began.elapsed();

    let ns_per_call = recorded.as_nanos() as f64 / EVENTS as f64;
    let sustained = EVENTS as f64 / committed.as_secs_f64();
    println!("record: {ns_per_call:.0} ns/call on the training thread ({:.2} s for {EVENTS} events)", recorded.as_secs_f64());
    println!("sustained: {sustained:.0} points/s committed ({:.2} s from first record to end of flush)", committed.as_secs_f64());
    let db = dir.path().join("store.sqlite");
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) + std::fs::metadata(dir.path().join("store.sqlite-wal")).map(|m| m.len()).unwrap_or(0);
    println!("database: {:.1} MB ({:.0} bytes/point)", size as f64 / 1e6, size as f64 / EVENTS as f64);
    Ok(())
}
