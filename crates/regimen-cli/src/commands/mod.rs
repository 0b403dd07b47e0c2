//! The commands that read and edit the run store: `runs`, `show`, `compare`, `datasets`, `export`, `plot`, `note`,
//! `tag`, `rm`, `gc`.
//!
//! They talk to the store only through the [`RunStore`] trait, opened by `regimen_store::open`
//! from `--store`, so that another backend changes nothing here. Each command lives in its own module
//! with its flags beside the code that uses them. Output that a script may read goes to stdout
//! (tables, `--json`); confirmations and notes go to stderr.

mod annotate;
mod compare;
mod copy;
mod datasets;
pub mod diagnose;
mod export;
mod plot;
mod remove;
mod runs;
mod show;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use regimen_store::{QueryError, RunStore, StoreError};

/// The store commands, flattened into the top-level command list.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// List runs as a table or JSON, filtered and sorted.
    Runs(runs::RunsArgs),
    /// Show everything about one run, with sparklines of its learning curves.
    Show(show::ShowArgs),
    /// Compare runs: hyperparameters and data that differ, best metrics side by side, the winner.
    Compare(compare::CompareArgs),
    /// The datasets runs were trained on, by fingerprint, with their sources and the runs that used them.
    Datasets(datasets::DatasetsArgs),
    /// Facts about a dataset: `regimen dataset set-base-error NAME 0.02`.
    #[command(subcommand)]
    Dataset(datasets::DatasetCommand),
    /// Export runs as CSV, JSON lines or a TensorBoard event file.
    Export(export::ExportArgs),
    /// Draw learning curves of runs into a PNG or SVG picture.
    Plot(plot::PlotArgs),
    /// The recipe's verdict on a run (underfitting, bias/variance, overfitting, gradient flow) with
    /// its evidence: epoch numbers, gradient norms, predictions on a fixed validation batch.
    Diagnose(diagnose::DiagnoseArgs),
    /// Append a note (markdown) to a run.
    Note(annotate::NoteArgs),
    /// Set tags on a run: `regimen tag RUN arch=cnn stage=baseline`.
    Tag(annotate::TagArgs),
    /// Delete a run: its record in the store and its folder.
    Rm(remove::RmArgs),
    /// Remove run folders that no run owns (older than an hour), and compact the store.
    Gc(remove::GcArgs),
    /// Whole stores: `regimen store copy SRC DST` publishes runs to a team store and back.
    #[command(subcommand)]
    Store(copy::StoreAdminCommand),
}

/// The `--store` flag shared by every store command.
#[derive(Debug, Args)]
pub struct StoreArg {
    /// Folder of the run store, or a postgres:// URL of a team store (run folders then go to
    /// REGIMEN_ARTIFACTS, default .regimen).
    #[arg(long, default_value = ".regimen", env = "REGIMEN_STORE", value_name = "PATH")]
    pub store: PathBuf,
}

/// Runs a store command.
pub fn dispatch(command: StoreCommand) -> anyhow::Result<ExitCode> {
    match command {
        StoreCommand::Runs(args) => runs::run(&args),
        StoreCommand::Show(args) => show::run(&args),
        StoreCommand::Compare(args) => compare::run(&args),
        StoreCommand::Datasets(args) => datasets::run(&args),
        StoreCommand::Dataset(command) => datasets::dataset(&command),
        StoreCommand::Export(args) => export::run(&args),
        StoreCommand::Plot(args) => plot::run(&args),
        StoreCommand::Diagnose(args) => diagnose::run(&args),
        StoreCommand::Note(args) => annotate::note(&args),
        StoreCommand::Tag(args) => annotate::tag(&args),
        StoreCommand::Rm(args) => remove::rm(&args),
        StoreCommand::Gc(args) => remove::gc(&args),
        StoreCommand::Store(command) => copy::dispatch(&command),
    }
}

/// Opens the store in `root` if one exists there; `None` when no run was ever recorded there.
///
/// Reading commands must not create a store as a side effect of a mistyped `--store`.
fn open_if_exists(root: &Path) -> anyhow::Result<Option<Arc<dyn RunStore>>> {
    Ok(regimen_store::open_existing(root)?)
}

/// Opens the store in `root`, or says that there is none.
pub fn open(root: &Path) -> anyhow::Result<Arc<dyn RunStore>> {
    open_if_exists(root)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no run store at {}: train a run first, or point --store (or REGIMEN_STORE) at the store folder",
            root.display()
        )
    })
}

