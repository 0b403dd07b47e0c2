//! `regimen rm` and `regimen gc`: the only commands that delete anything.
//!
//! `rm` asks before deleting when it can ask (stdin is a terminal) and refuses when it cannot,
//! unless `--yes` says the question was already answered: a script never deletes a run by
//! accident.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Args;
use regimen_store::GcOptions;

use super::{StoreArg, emit, open};

/// Flags of `regimen rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Run id, or a unique prefix of it.
    pub run: String,
    /// Delete without asking (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Flags of `regimen gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Deletes a run after confirmation.
pub fn rm(args: &RmArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store.store)?;
    let detail = store.get_run(&args.run)?;
    let id = &detail.row.run_id;
    let folder =
        regimen_store::RunDir::of(&super::files_root(store.as_ref(), &args.store.store)?, id).path().to_path_buf();
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "refusing to delete run {id} without confirmation: stdin is not a terminal; pass --yes to delete it"
            );
        }
        say_raw!(
            "delete run {id} ({}, {}) and its folder {}? [y/N] ",
            detail.row.name,
            detail.row.status,
            folder.display()
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            say!("kept run {id}");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let deleted = store.delete_run(id)?;
    say!("deleted run {deleted} and {}", folder.display());
    Ok(ExitCode::SUCCESS)
}

/// Removes orphan run folders and compacts the store.
pub fn gc(args: &GcArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store.store)?;
    let options = GcOptions { dry_run: args.dry_run, ..GcOptions::default() };
    let report = store.gc(&options)?;
    let verb = if args.dry_run { "would remove" } else { "removed" };
    let list: String = report.removed.iter().map(|path| format!("{verb} {}\n", path.display())).collect();
    emit(&list)?;
    say!(
        "{verb} {} orphan run folder{}{}",
        report.removed.len(),
        if report.removed.len() == 1 { "" } else { "s" },
        if report.vacuumed { "; compacted the store" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}
