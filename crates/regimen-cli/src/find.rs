//! `regimen find batch-size`: the largest batch whose full training step and validation step fit
//! in memory, found by doubling and then binary search.
//!
//! Each batch size is probed in a `regimen` process of its own (`--probe N`, hidden): a fresh model
//! takes one training step and one validation step, and the process reports its peak resident
//! memory (and the device pool on a GPU). Nothing the user trains is touched, and a probe that runs
//! out of memory, however it dies, is a data point ("does not fit"), never a crash of the finder.
//! On a CPU a batch fits when its peak memory stays under the budget, `--memory-limit` less the
//! `--margin`; on a GPU it fits when the probe succeeds, and the margin is taken off the batch.

use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, bail};
use bytesize::ByteSize;
use clap::{Args, Subcommand};
use regimen_train::BatchProbe;
use serde_json::json;

use crate::args::TrainArgs;
use crate::commands::emit;

/// `regimen find ...`.
#[derive(Debug, Subcommand)]
pub enum FindCommand {
    /// The largest batch size whose training and validation steps fit in memory, with a memory
    /// model (bytes ≈ fixed + per-sample × batch). Takes `regimen train`'s flags.
    BatchSize(Box<BatchSizeArgs>),
    /// The learning-rate range test: a learning rate that grows from 1e-8 to 1 over 100 steps, on
    /// a model that is thrown away; suggests a rate, with its spread over seeds, and plots the
    /// loss against the rate. Takes `regimen train`'s flags.
    Lr(Box<LrArgs>),
}

/// Flags of `regimen find lr`.
#[derive(Debug, Args)]
pub struct LrArgs {
    /// The setup, exactly as `regimen train` takes it (`--json` prints the result as JSON;
    /// `--init-from` tests from pretrained weights, which are only read).
    #[command(flatten)]
    pub train: TrainArgs,
    /// The first learning rate.
    #[arg(long, value_name = "LR", default_value_t = 1e-8, help_heading = "Find")]
    pub start_lr: f64,
    /// The last learning rate.
    #[arg(long, value_name = "LR", default_value_t = 1.0, help_heading = "Find")]
    pub end_lr: f64,
    /// Steps of each test.
    #[arg(long, value_name = "N", default_value_t = 100, help_heading = "Find")]
    pub steps: usize,
    /// Tests, each with its own seed (the run's seed, then the next ones), so that a flaky
    /// suggestion shows as a wide spread.
    #[arg(long, value_name = "N", default_value_t = 3, help_heading = "Find")]
    pub seeds: u64,
    /// The picture of loss against learning rate (PNG or SVG by its extension)
    /// [default: <store>/finds/lr-<UTC time>.png].
    #[arg(long, value_name = "FILE", help_heading = "Find")]
    pub plot: Option<std::path::PathBuf>,
}

/// Flags of `regimen find batch-size`.
#[derive(Debug, Args)]
pub struct BatchSizeArgs {
    /// The setup, exactly as `regimen train` takes it (`--json` prints the result as JSON).
    #[command(flatten)]
    pub train: TrainArgs,
    /// On a CPU, the memory a training process may use: `8GiB`, `500MB` [default: half of the
    /// memory available now].
    #[arg(long, value_name = "SIZE", help_heading = "Find")]
    pub memory_limit: Option<ByteSize>,
    /// Safety margin: the share of the limit (of the batch, on a GPU) kept free.
    #[arg(long, value_name = "F", default_value_t = 0.1, help_heading = "Find")]
    pub margin: f64,
    /// Probes one batch size in this process and prints what it measured (used by the finder).
    #[arg(long, value_name = "N", hide = true)]
    pub probe: Option<usize>,
}

/// Runs a find command.
pub fn dispatch(command: FindCommand) -> anyhow::Result<ExitCode> {
    match command {
        FindCommand::BatchSize(args) => batch_size(&args),
        FindCommand::Lr(args) => learning_rate(&args),
    }
}

/// One probe's outcome as the finder sees it.
#[derive(Debug, Clone)]
struct Observed {
    batch_size: usize,
    /// What it measured; `None` when the probe failed (out of memory, or killed).
    probe: Option<BatchProbe>,
    fits: bool,
    /// Why it failed.
    failure: Option<String>,
}

