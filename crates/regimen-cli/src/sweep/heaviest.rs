//! `--batch-size-from-heaviest`: the recipe's habit of fixing the batch size for a whole sweep at
//! what its heaviest configuration fits, so that trials differ only in what is searched.
//!
//! The heaviest configuration: every numeric parameter at its upper bound (wider, deeper, larger
//! is heavier), and of the combinations of choices (at most [`MAX_COMBINATIONS`]) the one whose
//! probe at a small batch has the highest peak memory, since a choice's weight cannot be told from
//! its name (`adam` keeps two moments, `sgd` one). `regimen find batch-size` then runs on it.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use regimen_sweep::{Domain, Params, Value};
use serde_json::json;

use super::spec::{Recorded, SweepFile};

/// Combinations of choices probed to find the heaviest; a space with more is refused.
const MAX_COMBINATIONS: usize = 16;

/// The batch size at which the combinations are compared.
const COMPARE_AT: usize = 8;

/// Finds the batch size for `recorded`'s heaviest configuration within `limit` bytes and records
/// it: every trial trains with it.
pub fn choose_batch_size(recorded: &mut Recorded, folder: &Path, root: &Path, limit: u64) -> anyhow::Result<()> {
    let sweep = recorded.parse()?;
    if !sweep.command.is_empty() {
        bail!("--batch-size-from-heaviest measures `regimen train`; a sweep of a script sets its own batch size");
    }
    if sweep.space.get("batch_size").is_some() {
        bail!("--batch-size-from-heaviest fixes the batch size; drop `batch_size` from [params]");
    }
    let candidates = heaviest_candidates(&sweep)?;
    let config = folder.join("train.toml");
    let mut heaviest: Option<(u64, Params)> = None;
    if candidates.len() > 1 {
        say!("comparing {} combinations of choices at a batch of {COMPARE_AT}", candidates.len());
        for params in candidates {
            let peak = probe(&config, root, &params)?;
            say!("  {} → {}", super::worker::describe(&params), bytesize::ByteSize::b(peak));
            if heaviest.as_ref().is_none_or(|(most, _)| peak > *most) {
                heaviest = Some((peak, params));
            }
        }
    } else {
        heaviest = candidates.into_iter().next().map(|params| (0, params));
    }
    let (_, params) = heaviest.context("the space has no configuration")?;
    say!("finding the batch size for the heaviest configuration: {}", super::worker::describe(&params));
    let exe = std::env::current_exe().context("cannot find the regimen executable")?;
    let output = Command::new(exe)
        .args(["find", "batch-size", "--config"])
        .arg(&config)
        .args(SweepFile::flags(&params))
        .arg("--store")
        .arg(root)
        .args(["--memory-limit", &limit.to_string(), "--json"])
        .env_remove("REGIMEN_STORE")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("could not run `regimen find batch-size`")?;
    if !output.status.success() {
        bail!("`regimen find batch-size` on the heaviest configuration failed (see above)");
    }
    let found: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("`regimen find batch-size` printed no result")?;
    let batch = found["batch_size"].as_u64().context("`regimen find batch-size` gave no batch size")?;
    say!("every trial trains with a batch of {batch}");
    recorded.train_overrides.insert("batch_size".into(), toml::Value::Integer(batch as i64));
    recorded.batch_size_from_heaviest = Some(json!({
        "params": params,
        "batch_size": batch,
        "limit_bytes": limit,
        "memory_model": found["memory_model"],
    }));
    Ok(())
}

/// The candidates for the heaviest configuration: numeric parameters at their upper bounds, under
/// every combination of the categorical ones (conditional parameters only where active).
fn heaviest_candidates(sweep: &SweepFile) -> anyhow::Result<Vec<Params>> {
    let mut combinations: Vec<Params> = vec![Params::new()];
    for param in sweep.space.params() {
        let choices: Vec<Value> = match &param.domain {
            Domain::Fixed(value) => vec![value.clone()],
            Domain::Float { high, .. } => vec![Value::Float(*high)],
            Domain::Int { high, .. } => vec![Value::Int(*high)],
            Domain::Categorical(choices) => choices.clone(),
        };
        let mut next = Vec::new();
        for params in &combinations {
            if !sweep.space.is_active(param, params) {
                next.push(params.clone());
                continue;
            }
            for choice in &choices {
                let mut extended = params.clone();
                extended.insert(param.name.clone(), choice.clone());
                next.push(extended);
            }
        }
        combinations = next;
        if combinations.len() > MAX_COMBINATIONS {
            bail!(
                "--batch-size-from-heaviest compares at most {MAX_COMBINATIONS} combinations of choices, and this space \
                 has more; set the batch size in [train] instead"
            );
        }
    }
    Ok(combinations)
}

/// Peak memory of one training and validation step of `params` at a small batch.
fn probe(config: &Path, root: &Path, params: &Params) -> anyhow::Result<u64> {
    let exe = std::env::current_exe().context("cannot find the regimen executable")?;
    let output = Command::new(exe)
        .args(["find", "batch-size", "--config"])
        .arg(config)
        .args(SweepFile::flags(params))
        .arg("--store")
        .arg(root)
        .args(["--probe", &COMPARE_AT.to_string()])
        .env_remove("REGIMEN_STORE")
        .stdin(Stdio::null())
        .output()
        .context("could not start a batch-size probe")?;
    if !output.status.success() {
        bail!("probing {} failed: {}", super::worker::describe(params), String::from_utf8_lossy(&output.stderr).trim());
    }
    let probe: regimen_train::BatchProbe =
        serde_json::from_slice(&output.stdout).context("a batch-size probe printed no result")?;
    Ok(probe.peak_rss_bytes.unwrap_or(0))
}
