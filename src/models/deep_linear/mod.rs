//! Model `deep-linear`: f(W) = ½ tr((P − R) Σ_x (P − R)ᵀ) with P = W_L⋯W_1, all
//! n × n (docs/theory.md §3); with whitened data Σ_x = I and f = ½‖P − R‖²_F. The WGSL
//! twin is `shaders/deep_linear.wgsl`.
//!
//! ∂f/∂W_j = S_jᵀ (P − R) Σ_x P_{j−1}ᵀ with prefix products P_j = W_j⋯W_1 (P_0 = I)
//! and suffix products S_j = W_L⋯W_{j+1} (S_L = I), computed once per step.
//! A converged estimate R̂ = P obeys σ_max(R̂) ≤ (2/(Lδ))^{L/(2L−2)}, and a target
//! is learnable only for δ ≤ δ_max(R) = 2/(L σ_max(R)^{2−2/L}).

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

mod gpu;

use crate::error::{Error, Result};
use crate::models::{Assessment, Family, InitSpec, Lanes, SHARPNESS_SAMPLES};
use crate::real::{Arith, Precision};
use crate::rng::TrajectoryRng;
use crate::shaders::{DeviceLimits, KernelPlan};
use crate::stopping::StopRule;

pub const MAX_LAYERS: u32 = 16;
pub const MAX_SIZE: u32 = 32;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeepLinearSpec {
    /// L, the number of layers.
    pub layers: u32,
    /// n: every layer is n × n.
    pub size: u32,
    pub target: TargetSpec,
    /// Rescales the target so that σ_max(R) equals this (a second axis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_max: Option<f64>,
    /// Σ_x, the input covariance; the identity (whitened data) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_covariance: Option<Vec<Vec<f64>>>,
    /// A CSV file of inputs, one sample x_i of n numbers per line; Σ_x = (1/N) Σ x_i x_iᵀ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TargetSpec {
    /// Q diag(spectrum) Qᵀ with Q a random rotation; the default spectrum is
    /// 1, (n−1)/n, …, 1/n.
    Psd {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spectrum: Option<Vec<f64>>,
        #[serde(default)]
        seed: u64,
    },
    /// Entries drawn from N(0, scale²).
    Gaussian {
        #[serde(default = "one")]
        scale: f64,
        #[serde(default)]
        seed: u64,
    },
    /// A given n × n matrix, as rows.
    Given { matrix: Vec<Vec<f64>> },
}

fn one() -> f64 {
    1.0
}

#[derive(Clone, Debug)]
pub struct DeepLinear {
    pub layers: usize,
    pub size: usize,
    /// R, row-major.
    pub target: Vec<f64>,
    /// Σ_x, row-major, or None for the identity.
    pub covariance: Option<Vec<f64>>,
}

/// Stream ids reserved for the model's own draws (targets), far from trajectory ids.
const TARGET_STREAM: u64 = u64::MAX - 1;

/// c = op(a)·op(b) for n × n row-major matrices, where op transposes when asked.
/// Each entry is summed over m in order from zero, as the kernels do.
#[inline(always)]
pub fn matmul<A: Arith>(n: usize, a: &[A], a_t: bool, b: &[A], b_t: bool, c: &mut [A]) {
    for i in 0..n {
        for k in 0..n {
            let mut acc = A::zero();
            for m in 0..n {
                let x = if a_t { a[m * n + i] } else { a[i * n + m] };
                let y = if b_t { b[k * n + m] } else { b[m * n + k] };
                acc = acc + x * y;
            }
            c[i * n + k] = acc;
        }
    }
}

/// Workspace length for the gradient: prefix and suffix products, E and a temporary.
pub fn work_len(layers: usize, size: usize) -> usize {
    (2 * layers + 2) * size * size
}

