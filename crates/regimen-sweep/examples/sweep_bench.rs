//! Regimen's side of the sweep benchmark (`bench/sweep.sh`): not a test, a measuring tool.
//!
//! Two subcommands, each printing JSON lines:
//!
//! - `overhead --trials N --sampler random [--out FILE]` persists `N` trivial trials to a SQLite
//!   store in a temporary folder exactly as a sweep worker does: read what changed
//!   (`trials_since`), ask the sampler, claim the trial (`Claim::New`), report it complete. It
//!   times every trial and prints the total, the rate and the mean cost per trial around trial 100
//!   and around the last trial, so that a cost that grows with the sweep shows.
//! - `tell-loop --bounds LO:HI,LO:HI,... --sampler random|sobol|tpe --seed S` answers an
//!   ask/tell protocol on stdin/stdout, so that the Python driver evaluates the test functions
//!   (COCO's BBOB suite, Branin, Hartmann6) for Regimen with the very code it uses for Optuna.
//!   Each input line is `{"ask": true}` (the answer is one line, a JSON array with a value per
//!   dimension) or `{"tell": VALUE}` (the value of the last point asked; no answer). The search
//!   space is `x0 .. x{d-1}`, each `uniform(LO, HI)`.
//!
//!   With `--zoom-after N [--top-k K] [--margin M]` (defaults 5 and 0.25) it zooms once, coarse to
//!   fine, as a child sweep would: at the first ask after `N` tells it calls `zoom_history` on its
//!   own history, switches to the child space with the trials it inherits (those inside the box;
//!   the others are dropped, see `regimen_sweep::inherit`), numbers its own trials after the
//!   largest inherited number, and goes on with a fresh sampler of the same kind and seed. It
//!   prints one JSON line about the zoom on stderr (trials inherited, the box's share of the
//!   volume).
//!
//! The example lives in `regimen-sweep` because it measures the samplers; it opens the store
//! (a dev-dependency) only for the overhead measurement, the way the sweep engine will.

use std::io::{BufRead, BufWriter, Write};
use std::str::FromStr;
use std::time::{Duration, Instant};

use regimen_store::{Claim, NewSweep, SqliteStore, SweepStore, Timestamp, TrialRecord, TrialState, TrialUpdate};
use regimen_sweep::{
    Domain, Outcome, Param, Params, SamplerKind, SearchSpace, Trial, Value, ZoomOptions, new_sampler, zoom_history,
};
use serde_json::json;

type Error = Box<dyn std::error::Error>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("overhead") => overhead(&args[1..]),
        Some("tell-loop") => tell_loop(&args[1..]),
        _ => Err("usage: sweep_bench overhead --trials N --sampler KIND [--out FILE]\n       \
                  sweep_bench tell-loop --bounds LO:HI,... --sampler KIND --seed S \
                  [--zoom-after N [--top-k K] [--margin M]]"
            .into()),
    };
    if let Err(error) = result {
        eprintln!("sweep_bench: {error}");
        std::process::exit(2);
    }
}

/// The value of flag `--name`, if given.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

/// The value of flag `--name` parsed, or `default` when it is absent.
fn parsed<T: FromStr>(args: &[String], name: &str, default: T) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    match flag(args, name) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|e| format!("{name} {text}: {e}").into()),
    }
}

/// A search space of `x0 .. x{d-1}`, each uniform on its bounds.
fn box_space(bounds: &[(f64, f64)]) -> Result<SearchSpace, Error> {
    let mut table = toml::Table::new();
    for (i, (lo, hi)) in bounds.iter().enumerate() {
        // `{:?}` keeps a decimal point, so that the bounds read as floats.
        table.insert(format!("x{i}"), toml::Value::String(format!("uniform({lo:?}, {hi:?})")));
    }
    Ok(SearchSpace::from_toml(&table)?)
}

/// How a sampler sees a stored trial.
fn outcome(record: &TrialRecord) -> Outcome {
    match record.state {
        TrialState::Complete => record.value.map_or(Outcome::Failed, Outcome::Complete),
        TrialState::Pruned => Outcome::Pruned(record.value),
        TrialState::Failed => Outcome::Failed,
        TrialState::Running | TrialState::Paused | TrialState::Stale => Outcome::Running,
    }
}

/// `times[from..to]` in milliseconds (the range clamped to what exists).
fn window_ms(times: &[Duration], from: usize, to: usize) -> Vec<f64> {
    let to = to.min(times.len());
    times[from.min(to)..to].iter().map(|t| t.as_secs_f64() * 1e3).collect()
}

/// The mean of `values` (NaN when empty).
fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The median of `values` (NaN when empty).
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { 0.5 * (values[mid - 1] + values[mid]) }
}

