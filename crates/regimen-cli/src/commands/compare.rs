//! `regimen compare RUN RUN...`: what differs between runs, and which one wins.
//!
//! Three tables, each only as wide as the runs compared: the hyperparameters that differ (equal
//! ones are counted, not shown), the dataset identity where it differs, and the best value of
//! every metric with a direction, the best run of each row marked. The verdict names the winner
//! on `--metric` (by default the metric the first run monitored).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use regimen_store::{Mode, Monitored, RunDetail};
use serde_json::{Value, json};

use super::{StoreArg, emit, metric_text, open};

/// Flags of `regimen compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Two or more run ids (or unique prefixes).
    #[arg(required = true, num_args = 2..)]
    pub runs: Vec<String>,
    /// Metric that decides the winner [default: the first run's monitored metric].
    #[arg(long, value_name = "KEY")]
    pub metric: Option<String>,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Compares runs.
pub fn run(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store.store)?;
    let runs = args.runs.iter().map(|run| store.get_run(run)).collect::<Result<Vec<_>, _>>()?;
    let metric = args.metric.clone().unwrap_or_else(|| monitored_metric(&runs[0]));
    let comparison = Comparison::of(&runs, &metric);
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&comparison.to_json(&runs))?))?;
    } else {
        emit(&comparison.render(&runs))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The metric a run monitored, as it recorded it. Runs recorded before the store kept the monitor
/// fall back to the metric their config named, or `val.loss`.
fn monitored_metric(run: &RunDetail) -> String {
    match (&run.row.monitor, run.config.get("monitor")) {
        (Some(monitor), _) => monitor.metric.clone(),
        (None, Some(Value::String(metric))) => metric.clone(),
        (None, _) => "val.loss".to_string(),
    }
}

/// What differs between runs, computed once for both renderings.
struct Comparison {
    /// Param key → one value per run (`-` when a run lacks it), only keys that differ.
    params: BTreeMap<String, Vec<String>>,
    /// How many params are the same in every run.
    same_params: usize,
    /// Dataset field → one value per run, only fields that differ.
    dataset: BTreeMap<String, Vec<String>>,
    /// Metric key → best value per run, for keys with a direction.
    metrics: BTreeMap<String, Vec<Option<f64>>>,
    /// The direction of each metric row, as the first run sees it.
    modes: BTreeMap<String, Mode>,
    /// The metric that decides.
    metric: String,
    /// Index of the winning run, when any run has the metric.
    winner: Option<usize>,
}

impl Comparison {
    fn of(runs: &[RunDetail], metric: &str) -> Comparison {
        let keys: BTreeSet<&String> = runs.iter().flat_map(|r| r.row.params.keys()).collect();
        let mut params = BTreeMap::new();
        let mut same_params = 0;
        for key in keys {
            let values: Vec<String> =
                runs.iter().map(|r| r.row.params.get(key).map_or("-".into(), ToString::to_string)).collect();
            if values.iter().all(|v| *v == values[0]) {
                same_params += 1;
            } else {
                params.insert(key.clone(), values);
            }
        }
        let mut dataset = BTreeMap::new();
        let flat: Vec<BTreeMap<String, String>> = runs.iter().map(|r| dataset_fields(&r.dataset)).collect();
        let fields: BTreeSet<&String> = flat.iter().flat_map(BTreeMap::keys).collect();
        for field in fields {
            let values: Vec<String> =
                flat.iter().map(|f| f.get(field).cloned().unwrap_or_else(|| "-".into())).collect();
            if values.iter().any(|v| *v != values[0]) {
                dataset.insert(field.clone(), values);
            }
        }
        // Each run's best comes from the store, in the direction that run recorded.
        let metrics: BTreeMap<String, Vec<Option<f64>>> = runs
            .iter()
            .flat_map(|r| r.row.metrics.iter().filter(|(_, m)| m.best.is_some()).map(|(key, _)| key))
            .collect::<BTreeSet<&String>>()
            .into_iter()
            .map(|key| (key.clone(), runs.iter().map(|r| r.row.metrics.get(key).and_then(|m| m.best)).collect()))
            .collect();
        let mode = |key: &str| Monitored::mode_of(runs[0].row.monitor.as_ref(), key);
        let modes: BTreeMap<String, Mode> =
            metrics.keys().filter_map(|key| mode(key).map(|mode| (key.clone(), mode))).collect();
        let winner = modes.get(metric).and_then(|&mode| best_index(mode, &metrics[metric]));
        Comparison { params, same_params, dataset, metrics, modes, metric: metric.to_string(), winner }
    }

    fn render(&self, runs: &[RunDetail]) -> String {
        let mut out = String::new();
        let headers: Vec<String> = runs.iter().map(|r| r.row.run_id.clone()).collect();
        let _ = writeln!(out, "runs:");
        for run in runs {
            let _ = writeln!(out, "  {}  {}  ({})", run.row.run_id, run.row.name, run.row.status);
        }
        let label_width = self
            .params
            .keys()
            .chain(self.dataset.keys())
            .chain(self.metrics.keys())
            .map(String::len)
            .max()
            .unwrap_or(6)
            .max(6);
        let row = |out: &mut String, label: &str, cells: &[String]| {
            let _ = write!(out, "  {label:<label_width$}");
            for (cell, header) in cells.iter().zip(&headers) {
                let width = header.len().max(10);
                let _ = write!(out, "  {cell:>width$}");
            }
            out.push('\n');
        };
        let _ = writeln!(out, "\nhyperparameters that differ ({} identical):", self.same_params);
        if self.params.is_empty() {
            let _ = writeln!(out, "  (none)");
        } else {
            row(&mut out, "", &headers);
            for (key, values) in &self.params {
                row(&mut out, key, values);
            }
        }
        if self.dataset.is_empty() {
            let fingerprint = runs[0].dataset.get("short_id").map_or("-".into(), compact);
            let _ = writeln!(out, "\ndataset: the same in every run (fingerprint {fingerprint})");
        } else {
            let _ = writeln!(out, "\ndataset differs:");
            row(&mut out, "", &headers);
            for (field, values) in &self.dataset {
                row(&mut out, field, values);
            }
        }
        let _ = writeln!(out, "\nbest metrics (* = best of the row):");
        row(&mut out, "", &headers);
        for (key, values) in &self.metrics {
            let best = self.modes.get(key).and_then(|&mode| best_index(mode, values));
            let cells: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let mark = if Some(i) == best { "*" } else { " " };
                    v.map_or("-".into(), |v| format!("{}{mark}", metric_text(v)))
                })
                .collect();
            row(&mut out, key, &cells);
        }
        match self.winner {
            Some(i) => {
                let value = self.metrics[&self.metric][i].map_or("-".into(), metric_text);
                let _ = writeln!(
                    out,
                    "\nwinner on {}: {} ({}) with {value}",
                    self.metric, runs[i].row.run_id, runs[i].row.name
                );
            }
            None => {
                let _ = writeln!(out, "\nno run has a best value of {}; choose another with --metric", self.metric);
            }
        }
        out
    }

    /// Metric key → the epoch of each run's best value (null when unknown).
    fn best_epochs(&self, runs: &[RunDetail]) -> BTreeMap<&str, Vec<Option<u64>>> {
        self.metrics
            .keys()
            .map(|key| {
                let epochs = runs.iter().map(|r| r.row.metrics.get(key).and_then(|m| m.best_epoch)).collect();
                (key.as_str(), epochs)
            })
            .collect()
    }

    fn to_json(&self, runs: &[RunDetail]) -> Value {
        let ids: Vec<&str> = runs.iter().map(|r| r.row.run_id.as_str()).collect();
        json!({
            "runs": ids,
            "params": self.params,
            "identical_params": self.same_params,
            "dataset": self.dataset,
            "metrics": self.metrics,
            "best_epochs": self.best_epochs(runs),
            "metric": self.metric,
            "winner": self.winner.map(|i| ids[i]),
        })
    }
}

