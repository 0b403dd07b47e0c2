//! A picture of the first batch exactly as the network sees it.
//!
//! The recipe: "visualize just before the net … this is the only source of truth". Bugs in loading,
//! channel order, normalization or augmentation show up here and nowhere else: a flipped digit, a
//! transposed image, a label that does not match its picture, an augmentation that crops the object
//! away. So the grid is drawn from the batch buffer the training loop would feed the model (after
//! normalization and augmentation), not from the files.
//!
//! Each image is scaled by its own minimum and maximum (normalized values have no fixed range, and
//! a dark image should still be visible), upscaled by a whole factor to at least 64 pixels, and
//! captioned with its label in a built-in 3x5 font, in batch order (row by row). Non-finite values
//! are drawn magenta. Tables have nothing to draw; the check then summarizes the batch's values.

use std::path::Path;

use image::{ImageFormat, Rgb, RgbImage};
use serde_json::Value;

use crate::font;
use crate::format::{class_name, fmt_count, fmt_num, num};
use crate::{Check, CheckStatus, GridError};
use regimen_data::{BatchTargets, Layout, Task};
use regimen_metrics::Moments;

/// Most images drawn; a larger batch is cut to its first 100 (a 10x10 grid).
pub const GRID_MAX_TILES: usize = 100;

/// Fraction of images of the batch that are blank (one value everywhere) above which the grid
/// WARNs: the network would be looking at nothing.
pub const BLANK_WARN_FRACTION: f64 = 0.5;

/// Smallest side of a drawn image in screen pixels; images are upscaled by a whole factor to it.
const MIN_TILE_SIDE: usize = 64;
/// Space between images.
const PAD: u32 = 2;
/// Font pixels are drawn as squares of this side.
const TEXT_SCALE: usize = 2;
/// Height of the caption under each image.
const CAPTION: u32 = (font::HEIGHT * TEXT_SCALE + 4) as u32;
/// Background of the sheet.
const BACKGROUND: Rgb<u8> = Rgb([32, 32, 32]);
/// Colour of a non-finite value.
const NON_FINITE: Rgb<u8> = Rgb([255, 0, 255]);

