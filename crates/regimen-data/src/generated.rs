//! Built-in datasets generated on the fly: nothing to download, identical on every machine.
//!
//! `shapes` is a small but real vision task: 28x28 grayscale images of five shape classes at random
//! positions, sizes and rotations, with Gaussian pixel noise. Shapes are rasterized from signed
//! distance functions with a one-pixel soft edge (anti-aliasing), so a shape looks the same at any
//! sub-pixel position. Because position and rotation vary, a small CNN reaches near-perfect accuracy
//! while an MLP, which must learn every position separately, stays clearly below it, and
//! augmentation (crops, rotations) visibly helps with little data. `spirals` is the classic
//! three-arm 2-D spiral, the smallest task on which a linear model fails and an MLP succeeds.
//! `more-shapes` draws four other shapes the same way: a different task for a model pretrained on
//! `shapes` to transfer to.
//!
//! Both generators draw from ChaCha8 through version-independent helpers, so the data depends only on the seed.
//! Values are rounded to a fixed grid (pixels to 8-bit levels, points to 1/4096) so that a last-bit
//! difference in a platform's `sin` or `ln` cannot change the data or its fingerprint.

use rand_chacha::ChaCha8Rng;

use crate::error::DataError;
use crate::rng::{DOMAIN_GENERATE, gaussian_pair, rng_for, unit_f32};
use crate::types::{Samples, Source, Targets, Task};

/// Names of the built-in datasets accepted by [`builtin`].
pub const BUILTIN_DATASETS: &[&str] = &["shapes", "more-shapes", "spirals"];

/// The fixed seed of the built-in datasets, so that their data and fingerprint never change.
pub const GENERATION_SEED: u64 = 20_240_601;

/// Default number of samples of `shapes`.
pub const SHAPES_DEFAULT_SIZE: usize = 10_000;

/// Default number of samples of `spirals`.
pub const SPIRALS_DEFAULT_SIZE: usize = 3_000;

/// Class names of `shapes`, in label order.
pub const SHAPE_CLASSES: [&str; 5] = ["circle", "ring", "square", "triangle", "cross"];

/// Class names of `more-shapes`, in label order.
pub const MORE_SHAPE_CLASSES: [&str; 4] = ["ellipse", "hexagon", "frame", "half-disc"];

/// Side of a `shapes` image in pixels.
const SIDE: usize = 28;

/// Standard deviation of the Gaussian pixel noise of `shapes`.
const PIXEL_NOISE: f32 = 0.08;

/// Generates a built-in dataset by name with [`GENERATION_SEED`]; `size` overrides its default size.
pub fn builtin(name: &str, size: Option<usize>) -> Result<Source, DataError> {
    match name {
        "shapes" => Ok(shapes(size.unwrap_or(SHAPES_DEFAULT_SIZE), GENERATION_SEED)),
        "more-shapes" => Ok(more_shapes(size.unwrap_or(SHAPES_DEFAULT_SIZE), GENERATION_SEED)),
        "spirals" => Ok(spirals(size.unwrap_or(SPIRALS_DEFAULT_SIZE), GENERATION_SEED)),
        _ => Err(DataError::UnknownDataset { name: name.to_owned() }),
    }
}

/// Generates `size` grayscale `[1, 28, 28]` images with values in `[0, 1]`, classes balanced and
/// interleaved (sample `i` has class `i % 5`), deterministic in `seed`.
pub fn shapes(size: usize, seed: u64) -> Source {
    shape_images("shapes", &SHAPE_CLASSES, 0, size, rng_for(DOMAIN_GENERATE, seed, 1, 0))
}

/// Like [`shapes`], with the four shapes of [`MORE_SHAPE_CLASSES`] and a stream of its own.
pub fn more_shapes(size: usize, seed: u64) -> Source {
    let first = SHAPE_CLASSES.len();
    shape_images("more-shapes", &MORE_SHAPE_CLASSES, first, size, rng_for(DOMAIN_GENERATE, seed, 3, 0))
}

/// `size` images of the shapes `classes` names, which are [`signed_distance`]'s shapes `first..`.
fn shape_images(name: &str, classes: &[&str], first: usize, size: usize, mut rng: ChaCha8Rng) -> Source {
    let mut features = vec![0.0f32; size * SIDE * SIDE];
    let mut labels = Vec::with_capacity(size);
    for (i, image) in features.chunks_exact_mut(SIDE * SIDE).enumerate() {
        let class = i % classes.len();
        draw_shape(first + class, &mut rng, image);
        labels.push(class as u32);
    }
    Source {
        name: name.to_owned(),
        task: Task::Classification { classes: classes.iter().map(|c| (*c).to_owned()).collect() },
        data: Samples { shape: vec![1, SIDE, SIDE], features, targets: Targets::Classes(labels) },
        test: None,
    }
}