fn overhead(args: &[String]) -> Result<(), Error> {
    let trials: u64 = parsed(args, "--trials", 1000)?;
    let kind: SamplerKind = parsed(args, "--sampler", SamplerKind::Random)?;
    let seed: u64 = parsed(args, "--seed", 0)?;
    let folder = tempfile::tempdir_in(flag(args, "--dir").unwrap_or("."))?;
    let store = SqliteStore::open(folder.path())?;
    let sweep_id = "bench";
    store.create_sweep(&NewSweep {
        sweep_id: sweep_id.into(),
        name: "overhead".into(),
        spec: json!({"sampler": kind.as_str(), "objective": "x^2"}),
        parent: None,
        created_at: Timestamp::now(),
    })?;
    let space = box_space(&[(-5.0, 5.0)])?;
    let mut sampler = new_sampler(kind, seed);
    let mut history: Vec<Trial> = Vec::new();
    let mut seen = 0;
    let lease = Duration::from_secs(600);
    let mut times = Vec::with_capacity(trials as usize);
    let started = Instant::now();
    for number in 0..trials {
        let t0 = Instant::now();
        let (changed, now) = store.trials_since(sweep_id, seen)?;
        seen = now;
        for record in changed {
            let trial = Trial {
                number: record.number,
                params: serde_json::from_value(record.params.clone())?,
                outcome: outcome(&record),
            };
            match history.get_mut(record.number as usize) {
                Some(slot) => *slot = trial,
                None => history.push(trial),
            }
        }
        let params = sampler.suggest(&space, &history, number);
        let claim = Claim::New { number, params: serde_json::to_value(&params)?, target: 1 };
        store.claim_trial(sweep_id, &claim, "bench", lease)?.ok_or("the claim lost a race with nobody")?;
        let x = params["x0"].to_string().parse::<f64>()?;
        let done = TrialUpdate {
            state: Some(TrialState::Complete),
            reached: Some((1, Some(x * x))),
            ..TrialUpdate::default()
        };
        if !store.update_trial(sweep_id, number, "bench", &done)? {
            return Err(format!("trial {number} was taken from its worker").into());
        }
        times.push(t0.elapsed());
    }
    let total = started.elapsed().as_secs_f64();
    let n = trials as usize;
    let (early, late) = (window_ms(&times, 50, 150), window_ms(&times, n.saturating_sub(100), n));
    // The mean cost of each block of 100 trials, to see a trend.
    let per_100: Vec<f64> = times.chunks(100).map(|c| mean(&window_ms(c, 0, c.len()))).collect();
    let line = json!({
        "impl": "regimen",
        "sampler": kind.as_str(),
        "trials": trials,
        "total_s": total,
        "trials_per_s": trials as f64 / total,
        "ms_per_trial_at_100": mean(&early),
        "ms_per_trial_at_end": mean(&late),
        "median_ms_at_100": median(early),
        "median_ms_at_end": median(late),
        "ms_per_trial_per_100": per_100,
    });
    println!("{line}");
    if let Some(out) = flag(args, "--out") {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(out)?;
        writeln!(file, "{line}")?;
    }
    Ok(())
}

fn tell_loop(args: &[String]) -> Result<(), Error> {
    let kind: SamplerKind = parsed(args, "--sampler", SamplerKind::Random)?;
    let seed: u64 = parsed(args, "--seed", 0)?;
    let bounds = flag(args, "--bounds")
        .ok_or("--bounds LO:HI,... is required")?
        .split(',')
        .map(|pair| {
            let (lo, hi) = pair.split_once(':').ok_or_else(|| format!("--bounds: `{pair}` is not LO:HI"))?;
            Ok((lo.trim().parse::<f64>()?, hi.trim().parse::<f64>()?))
        })
        .collect::<Result<Vec<(f64, f64)>, Error>>()?;
    let mut zoom_after: Option<usize> = flag(args, "--zoom-after").map(str::parse).transpose()?;
    let options = ZoomOptions {
        top_k: parsed(args, "--top-k", ZoomOptions::default().top_k)?,
        margin: parsed(args, "--margin", ZoomOptions::default().margin)?,
    };
    let mut space = box_space(&bounds)?;
    let mut sampler = new_sampler(kind, seed);
    let mut history: Vec<Trial> = Vec::new();
    let mut pending: Option<Params> = None;
    // The next trial's number: after the zoom, one past the largest inherited number.
    let mut next: u64 = 0;
    let mut told = 0;
    let stdin = std::io::stdin();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().lines() {
        let message: serde_json::Value = serde_json::from_str(&line?)?;
        if message.get("ask").is_some() {
            if zoom_after.is_some_and(|n| told >= n) {
                zoom_after = None;
                let (zoom, inherited) = zoom_history(&space, &history, &options)?;
                let share: f64 =
                    zoom.space.params().iter().zip(space.params()).map(|(c, p)| width(c) / width(p)).product();
                let line = json!({"zoom_after": told, "inherited": inherited.len(), "volume_share": share});
                eprintln!("{line}");
                next = inherited.iter().map(|t| t.number + 1).max().unwrap_or(0);
                (space, history) = (zoom.space, inherited);
                sampler = new_sampler(kind, seed);
            }
            let number = next;
            let params = sampler.suggest(&space, &history, number);
            let point = (0..bounds.len())
                .map(|i| match params.get(&format!("x{i}")) {
                    Some(Value::Float(x)) => Ok(*x),
                    other => Err(format!("x{i} is {other:?}, not a float")),
                })
                .collect::<Result<Vec<f64>, String>>()?;
            writeln!(out, "{}", json!(point))?;
            out.flush()?;
            pending = Some(params);
        } else if let Some(value) = message.get("tell") {
            let params = pending.take().ok_or("a tell without an ask")?;
            let outcome = value.as_f64().map_or(Outcome::Failed, Outcome::Complete);
            history.push(Trial { number: next, params, outcome });
            next += 1;
            told += 1;
        } else {
            return Err(format!("unknown message {message}").into());
        }
    }
    Ok(())
}

/// The width of a float parameter's domain (1 for any other).
fn width(p: &Param) -> f64 {
    match p.domain {
        Domain::Float { low, high, .. } => high - low,
        _ => 1.0,
    }
}
