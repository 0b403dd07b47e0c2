//! The data of the dashboard benchmark (`bench/ui.sh`): a Regimen run store with many runs, and the
//! same data as JSON lines for the peers (MLflow, TensorBoard), so that every tool serves the same
//! runs.
//!
//! - `--runs` runs (10,000 by default) in five experiments, with the hyperparameters a sweep varies
//!   (learning rate log-uniform, batch size, model, optimizer, weight decay, dropout, seed...), and
//!   eight per-epoch series each (`train.loss`, `train.acc`, `val.loss`, `val.acc`,
//!   `val.macro_f1`, `lr`, `grad_norm`, `sys.samples_per_sec`) over up to `--epochs` epochs, whose
//!   accuracy depends on the hyperparameters. Statuses are mixed: mostly finished, some stopped
//!   early, diverged (NaN losses), failed, interrupted, and a few left running with a stale
//!   heartbeat, which the store marks crashed.
//! - One more run, `long-run` in experiment `long-run`, logs `train.loss_step` at every one of
//!   `--points` steps (1,000,000 by default) with a single planted spike, which a chart must still
//!   show when it draws the series at 2,000 buckets.
//!
//! Everything comes from one seeded ChaCha generator: the same flags give the same store.
//!
//! `--jsonl FILE` writes each run as one JSON object: `run_id`, `name`, `experiment`, `status`
//! (Regimen's state name), `started_at_ms`, `ended_at_ms` (null while running), `params` (flat),
//! and `metrics`: for each key `{"step": [..], "wall_ms": [..], "value": [..]}` (NaN as null).
//! `--meta FILE` writes what the benchmark checks: the long run's id and key, and the spike's step
//! and value.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use regimen_store::{Mode, Monitored, NewRun, Provenance, RunState, RunStore, SqliteStore, TaskInfo, Timestamp, Write};
use serde_json::{Value, json};

/// Points per write call of the long series: large batches are fast.
const BATCH: usize = 50_000;

/// The id and experiment of the run with the long series.
const LONG_RUN: &str = "long-run";

/// The key of the long series.
const LONG_KEY: &str = "train.loss_step";

/// The value of the planted spike; the series otherwise stays below 3.
const SPIKE: f64 = 40.0;

#[derive(Parser)]
struct Args {
    /// The store folder to create; it must not hold a store yet.
    #[arg(long)]
    store: PathBuf,
    /// How many ordinary runs.
    #[arg(long, default_value_t = 10_000)]
    runs: usize,
    /// Epochs of a run that finishes (one point per series per epoch).
    #[arg(long, default_value_t = 20)]
    epochs: u64,
    /// Points of the long run's `train.loss_step` series (0 leaves the long run out).
    #[arg(long, default_value_t = 1_000_000)]
    points: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 20261130)]
    seed: u64,
    /// Also write every run as JSON lines, for the peers.
    #[arg(long)]
    jsonl: Option<PathBuf>,
    /// Also write the long run's id, key and spike as JSON.
    #[arg(long)]
    meta: Option<PathBuf>,
}

/// An experiment: its name, dataset, number of classes, steps per epoch and the accuracy range of
/// its runs (worst to best hyperparameters).
struct Experiment {
    name: &'static str,
    dataset: &'static str,
    classes: usize,
    steps_per_epoch: u64,
    accuracy: (f64, f64),
}

const EXPERIMENTS: [Experiment; 5] = [
    Experiment {
        name: "cifar10-resnet",
        dataset: "cifar10",
        classes: 10,
        steps_per_epoch: 391,
        accuracy: (0.35, 0.95),
    },
    Experiment {
        name: "imagenet100-vit",
        dataset: "imagenet100",
        classes: 100,
        steps_per_epoch: 1016,
        accuracy: (0.10, 0.82),
    },
    Experiment { name: "sst2-text", dataset: "sst2", classes: 2, steps_per_epoch: 527, accuracy: (0.55, 0.93) },
    Experiment { name: "tabular-mlp", dataset: "covertype", classes: 7, steps_per_epoch: 227, accuracy: (0.45, 0.90) },
    Experiment {
        name: "lr-sweep",
        dataset: "fashion-mnist",
        classes: 10,
        steps_per_epoch: 469,
        accuracy: (0.60, 0.93),
    },
];

const MODELS: [(&str, f64); 5] =
    [("mlp", 0.80), ("cnn", 0.90), ("resnet18", 0.97), ("resnet50", 1.0), ("vit-tiny", 0.93)];
const OPTIMIZERS: [&str; 3] = ["adam", "adamw", "sgd"];
const BATCH_SIZES: [u64; 5] = [32, 64, 128, 256, 512];
const SCHEDULERS: [&str; 3] = ["cosine", "step", "constant"];

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A log-uniform draw in `[low, high)`.
fn log_uniform(rng: &mut ChaCha8Rng, low: f64, high: f64) -> f64 {
    (low.ln() + rng.random::<f64>() * (high.ln() - low.ln())).exp()
}

