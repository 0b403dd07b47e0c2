//! From curves to panels: which metric goes where, which points can be drawn, and the axis ranges.
//!
//! This is the pure half of plotting, kept apart from `plotters` so its decisions (grouping, NaN
//! and log-scale handling, ranges) are tested on plain values.

use std::ops::Range;

use crate::Curve;

/// The split a key starts with, which decides the shade and dash of its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Split {
    Train,
    TrainEval,
    Val,
    Test,
    /// A key without a known split prefix (`lr`, `grad.norm`).
    Other,
}

/// Splits a key into its split and its metric name: `val.loss` → (`Val`, `loss`).
///
/// Only the known split prefixes are stripped, so `lr` and `grad.norm` keep their names.
pub(crate) fn split_key(key: &str) -> (Split, &str) {
    if let Some((prefix, metric)) = key.split_once('.')
        && !metric.is_empty()
    {
        let split = match prefix {
            "train" => Some(Split::Train),
            "train_eval" => Some(Split::TrainEval),
            "val" => Some(Split::Val),
            "test" => Some(Split::Test),
            _ => None,
        };
        if let Some(split) = split {
            return (split, metric);
        }
    }
    (Split::Other, key)
}

/// Consecutive drawable points, joined by one line.
pub(crate) type Segment = Vec<(f64, f64)>;

/// One curve placed in a panel.
#[derive(Debug)]
pub(crate) struct Series<'a> {
    pub curve: &'a Curve,
    /// Index of the curve's run in order of first appearance; picks the hue.
    pub run: usize,
    pub split: Split,
    /// Maximal stretches of drawable points; the line breaks between them.
    pub segments: Vec<Segment>,
    /// Why nothing of this curve is drawn, shown in the legend.
    pub note: Option<&'static str>,
}

impl Series<'_> {
    /// The legend text: `<run label> · <key>`, plus the note when nothing is drawn.
    pub fn label(&self) -> String {
        let base = format!("{} · {}", self.curve.run_label, self.curve.key);
        match self.note {
            Some(note) => format!("{base} {note}"),
            None => base,
        }
    }
}

/// One metric's picture: its series and axis ranges.
#[derive(Debug)]
pub(crate) struct Panel<'a> {
    pub metric: &'a str,
    /// Series in legend order: by run, then train, train_eval, val, test, other.
    pub series: Vec<Series<'a>>,
    pub x: Range<f64>,
    pub y: Range<f64>,
}

/// Which axes are drawn on a logarithmic scale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scales {
    pub log_x: bool,
    pub log_y: bool,
}

impl Scales {
    /// Whether a point can be placed: finite, and positive along each log axis.
    fn drawable(self, (x, y): (f64, f64)) -> bool {
        x.is_finite() && y.is_finite() && (!self.log_x || x > 0.0) && (!self.log_y || y > 0.0)
    }

    /// The legend note of a curve whose finite points all fall off the log axes.
    fn off_scale_note(self) -> &'static str {
        match (self.log_x, self.log_y) {
            (true, true) => "(no points with positive x and y for the log scales)",
            (true, false) => "(no positive x values for the log scale)",
            _ => "(no positive values for the log scale)",
        }
    }
}

/// Groups curves into panels, one per metric name, in order of first appearance.
pub(crate) fn panels(curves: &[Curve], scales: Scales) -> Vec<Panel<'_>> {
    let mut runs: Vec<&str> = Vec::new();
    let mut panels: Vec<Panel<'_>> = Vec::new();
    for curve in curves {
        let run = match runs.iter().position(|r| *r == curve.run_label) {
            Some(i) => i,
            None => {
                runs.push(&curve.run_label);
                runs.len() - 1
            }
        };
        let (split, metric) = split_key(&curve.key);
        let (segments, note) = segments(&curve.points, scales);
        let series = Series { curve, run, split, segments, note };
        match panels.iter_mut().find(|p| p.metric == metric) {
            Some(panel) => panel.series.push(series),
            None => panels.push(Panel { metric, series: vec![series], x: 0.0..1.0, y: 0.0..1.0 }),
        }
    }
    for panel in &mut panels {
        panel.series.sort_by_key(|s| (s.run, s.split));
        let points = || panel.series.iter().flat_map(|s| s.segments.iter().flatten());
        let pad = |log, values: Option<(f64, f64)>| if log { pad_log(values) } else { pad_linear(values) };
        panel.x = pad(scales.log_x, bounds(points().map(|p| p.0)));
        panel.y = pad(scales.log_y, bounds(points().map(|p| p.1)));
    }
    panels
}

