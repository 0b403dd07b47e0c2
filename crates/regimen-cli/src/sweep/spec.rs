//! The sweep file: `[sweep]` settings, fixed `[train]` settings, and the `[params]` search space.
//!
//! A sweep is recorded in the store with the file's text (and any `--param`), and every worker
//! parses it again from there, so that a worker joining from another shell or machine runs exactly
//! what `regimen sweep run` was given.

use std::path::Path;

use anyhow::{Context, bail};
use clap::CommandFactory;
use regimen_metrics::Mode;
use regimen_sweep::{Params, SamplerKind, Scheduler, SchedulerKind, SearchSpace, Value};
use regimen_train::TrainConfig;
use serde::Deserialize;

use crate::args::Cli;

/// Flags of `regimen train` that a sweep sets itself, or that make no sense per trial.
const NOT_PARAMETERS: &[&str] = &["config", "json", "resume", "pause-after-epoch", "store", "help"];

/// The `[sweep]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// How many trials (parameter sets) to try.
    pub trials: u64,
    /// `random` (the default), `grid`, `sobol` or `tpe`.
    pub sampler: SamplerKind,
    /// `none` (the default), `median`, `asha` or `hyperband`.
    pub scheduler: SchedulerKind,
    /// The metric the sweep optimizes, a key of the metric vocabulary.
    pub objective: String,
    /// `min` or `max`; inferred from the objective's name when absent.
    pub mode: Option<String>,
    /// Seeds the sampler and Hyperband's brackets.
    pub seed: u64,
    /// Epochs before a scheduler may stop a trial.
    pub grace: u64,
    /// The scheduler's reduction factor η.
    pub eta: u64,
    /// Pause trials at rungs and promote the best (true), or stop at once (false). The default is
    /// promotion for ASHA and Hyperband.
    pub promotion: Option<bool>,
    /// Median stopping: the trials that must have reported at an epoch before one is stopped.
    pub min_trials: usize,
    /// How many times a trial whose worker died is retried.
    pub max_retries: u32,
    /// Seconds a script trial gets between SIGTERM and SIGKILL when a scheduler stops it.
    pub kill_grace: f64,
    /// Satisficing constraints on other metrics, `"latency.p95_ms <= 20"`: the best trial is the
    /// best of those that meet them all.
    pub constraints: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            trials: 20,
            sampler: SamplerKind::Random,
            scheduler: SchedulerKind::None,
            objective: "val.loss".into(),
            mode: None,
            seed: 0,
            grace: 1,
            eta: 3,
            promotion: None,
            min_trials: 5,
            max_retries: 2,
            kill_grace: 10.0,
            constraints: Vec::new(),
        }
    }
}

/// A parsed, checked sweep.
#[derive(Debug, Clone)]
pub struct SweepFile {
    /// The `[sweep]` table.
    pub settings: Settings,
    /// The fixed `[train]` settings (keys as in a `regimen train --config` file).
    pub train: toml::Table,
    /// The search space.
    pub space: SearchSpace,
    /// Which way the objective is better.
    pub mode: Mode,
    /// The early-termination scheduler.
    pub scheduler: Scheduler,
    /// The program each trial runs instead of `regimen train`, with `{name}` placeholders; empty
    /// for Regimen's own training.
    pub command: Vec<String>,
    /// The satisficing constraints, from `[sweep]` and `--constraint`.
    pub constraints: Vec<Constraint>,
}

/// A satisficing constraint: a metric's last value compared with a bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// The metric key, e.g. `latency.p95_ms`.
    pub key: String,
    /// `<=`, `<`, `>=` or `>`.
    pub op: String,
    /// The bound.
    pub bound: f64,
}

