//! Model `poly`: gradient descent on a 1-D polynomial (docs/theory.md §1).
//!
//! The default is f(x) = (x²+1)(x−1)²(x−2)² = x⁶ − 6x⁵ + 14x⁴ − 18x³ + 17x² − 12x + 4,
//! with minimizers x = 1 (f'' = 4, threshold δ ≤ 0.5) and x = 2 (f'' = 10,
//! threshold δ ≤ 0.2). The WGSL twin is `shaders/poly.wgsl`.

use nalgebra::{DMatrix, Schur};
use serde::{Deserialize, Serialize};

mod gpu;

use crate::error::{Error, Result};
use crate::labels::tick_label;
use crate::models::{Assessment, Edge, Family, InitSpec, Lanes};
use crate::real::{Arith, Pack, Precision};
use crate::shaders::{DeviceLimits, KernelPlan};
use crate::stopping::{Record, StopRule};

/// The paper's polynomial, ascending powers.
pub const PAPER_COEFFICIENTS: [f64; 7] = [4.0, -12.0, 17.0, -18.0, 14.0, -6.0, 1.0];

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolySpec {
    /// Coefficients in ascending powers: `coefficients[k]` multiplies x^k.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coefficients: Option<Vec<f64>>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Minimizer {
    pub index: usize,
    pub x: f64,
    pub f: f64,
    /// f''(x*): the sharpness there.
    pub curvature: f64,
    /// 2/f''(x*): GD can converge to x* only at step sizes up to this.
    pub threshold: f64,
}

#[derive(Clone, Debug)]
pub struct Poly {
    pub coefficients: Vec<f64>,
    pub derivative: Vec<f64>,
    pub second: Vec<f64>,
    /// Real roots of f', ascending.
    pub critical_points: Vec<f64>,
    pub minimizers: Vec<Minimizer>,
    /// For each critical point, its index in `minimizers`, if it is one.
    minimizer_at: Vec<Option<usize>>,
}

/// Horner's rule, highest power first, starting from the leading coefficient
/// (not from 0·x + c, which costs two operations a step and gives the same
/// value wherever x is finite). The kernel evaluates f' in this order.
#[inline(always)]
pub fn derivative<A: Arith>(coefficients: &[A::Scalar], x: A) -> A {
    let (&lead, rest) = coefficients
        .split_last()
        .expect("a polynomial has a coefficient");
    let mut acc = A::splat(lead);
    for &c in rest.iter().rev() {
        acc = acc * x + A::splat(c);
    }
    acc
}

fn differentiate(c: &[f64]) -> Vec<f64> {
    c.iter()
        .enumerate()
        .skip(1)
        .map(|(k, &a)| k as f64 * a)
        .collect()
}

fn eval(c: &[f64], x: f64) -> f64 {
    derivative(c, x)
}

impl Poly {
    pub fn new(spec: &PolySpec) -> Result<Poly> {
        let mut coefficients = spec
            .coefficients
            .clone()
            .unwrap_or_else(|| PAPER_COEFFICIENTS.to_vec());
        if let Some(bad) = coefficients.iter().find(|c| !c.is_finite()) {
            return Err(Error::spec(format!(
                "model.coefficients contains {bad}; every coefficient must be finite"
            )));
        }
        while coefficients.len() > 1 && *coefficients.last().unwrap() == 0.0 {
            coefficients.pop();
        }
        let degree = coefficients.len().saturating_sub(1);
        if !(2..=16).contains(&degree) {
            return Err(Error::spec(format!(
                "model.coefficients gives a polynomial of degree {degree}; give degree 2 to 16, lowest power first"
            )));
        }
        let derivative = differentiate(&coefficients);
        let second = differentiate(&derivative);
        // The critical points are the eigenvalues of f''s companion matrix,
        // whose iteration never converges on entries that overflow; such a
        // polynomial is refused rather than left to hang.
        let lead = derivative[derivative.len() - 1];
        let companion_ok = derivative
            .iter()
            .all(|c| c.is_finite() && (c / lead).abs() <= MAX_COMPANION_ENTRY)
            && second.iter().all(|c| c.is_finite());
        if !companion_ok {
            return Err(Error::spec(
                "model.coefficients span too many orders of magnitude to find the critical points; rescale the polynomial",
            ));
        }
        let critical_points = real_roots(&derivative).ok_or_else(|| {
            Error::spec(
                "the critical points of model.coefficients could not be found; perturb or rescale the polynomial",
            )
        })?;
        let minimizers: Vec<Minimizer> = critical_points
            .iter()
            .filter(|&&x| eval(&second, x) > 0.0)
            .enumerate()
            .map(|(index, &x)| {
                let curvature = eval(&second, x);
                Minimizer {
                    index,
                    x,
                    f: eval(&coefficients, x),
                    curvature,
                    threshold: 2.0 / curvature,
                }
            })
            .collect();
        if minimizers.is_empty() {
            return Err(Error::spec(
                "model.coefficients gives a polynomial with no local minimizer; give one that has one",
            ));
        }
        let minimizer_at = critical_points
            .iter()
            .map(|&c| minimizers.iter().position(|m| m.x == c))
            .collect();
        Ok(Poly {
            coefficients,
            derivative,
            second,
            critical_points,
            minimizers,
            minimizer_at,
        })
    }

