//! What a rerun needs to know about where a run started: host, command line, git state, versions.

use regimen_events::Provenance;

/// Host name, command line (quoted for a POSIX shell), and the git commit and state of the
/// working folder; a sweep's trial sets `REGIMEN_SWEEP_ID` and `REGIMEN_TRIAL_ID`.
pub fn collect() -> Provenance {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let git_commit = git(&["rev-parse", "HEAD"]);
    let git_dirty = git_commit.as_ref().and_then(|_| git(&["status", "--porcelain"])).map(|s| !s.is_empty());
    let args: Vec<String> = std::env::args().collect();
    Provenance {
        host: gethostname::gethostname().into_string().ok(),
        command: shlex::try_join(args.iter().map(String::as_str)).ok(),
        git_commit,
        git_dirty,
        sweep_id: std::env::var("REGIMEN_SWEEP_ID").ok(),
        trial_id: std::env::var("REGIMEN_TRIAL_ID").ok(),
        init_run: None,
        init_weights: None,
    }
}

/// Versions, threads and the model's size.
pub fn environment(parameters: usize) -> serde_json::Value {
    serde_json::json!({
        "regimen_version": env!("CARGO_PKG_VERSION"),
        "threads": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "parameters": parameters,
    })
}