impl std::str::FromStr for Constraint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("constraint `{text}` is not `METRIC <= NUMBER` (or <, >=, >), e.g. `latency.p95_ms <= 20`");
        let op = ["<=", ">=", "<", ">"].into_iter().find(|op| text.contains(op)).ok_or_else(bad)?;
        let (key, bound) = text.split_once(op).ok_or_else(bad)?;
        let (key, bound) = (key.trim(), bound.trim());
        let bound: f64 = bound.parse().map_err(|_| bad())?;
        if key.is_empty() || !bound.is_finite() {
            return Err(bad());
        }
        Ok(Constraint { key: key.to_string(), op: op.to_string(), bound })
    }
}

impl Constraint {
    /// How far `value` breaks the constraint: 0 when met, infinite when the metric is missing or
    /// NaN (a trial that did not measure it cannot be shown to meet it).
    pub fn violation(&self, value: Option<f64>) -> f64 {
        let Some(value) = value.filter(|v| !v.is_nan()) else { return f64::INFINITY };
        let over = match self.op.as_str() {
            "<=" | "<" => value - self.bound,
            _ => self.bound - value,
        };
        let strict_tie = over == 0.0 && (self.op == "<" || self.op == ">");
        if strict_tie { f64::MIN_POSITIVE } else { over.max(0.0) }
    }
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.key, self.op, self.bound)
    }
}

/// What the store keeps of a sweep: enough to parse it again anywhere.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct Recorded {
    /// The sweep file as written.
    pub file: String,
    /// Where it came from, for messages.
    pub source: String,
    /// `--param` specs laid over the file's `[params]`.
    pub params: Vec<String>,
    /// `[sweep]` settings laid over the file's (a rerun has no scheduler, for one).
    #[serde(default)]
    pub overrides: toml::Table,
    /// The parameters of every trial, decided up front instead of by the sampler (a rerun's
    /// configurations and seeds).
    #[serde(default)]
    pub plan: Vec<serde_json::Value>,
    /// The program each trial runs (after `--` on the command line), instead of `regimen train`.
    #[serde(default)]
    pub command: Vec<String>,
    /// `[train]` settings laid over the file's (the batch size `--batch-size-from-heaviest` chose).
    #[serde(default)]
    pub train_overrides: toml::Table,
    /// What `--batch-size-from-heaviest` measured: the heaviest configuration and the finder's
    /// result.
    #[serde(default)]
    pub batch_size_from_heaviest: Option<serde_json::Value>,
    /// `--constraint` expressions, added to the file's `constraints`.
    #[serde(default)]
    pub constraints: Vec<String>,
    /// The sweep this one zoomed from, whose trials inside this one's space it starts from, and
    /// what the zoom changed (`{"from": id, "changes": [...]}`).
    #[serde(default)]
    pub zoom: Option<serde_json::Value>,
}

impl Recorded {
    /// Parses and checks the sweep.
    pub fn parse(&self) -> anyhow::Result<SweepFile> {
        let text = if self.train_overrides.is_empty() {
            self.file.clone()
        } else {
            let mut file: toml::Table =
                self.file.parse().with_context(|| format!("{} is not valid TOML", self.source))?;
            let entry = file.entry("train").or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(train) = entry {
                train.extend(self.train_overrides.clone());
            }
            file.to_string()
        };
        SweepFile::parse(&text, &self.source, &self.params, &self.overrides, &self.command)
            .and_then(|sweep| sweep.constrained(&self.constraints, &self.source))
    }
}