/// Writes ∇f into `grad`. `constants` holds R, then Σ_x when it is not the
/// identity. The kernel performs exactly these products in this order.
#[inline(always)]
pub fn gradient<A: Arith>(
    layers: usize,
    size: usize,
    constants: &[A::Scalar],
    w: &[A],
    grad: &mut [A],
    work: &mut [A],
) {
    // Each small size gets its own copy with n a constant, so the products
    // unroll into straight-line code (the same operations in the same order).
    // Only n ≤ 4: inlined into each of the four pack engine copies, the
    // unrolled n = 5…8 copies were most of the library's compile time (LLVM
    // spent 120 s on those copies, 42–55 s without them); dropping them costs
    // up to 25% per step at those sizes (docs/performance.md, "Build time").
    macro_rules! sized {
        ($($n:literal)*) => {
            match size {
                $($n => gradient_sized(layers, $n, constants, w, grad, work),)*
                _ => gradient_sized(layers, size, constants, w, grad, work),
            }
        };
    }
    sized!(1 2 3 4)
}

#[inline(always)]
fn gradient_sized<A: Arith>(
    layers: usize,
    size: usize,
    constants: &[A::Scalar],
    w: &[A],
    grad: &mut [A],
    work: &mut [A],
) {
    let nn = size * size;
    let (prefix, rest) = work.split_at_mut(layers * nn);
    let (suffix, rest) = rest.split_at_mut(layers * nn);
    let (e, tmp) = rest.split_at_mut(nn);
    // prefix[j−1] = P_j = W_j⋯W_1.
    prefix[..nn].copy_from_slice(&w[..nn]);
    for j in 1..layers {
        let (done, next) = prefix.split_at_mut(j * nn);
        matmul(
            size,
            &w[j * nn..(j + 1) * nn],
            false,
            &done[(j - 1) * nn..],
            false,
            &mut next[..nn],
        );
    }
    // E = (P − R) Σ_x.
    let product = &prefix[(layers - 1) * nn..layers * nn];
    for i in 0..nn {
        e[i] = product[i] - A::splat(constants[i]);
    }
    if constants.len() > nn {
        // Σ_x, splatted into the suffix products' space before they are formed.
        let sigma = &mut suffix[..nn];
        for (s, &c) in sigma.iter_mut().zip(&constants[nn..2 * nn]) {
            *s = A::splat(c);
        }
        matmul(size, e, false, sigma, false, &mut tmp[..nn]);
        e.copy_from_slice(&tmp[..nn]);
    }
    // suffix[j−1] = S_j = W_L⋯W_{j+1}; S_L = I.
    for (i, s) in suffix[(layers - 1) * nn..].iter_mut().enumerate() {
        *s = if i / size == i % size {
            A::one()
        } else {
            A::zero()
        };
    }
    for j in (1..layers).rev() {
        let (head, tail) = suffix.split_at_mut(j * nn);
        matmul(
            size,
            &tail[..nn],
            false,
            &w[j * nn..(j + 1) * nn],
            false,
            &mut head[(j - 1) * nn..],
        );
    }
    // ∂f/∂W_j = S_jᵀ E P_{j−1}ᵀ.
    for j in 0..layers {
        let g = &mut grad[j * nn..(j + 1) * nn];
        if j == 0 {
            matmul(size, &suffix[..nn], true, e, false, g);
        } else {
            matmul(size, &suffix[j * nn..(j + 1) * nn], true, e, false, tmp);
            matmul(size, tmp, false, &prefix[(j - 1) * nn..j * nn], true, g);
        }
    }
}

fn haar_orthogonal(n: usize, rng: &mut TrajectoryRng) -> DMatrix<f64> {
    let g = DMatrix::from_fn(n, n, |_, _| rng.normal());
    let qr = g.qr();
    let (mut q, r) = (qr.q(), qr.r());
    // Fixing the signs by R's diagonal makes Q Haar-distributed.
    for j in 0..n {
        if r[(j, j)] < 0.0 {
            q.column_mut(j).neg_mut();
        }
    }
    q
}

fn row_major(m: &DMatrix<f64>) -> Vec<f64> {
    let n = m.nrows();
    (0..n * n).map(|i| m[(i / n, i % n)]).collect()
}

fn matrix(n: usize, values: &[f64]) -> DMatrix<f64> {
    DMatrix::from_row_slice(n, n, values)
}

fn square(rows: &[Vec<f64>], n: usize, what: &str) -> Result<Vec<f64>> {
    if rows.len() != n || rows.iter().any(|r| r.len() != n) {
        return Err(Error::spec(format!(
            "{what} must be {n} × {n} to match model.size; got {} rows",
            rows.len()
        )));
    }
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    if flat.iter().any(|v| !v.is_finite()) {
        return Err(Error::spec(format!("{what} has a non-finite entry")));
    }
    Ok(flat)
}

