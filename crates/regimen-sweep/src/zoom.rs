//! Coarse to fine: a child sweep's space, narrowed around the parent's best trials, and the
//! parent's observations the child starts from.
//!
//! Each numeric parameter is narrowed on its own scale (log parameters in `ln` space) to the span
//! of the top trials plus a margin on each side, clipped to the old bounds; integers are rounded
//! outward to their step grid. Categorical and fixed parameters are never narrowed: a note says
//! which choices the top trials used, and the user narrows them with `--param` if they mean to.
//! See [`inherit`] for what becomes of the parent's trials.

use crate::sampler::{Outcome, Trial};
use crate::space::{Domain, Param, SearchSpace, SpaceError};
use crate::value::{Params, Value};

/// How a zoom narrows a space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZoomOptions {
    /// How many of the best trials to zoom around (default 5; [`zoom_history`] picks them).
    pub top_k: usize,
    /// The fraction of the top trials' span (on the parameter's scale) added on each side; when
    /// that span is zero, the fraction of the old width instead (default 0.25; at least 0).
    pub margin: f64,
}

impl Default for ZoomOptions {
    /// Five trials, a quarter of their span on each side.
    fn default() -> Self {
        ZoomOptions { top_k: 5, margin: 0.25 }
    }
}

/// What the zoom did to one parameter, for the user to read (and for the lineage record).
#[derive(Debug, Clone, PartialEq)]
pub struct ZoomedParam {
    /// The parameter.
    pub name: String,
    /// Its domain before, in the `--param` syntax ([`Domain::to_inline`]).
    pub before: String,
    /// Its domain after, in the same syntax.
    pub after: String,
    /// Whether the domain changed.
    pub narrowed: bool,
    /// Why it was not narrowed (or not as far as the top trials alone would have it), or which
    /// choices the top trials used.
    pub note: Option<String>,
}

/// A zoomed space and what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Zoom {
    /// The child sweep's space: same parameters and conditions, narrower numeric domains.
    pub space: SearchSpace,
    /// One entry per parameter, in the space's order.
    pub changes: Vec<ZoomedParam>,
}

/// Why a zoom was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ZoomError {
    /// No trial to zoom around.
    #[error(
        "nothing to zoom around: a zoom needs at least one complete trial whose parameters fit the sweep's \
         space; let some trials finish first"
    )]
    Empty,
    /// `top_k` of 0.
    #[error("--top-k 0: zoom around at least one trial")]
    TopK,
    /// A margin that is negative or not a number.
    #[error(
        "--margin {margin}: expected a finite number of at least 0 (0.25 adds a quarter of the top trials' span on \
         each side)"
    )]
    Margin {
        /// The margin given.
        margin: f64,
    },
    /// A top trial that is not a point of the space being zoomed.
    #[error(
        "top trial {index} (0 = best: {params}) is not a point of the sweep's space (a value outside its \
         domain, or a parameter missing or unknown); zoom only around trials of this space"
    )]
    NotInSpace {
        /// Its position in the list of top trials.
        index: usize,
        /// Its parameters, as `name=value, ...`.
        params: String,
    },
    /// The narrowed space failed validation (a bug: zooming keeps every domain valid).
    #[error("the zoomed space is invalid: {0}")]
    Space(#[from] SpaceError),
}

