//! End-to-end checks: write real files through [`plot`], read them back and look at what a person
//! would see (colours of the runs and splits, text, legend labels, one line per curve).

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use image::RgbImage;

use crate::layout::Split;
use crate::style::line_style;
use crate::{Curve, Format, PlotError, PlotOptions, downsample, plot, render};

fn curve(run: &str, key: &str, points: impl IntoIterator<Item = (f64, f64)>) -> Curve {
    Curve { run_label: run.to_string(), key: key.to_string(), points: points.into_iter().collect() }
}

/// Two runs, each with train and val loss and val accuracy over 40 steps.
fn two_runs() -> Vec<Curve> {
    let mut curves = Vec::new();
    for (run, rate) in [("baseline", 0.05), ("wide", 0.12)] {
        let steps = || (0..40).map(f64::from);
        curves.push(curve(run, "train.loss", steps().map(|s| (s * 10.0, 2.0 * (-rate * s).exp() + 0.1))));
        curves.push(curve(run, "val.loss", steps().map(|s| (s * 10.0, 2.0 * (-rate * s).exp() + 0.3))));
        curves.push(curve(run, "val.acc", steps().map(|s| (s * 10.0, 0.9 - 0.8 * (-rate * s).exp()))));
    }
    curves
}

fn write_png(curves: &[Curve], options: &PlotOptions) -> RgbImage {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("curves.png");
    plot(curves, options, &path).unwrap();
    image::open(&path).unwrap().to_rgb8()
}

fn write_svg(curves: &[Curve], options: &PlotOptions) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("curves.svg");
    plot(curves, options, &path).unwrap();
    fs::read_to_string(&path).unwrap()
}

/// How many pixels of each colour the picture has.
fn histogram(image: &RgbImage) -> HashMap<[u8; 3], usize> {
    let mut counts = HashMap::new();
    for pixel in image.pixels() {
        *counts.entry(pixel.0).or_insert(0) += 1;
    }
    counts
}

/// Hue in degrees and lightness in 0..1 of an RGB colour.
pub(crate) fn hue_and_lightness([r, g, b]: [u8; 3]) -> (f64, f64) {
    let [r, g, b] = [r, g, b].map(|v| f64::from(v) / 255.0);
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    let d = max - min;
    let hue = if d == 0.0 {
        0.0
    } else if max == r {
        60.0 * ((g - b) / d).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / d + 2.0)
    } else {
        60.0 * ((r - g) / d + 4.0)
    };
    (hue, (max + min) / 2.0)
}

fn hue_distance(a: f64, b: f64) -> f64 {
    let d = (a - b).abs();
    d.min(360.0 - d)
}

fn rgb(run: usize, split: Split) -> [u8; 3] {
    let c = line_style(run, split).color;
    [c.0, c.1, c.2]
}

#[test]
fn png_shows_each_run_in_its_own_hue_with_train_and_val_as_shades() {
    let options = PlotOptions { width: Some(1200), height: Some(520), ..PlotOptions::default() };
    let image = write_png(&two_runs(), &options);
    assert_eq!(image.dimensions(), (1200, 520));
    let counts = histogram(&image);
    let count = |c: [u8; 3]| counts.get(&c).copied().unwrap_or(0);
    for run in 0..2 {
        for split in [Split::Train, Split::Val] {
            assert!(count(rgb(run, split)) > 200, "run {run} {split:?}: {} pixels", count(rgb(run, split)));
        }
        let (train_hue, train_lightness) = hue_and_lightness(rgb(run, Split::Train));
        let (val_hue, val_lightness) = hue_and_lightness(rgb(run, Split::Val));
        assert!(hue_distance(train_hue, val_hue) < 3.0, "run {run}: hues {train_hue} and {val_hue}");
        assert!(train_lightness > val_lightness + 0.2, "run {run}: train is not lighter than val");
    }
    let (first, _) = hue_and_lightness(rgb(0, Split::Val));
    let (second, _) = hue_and_lightness(rgb(1, Split::Val));
    assert!(hue_distance(first, second) > 90.0, "runs share a hue family: {first} and {second}");
    // Colours are given per run and split, not at random: no third run, no test split.
    assert_eq!((count(rgb(2, Split::Val)), count(rgb(0, Split::Test))), (0, 0));
}

