//! Several runs' series side by side, and runs that differ only in one parameter (seeds, most
//! often) grouped into their mean with a min–max band.

use std::collections::BTreeMap;

use regimen_store::{MetricPoint, RunRow};
use serde::Serialize;

use crate::downsample::{Downsampled, downsample};

/// One line of a comparison: a run, or a group of runs.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// The runs it stands for.
    pub runs: Vec<String>,
    /// What sets the group apart (the shared parameters, as `key=value`), or the run's name.
    pub label: String,
    /// The run's values, or the group's mean at each x.
    pub mean: Downsampled,
    /// For a group of more than one run: the lowest and highest member at each x.
    pub low: Option<Downsampled>,
    /// See `low`.
    pub high: Option<Downsampled>,
}

/// The x of a point: its step, epoch or wall time in seconds.
pub fn x_of(point: &MetricPoint, axis: &str) -> f64 {
    match axis {
        "epoch" => point.epoch as f64,
        "wall" => point.wall.0 as f64 / 1000.0,
        _ => point.step as f64,
    }
}

/// Groups `runs` (with their series) by every parameter but `group` (none: one line per run), and
/// draws each group over `[from, to]` in `buckets` buckets.
pub fn compare(
    runs: &[(RunRow, Vec<MetricPoint>)],
    group: Option<&str>,
    axis: &str,
    range: (Option<f64>, Option<f64>),
    buckets: usize,
) -> Vec<Line> {
    let mut groups: BTreeMap<String, Vec<&(RunRow, Vec<MetricPoint>)>> = BTreeMap::new();
    for run in runs {
        let key = match group {
            Some(name) => run
                .0
                .params
                .iter()
                .filter(|(key, _)| key.as_str() != name)
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join(" "),
            None => run.0.run_id.clone(),
        };
        groups.entry(key).or_default().push(run);
    }
    let (all_from, all_to) = runs
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| x_of(p, axis)))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let from = range.0.unwrap_or(all_from);
    let to = range.1.unwrap_or(all_to);
    groups
        .into_iter()
        .map(|(key, members)| {
            // Every x any member has, with the members' values there.
            let mut at: BTreeMap<u64, (f64, Vec<f64>)> = BTreeMap::new();
            for (_, points) in &members {
                for point in points.iter().filter(|p| !p.value.is_nan()) {
                    let x = x_of(point, axis);
                    at.entry(x.to_bits()).or_insert_with(|| (x, Vec::new())).1.push(point.value);
                }
            }
            let mut xs: Vec<(f64, &Vec<f64>)> = at.values().map(|(x, v)| (*x, v)).collect();
            xs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let line = |f: &dyn Fn(&[f64]) -> f64| -> Downsampled {
                let points: Vec<(f64, f64)> = xs.iter().map(|(x, values)| (*x, f(values))).collect();
                downsample(&points, from, to, buckets)
            };
            let mean = line(&|v| v.iter().sum::<f64>() / v.len() as f64);
            let banded = members.len() > 1;
            let label = if members.len() == 1 && group.is_none() { members[0].0.name.clone() } else { key };
            Line {
                runs: members.iter().map(|(row, _)| row.run_id.clone()).collect(),
                label,
                mean,
                low: banded.then(|| line(&|v| v.iter().copied().fold(f64::INFINITY, f64::min))),
                high: banded.then(|| line(&|v| v.iter().copied().fold(f64::NEG_INFINITY, f64::max))),
            }
        })
        .collect()
}
