//! Data augmentation of single samples.
//!
//! Augmentation is the cheapest regularizer for images: a flipped, shifted or slightly rotated
//! image is still the same class. All geometric transforms are composed into one inverse mapping
//! from output pixel to input position, so each output pixel is sampled once (bilinearly when there
//! is a rotation, exactly otherwise) and nothing is allocated. Areas that come from outside the
//! image are filled with 0, which after normalization is the channel mean. The caller supplies the
//! RNG; [`crate::batch`] seeds one per sample from (seed, epoch, position) so that augmentation is a
//! pure function and a resumed run sees the same images.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::rng::{below, gaussian_pair, unit_f32};
use crate::types::Layout;

/// Which random transforms to apply; the default applies none.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Augment {
    /// Flip images left-right with probability 0.5.
    pub hflip: bool,
    /// Pad images with this many zero pixels on each side, then crop back to the original size at a
    /// random offset (a random shift of up to this many pixels).
    pub crop_padding: usize,
    /// Rotate images by an angle drawn uniformly from `±rotate_degrees`.
    pub rotate_degrees: f32,
    /// Add Gaussian noise with this standard deviation to every value (images and tables).
    pub noise_std: f32,
}

impl Augment {
    /// The standard image augmentation, `regimen train --augment`: random horizontal flips, random
    /// shifts of up to 2 pixels (crops after 2-pixel padding) and rotations of up to 10 degrees, no
    /// noise.
    ///
    /// These mild transforms keep an image's class on small images such as CIFAR's and regularize
    /// with little tuning. The preset lives here, next to the transforms, so that the command line,
    /// library users and the documentation mean the same thing by it.
    pub fn standard() -> Augment {
        Augment { hflip: true, crop_padding: 2, rotate_degrees: 10.0, noise_std: 0.0 }
    }

    /// True when no transform is enabled, so samples can be copied as they are.
    pub fn is_identity(&self) -> bool {
        !self.hflip && self.crop_padding == 0 && self.rotate_degrees == 0.0 && self.noise_std == 0.0
    }

    /// True when a geometric (image-only) transform is enabled.
    fn is_geometric(&self) -> bool {
        self.hflip || self.crop_padding > 0 || self.rotate_degrees != 0.0
    }
}

/// Writes an augmented copy of `sample` (of shape `shape`) into `out`.
///
/// Images (`[channels, height, width]`) get the flip, crop and rotation, then noise; other shapes
/// only get noise. Draws from `rng` in a fixed order, so the result is a pure function of the RNG's
/// state.
///
/// # Panics
///
/// When `out` and `sample` differ in length, or an image sample does not hold
/// `channels * height * width` values (bugs in the caller).
pub fn augment_into(sample: &[f32], shape: &[usize], aug: &Augment, rng: &mut impl Rng, out: &mut [f32]) {
    assert_eq!(sample.len(), out.len(), "augment_into: output length differs from the sample's");
    match Layout::of(shape) {
        Layout::Image { channels, height, width } if aug.is_geometric() => {
            let flip = aug.hflip && unit_f32(rng) < 0.5;
            let dx = shift(rng, aug.crop_padding);
            let dy = shift(rng, aug.crop_padding);
            let angle = if aug.rotate_degrees != 0.0 {
                (2.0 * unit_f32(rng) - 1.0) * aug.rotate_degrees.to_radians()
            } else {
                0.0
            };
            let geometry = Geometry { channels, height, width, flip, dx, dy, angle };
            geometry.warp(sample, out);
        }
        _ => out.copy_from_slice(sample),
    }
    if aug.noise_std > 0.0 {
        for pair in out.chunks_mut(2) {
            let (a, b) = gaussian_pair(rng);
            for (v, n) in pair.iter_mut().zip([a, b]) {
                *v += aug.noise_std * n;
            }
        }
    }
}

/// A uniform integer shift in `-padding..=padding` (no draw when `padding` is 0).
fn shift(rng: &mut impl Rng, padding: usize) -> f32 {
    if padding == 0 {
        return 0.0;
    }
    let p = padding as u64;
    below(rng, 2 * p + 1) as f32 - p as f32
}

/// One draw of the geometric transforms: output = rotate(crop(flip(input))).
struct Geometry {
    channels: usize,
    height: usize,
    width: usize,
    flip: bool,
    dx: f32,
    dy: f32,
    angle: f32,
}

impl Geometry {
    /// Samples every output pixel from its inverse-mapped input position.
    fn warp(&self, input: &[f32], out: &mut [f32]) {
        let (h, w) = (self.height, self.width);
        let plane = h * w;
        let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
        let (sin, cos) = self.angle.sin_cos();
        for y in 0..h {
            for x in 0..w {
                // Undo the rotation about the centre, then the crop shift, then the flip.
                let (ox, oy) = (x as f32 - cx, y as f32 - cy);
                let (rx, ry) = if self.angle == 0.0 {
                    (x as f32, y as f32)
                } else {
                    (cos * ox + sin * oy + cx, -sin * ox + cos * oy + cy)
                };
                let sx = rx + self.dx;
                let sy = ry + self.dy;
                let sx = if self.flip { w as f32 - 1.0 - sx } else { sx };
                for c in 0..self.channels {
                    out[c * plane + y * w + x] = sample_bilinear(&input[c * plane..(c + 1) * plane], h, w, sx, sy);
                }
            }
        }
    }
}