/// Rounded to 4 significant digits, as a person types a hyperparameter.
fn round4(value: f64) -> f64 {
    if value == 0.0 {
        return 0.0;
    }
    let scale = 10f64.powi(3 - value.abs().log10().floor() as i32);
    (value * scale).round() / scale
}

/// One series as the store and the JSON lines take it.
#[derive(Default)]
struct Series {
    steps: Vec<u64>,
    epochs: Vec<u64>,
    walls: Vec<Timestamp>,
    values: Vec<f64>,
}

impl Series {
    fn push(&mut self, step: u64, epoch: u64, wall: Timestamp, value: f64) {
        self.steps.push(step);
        self.epochs.push(epoch);
        self.walls.push(wall);
        self.values.push(value);
    }

    fn writes<'a>(&'a self, key: &'a str) -> impl Iterator<Item = Write<'a>> + 'a {
        (0..self.steps.len()).map(move |i| Write::Scalar {
            key,
            step: self.steps[i],
            epoch: self.epochs[i],
            wall: self.walls[i],
            value: self.values[i],
        })
    }

    fn json(&self) -> Value {
        json!({
            "step": self.steps,
            "wall_ms": self.walls.iter().map(|w| w.0).collect::<Vec<_>>(),
            "value": self.values.iter().map(|v| if v.is_nan() { Value::Null } else { json!(v) }).collect::<Vec<_>>(),
        })
    }
}