/// Narrows `space` around `top` (the top trials' parameters, best first; at least one, each a
/// point of `space`). The child space contains every top trial and lies inside `space`.
/// Only `options.margin` is used here: the caller chose `top` ([`zoom_history`] takes `top_k`).
///
/// - Floats: `[min - m, max + m]` over the top trials where the parameter is active, `m` being
///   `margin` times their span (or times the old width when they all agree), in `ln` space for
///   log parameters; clipped to the old bounds. If that leaves no width (margin 0, one value),
///   the domain is left as it was.
/// - Integers: the same on the step grid (index space, or `ln` space for log integers), rounded
///   outward to whole steps; when it collapses to one value, one step is kept on each side
///   (within the old bounds).
/// - Categorical and fixed parameters: unchanged; a note lists the choices the top trials used.
/// - A parameter active in none of the top trials is unchanged, with a note.
/// - A numeric parameter that gates others (`when = { depth = 4 }`) keeps the values that switch
///   them on, so that the child space has the same structure; a note says so.
pub fn zoom(space: &SearchSpace, top: &[Params], options: &ZoomOptions) -> Result<Zoom, ZoomError> {
    let margin = options.margin;
    if !(margin.is_finite() && margin >= 0.0) {
        return Err(ZoomError::Margin { margin });
    }
    if top.is_empty() {
        return Err(ZoomError::Empty);
    }
    if let Some(index) = top.iter().position(|p| !space.contains(p)) {
        let params: Vec<String> = top[index].iter().map(|(k, v)| format!("{k}={v}")).collect();
        return Err(ZoomError::NotInSpace { index, params: params.join(", ") });
    }
    let mut params = Vec::new();
    let mut changes = Vec::new();
    for p in space.params() {
        let used: Vec<&Value> = top.iter().filter_map(|t| t.get(&p.name)).collect();
        let gates: Vec<&Param> =
            space.params().iter().filter(|c| c.condition.as_ref().is_some_and(|c| c.parent == p.name)).collect();
        let (domain, note) = narrow(p, &used, &gates, margin);
        changes.push(ZoomedParam {
            name: p.name.clone(),
            before: p.domain.to_inline(),
            after: domain.to_inline(),
            narrowed: domain != p.domain,
            note,
        });
        params.push(Param { domain, ..p.clone() });
    }
    Ok(Zoom { space: SearchSpace::new(params)?, changes })
}

/// The parent's observations the child sweep starts from, in the parent's order.
///
/// The rule: a trial whose parameters are a point of `child` is kept exactly as it is (number,
/// parameters, outcome); every other trial is dropped, and so is every trial still running.
///
/// Why drop rather than clip: the child only ever samples inside its box, so what happened outside
/// it tells its TPE nothing it needs, and TPE's kernels live on the child's (truncated) domain,
/// where an outside point is not a point at all. Kept anyway, such a trial would still take a
/// rank in TPE's good/bad split and count towards its startup, distorting both while adding no
/// kernel; clipped onto the box's edge, it would claim a result for parameters nobody ran and pile
/// kernels on the boundary. Dropping them makes TPE's "good" mean good among what the child can
/// still try. The top trials are always kept (the box contains them). A running trial is dropped
/// because it would never finish in the child's history: a permanent "constant liar".
///
/// Numbers are the parent's, so that each inherited trial names its origin; the child should place
/// them before its own trials and number its own after the largest of them, which keeps the
/// history in number order as the samplers expect.
pub fn inherit(child: &SearchSpace, parent_history: &[Trial]) -> Vec<Trial> {
    parent_history.iter().filter(|t| t.outcome != Outcome::Running && child.contains(&t.params)).cloned().collect()
}

/// The best `k` complete trials whose parameters fit `space`, best first: lowest value (values
/// are minimized, as samplers see them), ties to the lower number. NaN values never rank.
pub fn best_trials<'a>(space: &SearchSpace, history: &'a [Trial], k: usize) -> Vec<&'a Trial> {
    let mut done: Vec<(f64, &Trial)> = history
        .iter()
        .filter_map(|t| match t.outcome {
            Outcome::Complete(v) if !v.is_nan() && space.contains(&t.params) => Some((v, t)),
            _ => None,
        })
        .collect();
    done.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.number.cmp(&b.1.number)));
    done.into_iter().take(k).map(|(_, t)| t).collect()
}

