//! Model `scalar-deep`: f(w) = ½(w_L⋯w_1 − λ)² (docs/theory.md §2). The WGSL twin is
//! `shaders/scalar_deep.wgsl`.
//!
//! ∂f/∂w_j = (p − λ)·Π_{i≠j} wᵢ with p = Π wᵢ, from prefix and suffix products
//! (never p/w_j, which fails at w_j = 0). At a global minimum the Hessian is g gᵀ
//! with g_j = λ/w_j, so the sharpness is S = Σ(λ/w_j)², and GD can converge
//! there only if δ ≤ 2/S. S is smallest at the balanced minima, |wᵢ| = |λ|^{1/L},
//! so no trajectory converges for δ > δ_max = 2/(L|λ|^{2−2/L}).

use serde::{Deserialize, Serialize};

mod gpu;

use crate::error::{Error, Result};
use crate::models::{Assessment, Family, InitSpec, Lanes};
use crate::real::{Arith, Precision};
use crate::rng::TrajectoryRng;
use crate::shaders::{DeviceLimits, KernelPlan};
use crate::stopping::StopRule;

pub const MAX_LAYERS: u32 = 64;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScalarDeepSpec {
    /// L, the number of scalar layers.
    pub layers: u32,
    /// λ ≠ 0, the target.
    pub lambda: f64,
}

#[derive(Clone, Debug)]
pub struct ScalarDeep {
    pub layers: usize,
    pub lambda: f64,
}

/// Writes ∇f(w) into `gradient`; `work` (length L) holds the prefix products.
/// The kernel performs exactly these operations in this order.
#[inline(always)]
pub fn gradient<A: Arith>(lambda: A, w: &[A], gradient: &mut [A], work: &mut [A]) {
    // Each small depth gets its own copy with L a constant, so the loops
    // unroll (the same operations in the same order). Only L ≤ 8: inlined
    // into every pack engine copy, the L = 9…16 copies tripled this family's
    // compile time (LLVM spent 30 s on its copies, 9.6 s without them), and
    // dropping them made no difference measurable at L = 12 and 16.
    macro_rules! sized {
        ($($l:literal)*) => {
            match w.len() {
                $($l => gradient_sized(lambda, $l, w, gradient, work),)*
                layers => gradient_sized(lambda, layers, w, gradient, work),
            }
        };
    }
    sized!(1 2 3 4 5 6 7 8)
}

#[inline(always)]
fn gradient_sized<A: Arith>(lambda: A, layers: usize, w: &[A], gradient: &mut [A], work: &mut [A]) {
    let (w, gradient, work) = (&w[..layers], &mut gradient[..layers], &mut work[..layers]);
    let mut prefix = A::one();
    for i in 0..layers {
        work[i] = prefix;
        prefix = prefix * w[i];
    }
    let residual = prefix - lambda;
    let mut suffix = A::one();
    for j in (0..layers).rev() {
        gradient[j] = residual * (work[j] * suffix);
        suffix = suffix * w[j];
    }
}

impl ScalarDeep {
    pub fn new(spec: &ScalarDeepSpec) -> Result<ScalarDeep> {
        if spec.layers == 0 || spec.layers > MAX_LAYERS {
            return Err(Error::spec(format!(
                "model.layers is {}; give L from 1 to {MAX_LAYERS}",
                spec.layers
            )));
        }
        if !spec.lambda.is_finite() || spec.lambda == 0.0 {
            return Err(Error::spec(format!(
                "model.lambda is {}; give a finite target other than zero",
                spec.lambda
            )));
        }
        Ok(ScalarDeep {
            layers: spec.layers as usize,
            lambda: spec.lambda,
        })
    }

    /// δ_max = 2/(L|λ|^{2−2/L}): the sharpness of the balanced minima gives the
    /// largest step size at which any minimum is stable.
    pub fn step_size_max(&self) -> f64 {
        let l = self.layers as f64;
        2.0 / (l * self.lambda.abs().powf(2.0 - 2.0 / l))
    }

    /// wᵢ = |λ|^{1/L} + noise·N(0, 1), with w₁ carrying the sign of λ.
    pub fn balanced(&self, noise: f64, rng: &mut TrajectoryRng, out: &mut [f64]) {
        let magnitude = self.lambda.abs().powf(1.0 / self.layers as f64);
        for (i, w) in out.iter_mut().enumerate() {
            let base = if i == 0 {
                magnitude.copysign(self.lambda)
            } else {
                magnitude
            };
            *w = base + noise * rng.normal();
        }
    }

    /// Loss, S = Σ(λ/ŵᵢ)², and the sharpness at ŵ in closed form: the top
    /// eigenvalue of g gᵀ, ‖g‖² with g_j = Π_{i≠j} ŵᵢ (exact at p = λ; the
    /// (p − λ) part of the Hessian vanishes at convergence).
    pub fn assess(&self, w: &[f64]) -> Assessment {
        let product: f64 = w.iter().product();
        let mut prefix = vec![1.0; w.len()];
        for i in 1..w.len() {
            prefix[i] = prefix[i - 1] * w[i - 1];
        }
        let mut suffix = 1.0;
        let mut sharpness = 0.0;
        for j in (0..w.len()).rev() {
            sharpness += (prefix[j] * suffix).powi(2);
            suffix *= w[j];
        }
        let metric: f64 = w.iter().map(|wi| (self.lambda / wi).powi(2)).sum();
        Assessment {
            spectral_radius: f64::NAN,
            loss: 0.5 * (product - self.lambda).powi(2),
            metric,
            sharpness,
            minimizer: None,
            // A global minimum has p = λ; the slack covers an f32 stop at tol_grad.
            at_minimum: (product - self.lambda).abs() <= 1e-3 * self.lambda.abs(),
        }
    }