/// A generated run: its start record, series and ending.
struct Generated {
    run: NewRun,
    series: Vec<(&'static str, Series)>,
    end: Option<(RunState, Option<&'static str>, Timestamp)>,
}

impl Generated {
    fn json(&self) -> Value {
        let params = self.run.params.clone();
        let (status, ended) = match &self.end {
            Some((state, _, at)) => (state.as_str(), json!(at.0)),
            None => ("running", Value::Null),
        };
        json!({
            "run_id": self.run.run_id,
            "name": self.run.name,
            "experiment": self.run.experiment,
            "status": status,
            "started_at_ms": self.run.started_at.0,
            "ended_at_ms": ended,
            "params": params,
            "metrics": self.series.iter().map(|(k, s)| ((*k).to_string(), s.json())).collect::<serde_json::Map<_, _>>(),
        })
    }

    fn store(&self, store: &SqliteStore) -> Result<(), Box<dyn std::error::Error>> {
        let mut batch = vec![Write::Start(&self.run)];
        for (key, series) in &self.series {
            for write in series.writes(key) {
                batch.push(write);
                if batch.len() >= BATCH {
                    store.write(&self.run.run_id, &batch)?;
                    batch.clear();
                }
            }
        }
        if let Some((status, reason, at)) = self.end {
            batch.push(Write::End { status, reason, at });
        }
        store.write(&self.run.run_id, &batch)?;
        Ok(())
    }
}

fn new_run(
    run_id: String,
    name: String,
    experiment: &Experiment,
    started_at: Timestamp,
    seed: u64,
    params: Value,
) -> NewRun {
    NewRun {
        run_id,
        name,
        experiment: experiment.name.to_string(),
        started_at,
        seed,
        monitor: Some(Monitored { metric: "val.acc".to_string(), mode: Mode::Max }),
        task: Some(TaskInfo::Classification { classes: experiment.classes, majority_share: None }),
        config: json!({"train": params.clone(), "store": ".regimen"}),
        params,
        dataset: json!({"name": experiment.dataset, "fingerprint": format!("{:016x}", experiment.classes * 7919)}),
        provenance: Provenance {
            host: Some("bench-host".to_string()),
            command: Some("regimen train --config sweep.toml".to_string()),
            git_commit: Some("0123456789abcdef0123456789abcdef01234567".to_string()),
            git_dirty: Some(false),
            sweep_id: None,
            trial_id: None,
            init_run: None,
            init_weights: None,
        },
        environment: json!({"threads": 2, "regimen": "0.1.0"}),
    }
}

/// One ordinary run: hyperparameters drawn at random, curves that depend on them.
fn ordinary(rng: &mut ChaCha8Rng, index: usize, epochs: u64, base: Timestamp) -> Generated {
    let experiment = &EXPERIMENTS[match rng.random::<f64>() {
        u if u < 0.35 => 0,
        u if u < 0.50 => 1,
        u if u < 0.70 => 2,
        u if u < 0.85 => 3,
        _ => 4,
    }];
    let (model, model_factor) = MODELS[rng.random_range(0..MODELS.len())];
    let optimizer = OPTIMIZERS[rng.random_range(0..OPTIMIZERS.len())];
    let lr = round4(log_uniform(rng, 1e-5, 1e-1));
    let batch_size = BATCH_SIZES[rng.random_range(0..BATCH_SIZES.len())];
    let weight_decay = if rng.random::<f64>() < 0.2 { 0.0 } else { round4(log_uniform(rng, 1e-6, 1e-2)) };
    let dropout = (rng.random::<f64>() * 50.0).round() / 100.0;
    let seed = rng.random_range(0..10_000u64);
    let scheduler = SCHEDULERS[rng.random_range(0..SCHEDULERS.len())];
    let warmup_steps = [0u64, 100, 500, 1000][rng.random_range(0..4)];
    let label_smoothing = [0.0, 0.05, 0.1][rng.random_range(0..3)];
    let mut params = json!({
        "lr": lr, "batch_size": batch_size, "model": model, "optimizer": optimizer, "epochs": epochs,
        "seed": seed, "weight_decay": weight_decay, "dropout": dropout, "scheduler": scheduler,
        "warmup_steps": warmup_steps, "label_smoothing": label_smoothing,
    });
    if optimizer == "sgd" {
        params["momentum"] = json!([0.0, 0.9, 0.95][rng.random_range(0..3)]);
    }

    // How good the hyperparameters are: best near lr 1e-3 (adam) or 1e-1.5 (sgd), some dropout.
    let best_lr = if optimizer == "sgd" { -1.5 } else { -3.0 };
    let distance = lr.log10() - best_lr;
    let quality = ((-distance * distance / (2.0 * 0.7 * 0.7)).exp()
        * model_factor
        * (1.0 - 0.4 * (dropout - 0.2).abs())
        * (1.0 + 0.02 * normal(rng)))
    .clamp(0.0, 1.0);
    let (worst, best) = experiment.accuracy;
    let final_acc = worst + (best - worst) * quality;
    let chance = 1.0 / experiment.classes as f64;
    let final_loss = 0.05 + 1.6 * (1.0 - quality);
    let first_loss = (experiment.classes as f64).ln() * (1.0 + 0.1 * rng.random::<f64>());

    let (status, run_epochs, reason) = match rng.random::<f64>() {
        u if u < 0.80 => (Some(RunState::Finished), epochs, None),
        u if u < 0.88 => (
            Some(RunState::StoppedEarly),
            rng.random_range((epochs / 2).clamp(1, epochs.saturating_sub(1).max(1))..=epochs.saturating_sub(1).max(1)),
            Some("val.acc did not improve for 5 epochs"),
        ),
        u if u < 0.92 => {
            (Some(RunState::Diverged), rng.random_range(2.min(epochs)..=epochs), Some("train.loss is NaN"))
        }
        u if u < 0.95 => (Some(RunState::Failed), rng.random_range(1..=epochs), Some("out of memory")),
        u if u < 0.98 => (Some(RunState::Interrupted), rng.random_range(1..=epochs), Some("interrupted (SIGINT)")),
        _ => (None, rng.random_range(1..=epochs), None),
    };
    let started_at = base.plus(Duration::from_secs(index as u64 * 240 + rng.random_range(0..120)));
    let epoch_seconds = 20.0 * (1.0 + rng.random::<f64>()) * (batch_size as f64 / 128.0).powf(-0.2);
    let samples_per_sec = 6000.0 * (batch_size as f64 / 128.0).powf(0.3) / model_factor.powi(4);
    let keys =
        ["train.loss", "train.acc", "val.loss", "val.acc", "val.macro_f1", "lr", "grad_norm", "sys.samples_per_sec"];
    let mut series: Vec<(&'static str, Series)> = keys.iter().map(|k| (*k, Series::default())).collect();
    let mut wall = started_at;
    for epoch in 1..=run_epochs {
        let step = epoch * experiment.steps_per_epoch;
        wall = started_at.plus(Duration::from_secs_f64(epoch as f64 * epoch_seconds));
        let progress = 1.0 - (-(epoch as f64) / 4.0).exp();
        let train_loss = final_loss + (first_loss - final_loss) * (1.0 - progress) + 0.01 * normal(rng).abs();
        let overfit = 0.004 * epoch as f64 * (0.3 - dropout).max(0.0);
        let val_acc = (chance + (final_acc - chance) * progress + 0.006 * normal(rng)).clamp(0.0, 1.0);
        let lr_now = match scheduler {
            "cosine" => lr * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / epochs as f64).cos()),
            "step" => lr * 0.1f64.powi((epoch * 3 / epochs.max(1)) as i32),
            _ => lr,
        };
        let diverging = status == Some(RunState::Diverged) && epoch == run_epochs;
        let values = [
            if diverging { f64::NAN } else { train_loss },
            (val_acc + 0.02 + overfit * 3.0).min(1.0),
            if diverging { f64::NAN } else { train_loss * 1.08 + overfit + 0.01 * normal(rng).abs() },
            val_acc,
            (val_acc - 0.015 - 0.01 * rng.random::<f64>()).max(0.0),
            lr_now,
            0.5 + 3.0 * (-(epoch as f64) / 5.0).exp() + 0.1 * normal(rng).abs(),
            samples_per_sec * (1.0 + 0.03 * normal(rng)),
        ];
        for ((_, s), value) in series.iter_mut().zip(values) {
            s.push(step, epoch, wall, value);
        }
    }
    let name = format!("{model}-{optimizer}-lr{lr:.0e}-{index:05}");
    let run_id = format!("{index:05}{:07x}", rng.random_range(0..0x1000_0000u32));
    let run = new_run(run_id, name, experiment, started_at, seed, params);
    let end_at = wall.plus(Duration::from_secs(5));
    Generated { run, series, end: status.map(|s| (s, reason, end_at)) }
}

/// The long run: its ordinary series plus `points` steps of `train.loss_step` with one spike, at
/// the step returned.
fn long_run(rng: &mut ChaCha8Rng, points: u64, epochs: u64, base: Timestamp) -> (Generated, u64) {
    let mut generated = ordinary(rng, 0, epochs, base);
    let experiment = Experiment { name: LONG_RUN, ..EXPERIMENTS[0] };
    generated.run = new_run(
        LONG_RUN.to_string(),
        "resnet50-long-1M-steps".to_string(),
        &experiment,
        base,
        7,
        generated.run.params.clone(),
    );
    generated.end = Some((RunState::Finished, None, base.plus(Duration::from_secs(points / 20 + 60))));
    let spike = rng.random_range(points / 5..(points * 4 / 5).max(points / 5 + 1));
    let mut series = Series::default();
    let steps_per_epoch = points.div_ceil(epochs).max(1);
    for step in 0..points {
        let t = step as f64 / points as f64;
        let value = if step == spike {
            SPIKE
        } else {
            0.08 + 2.2 * (-t * 6.0).exp() + 0.04 * normal(rng).abs() + 0.02 * (t * 300.0).sin()
        };
        series.push(step, step / steps_per_epoch + 1, base.plus(Duration::from_millis(step * 50)), value);
    }
    generated.series.push((LONG_KEY, series));
    (generated, spike)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.store.join("store.sqlite").exists() {
        return Err(format!("{} already holds a store; remove it first", args.store.display()).into());
    }
    let store = SqliteStore::open(&args.store)?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let base = Timestamp::parse_rfc3339("2026-09-01T00:00:00Z").ok_or("bad base time")?;
    let mut jsonl = args.jsonl.as_ref().map(File::create).transpose()?.map(BufWriter::new);
    let started = Instant::now();
    let mut points = 0usize;
    let mut spike_step = None;
    if args.points > 0 {
        let (generated, spike) = long_run(&mut rng, args.points, args.epochs, base);
        generated.store(&store)?;
        points += generated.series.iter().map(|(_, s)| s.steps.len()).sum::<usize>();
        if let Some(out) = &mut jsonl {
            serde_json::to_writer(&mut *out, &generated.json())?;
            out.write_all(b"\n")?;
        }
        spike_step = Some(spike);
    }
    for index in 1..=args.runs {
        let generated = ordinary(&mut rng, index, args.epochs, base);
        generated.store(&store)?;
        points += generated.series.iter().map(|(_, s)| s.steps.len()).sum::<usize>();
        if let Some(out) = &mut jsonl {
            serde_json::to_writer(&mut *out, &generated.json())?;
            out.write_all(b"\n")?;
        }
        if index % 1000 == 0 {
            eprintln!("[ui-store] {index} runs, {points} points, {:.1} s", started.elapsed().as_secs_f64());
        }
    }
    if let Some(mut out) = jsonl {
        out.flush()?;
    }
    // The runs left running stopped heartbeating long ago: mark them crashed now, not on the
    // benchmark's first request.
    let crashed = store.reconcile(Timestamp::now(), Duration::from_secs(30))?;
    let total_runs = args.runs + usize::from(args.points > 0);
    eprintln!(
        "[ui-store] {total_runs} runs ({} crashed), {points} points in {:.1} s",
        crashed.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(meta) = &args.meta {
        let body = json!({
            "runs": total_runs,
            "points": points,
            "seed": args.seed,
            "long_run": (args.points > 0).then_some(LONG_RUN),
            "long_key": LONG_KEY,
            "long_points": args.points,
            "spike_step": spike_step,
            "spike_value": SPIKE,
        });
        std::fs::write(meta, serde_json::to_string_pretty(&body)? + "\n")?;
    }
    Ok(())
}
