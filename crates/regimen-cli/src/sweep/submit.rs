//! `regimen sweep submit`: a sweep's workers as the standard jobs of a cluster's scheduler.
//!
//! Workers pull their trials from the store, so a cluster job needs nothing but to start some:
//! Slurm gets a job array whose tasks each run `regimen sweep worker SWEEP` (`sbatch --array`,
//! `%K` for at most K at once), Kubernetes an Indexed Job of as many pods with a retry limit per
//! index. Both name the store as given (a `postgres://` URL for a cluster) and carry the artifact
//! settings, so the workers on the nodes see the same runs and checkpoints.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context;
use clap::Args;

use crate::commands::StoreArg;

/// Flags of `regimen sweep submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The sweep: id, id prefix or name (create it first with `regimen sweep run FILE -j 0`).
    pub sweep: String,
    /// Submit a Slurm job array with `sbatch`.
    #[arg(long, conflicts_with = "kubernetes")]
    pub slurm: bool,
    /// Write a Kubernetes Indexed Job manifest to apply with `kubectl apply -f`.
    #[arg(long, requires = "image")]
    pub kubernetes: bool,
    /// Workers in all, and at most how many at once: `N` or `N%K` (Slurm's array syntax).
    #[arg(long, default_value = "4", value_name = "N[%K]")]
    pub array: String,
    /// Generic resources per worker, e.g. `gpu:1` (Slurm `--gres`; on Kubernetes, `gpu:N` asks
    /// for N `nvidia.com/gpu`).
    #[arg(long, value_name = "GRES")]
    pub gres: Option<String>,
    /// Time limit per worker, e.g. `2:00:00` (Slurm `--time`; `activeDeadlineSeconds` on Kubernetes).
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// Slurm partition.
    #[arg(long, value_name = "NAME")]
    pub partition: Option<String>,
    /// Container image with `regimen` on its PATH (Kubernetes).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Times a Kubernetes worker pod is retried before its index counts as failed.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub retries: u32,
    /// Write the job file and print it, without submitting.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until every worker of the Slurm job array has ended (`sbatch --wait`).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

/// How many workers, and at most how many at once.
fn parse_array(text: &str) -> anyhow::Result<(u32, Option<u32>)> {
    let bad = || anyhow::anyhow!("--array {text}: expected N or N%K, e.g. 16%4 (16 workers, at most 4 at once)");
    let (count, limit) = match text.split_once('%') {
        Some((n, k)) => (n, Some(k)),
        None => (text, None),
    };
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let limit = limit.map(|k| k.trim().parse::<u32>()).transpose().map_err(|_| bad())?;
    if count == 0 || limit == Some(0) {
        return Err(bad());
    }
    Ok((count, limit))
}

/// The environment the workers need: where artifacts and the cache are, and S3's settings.
fn worker_environment() -> Vec<(String, String)> {
    let names = [
        regimen_store::ARTIFACTS_ENV,
        regimen_store::CACHE_ENV,
        "REGIMEN_STALE_AFTER",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ];
    names.iter().filter_map(|name| std::env::var(name).ok().map(|value| (name.to_string(), value))).collect()
}

/// A value quoted for a POSIX shell.
fn quoted(value: &str) -> String {
    shlex::try_quote(value).map_or_else(|_| format!("'{}'", value.replace('\'', "")), |q| q.into_owned())
}

/// The `sbatch` script of a sweep's workers.
pub fn slurm_script(args: &SubmitArgs, exe: &Path, sweep_id: &str, store: &str, logs: &Path) -> anyhow::Result<String> {
    let (count, limit) = parse_array(&args.array)?;
    let mut script = String::from("#!/bin/bash\n");
    let _ = writeln!(script, "# Workers of Regimen sweep {sweep_id}, written by `regimen sweep submit --slurm`.");
    let _ = writeln!(script, "#SBATCH --job-name=regimen-{sweep_id}");
    let _ = writeln!(script, "#SBATCH --array=0-{}{}", count - 1, limit.map(|k| format!("%{k}")).unwrap_or_default());
    let _ = writeln!(script, "#SBATCH --output={}", logs.join("slurm-%A_%a.log").display());
    let _ = writeln!(script, "#SBATCH --ntasks=1");
    if let Some(gres) = &args.gres {
        let _ = writeln!(script, "#SBATCH --gres={gres}");
    }
    if let Some(time) = &args.time {
        let _ = writeln!(script, "#SBATCH --time={time}");
    }
    if let Some(partition) = &args.partition {
        let _ = writeln!(script, "#SBATCH --partition={partition}");
    }
    for (name, value) in worker_environment() {
        let _ = writeln!(script, "export {name}={}", quoted(&value));
    }
    let _ = writeln!(
        script,
        "exec {} sweep worker {} --store {}",
        quoted(&exe.display().to_string()),
        quoted(sweep_id),
        quoted(store)
    );
    Ok(script)
}

/// A name Kubernetes accepts for the Job: lowercase letters, digits and dashes, at most 63.
fn dns_label(text: &str) -> String {
    let mut label: String =
        text.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    label.truncate(63);
    label.trim_matches('-').to_string()
}

