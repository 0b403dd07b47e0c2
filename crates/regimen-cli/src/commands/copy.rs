//! `regimen store copy SRC DST`: publish a laptop's runs to the team store, or bring runs home.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use regimen_store::{Query, copy_runs};

/// Commands on whole stores.
#[derive(Debug, Subcommand)]
pub enum StoreAdminCommand {
    /// Copy runs and their folders from one store to another: a folder or a postgres:// URL on
    /// either side (a team store's run folders are in REGIMEN_ARTIFACTS). Runs the destination has
    /// are skipped, so running it again finishes an interrupted copy; running runs wait for a later copy.
    Copy(CopyArgs),
}

/// Arguments of `regimen store copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The store to copy from.
    pub source: PathBuf,
    /// The store to copy into (created when it is a folder that does not exist).
    pub destination: PathBuf,
    /// Only runs matching this filter, in the language of `regimen runs --filter`.
    #[arg(long)]
    pub filter: Option<String>,
    /// Print what was copied as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a store command.
pub fn dispatch(command: &StoreAdminCommand) -> anyhow::Result<ExitCode> {
    match command {
        StoreAdminCommand::Copy(args) => copy(args),
    }
}

fn copy(args: &CopyArgs) -> anyhow::Result<ExitCode> {
    let source = super::open(&args.source)?;
    let destination = regimen_store::open(&args.destination)?;
    let query = Query::parse(args.filter.as_deref(), None, None)?;
    let report = copy_runs(source.as_ref(), destination.as_ref(), &query)?;
    if args.json {
        let json = serde_json::json!({
            "copied": report.copied,
            "present": report.present,
            "running": report.running,
            "files": report.files,
            "bytes": report.bytes,
        });
        super::emit(&format!("{json}\n"))?;
    } else {
        super::emit(&format!(
            "copied {} runs ({} files, {}) from {} to {}; {} already there\n",
            report.copied.len(),
            report.files,
            bytesize::ByteSize::b(report.bytes),
            args.source.display(),
            args.destination.display(),
            report.present.len(),
        ))?;
        if !report.running.is_empty() {
            super::emit(&format!(
                "{} runs are still running and were left for a later copy: {}\n",
                report.running.len(),
                report.running.join(", ")
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
