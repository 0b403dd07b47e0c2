//! What the training thread pays per event, and what the store sustains.
//!
//! Logs 1,000,000 scalar points (10 keys × 100,000 steps, the workload of `bench/logging/`) into a
//! `StoreSink` over an on-disk `SqliteStore` in a fresh temporary folder, then flushes. Reports
//! the mean cost of `record` on the calling thread (target: under 1 µs) and the sustained rate from
//! the first record to the end of the flush, when every point is committed and durable (target:
//! at least 1M points/s). Each repeat uses a new store; the summary is the median repeat.
//!
//! ```text
//! cargo bench -p regimen-store --bench record [-- --repeat N] [--points N] [--json]
//! ```
//!
//! `--json` prints the median as one JSON line for `bench/logging/run.sh` instead of the text.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use regimen_events::{Event, EventSink, RunStart, SinkError};
use regimen_metrics::median;
use regimen_store::{Mode, Monitored, Provenance, SinkOptions, SqliteStore, StoreError, StoreSink, TaskInfo};

/// The keys a training loop logs every step, one a line: the same file `bench/logging/workload.py`
/// reads, so both sides log the same workload.
const KEYS_FILE: &str = include_str!("../../../bench/logging/keys.txt");

/// The keys of [`KEYS_FILE`].
fn keys() -> Vec<&'static str> {
    KEYS_FILE.lines().map(str::trim).filter(|line| !line.is_empty()).collect()
}

/// Why the benchmark could not run; printed by `main`'s `Debug` on failure.
enum BenchError {
    Store(StoreError),
    Sink(SinkError),
    Io(std::io::Error),
    Usage(String),
}

impl std::fmt::Debug for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Store(e) => write!(f, "{e}"),
            BenchError::Sink(e) => write!(f, "{e}"),
            BenchError::Io(e) => write!(f, "{e}"),
            BenchError::Usage(e) => write!(f, "{e}\nusage: record [--repeat N] [--points N] [--json]"),
        }
    }
}

/// What one repeat measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Mean nanoseconds per `record` call on the calling thread.
    ns_per_call: f64,
    /// Seconds from the first record to the end of the flush.
    seconds: f64,
    /// Bytes of database and write-ahead log after the flush.
    bytes: u64,
}

struct Args {
    repeat: usize,
    points: u64,
    json: bool,
}

fn parse_args() -> Result<Args, BenchError> {
    let mut args = Args { repeat: 5, points: 1_000_000, json: false };
    let mut it = std::env::args().skip(1);
    let number = |flag: &str, value: Option<String>| -> Result<u64, BenchError> {
        let value = value.ok_or_else(|| BenchError::Usage(format!("{flag} needs a number")))?;
        value
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| BenchError::Usage(format!("{flag} wants a positive whole number, got `{value}`")))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--repeat" => args.repeat = usize::try_from(number("--repeat", it.next())?).unwrap_or(usize::MAX),
            "--points" => args.points = number("--points", it.next())?,
            "--json" => args.json = true,
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            other => return Err(BenchError::Usage(format!("unknown argument `{other}`"))),
        }
    }
    Ok(args)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Logs `points` points into a fresh store and measures it.
fn once(points: u64) -> Result<Measured, BenchError> {
    let dir = tempfile::tempdir().map_err(BenchError::Io)?;
    let store = SqliteStore::open(dir.path()).map_err(BenchError::Store)?;
    let mut sink = StoreSink::new(Arc::new(store), SinkOptions::default()).map_err(BenchError::Store)?;
    let start = RunStart {
        run_id: "bench".into(),
        name: "bench".into(),
        started_at: "2024-05-01T12:00:00Z".into(),
        seed: 0,
        experiment: "default".into(),
        monitor: Monitored { metric: "val.loss".into(), mode: Mode::Min },
        task: TaskInfo::Regression { target_variance: None },
        params: serde_json::json!({"lr": 0.1}),
        config: serde_json::json!({"lr": 0.1}),
        dataset: serde_json::json!({}),
        provenance: Provenance::default(),
        environment: serde_json::json!({}),
    };
    sink.record(&Event::RunStarted(&start)).map_err(BenchError::Sink)?;
    sink.flush().map_err(BenchError::Sink)?;

    let keys = keys();
    let steps = points / keys.len() as u64;
    let began = Instant::now();
    for step in 0..steps {
        for (k, key) in keys.iter().enumerate() {
            let value = 1.0 / (1 + step) as f64 + 0.001 * k as f64;
            sink.record(&Event::Scalar { key, step, epoch: step / 1000 + 1, value }).map_err(BenchError::Sink)?;
        }
    }
    let recorded = began.elapsed();
    sink.flush().map_err(BenchError::Sink)?;
    let committed = began.elapsed();
    drop(sink);

    let logged = steps * keys.len() as u64;
    let bytes = file_len(&dir.path().join("store.sqlite")) + file_len(&dir.path().join("store.sqlite-wal"));
    Ok(Measured { ns_per_call: recorded.as_nanos() as f64 / logged as f64, seconds: committed.as_secs_f64(), bytes })
}

fn main() -> Result<(), BenchError> {
    let args = parse_args()?;
    let keys = keys().len() as u64;
    let points = args.points - args.points % keys;
    if points == 0 {
        return Err(BenchError::Usage(format!("--points must be at least {keys}, one step of every key")));
    }
    let mut runs = Vec::with_capacity(args.repeat);
    for i in 0..args.repeat {
        let m = once(points)?;
        if !args.json {
            println!(
                "repeat {}: record {:.0} ns/call, sustained {:.0} points/s ({:.3} s), database {:.1} MB ({:.1} bytes/point)",
                i + 1,
                m.ns_per_call,
                points as f64 / m.seconds,
                m.seconds,
                m.bytes as f64 / 1e6,
                m.bytes as f64 / points as f64
            );
        }
        runs.push(m);
    }
    let (Some(ns), Some(seconds)) =
        (median(runs.iter().map(|m| m.ns_per_call)), median(runs.iter().map(|m| m.seconds)))
    else {
        return Err(BenchError::Usage("--repeat must be at least 1".into()));
    };
    let best = runs.iter().map(|m| m.seconds).fold(f64::INFINITY, f64::min);
    let bytes = runs.last().map_or(0, |m| m.bytes);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "impl": "regimen",
                "store": "SQLite WAL, synchronous=FULL (durable at flush)",
                "points": points,
                "measured_points": points,
                "repeats": args.repeat,
                "ns_per_call": ns,
                "points_per_s": points as f64 / seconds,
                "best_points_per_s": points as f64 / best,
                "seconds": seconds,
                "bytes": bytes,
            })
        );
    } else {
        println!(
            "median of {}: record {ns:.0} ns/call on the training thread; sustained {:.0} points/s ({seconds:.3} s from first record to end of flush; best {:.0} points/s)",
            args.repeat,
            points as f64 / seconds,
            points as f64 / best
        );
    }
    Ok(())
}
