//! Property tests over random search spaces: every valid space reads back from its TOML form,
//! every sampler's suggestions are points of the space, reproducibly, and a zoomed space keeps
//! its top trials, lies inside its parent and inherits only its own points.

use proptest::prelude::*;

use crate::sampler::{Outcome, SamplerKind, Trial, new_sampler};
use crate::space::{Condition, Domain, Param, SearchSpace};
use crate::value::{Params, Value};
use crate::zoom::{ZoomOptions, best_trials, zoom_history};

fn domain() -> impl Strategy<Value = Domain> {
    prop_oneof![
        (-1e3..1e3f64, 1e-3..1e3f64).prop_map(|(low, w)| Domain::Float { low, high: low + w, log: false }),
        (1e-6..1e3f64, 1.001..1e4f64).prop_map(|(low, r)| Domain::Float { low, high: low * r, log: true }),
        (-100..100i64, 1..10i64, 1..20i64).prop_map(|(low, step, k)| Domain::Int {
            low,
            high: low + k * step,
            step,
            log: false
        }),
        (1..100i64, 1..1000i64).prop_map(|(low, k)| Domain::Int { low, high: low + k, step: 1, log: true }),
        (1..5usize, any::<bool>()).prop_map(|(n, strings)| Domain::Categorical(
            (0..n).map(|i| if strings { Value::Str(format!("c{i}")) } else { Value::Int(i as i64) }).collect()
        )),
        (-5..5i64).prop_map(|v| Domain::Fixed(Value::Int(v))),
    ]
}

/// Up to six parameters; each may be conditional on an earlier categorical one.
fn space() -> impl Strategy<Value = SearchSpace> {
    (proptest::collection::vec((domain(), any::<u8>(), any::<u8>()), 1..7)).prop_map(|items| {
        let mut params: Vec<Param> = Vec::new();
        for (i, (domain, pick_parent, pick_values)) in items.into_iter().enumerate() {
            let parents: Vec<&Param> = params.iter().filter(|p| matches!(p.domain, Domain::Categorical(_))).collect();
            let condition = (!parents.is_empty() && pick_parent % 2 == 0).then(|| {
                let parent = parents[pick_parent as usize / 2 % parents.len()];
                let Domain::Categorical(choices) = &parent.domain else { unreachable!() };
                let values: Vec<Value> = choices
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| (pick_values >> (j % 8)) & 1 == 1 || *j == 0)
                    .map(|(_, v)| v.clone())
                    .collect();
                Condition { parent: parent.name.clone(), values }
            });
            // Names in reverse order of creation, so that ordering by name alone would put
            // children before parents.
            params.push(Param { name: format!("p{}", 9 - i), domain, condition });
        }
        SearchSpace::new(params).expect("generated spaces are valid")
    })
}

/// The space as a `[params]` table in TOML.
fn to_toml(space: &SearchSpace) -> String {
    let mut out = String::new();
    for p in space.params() {
        let sample = match &p.domain {
            Domain::Float { .. } | Domain::Int { .. } => format!("\"{}\"", p.domain.describe()),
            other => other.describe(),
        };
        match &p.condition {
            None => out += &format!("{} = {sample}\n", p.name),
            Some(c) => {
                let values: Vec<String> = c.values.iter().map(|v| v.to_toml().to_string()).collect();
                out += &format!(
                    "{} = {{ sample = {sample}, when = {{ {} = [{}] }} }}\n",
                    p.name,
                    c.parent,
                    values.join(", ")
                );
            }
        }
    }
    out
}

/// Runs `kind` for `n` trials, feeding back made-up outcomes of every kind.
fn run(kind: SamplerKind, seed: u64, space: &SearchSpace, n: u64) -> Vec<Trial> {
    let mut sampler = new_sampler(kind, seed);
    let mut history = Vec::new();
    for number in 0..n {
        let params = sampler.suggest(space, &history, number);
        let score = params.values().filter_map(Value::as_f64).sum::<f64>().sin();
        let outcome = match number % 7 {
            0 => Outcome::Running,
            1 => Outcome::Pruned(Some(score)),
            2 => Outcome::Failed,
            3 => Outcome::Infeasible(score.abs()),
            _ => Outcome::Complete(score),
        };
        history.push(Trial { number, params, outcome });
    }
    history
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_valid_space_reads_back_from_toml(space in space()) {
        let text = to_toml(&space);
        let read = SearchSpace::from_toml(&toml::from_str(&text).unwrap());
        prop_assert_eq!(read.as_ref(), Ok(&space), "{}", text);
    }

    #[test]
    fn any_domain_round_trips_through_its_inline_spec(domain in domain()) {
        let spec = format!("p={}", domain.to_inline());
        let mut space = SearchSpace::default();
        space.add_inline(&spec).unwrap();
        prop_assert_eq!(&space.get("p").unwrap().domain, &domain, "{}", spec);
    }

    #[test]
    fn every_sampler_suggests_points_of_the_space(space in space(), seed in 0..1000u64) {
        for kind in SamplerKind::ALL {
            let history = run(kind, seed, &space, 30);
            for t in &history {
                prop_assert!(space.contains(&t.params), "{kind} trial {}: {:?}", t.number, t.params);
            }
            // Reproducible: a fresh sampler with the same seed and history answers the same.
            let again = new_sampler(kind, seed).suggest(&space, &history, 30);
            let first: Params = new_sampler(kind, seed).suggest(&space, &history, 30);
            prop_assert_eq!(again, first);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_zoom_keeps_its_top_trials_and_stays_inside_the_parent(
        space in space(),
        seed in 0..1000u64,
        top_k in 1..8usize,
        margin in prop_oneof![Just(0.0), 0.0..2.0f64],
    ) {
        let history = run(SamplerKind::Random, seed, &space, 30);
        let options = ZoomOptions { top_k, margin };
        let top = best_trials(&space, &history, top_k);
        let (zoom, inherited) = match zoom_history(&space, &history, &options) {
            Ok(z) => z,
            Err(e) => {
                prop_assert!(top.is_empty(), "{e}");
                return Ok(());
            }
        };
        for t in &top {
            prop_assert!(zoom.space.contains(&t.params), "top trial {} left out: {:?}", t.number, zoom.changes);
            prop_assert!(inherited.contains(t));
        }
        // Inside the parent: every child domain's grid points are parent points, bounds within bounds.
        for (child, parent) in zoom.space.params().iter().zip(space.params()) {
            prop_assert_eq!(&child.name, &parent.name);
            prop_assert_eq!(&child.condition, &parent.condition);
            for v in child.domain.grid_points(9) {
                prop_assert!(parent.domain.contains(&v), "{:?} not in {:?}", v, parent.domain);
            }
        }
        for t in &inherited {
            prop_assert!(zoom.space.contains(&t.params) && t.outcome != Outcome::Running);
        }
        let params = new_sampler(SamplerKind::Tpe, seed).suggest(&zoom.space, &inherited, 30);
        prop_assert!(zoom.space.contains(&params), "{:?}", params);
    }
}
