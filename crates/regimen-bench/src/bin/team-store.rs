//! Regimen's side of the team-store benchmark (`bench/team.sh`): the same work on the embedded
//! SQLite store and on a PostgreSQL store, and the trial claims of concurrent sweep workers.
//!
//! 1. **Ingest**: one writer records `--points` metric points (three series, as a training run logs
//!    them) in batches of 10,000, the size a sink's writer thread commits; points per second.
//! 2. **Listing**: `--runs` finished runs, each with hyperparameters and four metric series, then a
//!    `regimen runs`-style query (a filter on a hyperparameter and the status, sorted by the best
//!    validation accuracy, first 20 rows), median of five.
//! 3. **Claims**: `--workers` threads, each with a store object of its own as a worker process has,
//!    loop for `--seconds`: read what changed in the sweep, claim the next trial, report it complete;
//!    trials per second.
//!
//! One JSON object per measurement goes to stdout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use regimen_store::postgres::{PostgresOptions, PostgresStore};
use regimen_store::{
    Claim, Mode, Monitored, NewRun, NewSweep, Provenance, Query, RunState, RunStore, SqliteStore, TaskInfo, Timestamp,
    TrialState, TrialUpdate, Write,
};
use serde_json::json;

/// Opens a new store object on the backend under test, as another worker process would.
type Opener = dyn Fn() -> Arc<dyn RunStore> + Sync;

#[derive(Parser)]
struct Args {
    /// Folder for the SQLite store (created; should be empty).
    #[arg(long)]
    sqlite: std::path::PathBuf,
    /// URL of an empty PostgreSQL database.
    #[arg(long)]
    postgres: String,
    /// Metric points the ingest writes.
    #[arg(long, default_value_t = 2_000_000)]
    points: u64,
    /// Runs in the listing.
    #[arg(long, default_value_t = 10_000)]
    runs: u64,
    /// Concurrent sweep workers claiming trials.
    #[arg(long, default_value_t = 8)]
    workers: u64,
    /// How long the workers claim.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
}

fn start(id: &str, lr: f64) -> NewRun {
    NewRun {
        run_id: id.to_string(),
        name: format!("mlp-{id}"),
        experiment: "bench".to_string(),
        started_at: Timestamp::now(),
        seed: 1,
        monitor: Some(Monitored { metric: "val.acc".to_string(), mode: Mode::Max }),
        task: Some(TaskInfo::Classification { classes: 10, majority_share: Some(0.1) }),
        params: json!({"lr": lr, "batch_size": 64, "model": "mlp", "optim": {"name": "adam", "weight_decay": 1e-4}}),
        config: json!({"lr": lr, "batch_size": 64, "epochs": 10}),
        dataset: json!({"name": "bench", "fingerprint": "f00d"}),
        provenance: Provenance::default(),
        environment: json!({}),
    }
}

fn ingest(store: &dyn RunStore, points: u64) -> f64 {
    let run = start("ingest", 0.01);
    store.write("ingest", &[Write::Start(&run)]).expect("start");
    let keys = ["train.loss", "train.acc", "lr"];
    let wall = Timestamp::now();
    let started = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    let mut step = 0;
    while step < points {
        batch.clear();
        for _ in 0..10_000 / keys.len() {
            for key in keys {
                batch.push(Write::Scalar { key, step, epoch: step / 1000, wall, value: 1.0 / (step + 1) as f64 });
            }
            step += 1;
        }
        store.write("ingest", &batch).expect("write");
    }
    (step * keys.len() as u64) as f64 / started.elapsed().as_secs_f64()
}