impl SweepFile {
    /// Parses `text` (from `source`, for messages) with `inline` parameters laid over its `[params]`
    /// and `overrides` over its `[sweep]` table.
    pub fn parse(
        text: &str,
        source: &str,
        inline: &[String],
        overrides: &toml::Table,
        command: &[String],
    ) -> anyhow::Result<SweepFile> {
        let mut table: toml::Table = text.parse().with_context(|| format!("{source} is not valid TOML"))?;
        if !overrides.is_empty() {
            let entry = table.entry("sweep").or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(settings) = entry {
                settings.extend(overrides.clone());
            }
        }
        for key in table.keys() {
            if !["sweep", "train", "params"].contains(&key.as_str()) {
                bail!("{source}: unknown table `[{key}]`; a sweep file has [sweep], [train] and [params]");
            }
        }
        let settings: Settings = match table.remove("sweep") {
            Some(value) => value.try_into().map_err(|e: toml::de::Error| {
                anyhow::anyhow!("{source}: invalid [sweep] table: {}", e.message().trim_end())
            })?,
            None => Settings::default(),
        };
        let train = match table.remove("train") {
            Some(toml::Value::Table(train)) => train,
            Some(_) => bail!("{source}: `train` must be a table of `regimen train` settings"),
            None => toml::Table::new(),
        };
        let params = match table.remove("params") {
            Some(toml::Value::Table(params)) => params,
            Some(_) => bail!("{source}: `params` must be a table of parameters"),
            None => toml::Table::new(),
        };
        let mut space = SearchSpace::from_toml(&params).with_context(|| format!("{source}: invalid [params]"))?;
        for spec in inline {
            space.add_inline(spec)?;
        }
        if space.params().is_empty() {
            bail!("{source}: nothing to search: add parameters under [params] or with --param NAME=SPEC");
        }
        let mode = match &settings.mode {
            Some(text) => text.parse::<Mode>().map_err(|e| anyhow::anyhow!("{source}: [sweep] mode: {e}"))?,
            None => Mode::of_key(&settings.objective).ok_or_else(|| {
                anyhow::anyhow!(
                    "{source}: cannot tell whether a larger `{}` is better; set `mode = \"min\"` or \"max\" in [sweep]",
                    settings.objective
                )
            })?,
        };
        if settings.trials == 0 {
            bail!("{source}: [sweep] trials must be at least 1");
        }
        let base = base_config(&train).with_context(|| format!("{source}: invalid [train] table"))?;
        if !command.is_empty() && settings.promotion == Some(true) {
            bail!(
                "{source}: a trial that runs a script cannot pause and resume (it keeps no Regimen checkpoint); \
                 drop `promotion = true` to stop trials at once instead"
            );
        }
        let scheduler = Scheduler {
            kind: settings.scheduler,
            grace: settings.grace,
            max: base.epochs,
            eta: settings.eta,
            promotion: settings.promotion.unwrap_or(
                command.is_empty() && matches!(settings.scheduler, SchedulerKind::Asha | SchedulerKind::Hyperband),
            ),
            min_trials: settings.min_trials,
            seed: settings.seed,
        };
        scheduler.validate().map_err(|e| anyhow::anyhow!("{source}: [sweep] {e}"))?;
        let file =
            SweepFile { settings, train, space, mode, scheduler, command: command.to_vec(), constraints: Vec::new() };
        file.check_parameters(source)?;
        Ok(file)
    }

    /// Every parameter is a `regimen train` flag, and the epochs are the scheduler's budget.
    fn check_parameters(&self, source: &str) -> anyhow::Result<()> {
        if !self.command.is_empty() {
            return self.check_placeholders(source);
        }
        for param in self.space.params() {
            let flag = param.name.replace('_', "-");
            let negated_switch = train_flag(&format!("no-{flag}")) == Some(false);
            if NOT_PARAMETERS.contains(&flag.as_str()) || (train_flag(&flag).is_none() && !negated_switch) {
                bail!(
                    "{source}: parameter `{}` is not a `regimen train` setting (`regimen train --help` lists them; \
                     write them with underscores, e.g. weight_decay)",
                    param.name
                );
            }
            if flag == "epochs" && self.scheduler.kind != SchedulerKind::None {
                bail!("{source}: `epochs` is each trial's budget under a scheduler; set it in [train], not [params]");
            }
        }
        Ok(())
    }