    /// Which critical point x is nearest, if it is a minimizer.
    pub fn nearest_minimizer(&self, x: f64) -> Option<usize> {
        // The first of the nearest. Written to select without branching:
        // which point is nearest is a coin toss from one trajectory to the
        // next, and mispredicted branches made this most of the assessment.
        let (first, rest) = self.critical_points.split_first()?;
        let (mut nearest, mut best) = (0, (first - x).abs());
        for (i, &c) in rest.iter().enumerate() {
            let d = (c - x).abs();
            let closer = d < best;
            nearest = if closer { i + 1 } else { nearest };
            best = if closer { d } else { best };
        }
        self.minimizer_at[nearest]
    }

    pub fn assess(&self, x: f64) -> Assessment {
        self.assessment(x, eval(&self.second, x), eval(&self.coefficients, x))
    }

    /// `assess` of each x, in order, into `out`: eight at a time, each
    /// polynomial evaluated for the eight together, lane by lane in the
    /// order `assess` evaluates it. One at a time, Horner's chain of
    /// dependent operations held a fixed-work sweep's tally up.
    pub fn assess_many(&self, xs: impl Iterator<Item = f64>, out: &mut Vec<Assessment>) {
        let mut xs = xs.peekable();
        while xs.peek().is_some() {
            let mut batch = [0.0f64; 8];
            let mut n = 0;
            for (slot, x) in batch.iter_mut().zip(xs.by_ref()) {
                *slot = x;
                n += 1;
            }
            let at = Pack(batch);
            let curvature = derivative(&self.second, at);
            let loss = derivative(&self.coefficients, at);
            out.extend((0..n).map(|i| self.assessment(batch[i], curvature.0[i], loss.0[i])));
        }
    }

    fn assessment(&self, x: f64, curvature: f64, loss: f64) -> Assessment {
        let minimizer = self.nearest_minimizer(x);
        Assessment {
            spectral_radius: f64::NAN,
            loss,
            metric: curvature,
            sharpness: curvature,
            minimizer,
            at_minimum: minimizer.is_some(),
        }
    }

    pub fn theory(&self) -> serde_json::Value {
        serde_json::json!({
            "model": "poly",
            "coefficients": self.coefficients,
            "metric": "f''(x̂)",
            "bound": "f''(x̂) <= 2/step_size",
            "minimizers": self.minimizers,
        })
    }
}

impl Family for Poly {
    type Spec = PolySpec;
    const KIND: &'static str = "poly";
    /// x and Horner's accumulator stay in registers across the steps, and a
    /// step is one chain, so a pack takes as many lanes as the registers
    /// hold: AVX-512's 32 registers hold 256 f32 lanes (`ROLLED_ON_AVX512`)
    /// but only 128 f64 ones.
    const LANES: Lanes = Lanes {
        baseline: [128, 32],
        avx2: [128, 128],
        avx512: [256, 128],
    };

    fn build(spec: &PolySpec) -> Result<Self> {
        Poly::new(spec)
    }

    fn dim(&self) -> usize {
        1
    }

    /// f''(x), exact anywhere.
    fn sharpness(&self, theta: &[f64]) -> f64 {
        eval(&self.second, theta[0])
    }

    fn loss(&self, theta: &[f64]) -> f64 {
        eval(&self.coefficients, theta[0])
    }

    fn work_len(&self) -> usize {
        0
    }

    fn constants(&self) -> Vec<f64> {
        self.derivative.clone()
    }

