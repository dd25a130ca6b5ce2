//! The sharpness S(θ), the top Hessian eigenvalue, for models whose Hessian
//! is too large to form: power iteration on Hessian-vector products from
//! central differences of the exact gradient, in f64 (docs/theory.md, "What a sweep
//! measures").

use crate::rng::TrajectoryRng;

/// Stream of the power iteration's start vector, shared by every model so the
/// estimate depends on θ alone.
const START_STREAM: u64 = u64::MAX - 2;

/// The dominant Hessian eigenvalue at `w`. Near a minimum the Hessian is
/// positive semidefinite, so the dominant eigenvalue is the top one.
pub fn sharpness(w: &[f64], gradient: impl Fn(&[f64]) -> Vec<f64>) -> f64 {
    dominant(w, None, gradient)
}

/// The preconditioned sharpness λ_max(D^½ H D^½) at `w`, where D is the
/// diagonal of per-parameter step sizes `steps`: what a step of per-layer
/// step sizes must keep within 2 for `w` to be a stable minimum
/// (docs/theory.md, "Per-layer step sizes").
pub fn preconditioned_sharpness(
    w: &[f64],
    steps: &[f64],
    gradient: impl Fn(&[f64]) -> Vec<f64>,
) -> f64 {
    let root: Vec<f64> = steps.iter().map(|d| d.sqrt()).collect();
    dominant(w, Some(&root), gradient)
}

/// Power iteration for the dominant eigenvalue of S H S at `w`, S the
/// diagonal `scale` (the identity where None), on Hessian-vector products
/// H u = (∇f(w + εu) − ∇f(w − εu))/2ε.
fn dominant(w: &[f64], scale: Option<&[f64]>, gradient: impl Fn(&[f64]) -> Vec<f64>) -> f64 {
    let mut rng = TrajectoryRng::new(0x5eed, START_STREAM);
    let mut v: Vec<f64> = (0..w.len()).map(|_| rng.normal()).collect();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let scaled = |v: &mut Vec<f64>| {
        if let Some(s) = scale {
            v.iter_mut().zip(s).for_each(|(x, s)| *x *= s);
        }
    };
    let scale_w = 1.0 + norm(w) / (w.len() as f64).sqrt();
    let eps = 1e-5 * scale_w;
    let mut lambda = 0.0;
    for _ in 0..300 {
        let nv = norm(&v);
        v.iter_mut().for_each(|x| *x /= nv);
        let mut u = v.clone();
        scaled(&mut u);
        // A direction scaled by tiny step sizes would vanish into ε's
        // rounding; difference along its unit vector and rescale (unscaled,
        // v is that unit vector, and dividing by 1 changes no bit).
        let nu = if scale.is_some() { norm(&u) } else { 1.0 };
        if nu == 0.0 {
            return 0.0;
        }
        let up: Vec<f64> = w.iter().zip(&u).map(|(a, b)| a + eps * b / nu).collect();
        let down: Vec<f64> = w.iter().zip(&u).map(|(a, b)| a - eps * b / nu).collect();
        let (gu, gd) = (gradient(&up), gradient(&down));
        let mut hv: Vec<f64> = gu
            .iter()
            .zip(&gd)
            .map(|(a, b)| (a - b) / (2.0 * eps) * nu)
            .collect();
        scaled(&mut hv);
        let next: f64 = hv.iter().zip(&v).map(|(a, b)| a * b).sum();
        v = hv;
        if (next - lambda).abs() <= 1e-8 * next.abs() {
            return next;
        }
        lambda = next;
    }
    lambda
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On f(θ) = ½θᵀHθ the preconditioned sharpness is the top eigenvalue
    /// of D^½ H D^½, which differs from both H's and D's scaling of it.
    #[test]
    fn preconditioned_sharpness_is_the_top_eigenvalue_of_the_scaled_hessian() {
        let h = nalgebra::Matrix3::new(4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 1.0);
        let gradient = |t: &[f64]| {
            (h * nalgebra::Vector3::from_column_slice(t))
                .as_slice()
                .to_vec()
        };
        let w = [0.3, -0.2, 0.1];
        let steps = [0.5, 0.01, 2.0];
        let root = nalgebra::Matrix3::from_diagonal(&nalgebra::Vector3::from_iterator(
            steps.iter().map(|d: &f64| d.sqrt()),
        ));
        let expected = (root * h * root).symmetric_eigen().eigenvalues.max();
        let got = preconditioned_sharpness(&w, &steps, gradient);
        assert!(
            (got - expected).abs() < 1e-6 * expected,
            "{got} vs {expected}"
        );
        let plain = h.symmetric_eigen().eigenvalues.max();
        assert!((sharpness(&w, gradient) - plain).abs() < 1e-6 * plain);
        assert!((expected - plain * 2.0).abs() > 0.1 && (expected - plain * 0.5).abs() > 0.1);
    }
}
