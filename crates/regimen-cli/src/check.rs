//! `regimen check`: the recipe doctor. Takes the same flags as `regimen train`, runs the data
//! checks and the short model experiments of `regimen_train::check` on that setup, prints the
//! report, and saves it with the picture of the first batch.
//!
//! The report goes to stdout (as text, or as JSON with `--json`) because it is the command's
//! result; the stages go to stderr as they start, since the model checks take a while. The exit
//! code is 1 when any check FAILs, so that a script or CI can gate a training job on it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::Context;
use clap::Args;
use regimen_train::check::{self, Check, CheckObserver, CheckOptions, CheckStatus};

use crate::EXIT_CHECK_FAILED;
use crate::args::TrainArgs;
use crate::commands::emit;

/// Name of the saved report in the output folder.
pub const REPORT_FILE: &str = "check.json";

/// Name of the picture of the first batch in the output folder.
pub const GRID_FILE: &str = "first_batch.png";

/// Flags of `regimen check`: every flag of `regimen train` (the setup to check), the step budgets of
/// the model checks, and where to save the report. `--json` prints the report as JSON.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The setup to check, exactly as `regimen train` takes it.
    #[command(flatten)]
    pub train: TrainArgs,

    /// Optimizer steps of each short training run (on real inputs, then on zeroed inputs).
    #[arg(long, value_name = "N", default_value_t = check::DEFAULT_STEPS, help_heading = "Check")]
    pub steps: u64,
    /// Most optimizer steps the overfit-one-batch check may take.
    #[arg(long, value_name = "N", default_value_t = check::DEFAULT_OVERFIT_STEPS, help_heading = "Check")]
    pub overfit_steps: u64,
    /// Samples in the batch the model must memorize.
    #[arg(long, value_name = "N", default_value_t = check::DEFAULT_OVERFIT_SAMPLES, help_heading = "Check")]
    pub overfit_samples: usize,
    /// Steps of each of the two determinism runs.
    #[arg(long, value_name = "N", default_value_t = check::DEFAULT_DETERMINISM_STEPS, help_heading = "Check")]
    pub determinism_steps: u64,
    /// Folder for check.json and first_batch.png [default: <store>/checks/<UTC time>].
    #[arg(long, value_name = "DIR", help_heading = "Check")]
    pub out: Option<PathBuf>,
}

/// Prints each stage on stderr as it starts, with the time the previous one took.
pub(crate) struct Stages {
    pub(crate) current: Option<(String, Instant)>,
}

impl Stages {
    pub(crate) fn finish(&mut self) {
        if let Some((stage, started)) = self.current.take() {
            say!("  {stage}: {:.1} s", started.elapsed().as_secs_f64());
        }
    }
}

impl CheckObserver for Stages {
    fn on_stage(&mut self, stage: &str) {
        self.finish();
        self.current = Some((stage.to_owned(), Instant::now()));
    }

    fn on_check(&mut self, check: &Check) {
        if check.status == CheckStatus::Fail {
            say!("  FAIL {}", check.name);
        }
    }
}

/// Runs `regimen check`: exit code 0 when no check FAILs, 4 when one does (1 is an error).
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if args.train.resume.is_some() {
        anyhow::bail!(
            "regimen check judges a fresh setup; drop --resume (check the run's config with --config RUN_DIR/config.toml)"
        );
    }
    if args.train.init_from.is_some() {
        anyhow::bail!("regimen check judges a freshly initialized model (loss at init, init well); drop --init-from");
    }
    let json = args.train.json;
    let config = args.train.resolve()?;
    let out = args.out.clone().unwrap_or_else(|| check::default_out_dir(&config.store, SystemTime::now()));
    std::fs::create_dir_all(&out).with_context(|| format!("could not create the output folder {}", out.display()))?;
    let options = CheckOptions {
        steps: args.steps,
        overfit_steps: args.overfit_steps,
        overfit_samples: args.overfit_samples,
        determinism_steps: args.determinism_steps,
        grid: Some(out.join(GRID_FILE)),
        ..CheckOptions::default()
    };
    if !json {
        let data = config.data_source();
        say!(
            "regimen check · data {data} · model {} · batch {} · {} lr {:e} · seed {} · device {}",
            config.model,
            config.batch_size,
            config.optimizer,
            config.lr,
            config.seed,
            config.device
        );
        say!("short runs of {} steps, overfit budget {} steps:", options.steps, options.overfit_steps);
    }
    let started = Instant::now();
    let mut stages = Stages { current: None };
    let report = if json {
        check::check(&config, &options, &mut check::Quiet)
    } else {
        check::check(&config, &options, &mut stages)
    }
    .context("the checks could not run")?;
    stages.finish();

    let text = format!("{}\n", serde_json::to_string_pretty(&report)?);
    let path = out.join(REPORT_FILE);
    regimen_fs::write(&path, text.as_bytes()).with_context(|| format!("could not write {}", path.display()))?;
    if json {
        emit(&text)?;
    } else {
        emit(&report.render(crate::colors(&std::io::stdout())))?;
        say!(
            "{:.1} s · report saved to {} (picture of the first batch: {})",
            started.elapsed().as_secs_f64(),
            path.display(),
            GRID_FILE
        );
    }
    Ok(if report.status() == CheckStatus::Fail { ExitCode::from(EXIT_CHECK_FAILED) } else { ExitCode::SUCCESS })
}
