//! Adam and AdamW as one pass over a parameter, its gradient and both moments.
//!
//! Burn's Adam is about a dozen whole-tensor operations per parameter, each with a fresh output;
//! this is the same arithmetic, in the same order per element, in a single loop that updates the
//! moments in place.

use rayon::prelude::*;

/// The hyperparameters of one Adam step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// Learning rate.
    pub learning_rate: f32,
    /// Decay of the first moment.
    pub beta_1: f32,
    /// Decay of the second moment.
    pub beta_2: f32,
    /// Added to the denominator.
    pub epsilon: f32,
    /// The step number after this update (1 for the first step), for the bias corrections.
    pub time: i32,
    /// L2 penalty added to the gradient (Adam's weight decay); 0 for none.
    pub l2: f32,
    /// Decoupled decay applied to the parameter before the update (AdamW); 0 for none.
    pub decoupled_decay: f32,
}

/// Elements per parallel task: large enough that scheduling costs nothing next to the arithmetic.
const CHUNK: usize = 1 << 14;

/// Updates `param`, `moment_1` and `moment_2` in place from `grad`.
///
/// The update is `m = β₁·m + (1−β₁)·g`, `v = β₂·v + (1−β₂)·g²` (on the first step the moments start
/// from zero) and `p −= lr · m · c / (sqrt(v) + ε·sqrt(1−β₂ᵗ))` with `c = sqrt(1−β₂ᵗ) / (1−β₁ᵗ)`:
/// the bias-corrected Adam step in the form Burn computes it.
pub fn adam_step(step: &AdamStep, param: &mut [f32], grad: &[f32], moment_1: &mut [f32], moment_2: &mut [f32]) {
    assert!(
        param.len() == grad.len() && grad.len() == moment_1.len() && grad.len() == moment_2.len(),
        "adam_step: the parameter, gradient and moments differ in length"
    );
    let correction_2 = (1.0 - step.beta_2.powi(step.time)).sqrt();
    let coefficients = Coefficients {
        beta_1: step.beta_1,
        beta_2: step.beta_2,
        keep_1: 1.0 - step.beta_1,
        keep_2: 1.0 - step.beta_2,
        factor: correction_2 / (1.0 - step.beta_1.powi(step.time)),
        epsilon: step.epsilon * correction_2,
        learning_rate: step.learning_rate,
        decay: 1.0 - step.learning_rate * step.decoupled_decay,
        l2: step.l2,
    };
    param
        .par_chunks_mut(CHUNK)
        .zip(grad.par_chunks(CHUNK))
        .zip(moment_1.par_chunks_mut(CHUNK))
        .zip(moment_2.par_chunks_mut(CHUNK))
        .for_each(|(((p, g), m), v)| update_chunk(&coefficients, p, g, m, v));
}

/// What every element's update needs, computed once per step.
struct Coefficients {
    beta_1: f32,
    beta_2: f32,
    keep_1: f32,
    keep_2: f32,
    factor: f32,
    epsilon: f32,
    learning_rate: f32,
    decay: f32,
    l2: f32,
}

/// One chunk, with 256-bit vectors where the CPU has AVX2. Multiplies and adds stay separate (no
/// FMA), so the result is the same bits with or without it.
fn update_chunk(c: &Coefficients, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { update_chunk_avx2(c, p, g, m, v) };
    }
    update_chunk_portable(c, p, g, m, v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn update_chunk_avx2(c: &Coefficients, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    update_chunk_portable(c, p, g, m, v)
}

/// The loop, written over zipped slices (no bounds checks) with the weight-decay branch outside it,
/// so that it vectorizes.
#[inline(always)]
fn update_chunk_portable(c: &Coefficients, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let elements = p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut());
    let apply = |p: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
        *m = *m * c.beta_1 + g * c.keep_1;
        *v = *v * c.beta_2 + g * g * c.keep_2;
        let update = *m * c.factor / (v.sqrt() + c.epsilon);
        *p = *p * c.decay - c.learning_rate * update;
    };
    if c.l2 != 0.0 {
        for (((p, &g), m), v) in elements {
            let g = g + c.l2 * *p;
            apply(p, g, m, v);
        }
    } else {
        for (((p, &g), m), v) in elements {
            apply(p, g, m, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::values;

    /// Adam as textbook whole-array operations, in f64.
    fn reference(step: &AdamStep, p: &[f32], g: &[f32], m: &[f32], v: &[f32]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (b1, b2, t) = (step.beta_1 as f64, step.beta_2 as f64, step.time);
        let g: Vec<f64> = g.iter().zip(p).map(|(&g, &p)| g as f64 + step.l2 as f64 * p as f64).collect();
        let m: Vec<f64> = m.iter().zip(&g).map(|(&m, g)| b1 * m as f64 + (1.0 - b1) * g).collect();
        let v: Vec<f64> = v.iter().zip(&g).map(|(&v, g)| b2 * v as f64 + (1.0 - b2) * g * g).collect();
        let p = (0..p.len())
            .map(|i| {
                let m_hat = m[i] / (1.0 - b1.powi(t));
                let v_hat = v[i] / (1.0 - b2.powi(t));
                let lr = step.learning_rate as f64;
                p[i] as f64 * (1.0 - lr * step.decoupled_decay as f64)
                    - lr * m_hat / (v_hat.sqrt() + step.epsilon as f64)
            })
            .collect();
        (p, m, v)
    }

    #[test]
    fn matches_textbook_adam_and_adamw() {
        for (l2, decoupled, time) in [(0.0, 0.0, 1), (0.0, 0.0, 7), (1e-2, 0.0, 3), (0.0, 1e-2, 200)] {
            let step = AdamStep {
                learning_rate: 1e-3,
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-8,
                time,
                l2,
                decoupled_decay: decoupled,
            };
            let n = CHUNK + 77;
            let mut p = values(n, 1);
            let g = values(n, 2);
            let mut m: Vec<f32> = values(n, 3).iter().map(|v| v * 0.1).collect();
            let mut v: Vec<f32> = values(n, 4).iter().map(|v| v * v * 0.01).collect();
            let (ep, em, ev) = reference(&step, &p, &g, &m, &v);
            adam_step(&step, &mut p, &g, &mut m, &mut v);
            for i in 0..n {
                assert!((p[i] as f64 - ep[i]).abs() < 1e-6, "param[{i}]: {} vs {}", p[i], ep[i]);
                assert!((m[i] as f64 - em[i]).abs() < 1e-6 && (v[i] as f64 - ev[i]).abs() < 1e-7);
            }
        }
    }
}
