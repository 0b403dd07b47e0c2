//! `regimen sweep`: hyperparameter sweeps over `regimen train`, kept in the run store.
//!
//! `run` records the sweep (or finds the one recorded for the same file) and starts `-j N` worker
//! processes; `worker` joins a sweep from any shell; `status`, `ls`, `stop` and `report` read and
//! control sweeps. Every trial is a normal run, linked to its sweep through its provenance.

mod heaviest;
pub mod report;
mod spec;
mod submit;
mod worker;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use regimen_store::{NewSweep, RunStore, StoreError, SweepStatus, Timestamp};

use crate::commands::{StoreArg, files_root};
use spec::Recorded;

/// `regimen sweep ...`.
#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Run a sweep: `regimen sweep run sweep.toml -j 2`. Running the same file again continues it.
    Run(RunArgs),
    /// Join a sweep as one more worker, from any shell or machine that sees the store.
    Worker(WorkerArgs),
    /// Start a sweep's workers on a cluster: a Slurm job array (`--slurm --array 16%4 --gres gpu:1`)
    /// or a Kubernetes Indexed Job manifest (`--kubernetes --image IMAGE`).
    Submit(submit::SubmitArgs),
    /// Where a sweep stands: trials by state, the best so far, what is running where.
    Status(StatusArgs),
    /// List the sweeps in the store.
    Ls(LsArgs),
    /// Stop a sweep: no new trials; running ones checkpoint and stop. `run` continues it later.
    Stop(StopArgs),
    /// The report: best trials, every trial, parameter importance, compute saved by early stopping.
    Report(ReportArgs),
    /// Train the best configurations again with new seeds and report mean ± std, so that a winner
    /// that was seed luck shows.
    Rerun(RerunArgs),
    /// Coarse to fine: a child sweep whose box is narrowed around the best trials, on each
    /// parameter's own scale, starting from the parent's trials that lie inside it.
    Zoom(ZoomArgs),
}

/// Flags of `regimen sweep zoom`.
#[derive(Debug, Args)]
pub struct ZoomArgs {
    /// The sweep to zoom into: id, id prefix or name.
    pub sweep: String,
    /// How many of the best trials the new box is drawn around.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub top_k: usize,
    /// How far beyond the best trials' span the box reaches on each side, as a fraction of the
    /// span on the parameter's scale.
    #[arg(long, default_value_t = 0.25, value_name = "M")]
    pub margin: f64,
    /// Trials of the child sweep [default: as many as the parent's].
    #[arg(long, value_name = "N")]
    pub trials: Option<u64>,
    #[command(flatten)]
    pub launch: LaunchArgs,
}

/// How a child sweep (a zoom, a rerun) runs: its workers, its output, its store.
#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// Worker processes to run at once.
    #[arg(short = 'j', long, default_value_t = 1, value_name = "N")]
    pub jobs: usize,
    /// Print one JSON object with the outcome on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Flags of `regimen sweep rerun`.
#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The sweep: id, id prefix or name.
    pub sweep: String,
    /// How many of the best trials to train again.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub top_k: usize,
    /// New seeds per configuration.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub seeds: u64,
    #[command(flatten)]
    pub launch: LaunchArgs,
}