fn fill(store: &dyn RunStore, runs: u64) -> f64 {
    let started = Instant::now();
    for i in 0..runs {
        let id = format!("run-{i:05}");
        let lr = 10f64.powf(-4.0 + 3.0 * (i as f64 * 0.618_034).fract());
        let run = start(&id, lr);
        let wall = Timestamp::now();
        let mut batch = vec![Write::Start(&run)];
        for epoch in 1..=10u64 {
            let acc = 0.5 + 0.4 * (1.0 - (-(epoch as f64) * lr * 100.0).exp());
            for (key, value) in [
                ("train.loss", 1.0 / epoch as f64),
                ("train.acc", acc),
                ("val.loss", 1.1 / epoch as f64),
                ("val.acc", acc - 0.02),
            ] {
                batch.push(Write::Scalar { key, step: epoch * 100, epoch, wall, value });
            }
        }
        batch.push(Write::End { status: RunState::Finished, reason: None, at: wall });
        store.write(&id, &batch).expect("write a run");
    }
    runs as f64 / started.elapsed().as_secs_f64()
}

fn query_ms(store: &dyn RunStore) -> (f64, usize) {
    let query = Query::parse(Some("params.lr < 0.01 and status = 'finished'"), Some("-metrics.val.acc.best"), Some(20))
        .expect("a valid query");
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..5 {
        let started = Instant::now();
        rows = store.list_runs(&query).expect("list").len();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[2], rows)
}

fn claims(open: &Opener, workers: u64, seconds: f64) -> (f64, u64) {
    let setup = open();
    let sweep = NewSweep {
        sweep_id: "bench".into(),
        name: "bench".into(),
        spec: json!({}),
        parent: None,
        created_at: Timestamp::now(),
    };
    setup.create_sweep(&sweep).expect("create the sweep");
    let next = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let done: u64 = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..workers)
            .map(|w| {
                let (next, store) = (&next, open());
                scope.spawn(move || {
                    let (mut version, mut done) = (0, 0);
                    let name = format!("worker-{w}");
                    while Instant::now() < deadline {
                        let (_, current) = store.trials_since("bench", version).expect("read");
                        version = current;
                        let number = next.fetch_add(1, Ordering::Relaxed);
                        let claim = Claim::New { number, params: json!({"lr": 0.01}), target: 1 };
                        if store.claim_trial("bench", &claim, &name, Duration::from_secs(60)).expect("claim").is_none()
                        {
                            continue;
                        }
                        let update = TrialUpdate {
                            state: Some(TrialState::Complete),
                            reached: Some((1, Some(0.9))),
                            rung: true,
                            ..TrialUpdate::default()
                        };
                        assert!(store.update_trial("bench", number, &name, &update).expect("complete"));
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("worker")).sum()
    });
    (done as f64 / started.elapsed().as_secs_f64(), done)
}

fn main() {
    let args = Args::parse();
    let sqlite_root = args.sqlite.clone();
    let sqlite = move || -> Arc<dyn RunStore> { Arc::new(SqliteStore::open(&sqlite_root).expect("open SQLite")) };
    let url = args.postgres.clone();
    let postgres = move || -> Arc<dyn RunStore> {
        Arc::new(
            PostgresStore::open(&url, PostgresOptions { pool_size: 1, ..PostgresOptions::default() })
                .expect("open PostgreSQL"),
        )
    };
    let backends: [(&str, &Opener); 2] = [("sqlite", &sqlite), ("postgres", &postgres)];
    for (name, open) in backends {
        let store = open();
        let rate = ingest(store.as_ref(), args.points);
        println!("{}", json!({"measure": "ingest", "backend": name, "points": args.points, "points_per_s": rate}));
        let created = fill(store.as_ref(), args.runs);
        let (ms, rows) = query_ms(store.as_ref());
        println!(
            "{}",
            json!({"measure": "listing", "backend": name, "runs": args.runs, "runs_written_per_s": created, "query_ms": ms, "rows": rows})
        );
        let (rate, trials) = claims(open, args.workers, args.seconds);
        println!(
            "{}",
            json!({"measure": "claims", "backend": name, "workers": args.workers, "trials": trials, "trials_per_s": rate})
        );
    }
}
