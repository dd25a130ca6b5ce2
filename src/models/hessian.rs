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
    let mut rng = TrajectoryRng::new(0x5eed, START_STREAM);
    let mut v: Vec<f64> = (0..w.len()).map(|_| rng.normal()).collect();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let scale = 1.0 + norm(w) / (w.len() as f64).sqrt();
    let eps = 1e-5 * scale;
    let mut lambda = 0.0;
    for _ in 0..300 {
        let nv = norm(&v);
        v.iter_mut().for_each(|x| *x /= nv);
        let up: Vec<f64> = w.iter().zip(&v).map(|(a, b)| a + eps * b).collect();
        let down: Vec<f64> = w.iter().zip(&v).map(|(a, b)| a - eps * b).collect();
        let (gu, gd) = (gradient(&up), gradient(&down));
        let hv: Vec<f64> = gu
            .iter()
            .zip(&gd)
            .map(|(a, b)| (a - b) / (2.0 * eps))
            .collect();
        let next: f64 = hv.iter().zip(&v).map(|(a, b)| a * b).sum();
        v = hv;
        if (next - lambda).abs() <= 1e-8 * next.abs() {
            return next;
        }
        lambda = next;
    }
    lambda
}