/// Flags of `regimen sweep run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The sweep file: [sweep] settings, fixed [train] settings, [params] to search.
    pub file: PathBuf,
    /// Worker processes to run at once; 0 only records the sweep, for workers started elsewhere
    /// (`regimen sweep worker`, `regimen sweep submit`).
    #[arg(short = 'j', long, default_value_t = 1, value_name = "N")]
    pub jobs: usize,
    /// A parameter to search, over the file's: `lr=loguniform:1e-5:1e-1`, `optimizer=choice:adam|sgd`.
    #[arg(long = "param", value_name = "NAME=SPEC")]
    pub params: Vec<String>,
    /// Devices to pin workers to, one trial per device: `cuda:0,cuda:1` (worker k trains on the
    /// k-th, round robin). Trials train on the `[train]` table's device otherwise.
    #[arg(long, value_name = "DEVICE,..", value_delimiter = ',')]
    pub devices: Vec<String>,
    /// A satisficing constraint, over the file's: `--constraint "latency.p95_ms <= 20"`. The best
    /// trial is the best of those that meet every constraint; every run records its inference
    /// latency (`latency.p50_ms`, `latency.p95_ms`, and `latency.batch_*` at the training batch size).
    #[arg(long = "constraint", value_name = "EXPR")]
    pub constraints: Vec<String>,
    /// Before the first trial, find the largest batch that fits (`regimen find batch-size`) for
    /// the heaviest configuration of the space, and train every trial with it: numeric parameters
    /// at their upper bounds, and of the combinations of choices the one with the highest peak
    /// memory. The choice is recorded with the sweep.
    #[arg(long)]
    pub batch_size_from_heaviest: bool,
    /// The memory each trial may use, for --batch-size-from-heaviest [default: half of the memory
    /// available, shared by the -j workers].
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<bytesize::ByteSize>,
    /// How many times a trial whose training process or worker died is retried before it is
    /// `failed`, over the file's `max_retries` (default 2).
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,
    /// Start a new sweep even if this file's sweep is in the store already.
    #[arg(long)]
    pub new: bool,
    /// Print one JSON object with the outcome on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArg,
    /// Run this program for each trial instead of `regimen train`, after `--`:
    /// `-- python train.py --lr {lr}`. It reports metrics as JSON lines (docs/sweep-protocol.md).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Flags of `regimen sweep worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The sweep: id, id prefix or name.
    pub sweep: String,
    /// Train this worker's new trials on this device (`cpu`, `cuda:1`), over the `[train]` table's.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Flags of `regimen sweep status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The sweep: id, id prefix or name.
    pub sweep: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Flags of `regimen sweep report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The sweep: id, id prefix or name.
    pub sweep: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also draw the objective against each parameter (on its own scale) and the best so far
    /// against the trial number, as PNG and SVG pictures in this folder.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
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
        SweepCommand::Submit(args) => submit::submit(&args),
        SweepCommand::Status(args) => report::status(&args),
        SweepCommand::Ls(args) => report::list(&args),
        SweepCommand::Stop(args) => stop(&args),
        SweepCommand::Report(args) => report::report(&args),
        SweepCommand::Rerun(args) => rerun(&args),
        SweepCommand::Zoom(args) => zoom(&args),
    }
}

/// The store as workers and trials started elsewhere must name it: a folder made absolute, a URL
/// as is.
fn store_root(store: &Path) -> anyhow::Result<PathBuf> {
    Ok(regimen_store::resolve_spec(store)?)
}

/// The id of the sweep of this definition: its name and a hash of what it runs, so that running
/// the same file again finds the same sweep.
fn sweep_id(name: &str, recorded: &Recorded) -> String {
    let definition = serde_json::to_string(recorded).expect("a sweep definition always serializes");
    let hash = blake3::hash(definition.as_bytes()).to_hex();
    format!("{name}-{}", &hash[..8])
}

fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let mut recorded = spec::read(&args.file, &args.params, &args.command, &args.constraints)?;
    if let Some(retries) = args.max_retries {
        recorded.overrides.insert("max_retries".into(), toml::Value::Integer(i64::from(retries)));
    }
    let root = store_root(&args.store.store)?;
    let store = regimen_store::open(&root)?;
    let name = args.file.file_stem().map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
    let mut id = sweep_id(&name, &recorded);
    if args.new {
        let stamp: String = Timestamp::now().to_string().chars().filter(char::is_ascii_digit).take(14).collect();
        id = format!("{id}-{stamp}");
    }
    // Only a new sweep measures: one being continued keeps the batch size it started with.
    if args.batch_size_from_heaviest && store.get_sweep(&id).is_err() {
        let limit = match args.memory_limit {
            Some(limit) => limit.as_u64(),
            None => crate::find::default_limit(args.jobs)?,
        };
        let folder = write_files(&files_root(store.as_ref(), &root)?, &id, &recorded.parse()?)?;
        heaviest::choose_batch_size(&mut recorded, &folder, &root, limit)?;
    }
    let code = launch(
        store.as_ref(),
        &root,
        Launch { id: &id, name, parent: None, recorded: &recorded, jobs: args.jobs, devices: &args.devices },
    )?;
    match code {
        Some(code) => Ok(code),
        None => report::outcome(store.as_ref(), &id, args.json),
    }
}

/// A sweep to record (or find recorded) and work on.
struct Launch<'a> {
    id: &'a str,
    name: String,
    parent: Option<String>,
    recorded: &'a Recorded,
    jobs: usize,
    devices: &'a [String],
}

/// Records the sweep (or continues the one recorded with this id), runs `jobs` worker processes
/// until it has no work left, and returns an exit code when it did not finish normally.
fn launch(store: &dyn RunStore, root: &Path, launch: Launch<'_>) -> anyhow::Result<Option<ExitCode>> {
    let Launch { id, name, parent, recorded, jobs, devices } = launch;
    let sweep = recorded.parse()?;
    let new = NewSweep {
        sweep_id: id.to_string(),
        name,
        spec: serde_json::to_value(recorded).expect("a sweep definition always serializes"),
        parent,
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
            let row = store.get_sweep(id)?;
            if row.status == SweepStatus::Stopped {
                store.set_sweep_status(id, SweepStatus::Active)?;
            }
            say!("sweep {id}: continuing ({})", report::counts_text(&row.counts));
        }
        Err(error) => return Err(error.into()),
    }
    let files = files_root(store, root)?;
    write_files(&files, id, &sweep)?;
    if jobs == 0 {
        say!(
            "sweep {id} recorded; start its workers with `regimen sweep worker {id}` or `regimen sweep submit {id} --slurm`"
        );
        return Ok(Some(ExitCode::SUCCESS));
    }
    let exe = std::env::current_exe().context("cannot find the regimen executable")?;
    let mut workers = Vec::new();
    for k in 0..jobs {
        let mut command = Command::new(&exe);
        command.args(["sweep", "worker", id, "--store"]).arg(root).env_remove("REGIMEN_STORE");
        crate::commands::share_run_folders(&mut command, &files);
        if !devices.is_empty() {
            command.args(["--device", &devices[k % devices.len()]]);
        }
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
        return Ok(Some(ExitCode::from(130)));
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {jobs} workers failed; see their messages above");
    }
    Ok(None)
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
    let folder = write_files(&files_root(store.as_ref(), &root)?, &row.sweep_id, &sweep)?;
    let parent = match recorded.zoom.as_ref().and_then(|z| z["from"].as_str()) {
        Some(from) => Some(report::Loaded::load(store.as_ref(), from)?),
        None => None,
    };
    let mut worker = worker::Worker::new(store, root, row.sweep_id, sweep, recorded.plan, folder);
    worker.device = args.device.clone();
    worker.mirror = crate::commands::mirror()?;
    if let Some(parent) = parent {
        worker.inherit(&parent.trials, &parent.sweep)?;
    }
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

fn rerun(args: &RerunArgs) -> anyhow::Result<ExitCode> {
    if args.top_k == 0 || args.seeds == 0 {
        anyhow::bail!("--top-k and --seeds must be at least 1");
    }
    let root = store_root(&args.launch.store.store)?;
    let store = crate::commands::open(&root)?;
    let parent = report::Loaded::load(store.as_ref(), &args.sweep)?;
    let top = parent.ranked();
    if top.is_empty() {
        anyhow::bail!("sweep {} has no completed trial to rerun yet", parent.row.sweep_id);
    }
    let base_seed = spec::base_config(&parent.sweep.train)?.seed;
    let mut plan = Vec::new();
    for trial in top.iter().take(args.top_k) {
        let original = trial.params.get("seed").and_then(serde_json::Value::as_u64).unwrap_or(base_seed);
        for i in 1..=args.seeds {
            let mut params = trial.params.clone();
            params["seed"] = serde_json::json!(original.wrapping_add(i));
            plan.push(params);
        }
    }
    let mut recorded: Recorded = serde_json::from_value(parent.row.spec.clone())?;
    // Over the parent's own overrides (its retries, a zoom's trial count), not instead of them.
    recorded.overrides.insert("scheduler".into(), toml::Value::String("none".into()));
    recorded.overrides.insert("trials".into(), toml::Value::Integer(plan.len() as i64));
    recorded.plan = plan;
    let id = sweep_id(&format!("{}-rerun", parent.row.sweep_id), &recorded);
    match launch_child(store.as_ref(), &root, &parent, &id, "rerun", &recorded, &args.launch)? {
        Some(code) => Ok(code),
        None => report::rerun(store.as_ref(), &parent, &id, args.launch.json),
    }
}

/// Records and runs a sweep derived from `parent` (a zoom, a rerun) with the shared flags.
fn launch_child(
    store: &dyn RunStore,
    root: &Path,
    parent: &report::Loaded,
    id: &str,
    kind: &str,
    recorded: &Recorded,
    args: &LaunchArgs,
) -> anyhow::Result<Option<ExitCode>> {
    let launched = Launch {
        id,
        name: format!("{}-{kind}", parent.row.name),
        parent: Some(parent.row.sweep_id.clone()),
        recorded,
        jobs: args.jobs,
        devices: &[],
    };
    launch(store, root, launched)
}

fn zoom(args: &ZoomArgs) -> anyhow::Result<ExitCode> {
    let root = store_root(&args.launch.store.store)?;
    let store = crate::commands::open(&root)?;
    let parent = report::Loaded::load(store.as_ref(), &args.sweep)?;
    let history: Vec<regimen_sweep::Trial> =
        parent.trials.iter().map(|t| worker::trial_of(&parent.sweep, t)).collect::<anyhow::Result<_>>()?;
    let options = regimen_sweep::ZoomOptions { top_k: args.top_k, margin: args.margin };
    let (zoomed, inherited) = regimen_sweep::zoom_history(&parent.sweep.space, &history, &options)
        .with_context(|| format!("cannot zoom into sweep {}", parent.row.sweep_id))?;
    let mut recorded: Recorded = serde_json::from_value(parent.row.spec.clone())?;
    let mut changes = Vec::new();
    for change in &zoomed.changes {
        if change.narrowed {
            recorded.params.push(format!("{}={}", change.name, change.after));
        }
        let note = change.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        say!("  {:<16} {} → {}{note}", change.name, change.before, change.after);
        changes.push(serde_json::json!({
            "name": change.name, "before": change.before, "after": change.after,
            "narrowed": change.narrowed, "note": change.note,
        }));
    }
    let trials = args.trials.unwrap_or(parent.sweep.settings.trials);
    recorded.overrides.insert("trials".into(), toml::Value::Integer(i64::try_from(trials).unwrap_or(i64::MAX)));
    recorded.zoom = Some(serde_json::json!({
        "from": parent.row.sweep_id, "top_k": args.top_k, "margin": args.margin, "changes": changes,
    }));
    say!(
        "zoom of sweep {} around its best {}: starts from the {} of its trials that lie in the new box",
        parent.row.sweep_id,
        args.top_k,
        inherited.len()
    );
    let id = sweep_id(&format!("{}-zoom", parent.row.name), &recorded);
    match launch_child(store.as_ref(), &root, &parent, &id, "zoom", &recorded, &args.launch)? {
        Some(code) => Ok(code),
        None => report::outcome(store.as_ref(), &id, args.launch.json),
    }
}

/// The runs of a sweep's `k` best complete trials (meeting its constraints), best first.
pub fn best_runs(store: &dyn RunStore, sweep: &str, k: usize) -> anyhow::Result<Vec<String>> {
    let loaded = report::Loaded::load(store, sweep)?;
    let runs: Vec<String> = loaded.ranked().iter().take(k).filter_map(|t| t.run_id.clone()).collect();
    if runs.is_empty() {
        anyhow::bail!("sweep {} has no completed trial yet", loaded.row.sweep_id);
    }
    Ok(runs)
}
