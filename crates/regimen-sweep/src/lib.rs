//! Search spaces and samplers for Regimen's hyperparameter sweeps.
//!
//! A sweep tries many trials of one recipe with different parameters. This crate answers one
//! question, "which parameters should trial `n` try?", as a pure function of a seed, the search
//! space and the history of earlier trials. It reads no files, opens no store and knows nothing of
//! Burn or training: the sweep engine claims trials, runs them, records outcomes in the store and
//! shows the history back to a [`Sampler`]. Rung schedulers (ASHA and friends) live beside the
//! samplers, and are equally pure.
//!
//! # Search spaces
//!
//! A [`SearchSpace`] comes from the `[params]` table of a sweep file and from `--param` flags:
//!
//! ```toml
//! [params]
//! lr = "loguniform(1e-4, 1e-1)"      # a float, uniform on a log scale
//! dropout = "uniform(0.0, 0.5)"      # a float, uniform
//! depth = "int(1, 4)"                # an integer
//! width = "int(16, 128, step=16)"    # an integer on a step grid
//! hidden = "logint(8, 256)"          # an integer on a log scale
//! channels = ["16,32", "32,64"]      # one of a list (any scalars)
//! optimizer = ["adam", "sgd"]
//! epochs = 8                         # fixed: every trial gets it, nothing is searched
//! momentum = { sample = "uniform(0.5, 0.99)", when = { optimizer = "sgd" } }  # conditional
//! ```
//!
//! The same on the command line: `--param lr=loguniform:1e-5:1e-1`, `width=int:16:128:16`,
//! `hidden=logint:8:256`, `optimizer=choice:adam|sgd`, `epochs=8`.
//!
//! # Samplers
//!
//! [`SamplerKind`] names the four samplers ([`new_sampler`] builds one): `random` (independent
//! uniform draws on each parameter's own scale), `grid` (the cartesian product, five points per
//! continuous parameter, visited in a seeded order), `sobol` (a scrambled Sobol low-discrepancy
//! sequence) and `tpe` (the Tree-structured Parzen Estimator with Optuna's defaults, which learns
//! from the history). Every sampler is deterministic in its seed, on every platform: floating-point
//! functions come from the portable `libm` crate, random numbers from ChaCha8 streams.
//!
//! ```
//! use regimen_sweep::{Outcome, SamplerKind, SearchSpace, Trial, new_sampler};
//!
//! let table = toml::from_str(r#"lr = "loguniform(1e-4, 1e-1)""#).unwrap();
//! let space = SearchSpace::from_toml(&table).unwrap();
//! let mut sampler = new_sampler(SamplerKind::Tpe, 42);
//! let mut history = Vec::new();
//! for number in 0..20 {
//!     let params = sampler.suggest(&space, &history, number);
//!     assert!(space.contains(&params));
//!     let _command = format!("regimen train --lr {}", params["lr"]); // `--lr 0.0123...`
//!     let lr = params["lr"].to_string().parse::<f64>().unwrap();
//!     let loss = (lr.log10() + 2.5).abs(); // Pretend to train.
//!     history.push(Trial { number, params, outcome: Outcome::Complete(loss) });
//! }
//! ```
//!
//! # Coarse to fine
//!
//! [`zoom`] narrows a space around a sweep's best trials, for a child sweep: each numeric
//! parameter to the span of the top trials (on its own scale: log parameters in `ln` space) plus
//! [`ZoomOptions::margin`] of that span on each side, clipped to the old bounds, integers rounded
//! outward to their step. Categorical and fixed parameters are never narrowed; the report
//! ([`ZoomedParam`]) notes which choices the top trials used. The child starts from the parent's
//! observations by one rule ([`inherit`]): a trial that is a point of the child space is kept as
//! it is, and every other one (and every trial still running) is dropped, because the child never
//! samples outside its box and TPE cannot place a kernel there. [`zoom_history`] does both from a
//! history.
//!
//! ```
//! use regimen_sweep::{SearchSpace, ZoomOptions, zoom_history};
//! # use regimen_sweep::{Outcome, SamplerKind, Trial, new_sampler};
//! # let space = SearchSpace::from_toml(&toml::from_str(r#"lr = "loguniform(1e-5, 1e-1)""#).unwrap()).unwrap();
//! # let mut sampler = new_sampler(SamplerKind::Random, 1);
//! # let mut history = Vec::new();
//! # for number in 0..30 {
//! #     let params = sampler.suggest(&space, &history, number);
//! #     let lr = params["lr"].to_string().parse::<f64>().unwrap();
//! #     history.push(Trial { number, params, outcome: Outcome::Complete((lr.log10() + 2.5).abs()) });
//! # }
//! let (zoom, inherited) = zoom_history(&space, &history, &ZoomOptions::default()).unwrap();
//! for change in &zoom.changes {
//!     println!("{}: {} -> {}", change.name, change.before, change.after); // lr: loguniform:1e-5:0.1 -> ...
//! }
//! assert!(inherited.iter().all(|t| zoom.space.contains(&t.params)));
//! ```

mod grid;
mod importance;
mod random;
mod rungs;
mod sampler;
mod sobol;
mod space;
mod tpe;
mod value;
mod zoom;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod proptests;

pub use importance::ped_anova;
pub use rungs::{Scheduler, SchedulerKind, Standing};
pub use sampler::{Outcome, Sampler, SamplerKind, Trial, new_sampler};
pub use space::{Condition, Domain, Param, SearchSpace, SpaceError};
pub use value::{Params, Value};
pub use zoom::{Zoom, ZoomError, ZoomOptions, ZoomedParam, best_trials, inherit, zoom, zoom_history};
