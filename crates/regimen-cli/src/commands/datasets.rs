//! `regimen datasets`: the datasets the store's runs were trained on, by fingerprint, with their
//! sources (for manifests) and the runs that used each.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};
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

/// `regimen dataset …`: facts about a dataset, kept in the store by its name.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Record a dataset's base error (human-level or best known), as a fraction: `diagnose` then
    /// measures the avoidable bias from it, and `runs` shows avoidable bias and variance.
    SetBaseError(BaseErrorArgs),
}

/// Flags of `regimen dataset set-base-error`.
#[derive(Debug, Args)]
pub struct BaseErrorArgs {
    /// The dataset's name, as runs record it (`regimen datasets` lists them): `shapes`, a file's
    /// name, a manifest's `name`.
    pub name: String,
    /// The error as a fraction in [0, 1), e.g. 0.02 for 2%; `none` forgets it.
    pub error: String,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Runs a `regimen dataset` command.
pub fn dataset(command: &DatasetCommand) -> anyhow::Result<ExitCode> {
    let DatasetCommand::SetBaseError(args) = command;
    let error = match args.error.as_str() {
        "none" => None,
        text => match text.parse::<f64>() {
            Ok(error) if (0.0..1.0).contains(&error) => Some(error),
            _ => anyhow::bail!("`{text}` is not a fraction in [0, 1) (e.g. 0.02 for 2% error) or `none`"),
        },
    };
    let store = regimen_store::open(&args.store.store)?;
    store.set_base_error(&args.name, error)?;
    match error {
        Some(error) => say!("base error of `{}`: {:.2}%", args.name, 100.0 * error),
        None => say!("base error of `{}` forgotten", args.name),
    }
    Ok(ExitCode::SUCCESS)
}

/// One dataset as the store's runs saw it.
#[derive(Debug, Serialize)]
struct Dataset {
    name: String,
    fingerprint: String,
    /// Its recorded base error, if any.
    base_error: Option<f64>,
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
        let base_error = store.base_error(&text("name"))?;
        let entry = datasets.entry(fingerprint.clone()).or_insert_with(|| Dataset {
            name: text("name"),
            fingerprint,
            base_error,
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
        let base = dataset.base_error.map(|e| format!(" · base error {:.2}%", 100.0 * e)).unwrap_or_default();
        let _ = writeln!(
            out,
            "{} ({short}){base} · {} runs: {}",
            dataset.name,
            dataset.runs.len(),
            dataset.runs.join(", ")
        );
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