    /// Adds `--constraint` expressions to the file's constraints, checked.
    fn constrained(mut self, extra: &[String], source: &str) -> anyhow::Result<SweepFile> {
        for text in self.settings.constraints.iter().chain(extra) {
            let constraint = text.parse::<Constraint>().map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
            self.constraints.push(constraint);
        }
        Ok(self)
    }

    /// The total violation of the constraints by a run's metrics (last values); `None` without
    /// constraints.
    pub fn violation(&self, last: impl Fn(&str) -> Option<f64>) -> Option<f64> {
        (!self.constraints.is_empty()).then(|| self.constraints.iter().map(|c| c.violation(last(&c.key))).sum())
    }

    /// Every `{name}` in the script's command is a parameter or one of [`PLACEHOLDERS`]; the
    /// `[train]` table of a script sweep holds only the budget, `epochs`.
    fn check_placeholders(&self, source: &str) -> anyhow::Result<()> {
        if let Some(key) = self.train.keys().find(|k| *k != "epochs") {
            bail!(
                "{source}: [train] `{key}` is a `regimen train` setting, but the trials run `{}`; only `epochs` (the budget a scheduler counts in) applies",
                self.command[0]
            );
        }
        for arg in &self.command {
            for name in placeholders(arg) {
                if self.space.get(name).is_none() && !PLACEHOLDERS.contains(&name) {
                    bail!(
                        "{source}: the command's `{{{name}}}` is neither a parameter nor one of {}",
                        PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                    );
                }
            }
        }
        Ok(())
    }

    /// The script's command line for a trial: each `{name}` replaced by the parameter's value (a
    /// parameter inactive in this trial by nothing), or by the trial's number, run id or folder.
    pub fn command_for(&self, params: &Params, builtins: &[(&str, String)]) -> Vec<String> {
        self.command
            .iter()
            .map(|arg| {
                let mut out = arg.clone();
                for name in placeholders(arg) {
                    let value = match params.get(name) {
                        Some(value) => value.to_string(),
                        None => builtins.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()).unwrap_or_default(),
                    };
                    out = out.replace(&format!("{{{name}}}"), &value);
                }
                out
            })
            .collect()
    }

    /// The `regimen train` arguments that set `params` (the fixed settings come from a config file).
    /// A boolean is a switch: `batch_norm = true` is `--batch-norm`, `normalize = false` is
    /// `--no-normalize`, and the other value leaves the setting as `[train]` has it.
    pub fn flags(params: &Params) -> Vec<String> {
        let mut args = Vec::new();
        for (name, value) in params {
            let flag = name.replace('_', "-");
            match value {
                Value::Bool(on) => match (train_flag(&flag), *on) {
                    (Some(true), _) => args.extend([format!("--{flag}"), on.to_string()]),
                    (Some(false), true) => args.push(format!("--{flag}")),
                    (None, false) => args.push(format!("--no-{flag}")),
                    (Some(false), false) | (None, true) => {}
                },
                other => args.extend([format!("--{flag}"), other.to_string()]),
            }
        }
        args
    }

    /// The objective as samplers and schedulers see it: lower is better.
    pub fn minimized(&self, value: f64) -> f64 {
        match self.mode {
            Mode::Min => value,
            Mode::Max => -value,
        }
    }
}

/// The placeholders besides the parameters that a script's command may use.
pub const PLACEHOLDERS: [&str; 3] = ["trial", "run_id", "run_dir"];

/// The `{name}` placeholders in `arg` (names of letters, digits and `_`).
fn placeholders(arg: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if after[..close].chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && close > 0 => {
                names.push(&after[..close]);
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    names
}

/// Whether `regimen train` has flag `--{long}`, and if so whether it takes a value.
fn train_flag(long: &str) -> Option<bool> {
    let command = Cli::command();
    let train = command.find_subcommand("train")?;
    train.get_arguments().find(|arg| arg.get_long() == Some(long)).map(|arg| arg.get_action().takes_values())
}

/// The config the `[train]` table gives before any parameter, checked.
pub fn base_config(train: &toml::Table) -> anyhow::Result<TrainConfig> {
    let config: TrainConfig = toml::Value::Table(train.clone())
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("{}", e.message().trim_end()))?;
    config.validate()?;
    Ok(config)
}

