//! `regimen sweep`: hyperparameter sweeps over `regimen train`, kept in the run store.
//!
//! `run` records the sweep (or finds the one recorded for the same file) and starts `-j N` worker
//! processes; `worker` joins a sweep from any shell; `status`, `ls`, `stop` and `report` read and
//! control sweeps. Every trial is a normal run, linked to its sweep through its provenance.

mod report;
mod spec;
mod worker;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use regimen_store::{NewSweep, RunStore, StoreError, SweepStatus, Timestamp};

use crate::commands::StoreArg;
use spec::Recorded;

/// `regimen sweep ...`.
#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Run a sweep: `regimen sweep run sweep.toml -j 2`. Running the same file again continues it.
    Run(RunArgs),
    /// Join a sweep as one more worker, from any shell or machine that sees the store.
    Worker(WorkerArgs),
    /// Where a sweep stands: trials by state, the best so far, what is running where.
    Status(ReportArgs),
    /// List the sweeps in the store.
    Ls(LsArgs),
    /// Stop a sweep: no new trials; running ones checkpoint and stop. `run` continues it later.
    Stop(StopArgs),
    /// The report: best trials, every trial, parameter importance, compute saved by early stopping.
    Report(ReportArgs),
}

/// Flags of `regimen sweep run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The sweep file: [sweep] settings, fixed [train] settings, [params] to search.
    pub file: PathBuf,
    /// Worker processes to run at once.
    #[arg(short = 'j', long, default_value_t = 1, value_name = "N")]
    pub jobs: usize,
    /// A parameter to search, over the file's: `lr=loguniform:1e-5:1e-1`, `optimizer=choice:adam|sgd`.
    #[arg(long = "param", value_name = "NAME=SPEC")]
    pub params: Vec<String>,
    /// Start a new sweep even if this file's sweep is in the store already.
    #[arg(long)]
    pub new: bool,
    /// Print one JSON object with the outcome on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Flags of `regimen sweep worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The sweep: id, id prefix or name.
    pub sweep: String,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Flags of `regimen sweep status` and `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The sweep: id, id prefix or name.
    pub sweep: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Flags of `regimen sweep ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Flags of `regimen sweep stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The sweep: id, id prefix or name.
    pub sweep: String,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Runs a sweep command.
pub fn dispatch(command: SweepCommand) -> anyhow::Result<ExitCode> {
    match command {
        SweepCommand::Run(args) => run(&args),
        SweepCommand::Worker(args) => work(&args),
        SweepCommand::Status(args) => report::status(&args),
        SweepCommand::Ls(args) => report::list(&args),
        SweepCommand::Stop(args) => stop(&args),
        SweepCommand::Report(args) => report::report(&args),
    }
}

/// The store folder, absolute, so that workers and trials started elsewhere find it.
fn store_root(store: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(store).with_context(|| format!("cannot resolve {}", store.display()))
}

/// The id of the sweep of this definition: its name and a hash of what it runs, so that running
/// the same file again finds the same sweep.
fn sweep_id(name: &str, recorded: &Recorded) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(recorded.file.as_bytes());
    for param in &recorded.params {
        hasher.update(b"\0");
        hasher.update(param.as_bytes());
    }
    let hash = hasher.finalize().to_hex();
    format!("{name}-{}", &hash[..8])
}

fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    if args.jobs == 0 {
        anyhow::bail!("-j must be at least 1");
    }
    let (recorded, sweep) = spec::read(&args.file, &args.params)?;
    let root = store_root(&args.store.store)?;
    let store = regimen_store::open(&root)?;
    let name = args.file.file_stem().map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
    let mut id = sweep_id(&name, &recorded);
    if args.new {
        let stamp: String = Timestamp::now().to_string().chars().filter(char::is_ascii_digit).take(14).collect();
        id = format!("{id}-{stamp}");
    }
    let new = NewSweep {
        sweep_id: id.clone(),
        name,
        spec: serde_json::to_value(&recorded).expect("a sweep definition always serializes"),
        parent: None,
        created_at: Timestamp::now(),
    };
    match store.create_sweep(&new) {
        Ok(()) => say!(
            "sweep {id}: {} trials, {} sampler, {} scheduler",
            sweep.settings.trials,
            sweep.settings.sampler,
            sweep.scheduler.kind
        ),
        Err(StoreError::DuplicateSweep { .. }) => {
            let row = store.get_sweep(&id)?;
            if row.status == SweepStatus::Stopped {
                store.set_sweep_status(&id, SweepStatus::Active)?;
            }
            say!("sweep {id}: continuing ({})", report::counts_text(&row.counts));
        }
        Err(error) => return Err(error.into()),
    }
    write_files(&root, &id, &sweep)?;
    let exe = std::env::current_exe().context("cannot find the regimen executable")?;
    let mut workers = Vec::new();
    for _ in 0..args.jobs {
        let mut command = Command::new(&exe);
        command.args(["sweep", "worker", &id, "--store"]).arg(&root).env_remove("REGIMEN_STORE");
        worker::die_with_parent(&mut command);
        workers.push(command.spawn().context("could not start a sweep worker")?);
    }
    let mut failed = 0;
    for mut child in workers {
        let status = child.wait().context("waiting for a sweep worker")?;
        if !status.success() {
            failed += 1;
        }
    }
    if regimen_train::interrupt::requested() {
        say!("sweep {id} interrupted; run the same command again to continue it");
        return Ok(ExitCode::from(130));
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} workers failed; see their messages above", args.jobs);
    }
    report::outcome(store.as_ref(), &id, &sweep, args.json)
}

/// Writes the fixed settings every trial starts from: the `[train]` table, with the sweep's name as
/// the experiment unless the file sets one.
fn write_files(root: &Path, id: &str, sweep: &spec::SweepFile) -> anyhow::Result<PathBuf> {
    let folder = worker::folder(root, id);
    std::fs::create_dir_all(&folder).with_context(|| format!("could not create {}", folder.display()))?;
    let mut train = sweep.train.clone();
    train.entry("experiment").or_insert_with(|| toml::Value::String(id.to_string()));
    let text = toml::to_string(&train).context("could not encode the [train] table")?;
    regimen_fs::write(&folder.join("train.toml"), text.as_bytes())?;
    Ok(folder)
}

fn work(args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    let root = store_root(&args.store.store)?;
    let store: Arc<dyn RunStore> = crate::commands::open(&root)?;
    let row = store.get_sweep(&args.sweep)?;
    let recorded: Recorded = serde_json::from_value(row.spec.clone())
        .with_context(|| format!("sweep {} has a definition this Regimen cannot read", row.sweep_id))?;
    let sweep = recorded.parse()?;
    let folder = write_files(&root, &row.sweep_id, &sweep)?;
    let mut worker = worker::Worker::new(store, root, row.sweep_id, sweep, folder);
    worker.run()?;
    Ok(if regimen_train::interrupt::requested() { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

fn stop(args: &StopArgs) -> anyhow::Result<ExitCode> {
    let store = crate::commands::open(&store_root(&args.store.store)?)?;
    let row = store.get_sweep(&args.sweep)?;
    store.set_sweep_status(&row.sweep_id, SweepStatus::Stopped)?;
    say!(
        "sweep {} stopped: running trials checkpoint and stop within a minute; `regimen sweep run` continues it",
        row.sweep_id
    );
    Ok(ExitCode::SUCCESS)
}
