//! Sweep workers as cluster jobs: a real single-node Slurm cluster (`.ci/slurm.sh`, which `.ci/run`
//! starts and names in `SLURM_CONF`) runs `regimen sweep submit --slurm` end to end; the Kubernetes
//! manifest is checked against the Job schema of Kubernetes 1.37 with `kubernetes-validate` (no
//! Kubernetes cluster is available to the tests, so no pod runs).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use regimen_store::postgres::testing::TestDatabase;
use serde_json::Value;

fn regimen_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regimen"))
        .args(args)
        .current_dir(dir)
        .env_remove("REGIMEN_STORE")
        .env(regimen_store::ARTIFACTS_ENV, dir.join("artifacts"))
        .output()
        .expect("the regimen binary runs")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates a sweep of `trials` tiny trials in the store without running any; returns its id.
fn new_sweep(dir: &Path, url: &str, trials: u32) -> String {
    let file = dir.join("tiny.toml");
    let text = format!(
        "[sweep]\ntrials = {trials}\nsampler = \"random\"\nobjective = \"val.acc\"\nseed = 2\n\n[train]\ndataset = \"spirals\"\n\
         dataset_size = 300\nmodel = \"mlp\"\nhidden = [16]\nepochs = 2\n\n[params]\nlr = \"loguniform(1e-3, 1e-1)\"\n"
    );
    std::fs::write(&file, text).unwrap();
    ok(&regimen_in(dir, &["sweep", "run", file.to_str().unwrap(), "-j", "0", "--store", url]));
    let listed: Value =
        serde_json::from_str(&ok(&regimen_in(dir, &["sweep", "ls", "--store", url, "--json"]))).unwrap();
    listed[0]["sweep_id"].as_str().unwrap().to_string()
}

#[test]
fn a_slurm_job_array_of_workers_runs_a_sweep_to_the_end() {
    if std::env::var_os("SLURM_CONF").is_none() {
        assert!(
            std::env::var("REGIMEN_REQUIRE_SLURM").ok().as_deref() != Some("1"),
            "REGIMEN_REQUIRE_SLURM=1 but SLURM_CONF is not set: `bash .ci/slurm.sh start DIR` starts a cluster"
        );
        eprintln!("skipped: no Slurm cluster (SLURM_CONF is not set; `.ci/run` starts one)");
        return;
    }
    let Some(database) = TestDatabase::create() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = database.url();
    let sweep = new_sweep(dir.path(), url, 4);
    let dry = ok(&regimen_in(
        dir.path(),
        &["sweep", "submit", &sweep, "--slurm", "--array", "2%2", "--time", "10", "--dry-run", "--store", url],
    ));
    assert!(dry.contains("#SBATCH --array=0-1%2") && dry.contains("#SBATCH --time=10"), "{dry}");
    assert!(dry.contains(&format!("sweep worker {sweep} --store {url}")), "{dry}");
    let job = ok(&regimen_in(
        dir.path(),
        &["sweep", "submit", &sweep, "--slurm", "--array", "2%2", "--wait", "--store", url],
    ));
    assert!(job.trim().parse::<u64>().is_ok(), "sbatch --parsable prints the job id: {job}");
    let report: Value =
        serde_json::from_str(&ok(&regimen_in(dir.path(), &["sweep", "report", &sweep, "--store", url, "--json"])))
            .unwrap();
    let trials = report["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 4, "{report}");
    assert!(trials.iter().all(|t| t["state"] == "complete"), "{report}");
    let workers: std::collections::BTreeSet<&str> = trials.iter().filter_map(|t| t["worker"].as_str()).collect();
    let logs = std::fs::read_dir(dir.path().join("artifacts/sweeps").join(&sweep))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("slurm-"))
        .count();
    assert_eq!(logs, 2, "one log per array task");
    assert!(!workers.is_empty(), "{report}");
}

#[test]
fn the_kubernetes_manifest_is_a_valid_indexed_job() {
    let Some(database) = TestDatabase::create() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = database.url();
    let sweep = new_sweep(dir.path(), url, 2);
    let args = [
        "sweep",
        "submit",
        &sweep,
        "--kubernetes",
        "--image",
        "ghcr.io/lab/regimen:1",
        "--array",
        "16%4",
        "--gres",
        "gpu:1",
        "--time",
        "2:00:00",
        "--store",
        url,
    ];
    let manifest: Value = serde_json::from_str(&ok(&regimen_in(dir.path(), &args))).unwrap();
    assert_eq!(manifest["spec"]["completionMode"], "Indexed");
    assert_eq!(
        (manifest["spec"]["completions"].as_u64(), manifest["spec"]["parallelism"].as_u64()),
        (Some(16), Some(4))
    );
    assert_eq!(manifest["spec"]["activeDeadlineSeconds"], 7200);
    let container = &manifest["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["resources"]["limits"]["nvidia.com/gpu"], 1);
    assert_eq!(container["command"][3], Value::from(sweep.as_str()));
    let path = dir.path().join("artifacts/sweeps").join(&sweep).join("kubernetes-job.json");
    assert!(path.is_file());
    let Ok(python) = std::env::var("REGIMEN_PYTHON") else {
        assert!(
            std::env::var("REGIMEN_REQUIRE_PYTHON_READERS").ok().as_deref() != Some("1"),
            "REGIMEN_PYTHON is not set"
        );
        eprintln!("skipped the schema check: REGIMEN_PYTHON is not set (`.ci/run` sets it)");
        return;
    };
    let validate = Path::new(&python).with_file_name("kubernetes-validate");
    let checked = Command::new(validate).args(["--strict", "-k", "1.37.0"]).arg(&path).output().unwrap();
    let said = String::from_utf8_lossy(&checked.stdout).to_string() + &String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success() && said.contains("passed for resource job"), "{said}");
    // The checker is not a rubber stamp: a Job without its pod template fails.
    let mut broken = manifest.clone();
    broken["spec"].as_object_mut().unwrap().remove("template");
    let broken_path = dir.path().join("broken.json");
    std::fs::write(&broken_path, broken.to_string()).unwrap();
    let refused =
        Command::new(Path::new(&python).with_file_name("kubernetes-validate")).arg(&broken_path).output().unwrap();
    assert!(!refused.status.success(), "{}", String::from_utf8_lossy(&refused.stdout));
}