/// Reads a sweep file and records it with its `--param` specs, checked.
pub fn read(path: &Path, inline: &[String], command: &[String], constraints: &[String]) -> anyhow::Result<Recorded> {
    let file =
        std::fs::read_to_string(path).with_context(|| format!("could not read the sweep file {}", path.display()))?;
    let recorded = Recorded {
        file,
        source: path.display().to_string(),
        params: inline.to_vec(),
        overrides: toml::Table::new(),
        plan: Vec::new(),
        command: command.to_vec(),
        constraints: constraints.to_vec(),
        train_overrides: toml::Table::new(),
        batch_size_from_heaviest: None,
        zoom: None,
    };
    recorded.parse()?;
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = r#"
[sweep]
trials = 24
sampler = "tpe"
scheduler = "asha"
objective = "val.macro_f1"
seed = 0

[train]
dataset = "shapes"
epochs = 8

[params]
lr = "loguniform(1e-4, 1e-1)"
weight_decay = "loguniform(1e-6, 1e-2)"
dropout = "uniform(0.0, 0.5)"
channels = ["16,32", "32,64"]
"#;

    #[test]
    fn the_readme_example_file_parses_as_the_issue_example() {
        let file = include_str!("../../../../examples/sweep.toml");
        let example = SweepFile::parse(file, "examples/sweep.toml", &[], &toml::Table::new(), &[]).unwrap();
        let issue = SweepFile::parse(ISSUE_EXAMPLE, "sweep.toml", &[], &toml::Table::new(), &[]).unwrap();
        assert_eq!(example.space.params().len(), issue.space.params().len());
        assert_eq!((example.settings.trials, example.scheduler.rungs(0)), (24, vec![1, 3, 8]));
    }

    #[test]
    fn the_issue_example_parses_with_its_direction_and_scheduler() {
        let sweep = SweepFile::parse(ISSUE_EXAMPLE, "sweep.toml", &[], &toml::Table::new(), &[]).unwrap();
        assert_eq!(sweep.settings.trials, 24);
        assert_eq!(sweep.mode, Mode::Max);
        assert_eq!(sweep.scheduler.rungs(0), [1, 3, 8]);
        assert!(sweep.scheduler.promotion);
        assert_eq!(sweep.space.params().len(), 4);
    }

    #[test]
    fn parameters_become_train_flags() {
        let mut params = Params::new();
        params.insert("weight_decay".into(), Value::Float(1e-5));
        params.insert("channels".into(), Value::Str("16,32".into()));
        params.insert("batch_norm".into(), Value::Bool(true));
        params.insert("normalize".into(), Value::Bool(false));
        assert_eq!(
            SweepFile::flags(&params),
            ["--batch-norm", "--channels", "16,32", "--no-normalize", "--weight-decay", "1e-5"]
        );
    }

    #[test]
    fn a_script_sweep_substitutes_parameters_and_checks_its_placeholders() {
        let text = "[train]\nepochs = 5\n[params]\nlr = \"loguniform(1e-4, 1e-1)\"\nopt = [\"adam\", \"sgd\"]";
        let command: Vec<String> =
            ["python", "train.py", "--lr={lr}", "--opt", "{opt}", "--out", "{run_dir}/m.pt"].map(String::from).to_vec();
        let sweep = SweepFile::parse(text, "s.toml", &[], &toml::Table::new(), &command).unwrap();
        assert!(!sweep.scheduler.promotion);
        let mut params = Params::new();
        params.insert("lr".into(), Value::Float(0.01));
        params.insert("opt".into(), Value::Str("sgd".into()));
        let line = sweep.command_for(&params, &[("run_dir", "/r".into())]);
        assert_eq!(line, ["python", "train.py", "--lr=0.01", "--opt", "sgd", "--out", "/r/m.pt"]);
        let mut bad = command.clone();
        bad.push("{learning_rate}".into());
        let error = SweepFile::parse(text, "s.toml", &[], &toml::Table::new(), &bad).unwrap_err();
        assert!(format!("{error:#}").contains("{learning_rate}"), "{error:#}");
        let train = "[train]\nepochs = 5\ndataset = \"shapes\"\n[params]\nlr = [1]";
        let error = SweepFile::parse(train, "s.toml", &[], &toml::Table::new(), &command).unwrap_err();
        assert!(format!("{error:#}").contains("dataset"), "{error:#}");
        let promote = "[sweep]\nscheduler = \"asha\"\npromotion = true\n[params]\nlr = [1]";
        let error = SweepFile::parse(promote, "s.toml", &[], &toml::Table::new(), &command).unwrap_err();
        assert!(format!("{error:#}").contains("promotion"), "{error:#}");
    }

    #[test]
    fn constraints_parse_and_measure_their_violation() {
        let c: Constraint = "latency.p95_ms <= 20".parse().unwrap();
        assert_eq!((c.key.as_str(), c.op.as_str(), c.bound), ("latency.p95_ms", "<=", 20.0));
        assert_eq!(c.violation(Some(15.0)), 0.0);
        assert_eq!(c.violation(Some(20.0)), 0.0);
        assert_eq!(c.violation(Some(23.0)), 3.0);
        assert_eq!(c.violation(None), f64::INFINITY);
        let strict: Constraint = "val.acc>0.9".parse().unwrap();
        assert_eq!(strict.violation(Some(0.8)), 0.09999999999999998);
        assert!(strict.violation(Some(0.9)) > 0.0, "a tie breaks a strict bound");
        assert!("latency.p95_ms ~ 20".parse::<Constraint>().unwrap_err().contains("latency.p95_ms ~ 20"));
        assert!("<= 20".parse::<Constraint>().is_err());
        let text = "[sweep]\nconstraints = [\"latency.p95_ms <= 20\"]\n[params]\nlr = [0.1]";
        let sweep = SweepFile::parse(text, "s.toml", &[], &toml::Table::new(), &[])
            .unwrap()
            .constrained(&["val.loss < 1".into()], "s.toml")
            .unwrap();
        assert_eq!(sweep.constraints.len(), 2);
        let metrics = |key: &str| match key {
            "latency.p95_ms" => Some(25.0),
            "val.loss" => Some(0.5),
            _ => None,
        };
        assert_eq!(sweep.violation(metrics), Some(5.0));
    }

    #[test]
    fn mistakes_are_named() {
        let error =
            |text: &str| format!("{:#}", SweepFile::parse(text, "s.toml", &[], &toml::Table::new(), &[]).unwrap_err());
        assert!(error("[params]\nlearning_rate = \"uniform(0, 1)\"").contains("learning_rate"));
        assert!(error("[params]\nlr = \"loguniform(0, 1)\"").contains("lr"));
        assert!(error("[sweep]\ntrails = 3\n[params]\nlr = [1]").contains("trails"));
        assert!(error("[train]\nepoch = 3\n[params]\nlr = [1]").contains("epoch"));
        assert!(error("[sweep]\nobjective = \"val.thing\"\n[params]\nlr = [1]").contains("mode"));
        assert!(error("[sweep]\nscheduler = \"asha\"\n[params]\nepochs = [1, 2]").contains("budget"));
        assert!(error("[params]\nstore = [\"a\"]").contains("store"));
        assert!(error("[sweep]\n").contains("nothing to search"));
        assert!(error("[sweep]\ntrials = 3\n[search]\n").contains("[search]"));
    }
}