    #[inline(always)]
    fn gradient<A: Arith>(
        &self,
        constants: &[A::Scalar],
        theta: &[A],
        grad: &mut [A],
        _: &mut [A],
    ) {
        grad[0] = derivative(constants, theta[0]);
    }

    /// x stays in registers across the steps, so each step's chain is
    /// Horner's alone.
    #[inline(always)]
    fn advance<A: Arith>(
        &self,
        constants: &[A::Scalar],
        theta: &mut [A],
        _: &mut [A],
        _: &mut [A],
        delta: A,
        steps: u64,
        record: Option<Record<'_, A>>,
    ) {
        // The paper's polynomial (f' of degree 5) with the coefficients as
        // an array: Horner's loop is unrolled, where the loop over a slice
        // rotated the accumulators through register moves on every
        // coefficient.
        if let Ok(fixed) = <&[A::Scalar; 6]>::try_from(constants) {
            theta[0] = steps_from(fixed, theta[0], delta, steps, record);
        } else {
            theta[0] = steps_from(constants, theta[0], delta, steps, record);
        }
    }

    /// With Horner's loop unrolled, LLVM orders each register's chain of a
    /// step one after another: the 16 registers of an AVX-512 pack are 16
    /// independent chains, but the processor sees too few of them at once
    /// to keep both multipliers busy. Kept a loop (the coefficients' count
    /// hidden from the optimizer), each multiplication and addition is
    /// issued for all 16 registers in turn; compiled on its own, x and the
    /// accumulators keep their registers from one coefficient to the next.
    /// On AVX2's 16 registers the unrolled form is the faster.
    const ROLLED_ON_AVX512: bool = true;

    #[inline(always)]
    fn advance_rolled<A: Arith>(
        &self,
        constants: &[A::Scalar],
        theta: &mut [A],
        _: &mut [A],
        _: &mut [A],
        delta: A,
        steps: u64,
        record: Option<Record<'_, A>>,
    ) {
        let coefficients = std::hint::black_box(constants);
        theta[0] = steps_from(coefficients, theta[0], delta, steps, record);
    }

    fn assess(&self, theta: &[f64], _: u64) -> Assessment {
        Poly::assess(self, theta[0])
    }

    fn assess_many<'a>(
        &self,
        items: impl Iterator<Item = (&'a [f64], u64)>,
        out: &mut Vec<Assessment>,
    ) {
        Poly::assess_many(self, items.map(|(theta, _)| theta[0]), out)
    }

    /// f''(x̂) ≤ 2/δ (docs/theory.md §1).
    fn bound(&self, step_size: f64) -> f64 {
        2.0 / step_size
    }

    fn step_size_max(&self) -> Option<f64> {
        self.minimizers.iter().map(|m| m.threshold).reduce(f64::max)
    }

    /// δ = 2/f''(x*) for each minimizer x*; past the largest of them nothing
    /// converges.
    fn edges(&self) -> Vec<Edge> {
        self.minimizers
            .iter()
            .map(|m| Edge {
                step_size: m.threshold,
                name: format!("2/f''({})", tick_label(m.x)),
                curve: format!("δ = 2/f''({})", tick_label(m.x)),
            })
            .collect()
    }

    fn minimizers(&self) -> &[Minimizer] {
        &self.minimizers
    }

    /// The gradient map x ↦ x − δ f'(x), followed from just beside each
    /// minimizer, so that the orbit born there as δ passes its threshold is
    /// the one drawn.
    fn scalar_map(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        let starts = self.minimizers.iter().map(|m| m.x + 1e-3).collect();
        Some((self.derivative.clone(), starts))
    }

    fn theory(&self) -> serde_json::Value {
        Poly::theory(self)
    }

    fn kernel(&self, rule: &StopRule, _: DeviceLimits, precision: Precision) -> KernelPlan {
        gpu::kernel(self, rule, precision)
    }

    /// Horner's rule over f' (a multiply and an add per coefficient), then
    /// the update.
    fn flops_per_step(&self) -> f64 {
        (2 * self.derivative.len() + 2) as f64
    }

    fn takes(&self, init: &InitSpec) -> bool {
        matches!(init, InitSpec::Grid { .. })
    }
}