fn batch_size(args: &BatchSizeArgs) -> anyhow::Result<ExitCode> {
    let config = args.train.resolve()?;
    if let Some(batch) = args.probe {
        let probe = regimen_train::probe_batch_size(&config, batch)?;
        emit(&format!("{}\n", serde_json::to_string(&probe)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    if !(0.0..1.0).contains(&args.margin) {
        bail!("--margin must be in [0, 1), not {}", args.margin);
    }
    let cpu = config.device == "cpu";
    let limit = match args.memory_limit {
        Some(limit) => limit.as_u64(),
        None => default_limit(1)?,
    };
    let budget = (limit as f64 * (1.0 - args.margin)) as u64;
    let fits = |probe: &BatchProbe| !cpu || probe.peak_rss_bytes.is_some_and(|bytes| bytes <= budget);
    let mut observed: Vec<Observed> = Vec::new();
    let mut probe = |batch: usize| -> anyhow::Result<Observed> {
        let seen = run_probe(batch)?;
        let result = match seen {
            Ok(probe) => Observed { batch_size: batch, fits: fits(&probe), probe: Some(probe), failure: None },
            Err(why) => Observed { batch_size: batch, probe: None, fits: false, failure: Some(why) },
        };
        say!("  batch {:>6}: {}", batch, describe(&result));
        observed.push(result.clone());
        Ok(result)
    };
    if cpu {
        say!(
            "finding the largest batch within {} of the {} limit ({}% kept free)",
            ByteSize::b(budget),
            ByteSize::b(limit),
            (args.margin * 100.0).round()
        );
    } else {
        say!("finding the largest batch that trains on {} without running out of memory", config.device);
    }
    let first = probe(1)?;
    let cap = match (&first.probe, first.fits) {
        (Some(p), true) => p.train_samples,
        (Some(p), false) => bail!(
            "even a batch of 1 needs {} at its peak, over the budget of {} ({} limit less the {}% margin); \
             raise --memory-limit or use a smaller model",
            ByteSize::b(p.peak_rss_bytes.unwrap_or(0)),
            ByteSize::b(budget),
            ByteSize::b(limit),
            (args.margin * 100.0).round()
        ),
        (None, _) => {
            bail!("even a batch of 1 failed: {}", first.failure.unwrap_or_else(|| "the probe gave no reason".into()))
        }
    };
    // Doubling, then binary search between the largest that fit and the smallest that did not.
    let (mut good, mut bad) = (1usize, None::<usize>);
    while good < cap {
        let next = (good * 2).min(cap);
        if probe(next)?.fits {
            good = next;
        } else {
            bad = Some(next);
            break;
        }
    }
    if let Some(mut high) = bad {
        // To within 1/64 of the answer: the last few probes would each gain under 2%.
        while high - good > (good / 64).max(1) {
            let mid = good + (high - good) / 2;
            if probe(mid)?.fits {
                good = mid;
            } else {
                high = mid;
            }
        }
    }
    let chosen = if cpu { good } else { ((good as f64) * (1.0 - args.margin)).floor().max(1.0) as usize };
    let model = memory_model(&observed);
    let capped = bad.is_none() && good == cap;
    let result = json!({
        "batch_size": chosen,
        "largest_that_fits": good,
        "capped_by_training_split": capped,
        "device": config.device,
        "limit_bytes": cpu.then_some(limit),
        "budget_bytes": cpu.then_some(budget),
        "margin": args.margin,
        "memory_model": model.map(|(fixed, per_sample)| json!({"fixed_bytes": fixed, "bytes_per_sample": per_sample})),
        "probes": observed.iter().map(|o| json!({
            "batch_size": o.batch_size,
            "fits": o.fits,
            "peak_rss_bytes": o.probe.and_then(|p| p.peak_rss_bytes),
            "device_bytes": o.probe.and_then(|p| p.device_bytes),
            "failure": o.failure,
        })).collect::<Vec<_>>(),
    });
    if args.train.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&result)?))?;
    } else {
        let mut text = format!("batch size: {chosen}");
        if capped {
            text.push_str(" (every sample of the training split in one batch fits)");
        }
        if let Some((fixed, per_sample)) = model {
            text.push_str(&format!(
                "\nmemory ≈ {} + {} × batch (fitted to {} probes)",
                ByteSize::b(fixed.max(0.0) as u64),
                ByteSize::b(per_sample.max(0.0) as u64),
                observed.iter().filter(|o| o.probe.is_some()).count()
            ));
        }
        emit(&format!("{text}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn learning_rate(args: &LrArgs) -> anyhow::Result<ExitCode> {
    let config = args.train.resolve()?;
    if !(args.start_lr > 0.0 && args.end_lr > args.start_lr && args.steps >= 10 && args.seeds >= 1) {
        bail!("need 0 < --start-lr < --end-lr, --steps of at least 10 and --seeds of at least 1");
    }
    let test =
        regimen_train::RangeTest { start: args.start_lr, end: args.end_lr, steps: args.steps, ..Default::default() };
    // Only `--init-from` reads the store (a run named by id or name): otherwise none is opened.
    let recorder = match config.init_from {
        Some(_) => crate::recorder(&config.store)?,
        None => regimen_train::Recorder::new(&config.store, None),
    };
    let mut tests = Vec::new();
    for i in 0..args.seeds {
        let seed = config.seed.wrapping_add(i);
        let points = regimen_train::lr_range_test(&config, &recorder, &test, seed)?;
        let suggestion = regimen_train::suggest_lr(&points);
        match suggestion {
            Some((steepest, tenth)) => {
                say!(
                    "  seed {seed}: steepest descent at {steepest:.2e}, lowest loss ÷ 10 at {tenth:.2e} ({} steps)",
                    points.len()
                )
            }
            None => say!("  seed {seed}: the loss diverged after {} steps; no suggestion", points.len()),
        }
        tests.push((seed, points, suggestion));
    }
    let steepest: Vec<f64> = tests.iter().filter_map(|(_, _, s)| s.map(|s| s.0)).collect();
    let tenths: Vec<f64> = tests.iter().filter_map(|(_, _, s)| s.map(|s| s.1)).collect();
    let Some(lr) = geometric_median(&steepest) else {
        bail!(
            "no test gave a suggestion: the loss diverged almost at once; lower --start-lr or check the setup with `regimen check`"
        );
    };
    let (low, high) = steepest.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let decades = (high / low).log10();
    let plot = match &args.plot {
        Some(path) => path.clone(),
        None => {
            let stamp: String =
                regimen_store::Timestamp::now().to_string().chars().filter(char::is_ascii_digit).take(14).collect();
            config.store.join("finds").join(format!("lr-{stamp}.png"))
        }
    };
    if let Some(folder) = plot.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).with_context(|| format!("could not create {}", folder.display()))?;
    }
    let mut curves: Vec<regimen_plot::Curve> = tests
        .iter()
        .map(|(seed, points, _)| regimen_plot::Curve {
            run_label: format!("seed {seed}"),
            key: "loss (smoothed)".into(),
            points: points.iter().map(|p| (p.lr, p.smoothed)).collect(),
        })
        .collect();
    let losses = tests.iter().flat_map(|(_, p, _)| p.iter().map(|p| p.smoothed)).filter(|v| v.is_finite());
    let (bottom, top) = losses.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    curves.push(regimen_plot::Curve {
        run_label: format!("suggestion {lr:.2e}"),
        key: "loss (smoothed)".into(),
        points: vec![(lr, bottom), (lr, top)],
    });
    let options = regimen_plot::PlotOptions {
        x_label: "learning rate".into(),
        title: Some(format!("learning-rate range test: suggestion {lr:.2e}")),
        log_x: true,
        ..regimen_plot::PlotOptions::default()
    };
    regimen_plot::plot(&curves, &options, &plot)?;
    let flaky = decades > 1.0;
    if args.train.json {
        let value = json!({
            "lr": lr,
            "min_div_10": geometric_median(&tenths),
            "spread": { "low": low, "high": high, "decades": decades },
            "flaky": flaky,
            "plot": plot,
            "tests": tests.iter().map(|(seed, points, suggestion)| json!({
                "seed": seed,
                "steepest": suggestion.map(|s| s.0),
                "min_div_10": suggestion.map(|s| s.1),
                "points": points,
            })).collect::<Vec<_>>(),
        });
        emit(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
    } else {
        let mut text = format!(
            "learning rate: {lr:.2e} (steepest descent; lowest loss ÷ 10 gives {:.2e})\nspread over {} seeds: {low:.2e} to {high:.2e} ({decades:.1} decades)\nplot: {}\n",
            geometric_median(&tenths).unwrap_or(f64::NAN),
            steepest.len(),
            plot.display()
        );
        if flaky {
            text.push_str("warning: the suggestion moves by more than a decade between seeds; treat it as a range, and confirm with short runs\n");
        }
        emit(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The median in log space (the geometric median of positive numbers); `None` without values.
fn geometric_median(values: &[f64]) -> Option<f64> {
    regimen_metrics::median(values.iter().map(|v| v.ln())).map(f64::exp)
}

/// Runs `regimen` again, with the same flags, to probe one batch size; `Err(why)` when the
/// probe process failed.
fn run_probe(batch: usize) -> anyhow::Result<Result<BatchProbe, String>> {
    let exe = std::env::current_exe().context("cannot find the regimen executable")?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let output = Command::new(exe)
        .args(args)
        .args(["--probe", &batch.to_string()])
        .stdin(Stdio::null())
        .output()
        .context("could not start a batch-size probe")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
        let why = match std::os::unix::process::ExitStatusExt::signal(&output.status) {
            Some(9) => "killed (the system ran out of memory)".to_string(),
            Some(signal) => format!("died of signal {signal}"),
            None if last.is_empty() => format!("exited with {}", output.status),
            None => last,
        };
        return Ok(Err(why));
    }
    let probe = serde_json::from_slice(&output.stdout).context("a batch-size probe printed no result")?;
    Ok(Ok(probe))
}

fn describe(observed: &Observed) -> String {
    match (&observed.probe, &observed.failure) {
        (Some(p), _) => {
            let memory =
                p.peak_rss_bytes.map_or("peak memory unknown".to_string(), |b| format!("{} peak", ByteSize::b(b)));
            format!("{memory}, {}", if observed.fits { "fits" } else { "over the budget" })
        }
        (None, Some(why)) => format!("failed: {why}"),
        (None, None) => "failed".into(),
    }
}

/// Least squares of peak memory on batch size over the probes that measured it: (fixed bytes,
/// bytes per sample); `None` with fewer than two distinct batch sizes.
fn memory_model(observed: &[Observed]) -> Option<(f64, f64)> {
    let points: Vec<(f64, f64)> =
        observed.iter().filter_map(|o| Some((o.batch_size as f64, o.probe?.peak_rss_bytes? as f64))).collect();
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if points.len() < 2 || sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    Some((mean_y - slope * mean_x, slope))
}

/// The default memory limit of each of `processes` training processes: half of the memory
/// available now, shared.
pub fn default_limit(processes: usize) -> anyhow::Result<u64> {
    Ok(available_memory()? / 2 / processes.max(1) as u64)
}

/// `MemAvailable` from /proc/meminfo: what can be allocated without swapping.
fn available_memory() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo")
        .context("cannot read /proc/meminfo to size the default memory limit; give --memory-limit")?;
    let kib = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .context("/proc/meminfo has no MemAvailable line; give --memory-limit")?;
    Ok(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(batch_size: usize, bytes: u64) -> Observed {
        let probe = BatchProbe { batch_size, peak_rss_bytes: Some(bytes), device_bytes: None, train_samples: 1000 };
        Observed { batch_size, probe: Some(probe), fits: true, failure: None }
    }

    #[test]
    fn the_memory_model_is_a_least_squares_line() {
        let points: Vec<Observed> = [1, 2, 4, 8].iter().map(|&b| measured(b, 1000 + 10 * b as u64)).collect();
        let (fixed, per_sample) = memory_model(&points).unwrap();
        assert!((fixed - 1000.0).abs() < 1e-6 && (per_sample - 10.0).abs() < 1e-9);
        assert_eq!(memory_model(&points[..1]), None);
    }
}
