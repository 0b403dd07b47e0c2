//! `regimen diagnose RUN`: the recipe's verdict on a run (underfitting, bias and variance,
//! overfitting, gradient flow) and the evidence behind it, recomputed from what the store holds,
//! so it works for any run: finished, stopped early, crashed or still running.
//!
//! The evidence is the per-epoch train and validation numbers the verdicts read, the per-layer
//! gradient norms, and the predictions on the fixed validation batch epoch by epoch ("prediction
//! dynamics"). Exit code 4 when a verdict FAILs, as for `regimen check` (1 is an error).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use regimen_doctor::diagnose::{DiagnoseOptions, MetricSeries, PREDICTIONS_REPORT, TaskInfo, diagnose};
use regimen_doctor::gradients::GRAD_NORM_KEY;
use regimen_doctor::{CheckReport, CheckStatus};
use regimen_store::{RunDetail, RunStore};
use serde_json::{Value, json};

use super::{StoreArg, emit, metric_text, open};

/// The epoch-level numbers shown as evidence, in this order when the run has them.
const EVIDENCE_KEYS: [&str; 6] = ["train.loss", "val.loss", "train_eval.acc", "train.acc", "val.acc", "val.r2"];

/// Flags of `regimen diagnose`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Run id, or a unique prefix of it.
    pub run: String,
    /// The error you hope to reach (a person's or the best known), as a fraction: the bias is
    /// measured from it [default: the dataset's base error (`regimen dataset set-base-error`, or
    /// `base_error` in its manifest), else 0].
    #[arg(long, value_name = "FRACTION")]
    pub target_error: Option<f64>,
    /// Print `{"run_id", "status", "checks", "evidence"}` as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Diagnoses one run.
pub fn run(args: &DiagnoseArgs) -> anyhow::Result<ExitCode> {
    if let Some(target) = args.target_error
        && !(0.0..1.0).contains(&target)
    {
        anyhow::bail!("--target-error {target} is not a fraction in [0, 1), e.g. 0.02 for 2% error");
    }
    let store = open(&args.store.store)?;
    let diagnosis = Diagnosis::of(store.as_ref(), &args.run, args.target_error)?;
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&diagnosis.json())?))?;
    } else {
        emit(&render(&diagnosis.detail, &diagnosis.series, &diagnosis.report, &diagnosis.predictions))?;
    }
    let failed = diagnosis.report.status() == CheckStatus::Fail;
    Ok(if failed { ExitCode::from(crate::EXIT_CHECK_FAILED) } else { ExitCode::SUCCESS })
}

/// A run's diagnosis and the evidence for it: what `regimen diagnose` prints, and what the
/// dashboard shows on a run's page.
pub struct Diagnosis {
    detail: RunDetail,
    series: MetricSeries,
    report: CheckReport,
    predictions: Vec<Value>,
}

impl Diagnosis {
    /// Diagnoses run `run` of `store`, against `target_error` or else the dataset's base error.
    pub fn of(store: &dyn RunStore, run: &str, target_error: Option<f64>) -> anyhow::Result<Diagnosis> {
        let detail = store.get_run(run)?;
        let base_error = match &detail.row.dataset {
            Some(name) => store.base_error(name)?,
            None => None,
        }
        .or_else(|| detail.dataset.pointer("/lineage/manifest/base_error").and_then(Value::as_f64));
        let series: MetricSeries = detail
            .series
            .iter()
            .map(|(key, points)| (key.clone(), points.iter().map(|p| (p.step, p.epoch, p.value)).collect()))
            .collect();
        let task = task_of(&detail);
        let options = DiagnoseOptions {
            target_error: target_error.or(base_error).unwrap_or(0.0),
            base_error_known: target_error.is_none() && base_error.is_some(),
            ..DiagnoseOptions::default()
        };
        let report = CheckReport::new(diagnose(&series, &task, &options));
        let predictions = prediction_dynamics(&detail);
        Ok(Diagnosis { detail, series, report, predictions })
    }

    /// As `regimen diagnose --json` prints it.
    pub fn json(&self) -> Value {
        json!({
            "run_id": self.detail.row.run_id,
            "name": self.detail.row.name,
            "run_status": self.detail.row.status.to_string(),
            "status": self.report.status().as_str(),
            "monitor": monitor_json(&self.detail),
            "checks": self.report.checks,
            "evidence": {
                "epochs": epoch_table(&self.series),
                "grad_norms": grad_summary(&self.series),
                "predictions": self.predictions,
            },
        })
    }
}

/// The task and its trivial baseline as the run recorded them, so that this verdict and the one the
/// run gave at its end agree. Runs recorded before the store kept the task fall back to the class
/// supports of their newest validation report.
fn task_of(detail: &RunDetail) -> TaskInfo {
    if let Some(task) = detail.task {
        return task;
    }
    let Some(body) = detail.reports.iter().rev().find(|r| r.split == "val").map(|r| &r.body) else {
        return TaskInfo::Regression { target_variance: None };
    };
    if body["kind"] != "classification" {
        return TaskInfo::Regression { target_variance: None };
    }
    let supports: Vec<f64> = body["per_class"]
        .as_array()
        .map(|c| c.iter().filter_map(|x| x["support"].as_f64()).collect())
        .unwrap_or_default();
    let total: f64 = supports.iter().sum();
    let majority = supports.iter().copied().fold(0.0, f64::max);
    TaskInfo::Classification { classes: supports.len().max(1), majority_share: (total > 0.0).then(|| majority / total) }
}