/// Draws one shape of class `class` into a 28x28 image.
fn draw_shape(class: usize, rng: &mut ChaCha8Rng, image: &mut [f32]) {
    let radius = 6.0 + 5.0 * unit_f32(rng);
    let margin = radius + 1.0;
    let span = SIDE as f32 - 2.0 * margin;
    let cx = margin + span * unit_f32(rng);
    let cy = margin + span * unit_f32(rng);
    let angle = std::f32::consts::TAU * unit_f32(rng);
    let (sin, cos) = angle.sin_cos();
    let background = 0.15 * unit_f32(rng);
    let foreground = 0.6 + 0.4 * unit_f32(rng);
    let inv_radius = 1.0 / radius;
    for (p, pixel) in image.iter_mut().enumerate() {
        let dx = (p % SIDE) as f32 + 0.5 - cx;
        let dy = (p / SIDE) as f32 + 0.5 - cy;
        // Into the shape's frame: rotate by -angle and scale to unit radius.
        let u = (cos * dx + sin * dy) * inv_radius;
        let v = (cos * dy - sin * dx) * inv_radius;
        let distance = signed_distance(class, u, v) * radius;
        let coverage = (0.5 - distance).clamp(0.0, 1.0);
        *pixel = background + (foreground - background) * coverage;
    }
    for pair in image.chunks_mut(2) {
        let (a, b) = gaussian_pair(rng);
        for (pixel, noise) in pair.iter_mut().zip([a, b]) {
            *pixel = quantize_u8(*pixel + PIXEL_NOISE * noise);
        }
    }
}

/// Rounds to the nearest of the 256 levels of an 8-bit image, clamped to `[0, 1]`.
fn quantize_u8(value: f32) -> f32 {
    (value.clamp(0.0, 1.0) * 255.0).round() / 255.0
}

/// Signed distance from `(u, v)` to a shape of unit radius centred at the origin: negative inside.
fn signed_distance(class: usize, u: f32, v: f32) -> f32 {
    match class {
        0 => (u * u + v * v).sqrt() - 0.9,
        1 => ((u * u + v * v).sqrt() - 0.7).abs() - 0.25,
        2 => sd_box(u, v, 0.8, 0.8),
        3 => sd_triangle(u, v, 0.9),
        4 => sd_box(u, v, 0.95, 0.3).min(sd_box(u, v, 0.3, 0.95)),
        // `more-shapes`: an ellipse (a distance scaled from the unit circle's, exact enough for a
        // one-pixel edge), a hexagon, a square frame and a half disc.
        5 => ((u / 0.95).hypot(v / 0.5) - 1.0) * 0.5,
        6 => sd_hexagon(u, v, 0.8),
        7 => sd_box(u, v, 0.75, 0.75).abs() - 0.18,
        _ => ((u * u + v * v).sqrt() - 0.95).max(v - 0.3),
    }
}

/// Signed distance to a regular hexagon with inradius `r` (Inigo Quilez's formula).
fn sd_hexagon(u: f32, v: f32, r: f32) -> f32 {
    let (kx, ky, kz) = (-0.866_025_4f32, 0.5f32, 0.577_350_3f32);
    let (mut x, mut y) = (u.abs(), v.abs());
    let fold = 2.0 * (kx * x + ky * y).min(0.0);
    x -= fold * kx;
    y -= fold * ky;
    x -= x.clamp(-kz * r, kz * r);
    y -= r;
    (x * x + y * y).sqrt() * y.signum()
}

/// Signed distance to an axis-aligned box with half-sides `hx`, `hy`.
fn sd_box(u: f32, v: f32, hx: f32, hy: f32) -> f32 {
    let qx = u.abs() - hx;
    let qy = v.abs() - hy;
    let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
    outside + qx.max(qy).min(0.0)
}

/// Signed distance to an equilateral triangle with half-side `h`, centred on its centroid
/// (Inigo Quilez's formula).
fn sd_triangle(u: f32, v: f32, h: f32) -> f32 {
    let k = 3.0f32.sqrt();
    let mut x = u.abs() - h;
    let mut y = v + h / k;
    if x + k * y > 0.0 {
        (x, y) = ((x - k * y) / 2.0, (-k * x - y) / 2.0);
    }
    x -= x.clamp(-2.0 * h, 0.0);
    -(x * x + y * y).sqrt() * y.signum()
}

/// Generates `size` points of the classic three-arm spiral (`[2]` features, classes "0", "1", "2"),
/// balanced and interleaved, deterministic in `seed`.
pub fn spirals(size: usize, seed: u64) -> Source {
    const ARMS: usize = 3;
    let mut rng = rng_for(DOMAIN_GENERATE, seed, 2, 0);
    let mut features = Vec::with_capacity(size * 2);
    let mut labels = Vec::with_capacity(size);
    for i in 0..size {
        let arm = i % ARMS;
        let r = unit_f32(&mut rng);
        let (noise, _) = gaussian_pair(&mut rng);
        let theta = 4.0 * arm as f32 + 4.0 * r + 0.2 * noise;
        let (sin, cos) = theta.sin_cos();
        features.push(quantize_grid(r * sin));
        features.push(quantize_grid(r * cos));
        labels.push(arm as u32);
    }
    Source {
        name: "spirals".to_owned(),
        task: Task::Classification { classes: (0..ARMS).map(|a| a.to_string()).collect() },
        data: Samples { shape: vec![2], features, targets: Targets::Classes(labels) },
        test: None,
    }
}