/// One coarse-to-fine step from a sweep's history: zooms `space` around the
/// [`best_trials`]`(options.top_k)` and returns the child space with the observations it inherits
/// ([`inherit`]).
pub fn zoom_history(
    space: &SearchSpace,
    history: &[Trial],
    options: &ZoomOptions,
) -> Result<(Zoom, Vec<Trial>), ZoomError> {
    if options.top_k == 0 {
        return Err(ZoomError::TopK);
    }
    let top: Vec<Params> = best_trials(space, history, options.top_k).into_iter().map(|t| t.params.clone()).collect();
    let zoom = zoom(space, &top, options)?;
    let inherited = inherit(&zoom.space, history);
    Ok((zoom, inherited))
}

/// The narrowed domain of `p` around the values the top trials `used`, keeping the condition
/// values of the parameters it `gates`; and a note for the user.
fn narrow(p: &Param, used: &[&Value], gates: &[&Param], margin: f64) -> (Domain, Option<String>) {
    let n = used.len();
    let list = |values: &[&Value]| values.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    match &p.domain {
        Domain::Fixed(_) => return (p.domain.clone(), None),
        Domain::Categorical(choices) => {
            let picked: Vec<&Value> = choices.iter().filter(|c| used.contains(c)).collect();
            let note = match picked.len() {
                0 => "not active in any of the top trials; every choice kept".to_owned(),
                k if k == choices.len() => format!("top {n} used every choice"),
                _ => format!("top {n} used only: {}; every choice kept", list(&picked)),
            };
            return (p.domain.clone(), Some(note));
        }
        _ if n == 0 => return (p.domain.clone(), Some("not active in any of the top trials; left as is".to_owned())),
        _ => {}
    }
    let gate_values: Vec<&Value> = gates.iter().flat_map(|g| g.condition.iter().flat_map(|c| &c.values)).collect();
    let (domain, mut note) = match p.domain {
        Domain::Float { low, high, log } => {
            let scale = |x: f64| if log { libm::log(x) } else { x };
            let unscale = |x: f64| if log { libm::exp(x) } else { x };
            let (lo, hi) = min_max(used.iter().filter_map(|v| v.as_f64()));
            let (gate_lo, gate_hi) = min_max(gate_values.iter().filter_map(|v| v.as_f64()));
            let (a, b) = pad(scale(lo), scale(hi), scale(high) - scale(low), margin);
            // Clipped to the old bounds, and never past a top trial (`exp(ln x)` may miss `x`).
            let new_low = unscale(a).max(low).min(lo).min(gate_lo);
            let new_high = unscale(b).min(high).max(hi).max(gate_hi);
            if new_low < new_high {
                (Domain::Float { low: new_low, high: new_high, log }, None)
            } else {
                let note = format!("the top {n} all have {} and the margin is 0; left as is", Value::Float(lo));
                (p.domain.clone(), Some(note))
            }
        }
        Domain::Int { low, high, step, log } => {
            // Exact positions: grid indices, or the values themselves for log integers (step 1).
            let index = |v: i64| (i128::from(v) - i128::from(low)) / i128::from(step);
            let ks: Vec<i128> = int_values(used).map(index).collect();
            let gs: Vec<i128> = int_values(&gate_values).map(index).collect();
            let (ia, ib) = (ks.iter().min().copied().unwrap_or(0), ks.iter().max().copied().unwrap_or(0));
            let last = index(high);
            let (a, b) = if log {
                let at = |k: i128| (i128::from(low) + k) as f64;
                let width = libm::log(high as f64) - libm::log(low as f64);
                let (a, b) = pad(libm::log(at(ia)), libm::log(at(ib)), width, margin);
                (libm::exp(a) - low as f64, libm::exp(b) - low as f64)
            } else {
                pad(ia as f64, ib as f64, last as f64, margin)
            };
            // Outward to whole steps, inside the old grid, and never past a top trial.
            let mut ka = (libm::floor(a) as i128).clamp(0, ia);
            let mut kb = (libm::ceil(b) as i128).clamp(ib, last);
            let collapsed = ka == kb;
            if collapsed {
                (ka, kb) = ((ka - 1).max(0), (kb + 1).min(last));
            }
            if let (Some(&ga), Some(&gb)) = (gs.iter().min(), gs.iter().max()) {
                (ka, kb) = (ka.min(ga), kb.max(gb));
            }
            let at = |k: i128| (i128::from(low) + k * i128::from(step)) as i64;
            let note = collapsed.then(|| format!("the top {n} all have {}; kept one step on each side", at(ia)));
            (Domain::Int { low: at(ka), high: at(kb), step, log }, note)
        }
        Domain::Categorical(_) | Domain::Fixed(_) => unreachable!("handled above"),
    };
    if !gate_values.is_empty() {
        let names: Vec<String> = gates.iter().map(|g| format!("`{}`", g.name)).collect();
        let kept = format!("kept {} inside: they switch on {}", list(&gate_values), names.join(", "));
        note = Some(match note {
            Some(n) => format!("{n}; {kept}"),
            None => kept,
        });
    }
    (domain, note)
}