    pub fn theory(&self) -> serde_json::Value {
        serde_json::json!({
            "model": "scalar-deep",
            "layers": self.layers,
            "lambda": self.lambda,
            "metric": "S = Σ(λ/ŵᵢ)²",
            "bound": "S <= 2/step_size",
            "step_size_max": self.step_size_max(),
            "step_size_max_formula": "2/(L|λ|^(2−2/L))",
        })
    }
}

impl Family for ScalarDeep {
    type Spec = ScalarDeepSpec;
    const KIND: &'static str = "scalar-deep";
    /// A step's chain is the prefix and suffix products, so a pack needs
    /// lanes enough to hide its latency; AVX-512's 32 registers hold 128.
    const LANES: Lanes = Lanes {
        baseline: [32, 32],
        avx2: [32, 32],
        avx512: [128, 128],
    };

    fn build(spec: &ScalarDeepSpec) -> Result<Self> {
        ScalarDeep::new(spec)
    }

    fn dim(&self) -> usize {
        self.layers
    }

    fn loss(&self, theta: &[f64]) -> f64 {
        0.5 * (theta.iter().product::<f64>() - self.lambda).powi(2)
    }

    fn work_len(&self) -> usize {
        self.layers
    }

    /// Each factor w_i is a layer, w_1 first.
    fn layers(&self) -> Vec<std::ops::Range<usize>> {
        (0..self.layers).map(|i| i..i + 1).collect()
    }

    fn constants(&self) -> Vec<f64> {
        vec![self.lambda]
    }

    #[inline(always)]
    fn gradient<A: Arith>(
        &self,
        constants: &[A::Scalar],
        theta: &[A],
        grad: &mut [A],
        work: &mut [A],
    ) {
        gradient(A::splat(constants[0]), theta, grad, work);
    }

    fn assess(&self, theta: &[f64], _: u64) -> Assessment {
        ScalarDeep::assess(self, theta)
    }

    /// S ≤ 2/δ (docs/theory.md §2).
    fn bound(&self, step_size: f64) -> f64 {
        2.0 / step_size
    }

    fn step_size_max(&self) -> Option<f64> {
        Some(ScalarDeep::step_size_max(self))
    }

    fn theory(&self) -> serde_json::Value {
        ScalarDeep::theory(self)
    }

    fn kernel(&self, rule: &StopRule, _: DeviceLimits, precision: Precision) -> KernelPlan {
        gpu::kernel(self, rule, precision)
    }

    /// The prefix and suffix products and the residual, then the update.
    fn flops_per_step(&self) -> f64 {
        (6 * self.layers + 1) as f64
    }

    fn takes(&self, init: &InitSpec) -> bool {
        matches!(init, InitSpec::Balanced { .. })
    }

    fn draw(&self, init: &InitSpec, rng: &mut TrajectoryRng, out: &mut [f64]) {
        let InitSpec::Balanced { noise } = init else {
            unreachable!("scalar-deep draws only its balanced initialization")
        };
        self.balanced(*noise, rng, out)
    }

    /// One normal (one block) per layer.
    fn draw_blocks(&self, _: &InitSpec) -> usize {
        self.layers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(lambda: f64, w: &[f64]) -> f64 {
        0.5 * (w.iter().product::<f64>() - lambda).powi(2)
    }

    #[test]
    fn gradient_matches_finite_differences_in_f64() {
        let w = [0.7, -1.3, 0.4, 2.1, 0.0];
        let lambda = 1.7;
        let mut g = [0.0; 5];
        let mut work = [0.0; 5];
        gradient(lambda, &w, &mut g, &mut work);
        for j in 0..w.len() {
            let h = 1e-6;
            let (mut up, mut down) = (w, w);
            up[j] += h;
            down[j] -= h;
            let fd = (loss(lambda, &up) - loss(lambda, &down)) / (2.0 * h);
            assert!(
                (g[j] - fd).abs() < 1e-8 * (1.0 + fd.abs()),
                "j={j}: {} vs {fd}",
                g[j]
            );
        }
    }

    #[test]
    fn balanced_minimum_has_sharpness_two_over_step_size_max() {
        let m = ScalarDeep::new(&ScalarDeepSpec {
            layers: 5,
            lambda: -3.0,
        })
        .unwrap();
        let mut w = vec![0.0; 5];
        m.balanced(0.0, &mut TrajectoryRng::new(0, 0), &mut w);
        assert!((w.iter().product::<f64>() + 3.0).abs() < 1e-12);
        let a = m.assess(&w);
        assert!(a.loss < 1e-24);
        assert!((a.metric - 2.0 / m.step_size_max()).abs() < 1e-9 * a.metric);
        assert!((a.sharpness - a.metric).abs() < 1e-9 * a.metric);
    }

    #[test]
    fn bad_sizes_are_refused() {
        for (layers, lambda) in [(0, 1.0), (65, 1.0), (3, 0.0)] {
            assert!(ScalarDeep::new(&ScalarDeepSpec { layers, lambda }).is_err());
        }
    }
}
