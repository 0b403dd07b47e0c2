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