#[test]
fn png_text_is_rendered_without_system_fonts() {
    let options = PlotOptions { title: Some("Learning rate comparison".to_string()), ..PlotOptions::default() };
    let image = write_png(&two_runs(), &options);
    let dark_in_rows = |rows: std::ops::Range<u32>| {
        rows.flat_map(|y| (0..image.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| image.get_pixel(x, y).0.iter().all(|&c| c < 90))
            .count()
    };
    // Title band (48 px at this size), then the legends at the bottom.
    assert!(dark_in_rows(0..48) > 150, "no title text: {} dark pixels", dark_in_rows(0..48));
    let bottom = image.height() - 60..image.height();
    assert!(dark_in_rows(bottom.clone()) > 300, "no legend text: {} dark pixels", dark_in_rows(bottom));
}

#[test]
fn svg_has_the_legend_labels_and_one_line_per_curve() {
    let options = PlotOptions { x_label: "epoch".to_string(), ..PlotOptions::default() };
    let svg = write_svg(&two_runs(), &options);
    assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
    for label in ["baseline · train.loss", "baseline · val.loss", "wide · val.acc", "epoch", ">\nloss\n<", ">\nacc\n<"]
    {
        assert!(svg.contains(label), "missing {label:?}");
    }
    // Each curve is one polyline of its colour; legend samples are two-point polylines.
    for (run, split, curves) in [(0, Split::Train, 1), (0, Split::Val, 2), (1, Split::Train, 1), (1, Split::Val, 2)] {
        assert_eq!(curve_lines(&svg, rgb(run, split)), curves, "run {run} {split:?}");
    }
}

/// Polylines of `color` with more than two points.
fn curve_lines(svg: &str, [r, g, b]: [u8; 3]) -> usize {
    let stroke = format!("stroke=\"#{r:02X}{g:02X}{b:02X}\"");
    svg.lines()
        .filter(|line| line.starts_with("<polyline") && line.contains(&stroke))
        .filter_map(|line| line.split("points=\"").nth(1)?.split('"').next())
        .filter(|points| points.split_whitespace().count() > 2)
        .count()
}

#[test]
fn non_finite_values_break_the_line_and_an_empty_curve_is_named_in_the_legend() {
    let broken = (0..20).map(|s| (f64::from(s), if s == 10 { f64::NAN } else { f64::from(s) }));
    let curves = [
        curve("a", "train.loss", broken),
        curve("b", "train.loss", [(0.0, f64::INFINITY), (1.0, f64::NAN)]),
        curve("c", "train.loss", [(0.0, 50.0), (1.0, f64::NEG_INFINITY), (2.0, 50.0)]),
    ];
    let svg = write_svg(&curves, &PlotOptions::default());
    assert_eq!(curve_lines(&svg, rgb(0, Split::Train)), 2, "the NaN at step 10 must split the line in two");
    assert!(svg.contains("b · train.loss (no finite values)"));
    // The largest finite value sets the range; the infinities do not.
    assert!(svg.contains(">\n50\n<"), "no tick at the largest finite value");
    assert!(!svg.contains("inf") && !svg.contains("NaN"), "a non-finite value reached the axes");
    let image = write_png(&curves, &PlotOptions::default());
    assert!(histogram(&image).get(&rgb(0, Split::Train)).copied().unwrap_or(0) > 100);
}

#[test]
fn log_scale_skips_non_positive_values() {
    let curves = [
        curve(
            "a",
            "train.loss",
            [(0.0, 10.0), (1.0, 3.0), (2.0, 1.0), (3.0, 0.0), (4.0, 0.1), (5.0, 0.03), (6.0, 0.01)],
        ),
        curve("b", "train.loss", [(0.0, -1.0), (1.0, 0.0)]),
    ];
    let options = PlotOptions { log_y: true, ..PlotOptions::default() };
    let svg = write_svg(&curves, &options);
    assert!(svg.contains("loss (log scale)"));
    assert!(svg.contains("b · train.loss (no positive values for the log scale)"));
    assert_eq!(curve_lines(&svg, rgb(0, Split::Train)), 2);
    let image = write_png(&curves, &options);
    assert!(histogram(&image).get(&rgb(0, Split::Train)).copied().unwrap_or(0) > 100);
}

/// Filled circles of `color`, the markers of a points-only plot (legend samples included).
fn markers(svg: &str, [r, g, b]: [u8; 3]) -> usize {
    let fill = format!("fill=\"#{r:02X}{g:02X}{b:02X}\"");
    svg.lines().filter(|line| line.starts_with("<circle") && line.contains(&fill)).count()
}

/// Polylines of `color`, whatever their length.
fn polylines(svg: &str, [r, g, b]: [u8; 3]) -> usize {
    let stroke = format!("stroke=\"#{r:02X}{g:02X}{b:02X}\"");
    svg.lines().filter(|line| line.starts_with("<polyline") && line.contains(&stroke)).count()
}

/// A sweep's trials: validation loss against learning rates from 1e-5 to 1e-1, in no order, best
/// near `best`.
fn sweep(run: &str, key: &str, best: f64) -> Curve {
    let lrs = [3e-2, 1e-5, 4e-4, 1e-1, 2e-3, 7e-5, 1e-2, 5e-4, 2e-5, 6e-3];
    curve(run, key, lrs.map(|lr: f64| (lr, 0.2 + 0.1 * (lr.log10() - best.log10()).powi(2))))
}

#[test]
fn scatter_on_log_x_draws_markers_instead_of_lines() {
    let options = PlotOptions { x_label: "lr".to_string(), log_x: true, points_only: true, ..PlotOptions::default() };
    let svg = write_svg(&[sweep("sweep", "val.loss", 1e-3)], &options);
    assert!(svg.contains(">\nlr (log scale)\n<"), "the x axis does not say it is logarithmic");
    assert!(!svg.contains("loss (log scale)"), "y is linear");
    let val = rgb(0, Split::Val);
    // One marker per trial and one in the legend; no line joins them, not even in the legend.
    assert_eq!(markers(&svg, val), 10 + 1);
    assert_eq!(polylines(&svg, val), 0);
    // Ticks span the decades of the learning rates.
    let texts: Vec<&str> = svg.lines().filter(|line| !line.starts_with('<')).collect();
    for tick in ["1e-5", "1e-4", "0.001", "0.01", "0.1"] {
        assert!(texts.contains(&tick), "no tick {tick} in {texts:?}");
    }
    let image = write_png(&[sweep("sweep", "val.loss", 1e-3)], &options);
    assert!(histogram(&image).get(&val).copied().unwrap_or(0) > 100);
}

#[test]
fn log_x_skips_points_that_are_not_positive_and_says_so_when_none_are_left() {
    let curves = [
        curve("a", "val.loss", [(-1.0, 1.0), (0.0, 2.0), (1e-3, 0.5), (1e-2, 0.4), (f64::NAN, 0.3)]),
        curve("b", "val.loss", [(0.0, 1.0), (-3.0, 2.0)]),
    ];
    let options = PlotOptions { log_x: true, points_only: true, ..PlotOptions::default() };
    let svg = write_svg(&curves, &options);
    assert_eq!(markers(&svg, rgb(0, Split::Val)), 2 + 1, "only the two positive x values are drawn");
    assert!(svg.contains("b · val.loss (no positive x values for the log scale)"));
    assert!(!svg.contains("inf") && !svg.contains("NaN"), "a non-finite value reached the axes");
    // As lines, the skipped points break the curve like a NaN does.
    let lines = PlotOptions { log_x: true, ..PlotOptions::default() };
    let svg = write_svg(&curves, &lines);
    assert!(svg.contains("step (log scale)"));
    assert_eq!(curve_lines(&svg, rgb(0, Split::Val)), 0, "two points, one segment, no longer polyline");
    assert!(svg.contains("b · val.loss (no positive x values for the log scale)"));
}

#[test]
fn log_x_and_log_y_combine_as_lines_and_as_markers() {
    let curves =
        [sweep("a", "val.loss", 1e-3), sweep("b", "val.loss", 1e-2), curve("c", "val.loss", [(1e-3, 0.0), (0.0, 1.0)])];
    for points_only in [false, true] {
        let options = PlotOptions { log_x: true, log_y: true, points_only, ..PlotOptions::default() };
        let svg = write_svg(&curves, &options);
        assert!(svg.contains("step (log scale)") && svg.contains("loss (log scale)"));
        assert!(svg.contains("c · val.loss (no points with positive x and y for the log scales)"));
        for run in 0..2 {
            let (markers, lines) = (markers(&svg, rgb(run, Split::Val)), curve_lines(&svg, rgb(run, Split::Val)));
            assert_eq!((markers, lines), if points_only { (11, 0) } else { (0, 1) }, "run {run}");
        }
        let png = render(&curves, &options, Format::Png).unwrap();
        let image = image::load_from_memory(&png).unwrap().to_rgb8();
        for run in 0..2 {
            assert!(histogram(&image).get(&rgb(run, Split::Val)).copied().unwrap_or(0) > 100, "run {run}");
        }
    }
}

#[test]
fn many_metrics_go_into_a_grid() {
    let metrics = ["loss", "acc", "macro_f1", "top5_acc", "r2"];
    let curves: Vec<_> = metrics.iter().map(|m| curve("a", &format!("val.{m}"), [(0.0, 1.0), (1.0, 2.0)])).collect();
    let image = write_png(&curves, &PlotOptions::default());
    // Three columns of 520 px; two rows of charts with their one-line legends.
    assert_eq!(image.width(), 3 * 520);
    assert!(image.height() > 2 * 380 && image.height() < 2 * 380 + 150, "{}", image.height());
    let svg = write_svg(&curves, &PlotOptions::default());
    for metric in metrics {
        assert!(svg.contains(&format!(">\n{metric}\n<")), "no panel titled {metric}");
    }
}

fn plot_error(curves: &[Curve], options: &PlotOptions, path: &Path) -> String {
    let error = plot(curves, options, path).unwrap_err();
    assert!(!path.exists(), "{} was written despite {error}", path.display());
    error.to_string()
}

#[test]
fn bad_requests_fail_with_clear_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let defaults = PlotOptions::default();
    let error = plot_error(&two_runs(), &defaults, &dir.path().join("curves.pdf"));
    assert!(error.contains("extension `.pdf` is not supported; supported extensions are .png and .svg"), "{error}");

    let error = plot_error(&[], &defaults, &dir.path().join("curves.png"));
    assert!(matches!(plot(&[], &defaults, &dir.path().join("x.png")), Err(PlotError::NoCurves)), "{error}");

    let missing = dir.path().join("no-such-folder");
    let error = plot_error(&two_runs(), &defaults, &missing.join("curves.png"));
    assert!(error.contains(&format!("folder {} does not exist", missing.display())), "{error}");

    let narrow = PlotOptions { width: Some(50), ..PlotOptions::default() };
    let error = plot_error(&two_runs(), &narrow, &dir.path().join("curves.svg"));
    assert_eq!(error, "image width of 50 pixels is out of range: it must be between 200 and 8000");

    let crowded: Vec<_> = (0..30).map(|r| curve(&format!("run-{r}"), "val.loss", [(0.0, 1.0)])).collect();
    let short = PlotOptions { height: Some(300), ..PlotOptions::default() };
    let error = plot_error(&crowded, &short, &dir.path().join("curves.png"));
    assert!(error.starts_with("image height of 300 pixels is too small"), "{error}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "something was left in the folder");
}

#[test]
fn downsampling_averages_blocks() {
    // A 4×2 picture of two 2×2 blocks: black and white, then a half-grey mix.
    let row = |a: u8, b: u8, c: u8, d: u8| [a, a, a, b, b, b, c, c, c, d, d, d];
    let pixels = [row(0, 0, 255, 0), row(0, 0, 255, 0)].concat();
    assert_eq!(downsample(&pixels, 2, 1, 2), [0, 0, 0, 128, 128, 128]);
}

#[test]
fn large_pictures_are_drawn_without_supersampling() {
    // 8000×2200 is over the supersampling limit, so it is drawn at its own size.
    let options = PlotOptions { width: Some(8000), height: Some(2200), ..PlotOptions::default() };
    let png = render(&two_runs(), &options, Format::Png).unwrap();
    let image = image::load_from_memory(&png).unwrap().to_rgb8();
    assert_eq!(image.dimensions(), (8000, 2200));
    assert!(histogram(&image).get(&rgb(1, Split::Val)).copied().unwrap_or(0) > 1000);
}
