//! `regimen`: train neural networks the way the recipe says, and keep every run.

/// Writes a line to stderr. A reader that went away (`regimen train 2>&1 | head`) must not turn
/// into a panic in the middle of a run, so the write error is dropped on purpose: there is no one
/// left to tell.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// [`say!`] without the newline.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod args;
mod check;
mod commands;
mod ensemble;
mod explore;
mod find;
mod progress;
mod sweep;
mod ui;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use regimen_train::{CheckpointChoice, Recorder, RunSummary, evaluate_run, resume, train};

use args::{Cli, Command, EvalArgs, TrainArgs};
use commands::emit;
use progress::ProgressView;

/// Exit status when a check or a verdict FAILs (`regimen check`, `regimen diagnose`): not an
/// error, so scripts can tell the two apart.
pub const EXIT_CHECK_FAILED: u8 = 4;

fn main() -> ExitCode {
    regimen_train::system::keep_freed_memory();
    catch_interrupts();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Train(Box::default())) {
        Command::Train(args) => run_train(*args),
        Command::Eval(args) => run_eval(args),
        Command::Check(args) => check::run(*args),
        Command::Ensemble(args) => ensemble::run(&args),
        Command::Explore(args) => explore::run(*args),
        Command::Ui(args) => ui::run(&args),
        Command::Find(command) => find::dispatch(command),
        Command::Sweep(command) => sweep::dispatch(command),
        Command::Store(command) => commands::dispatch(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            say!("error: {}", error_report(&error));
            ExitCode::FAILURE
        }
    }
}

/// Whether to colour what goes to `stream`: when it is a terminal, unless `NO_COLOR`, `CLICOLOR=0`
/// or `TERM=dumb` says not to (`CLICOLOR_FORCE` colours even a pipe). anstream applies these rules
/// for clap's own help, so the whole command follows one convention.
fn colors(stream: &impl anstream::stream::RawStream) -> bool {
    anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never
}

/// Ctrl-C and SIGTERM ask a training run to stop after its current step: it saves a checkpoint,
/// records itself `interrupted` and exits with 130. A second Ctrl-C ends the process at once.
fn catch_interrupts() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = std::sync::Arc::clone(regimen_train::interrupt::flag());
    for signal in [SIGINT, SIGTERM] {
        // The conditional shutdown comes first: it exits only when the flag is already set.
        let registered = signal_hook::flag::register_conditional_shutdown(signal, 130, std::sync::Arc::clone(&flag))
            .and_then(|_| signal_hook::flag::register(signal, std::sync::Arc::clone(&flag)));
        if let Err(error) = registered {
            say!("warning: could not catch signal {signal} ({error}); stopping with Ctrl-C will not save a checkpoint");
        }
    }
}

/// Where runs are recorded: the store that `--store` names, with run folders beside it (or in a
/// team store's artifact folder). The folder is absolute, so the paths a run records (checkpoints,
/// the final model) resolve from anywhere.
pub(crate) fn recorder(store: &std::path::Path) -> anyhow::Result<Recorder> {
    let opened = regimen_store::open(store)?;
    let root = commands::files_root(opened.as_ref(), store)?;
    Ok(Recorder::new(root, Some(opened)).with_mirror(commands::mirror()?))
}

/// The error and its causes on one line, each cause once: library errors already quote the
/// operating system's message that is also their source.
fn error_report(error: &anyhow::Error) -> String {
    let mut report = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if report.contains(&text) {
            continue;
        }
        if !report.is_empty() {
            report.push_str(": ");
        }
        report.push_str(&text);
    }
    report
}

fn run_train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let interactive = !json && std::io::stderr().is_terminal();
    let mut view = ProgressView::new(interactive).pausing_after(args.pause_after_epoch);
    let summary = match &args.resume {
        Some(target) => {
            let store = args.resume_store()?;
            say!("resuming {target}");
            resume(&recorder(&store)?, target, args.epochs, &mut view)
                .with_context(|| format!("could not resume `{target}`"))?
        }
        None => {
            let config = args.resolve()?;
            let recorder = recorder(&config.store)?;
            say!("{}", progress::describe_config(&config));
            train(&config, &recorder, &mut view).context("training failed")?
        }
    };
    view.finish();
    if json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&json_summary(&summary))?))?;
    } else {
        say!("{}", progress::summary_table(&summary));
        if !summary.diagnosis.is_empty() {
            let report = regimen_train::check::CheckReport::new(summary.diagnosis.clone());
            say_raw!(
                "\ndiagnosis (`regimen diagnose {}` shows it again with the evidence):\n{}",
                summary.run_id,
                report.render(colors(&std::io::stderr()))
            );
        }
    }
    Ok(match summary.status {
        regimen_train::RunStatus::Diverged => ExitCode::from(3),
        regimen_train::RunStatus::Interrupted => ExitCode::from(130),
        _ => ExitCode::SUCCESS,
    })
}

/// The `--json` object: the run summary with the dataset reduced to what scripts rely on.
fn json_summary(summary: &RunSummary) -> serde_json::Value {
    let mut value = serde_json::to_value(summary).expect("a run summary is always serializable to JSON");
    let d = &summary.dataset;
    value["dataset"] = serde_json::json!({
        "name": d.name,
        "fingerprint": d.fingerprint,
        "short_id": d.short_id,
        "sizes": { "train": d.sizes[0], "val": d.sizes[1], "test": d.sizes[2] },
        "fractions": d.fractions,
        "split_seed": d.split_seed,
        "test_from_source": d.test_from_source,
    });
    value
}

fn run_eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let checkpoint = match args.checkpoint.as_str() {
        "best" => CheckpointChoice::Best,
        "last" => CheckpointChoice::Last,
        path => CheckpointChoice::File(path.into()),
    };
    let evaluation = evaluate_run(&recorder(&args.store)?, &args.run, &args.split, &checkpoint)
        .with_context(|| format!("could not evaluate run `{}`", args.run))?;
    for warning in &evaluation.skipped {
        say!("warning: {warning}");
    }
    if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&evaluation)?))?;
    } else {
        let mut text = format!(
            "run {} · {} split ({} samples) · checkpoint {}\n",
            evaluation.run_id,
            evaluation.split,
            evaluation.samples,
            evaluation.checkpoint.display()
        );
        for (key, value) in &evaluation.metrics {
            text.push_str(&format!("  {key:<20} {}\n", commands::metric_text(*value)));
        }
        if args.split == "test" {
            text.push_str("(recorded in the run: the test split has now been used)\n");
        }
        emit(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regimen_fs::FileError;

    #[test]
    fn a_cause_already_quoted_by_its_error_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotADirectory, "Not a directory (os error 20)");
        let error = anyhow::Error::new(regimen_train::TrainError::Io(FileError {
            path: "/dev/null/x".into(),
            action: "create the store folder",
            source: io,
        }))
        .context("training failed");
        assert_eq!(
            error_report(&error),
            "training failed: could not create the store folder /dev/null/x: Not a directory (os error 20)"
        );
    }
}
