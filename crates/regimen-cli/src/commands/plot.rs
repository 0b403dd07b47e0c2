//! `regimen plot RUN... --metric KEY... --out curves.png|svg`: learning curves as a picture.
//!
//! The drawing is `regimen_plot`'s: one panel per metric name (`train.loss` and `val.loss` share
//! the `loss` panel), one colour family per run, train lighter than val.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use regimen_plot::{Curve, PlotOptions, plot};

use super::{StoreArg, open};

/// The horizontal axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XAxis {
    /// Optimizer steps.
    Step,
    /// Epochs.
    Epoch,
}

/// Flags of `regimen plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Run ids (or unique prefixes).
    #[arg(required = true)]
    pub runs: Vec<String>,
    /// Metric keys to draw, repeatable [default: train.loss, val.loss and the runs' accuracy].
    #[arg(long = "metric", value_name = "KEY")]
    pub metrics: Vec<String>,
    /// Output picture; the extension picks the format: .png or .svg.
    #[arg(long, value_name = "FILE", default_value = "curves.png")]
    pub out: PathBuf,
    /// Horizontal axis.
    #[arg(long, value_enum, default_value_t = XAxis::Step)]
    pub x: XAxis,
    /// Logarithmic vertical axis.
    #[arg(long)]
    pub log_y: bool,
    /// Title above the panels.
    #[arg(long)]
    pub title: Option<String>,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Draws runs' curves.
pub fn run(args: &PlotArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store.store)?;
    let runs = args.runs.iter().map(|run| store.get_run(run)).collect::<Result<Vec<_>, _>>()?;
    let metrics: Vec<String> = if args.metrics.is_empty() {
        ["train.loss", "val.loss", "train.acc", "val.acc"]
            .into_iter()
            .filter(|key| runs.iter().any(|r| r.series.contains_key(*key)))
            .map(String::from)
            .collect()
    } else {
        args.metrics.clone()
    };
    let mut curves = Vec::new();
    for run in &runs {
        let label = if runs.iter().filter(|r| r.row.name == run.row.name).count() > 1 {
            format!("{} ({})", run.row.name, run.row.run_id)
        } else {
            run.row.name.clone()
        };
        for key in &metrics {
            let Some(series) = run.series.get(key) else { continue };
            let points = series
                .iter()
                .map(|p| {
                    let x = match args.x {
                        XAxis::Step => p.step as f64,
                        XAxis::Epoch => p.epoch as f64,
                    };
                    (x, p.value)
                })
                .collect();
            curves.push(Curve { run_label: label.clone(), key: key.clone(), points });
        }
    }
    if curves.is_empty() {
        let known: std::collections::BTreeSet<&String> = runs.iter().flat_map(|r| r.series.keys()).collect();
        let known: Vec<&str> = known.into_iter().map(String::as_str).collect();
        anyhow::bail!("the runs log none of {}; they log: {}", metrics.join(", "), known.join(", "));
    }
    let options = PlotOptions {
        x_label: match args.x {
            XAxis::Step => "step",
            XAxis::Epoch => "epoch",
        }
        .to_string(),
        title: args.title.clone(),
        log_y: args.log_y,
        ..PlotOptions::default()
    };
    plot(&curves, &options, &args.out)?;
    say!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
