//! Seeded randomness that does not depend on the version of `rand`.
//!
//! Generated datasets, epoch orders and augmentations must be the same on every run and machine,
//! and a resumed run must see exactly what an uninterrupted one would. `rand`'s distribution code
//! (`random_range`, `shuffle`, `random::<f32>`) is free to change between releases, so everything here
//! is built only on the raw ChaCha8 output words, whose stream is fixed by the cipher's definition.
//!
//! Where a ChaCha8 key schedule is more than is needed (turning a seed and a step into another
//! seed, hashing, test tables), [`mix64`] and [`SplitMix64`] give values fixed by their definition
//! too. They are public so that the other crates share this one definition rather than copies.

use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Domain tags keep the streams drawn for different purposes apart even for equal seeds.
pub(crate) const DOMAIN_GENERATE: u64 = 0x6765_6e65_7261_7465; // "generate"
/// Domain of the per-epoch sample order.
pub(crate) const DOMAIN_ORDER: u64 = 0x6f72_6465_7200_0000; // "order"
/// Domain of the per-sample augmentation draws.
pub(crate) const DOMAIN_AUGMENT: u64 = 0x6175_676d_656e_7400; // "augment"

/// SplitMix64's output function: a bijection of `u64` in which every input bit affects every output
/// bit (the form of MurmurHash3's finalizer with Stafford's "Mix13" shifts and constants).
///
/// It turns structured numbers (a seed and a step, a row index, a hash state and a value) into
/// unrelated ones with a few multiplications, and its values never change between releases of any
/// crate, so results derived from it stay reproducible. `mix64(0)` is 0: offset or combine inputs
/// (as [`SplitMix64`] does) when 0 is a likely input.
pub fn mix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The SplitMix64 generator (Steele, Lea and Flood, 2014): a 64-bit state advanced by
/// [`SplitMix64::GAMMA`] and passed through [`mix64`].
///
/// A stream of well-mixed words from a seed, for cheap uses such as random projections and test
/// data, with a fixed definition: seed 0 gives the published reference values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    /// The last state; the next output is `mix64(state + GAMMA)`.
    state: u64,
}

impl SplitMix64 {
    /// The increment of the state: 2⁶⁴ divided by the golden ratio, rounded to an odd number, so
    /// that the states visit every `u64` before repeating.
    pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    /// A generator whose first output is `mix64(seed + GAMMA)`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next word of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(Self::GAMMA);
        mix64(self.state)
    }
}

/// A ChaCha8 generator keyed by a domain tag and three numbers (seed, epoch, position, …).
///
/// Distinct keys give independent streams, so this is a pure function of its arguments and costs no
/// allocation.
pub(crate) fn rng_for(domain: u64, a: u64, b: u64, c: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    for (chunk, word) in key.chunks_exact_mut(8).zip([domain, a, b, c]) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// A uniform `f32` in `[0, 1)` with 24 random bits.
pub(crate) fn unit_f32<R: RngCore + ?Sized>(rng: &mut R) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A uniform integer in `0..n` (Lemire's multiply-and-reject method, without bias).
///
/// `n` must be at least 1.
pub(crate) fn below<R: RngCore + ?Sized>(rng: &mut R, n: u64) -> u64 {
    debug_assert!(n > 0);
    let mut m = u128::from(rng.next_u64()) * u128::from(n);
    if (m as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (m as u64) < threshold {
            m = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (m >> 64) as u64
}

/// Two independent standard normal values (Box–Muller).
pub(crate) fn gaussian_pair<R: RngCore + ?Sized>(rng: &mut R) -> (f32, f32) {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - unit_f32(rng);
    let u2 = unit_f32(rng);
    let radius = (-2.0 * u1.ln()).sqrt();
    let angle = std::f32::consts::TAU * u2;
    (radius * angle.cos(), radius * angle.sin())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_values() {
        // The first outputs of Vigna's reference splitmix64.c for seed 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(
            [rng.next_u64(), rng.next_u64(), rng.next_u64()],
            [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f]
        );
        // Values of the copies this function replaced, which seeded data and training.
        assert_eq!([mix64(0), mix64(1), mix64(42)], [0, 0x5692_161d_100b_05e5, 0xa759_ea27_d472_7622]);
        assert_eq!(mix64(u64::MAX), 0xb4d0_55fc_f2cb_bd7b);
    }

    #[test]
    fn streams_are_pure_and_distinct() {
        let a = rng_for(DOMAIN_ORDER, 1, 2, 3).next_u64();
        assert_eq!(a, rng_for(DOMAIN_ORDER, 1, 2, 3).next_u64());
        assert_ne!(a, rng_for(DOMAIN_ORDER, 1, 2, 4).next_u64());
        assert_ne!(a, rng_for(DOMAIN_AUGMENT, 1, 2, 3).next_u64());
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = rng_for(DOMAIN_GENERATE, 0, 0, 0);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = below(&mut rng, 7);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(below(&mut rng, 1), 0);
    }

    #[test]
    fn gaussian_has_unit_moments() {
        let mut rng = rng_for(DOMAIN_GENERATE, 9, 9, 9);
        let n = 20_000;
        let (mut sum, mut sq) = (0.0f64, 0.0f64);
        for _ in 0..n / 2 {
            let (a, b) = gaussian_pair(&mut rng);
            assert!(a.is_finite() && b.is_finite());
            sum += f64::from(a) + f64::from(b);
            sq += f64::from(a * a) + f64::from(b * b);
        }
        let mean = sum / n as f64;
        let var = sq / n as f64 - mean * mean;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn unit_is_in_range() {
        let mut rng = rng_for(DOMAIN_GENERATE, 1, 1, 1);
        for _ in 0..1000 {
            let u = unit_f32(&mut rng);
            assert!((0.0..1.0).contains(&u));
        }
    }
}