/// The folder that holds a store's files (run folders, sweep folders, drafts), absolute: the store
/// folder itself, or a team store's artifact folder.
pub fn files_root(store: &dyn RunStore, spec: &Path) -> anyhow::Result<PathBuf> {
    let folder = store.root().unwrap_or(spec);
    std::path::absolute(folder).with_context(|| format!("cannot resolve {}", folder.display()))
}

/// The shared storage that run folders' checkpoints are copied to: `REGIMEN_ARTIFACTS` when it is
/// an `s3://` URL (a folder there is where run folders live, not a copy of them).
pub fn mirror() -> anyhow::Result<Option<Arc<dyn regimen_artifacts::ArtifactStore>>> {
    match std::env::var(regimen_store::ARTIFACTS_ENV) {
        Ok(spec) if spec.contains("://") => Ok(Some(regimen_artifacts::open(&spec)?)),
        _ => Ok(None),
    }
}

/// Tells a child process (a sweep worker, a trial) where this process keeps run folders, so that
/// both agree whatever their working folders: as the artifact folder, or as the local cache when
/// `REGIMEN_ARTIFACTS` is a URL (which the child inherits).
pub fn share_run_folders(command: &mut std::process::Command, folder: &Path) {
    let mirrored = std::env::var(regimen_store::ARTIFACTS_ENV).is_ok_and(|spec| spec.contains("://"));
    let variable = if mirrored { regimen_store::CACHE_ENV } else { regimen_store::ARTIFACTS_ENV };
    command.env(variable, folder);
}

/// Writes `text` to stdout; a reader that went away (`regimen runs | head`) is not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

/// Prints a filter or sort mistake with its caret line and returns exit code 2 (bad usage).
fn usage_error(error: &QueryError) -> ExitCode {
    say!("error: {error}");
    ExitCode::from(2)
}

/// The query error inside a store error, if that is what it is.
fn as_query_error(error: &StoreError) -> Option<&QueryError> {
    match error {
        StoreError::Query(query) => Some(query),
        _ => None,
    }
}

/// A time as `2024-05-01 12:00:00` (UTC), the store's RFC 3339 form made readable.
pub fn short_time(time: regimen_store::Timestamp) -> String {
    let text = time.to_string();
    text.get(..19).map_or(text.clone(), |t| t.replace('T', " "))
}

/// A duration as `4.2s`, `3m05s` or `2h07m`.
fn short_duration(duration: std::time::Duration) -> String {
    let secs = duration.as_secs_f64();
    let whole = duration.as_secs();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if whole < 3600 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h{:02}m", whole / 3600, whole % 3600 / 60)
    }
}

/// A metric value for a table: four decimals in the usual range, scientific notation outside it.
pub fn metric_text(value: f64) -> String {
    let magnitude = value.abs();
    if value.is_nan() {
        "NaN".to_string()
    } else if value == 0.0 || (1e-3..1e5).contains(&magnitude) {
        format!("{value:.4}")
    } else {
        format!("{value:.3e}")
    }
}

/// A plain-text table, header first, columns padded to their widest cell; the columns marked
/// `numeric` aligned right.
pub fn text_table(header: &[String], rows: &[Vec<String>], numeric: &[bool]) -> String {
    use std::fmt::Write as _;
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([header[i].chars().count()]).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for line in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            let pad = " ".repeat(widths[i].saturating_sub(cell.chars().count()));
            if i > 0 {
                text.push_str("  ");
            }
            if numeric.get(i).copied().unwrap_or(false) {
                let _ = write!(text, "{pad}{cell}");
            } else {
                let _ = write!(text, "{cell}{pad}");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_and_metrics_read_at_a_glance() {
        assert_eq!(short_duration(Duration::from_millis(4200)), "4.2s");
        assert_eq!(short_duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(short_duration(Duration::from_secs(7620)), "2h07m");
        assert_eq!(metric_text(0.91234), "0.9123");
        assert_eq!(metric_text(0.0), "0.0000");
        assert_eq!(metric_text(2.5e-5), "2.500e-5");
        assert_eq!(metric_text(f64::NAN), "NaN");
    }

    #[test]
    fn times_drop_milliseconds_and_the_t() {
        let t = regimen_store::Timestamp::parse_rfc3339("2024-05-01T12:00:00Z").unwrap();
        assert_eq!(short_time(t), "2024-05-01 12:00:00");
    }
}