pub fn sigma_max(n: usize, values: &[f64]) -> f64 {
    matrix(n, values).singular_values().max()
}

impl DeepLinear {
    pub fn new(spec: &DeepLinearSpec) -> Result<DeepLinear> {
        if spec.layers == 0 || spec.layers > MAX_LAYERS {
            return Err(Error::spec(format!(
                "model.layers is {}; give L from 1 to {MAX_LAYERS}",
                spec.layers
            )));
        }
        if spec.size == 0 || spec.size > MAX_SIZE {
            return Err(Error::spec(format!(
                "model.size is {}; give n from 1 to {MAX_SIZE}",
                spec.size
            )));
        }
        let n = spec.size as usize;
        let mut target = match &spec.target {
            TargetSpec::Psd { spectrum, seed } => {
                let spectrum = match spectrum {
                    Some(s) if s.len() == n && s.iter().all(|v| v.is_finite() && *v >= 0.0) => s.clone(),
                    Some(s) => {
                        return Err(Error::spec(format!(
                            "model.target.spectrum has {} values; give {n} finite values at or above zero",
                            s.len()
                        )))
                    }
                    None => (0..n).map(|i| (n - i) as f64 / n as f64).collect(),
                };
                let q = haar_orthogonal(n, &mut TrajectoryRng::new(*seed, TARGET_STREAM));
                let d = DMatrix::from_diagonal(&nalgebra::DVector::from_vec(spectrum));
                row_major(&(&q * d * q.transpose()))
            }
            TargetSpec::Gaussian { scale, seed } => {
                if !(scale.is_finite() && *scale > 0.0) {
                    return Err(Error::spec(format!(
                        "model.target.scale is {scale}; give a finite number above zero"
                    )));
                }
                let mut rng = TrajectoryRng::new(*seed, TARGET_STREAM);
                (0..n * n).map(|_| scale * rng.normal()).collect()
            }
            TargetSpec::Given { matrix } => square(matrix, n, "model.target.matrix")?,
        };
        if let Some(s) = spec.sigma_max {
            if !(s.is_finite() && s > 0.0) {
                return Err(Error::spec(format!(
                    "model.sigma_max is {s}; give a finite number above zero"
                )));
            }
            let current = sigma_max(n, &target);
            if current == 0.0 {
                return Err(Error::spec("model.sigma_max cannot rescale a zero target"));
            }
            target.iter_mut().for_each(|v| *v *= s / current);
        }
        let covariance = match (&spec.input_covariance, &spec.inputs) {
            (Some(_), Some(_)) => {
                return Err(Error::spec(
                    "give model.input_covariance or model.inputs, not both",
                ))
            }
            (Some(rows), None) => Some(square(rows, n, "model.input_covariance")?),
            (None, Some(path)) => Some(covariance_from_csv(path, n)?),
            (None, None) => None,
        };
        Ok(DeepLinear {
            layers: spec.layers as usize,
            size: n,
            target,
            covariance,
        })
    }

    pub fn dim(&self) -> usize {
        self.layers * self.size * self.size
    }

    /// R, then Σ_x when it is not the identity.
    pub fn constants(&self) -> Vec<f64> {
        let mut c = self.target.clone();
        if let Some(s) = &self.covariance {
            c.extend_from_slice(s);
        }
        c
    }

    pub fn target_sigma_max(&self) -> f64 {
        sigma_max(self.size, &self.target)
    }

    /// δ_max(R) = 2/(L σ_max(R)^{2−2/L}).
    pub fn step_size_max(&self) -> f64 {
        let l = self.layers as f64;
        2.0 / (l * self.target_sigma_max().powf(2.0 - 2.0 / l))
    }

    /// The paper's bound on σ_max(R̂) at step size δ; no bound for L = 1.
    pub fn bound(&self, step_size: f64) -> f64 {
        let l = self.layers as f64;
        if self.layers == 1 {
            f64::INFINITY
        } else {
            (2.0 / (l * step_size)).powf(l / (2.0 * l - 2.0))
        }
    }