/// Cuts points into stretches of drawable ones: finite, and positive along each log axis.
fn segments(points: &[(f64, f64)], scales: Scales) -> (Vec<Segment>, Option<&'static str>) {
    let mut segments = Vec::new();
    let mut current = Vec::new();
    for point in points {
        if scales.drawable(*point) {
            current.push(*point);
        } else if !current.is_empty() {
            segments.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    let note = if !segments.is_empty() {
        None
    } else if points.is_empty() {
        Some("(no points)")
    } else if points.iter().any(|(x, y)| x.is_finite() && y.is_finite()) {
        Some(scales.off_scale_note())
    } else {
        Some("(no finite values)")
    };
    (segments, note)
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Adds 4% on each side, or a margin around a single value, so lines clear the frame.
fn pad_linear(bounds: Option<(f64, f64)>) -> Range<f64> {
    match bounds {
        None => 0.0..1.0,
        Some((lo, hi)) if lo == hi => {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            lo - pad..hi + pad
        }
        Some((lo, hi)) => {
            // Halves first, so extreme but finite values cannot overflow to infinity.
            let pad = (hi / 2.0 - lo / 2.0) * 0.08;
            (lo - pad).max(f64::MIN)..(hi + pad).min(f64::MAX)
        }
    }
}

/// The log-scale counterpart of [`pad_linear`]: margins are factors, and the range stays positive.
fn pad_log(bounds: Option<(f64, f64)>) -> Range<f64> {
    match bounds {
        None => 1.0..10.0,
        Some((lo, hi)) if lo == hi => lo / 2.0..hi * 2.0,
        Some((lo, hi)) => {
            let factor = (hi / lo).powf(0.04);
            lo / factor..hi * factor
        }
    }
}

/// Rows and columns of the panel grid: side by side up to 3, then a near-square grid.
pub(crate) fn grid(panels: usize) -> (usize, usize) {
    let cols = if panels <= 3 { panels.max(1) } else { (panels as f64).sqrt().ceil() as usize };
    (panels.div_ceil(cols).max(1), cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINEAR: Scales = Scales { log_x: false, log_y: false };
    const LOG_Y: Scales = Scales { log_x: false, log_y: true };
    const LOG_X: Scales = Scales { log_x: true, log_y: false };
    const LOG_XY: Scales = Scales { log_x: true, log_y: true };

    fn curve(run: &str, key: &str, points: &[(f64, f64)]) -> Curve {
        Curve { run_label: run.to_string(), key: key.to_string(), points: points.to_vec() }
    }

    #[test]
    fn keys_lose_only_known_split_prefixes() {
        let check = |key, split, metric| assert_eq!(split_key(key), (split, metric), "{key}");
        check("train.loss", Split::Train, "loss");
        check("val.acc", Split::Val, "acc");
        check("test.top5_acc", Split::Test, "top5_acc");
        check("train_eval.loss", Split::TrainEval, "loss");
        check("train.loss_step", Split::Train, "loss_step");
        check("lr", Split::Other, "lr");
        check("grad.norm", Split::Other, "grad.norm");
        check("val.", Split::Other, "val.");
    }

    #[test]
    fn splits_of_one_metric_share_a_panel_in_order_of_appearance() {
        let curves = [
            curve("b", "val.loss", &[(1.0, 1.0)]),
            curve("a", "val.acc", &[(1.0, 0.5)]),
            curve("a", "train.loss", &[(1.0, 2.0)]),
            curve("a", "val.loss", &[(1.0, 1.5)]),
        ];
        let panels = panels(&curves, LINEAR);
        let names: Vec<_> = panels.iter().map(|p| p.metric).collect();
        assert_eq!(names, ["loss", "acc"]);
        let order: Vec<_> = panels[0].series.iter().map(|s| (s.run, s.curve.key.as_str())).collect();
        assert_eq!(order, [(0, "val.loss"), (1, "train.loss"), (1, "val.loss")]);
        assert_eq!(panels[0].series[1].label(), "a · train.loss");
    }

    #[test]
    fn non_finite_points_break_the_line_and_stay_out_of_the_range() {
        let points = [(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0), (3.0, 2.0), (4.0, f64::INFINITY), (f64::NAN, 9.0)];
        let curves = [curve("a", "train.loss", &points)];
        let panel = &panels(&curves, LINEAR)[0];
        assert_eq!(panel.series[0].segments, vec![vec![(0.0, 1.0)], vec![(2.0, 3.0), (3.0, 2.0)]]);
        assert_eq!(panel.series[0].note, None);
        let (x, y) = (&panel.x, &panel.y);
        assert!(x.start < 0.0 && x.start > -0.5 && x.end > 3.0 && x.end < 3.5, "{x:?}");
        assert!(y.start < 1.0 && y.start > 0.8 && y.end > 3.0 && y.end < 3.2, "{y:?}");
    }

    #[test]
    fn curves_with_nothing_to_draw_say_why() {
        let curves = [
            curve("a", "val.loss", &[]),
            curve("b", "val.loss", &[(0.0, f64::NAN), (1.0, f64::NEG_INFINITY)]),
            curve("c", "val.loss", &[(0.0, 0.0), (1.0, -1.0)]),
        ];
        let notes = |scales| panels(&curves, scales)[0].series.iter().map(|s| s.note).collect::<Vec<_>>();
        assert_eq!(notes(LINEAR), [Some("(no points)"), Some("(no finite values)"), None]);
        assert_eq!(
            notes(LOG_Y),
            [Some("(no points)"), Some("(no finite values)"), Some("(no positive values for the log scale)")]
        );
        let all_empty = [curve("a", "val.loss", &[(0.0, f64::NAN)])];
        let panel = &panels(&all_empty, LINEAR)[0];
        assert_eq!((panel.x.clone(), panel.y.clone()), (0.0..1.0, 0.0..1.0));
        assert_eq!(panels(&all_empty, LINEAR)[0].series[0].label(), "a · val.loss (no finite values)");
    }

    #[test]
    fn log_scale_skips_non_positive_values_and_pads_by_factors() {
        let curves = [curve("a", "train.loss", &[(0.0, 10.0), (1.0, 0.0), (2.0, 1.0), (3.0, -2.0), (4.0, 0.1)])];
        let panel = &panels(&curves, LOG_Y)[0];
        assert_eq!(panel.series[0].segments, vec![vec![(0.0, 10.0)], vec![(2.0, 1.0)], vec![(4.0, 0.1)]]);
        assert!(
            panel.y.start > 0.08 && panel.y.start < 0.1 && panel.y.end > 10.0 && panel.y.end < 12.5,
            "{:?}",
            panel.y
        );
    }

    #[test]
    fn log_x_skips_non_positive_steps_and_pads_by_factors() {
        let points = [(1e-4, 1.0), (0.0, 2.0), (1e-3, f64::NAN), (1e-2, -1.0), (-1.0, 3.0), (1e-1, 0.5)];
        let curves = [curve("a", "val.loss", &points), curve("b", "val.loss", &[(0.0, 1.0), (-2.0, 2.0)])];
        let panels_x = panels(&curves, LOG_X);
        let (panel, empty) = (&panels_x[0].series[0], &panels_x[0].series[1]);
        assert_eq!(panel.segments, vec![vec![(1e-4, 1.0)], vec![(1e-2, -1.0)], vec![(1e-1, 0.5)]]);
        assert_eq!(empty.note, Some("(no positive x values for the log scale)"));
        let x = &panels_x[0].x;
        assert!(x.start > 7e-5 && x.start < 1e-4 && x.end > 0.1 && x.end < 0.14, "{x:?}");
        // y stays linear: the negative value is drawn and widens the range below zero.
        assert!(panels_x[0].y.start < -1.0, "{:?}", panels_x[0].y);

        let panels_xy = panels(&curves, LOG_XY);
        assert_eq!(panels_xy[0].series[0].segments, vec![vec![(1e-4, 1.0)], vec![(1e-1, 0.5)]]);
        assert_eq!(panels_xy[0].series[1].note, Some("(no points with positive x and y for the log scales)"));
        assert!(panels_xy[0].y.start > 0.0, "{:?}", panels_xy[0].y);
    }

    #[test]
    fn a_single_value_gets_a_margin_around_it() {
        assert_eq!(pad_linear(Some((0.0, 0.0))), -1.0..1.0);
        assert_eq!(pad_linear(Some((-2.0, -2.0))), -2.2..-1.8);
        assert_eq!(pad_log(Some((4.0, 4.0))), 2.0..8.0);
        assert_eq!(pad_linear(Some((f64::MIN, f64::MAX))), f64::MIN..f64::MAX);
    }

    #[test]
    fn panels_sit_side_by_side_up_to_three_then_in_a_grid() {
        let shapes: Vec<_> = (1..=7).map(grid).collect();
        assert_eq!(shapes, [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (2, 3), (3, 3)]);
    }
}