/// Rounds to a multiple of 1/4096.
fn quantize_grid(value: f32) -> f32 {
    (value * 4096.0).round() / 4096.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::fingerprint;

    fn class_counts(source: &Source) -> Vec<usize> {
        let mut counts = vec![0; source.task.num_outputs()];
        if let Targets::Classes(labels) = &source.data.targets {
            for &l in labels {
                counts[l as usize] += 1;
            }
        }
        counts
    }

    #[test]
    fn shapes_are_balanced_images_in_unit_range() {
        let s = shapes(500, 7);
        assert_eq!(s.data.shape, vec![1, 28, 28]);
        assert_eq!(s.data.len(), 500);
        assert_eq!(class_counts(&s), vec![100; 5]);
        assert!(s.data.features.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(s.test.is_none());
    }

    #[test]
    fn shapes_are_deterministic_in_the_seed() {
        assert_eq!(shapes(50, 3), shapes(50, 3));
        assert_ne!(shapes(50, 3).data.features, shapes(50, 4).data.features);
    }

    #[test]
    fn shapes_have_visible_foreground() {
        // Each image has a bright region (the shape) well above its mean: not just noise.
        let s = shapes(100, 1);
        for i in 0..s.data.len() {
            let row = s.data.row(i);
            let mean = row.iter().sum::<f32>() / row.len() as f32;
            let bright = row.iter().filter(|&&v| v > 0.5).count();
            assert!(bright >= 20, "sample {i}: {bright} bright pixels");
            assert!(mean < 0.6, "sample {i}: mean {mean}");
        }
    }

    #[test]
    fn filled_shapes_cover_more_pixels() {
        let s = shapes(1000, 2);
        let mean_ink = |class: usize| {
            let rows: Vec<f32> = (class..s.data.len()).step_by(5).map(|i| s.data.row(i).iter().sum()).collect();
            rows.iter().sum::<f32>() / rows.len() as f32
        };
        assert!(mean_ink(0) > mean_ink(1), "a disc covers more than a ring");
        assert!(mean_ink(2) > mean_ink(4), "a square covers more than a cross");
    }

    #[test]
    fn signed_distances_are_negative_inside() {
        for class in 0..SHAPE_CLASSES.len() + MORE_SHAPE_CLASSES.len() {
            let inside = match class {
                1 => (0.7, 0.0),
                7 => (0.75, 0.0),
                _ => (0.0, 0.0),
            };
            assert!(signed_distance(class, inside.0, inside.1) < 0.0, "class {class}");
            assert!(signed_distance(class, 2.0, 2.0) > 0.0, "class {class}");
        }
        assert!(signed_distance(1, 0.0, 0.0) > 0.0, "a ring is hollow");
        assert!(signed_distance(7, 0.0, 0.0) > 0.0, "a frame is hollow");
        assert!(signed_distance(5, 0.0, 0.7) > 0.0, "an ellipse is narrow across");
        assert!(signed_distance(6, 0.0, 0.75) < 0.0 && signed_distance(6, 0.0, 0.85) > 0.0, "a hexagon's inradius");
    }

    #[test]
    fn builtin_fingerprint_is_stable() {
        // Pins the generated data: if this changes, every stored run's dataset identity changes too.
        // The values are quantized, so platform differences in `sin` or `ln` do not show here.
        let spirals = builtin("spirals", Some(300)).map(|s| fingerprint(&s));
        assert_eq!(spirals.ok().as_deref(), Some("d3cdcc9efeaca22fc594d81145073e11cf27fc0ded86e387e61199e82ca705a7"));
        let shapes = builtin("shapes", Some(200)).map(|s| fingerprint(&s));
        assert_eq!(shapes.ok().as_deref(), Some("732773844f207a3874fd4676ecbcc326d085ac5db8ec7ab1816ccf86d3a1abe1"));
        let more = builtin("more-shapes", Some(200)).map(|s| fingerprint(&s));
        assert_eq!(more.ok().as_deref(), Some("e132f3681b2790ba4f33a45fc819f5f5b58b67a867d3d421b28ccc049af3e27e"));
    }

    #[test]
    fn spirals_are_balanced_points() {
        let s = spirals(300, 5);
        assert_eq!(s.data.shape, vec![2]);
        assert_eq!(class_counts(&s), vec![100; 3]);
        assert!(s.data.features.iter().all(|v| v.abs() < 2.0));
        assert_eq!(s, spirals(300, 5));
    }

    #[test]
    fn builtin_names() {
        assert_eq!(builtin("shapes", Some(10)).map(|s| s.data.len()).ok(), Some(10));
        assert_eq!(builtin("spirals", None).map(|s| s.data.len()).ok(), Some(SPIRALS_DEFAULT_SIZE));
        let err = builtin("mnits", None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("shapes, more-shapes, spirals"), "{err}");
    }
}
