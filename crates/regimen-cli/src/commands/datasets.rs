//! `regimen datasets`: the datasets the store's runs were trained on, by fingerprint, with their
//! sources (for manifests) and the runs that used each.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use regimen_store::Query;
use serde::Serialize;
use serde_json::Value;

use super::{StoreArg, emit, open_if_exists};

/// Flags of `regimen datasets`.
#[derive(Debug, Args)]
pub struct DatasetsArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Print the datasets as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One dataset as the store's runs saw it.
#[derive(Debug, Serialize)]
struct Dataset {
    name: String,
    fingerprint: String,
    /// Each source of a manifest's dataset: name, location and fingerprint.
    sources: Vec<Value>,
    runs: Vec<String>,
}

/// Lists the datasets, newest use last.
pub fn run(args: &DatasetsArgs) -> anyhow::Result<ExitCode> {
    let Some(store) = open_if_exists(&args.store.store)? else {
        emit(if args.json { "[]\n" } else { "no runs yet\n" })?;
        return Ok(ExitCode::SUCCESS);
    };
    let mut datasets: BTreeMap<String, Dataset> = BTreeMap::new();
    for row in store.list_runs(&Query::parse(None, None, None)?)? {
        let detail = store.get_run(&row.run_id)?;
        let text = |key: &str| detail.dataset.get(key).and_then(Value::as_str).unwrap_or("-").to_string();
        let fingerprint = text("fingerprint");
        let entry = datasets.entry(fingerprint.clone()).or_insert_with(|| Dataset {
            name: text("name"),
            fingerprint,
            sources: detail
                .dataset
                .pointer("/lineage/sources")
                .and_then(Value::as_array)
                .map(|sources| {
                    sources
                        .iter()
                        .map(|s| {
                            serde_json::json!({
                                "name": s.get("name"), "location": s.get("location"), "fingerprint": s.get("fingerprint")
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            runs: Vec::new(),
        });
        entry.runs.push(row.run_id);
    }
    let datasets: Vec<Dataset> = datasets.into_values().collect();
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&datasets)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for dataset in &datasets {
        let short = regimen_data::short_fingerprint(&dataset.fingerprint);
        let _ = writeln!(out, "{} ({short}) · {} runs: {}", dataset.name, dataset.runs.len(), dataset.runs.join(", "));
        for source in &dataset.sources {
            let text = |key: &str| source.get(key).and_then(Value::as_str).unwrap_or("-").to_string();
            let fingerprint = text("fingerprint");
            let _ = writeln!(
                out,
                "  source {} · {} · {}",
                text("name"),
                text("location"),
                regimen_data::short_fingerprint(&fingerprint)
            );
        }
    }
    if datasets.is_empty() {
        out.push_str("no runs yet\n");
    }
    emit(&out)?;
    Ok(ExitCode::SUCCESS)
}
