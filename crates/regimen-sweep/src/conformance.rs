//! The `Sampler` contract, checked on every sampler: suggestions are points of the space, a pure
//! function of (seed, number, space, history content), and different seeds give different ones.

use crate::sampler::{Outcome, Sampler, SamplerKind, Trial, new_sampler};
use crate::space::SearchSpace;
use crate::value::{Params, Value};

fn space() -> SearchSpace {
    SearchSpace::from_toml(
        &toml::from_str(
            r#"
            lr = "loguniform(1e-5, 1e-1)"
            dropout = "uniform(0.0, 0.5)"
            width = "int(16, 128, step=16)"
            hidden = "logint(8, 256)"
            epochs = 8
            optimizer = ["adam", "sgd"]
            momentum = { sample = "uniform(0.5, 0.99)", when = { optimizer = "sgd" } }
            nesterov = { sample = [true, false], when = { momentum = [0.5, 0.99] } }
            "#,
        )
        .unwrap(),
    )
    .unwrap()
}

fn objective(p: &Params) -> f64 {
    let lr = p["lr"].as_f64().unwrap();
    let momentum = p.get("momentum").and_then(Value::as_f64).unwrap_or(0.0);
    (libm::log10(lr) + 3.0).powi(2) + p["dropout"].as_f64().unwrap() - momentum
}

/// `n` trials of `kind` with outcomes of every kind.
fn history(kind: SamplerKind, seed: u64, n: u64) -> Vec<Trial> {
    let (space, mut sampler) = (space(), new_sampler(kind, seed));
    let mut history = Vec::new();
    for number in 0..n {
        let params = sampler.suggest(&space, &history, number);
        let y = objective(&params);
        let outcome = match number % 9 {
            4 => Outcome::Running,
            5 => Outcome::Pruned(Some(y)),
            6 => Outcome::Failed,
            7 => Outcome::Infeasible(0.5),
            8 => Outcome::Pruned(None),
            _ => Outcome::Complete(y),
        };
        history.push(Trial { number, params, outcome });
    }
    history
}

#[test]
fn suggestions_are_points_of_the_space() {
    let space = space();
    for kind in SamplerKind::ALL {
        for t in history(kind, 3, 60) {
            assert!(space.contains(&t.params), "{kind} trial {}: {:?}", t.number, t.params);
        }
    }
}

#[test]
fn suggestions_are_a_pure_function_of_their_inputs() {
    let space = space();
    for kind in SamplerKind::ALL {
        let h = history(kind, 5, 40);
        let mut sampler = new_sampler(kind, 5);
        let first = sampler.suggest(&space, &h, 40);
        // Asked again, by the same sampler or a fresh one, after other questions.
        sampler.suggest(&space, &h[..20], 20);
        assert_eq!(sampler.suggest(&space, &h, 40), first, "{kind}");
        assert_eq!(new_sampler(kind, 5).suggest(&space, &h, 40), first, "{kind}");
        // The history's content counts, not its order.
        let mut shuffled = h.clone();
        shuffled.reverse();
        shuffled.swap(3, 17);
        assert_eq!(new_sampler(kind, 5).suggest(&space, &shuffled, 40), first, "{kind}");
        // A history built again from scratch gives the same trials, bit for bit.
        assert_eq!(history(kind, 5, 40), h, "{kind}");
    }
}

#[test]
fn different_seeds_give_different_suggestions() {
    let space = space();
    for kind in SamplerKind::ALL {
        let h = history(kind, 1, 30);
        let differ = (30..35)
            .any(|n| new_sampler(kind, 1).suggest(&space, &h, n) != new_sampler(kind, 2).suggest(&space, &h, n));
        assert!(differ, "{kind}");
        let differ_early = (0..5)
            .any(|n| new_sampler(kind, 1).suggest(&space, &[], n) != new_sampler(kind, 2).suggest(&space, &[], n));
        assert!(differ_early, "{kind}");
    }
}

#[test]
fn samplers_can_move_between_threads() {
    fn send<T: Send>(_: T) {}
    for kind in SamplerKind::ALL {
        let sampler: Box<dyn Sampler> = new_sampler(kind, 0);
        send(sampler);
    }
}