/// The Indexed Job manifest of a sweep's workers, as JSON (which `kubectl` reads as YAML too).
pub fn kubernetes_manifest(args: &SubmitArgs, sweep_id: &str, store: &str) -> anyhow::Result<serde_json::Value> {
    let (count, limit) = parse_array(&args.array)?;
    let image = args.image.as_deref().context("--kubernetes needs --image, a container image with regimen")?;
    let env: Vec<serde_json::Value> = worker_environment()
        .into_iter()
        .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
        .collect();
    let mut container = serde_json::json!({
        "name": "worker",
        "image": image,
        "command": ["regimen", "sweep", "worker", sweep_id, "--store", store],
        "env": env,
    });
    if let Some(gpus) = args.gres.as_deref().and_then(|g| g.strip_prefix("gpu:")) {
        let gpus: u32 = gpus.parse().with_context(|| format!("--gres gpu:{gpus}: expected a number of GPUs"))?;
        container["resources"] = serde_json::json!({"limits": {"nvidia.com/gpu": gpus}});
    }
    let mut spec = serde_json::json!({
        "completionMode": "Indexed",
        "completions": count,
        "parallelism": limit.unwrap_or(count),
        "backoffLimitPerIndex": args.retries,
        "maxFailedIndexes": count,
        "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
    });
    if let Some(time) = &args.time {
        spec["activeDeadlineSeconds"] = serde_json::json!(slurm_seconds(time)?);
    }
    Ok(serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": dns_label(&format!("regimen-{sweep_id}")), "labels": {"app.kubernetes.io/name": "regimen-sweep"}},
        "spec": spec,
    }))
}

/// Seconds in a Slurm time limit: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`.
fn slurm_seconds(text: &str) -> anyhow::Result<u64> {
    let bad = || anyhow::anyhow!("--time {text}: expected a Slurm time such as 90, 1:30:00 or 2-00:00:00");
    let (days, rest) = match text.split_once('-') {
        Some((d, rest)) => (d.parse::<u64>().map_err(|_| bad())?, rest),
        None => (0, text),
    };
    let parts: Vec<u64> = rest.split(':').map(|p| p.parse::<u64>().map_err(|_| bad())).collect::<Result<_, _>>()?;
    let seconds = match (days > 0, parts.as_slice()) {
        (false, [m]) => m * 60,
        (false, [m, s]) => m * 60 + s,
        (_, [h, m, s]) => h * 3600 + m * 60 + s,
        (true, [h]) => h * 3600,
        (true, [h, m]) => h * 3600 + m * 60,
        _ => return Err(bad()),
    };
    Ok(days * 86_400 + seconds)
}

/// Runs `regimen sweep submit`.
pub fn submit(args: &SubmitArgs) -> anyhow::Result<ExitCode> {
    if !args.slurm && !args.kubernetes {
        anyhow::bail!("say where to submit the workers: --slurm or --kubernetes");
    }
    let spec = regimen_store::resolve_spec(&args.store.store)?;
    let store = crate::commands::open(&spec)?;
    let row = store.get_sweep(&args.sweep)?;
    let folder: PathBuf = super::worker::folder(&crate::commands::files_root(store.as_ref(), &spec)?, &row.sweep_id);
    std::fs::create_dir_all(&folder).with_context(|| format!("could not create {}", folder.display()))?;
    let store_text = spec.display().to_string();
    if args.kubernetes {
        let manifest = kubernetes_manifest(args, &row.sweep_id, &store_text)?;
        let path = folder.join("kubernetes-job.json");
        let text = serde_json::to_string_pretty(&manifest)? + "\n";
        regimen_fs::write(&path, text.as_bytes())?;
        crate::commands::emit(&text)?;
        say!("wrote {}; submit it with `kubectl apply -f {}`", path.display(), path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let exe = std::env::current_exe().context("cannot find the regimen executable")?;
    let script = slurm_script(args, &exe, &row.sweep_id, &store_text, &folder)?;
    let path = folder.join("slurm.sh");
    regimen_fs::write(&path, script.as_bytes())?;
    if args.dry_run {
        crate::commands::emit(&script)?;
        say!("wrote {}; submit it with `sbatch {}`", path.display(), path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut sbatch = Command::new("sbatch");
    sbatch.arg("--parsable");
    if args.wait {
        sbatch.arg("--wait");
    }
    let out = sbatch
        .arg(&path)
        .output()
        .context("could not run sbatch: is this a Slurm login node? (--dry-run writes the script only)")?;
    if !out.status.success() {
        anyhow::bail!("sbatch refused {}: {}", path.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let job = String::from_utf8_lossy(&out.stdout).trim().to_string();
    crate::commands::emit(&format!("{job}\n"))?;
    say!("submitted Slurm job array {job} ({}) of sweep {}; logs in {}", args.array, row.sweep_id, folder.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_and_times_parse_as_slurm_writes_them() {
        assert_eq!(parse_array("16%4").ok(), Some((16, Some(4))));
        assert_eq!(parse_array("8").ok(), Some((8, None)));
        for bad in ["0", "4%0", "x", "4%", "-1"] {
            assert!(parse_array(bad).is_err(), "{bad}");
        }
        assert_eq!(slurm_seconds("90").ok(), Some(5400));
        assert_eq!(slurm_seconds("1:30:00").ok(), Some(5400));
        assert_eq!(slurm_seconds("2-00:00:00").ok(), Some(172_800));
        assert_eq!(slurm_seconds("1-2").ok(), Some(93_600));
        assert!(slurm_seconds("soon").is_err());
        assert_eq!(dns_label("regimen-Tiny_Sweep-1a2b"), "regimen-tiny-sweep-1a2b");
    }
}