/// Index of the best value in `mode`, by the one rule of [`regimen_metrics::best`]; a run without
/// the metric is never best.
fn best_index(mode: Mode, values: &[Option<f64>]) -> Option<usize> {
    regimen_metrics::best(values.iter().map(|v| v.unwrap_or(f64::NAN)), mode).map(|(index, _)| index)
}

/// A JSON value as a short table cell.
fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A run's dataset identity as comparable fields; a manifest's lineage becomes one field per source
/// (`source lab-b`: its short fingerprint and size), so that runs differing by one source show which.
fn dataset_fields(dataset: &Value) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    for (key, value) in dataset.as_object().into_iter().flatten() {
        if key != "lineage" {
            fields.insert(key.clone(), compact(value));
        }
    }
    for source in dataset.pointer("/lineage/sources").and_then(Value::as_array).into_iter().flatten() {
        let text = |key: &str| source.get(key).and_then(Value::as_str).unwrap_or("-");
        let samples = source.get("samples").map_or("-".into(), ToString::to_string);
        let short = regimen_data::short_fingerprint(text("fingerprint"));
        fields.insert(format!("source {}", text("name")), format!("{short} ({samples} samples)"));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_index_follows_the_metric_direction_and_skips_missing_values() {
        assert_eq!(best_index(Mode::Max, &[Some(0.8), None, Some(0.9)]), Some(2));
        assert_eq!(best_index(Mode::Min, &[Some(0.8), Some(f64::NAN), Some(0.9)]), Some(0));
        assert_eq!(best_index(Mode::Max, &[Some(0.9), Some(0.9)]), Some(0), "the first on ties");
        assert_eq!(best_index(Mode::Max, &[None, None]), None);
    }
}