/// The integers among `values`.
fn int_values<'a>(values: &'a [&Value]) -> impl Iterator<Item = i64> + 'a {
    values.iter().filter_map(|v| match v {
        Value::Int(i) => Some(*i),
        _ => None,
    })
}

/// The smallest and largest of `xs`; `(inf, -inf)` when there are none.
fn min_max(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)))
}

/// `[lo, hi]` widened by `margin` times its span on each side, or times `width` when the span is
/// zero (all on the parameter's own scale).
fn pad(lo: f64, hi: f64, width: f64, margin: f64) -> (f64, f64) {
    let span = if hi > lo { hi - lo } else { width };
    let m = if margin == 0.0 { 0.0 } else { margin * span };
    (lo - m, hi + m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{SamplerKind, new_sampler};

    fn space(text: &str) -> SearchSpace {
        SearchSpace::from_toml(&toml::from_str(text).unwrap()).unwrap()
    }

    fn params(items: &[(&str, Value)]) -> Params {
        items.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn floats(name: &str, xs: &[f64]) -> Vec<Params> {
        xs.iter().map(|&x| params(&[(name, Value::Float(x))])).collect()
    }

    fn ints(name: &str, xs: &[i64]) -> Vec<Params> {
        xs.iter().map(|&x| params(&[(name, Value::Int(x))])).collect()
    }

    fn zoomed(space: &SearchSpace, top: &[Params], margin: f64) -> Zoom {
        zoom(space, top, &ZoomOptions { margin, ..ZoomOptions::default() }).unwrap()
    }

    fn domain(z: &Zoom, name: &str) -> Domain {
        z.space.get(name).unwrap().domain.clone()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
    }

    #[test]
    fn log_floats_narrow_geometrically() {
        let s = space(r#"lr = "loguniform(1e-5, 1e-1)""#);
        let z = zoomed(&s, &floats("lr", &[2e-3, 1e-3, 3e-3]), 0.25);
        let Domain::Float { low, high, log: true } = domain(&z, "lr") else { panic!("{z:?}") };
        // A quarter of the span (a factor 3) on each side, as factors.
        let f = libm::pow(3.0, 0.25);
        assert!(close(low, 1e-3 / f) && close(high, 3e-3 * f), "{low} {high}");
        assert!(close(high / 3e-3, 1e-3 / low), "symmetric in log space");
        let change = &z.changes[0];
        assert_eq!(
            (change.name.as_str(), change.before.as_str(), change.narrowed),
            ("lr", "loguniform:1e-5:0.1", true)
        );
        assert!(change.after.starts_with("loguniform:0.00075"), "{}", change.after);
    }

    #[test]
    fn linear_floats_narrow_and_clip_at_the_old_bounds() {
        let s = space(r#"dropout = "uniform(0.0, 0.5)""#);
        let z = zoomed(&s, &floats("dropout", &[0.2, 0.1, 0.3]), 0.25);
        let Domain::Float { low, high, log: false } = domain(&z, "dropout") else { panic!() };
        assert!(close(low, 0.05) && close(high, 0.35), "{low} {high}");
        // At the edge: clipped there.
        let z = zoomed(&s, &floats("dropout", &[0.0, 0.1]), 0.25);
        assert_eq!(domain(&z, "dropout"), Domain::Float { low: 0.0, high: 0.125, log: false });
        // Spanning the whole range: unchanged, and reported so.
        let z = zoomed(&s, &floats("dropout", &[0.5, 0.0]), 0.25);
        assert_eq!(domain(&z, "dropout"), s.params()[0].domain);
        assert!(!z.changes[0].narrowed);
        // One value: a margin of the old width; with margin 0 there is no width, so left as is.
        let z = zoomed(&s, &floats("dropout", &[0.2]), 0.1);
        let Domain::Float { low, high, .. } = domain(&z, "dropout") else { panic!() };
        assert!(close(low, 0.15) && close(high, 0.25), "{low} {high}");
        let z = zoomed(&s, &floats("dropout", &[0.2]), 0.0);
        assert_eq!(domain(&z, "dropout"), s.params()[0].domain);
        assert!(z.changes[0].note.as_ref().unwrap().contains("margin is 0"));
        // Log, at the lower edge.
        let s = space(r#"lr = "loguniform(1e-5, 1e-1)""#);
        let Domain::Float { low, .. } = domain(&zoomed(&s, &floats("lr", &[1e-5, 1e-4]), 0.25), "lr") else { panic!() };
        assert_eq!(low, 1e-5);
    }

    #[test]
    fn integers_round_outward_to_their_step() {
        let s = space(r#"width = "int(16, 128, step=16)""#);
        let d = |top: &[i64], margin| domain(&zoomed(&s, &ints("width", top), margin), "width");
        let int = |low, high| Domain::Int { low, high, step: 16, log: false };
        // Indices 2 and 3, a quarter step on each side, rounded out to a whole step.
        assert_eq!(d(&[48, 64], 0.25), int(32, 80));
        // One value: a quarter of the 7 steps of the old width, rounded out to 2.
        assert_eq!(d(&[64], 0.25), int(32, 96));
        // Collapsed: one step on each side, within the old bounds.
        assert_eq!(d(&[64], 0.0), int(48, 80));
        assert_eq!(d(&[16], 0.0), int(16, 32));
        assert_eq!(d(&[128, 112], 0.0), int(112, 128));
        assert_eq!(d(&[16, 128], 0.0), int(16, 128));
        let z = zoomed(&s, &ints("width", &[64]), 0.0);
        assert!(z.changes[0].note.as_ref().unwrap().contains("one step on each side"));
        // Log integers in log space: 32 / 2^0.25 = 26.9 and 64 * 2^0.25 = 76.1, rounded out.
        let s = space(r#"hidden = "logint(8, 256)""#);
        let log = |low, high| Domain::Int { low, high, step: 1, log: true };
        assert_eq!(domain(&zoomed(&s, &ints("hidden", &[64, 32]), 0.25), "hidden"), log(26, 77));
        assert_eq!(domain(&zoomed(&s, &ints("hidden", &[8]), 0.0), "hidden"), log(8, 9));
        assert_eq!(domain(&zoomed(&s, &ints("hidden", &[255, 256]), 0.5), "hidden"), log(254, 256));
        // The widest grid, exactly: no overflow, top trials kept.
        let wide = Param {
            name: "w".into(),
            domain: Domain::Int { low: i64::MIN, high: i64::MAX, step: 1, log: false },
            condition: None,
        };
        let s = SearchSpace::new(vec![wide]).unwrap();
        for top in [&[i64::MIN][..], &[i64::MAX], &[i64::MIN + 1, i64::MAX - 1], &[0]] {
            for margin in [0.0, 0.25, 1e300] {
                let z = zoomed(&s, &ints("w", top), margin);
                assert!(ints("w", top).iter().all(|p| z.space.contains(p)), "{top:?} {margin}: {z:?}");
            }
        }
    }

    #[test]
    fn categoricals_and_fixed_are_never_narrowed() {
        let s = space(
            r#"optimizer = ["adam", "sgd", "rmsprop"]
            epochs = 8"#,
        );
        let adam = params(&[("optimizer", Value::Str("adam".into())), ("epochs", Value::Int(8))]);
        let z = zoomed(&s, &[adam.clone(), adam.clone(), adam], 0.25);
        assert_eq!(z.space, s);
        let by_name = |n: &str| z.changes.iter().find(|c| c.name == n).unwrap();
        let opt = by_name("optimizer");
        assert!(!opt.narrowed);
        assert_eq!(opt.after, "choice:adam|sgd|rmsprop");
        assert_eq!(opt.note.as_deref(), Some("top 3 used only: adam; every choice kept"));
        assert_eq!((by_name("epochs").narrowed, &by_name("epochs").note), (false, &None));
    }

    #[test]
    fn conditional_parameters_use_the_trials_where_they_are_active() {
        let s = space(
            r#"optimizer = ["adam", "sgd"]
            momentum = { sample = "uniform(0.5, 0.99)", when = { optimizer = "sgd" } }"#,
        );
        let adam = params(&[("optimizer", Value::Str("adam".into()))]);
        let sgd = |m| params(&[("optimizer", Value::Str("sgd".into())), ("momentum", Value::Float(m))]);
        let z = zoomed(&s, &[adam.clone(), sgd(0.9), sgd(0.8)], 0.25);
        let Domain::Float { low, high, .. } = domain(&z, "momentum") else { panic!() };
        assert!(close(low, 0.775) && close(high, 0.925), "{low} {high}");
        assert_eq!(z.space.get("momentum").unwrap().condition, s.get("momentum").unwrap().condition);
        let z = zoomed(&s, &[adam.clone(), adam], 0.25);
        assert_eq!(z.space, s);
        let m = &z.changes.iter().find(|c| c.name == "momentum").unwrap();
        assert!(!m.narrowed && m.note.as_ref().unwrap().contains("not active"), "{m:?}");
    }

    #[test]
    fn numeric_parents_keep_the_values_that_switch_children_on() {
        let s = space(
            r#"depth = "int(1, 8)"
            skip = { sample = [true, false], when = { depth = [7, 8] } }"#,
        );
        let z = zoomed(&s, &ints("depth", &[2, 3]), 0.25);
        assert_eq!(domain(&z, "depth"), Domain::Int { low: 1, high: 8, step: 1, log: false });
        let note = z.changes[0].note.as_ref().unwrap();
        assert!(note.contains("7, 8") && note.contains("`skip`"), "{note}");
    }

    #[test]
    fn bad_input_is_refused_clearly() {
        let s = space(r#"lr = "loguniform(1e-5, 1e-1)""#);
        let opts = ZoomOptions::default();
        assert_eq!(zoom(&s, &[], &opts), Err(ZoomError::Empty));
        let e = zoom(&s, &floats("lr", &[1e-3, 1.0]), &opts).unwrap_err().to_string();
        assert!(e.contains("top trial 1") && e.contains("lr=1.0"), "{e}");
        for margin in [-0.1, f64::NAN, f64::INFINITY] {
            let e = zoom(&s, &floats("lr", &[1e-3]), &ZoomOptions { margin, ..opts }).unwrap_err();
            assert!(e.to_string().contains("--margin"), "{e}");
        }
        let e = zoom_history(&s, &[], &ZoomOptions { top_k: 0, ..opts }).unwrap_err();
        assert_eq!(e, ZoomError::TopK);
        assert_eq!(zoom_history(&s, &[], &opts).unwrap_err(), ZoomError::Empty);
    }

    #[test]
    fn inherit_keeps_exactly_the_finished_trials_inside_the_box() {
        let s = space(r#"x = "uniform(0.0, 1.0)""#);
        let child = zoomed(&s, &floats("x", &[0.4, 0.6]), 0.25).space; // [0.35, 0.65]
        let trial = |number, x, outcome| Trial { number, params: floats("x", &[x]).remove(0), outcome };
        let history = [
            trial(0, 0.5, Outcome::Complete(1.0)),
            trial(1, 0.9, Outcome::Complete(0.5)),
            trial(2, 0.36, Outcome::Pruned(Some(2.0))),
            trial(3, 0.5, Outcome::Running),
            trial(4, 0.6, Outcome::Failed),
            trial(5, 0.1, Outcome::Infeasible(1.0)),
            trial(6, 0.64, Outcome::Infeasible(1.0)),
            trial(7, 0.37, Outcome::Complete(0.1)),
            trial(8, 0.34, Outcome::Complete(0.1)),
        ];
        let kept = inherit(&child, &history);
        let numbers: Vec<u64> = kept.iter().map(|t| t.number).collect();
        assert_eq!(numbers, [0, 2, 4, 6, 7]);
        assert!(kept.iter().all(|t| history.contains(t)), "kept unchanged");
    }

    #[test]
    fn best_trials_rank_complete_values_that_fit() {
        let s = space(r#"x = "uniform(0.0, 1.0)""#);
        let trial = |number, x, outcome| Trial { number, params: floats("x", &[x]).remove(0), outcome };
        let history = [
            trial(0, 0.5, Outcome::Complete(3.0)),
            trial(1, 2.0, Outcome::Complete(0.0)),
            trial(2, 0.5, Outcome::Pruned(Some(0.0))),
            trial(3, 0.5, Outcome::Complete(f64::NAN)),
            trial(4, 0.5, Outcome::Complete(1.0)),
            trial(5, 0.5, Outcome::Complete(1.0)),
        ];
        let numbers: Vec<u64> = best_trials(&s, &history, 2).iter().map(|t| t.number).collect();
        assert_eq!(numbers, [4, 5]);
        assert_eq!(best_trials(&s, &history, 9).len(), 3);
    }

    #[test]
    fn tpe_on_a_zoomed_space_starts_informed_and_stays_inside() {
        let s = space(
            r#"lr = "loguniform(1e-5, 1e-1)"
            optimizer = ["adam", "sgd"]
            width = "int(16, 128, step=16)""#,
        );
        let loss = |p: &Params| {
            let Value::Float(lr) = p["lr"] else { panic!() };
            let Value::Int(w) = p["width"] else { panic!() };
            (libm::log10(lr) + 2.5).abs() + (w as f64 - 64.0).abs() / 64.0
        };
        let mut sampler = new_sampler(SamplerKind::Random, 7);
        let mut history = Vec::new();
        for number in 0..150 {
            let params = sampler.suggest(&s, &history, number);
            history.push(Trial { number, outcome: Outcome::Complete(loss(&params)), params });
        }
        let (z, mut child_history) = zoom_history(&s, &history, &ZoomOptions::default()).unwrap();
        assert!(z.changes.iter().any(|c| c.name == "lr" && c.narrowed), "{:?}", z.changes);
        for t in best_trials(&s, &history, 5) {
            assert!(child_history.contains(t), "top trial {} inherited", t.number);
        }
        assert!(child_history.len() >= 10, "TPE starts past its random startup: {}", child_history.len());
        let mut tpe = new_sampler(SamplerKind::Tpe, 0);
        for number in 150..180 {
            let params = tpe.suggest(&z.space, &child_history, number);
            assert!(z.space.contains(&params), "{params:?}");
            child_history.push(Trial { number, outcome: Outcome::Complete(loss(&params)), params });
        }
    }
}
