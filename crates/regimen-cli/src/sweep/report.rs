//! What `regimen sweep run|status|ls|report` print: trials by state, the best trial, parameter
//! importance, and the compute that early termination saved.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use regimen_plot::{Curve, PlotOptions};
use regimen_store::{RunStore, SweepRow, TrialRecord, TrialState};
use regimen_sweep::{Domain, Outcome, Trial, Value};
use serde_json::json;

use super::spec::{Recorded, SweepFile};
use super::{LsArgs, ReportArgs, StatusArgs, store_root};
use crate::commands::{emit, metric_text, text_table};

/// `running 2 · complete 5 · pruned 3`.
pub fn counts_text(counts: &BTreeMap<TrialState, u64>) -> String {
    if counts.is_empty() {
        return "no trials yet".into();
    }
    counts.iter().map(|(state, n)| format!("{state} {n}")).collect::<Vec<_>>().join(" · ")
}

fn counts_json(counts: &BTreeMap<TrialState, u64>) -> serde_json::Value {
    counts.iter().map(|(state, n)| (state.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>().into()
}

/// A sweep read back from the store: its row, its parsed definition and every trial.
pub struct Loaded {
    /// The sweep as listed.
    pub row: SweepRow,
    /// Its definition.
    pub sweep: SweepFile,
    /// Every trial, by number.
    pub trials: Vec<TrialRecord>,
    /// What the store keeps of its definition (its lineage among it).
    pub recorded: Recorded,
}

impl Loaded {
    /// Reads sweep `id` (id, prefix or name) and all its trials.
    pub fn load(store: &dyn RunStore, id: &str) -> anyhow::Result<Loaded> {
        let row = store.get_sweep(id)?;
        let recorded: Recorded = serde_json::from_value(row.spec.clone())
            .with_context(|| format!("sweep {} has a definition this Regimen cannot read", row.sweep_id))?;
        let sweep = recorded.parse()?;
        let (trials, _) = store.trials_since(&row.sweep_id, 0)?;
        Ok(Loaded { row, sweep, trials, recorded })
    }

    /// Completed trials with a value that meet the constraints, best first (ties: the earlier
    /// trial).
    pub fn ranked(&self) -> Vec<&TrialRecord> {
        let feasible = |t: &TrialRecord| t.violation.is_none_or(|v| v <= 0.0);
        let mut done: Vec<&TrialRecord> = self
            .trials
            .iter()
            .filter(|t| t.state == TrialState::Complete && t.value.is_some() && feasible(t))
            .collect();
        done.sort_by(|a, b| {
            let key = |t: &TrialRecord| self.sweep.minimized(t.value.unwrap_or(f64::NAN));
            key(a).total_cmp(&key(b)).then(a.number.cmp(&b.number))
        });
        done
    }

    fn trial_json(&self, t: &TrialRecord) -> serde_json::Value {
        json!({
            "number": t.number,
            "run_id": t.run_id,
            "state": t.state,
            "params": t.params,
            "value": t.value,
            "epochs": t.resource,
            "rungs": t.rungs,
            "attempts": t.attempts,
            "violation": t.violation,
            "feasible": t.violation.is_none_or(|v| v <= 0.0),
            "worker": t.worker,
            "message": t.message,
        })
    }

    fn best_json(&self) -> serde_json::Value {
        self.ranked().first().map_or(
            serde_json::Value::Null,
            |t| json!({ "number": t.number, "run_id": t.run_id, "params": t.params, "value": t.value }),
        )
    }

    /// Epochs trained, against every trial trained to the full budget.
    fn budget(&self) -> serde_json::Value {
        let spent: u64 = self.trials.iter().map(|t| t.resource).sum();
        let full = self.trials.len() as u64 * self.sweep.scheduler.max;
        let saved = if full == 0 { 0.0 } else { 1.0 - spent as f64 / full as f64 };
        json!({ "epochs_trained": spent, "epochs_without_early_stopping": full, "saved_fraction": saved })
    }

    fn summary_json(&self) -> serde_json::Value {
        json!({
            "sweep_id": self.row.sweep_id,
            "name": self.row.name,
            "status": self.row.status,
            "objective": self.sweep.settings.objective,
            "mode": self.sweep.mode.to_string(),
            "trials": counts_json(&self.row.counts),
            "best": self.best_json(),
            "budget": self.budget(),
            "constraints": self.sweep.constraints.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "infeasible": self.trials.iter().filter(|t| t.violation.is_some_and(|v| v > 0.0)).count(),
            "parent": self.row.parent,
            "zoom": self.recorded.zoom,
            "batch_size_from_heaviest": self.recorded.batch_size_from_heaviest,
        })
    }

    /// Where the sweep came from, when it is a zoom or a rerun of another.
    fn lineage_text(&self) -> String {
        let Some(parent) = &self.row.parent else { return String::new() };
        let Some(zoom) = &self.recorded.zoom else { return format!("from sweep {parent}\n") };
        let mut text = format!("zoomed from sweep {parent} around its best {}:\n", zoom["top_k"]);
        for change in zoom["changes"].as_array().into_iter().flatten() {
            let note = change["note"].as_str().map(|n| format!(" ({n})")).unwrap_or_default();
            text.push_str(&format!(
                "  {:<16} {} → {}{note}\n",
                change["name"].as_str().unwrap_or("?"),
                change["before"].as_str().unwrap_or("?"),
                change["after"].as_str().unwrap_or("?")
            ));
        }
        text
    }

    fn best_text(&self) -> String {
        let meeting = if self.sweep.constraints.is_empty() {
            String::new()
        } else {
            let constraints: Vec<String> = self.sweep.constraints.iter().map(ToString::to_string).collect();
            format!(" meeting {}", constraints.join(" and "))
        };
        match self.ranked().first() {
            Some(t) => format!(
                "best{meeting}: trial {} · {} {} · run {} · {}",
                t.number,
                self.sweep.settings.objective,
                metric_text(t.value.unwrap_or(f64::NAN)),
                t.run_id.as_deref().unwrap_or("?"),
                params_text(&t.params)
            ),
            None if self.trials.iter().any(|t| t.violation.is_some_and(|v| v > 0.0)) => {
                let constraints: Vec<String> = self.sweep.constraints.iter().map(ToString::to_string).collect();
                format!("best: no completed trial meets {}", constraints.join(" and "))
            }
            None => "best: no trial has completed yet".into(),
        }
    }

    fn budget_text(&self) -> String {
        let budget = self.budget();
        format!(
            "compute: {} epochs trained of {} without early stopping ({:.0}% saved)",
            budget["epochs_trained"],
            budget["epochs_without_early_stopping"],
            budget["saved_fraction"].as_f64().unwrap_or(0.0) * 100.0
        )
    }

    fn trials_table(&self, trials: &[&TrialRecord]) -> String {
        let header: Vec<String> =
            ["trial", "state", "epochs", &self.sweep.settings.objective, "run", "params"].map(String::from).to_vec();
        let rows: Vec<Vec<String>> = trials
            .iter()
            .map(|t| {
                vec![
                    t.number.to_string(),
                    t.state.to_string(),
                    t.resource.to_string(),
                    t.value.map_or("-".into(), metric_text),
                    t.run_id.clone().unwrap_or_else(|| "-".into()),
                    params_text(&t.params),
                ]
            })
            .collect();
        text_table(&header, &rows, &[true, false, true, true, false, false])
    }
}

fn params_text(params: &serde_json::Value) -> String {
    match params.as_object() {
        Some(map) => map
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        None => params.to_string(),
    }
}

/// What `regimen sweep run` prints when its workers are done.
pub fn outcome(store: &dyn RunStore, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let loaded = Loaded::load(store, id)?;
    let sensitive: Vec<String> =
        importance(&loaded).into_iter().filter(|m| m.explained >= SENSITIVE).map(|m| m.name).collect();
    if json {
        let mut value = loaded.summary_json();
        value["sensitive"] = json!(sensitive);
        emit(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
    } else {
        say!("sweep {} {} · {}", loaded.row.sweep_id, loaded.row.status.as_str(), counts_text(&loaded.row.counts));
        say!("{}", loaded.best_text());
        say!("{}", loaded.budget_text());
        for name in &sensitive {
            say!("note: the objective changes sharply along `{name}`: it is a sensitive parameter; tune it first");
        }
        say!("`regimen sweep report {}` shows every trial and which parameters matter", loaded.row.sweep_id);
    }
    Ok(ExitCode::SUCCESS)
}

/// `regimen sweep status`.
pub fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let store = crate::commands::open(&store_root(&args.store.store)?)?;
    let row = store.get_sweep(&args.sweep)?;
    store.expire_leases(&row.sweep_id, u32::MAX)?;
    let loaded = Loaded::load(store.as_ref(), &row.sweep_id)?;
    let running: Vec<&TrialRecord> = loaded.trials.iter().filter(|t| t.state == TrialState::Running).collect();
    if args.json {
        let mut value = loaded.summary_json();
        value["running"] = running
            .iter()
            .map(|t| json!({"number": t.number, "worker": t.worker, "target": t.target, "run_id": t.run_id}))
            .collect();
        emit(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = format!(
        "sweep {} ({}) · {} · {}\n{}\n{}\n",
        loaded.row.sweep_id,
        loaded.row.name,
        loaded.row.status.as_str(),
        counts_text(&loaded.row.counts),
        loaded.best_text(),
        loaded.budget_text()
    );
    for t in running {
        text.push_str(&format!(
            "running: trial {} → epoch {} on {}\n",
            t.number,
            t.target,
            t.worker.as_deref().unwrap_or("?")
        ));
    }
    emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `regimen sweep ls`.
pub fn list(args: &LsArgs) -> anyhow::Result<ExitCode> {
    let Some(store) = regimen_store::open_existing(&store_root(&args.store.store)?)? else {
        emit(if args.json { "[]\n" } else { "no sweeps\n" })?;
        return Ok(ExitCode::SUCCESS);
    };
    let sweeps = store.list_sweeps()?;
    if args.json {
        let rows: Vec<serde_json::Value> = sweeps
            .iter()
            .map(|s| {
                json!({"sweep_id": s.sweep_id, "name": s.name, "status": s.status, "parent": s.parent,
                       "created_at": s.created_at, "trials": counts_json(&s.counts)})
            })
            .collect();
        emit(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    if sweeps.is_empty() {
        emit("no sweeps\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    let header: Vec<String> = ["sweep", "status", "created", "from", "trials"].map(String::from).to_vec();
    let rows: Vec<Vec<String>> = sweeps
        .iter()
        .map(|s| {
            vec![
                s.sweep_id.clone(),
                s.status.as_str().into(),
                crate::commands::short_time(s.created_at),
                s.parent.clone().unwrap_or_else(|| "-".into()),
                counts_text(&s.counts),
            ]
        })
        .collect();
    emit(&text_table(&header, &rows, &[false; 5]))?;
    Ok(ExitCode::SUCCESS)
}

/// Sweep `id`'s report as `regimen sweep report --json` prints it (without plots): what the
/// dashboard's sweep page shows.
pub fn json(store: &dyn RunStore, id: &str) -> anyhow::Result<serde_json::Value> {
    let loaded = Loaded::load(store, id)?;
    Ok(report_json(&loaded, &importance(&loaded)))
}

/// The summary, every trial, the top five, each parameter's importance and the space searched.
fn report_json(loaded: &Loaded, importance: &[Mattering]) -> serde_json::Value {
    let sensitive: Vec<&str> =
        importance.iter().filter(|m| m.explained >= SENSITIVE).map(|m| m.name.as_str()).collect();
    let mut value = loaded.summary_json();
    value["trials_by_state"] = value["trials"].take();
    value["trials"] = loaded.trials.iter().map(|t| loaded.trial_json(t)).collect();
    value["top"] = loaded.ranked().iter().take(5).map(|t| loaded.trial_json(t)).collect();
    let by_name = |f: fn(&Mattering) -> f64| -> serde_json::Value {
        importance.iter().map(|m| (m.name.clone(), json!(f(m)))).collect::<serde_json::Map<_, _>>().into()
    };
    value["importance"] = by_name(|m| m.importance);
    value["variance_explained"] = by_name(|m| m.explained);
    value["sensitive"] = json!(sensitive);
    value["space"] = loaded
        .sweep
        .space
        .params()
        .iter()
        .map(|param| {
            let scale = match &param.domain {
                Domain::Float { low, high, log } => json!({ "kind": "float", "low": low, "high": high, "log": log }),
                Domain::Int { low, high, log, .. } => json!({ "kind": "int", "low": low, "high": high, "log": log }),
                Domain::Categorical(choices) => {
                    json!({ "kind": "categorical", "choices": choices.iter().map(ToString::to_string).collect::<Vec<_>>() })
                }
                Domain::Fixed(value) => json!({ "kind": "fixed", "value": value.to_string() }),
            };
            (param.name.clone(), scale)
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    value
}

/// `regimen sweep report`.
pub fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let store = crate::commands::open(&store_root(&args.store.store)?)?;
    let loaded = Loaded::load(store.as_ref(), &args.sweep)?;
    let importance = importance(&loaded);
    let pictures = match &args.plots {
        Some(dir) => plots(&loaded, dir)?,
        None => Vec::new(),
    };
    if args.json {
        let mut value = report_json(&loaded, &importance);
        value["plots"] = json!(pictures);
        emit(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = format!(
        "sweep {} ({}) · {} · objective {} ({}) · {}\n{}\n{}\n\n",
        loaded.row.sweep_id,
        loaded.row.name,
        loaded.row.status.as_str(),
        loaded.sweep.settings.objective,
        loaded.sweep.mode,
        counts_text(&loaded.row.counts),
        loaded.best_text(),
        loaded.budget_text()
    );
    text.push_str(&loaded.lineage_text());
    let ranked = loaded.ranked();
    text.push_str("top trials:\n");
    text.push_str(&loaded.trials_table(&ranked.iter().take(5).copied().collect::<Vec<_>>()));
    text.push_str(
        "\nwhich parameters matter (importance: PED-ANOVA, how differently the best 10% of trials lie along it; \
         variance: the share of the objective's variance it explains alone):\n",
    );
    for m in &importance {
        let note =
            if m.explained >= SENSITIVE { "  ← sensitive: the objective changes sharply along it" } else { "" };
        text.push_str(&format!(
            "  {:<16} importance {:.2} · variance {:.2}{note}\n",
            m.name, m.importance, m.explained
        ));
    }
    text.push_str("\nevery trial:\n");
    text.push_str(&loaded.trials_table(&loaded.trials.iter().collect::<Vec<_>>()));
    if !pictures.is_empty() {
        text.push_str(&format!("\nplots: {}\n", pictures.join(", ")));
    }
    emit(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// What `regimen sweep rerun` prints: each configuration's original value beside the mean ± std
/// over its new seeds.
pub fn rerun(store: &dyn RunStore, parent: &Loaded, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let child = Loaded::load(store, id)?;
    let without_seed = |params: &serde_json::Value| {
        let mut params = params.clone();
        if let Some(map) = params.as_object_mut() {
            map.remove("seed");
        }
        params
    };
    let mut configs = Vec::new();
    for original in parent.ranked() {
        let key = without_seed(&original.params);
        let reruns: Vec<&TrialRecord> = child.trials.iter().filter(|t| without_seed(&t.params) == key).collect();
        if reruns.is_empty() {
            continue;
        }
        let values: Vec<f64> = reruns.iter().filter_map(|t| t.value).filter(|v| v.is_finite()).collect();
        let moments = regimen_metrics::Moments::of(values.iter().copied());
        let (mean, std) = (moments.mean(), moments.std());
        // Seed luck: the original beats the new seeds' mean by more than two of their deviations.
        let lucky = match (original.value, mean, std) {
            (Some(v), Some(m), Some(s)) if values.len() >= 2 => {
                parent.sweep.minimized(v) < parent.sweep.minimized(m) - 2.0 * s
            }
            _ => false,
        };
        configs.push(json!({
            "trial": original.number,
            "run_id": original.run_id,
            "params": key,
            "original": original.value,
            "seeds": reruns.iter().map(|t| t.params.get("seed").cloned()).collect::<Vec<_>>(),
            "runs": reruns.iter().map(|t| t.run_id.clone()).collect::<Vec<_>>(),
            "values": values,
            "mean": mean,
            "std": std,
            "seed_luck": lucky,
        }));
    }
    if json {
        let value = json!({ "sweep_id": child.row.sweep_id, "parent": parent.row.sweep_id, "status": child.row.status, "configs": configs });
        emit(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let objective = &parent.sweep.settings.objective;
    let header: Vec<String> =
        ["trial", &format!("{objective} (sweep)"), "mean ± std (new seeds)", "seeds", "note", "params"]
            .map(String::from)
            .to_vec();
    let rows: Vec<Vec<String>> = configs
        .iter()
        .map(|c| {
            let number = |key: &str| c[key].as_f64().map_or("-".to_string(), metric_text);
            vec![
                c["trial"].to_string(),
                number("original"),
                format!("{} ± {}", number("mean"), number("std")),
                c["values"].as_array().map_or(0, Vec::len).to_string(),
                if c["seed_luck"] == true { "seed luck?".into() } else { String::new() },
                params_text(&c["params"]),
            ]
        })
        .collect();
    emit(&format!(
        "rerun {} of sweep {}:\n{}",
        child.row.sweep_id,
        parent.row.sweep_id,
        text_table(&header, &rows, &[true, true, true, true, false, false])
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Draws the objective against each searched parameter, on the parameter's own scale (log
/// parameters on a log axis, choices by their index), complete trials apart from those stopped
/// early (at the last rung they reached), and the best so far against the trial number; PNG and
/// SVG of each. Returns the files written.
fn plots(loaded: &Loaded, dir: &Path) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let objective = &loaded.sweep.settings.objective;
    let mut written = Vec::new();
    let mut draw = |name: &str, curves: &[Curve], options: &PlotOptions| -> anyhow::Result<()> {
        for extension in ["png", "svg"] {
            let path = dir.join(format!("{name}.{extension}"));
            regimen_plot::plot(curves, options, &path)?;
            written.push(path.display().to_string());
        }
        Ok(())
    };
    for param in loaded.sweep.space.params() {
        let (log, choices) = match &param.domain {
            Domain::Fixed(_) => continue,
            Domain::Float { log, .. } | Domain::Int { log, .. } => (*log, None),
            Domain::Categorical(choices) => (false, Some(choices)),
        };
        let x_of = |t: &TrialRecord| -> Option<f64> {
            let value: Value = serde_json::from_value(t.params.get(&param.name)?.clone()).ok()?;
            match (&value, choices) {
                (_, Some(choices)) => choices.iter().position(|c| *c == value).map(|i| i as f64),
                (Value::Int(i), None) => Some(*i as f64),
                (Value::Float(f), None) => Some(*f),
                _ => None,
            }
        };
        let series = |label: &str, keep: &dyn Fn(&TrialRecord) -> bool| Curve {
            run_label: label.to_string(),
            key: objective.clone(),
            points: loaded.trials.iter().filter(|t| keep(t)).filter_map(|t| Some((x_of(t)?, t.value?))).collect(),
        };
        let curves = [
            series("complete", &|t| t.state == TrialState::Complete),
            series("stopped early (value at its last rung)", &|t| t.state == TrialState::Pruned),
        ];
        let title = match choices {
            Some(choices) => {
                let named: Vec<String> = choices.iter().enumerate().map(|(i, c)| format!("{i} = {c}")).collect();
                format!("{objective} against {} ({})", param.name, named.join(", "))
            }
            None => format!("{objective} against {}", param.name),
        };
        let options = PlotOptions {
            x_label: param.name.clone(),
            title: Some(title),
            log_x: log,
            points_only: true,
            ..PlotOptions::default()
        };
        draw(&param.name, &curves, &options)?;
    }
    let mut best: Option<f64> = None;
    let mut points = Vec::new();
    for t in &loaded.trials {
        if t.state == TrialState::Complete
            && t.violation.is_none_or(|v| v <= 0.0)
            && let Some(value) = t.value
            && best.is_none_or(|b| loaded.sweep.mode.is_better(value, b))
        {
            best = Some(value);
        }
        if let Some(b) = best {
            points.push((t.number as f64, b));
        }
    }
    let curve = Curve { run_label: loaded.row.sweep_id.clone(), key: objective.clone(), points };
    let options = PlotOptions {
        x_label: "trial".into(),
        title: Some(format!("best {objective} so far")),
        ..PlotOptions::default()
    };
    draw("best_so_far", &[curve], &options)?;
    Ok(written)
}

/// A parameter explaining at least this share of the objective's variance is flagged sensitive.
const SENSITIVE: f64 = 0.5;

/// What the report says about each searched parameter, most important first.
struct Mattering {
    name: String,
    /// PED-ANOVA's share: how differently the best trials lie along it than all trials.
    importance: f64,
    /// ε²: the share of the objective's variance it explains on its own.
    explained: f64,
}

/// Each searched parameter's importance (PED-ANOVA, the best 10% against all) and the share of
/// the objective's variance it explains (ε²: the between-group sum of squares over the total, less
/// what chance explains with that many groups, trials grouped by choice or into quantile bins).
/// Both are computed at the first rung, where every trial reports, so that trials stopped early
/// count as much as the ones that ran to the end.
fn importance(loaded: &Loaded) -> Vec<Mattering> {
    let first_rung = loaded.sweep.scheduler.rungs(0)[0];
    let observed: Vec<(&TrialRecord, f64)> = loaded
        .trials
        .iter()
        .filter_map(|t| {
            let at_rung = t.rungs.iter().find(|&&(at, _)| at == first_rung).map(|&(_, v)| v);
            let value = at_rung.or(if t.state == TrialState::Complete { t.value } else { None })?;
            value.is_finite().then_some((t, loaded.sweep.minimized(value)))
        })
        .collect();
    let history: Vec<Trial> = observed
        .iter()
        .filter_map(|(t, y)| {
            let params = serde_json::from_value(t.params.clone()).ok()?;
            Some(Trial { number: t.number, params, outcome: Outcome::Complete(*y) })
        })
        .collect();
    let shares = regimen_sweep::ped_anova(&loaded.sweep.space, &history, 0.1);
    shares
        .into_iter()
        .map(|(name, importance)| {
            let log =
                loaded.sweep.space.get(&name).is_some_and(|p| {
                    matches!(p.domain, Domain::Float { log: true, .. } | Domain::Int { log: true, .. })
                });
            let points: Vec<(Option<f64>, String, f64)> = observed
                .iter()
                .filter_map(|(t, y)| {
                    let value: Value = serde_json::from_value(t.params.get(&name)?.clone()).ok()?;
                    let number = match value {
                        Value::Int(i) => Some(i as f64),
                        Value::Float(f) => Some(f),
                        _ => None,
                    };
                    let number = number.map(|x| if log && x > 0.0 { x.ln() } else { x });
                    Some((number, value.to_string(), *y))
                })
                .collect();
            Mattering { explained: epsilon_squared(points), name, importance }
        })
        .collect()
}

/// ε² of the objective grouped by the parameter: numeric values (first of each point) into two to
/// four quantile bins of about five trials, others by their text.
fn epsilon_squared(mut points: Vec<(Option<f64>, String, f64)>) -> f64 {
    if points.len() < 2 {
        return 0.0;
    }
    let numeric = points.iter().all(|(x, _, _)| x.is_some());
    let mut groups: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    if numeric {
        points.sort_by(|a, b| a.0.unwrap_or(0.0).total_cmp(&b.0.unwrap_or(0.0)));
        // At least about five trials per bin, at most four bins.
        let bins = (points.len() / 5).clamp(2, 4);
        let n = points.len();
        for (i, (_, _, y)) in points.iter().enumerate() {
            groups.entry(format!("{:02}", i * bins / n)).or_default().push(*y);
        }
    } else {
        for (_, label, y) in &points {
            groups.entry(label.clone()).or_default().push(*y);
        }
    }
    let all: Vec<f64> = points.iter().map(|p| p.2).collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let total: f64 = all.iter().map(|y| (y - mean).powi(2)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let between: f64 = groups
        .values()
        .map(|g| {
            let m = g.iter().sum::<f64>() / g.len() as f64;
            g.len() as f64 * (m - mean).powi(2)
        })
        .sum();
    // ε²: η² less what k groups explain of pure noise, so that a handful of trials split into
    // small groups does not look decisive.
    let (n, k) = (all.len() as f64, groups.len() as f64);
    if n <= k {
        return 0.0;
    }
    let within_mean_square = (total - between) / (n - k);
    ((between - (k - 1.0) * within_mean_square) / total).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_squared_is_one_when_the_parameter_decides_and_zero_when_it_does_not() {
        let decides: Vec<(Option<f64>, String, f64)> =
            (0..8).map(|i| (Some(f64::from(i)), String::new(), if i < 4 { 0.0 } else { 1.0 })).collect();
        assert!((epsilon_squared(decides) - 1.0).abs() < 1e-12);
        let noise: Vec<(Option<f64>, String, f64)> =
            (0..8).map(|i| (None, (i % 2).to_string(), f64::from(i / 2 % 2))).collect();
        assert!(epsilon_squared(noise).abs() < 1e-12);
        assert_eq!(epsilon_squared(vec![(Some(1.0), String::new(), 3.0)]), 0.0);
    }
}
