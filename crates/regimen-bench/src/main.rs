//! Regimen's side of `bench/run.sh`: trains the benchmark MLP, CNN or ResNet with Regimen's full loop
//! (seeded data pipeline, running metrics, JSON-lines event log, observer hooks) and prints
//! one JSON line with samples/s over the timed steps, in the same format as the bare Burn loop and
//! the PyTorch script.
//!
//! The data is random (inputs uniform in [0, 1), labels uniform over 10 classes), as in the other
//! implementations; one epoch covers warm-up plus timed steps, and the clock runs from the end of
//! the last warm-up step to the end of the last timed step, so the epoch-end validation is outside
//! the measurement, as it is outside the bare loop.
//!
//! Like the `regimen` binary, it keeps freed memory in the process
//! (`regimen_train::system::keep_freed_memory`); `REGIMEN_GLIBC_DEFAULTS=1` leaves glibc's
//! defaults, to measure what that setting is worth.

use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng};
use regimen_data::{DatasetIdentity, PreparedData, Samples, Targets, Task};
use std::sync::Arc;

use burn::optim::GradientsParams;
use regimen_events::{Event, EventSink, JsonLinesSink, NullSink, RunStart, SinkError, Tee};
use regimen_store::{RunStore, SinkOptions, SqliteStore, StoreSink};
use regimen_train::layer_grad_norms;
use regimen_train::model::build_builtin;
use regimen_train::{FitContext, Network, Observer, StepProgress, TrainConfig, fit};

/// Benchmark arguments, shared with the other implementations.
#[derive(Parser)]
struct Args {
    /// `mlp` (784-512-512-10, batch 128), `cnn` (conv32-BN-ReLU-pool, conv64-BN-ReLU-pool, linear;
    /// batch 64) or `resnet` (`--model resnet`'s defaults on 3×32×32, batch 64).
    #[arg(long)]
    model: String,
    /// Threads of the compute pool (reported; rayon reads RAYON_NUM_THREADS).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Timed steps.
    #[arg(long, default_value_t = 40)]
    steps: u64,
    /// Seed of data and initialization.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// `full`: what `regimen train` records (JSON-lines file and the SQLite run store through its
    /// background writer), the training loss at every step; `none`: events are dropped (NullSink)
    /// and nothing is logged between epoch ends.
    #[arg(long, default_value = "full")]
    logging: String,
    /// The device, as `regimen train --device` takes it (`cpu`, `cuda[:N]`, `wgpu`); the GPU ones
    /// need the build's `cuda` or `wgpu` feature.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Per-layer gradient norms every N steps (`regimen train --grad-norm-every`); 0: off.
    #[arg(long, default_value_t = TrainConfig::default().grad_norm_every)]
    grad_norm_every: u64,
}

/// Notes the time at the end of the warm-up and at the end of the timed steps.
struct Stopwatch {
    warmup: u64,
    last: u64,
    started: Option<Instant>,
    seconds: Option<f64>,
}

impl Observer for Stopwatch {
    fn on_step(&mut self, progress: &StepProgress) {
        if progress.step_in_epoch == self.warmup {
            self.started = Some(Instant::now());
        } else if progress.step_in_epoch == self.last {
            self.seconds = self.started.map(|t| t.elapsed().as_secs_f64());
        }
    }
}