/// `steps` steps from x, each new x's fingerprint kept where `record` says;
/// `coefficients` are f' ascending.
#[inline(always)]
fn steps_from<A: Arith>(
    coefficients: &(impl AsRef<[A::Scalar]> + ?Sized),
    mut x: A,
    delta: A,
    steps: u64,
    record: Option<Record<'_, A>>,
) -> A {
    let c = coefficients.as_ref();
    match record {
        None => {
            for _ in 0..steps {
                x = x - delta * derivative(c, x);
            }
        }
        Some(mut r) => {
            for s in 0..steps as usize {
                x = x - delta * derivative(c, x);
                r.keep(s, std::slice::from_ref(&x));
            }
        }
    }
    x
}

/// Largest |f'_k / f'_n| accepted for f' of degree n, far beyond any
/// polynomial worth sweeping, and far below where the companion matrix's
/// eigenvalue iteration overflows.
const MAX_COMPANION_ENTRY: f64 = 1e12;

/// Iterations of the Schur decomposition before a shift is tried instead.
const MAX_SCHUR_ITERATIONS: usize = 10_000;

/// Shifts x → x + s tried in turn: the Francis iteration can cycle forever on
/// a symmetric spectrum (f' even with no real root, say), and a shift breaks
/// the symmetry.
const ROOT_SHIFTS: [f64; 4] = [0.0, 0.3127, -0.5731, 1.3193];

/// Coefficients of p(x + s), by repeated synthetic division.
fn taylor_shift(c: &[f64], s: f64) -> Vec<f64> {
    let mut q = c.to_vec();
    for k in 0..q.len() {
        for j in (k..q.len() - 1).rev() {
            q[j] += s * q[j + 1];
        }
    }
    q
}

/// Eigenvalues of the companion matrix of p(x + s), plus s: p's complex roots.
fn companion_roots(c: &[f64], s: f64) -> Option<Vec<(f64, f64)>> {
    let q = taylor_shift(c, s);
    let n = q.len() - 1;
    let lead = q[n];
    let companion = DMatrix::from_fn(n, n, |i, j| {
        if j == n - 1 {
            -q[i] / lead
        } else if i == j + 1 {
            1.0
        } else {
            0.0
        }
    });
    let schur = Schur::try_new(companion, f64::EPSILON, MAX_SCHUR_ITERATIONS)?;
    Some(
        schur
            .complex_eigenvalues()
            .iter()
            .map(|z| (z.re + s, z.im))
            .collect(),
    )
}

