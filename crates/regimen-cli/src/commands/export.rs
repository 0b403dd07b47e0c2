//! `regimen export RUN... --format csv|jsonl|tensorboard`: a run's record in files other tools read.
//!
//! The formats are `regimen_export`'s: long CSV, JSON lines, and a TensorBoard event file (one
//! subfolder per run, so several runs exported into one folder sit side by side in
//! `tensorboard --logdir`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use regimen_export::{Format, export};

use super::{StoreArg, open};

/// Flags of `regimen export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Run ids (or unique prefixes).
    #[arg(required = true)]
    pub runs: Vec<String>,
    /// Format: csv, jsonl or tensorboard.
    #[arg(long, value_name = "FORMAT")]
    pub format: Format,
    /// Where to write: a file or folder for csv and jsonl (a folder gets `<run id>.<ext>`), a log
    /// folder for tensorboard [default: `.`, or `tensorboard/` for tensorboard].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Exports runs.
pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let out = args.out.clone().unwrap_or_else(|| match args.format {
        Format::TensorBoard => PathBuf::from("tensorboard"),
        Format::Csv | Format::Jsonl => PathBuf::from("."),
    });
    if args.runs.len() > 1 && args.format != Format::TensorBoard && !out.is_dir() {
        anyhow::bail!("several runs need a folder to go to, and {} is not one: pass --out FOLDER", out.display());
    }
    let store = open(&args.store.store)?;
    for run in &args.runs {
        let detail = store.get_run(run)?;
        let written = export(&detail, args.format, &out)?;
        say!("exported {} to {}", detail.row.run_id, written.display());
    }
    if args.format == Format::TensorBoard {
        say!("view with: tensorboard --logdir {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