/// `sample_grid`: writes a PNG of the batch in `features` (`targets.len()` samples of `shape`, as
/// `regimen_data::BatchBuilder::fill` writes them) to `path` and reports where, with the batch's
/// value range. For tables (`shape` not `[channels, height, width]`) nothing is written and the
/// check only summarizes the values. FAIL when the batch holds NaN or infinite values, WARN when
/// more than [`BLANK_WARN_FRACTION`] of its images are blank.
///
/// Fails when the buffer does not hold one sample of `shape` per target, or the file cannot be
/// written.
pub fn sample_grid(
    features: &[f32],
    shape: &[usize],
    targets: &BatchTargets,
    task: &Task,
    path: &Path,
) -> Result<Check, GridError> {
    let len: usize = shape.iter().product();
    let n = targets.len();
    if len == 0 || features.len() != n * len {
        return Err(GridError::Shape { values: features.len(), labels: n, shape: shape.to_vec() });
    }
    let captions: Vec<String> = (0..n.min(GRID_MAX_TILES))
        .map(|i| match targets {
            BatchTargets::Classes(c) => {
                format!("{} {}", c[i], class_name(task, usize::try_from(c[i]).unwrap_or(usize::MAX)))
            }
            BatchTargets::Values(v) => fmt_num(f64::from(v[i])),
        })
        .collect();
    let summary = Summary::of(features);
    let Layout::Image { channels, height, width } = Layout::of(shape) else {
        let check = Check::pass(
            "sample_grid",
            format!(
                "Tabular data (shape {shape:?}): no picture. The first batch of {} rows reaches the network with values in [{}, {}], mean {}, std {}.",
                fmt_count(n),
                fmt_num(summary.min),
                fmt_num(summary.max),
                fmt_num(summary.mean),
                fmt_num(summary.std)
            ),
        )
        .with("skipped", true)
        .with("first_row", Value::Array(features.iter().take(len.min(16)).map(|&v| num(f64::from(v))).collect()));
        return Ok(summary.measure(check.with("batch_size", n)));
    };

    let shown = n.min(GRID_MAX_TILES);
    let (picture, blank) = render(&features[..shown * len], channels, height, width, &captions);
    let error = |source| GridError::Write { path: path.to_path_buf(), source };
    let mut png = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut png, ImageFormat::Png).map_err(error)?;
    // Replaced atomically, as every file Regimen writes: a reader never sees half a picture.
    regimen_fs::write(path, png.get_ref()).map_err(|e| error(image::ImageError::IoError(e)))?;

    let shown_text = if shown < n { format!("the first {shown} of {n} images") } else { format!("{n} images") };
    let channel_note =
        if channels == 1 || channels == 3 { String::new() } else { format!(" Only channel 0 of {channels} is drawn.") };
    let (status, message) = if summary.non_finite > 0 {
        (
            CheckStatus::Fail,
            format!(
                "The first batch holds {} NaN or infinite values (magenta in {}).",
                fmt_count(summary.non_finite),
                path.display()
            ),
        )
    } else if blank as f64 > BLANK_WARN_FRACTION * shown as f64 {
        (
            CheckStatus::Warn,
            format!(
                "{blank} of {shown} images of the first batch are blank (one value everywhere); see {}.",
                path.display()
            ),
        )
    } else {
        (
            CheckStatus::Pass,
            format!(
                "Drew {shown_text} of the first batch, as the network sees them, to {}; values in [{}, {}], mean {}, std {}.{channel_note}",
                path.display(),
                fmt_num(summary.min),
                fmt_num(summary.max),
                fmt_num(summary.mean),
                fmt_num(summary.std)
            ),
        )
    };
    let labels: Vec<Value> = captions.iter().map(|c| Value::from(c.as_str())).collect();
    let check = Check::new("sample_grid", status, message)
        .with_advice("Open the picture and check every image against its label: orientation, colours, crops and augmentation should look like what you expect the network to learn from.")
        .with("path", path.display().to_string())
        .with("batch_size", n)
        .with("shown", shown)
        .with("blank", blank)
        .with("width", picture.width())
        .with("height", picture.height())
        .with("labels", labels);
    Ok(summary.measure(check))
}

/// Value statistics of a batch.
struct Summary {
    min: f64,
    max: f64,
    mean: f64,
    std: f64,
    non_finite: usize,
}

impl Summary {
    fn of(values: &[f32]) -> Summary {
        let finite = values.iter().filter(|v| v.is_finite()).map(|&v| f64::from(v));
        let (min, max) = finite.clone().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let moments = Moments::of(finite);
        Summary {
            min,
            max,
            mean: moments.mean().unwrap_or(0.0),
            std: moments.std().unwrap_or(0.0),
            non_finite: values.len() - moments.count() as usize,
        }
    }

    fn measure(&self, check: Check) -> Check {
        check
            .with("min", num(self.min))
            .with("max", num(self.max))
            .with("mean", num(self.mean))
            .with("std", num(self.std))
            .with("non_finite", self.non_finite)
    }
}

/// Draws the images of `features` in a grid with their captions; returns the picture and the
/// number of blank images.
fn render(features: &[f32], channels: usize, height: usize, width: usize, captions: &[String]) -> (RgbImage, usize) {
    let len = channels * height * width;
    let n = features.len() / len.max(1);
    let columns = (n as f64).sqrt().ceil().max(1.0) as u32;
    let rows = (n as u32).div_ceil(columns).max(1);
    let scale = MIN_TILE_SIDE.div_ceil(height.max(width).max(1)).max(1);
    let (tile_w, tile_h) = ((width * scale) as u32, (height * scale) as u32);
    let picture_w = columns * (tile_w + PAD) + PAD;
    let picture_h = rows * (tile_h + CAPTION + PAD) + PAD;
    let mut picture = RgbImage::from_pixel(picture_w, picture_h, BACKGROUND);
    let plane = height * width;
    let mut blank = 0;
    for (i, sample) in features.chunks_exact(len).enumerate() {
        let (x0, y0) =
            (PAD + (i as u32 % columns) * (tile_w + PAD), PAD + (i as u32 / columns) * (tile_h + CAPTION + PAD));
        let (lo, hi) = sample
            .iter()
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if hi <= lo || hi.is_nan() {
            blank += 1;
        }
        let level = |v: f32| -> Option<u8> {
            if !v.is_finite() {
                None
            } else if hi > lo {
                Some(((v - lo) / (hi - lo) * 255.0).round() as u8)
            } else {
                Some(128)
            }
        };
        for y in 0..height {
            for x in 0..width {
                let at = y * width + x;
                let color = if channels == 3 {
                    match (level(sample[at]), level(sample[plane + at]), level(sample[2 * plane + at])) {
                        (Some(r), Some(g), Some(b)) => Rgb([r, g, b]),
                        _ => NON_FINITE,
                    }
                } else {
                    level(sample[at]).map_or(NON_FINITE, |v| Rgb([v, v, v]))
                };
                for dy in 0..scale {
                    for dx in 0..scale {
                        picture.put_pixel(x0 + (x * scale + dx) as u32, y0 + (y * scale + dy) as u32, color);
                    }
                }
            }
        }
        if let Some(caption) = captions.get(i) {
            draw_text(&mut picture, x0, y0 + tile_h + 2, tile_w, caption);
        }
    }
    (picture, blank)
}