/// Real roots of a polynomial (ascending coefficients) from the eigenvalues of
/// its companion matrix, polished by Newton's method and merged when repeated;
/// `None` when the eigenvalue iteration converges under no shift.
fn real_roots(c: &[f64]) -> Option<Vec<f64>> {
    let n = c.len() - 1;
    let eigenvalues = ROOT_SHIFTS.iter().find_map(|&s| companion_roots(c, s))?;
    let dc = differentiate(c);
    let scale = c.iter().fold(0.0f64, |m, a| m.max(a.abs()));
    let mut roots: Vec<f64> = eigenvalues
        .iter()
        .filter(|(re, im)| im.abs() <= 1e-6 * (1.0 + re.abs()))
        .map(|&(re, _)| {
            let mut x = re;
            for _ in 0..50 {
                let d = eval(&dc, x);
                if d == 0.0 {
                    break;
                }
                let next = x - eval(c, x) / d;
                if !next.is_finite() || (next - x).abs() <= 1e-15 * (1.0 + x.abs()) {
                    break;
                }
                x = next;
            }
            x
        })
        .filter(|&x| eval(c, x).abs() <= 1e-6 * scale * (1.0 + x.abs()).powi(n as i32))
        .collect();
    roots.sort_by(f64::total_cmp);
    roots.dedup_by(|a, b| (*a - *b).abs() <= 1e-6 * (1.0 + b.abs()));
    Some(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eight at a time, the assessments are `assess`'s, bit for bit, for a
    /// count that is not a multiple of eight.
    #[test]
    fn assessments_made_together_are_each_points_own() {
        let p = Poly::new(&PolySpec::default()).unwrap();
        let xs: Vec<f64> = (0..21).map(|i| 0.37 + 0.11 * i as f64).collect();
        let mut together = Vec::new();
        p.assess_many(xs.iter().copied(), &mut together);
        assert_eq!(together.len(), xs.len());
        for (a, &x) in together.iter().zip(&xs) {
            let own = p.assess(x);
            assert_eq!(a.loss.to_bits(), own.loss.to_bits(), "{x}");
            assert_eq!(a.metric.to_bits(), own.metric.to_bits(), "{x}");
            assert_eq!(a.minimizer, own.minimizer, "{x}");
        }
    }

    #[test]
    fn paper_polynomial_has_minimizers_one_and_two() {
        let p = Poly::new(&PolySpec::default()).unwrap();
        assert_eq!(p.minimizers.len(), 2);
        let (m1, m2) = (&p.minimizers[0], &p.minimizers[1]);
        assert!((m1.x - 1.0).abs() < 1e-12 && (m2.x - 2.0).abs() < 1e-12);
        assert!((m1.curvature - 4.0).abs() < 1e-9 && (m2.curvature - 10.0).abs() < 1e-9);
        assert!((m1.threshold - 0.5).abs() < 1e-10 && (m2.threshold - 0.2).abs() < 1e-10);
        // The local maximum between them.
        assert_eq!(p.critical_points.len(), 3);
        assert!(
            (p.critical_points[1] - 1.5561).abs() < 1e-4,
            "{:?}",
            p.critical_points
        );
    }

    #[test]
    fn derivative_matches_the_factored_form_and_finite_differences() {
        let p = Poly::new(&PolySpec::default()).unwrap();
        for &x in &[-1.0, 0.3, 1.7, 2.5, 3.9] {
            let factored = 2.0 * x * (x - 1.0f64).powi(2) * (x - 2.0f64).powi(2)
                + 2.0 * (x * x + 1.0) * (x - 1.0) * (x - 2.0f64).powi(2)
                + 2.0 * (x * x + 1.0) * (x - 1.0f64).powi(2) * (x - 2.0);
            let g = derivative(&p.derivative, x);
            assert!((g - factored).abs() < 1e-9 * (1.0 + g.abs()), "x={x}");
            let h = 1e-6;
            let fd = (eval(&p.coefficients, x + h) - eval(&p.coefficients, x - h)) / (2.0 * h);
            assert!(
                (g - fd).abs() < 1e-5 * (1.0 + g.abs()),
                "x={x}: {g} vs {fd}"
            );
        }
    }

    #[test]
    fn a_general_quartic_reports_its_thresholds() {
        // f = (x² − 1)² = x⁴ − 2x² + 1: minimizers ±1 with f'' = 8.
        let p = Poly::new(&PolySpec {
            coefficients: Some(vec![1.0, 0.0, -2.0, 0.0, 1.0]),
        })
        .unwrap();
        let xs: Vec<f64> = p.minimizers.iter().map(|m| m.x).collect();
        assert!(
            (xs[0] + 1.0).abs() < 1e-12 && (xs[1] - 1.0).abs() < 1e-12,
            "{xs:?}"
        );
        assert!((p.minimizers[0].threshold - 0.25).abs() < 1e-12);
    }

    #[test]
    fn bad_polynomials_are_refused() {
        let e = Poly::new(&PolySpec {
            coefficients: Some(vec![1.0, 2.0]),
        })
        .unwrap_err();
        assert!(e.to_string().contains("degree 1"));
        let e = Poly::new(&PolySpec {
            coefficients: Some(vec![0.0, 0.0, -1.0]),
        })
        .unwrap_err();
        assert!(e.to_string().contains("no local minimizer"));
    }

    #[test]
    fn hostile_coefficients_are_refused_without_hanging() {
        // f' = -3.32 + 2.73x² - 8.95x⁴ has two complex pairs, mirror images,
        // on which the unshifted eigenvalue iteration cycles forever.
        let spec = |c: &[f64]| PolySpec {
            coefficients: Some(c.to_vec()),
        };
        let e = Poly::new(&spec(&[0.0, -3.32, 0.0, 0.9087, 0.0, -1.79]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no local minimizer"), "{e}");
        let e = Poly::new(&spec(&[1.0, 0.0, 1e308, 3.0, 1e308]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("orders of magnitude"), "{e}");
        assert!(Poly::new(&spec(&[])).is_err());
        // And a mirror-symmetric f' with real roots too: x⁴ − x² has ±1.
        let p = Poly::new(&spec(&[0.0, 0.0, -0.5, 0.0, 0.25])).unwrap();
        let xs: Vec<f64> = p.minimizers.iter().map(|m| m.x).collect();
        assert!(
            (xs[0] + 1.0).abs() < 1e-9 && (xs[1] - 1.0).abs() < 1e-9,
            "{xs:?}"
        );
    }
}