fn random_samples(shape: &[usize], n: usize, rng: &mut impl Rng) -> Samples {
    Samples {
        shape: shape.to_vec(),
        features: (0..n * shape.iter().product::<usize>()).map(|_| rng.random::<f32>()).collect(),
        targets: Targets::Classes((0..n).map(|_| rng.random_range(0..10)).collect()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if std::env::var_os("REGIMEN_GLIBC_DEFAULTS").is_none() {
        regimen_train::system::keep_freed_memory();
    }
    let (batch, shape) = match args.model.as_str() {
        "mlp" => (128, vec![1, 28, 28]),
        "cnn" => (64, vec![1, 28, 28]),
        "resnet" => (64, vec![3, 32, 32]),
        other => return Err(format!("unknown model `{other}`; use mlp, cnn or resnet").into()),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let train_len = (args.warmup + args.steps) as usize * batch;
    let data = PreparedData {
        identity: DatasetIdentity {
            name: "random".into(),
            fingerprint: String::new(),
            short_id: String::new(),
            split_seed: 0,
            fractions: [1.0, 0.0, 0.0],
            sizes: [train_len, batch, 0],
            test_from_source: false,
            lineage: None,
        },
        task: Task::Classification { classes: (0..10).map(|c| c.to_string()).collect() },
        shape: shape.clone(),
        train: random_samples(&shape, train_len, &mut rng),
        val: random_samples(&shape, batch, &mut rng),
        test: random_samples(&shape, 0, &mut rng),
        normalization: None,
    };
    let full = match args.logging.as_str() {
        "full" => true,
        "none" => false,
        other => return Err(format!("unknown --logging `{other}`; use full or none").into()),
    };
    let config = TrainConfig {
        model: args.model.clone(),
        // The MLP is 784-512-512-10; the CNN has two conv blocks (32, 64) and no hidden dense layer;
        // the ResNet keeps its defaults (depth 2, width 16).
        hidden: (args.model == "mlp").then(|| vec![512, 512]),
        channels: vec![32, 64],
        dropout: 0.0,
        batch_norm: false,
        activation: "relu".into(),
        device: args.device.clone(),
        epochs: 1,
        batch_size: batch,
        seed: args.seed,
        log_every: if full { 1 } else { u64::MAX },
        grad_norm_every: args.grad_norm_every,
        prediction_samples: if full { TrainConfig::default().prediction_samples } else { 0 },
        ..TrainConfig::default()
    };
    let device = regimen_train::parse_device(&args.device)?.autodiff();
    device.seed(args.seed);
    let log = tempfile::tempdir_in(".")?;
    let inner: Box<dyn EventSink> = if full { Box::new(full_sink(log.path(), &config)?) } else { Box::new(NullSink) };
    let mut sink = TimedSink { inner, spent: Duration::ZERO };
    let writer_cpu_before = writer_cpu_seconds();
    let mut stopwatch = Stopwatch { warmup: args.warmup, last: args.warmup + args.steps, started: None, seconds: None };
    let ctx = |sink, observer| FitContext {
        config: &config,
        data: &data,
        device: device.clone(),
        checkpoints: None,
        resume: None,
        sink,
        observer,
    };
    let build = || build_builtin(&config, &shape, 10, &device);
    run(build()?, ctx(&mut sink, &mut stopwatch))?;
    sink.flush()?;
    let writer_cpu = writer_cpu_seconds() - writer_cpu_before;
    let grad_norm_call = grad_norm_seconds(build()?, batch, shape.iter().product(), &device);
    let all_steps = (args.warmup + args.steps) as f64;
    let seconds = stopwatch.seconds.ok_or("the timed steps did not complete")?;
    let samples = args.steps as f64 * batch as f64;
    println!(
        "{}",
        serde_json::json!({
            "impl": "regimen",
            "model": args.model,
            "batch": batch,
            "steps": args.steps,
            "seconds": seconds,
            "samples_per_sec": samples / seconds,
            "threads": args.threads,
            "device": args.device,
            "logging": args.logging,
            "grad_norm_every": args.grad_norm_every,
            // Direct measurements of what logging and diagnosis cost, free of run-to-run noise:
            // time the training thread spent in the sink per step, CPU time of the store's
            // writer thread per step (it competes for the cores), and one per-layer gradient
            // norm computation.
            "sink_seconds_per_step": sink.spent.as_secs_f64() / all_steps,
            "writer_cpu_seconds_per_step": writer_cpu / all_steps,
            "grad_norm_seconds_per_call": grad_norm_call,
        })
    );
    Ok(())
}

/// The sink `regimen train` uses: the run's JSON-lines file and the SQLite run store, with the run
/// started in it.
fn full_sink(
    dir: &std::path::Path,
    config: &TrainConfig,
) -> Result<Tee<JsonLinesSink, StoreSink>, Box<dyn std::error::Error>> {
    let store: Arc<dyn RunStore> = Arc::new(SqliteStore::open(dir.join("store"))?);
    let mut sink = Tee(JsonLinesSink::open(dir.join("events.jsonl"))?, StoreSink::new(store, SinkOptions::default())?);
    let start = RunStart {
        run_id: "bench".into(),
        name: "bench".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        seed: config.seed,
        experiment: config.experiment.clone(),
        monitor: regimen_metrics::Monitored { metric: "val.loss".into(), mode: regimen_metrics::Mode::Min },
        task: regimen_metrics::TaskInfo::Classification { classes: 10, majority_share: None },
        params: config.params(),
        config: serde_json::to_value(config)?,
        dataset: serde_json::Value::Null,
        provenance: regimen_events::Provenance::default(),
        environment: serde_json::Value::Null,
    };
    sink.record(&Event::RunStarted(&start))?;
    sink.flush()?;
    Ok(sink)
}

/// A sink that times the calls the training thread makes into it.
struct TimedSink {
    inner: Box<dyn EventSink>,
    spent: Duration,
}

impl EventSink for TimedSink {
    fn record(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        let started = Instant::now();
        let result = self.inner.record(event);
        self.spent += started.elapsed();
        result
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let started = Instant::now();
        let result = self.inner.flush();
        self.spent += started.elapsed();
        result
    }
}

/// CPU seconds used so far by the store's writer thread (0 when there is none), from
/// `/proc/self/task/*/stat`, in clock ticks of 10 ms.
fn writer_cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
        .filter(|stat| stat.contains("(regimen-store-w"))
        .filter_map(|stat| {
            // Fields after the `(comm)`: state is the first, utime and stime the 12th and 13th.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
        })
        .sum::<f64>()
        / 100.0
}

/// Median seconds of one per-layer gradient norm computation (what `--grad-norm-every` adds to a
/// step that logs norms) for `model` on a random batch.
fn grad_norm_seconds<M: Network>(model: M, batch: usize, features: usize, device: &burn::tensor::Device) -> f64 {
    let input = burn::tensor::Tensor::<2>::random([batch, features], burn::tensor::Distribution::Default, device);
    let loss = model.forward(input).powf_scalar(2.0).mean();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(layer_grad_norms(&model, &grads));
            started.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn run<M: Network>(model: M, ctx: FitContext<'_>) -> Result<(), regimen_train::TrainError> {
    fit(model, ctx).map(|_| ())
}
