//! `regimen ensemble`: averages the predictions of several runs' best checkpoints and records the
//! ensemble as a run of its own (tag `kind=ensemble`), so that `runs`, `show` and `compare` list it.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use regimen_metrics::{Mode, Monitored};
use regimen_store::{NewRun, Provenance, RunDir, RunState, Timestamp, Write};
use serde_json::json;

use crate::commands::{StoreArg, emit, metric_text, text_table};

/// Flags of `regimen ensemble`.
#[derive(Debug, Args)]
pub struct EnsembleArgs {
    /// The runs whose best checkpoints are averaged (ids, prefixes or folders).
    pub runs: Vec<String>,
    /// Take the members from a sweep instead: its best complete trials.
    #[arg(long, value_name = "SWEEP")]
    pub sweep: Option<String>,
    /// With --sweep, how many of its best trials.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub top_k: usize,
    /// The split to score: `val`, or `test` (recorded as such).
    #[arg(long, default_value = "val", value_parser = ["val", "test"])]
    pub split: String,
    /// Print one JSON object with the outcome on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Runs `regimen ensemble`.
pub fn run(args: &EnsembleArgs) -> anyhow::Result<ExitCode> {
    let store = crate::commands::open(&args.store.store)?;
    let root = crate::commands::files_root(store.as_ref(), &args.store.store)?;
    let mut runs = args.runs.clone();
    if let Some(sweep) = &args.sweep {
        runs.extend(crate::sweep::best_runs(store.as_ref(), sweep, args.top_k)?);
    }
    let recorder = regimen_train::Recorder::new(root.clone(), Some(store.clone()));
    let outcome = regimen_train::ensemble(&recorder, &runs, &args.split)?;
    let (key, mode) = headline(&outcome);
    let value = |metrics: &std::collections::BTreeMap<String, f64>| metrics.get(&key).copied().unwrap_or(f64::NAN);
    let best_member = outcome
        .members
        .iter()
        .map(|m| value(&m.metrics))
        .filter(|v| v.is_finite())
        .reduce(|a, b| if mode.is_better(b, a) { b } else { a })
        .unwrap_or(f64::NAN);
    let ensemble_value = value(&outcome.metrics);
    let gain = match mode {
        Mode::Max => ensemble_value - best_member,
        Mode::Min => best_member - ensemble_value,
    };

    let stamp: String = Timestamp::now().to_string().chars().filter(char::is_ascii_digit).take(14).collect();
    let (run_id, dir) = RunDir::create(&root, &format!("{}-{}", &stamp[..8], &stamp[8..]))
        .with_context(|| format!("could not create a run folder in {}", root.display()))?;
    let members: Vec<&str> = outcome.members.iter().map(|m| m.run_id.as_str()).collect();
    let start = NewRun {
        run_id: run_id.clone(),
        name: format!("ensemble-of-{}", members.len()),
        experiment: "ensembles".into(),
        started_at: Timestamp::now(),
        seed: 0,
        monitor: Some(Monitored { metric: key.clone(), mode }),
        task: None,
        params: json!({ "kind": "ensemble", "members": members.join(","), "split": outcome.split }),
        config: json!({ "kind": "ensemble", "members": members, "split": outcome.split }),
        dataset: serde_json::to_value(&outcome.dataset)?,
        provenance: Provenance {
            host: Some(gethostname::gethostname().to_string_lossy().into_owned()),
            command: shlex::try_join(std::env::args().collect::<Vec<_>>().iter().map(String::as_str)).ok(),
            git_commit: None,
            git_dirty: None,
            sweep_id: args.sweep.clone(),
            trial_id: None,
            init_run: None,
            init_weights: None,
        },
        environment: json!({}),
    };
    let wall = Timestamp::now();
    let body =
        json!({ "members": outcome.members, "ensemble": outcome.report, "gain": { "metric": key, "value": gain } });
    let mut batch = vec![Write::Start(&start)];
    batch.extend(outcome.metrics.iter().map(|(k, v)| Write::Scalar { key: k, step: 0, epoch: 0, wall, value: *v }));
    batch.push(Write::Report { split: &outcome.split, step: 0, epoch: 0, wall, body: &body });
    batch.push(Write::End { status: RunState::Finished, reason: None, at: wall });
    store.write(&run_id, &batch)?;
    store.set_tag(&run_id, "kind", "ensemble")?;
    regimen_fs::write(
        &dir.config(),
        toml::to_string(&json!({ "kind": "ensemble", "members": members, "split": outcome.split }))?.as_bytes(),
    )?;

    if args.json {
        let value = json!({
            "run_id": run_id,
            "split": outcome.split,
            "members": outcome.members,
            "metrics": outcome.metrics,
            "gain": { "metric": key, "best_member": best_member, "ensemble": ensemble_value, "gain": gain },
        });
        emit(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let keys: Vec<String> = outcome.metrics.keys().filter(|k| !k.contains("top")).cloned().collect();
    let header: Vec<String> = std::iter::once("run".to_string()).chain(keys.iter().cloned()).collect();
    let row = |name: String, metrics: &std::collections::BTreeMap<String, f64>| -> Vec<String> {
        std::iter::once(name)
            .chain(keys.iter().map(|k| metrics.get(k).map_or("-".into(), |v| metric_text(*v))))
            .collect()
    };
    let mut rows: Vec<Vec<String>> = outcome.members.iter().map(|m| row(m.run_id.clone(), &m.metrics)).collect();
    rows.push(row(format!("ensemble {run_id}"), &outcome.metrics));
    let numeric: Vec<bool> = std::iter::once(false).chain(keys.iter().map(|_| true)).collect();
    let mut text = format!("{} members on the {} split ({} samples):\n", members.len(), outcome.split, outcome.samples);
    text.push_str(&text_table(&header, &rows, &numeric));
    text.push_str(&format!("gain over the best member: {key} {gain:+.4}\n"));
    if outcome.split == "test" {
        text.push_str("(recorded: the test split has now been used)\n");
    }
    emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The metric an ensemble is judged by: macro-F1 for classification, the loss otherwise.
fn headline(outcome: &regimen_train::EnsembleOutcome) -> (String, Mode) {
    let macro_f1 = format!("{}.macro_f1", outcome.split);
    if outcome.metrics.contains_key(&macro_f1) {
        (macro_f1, Mode::Max)
    } else {
        (format!("{}.loss", outcome.split), Mode::Min)
    }
}
