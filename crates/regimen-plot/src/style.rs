//! Colours, line styles and tick labels.
//!
//! Each run gets a hue and each split a shade of it, so a reader groups lines by colour family
//! (the run) first and by lightness (the split) second: train light and thin, val dark and thick.

use plotters::style::{Color, FontFamily, HSLColor, RGBColor};

use crate::layout::Split;

/// The family every text of the plot uses: the embedded font is registered under this generic
/// name, so SVG viewers substitute their own sans-serif font.
pub(crate) const FAMILY: FontFamily<'static> = FontFamily::SansSerif;

/// Hues (degrees) of the runs in order; the ninth run reuses the first hue.
const RUN_HUES: [f64; 8] = [212.0, 28.0, 128.0, 352.0, 272.0, 178.0, 320.0, 48.0];

/// How one split of one run is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LineStyle {
    pub color: RGBColor,
    /// Stroke width at scale 1, in pixels.
    pub width: f64,
    pub dashed: bool,
}

/// The line style of `split` for the run at index `run`.
pub(crate) fn line_style(run: usize, split: Split) -> LineStyle {
    let hue = RUN_HUES[run % RUN_HUES.len()];
    let (lightness, width, dashed) = match split {
        Split::Train => (0.70, 1.6, false),
        Split::TrainEval => (0.56, 1.6, true),
        Split::Val => (0.36, 2.6, false),
        Split::Test => (0.22, 2.2, true),
        Split::Other => (0.48, 2.0, false),
    };
    LineStyle { color: hsl(hue, 0.78, lightness), width, dashed }
}

fn hsl(hue_degrees: f64, saturation: f64, lightness: f64) -> RGBColor {
    let (r, g, b) = HSLColor(hue_degrees / 360.0, saturation, lightness).to_backend_color().rgb;
    RGBColor(r, g, b)
}

/// Text and axis colours.
pub(crate) const INK: RGBColor = RGBColor(34, 34, 34);
pub(crate) const MUTED_INK: RGBColor = RGBColor(110, 110, 110);
pub(crate) const GRID: RGBColor = RGBColor(226, 226, 226);

/// A tick label with at most four significant digits, in scientific notation when very large
/// or very small: `0.25`, `12000`, `1.5e6`, `3e-5`.
pub(crate) fn tick_label(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude < 1e-12 {
        return "0".to_string();
    }
    if !(1e-3..1e6).contains(&magnitude) {
        return format!("{value:.1e}").replace(".0e", "e");
    }
    let decimals = (3 - magnitude.log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hue_and_lightness(c: RGBColor) -> (f64, f64) {
        crate::tests::hue_and_lightness([c.0, c.1, c.2])
    }

    #[test]
    fn splits_are_shades_of_their_runs_hue() {
        for (run, &run_hue) in RUN_HUES.iter().enumerate() {
            let shades: Vec<_> = [Split::Train, Split::TrainEval, Split::Val, Split::Test, Split::Other]
                .map(|s| line_style(run, s))
                .to_vec();
            for shade in &shades {
                let (hue, _) = hue_and_lightness(shade.color);
                let off = (hue - run_hue).abs();
                assert!(off.min(360.0 - off) < 3.0, "run {run}: {shade:?} has hue {hue}");
            }
            let (_, train) = hue_and_lightness(shades[0].color);
            let (_, val) = hue_and_lightness(shades[2].color);
            assert!(train > val + 0.25, "run {run}: train {train} vs val {val}");
            assert!(shades[0].width < shades[2].width);
        }
        assert_eq!(line_style(0, Split::Val), line_style(RUN_HUES.len(), Split::Val));
    }

    #[test]
    fn tick_labels_are_short() {
        let check = |v: f64, s: &str| assert_eq!(tick_label(v), s, "{v}");
        check(0.0, "0");
        check(1e-15, "0");
        check(0.25, "0.25");
        check(0.30000000000000004, "0.3");
        check(-1.5, "-1.5");
        check(2.0, "2");
        check(12000.0, "12000");
        check(1234.5678, "1235");
        check(0.012345, "0.01235");
        check(1.5e6, "1.5e6");
        check(3e-5, "3e-5");
    }
}