    /// Identity plus noise, or `scale` times a random rotation, per layer.
    pub fn initial_identity(&self, scale: f64, rng: &mut TrajectoryRng, out: &mut [f64]) {
        let n = self.size;
        for (i, w) in out.iter_mut().enumerate() {
            let entry = i % (n * n);
            let eye = if entry / n == entry % n { 1.0 } else { 0.0 };
            *w = eye + scale * rng.normal();
        }
    }

    pub fn initial_orthogonal(&self, scale: f64, rng: &mut TrajectoryRng, out: &mut [f64]) {
        let nn = self.size * self.size;
        for layer in out.chunks_mut(nn) {
            let q = haar_orthogonal(self.size, rng);
            for (w, q) in layer.iter_mut().zip(row_major(&q)) {
                *w = scale * q;
            }
        }
    }

    pub fn loss(&self, w: &[f64]) -> f64 {
        let nn = self.size * self.size;
        let mut work = vec![0.0; work_len(self.layers, self.size)];
        let mut grad = vec![0.0; w.len()];
        gradient(
            self.layers,
            self.size,
            &self.constants(),
            w,
            &mut grad,
            &mut work,
        );
        let p = &work[(self.layers - 1) * nn..self.layers * nn];
        let d: Vec<f64> = p.iter().zip(&self.target).map(|(a, b)| a - b).collect();
        match &self.covariance {
            None => 0.5 * d.iter().map(|v| v * v).sum::<f64>(),
            Some(s) => {
                let (dm, sm) = (matrix(self.size, &d), matrix(self.size, s));
                0.5 * (&dm * sm * dm.transpose()).trace()
            }
        }
    }

    fn gradient_f64(&self, w: &[f64]) -> Vec<f64> {
        let mut work = vec![0.0; work_len(self.layers, self.size)];
        let mut grad = vec![0.0; w.len()];
        gradient(
            self.layers,
            self.size,
            &self.constants(),
            w,
            &mut grad,
            &mut work,
        );
        grad
    }

    /// The top Hessian eigenvalue at w (see `hessian::sharpness`).
    pub fn sharpness(&self, w: &[f64]) -> f64 {
        super::hessian::sharpness(w, |w| self.gradient_f64(w))
    }

    /// σ_max(R̂) and the spectral radius of R̂ = P, with the loss.
    pub fn estimate(&self, w: &[f64]) -> (f64, f64) {
        let n = self.size;
        let nn = n * n;
        let mut p = matrix(n, &w[..nn]);
        for j in 1..self.layers {
            p = matrix(n, &w[j * nn..(j + 1) * nn]) * p;
        }
        let sigma = p.singular_values().max();
        let radius = p
            .complex_eigenvalues()
            .iter()
            .map(|z| z.norm())
            .fold(0.0, f64::max);
        (sigma, radius)
    }

    pub fn assess(&self, w: &[f64], with_sharpness: bool) -> Assessment {
        let loss = self.loss(w);
        let (sigma, radius) = self.estimate(w);
        let target_norm: f64 = self.target.iter().map(|v| v * v).sum::<f64>().sqrt();
        Assessment {
            loss,
            metric: sigma,
            sharpness: if with_sharpness {
                self.sharpness(w)
            } else {
                f64::NAN
            },
            spectral_radius: radius,
            minimizer: None,
            // A global minimum has P = R (Σ_x nonsingular); the slack covers an f32 stop.
            at_minimum: (2.0 * loss).sqrt() <= 1e-3 * (1.0 + target_norm),
        }
    }

    pub fn theory(&self) -> serde_json::Value {
        serde_json::json!({
            "model": "deep-linear",
            "layers": self.layers,
            "size": self.size,
            "target_sigma_max": self.target_sigma_max(),
            "metric": "σ_max(R̂)",
            "bound": "σ_max(R̂) <= (2/(L·step_size))^(L/(2L−2))",
            "step_size_max": self.step_size_max(),
            "step_size_max_formula": "2/(L σ_max(R)^(2−2/L))",
            "whitened": self.covariance.is_none(),
        })
    }
}

impl Family for DeepLinear {
    type Spec = DeepLinearSpec;
    const KIND: &'static str = "deep-linear";
    /// A step is chains of n × n products, whose workspace leaves room in
    /// the registers for few lanes; AVX-512's 32 registers take 64.
    const LANES: Lanes = Lanes {
        baseline: [32, 32],
        avx2: [32, 32],
        avx512: [64, 64],
    };