/// Bilinear interpolation of a `h x w` plane at `(x, y)`, 0 outside; exact at integer positions.
fn sample_bilinear(plane: &[f32], h: usize, w: usize, x: f32, y: f32) -> f32 {
    let x0 = x.floor();
    let y0 = y.floor();
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f32, yi: f32| -> f32 {
        if xi < 0.0 || yi < 0.0 || xi >= w as f32 || yi >= h as f32 {
            0.0
        } else {
            plane[yi as usize * w + xi as usize]
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + if fx > 0.0 { at(x0 + 1.0, y0) * fx } else { 0.0 };
    if fy > 0.0 {
        let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + if fx > 0.0 { at(x0 + 1.0, y0 + 1.0) * fx } else { 0.0 };
        top * (1.0 - fy) + bottom * fy
    } else {
        top
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{DOMAIN_AUGMENT, rng_for};
    use proptest::prelude::*;

    /// A 1x3x4 image whose pixel (y, x) is `10 y + x + 1`.
    fn image() -> Vec<f32> {
        (0..3).flat_map(|y| (0..4).map(move |x| (10 * y + x + 1) as f32)).collect()
    }

    fn run(aug: &Augment, seed: u64) -> Vec<f32> {
        let mut out = vec![0.0; 12];
        augment_into(&image(), &[1, 3, 4], aug, &mut rng_for(DOMAIN_AUGMENT, seed, 0, 0), &mut out);
        out
    }

    #[test]
    fn identity_copies() {
        let aug = Augment::default();
        assert!(aug.is_identity());
        assert_eq!(run(&aug, 0), image());
    }

    #[test]
    fn standard_preset_moves_images_and_leaves_tables_alone() {
        let aug = Augment::standard();
        assert!(aug.is_geometric() && aug.noise_std == 0.0);
        let moved = (0..20).filter(|&seed| run(&aug, seed) != image()).count();
        assert!(moved > 10, "{moved} of 20 images changed");
        let mut out = vec![0.0; 12];
        augment_into(&image(), &[12], &aug, &mut rng_for(DOMAIN_AUGMENT, 0, 0, 0), &mut out);
        assert_eq!(out, image());
    }

    #[test]
    fn flip_mirrors_rows_about_half_the_time() {
        let aug = Augment { hflip: true, ..Augment::default() };
        assert!(!aug.is_identity());
        let flipped: Vec<f32> = image().chunks(4).flat_map(|r| r.iter().rev().copied().collect::<Vec<_>>()).collect();
        let mut flips = 0;
        for seed in 0..200 {
            let out = run(&aug, seed);
            if out == flipped {
                flips += 1;
            } else {
                assert_eq!(out, image());
            }
        }
        assert!((70..130).contains(&flips), "{flips}");
    }

    #[test]
    fn crop_shifts_with_zero_fill() {
        let aug = Augment { crop_padding: 1, ..Augment::default() };
        let mut seen_shift = false;
        for seed in 0..50 {
            let out = run(&aug, seed);
            let original = image();
            // Every output value is either 0 (padding) or a pixel of the input.
            assert!(out.iter().all(|v| *v == 0.0 || original.contains(v)));
            seen_shift |= out != original;
        }
        assert!(seen_shift);
        let geometry = Geometry { channels: 1, height: 3, width: 4, flip: false, dx: 1.0, dy: 0.0, angle: 0.0 };
        let mut out = vec![0.0; 12];
        geometry.warp(&image(), &mut out);
        assert_eq!(&out[..4], &[2.0, 3.0, 4.0, 0.0]);
    }

    #[test]
    fn rotation_by_half_turn_reverses_the_image() {
        let geometry =
            Geometry { channels: 1, height: 3, width: 4, flip: false, dx: 0.0, dy: 0.0, angle: std::f32::consts::PI };
        let mut out = vec![0.0; 12];
        geometry.warp(&image(), &mut out);
        let reversed: Vec<f32> = image().into_iter().rev().collect();
        for (a, b) in out.iter().zip(&reversed) {
            assert!((a - b).abs() < 1e-3, "{out:?}");
        }
    }

    #[test]
    fn small_rotation_keeps_values_in_range() {
        let aug = Augment { rotate_degrees: 15.0, ..Augment::default() };
        let out = run(&aug, 3);
        assert_ne!(out, image());
        assert!(out.iter().all(|v| (0.0..=24.0).contains(v)));
    }

    #[test]
    fn noise_applies_to_tables_too() {
        let aug = Augment { noise_std: 0.5, hflip: true, ..Augment::default() };
        let sample = [1.0, 2.0, 3.0];
        let mut out = [0.0; 3];
        augment_into(&sample, &[3], &aug, &mut rng_for(DOMAIN_AUGMENT, 1, 0, 0), &mut out);
        assert_ne!(out, sample);
        assert!(out.iter().zip(&sample).all(|(o, s)| (o - s).abs() < 4.0));
    }

    #[test]
    fn channels_share_one_transform() {
        let aug = Augment { hflip: true, crop_padding: 2, rotate_degrees: 20.0, noise_std: 0.0 };
        let one = image();
        let two: Vec<f32> = one.iter().chain(&one).copied().collect();
        let mut out = vec![0.0; 24];
        augment_into(&two, &[2, 3, 4], &aug, &mut rng_for(DOMAIN_AUGMENT, 5, 0, 0), &mut out);
        assert_eq!(out[..12], out[12..]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any settings give finite values, and the same RNG state gives the same result.
        #[test]
        fn augmentation_is_finite_and_deterministic(
            hflip in any::<bool>(),
            crop_padding in 0usize..6,
            rotate_degrees in 0.0f32..180.0,
            noise_std in 0.0f32..2.0,
            seed in any::<u64>(),
        ) {
            let aug = Augment { hflip, crop_padding, rotate_degrees, noise_std };
            let a = run(&aug, seed);
            prop_assert!(a.iter().all(|v| v.is_finite()));
            prop_assert_eq!(a, run(&aug, seed));
        }
    }
}