/// Draws `text` in white from `(x, y)`, cut to what fits in `max_width` pixels.
fn draw_text(picture: &mut RgbImage, x: u32, y: u32, max_width: u32, text: &str) {
    let advance = ((font::WIDTH + 1) * TEXT_SCALE) as u32;
    let fits = (max_width / advance) as usize;
    for (k, c) in text.chars().take(fits).enumerate() {
        let bits = font::glyph(c);
        for (row, &line) in bits.iter().enumerate() {
            for col in 0..font::WIDTH {
                if line & (1 << (font::WIDTH - 1 - col)) == 0 {
                    continue;
                }
                for dy in 0..TEXT_SCALE {
                    for dx in 0..TEXT_SCALE {
                        let px = x + k as u32 * advance + (col * TEXT_SCALE + dx) as u32;
                        let py = y + (row * TEXT_SCALE + dy) as u32;
                        if px < picture.width() && py < picture.height() {
                            picture.put_pixel(px, py, Rgb([255, 255, 255]));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::classes;
    use serde_json::json;

    fn decode(path: &Path) -> RgbImage {
        let decoded = image::open(path);
        assert!(decoded.is_ok(), "{decoded:?}");
        decoded.map(|i| i.to_rgb8()).unwrap_or_default()
    }

    #[test]
    fn draws_a_grid_of_labelled_images() -> Result<(), GridError> {
        let dir = tempfile::tempdir().map_err(|e| GridError::Write { path: "tmp".into(), source: e.into() })?;
        let path = dir.path().join("batch.png");
        // Five 1x28x28 images; image i is a gradient with a bright pixel at (i, i).
        let mut features = Vec::new();
        for i in 0..5 {
            for y in 0..28 {
                for x in 0..28 {
                    features.push(if (y, x) == (i, i) { 10.0 } else { (x + y) as f32 * 0.01 - 0.2 });
                }
            }
        }
        let targets = BatchTargets::Classes(vec![0, 1, 2, 3, 4]);
        let task = Task::Classification {
            classes: ["circle", "ring", "square", "triangle", "cross"].map(String::from).to_vec(),
        };
        let check = sample_grid(&features, &[1, 28, 28], &targets, &task, &path)?;
        assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
        let picture = decode(&path);
        // 5 images: 3 columns, 2 rows of 84-pixel tiles (28 x 3) with captions.
        assert_eq!((picture.width(), picture.height()), (3 * (84 + 2) + 2, 2 * (84 + CAPTION + 2) + 2));
        assert_eq!(check.measured["width"], picture.width());
        assert_eq!(check.measured["labels"], json!(["0 circle", "1 ring", "2 square", "3 triangle", "4 cross"]));
        assert_eq!(check.measured["path"], path.display().to_string());
        // Per-image min-max: image 0's bright pixel is white, its darkest corner black.
        assert_eq!(picture.get_pixel(PAD, PAD), &Rgb([255, 255, 255]));
        assert_eq!(picture.get_pixel(PAD + 3, PAD), &Rgb([0, 0, 0]));
        // The caption band holds white text.
        let caption_y = PAD + 84 + 2;
        let white = (0..84)
            .flat_map(|x| (0..10).map(move |y| (x, y)))
            .filter(|&(x, y)| picture.get_pixel(PAD + x, caption_y + y) == &Rgb([255, 255, 255]))
            .count();
        assert!(white > 20, "{white}");
        // Unused tile slot stays background.
        assert_eq!(picture.get_pixel(picture.width() - 10, picture.height() - 10), &BACKGROUND);
        Ok(())
    }

    #[test]
    fn colour_images_keep_their_channels() -> Result<(), GridError> {
        let dir = tempfile::tempdir().map_err(|e| GridError::Write { path: "tmp".into(), source: e.into() })?;
        let path = dir.path().join("rgb.png");
        // One 3x2x2 image: red channel high, the others low.
        let features = vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let check = sample_grid(&features, &[3, 2, 2], &BatchTargets::Values(vec![0.5]), &Task::Regression, &path)?;
        let picture = decode(&path);
        assert_eq!(picture.get_pixel(PAD, PAD), &Rgb([255, 0, 0]));
        assert_eq!(check.measured["labels"], json!(["0.5"]));
        Ok(())
    }

    #[test]
    fn nan_fails_and_blank_batches_warn() -> Result<(), GridError> {
        let dir = tempfile::tempdir().map_err(|e| GridError::Write { path: "tmp".into(), source: e.into() })?;
        let path = dir.path().join("grid.png");
        let mut features = vec![0.0f32; 4 * 16];
        let targets = BatchTargets::Classes(vec![0, 1, 0, 1]);
        let check = sample_grid(&features, &[1, 4, 4], &targets, &classes(2), &path)?;
        assert_eq!((check.status, check.measured["blank"].as_u64()), (CheckStatus::Warn, Some(4)));
        features[5] = f32::NAN;
        let check = sample_grid(&features, &[1, 4, 4], &targets, &classes(2), &path)?;
        assert_eq!(check.status, CheckStatus::Fail);
        assert_eq!(decode(&path).get_pixel(PAD + 16, PAD + 16), &NON_FINITE);
        Ok(())
    }

    #[test]
    fn tables_are_summarized_not_drawn() -> Result<(), GridError> {
        let dir = tempfile::tempdir().map_err(|e| GridError::Write { path: "tmp".into(), source: e.into() })?;
        let path = dir.path().join("never.png");
        let check = sample_grid(&[1.0, -1.0, 3.0, 5.0], &[2], &BatchTargets::Classes(vec![0, 1]), &classes(2), &path)?;
        assert_eq!(check.status, CheckStatus::Pass);
        assert_eq!(check.measured["skipped"], true);
        assert_eq!(check.measured["max"], 5.0);
        assert!(!path.exists());
        Ok(())
    }

    #[test]
    fn large_batches_are_cut() -> Result<(), GridError> {
        let dir = tempfile::tempdir().map_err(|e| GridError::Write { path: "tmp".into(), source: e.into() })?;
        let path = dir.path().join("big.png");
        let n = 300;
        let features: Vec<f32> = (0..n * 4).map(|v| (v % 7) as f32).collect();
        let check = sample_grid(&features, &[1, 2, 2], &BatchTargets::Classes(vec![0; n]), &classes(1), &path)?;
        assert_eq!((check.measured["shown"].as_u64(), check.measured["batch_size"].as_u64()), (Some(100), Some(300)));
        assert_eq!(decode(&path).width(), 10 * (64 + PAD) + PAD);
        Ok(())
    }

    #[test]
    fn bad_input_is_an_error() {
        let path = Path::new("unused.png");
        let err = sample_grid(&[0.0; 5], &[1, 2, 2], &BatchTargets::Classes(vec![0]), &classes(1), path);
        assert!(matches!(err, Err(GridError::Shape { values: 5, labels: 1, .. })), "{err:?}");
        let err = sample_grid(
            &[0.0; 4],
            &[1, 2, 2],
            &BatchTargets::Classes(vec![0]),
            &classes(1),
            Path::new("/nonexistent/dir/x.png"),
        );
        assert!(matches!(err, Err(GridError::Write { .. })), "{err:?}");
    }
}
