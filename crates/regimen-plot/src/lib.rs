//! Static pictures of training curves, for notes and papers: the library behind `regimen plot`.
//!
//! The input is plain data ([`Curve`]: a run label, a metric key and its points), so this crate
//! knows nothing about the run store, Burn or the command line. Curves are grouped into one panel
//! per metric name with the split prefix stripped (`train.loss` and `val.loss` share the `loss`
//! panel), panels sit side by side (a grid beyond three), and within a panel each run has its own
//! hue with its splits as shades of it: train light and thin, val dark and thick, `train_eval`
//! and `test` dashed. Legends go under their panel so they never hide a curve. Either axis can be
//! logarithmic, and [`PlotOptions::points_only`] draws markers instead of lines, for scatter plots
//! such as a sweep's metric against each parameter on the parameter's own scale.
//!
//! Bad points never spoil the picture: NaN and infinite values (and non-positive ones on a log
//! scale, along either axis) are skipped and the line breaks at them, and a curve with nothing
//! left to draw stays in the legend with the reason, because "this run diverged" is worth seeing.
//! PNG text is rendered from a font compiled into the crate, so no system fonts are needed.

mod draw;
mod error;
mod layout;
mod output;
mod style;
mod text;

use std::path::Path;

use image::ImageEncoder;
use image::codecs::png::PngEncoder;
use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};

pub use error::PlotError;
pub use output::Format;

/// One metric of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// How the run is named in the legend (its id or a short label).
    pub run_label: String,
    /// The metric key as stored, e.g. `val.loss`; the part after a `train.`, `train_eval.`,
    /// `val.` or `test.` prefix names the panel.
    pub key: String,
    /// `(x, y)` points in drawing order; x is a step or an epoch (or, in a scatter, any value).
    pub points: Vec<(f64, f64)>,
}

/// How the picture looks.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotOptions {
    /// What x counts, written under every x axis: `step` or `epoch`, or a parameter's name.
    pub x_label: String,
    /// Width in pixels; `None` gives each panel column 520 pixels.
    pub width: Option<u32>,
    /// Height in pixels; `None` fits 380-pixel charts plus their legends.
    pub height: Option<u32>,
    /// A title above all panels.
    pub title: Option<String>,
    /// Draws y on a logarithmic scale, skipping values that are not positive.
    pub log_y: bool,
    /// Draws x on a logarithmic scale, skipping points whose x is not positive (for a parameter
    /// swept over orders of magnitude, such as a learning rate).
    pub log_x: bool,
    /// Draws every curve as unjoined markers (filled circles in its colour) instead of a line,
    /// for a scatter of points whose order means nothing, such as sweep trials.
    pub points_only: bool,
}

impl Default for PlotOptions {
    fn default() -> Self {
        Self {
            x_label: "step".to_string(),
            width: None,
            height: None,
            title: None,
            log_y: false,
            log_x: false,
            points_only: false,
        }
    }
}

/// Draws `curves` and writes the picture to `out` atomically, in the format its extension names
/// (`.png` or `.svg`).
///
/// The format and the output folder are checked before any drawing, so a typo fails fast.
pub fn plot(curves: &[Curve], options: &PlotOptions, out: &Path) -> Result<(), PlotError> {
    let format = Format::from_path(out)?;
    output::check_folder(out)?;
    let bytes = render(curves, options, format)?;
    output::write_atomic(out, &bytes)
}

/// Draws `curves` into the bytes of a PNG or SVG file, without touching the disk.
pub fn render(curves: &[Curve], options: &PlotOptions, format: Format) -> Result<Vec<u8>, PlotError> {
    if curves.is_empty() {
        return Err(PlotError::NoCurves);
    }
    let font = text::font()?;
    let panels = layout::panels(curves, layout::Scales { log_x: options.log_x, log_y: options.log_y });
    let figure = draw::Figure::plan(&panels, options, font)?;
    match format {
        Format::Png => png(figure, font),
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, figure.size()).into_drawing_area();
                figure.draw(&root)?;
                root.present().map_err(draw::drawing)?;
            }
            Ok(svg.into_bytes())
        }
    }
}

/// Pictures up to this many pixels are drawn at twice their width and height and scaled down:
/// `plotters` draws lines without anti-aliasing, and averaging each 2×2 block smooths every edge,
/// text included. Larger pictures are drawn as they are, to bound memory (a 4096×4096 picture
/// already needs a 200 MB drawing buffer).
const SUPERSAMPLE_MAX_PIXELS: u64 = 4096 * 4096;

fn png(figure: draw::Figure<'_>, font: &'static ab_glyph::FontRef<'static>) -> Result<Vec<u8>, PlotError> {
    let (width, height) = figure.size();
    let ratio = if u64::from(width) * u64::from(height) <= SUPERSAMPLE_MAX_PIXELS { 2 } else { 1 };
    let figure = figure.with_ratio(ratio);
    let (device_width, device_height) = figure.device_size();
    let mut pixels = vec![255; device_width as usize * device_height as usize * 3];
    {
        let bitmap = BitMapBackend::with_buffer(&mut pixels, (device_width, device_height));
        let root = text::Bitmap::new(bitmap, font).into_drawing_area();
        figure.draw(&root)?;
        root.present().map_err(draw::drawing)?;
    }
    let pixels = if ratio == 1 { pixels } else { downsample(&pixels, width, height, ratio) };
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)?;
    Ok(png)
}

/// Averages each `ratio`×`ratio` block of an RGB image `ratio` times `width`×`height` large.
fn downsample(pixels: &[u8], width: u32, height: u32, ratio: u32) -> Vec<u8> {
    let (width, height, ratio) = (width as usize, height as usize, ratio as usize);
    let stride = width * ratio * 3;
    let mut out = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        for x in 0..width {
            for channel in 0..3 {
                let sum: usize = (0..ratio)
                    .flat_map(|dy| (0..ratio).map(move |dx| (y * ratio + dy) * stride + (x * ratio + dx) * 3 + channel))
                    .map(|i| usize::from(pixels[i]))
                    .sum();
                out.push(((sum + ratio * ratio / 2) / (ratio * ratio)) as u8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