    fn build(spec: &DeepLinearSpec) -> Result<Self> {
        DeepLinear::new(spec)
    }

    fn dim(&self) -> usize {
        DeepLinear::dim(self)
    }

    fn loss(&self, theta: &[f64]) -> f64 {
        DeepLinear::loss(self, theta)
    }

    fn work_len(&self) -> usize {
        work_len(self.layers, self.size)
    }

    /// Each W_i is a layer, W_1 first (θ holds them in that order).
    fn layers(&self) -> Vec<std::ops::Range<usize>> {
        let n2 = self.size * self.size;
        (0..self.layers).map(|i| i * n2..(i + 1) * n2).collect()
    }

    fn constants(&self) -> Vec<f64> {
        DeepLinear::constants(self)
    }

    #[inline(always)]
    fn gradient<A: Arith>(
        &self,
        constants: &[A::Scalar],
        theta: &[A],
        grad: &mut [A],
        work: &mut [A],
    ) {
        gradient(self.layers, self.size, constants, theta, grad, work);
    }

    fn assess(&self, theta: &[f64], replicate: u64) -> Assessment {
        DeepLinear::assess(self, theta, replicate < SHARPNESS_SAMPLES)
    }

    /// σ_max(R̂) ≤ (2/(Lδ))^{L/(2L−2)} (docs/theory.md §3).
    fn bound(&self, step_size: f64) -> f64 {
        DeepLinear::bound(self, step_size)
    }

    fn step_size_max(&self) -> Option<f64> {
        Some(DeepLinear::step_size_max(self))
    }

    fn theory(&self) -> serde_json::Value {
        DeepLinear::theory(self)
    }

    fn kernel(&self, rule: &StopRule, limits: DeviceLimits, precision: Precision) -> KernelPlan {
        gpu::kernel(self, rule, limits, precision)
    }

    /// The forward and backward chains of n × n products (2n³ each), the
    /// residual and the update.
    fn flops_per_step(&self) -> f64 {
        let (n, l) = (self.size as f64, self.layers as f64);
        (4.0 * l - 3.0) * 2.0 * n * n * n + n * n + 2.0 * l * n * n
    }

    fn takes(&self, init: &InitSpec) -> bool {
        matches!(
            init,
            InitSpec::Identity { .. } | InitSpec::Orthogonal { .. }
        )
    }

    fn draw(&self, init: &InitSpec, rng: &mut TrajectoryRng, out: &mut [f64]) {
        match init {
            InitSpec::Identity { scale } => self.initial_identity(*scale, rng, out),
            InitSpec::Orthogonal { scale } => self.initial_orthogonal(*scale, rng, out),
            _ => unreachable!("deep-linear draws only its identity and orthogonal initializations"),
        }
    }

    /// One normal per parameter for the identity; the orthogonal draw's
    /// count is not fixed.
    fn draw_blocks(&self, init: &InitSpec) -> usize {
        match init {
            InitSpec::Identity { .. } => DeepLinear::dim(self),
            _ => 0,
        }
    }
}

