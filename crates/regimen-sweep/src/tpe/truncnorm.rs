//! The standard normal distribution truncated to `[a, b]`: sampling and log densities.
//!
//! Written on `libm` (musl's portable `erfc`, `exp`, `log`), not the platform's maths library, so
//! that TPE's suggestions are the same bit for bit on every machine. Tails are handled in log
//! space, as Optuna's `_truncnorm.py` does, because a kernel far from a candidate has a density
//! that underflows `f64`.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// `ln(sqrt(2 pi))`.
pub(crate) const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// The standard normal CDF.
pub(crate) fn ndtr(z: f64) -> f64 {
    0.5 * libm::erfc(-z * FRAC_1_SQRT_2)
}

/// `ln(ndtr(z))`, accurate in both tails.
pub(crate) fn log_ndtr(z: f64) -> f64 {
    if z > 6.0 {
        libm::log1p(-ndtr(-z))
    } else if z > -20.0 {
        libm::log(ndtr(z))
    } else {
        // Asymptotic series of Mills' ratio: ndtr(z) ~ phi(z) / -z * (1 - 1/z^2 + 3/z^4 - ...).
        let r = 1.0 / (z * z);
        let series = 1.0 - r * (1.0 - 3.0 * r * (1.0 - 5.0 * r * (1.0 - 7.0 * r)));
        -0.5 * z * z - libm::log(-z) - LN_SQRT_2PI + libm::log(series)
    }
}

/// `ln(exp(x) - exp(y))` for `x >= y`.
fn log_diff_exp(x: f64, y: f64) -> f64 {
    if y == f64::NEG_INFINITY {
        x
    } else if x <= y {
        f64::NEG_INFINITY
    } else {
        x + libm::log1p(-libm::exp(y - x))
    }
}

/// `ln(ndtr(b) - ndtr(a))`: the log of the standard normal mass of `[a, b]`.
pub(crate) fn log_gauss_mass(a: f64, b: f64) -> f64 {
    if b <= 0.0 {
        log_diff_exp(log_ndtr(b), log_ndtr(a))
    } else if a > 0.0 {
        log_diff_exp(log_ndtr(-a), log_ndtr(-b))
    } else {
        // The interval holds the centre: its mass is at least what is left by both tails.
        libm::log1p(-ndtr(a) - ndtr(-b))
    }
}

/// The standard normal quantile function (Acklam's approximation, polished by one Halley step to
/// full double precision).
pub(crate) fn ndtri(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const P_LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < P_LOW {
        tail(libm::sqrt(-2.0 * libm::log(p)))
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail(libm::sqrt(-2.0 * libm::log1p(-p)))
    };
    let e = ndtr(x) - p;
    let u = e * libm::sqrt(2.0 * PI) * libm::exp(0.5 * x * x);
    x - u / (1.0 + 0.5 * x * u)
}

/// A standard normal truncated to `[a, b]`, drawn by inverting its CDF at `u` in `[0, 1)`.
pub(crate) fn sample(a: f64, b: f64, u: f64) -> f64 {
    if a > 0.0 {
        // The right tail is computed as the mirror of the left, where the CDF keeps its precision.
        return -sample(-b, -a, 1.0 - u);
    }
    let (pa, pb) = (ndtr(a), ndtr(b));
    ndtri(pa + u * (pb - pa)).clamp(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn known_values() {
        // Reference values from scipy.special.
        assert!(close(ndtr(1.0), 0.841_344_746_068_542_9, 1e-15));
        assert!(close(ndtri(0.975), 1.959_963_984_540_054, 1e-14));
        assert!(close(ndtri(1e-10), -6.361_340_902_404_056, 1e-12));
        assert!(close(ndtri(1.0 - 1e-10), -ndtri(1e-10), 1e-6));
        assert!(close(log_ndtr(-40.0), -804.608_442_013_753_8, 1e-13));
        assert!(close(log_ndtr(-10.0), -53.231_285_150_512_26, 1e-13));
        assert!(close(log_ndtr(10.0), -7.619_853_024_160_527e-24, 1e-8));
        // ndtr(1) - ndtr(-1).
        assert!(close(log_gauss_mass(-1.0, 1.0), libm::log(0.682_689_492_137_085_9), 1e-14));
        assert!(close(log_gauss_mass(30.0, 31.0), log_gauss_mass(-31.0, -30.0), 1e-14));
        assert!(log_gauss_mass(30.0, 31.0).is_finite());
        for p in [1e-300, 1e-20, 0.01, 0.3, 0.5, 0.7, 0.99] {
            assert!(close(ndtr(ndtri(p)), p, 1e-12), "{p}");
        }
    }

    #[test]
    fn samples_stay_inside_and_follow_the_cdf() {
        for (a, b) in [(-1.0, 1.0), (-100.0, 0.01), (-0.5, 3.0), (2.0, 5.0), (-5.0, -2.0)] {
            let n = 1000;
            let mut below_mid = 0;
            let (pa, pb) = (ndtr(a), ndtr(b));
            let mid = ndtri(0.5 * (pa + pb));
            for i in 0..n {
                let x = sample(a, b, (i as f64 + 0.5) / n as f64);
                assert!((a..=b).contains(&x), "{a} {b} {x}");
                if x < mid {
                    below_mid += 1;
                }
            }
            assert!((490..=510).contains(&below_mid), "{a} {b}: {below_mid}");
        }
    }
}