/// The run's monitored metric, its direction and its best value and epoch, as the store holds them.
fn monitor_json(detail: &RunDetail) -> Value {
    let Some(monitor) = &detail.row.monitor else { return Value::Null };
    let summary = detail.row.metrics.get(&monitor.metric);
    json!({
        "metric": monitor.metric,
        "mode": monitor.mode,
        "best": summary.and_then(|s| s.best),
        "best_epoch": summary.and_then(|s| s.best_epoch),
    })
}

/// One row per epoch end with the numbers the verdicts read.
fn epoch_table(series: &MetricSeries) -> Vec<Value> {
    let mut rows: BTreeMap<u64, BTreeMap<&str, f64>> = BTreeMap::new();
    for key in EVIDENCE_KEYS {
        // Points are in step order, so a mid-epoch validation is overwritten by its epoch's end.
        for &(_, epoch, value) in series.get(key).into_iter().flatten() {
            rows.entry(epoch).or_default().insert(key, value);
        }
    }
    rows.into_iter().map(|(epoch, values)| json!({ "epoch": epoch, "metrics": values })).collect()
}

/// Per layer: the first, last, smallest and largest logged gradient norm.
fn grad_summary(series: &MetricSeries) -> BTreeMap<String, Value> {
    series
        .iter()
        .filter(|(key, _)| key.as_str() == GRAD_NORM_KEY || key.starts_with(&format!("{GRAD_NORM_KEY}.")))
        .filter_map(|(key, points)| {
            let (first, last) = (points.first()?, points.last()?);
            let (min, max) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.2), hi.max(p.2)));
            let layer = key.strip_prefix(&format!("{GRAD_NORM_KEY}.")).unwrap_or("(all layers)");
            Some((layer.to_string(), json!({ "first": first.2, "first_step": first.0, "last": last.2, "last_step": last.0, "min": min, "max": max, "points": points.len() })))
        })
        .collect()
}

/// The predictions on the fixed validation batch, one entry per epoch (the newest record of each
/// epoch wins: a resumed run records its epoch again).
fn prediction_dynamics(detail: &RunDetail) -> Vec<Value> {
    let mut by_epoch: BTreeMap<u64, Value> = BTreeMap::new();
    for report in detail.reports.iter().filter(|r| r.split == PREDICTIONS_REPORT) {
        let mut body = report.body.clone();
        body["epoch"] = json!(report.epoch);
        body["step"] = json!(report.step);
        by_epoch.insert(report.epoch, body);
    }
    by_epoch.into_values().collect()
}

fn render(detail: &RunDetail, series: &MetricSeries, report: &CheckReport, predictions: &[Value]) -> String {
    let row = &detail.row;
    let mut out = format!("run {} · {} · {}\n\n", row.run_id, row.name, row.status);
    out.push_str(&report.render(crate::colors(&std::io::stdout())));

    let epochs = epoch_table(series);
    if !epochs.is_empty() {
        let keys: Vec<&str> = EVIDENCE_KEYS.iter().copied().filter(|k| series.contains_key(*k)).collect();
        out.push_str("\nevidence: epoch ends\n  epoch");
        for key in &keys {
            let _ = write!(out, " {key:>14}");
        }
        out.push('\n');
        for row in &epochs {
            let _ = write!(out, "  {:>5}", row["epoch"].as_u64().unwrap_or_default());
            for key in &keys {
                let cell = row["metrics"][key].as_f64().map_or_else(|| "-".to_string(), metric_text);
                let _ = write!(out, " {cell:>14}");
            }
            out.push('\n');
        }
    }

    let grads = grad_summary(series);
    if !grads.is_empty() {
        out.push_str("\nevidence: gradient norms per layer (first → last logged, min–max)\n");
        for (layer, s) in &grads {
            let number = |key: &str| s[key].as_f64().map_or_else(|| "NaN".to_string(), metric_text);
            let _ = writeln!(
                out,
                "  {layer:<24} {} → {}  ({}–{}, {} points)",
                number("first"),
                number("last"),
                number("min"),
                number("max"),
                s["points"]
            );
        }
    }

    if let Some(first) = predictions.first() {
        let samples = first["predicted"].as_array().map_or(0, Vec::len);
        let classification = first.get("confidence").is_some();
        out.push_str("\nevidence: predictions on the fixed validation batch, by epoch");
        out.push_str(if classification { " (predicted class, * when wrong)\n" } else { " (predicted value)\n" });
        let _ = write!(out, "  {:<8}", "sample");
        for p in predictions {
            let _ = write!(out, " {:>7}", format!("ep{}", p["epoch"]));
        }
        out.push_str("  target\n");
        for i in 0..samples {
            let _ = write!(out, "  {i:<8}");
            for p in predictions {
                let cell = if classification {
                    let wrong = p["predicted"][i] != p["targets"][i];
                    format!("{}{}", p["predicted"][i], if wrong { "*" } else { "" })
                } else {
                    p["predicted"][i].as_f64().map_or_else(|| "-".into(), |v| format!("{v:.3}"))
                };
                let _ = write!(out, " {cell:>7}");
            }
            let _ = writeln!(out, "  {}", first["targets"][i]);
        }
    }
    out
}