/// Σ_x = (1/N) Σ x_i x_iᵀ from a CSV of samples; errors name the line.
fn covariance_from_csv(path: &str, n: usize) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    let mut sum = vec![0.0; n * n];
    let mut samples = 0usize;
    for (line_no, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let x: Vec<f64> = line
            .split(',')
            .map(|f| f.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                Error::spec(format!(
                    "{path} line {}: a value is not a number",
                    line_no + 1
                ))
            })?;
        if x.len() != n {
            return Err(Error::spec(format!(
                "{path} line {}: {} values where model.size is {n}",
                line_no + 1,
                x.len()
            )));
        }
        for i in 0..n {
            for j in 0..n {
                sum[i * n + j] += x[i] * x[j];
            }
        }
        samples += 1;
    }
    if samples == 0 {
        return Err(Error::spec(format!("{path} holds no samples")));
    }
    Ok(sum.into_iter().map(|v| v / samples as f64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(layers: u32, size: u32, covariance: Option<Vec<Vec<f64>>>) -> DeepLinear {
        DeepLinear::new(&DeepLinearSpec {
            layers,
            size,
            target: TargetSpec::Gaussian {
                scale: 1.0,
                seed: 4,
            },
            sigma_max: None,
            input_covariance: covariance,
            inputs: None,
        })
        .unwrap()
    }

    #[test]
    fn gradient_matches_finite_differences_in_f64() {
        let cov = vec![
            vec![1.5, 0.2, 0.0],
            vec![0.2, 0.8, 0.1],
            vec![0.0, 0.1, 1.1],
        ];
        for m in [model(3, 3, None), model(3, 3, Some(cov)), model(1, 2, None)] {
            let mut rng = TrajectoryRng::new(9, 9);
            let w: Vec<f64> = (0..m.dim()).map(|_| 0.8 * rng.normal()).collect();
            let g = m.gradient_f64(&w);
            for j in 0..w.len() {
                let h = 1e-6;
                let (mut up, mut down) = (w.clone(), w.clone());
                up[j] += h;
                down[j] -= h;
                let fd = (m.loss(&up) - m.loss(&down)) / (2.0 * h);
                assert!(
                    (g[j] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                    "j={j}: {} vs {fd}",
                    g[j]
                );
            }
        }
    }

    #[test]
    fn psd_target_has_its_spectrum_and_identity_minimum_meets_the_bound() {
        let m = DeepLinear::new(&DeepLinearSpec {
            layers: 3,
            size: 4,
            target: TargetSpec::Psd {
                spectrum: Some(vec![2.0, 1.0, 0.5, 0.25]),
                seed: 1,
            },
            sigma_max: None,
            input_covariance: None,
            inputs: None,
        })
        .unwrap();
        assert!((m.target_sigma_max() - 2.0).abs() < 1e-12);
        // The balanced minimum W_j = R^{1/L} has sharpness L σ_max^{2−2/L} = 2/δ_max.
        let r = matrix(4, &m.target);
        let eig = r.clone().symmetric_eigen();
        let root = &eig.eigenvectors
            * DMatrix::from_diagonal(&eig.eigenvalues.map(|v| v.powf(1.0 / 3.0)))
            * eig.eigenvectors.transpose();
        let w: Vec<f64> = (0..3).flat_map(|_| row_major(&root)).collect();
        let a = m.assess(&w, true);
        assert!(a.loss < 1e-20 && a.at_minimum);
        assert!((a.metric - 2.0).abs() < 1e-9);
        let expected = 2.0 / m.step_size_max();
        assert!(
            (a.sharpness - expected).abs() < 1e-4 * expected,
            "{} vs {expected}",
            a.sharpness
        );
        assert!((m.bound(m.step_size_max()) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn input_covariance_comes_from_a_csv_of_samples() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.to_string_lossy().into_owned()
        };
        let good = path("good.csv", "1,0\n0,2\n\n1,0\n");
        let c = covariance_from_csv(&good, 2).unwrap();
        assert_eq!(c, vec![2.0 / 3.0, 0.0, 0.0, 4.0 / 3.0]);
        let e = covariance_from_csv(&path("wide.csv", "1,0\n1,2,3\n"), 2).unwrap_err();
        assert!(e.to_string().contains("line 2: 3 values"), "{e}");
        let e = covariance_from_csv(&path("word.csv", "1,x\n"), 2).unwrap_err();
        assert!(
            e.to_string().contains("line 1: a value is not a number"),
            "{e}"
        );
        let e = covariance_from_csv(&path("empty.csv", ""), 2).unwrap_err();
        assert!(e.to_string().contains("holds no samples"), "{e}");
    }

    #[test]
    fn bad_sizes_and_targets_are_refused() {
        let spec = |layers, size, target| DeepLinearSpec {
            layers,
            size,
            target,
            sigma_max: None,
            input_covariance: None,
            inputs: None,
        };
        let g = TargetSpec::Gaussian {
            scale: 1.0,
            seed: 0,
        };
        for (l, n) in [(0, 2), (2, 0), (17, 2), (2, 33)] {
            assert!(
                DeepLinear::new(&spec(l, n, g.clone())).is_err(),
                "L={l} n={n}"
            );
        }
        let wrong = TargetSpec::Given {
            matrix: vec![vec![1.0, 0.0]],
        };
        let e = DeepLinear::new(&spec(2, 2, wrong)).unwrap_err().to_string();
        assert!(e.contains("must be 2 × 2"), "{e}");
    }
}
