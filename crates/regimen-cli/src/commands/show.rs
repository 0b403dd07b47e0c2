//! `regimen show RUN`: everything the store knows about one run, on one screen.
//!
//! Learning curves are drawn as unicode sparklines (`▁▂▃▄▅▆▇█`), train and validation of the same
//! metric on one shared scale so that the gap between them is visible at a glance; the numbers
//! beside each line are its first, best and last values.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use regimen_store::{MetricPoint, RunDetail};
use serde_json::Value;

use super::{StoreArg, emit, metric_text, open, short_duration, short_time};

/// The levels of a sparkline, lowest first.
const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The widest a sparkline gets; longer series are averaged down to this many points.
const MAX_WIDTH: usize = 60;

/// Flags of `regimen show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Run id, or a unique prefix of it.
    pub run: String,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Shows one run.
pub fn run(args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store.store)?;
    let detail = store.get_run(&args.run)?;
    emit(&render(&detail))?;
    Ok(ExitCode::SUCCESS)
}

/// The whole page for one run.
fn render(detail: &RunDetail) -> String {
    let row = &detail.row;
    let mut out = String::new();
    let mut field = |label: &str, value: &str| {
        let _ = writeln!(out, "{label:<11}{value}");
    };
    field("run", &row.run_id);
    field("name", &row.name);
    field("experiment", &row.experiment);
    let status = match &row.reason {
        Some(reason) => format!("{} ({reason})", row.status),
        None => row.status.to_string(),
    };
    field("status", &status);
    let mut times = format!("started {} UTC", short_time(row.started_at));
    match row.ended_at {
        Some(end) => {
            let _ = write!(times, " · ended {} · took {}", short_time(end), short_duration(end.since(row.started_at)));
        }
        None => {
            let _ = write!(times, " · last heartbeat {}", short_time(detail.heartbeat_at));
        }
    }
    field("time", &times);
    let provenance = &detail.provenance;
    if let Some(host) = &provenance.host {
        field("host", host);
    }
    if let Some(command) = &provenance.command {
        field("command", command);
    }
    if let Some(commit) = &provenance.git_commit {
        let dirty = if provenance.git_dirty == Some(true) { " (uncommitted changes)" } else { "" };
        field("git", &format!("{commit}{dirty}"));
    }
    field("seed", &detail.seed.to_string());
    if let Some(sweep) = &provenance.sweep_id {
        field("sweep", &format!("{sweep} trial {}", provenance.trial_id.as_deref().unwrap_or("-")));
    }
    match (&provenance.init_run, &provenance.init_weights) {
        (Some(run), Some(weights)) => field("init from", &format!("run {run}: {weights}")),
        (None, Some(weights)) => field("init from", weights),
        _ => {}
    }
    field("dataset", &dataset_line(&detail.dataset));
    for source in detail.dataset.pointer("/lineage/sources").and_then(Value::as_array).into_iter().flatten() {
        let text = |key: &str| source.get(key).and_then(Value::as_str).unwrap_or("-").to_string();
        let split: Vec<String> = source
            .get("contributed")
            .and_then(Value::as_array)
            .map(|c| c.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let fingerprint = text("fingerprint");
        field(
            "  source",
            &format!(
                "{} · {} · fingerprint {} · {} samples · train/val/test {}",
                text("name"),
                text("location"),
                regimen_data::short_fingerprint(&fingerprint),
                source.get("samples").map_or("-".into(), ToString::to_string),
                split.join("/")
            ),
        );
    }

    section(&mut out, "params", row.params.iter().map(|(k, v)| (k.clone(), v.to_string())));
    section(&mut out, "tags", row.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    if !detail.notes.is_empty() {
        out.push_str("\nnotes\n");
        for note in &detail.notes {
            let _ =
                writeln!(out, "  {} [{}] {}", short_time(note.created_at), note.kind.as_str(), note.body.trim_end());
        }
    }
    if !detail.artifacts.is_empty() {
        out.push_str("\nartifacts\n");
        for a in &detail.artifacts {
            let sum = a.checksum.as_deref().map_or(String::new(), |c| format!("  blake3 {}", c.get(..16).unwrap_or(c)));
            let _ = writeln!(out, "  {:<16} {} ({} bytes){sum}", a.kind, a.path, a.bytes);
        }
    }
    if !row.metrics.is_empty() {
        let width = row.metrics.keys().map(|k| k.chars().count()).max().unwrap_or(0).max(6);
        let _ = writeln!(out, "\n{:<w$}  {:>10}  {:>10}  points", "metrics", "best", "last", w = width + 2);
        for (key, m) in &row.metrics {
            let best = m.best.map_or("-".to_string(), metric_text);
            let _ = writeln!(out, "  {key:<width$}  {best:>10}  {:>10}  {}", metric_text(m.last), m.count);
        }
    }
    out.push_str(&curves(detail));
    if !detail.reports.is_empty() {
        out.push_str("\nreports\n");
        for report in &detail.reports {
            let numbers: Vec<String> = report
                .body
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| match v.as_u64() {
                    Some(n) => Some(format!("{k} {n}")),
                    None => v.as_f64().map(|n| format!("{k} {}", metric_text(n))),
                })
                .collect();
            let _ = writeln!(
                out,
                "  {:<10} epoch {:<3} step {:<6} {}",
                report.split,
                report.epoch,
                report.step,
                numbers.join(" · ")
            );
        }
    }
    out
}

/// `spirals · fingerprint … · split seed 0 · train/val/test 180/60/60`, from whatever the
/// dataset identity holds.
fn dataset_line(dataset: &Value) -> String {
    let text = |key: &str| dataset.get(key).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    let mut parts = Vec::new();
    parts.push(text("name").unwrap_or_else(|| "-".to_string()));
    if let Some(fingerprint) = text("fingerprint") {
        parts.push(format!("fingerprint {fingerprint}"));
    }
    if let Some(seed) = text("split_seed") {
        parts.push(format!("split seed {seed}"));
    }
    if let Some(sizes) = dataset.get("sizes").and_then(Value::as_array) {
        let sizes: Vec<String> = sizes.iter().map(ToString::to_string).collect();
        parts.push(format!("train/val/test {}", sizes.join("/")));
    }
    if dataset.get("test_from_source") == Some(&Value::Bool(true)) {
        parts.push("test split from the source".to_string());
    }
    parts.join(" · ")
}

/// A titled list of `key  value` lines; nothing when empty.
fn section(out: &mut String, title: &str, items: impl Iterator<Item = (String, String)>) {
    let items: Vec<(String, String)> = items.collect();
    if items.is_empty() {
        return;
    }
    let width = items.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let _ = writeln!(out, "\n{title}");
    for (key, value) in items {
        let _ = writeln!(out, "  {key:<width$}  {value}");
    }
}

/// Sparklines of train vs val for each metric both report (loss first), plus the per-step
/// training loss when it has more points than the per-epoch one.
fn curves(detail: &RunDetail) -> String {
    let mut out = String::new();
    for name in ["loss", "acc", "macro_f1", "mae", "r2"] {
        let mut lines: Vec<(&str, String, Vec<f64>)> = Vec::new();
        for (label, key) in [("train", format!("train.{name}")), ("val", format!("val.{name}"))] {
            if let Some(series) = detail.series.get(&key) {
                lines.push((label, key, values(series)));
            }
        }
        if name == "loss"
            && let Some(steps) = detail.series.get("train.loss_step")
            && steps.len() > lines.first().map_or(0, |(_, _, v)| v.len())
        {
            lines.push(("steps", "train.loss_step".to_string(), values(steps)));
        }
        if lines.is_empty() {
            continue;
        }
        let finite = lines.iter().flat_map(|(_, _, v)| v.iter().copied()).filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if out.is_empty() {
            out.push_str("\ncurves (train vs val, one scale per metric)\n");
        }
        let width = lines.iter().map(|(_, _, v)| v.len()).max().unwrap_or(0).min(MAX_WIDTH);
        for (i, (label, key, series)) in lines.iter().enumerate() {
            let title = if i == 0 { name } else { "" };
            let best = best_of(detail, key);
            let first = series.first().copied().map_or("-".to_string(), metric_text);
            let last = series.last().copied().map_or("-".to_string(), metric_text);
            let _ = writeln!(
                out,
                "  {title:<9}{label:<6} {:<w$}  {first} → {last} (best {best})",
                sparkline(series, lo, hi),
                w = width
            );
        }
    }
    out
}

fn values(series: &[MetricPoint]) -> Vec<f64> {
    series.iter().map(|p| p.value).collect()
}

/// The best value of a series as the store summarized it, in the run's own direction, with its
/// epoch; `-` for a metric without one.
fn best_of(detail: &RunDetail, key: &str) -> String {
    let Some(summary) = detail.row.metrics.get(key) else { return "-".to_string() };
    match (summary.best, summary.best_epoch) {
        (Some(best), Some(epoch)) => format!("{} at epoch {epoch}", metric_text(best)),
        (Some(best), None) => metric_text(best),
        (None, _) => "-".to_string(),
    }
}

/// A sparkline of `values` on the scale `lo..=hi`, at most [`MAX_WIDTH`] characters (longer series
/// are averaged in equal buckets). A flat scale draws the middle level; NaN and infinities draw `·`.
fn sparkline(values: &[f64], lo: f64, hi: f64) -> String {
    let buckets = values.len().min(MAX_WIDTH);
    (0..buckets)
        .map(|b| {
            let (start, end) =
                (b * values.len() / buckets, ((b + 1) * values.len() / buckets).max(b * values.len() / buckets + 1));
            let chunk = &values[start..end];
            let value = chunk.iter().sum::<f64>() / chunk.len() as f64;
            if !value.is_finite() {
                '·'
            } else if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
                LEVELS[3]
            } else {
                let level = ((value - lo) / (hi - lo) * (LEVELS.len() - 1) as f64).round();
                LEVELS[(level as usize).min(LEVELS.len() - 1)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_span_the_levels_and_mark_non_finite_values() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 0.0, 7.0), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[1.0, f64::NAN, 1.0], 1.0, 1.0), "▄·▄");
        assert_eq!(sparkline(&[], 0.0, 1.0), "");
    }

    #[test]
    fn long_series_are_averaged_down_to_the_maximum_width() {
        let values: Vec<f64> = (0..600).map(f64::from).collect();
        let line = sparkline(&values, 0.0, 599.0);
        assert_eq!(line.chars().count(), MAX_WIDTH);
        assert!(line.starts_with('▁') && line.ends_with('█'), "{line}");
    }

    #[test]
    fn the_dataset_line_names_the_fingerprint_and_sizes() {
        let dataset = serde_json::json!({
            "name": "spirals", "fingerprint": "ab12", "short_id": "ab12", "split_seed": 0,
            "sizes": [180, 60, 60], "test_from_source": false
        });
        assert_eq!(dataset_line(&dataset), "spirals · fingerprint ab12 · split seed 0 · train/val/test 180/60/60");
    }
}
