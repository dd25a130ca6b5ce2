//! Model `relu`: f̂(x) = W(Vx − b)₊ with V (h × n) and W (m × h) trained and b
//! fixed, on the loss f = ½ Σ_i ‖f̂(x_i) − y_i‖², a sum over the N samples
//! (docs/theory.md §4). The WGSL twin is `shaders/relu.wgsl`.
//!
//! With z_i = Vx_i − b, a_i = (z_i)₊, d_i = 1[z_i > 0] and r_i = Wa_i − y_i:
//! ∂f/∂W = Σ_i r_i a_iᵀ and ∂f/∂V = Σ_i ((Wᵀr_i) ⊙ d_i) x_iᵀ. If GD converges
//! to a fit, max_i ‖x_i‖‖f̂(x_i)‖ ≤ 1/δ; at a fit f̂(x_i) = y_i, so no fit is
//! reachable for δ > 1/max_i(‖x_i‖‖y_i‖), and with N = 1 that edge is tight.
//!
//! θ is [W row-major | V row-major], so dim = mh + hn.

use serde::{Deserialize, Serialize};

pub mod data;
mod gpu;

use crate::error::{Error, Result};
use crate::models::{Assessment, Edge, Family, Lanes, SHARPNESS_SAMPLES};
use crate::real::{Arith, Precision};
use crate::rng::TrajectoryRng;
use crate::shaders::{DeviceLimits, KernelPlan};
use crate::stopping::StopRule;
use data::{size, Design, InputSpec, TargetSpec, BIAS_STREAM};

pub const MAX_INPUT: u32 = 64;
pub const MAX_HIDDEN: u32 = 256;
pub const MAX_OUTPUT: u32 = 16;
pub const MAX_SAMPLES: u32 = 4096;

/// Most partial sums a gradient entry's sum over samples is split into.
const MAX_SLICES: usize = 16;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReluSpec {
    /// n, the input dimension.
    pub input_size: u32,
    /// h, the hidden units.
    pub hidden: u32,
    /// m, the output dimension.
    pub output_size: u32,
    /// N; taken from the inputs when they come from a file or a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
    pub inputs: InputSpec,
    pub targets: TargetSpec,
    /// Rescales the targets so that max_i ‖y_i‖ equals this (a second axis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_norm: Option<f64>,
    /// σ_b: b is drawn from N(0, σ_b²) with `bias_seed`, unless `bias` is given.
    #[serde(default = "one")]
    pub bias_std: f64,
    #[serde(default)]
    pub bias_seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<Vec<f64>>,
}

fn one() -> f64 {
    1.0
}

/// The sizes that fix the order of the gradient's float operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub n: usize,
    pub h: usize,
    pub m: usize,
    pub samples: usize,
    /// S: the sum over samples of each gradient entry is split into S partial
    /// sums (samples s, s+S, s+2S, … each, in order from zero), which are then
    /// added by a fixed tree. The kernel computes the partials on different
    /// lanes; the CPU follows the same order so both agree bit for bit.
    pub slices: usize,
}

impl Shape {
    pub fn dim(&self) -> usize {
        self.m * self.h + self.h * self.n
    }

    /// S from the sizes alone (never from the device): as many slices as keep
    /// S·dim within 256 lanes, at most 16 and at most N, a power of two.
    fn slices_for(dim: usize, samples: usize) -> usize {
        let fit = (256 / dim).max(1);
        let cap = fit.min(MAX_SLICES).min(samples);
        1 << cap.ilog2()
    }
}

#[derive(Clone, Debug)]
pub struct Relu {
    pub shape: Shape,
    /// x, N × n row-major.
    pub inputs: Vec<f64>,
    /// y, N × m row-major.
    pub targets: Vec<f64>,
    pub bias: Vec<f64>,
}

/// The gradient's workspace: the S partial gradients, then a_i, r_i, Wᵀr_i ⊙ d_i.
pub fn work_len(s: &Shape) -> usize {
    s.slices * s.dim() + 2 * s.h + s.m
}

/// Writes ∇f into `grad`. `constants` holds x, y, b. Sample by sample:
/// z_k = (Σ_l V_kl x_l, from l = 0) − b_k; a_k = z_k if z_k > 0 else 0;
/// r_j = (Σ_k W_jk a_k) − y_j; e_k = Σ_j W_jk r_j where a_k > 0, else 0; then
/// partial[i mod S] += r_j a_k (W entries) and e_k x_l (V entries). Finally
/// for half = S/2, S/4, …, 1: partial[s] += partial[s + half] for s < half.
#[inline(always)]
pub fn gradient<A: Arith>(
    s: &Shape,
    constants: &[A::Scalar],
    theta: &[A],
    grad: &mut [A],
    work: &mut [A],
) {
    let (n, h, m) = (s.n, s.h, s.m);
    let dim = s.dim();
    let (x, rest) = constants.split_at(s.samples * n);
    let (y, b) = rest.split_at(s.samples * m);
    let (w, v) = theta.split_at(m * h);
    let (partials, rest) = work.split_at_mut(s.slices * dim);
    let (a, rest) = rest.split_at_mut(h);
    let (r, e) = rest.split_at_mut(m);
    partials.fill(A::zero());
    for i in 0..s.samples {
        let xi = &x[i * n..(i + 1) * n];
        for k in 0..h {
            let mut acc = A::zero();
            for l in 0..n {
                acc = acc + v[k * n + l] * A::splat(xi[l]);
            }
            a[k] = (acc - A::splat(b[k])).positive_part();
        }
        for j in 0..m {
            let mut acc = A::zero();
            for k in 0..h {
                acc = acc + w[j * h + k] * a[k];
            }
            r[j] = acc - A::splat(y[i * m + j]);
        }
        for k in 0..h {
            // The sum is formed for every unit and kept where the unit is
            // active: the same value as skipping it, so packs of lanes can
            // take it without branching.
            let mut acc = A::zero();
            for j in 0..m {
                acc = acc + w[j * h + k] * r[j];
            }
            e[k] = acc.gated_by(a[k]);
        }
        let p = &mut partials[(i % s.slices) * dim..(i % s.slices + 1) * dim];
        let (pw, pv) = p.split_at_mut(m * h);
        for j in 0..m {
            for k in 0..h {
                pw[j * h + k] = pw[j * h + k] + r[j] * a[k];
            }
        }
        for k in 0..h {
            for l in 0..n {
                pv[k * n + l] = pv[k * n + l] + e[k] * A::splat(xi[l]);
            }
        }
    }
    let mut half = s.slices / 2;
    while half >= 1 {
        let (low, high) = partials.split_at_mut(half * dim);
        for (p, &q) in low.iter_mut().zip(high.iter()) {
            *p = *p + q;
        }
        half /= 2;
    }
    grad.copy_from_slice(&partials[..dim]);
}

/// f̂(x) = W(Vx − b)₊ in f64, for θ = [W | V].
pub fn forward(n: usize, h: usize, m: usize, theta: &[f64], b: &[f64], x: &[f64]) -> Vec<f64> {
    let (w, v) = theta.split_at(m * h);
    let a: Vec<f64> = (0..h)
        .map(|k| ((0..n).map(|l| v[k * n + l] * x[l]).sum::<f64>() - b[k]).max(0.0))
        .collect();
    (0..m)
        .map(|j| (0..h).map(|k| w[j * h + k] * a[k]).sum())
        .collect()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

impl Relu {
    pub fn new(spec: &ReluSpec) -> Result<Relu> {
        let n = size("input_size", spec.input_size, MAX_INPUT, "n")?;
        let h = size("hidden", spec.hidden, MAX_HIDDEN, "h")?;
        let m = size("output_size", spec.output_size, MAX_OUTPUT, "m")?;
        let samples = data::samples(&spec.inputs, n, spec.samples, MAX_SAMPLES)?;
        let bias = match &spec.bias {
            Some(b) if b.len() == h && b.iter().all(|v| v.is_finite()) => b.clone(),
            Some(b) => {
                return Err(Error::spec(format!(
                    "model.bias has {} values; give {h} finite numbers, one per hidden unit",
                    b.len()
                )))
            }
            None => {
                if !(spec.bias_std.is_finite() && spec.bias_std >= 0.0) {
                    return Err(Error::spec(format!(
                        "model.bias_std is {}; give a finite number at or above zero",
                        spec.bias_std
                    )));
                }
                let mut rng = TrajectoryRng::new(spec.bias_seed, BIAS_STREAM);
                (0..h).map(|_| spec.bias_std * rng.normal()).collect()
            }
        };
        let inputs = spec.inputs.generate(n, samples)?;
        let teacher = |theta: &[f64], x: &[f64]| forward(n, h, m, theta, &bias, x);
        let design = Design {
            n,
            m,
            x: &inputs,
            teacher_dim: m * h + h * n,
            teacher: &teacher,
        };
        let mut targets = spec.targets.generate(&design)?;
        let norm_of = |y: &[f64]| y.chunks(m).map(norm).fold(0.0, f64::max);
        let wanted = match (&spec.targets, spec.target_norm) {
            (_, Some(t)) => Some(t),
            (TargetSpec::Constant {}, None) => Some(1.0),
            _ => None,
        };
        if let Some(t) = wanted {
            if !(t.is_finite() && t > 0.0) {
                return Err(Error::spec(format!(
                    "model.target_norm is {t}; give a finite number above zero"
                )));
            }
            let current = norm_of(&targets);
            if current == 0.0 {
                return Err(Error::spec(
                    "model.target_norm cannot rescale targets that are all zero",
                ));
            }
            targets.iter_mut().for_each(|v| *v *= t / current);
        }
        let dim = m * h + h * n;
        Ok(Relu {
            shape: Shape {
                n,
                h,
                m,
                samples,
                slices: Shape::slices_for(dim, samples),
            },
            inputs,
            targets,
            bias,
        })
    }

    pub fn dim(&self) -> usize {
        self.shape.dim()
    }

    /// x, then y, then b.
    pub fn constants(&self) -> Vec<f64> {
        [&self.inputs[..], &self.targets, &self.bias].concat()
    }

    fn sample(&self, i: usize) -> (&[f64], &[f64]) {
        let Shape { n, m, .. } = self.shape;
        (
            &self.inputs[i * n..(i + 1) * n],
            &self.targets[i * m..(i + 1) * m],
        )
    }

    /// f̂(x_i) for every sample.
    pub fn estimate(&self, theta: &[f64]) -> Vec<Vec<f64>> {
        let Shape { n, h, m, .. } = self.shape;
        (0..self.shape.samples)
            .map(|i| forward(n, h, m, theta, &self.bias, self.sample(i).0))
            .collect()
    }

    pub fn loss(&self, theta: &[f64]) -> f64 {
        let out = self.estimate(theta);
        0.5 * out
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.iter()
                    .zip(self.sample(i).1)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
            })
            .sum::<f64>()
    }

    pub fn gradient_f64(&self, theta: &[f64]) -> Vec<f64> {
        let shape = Shape {
            slices: 1,
            ..self.shape
        };
        let mut grad = vec![0.0; self.dim()];
        let mut work = vec![0.0; work_len(&shape)];
        gradient(&shape, &self.constants(), theta, &mut grad, &mut work);
        grad
    }

    /// max_i ‖x_i‖·‖y_i‖: what the metric equals at a fit.
    pub fn data_scale(&self) -> f64 {
        (0..self.shape.samples)
            .map(|i| {
                let (x, y) = self.sample(i);
                norm(x) * norm(y)
            })
            .fold(0.0, f64::max)
    }

    /// 1/max_i(‖x_i‖‖y_i‖): beyond it no fit is reachable; with N = 1 the edge is tight.
    pub fn step_size_max(&self) -> Option<f64> {
        let s = self.data_scale();
        (s > 0.0).then(|| 1.0 / s)
    }

    pub fn assess(&self, theta: &[f64], with_sharpness: bool) -> Assessment {
        let loss = self.loss(theta);
        let metric = self
            .estimate(theta)
            .iter()
            .enumerate()
            .map(|(i, f)| norm(self.sample(i).0) * norm(f))
            .fold(0.0, f64::max);
        let target_norm = norm(&self.targets);
        Assessment {
            spectral_radius: f64::NAN,
            loss,
            metric,
            sharpness: if with_sharpness {
                super::hessian::sharpness(theta, |t| self.gradient_f64(t))
            } else {
                f64::NAN
            },
            minimizer: None,
            // The theorem speaks of fits, f̂(x_i) = y_i for every i; GD can also
            // stop where every hidden unit is dead (zero gradient, no fit). The
            // slack covers an f32 stop.
            at_minimum: (2.0 * loss).sqrt() <= 1e-3 * (1.0 + target_norm),
        }
    }

    pub fn theory(&self) -> serde_json::Value {
        let Shape {
            n,
            h,
            m,
            samples,
            slices,
        } = self.shape;
        serde_json::json!({
            "model": "relu",
            "input_size": n,
            "hidden": h,
            "output_size": m,
            "samples": samples,
            "slices": slices,
            "data_scale": self.data_scale(),
            "metric": "max_i ‖x_i‖·‖f̂(x_i)‖",
            "bound": "max_i ‖x_i‖·‖f̂(x_i)‖ <= 1/step_size",
            "step_size_max": self.step_size_max(),
            "step_size_max_formula": "1/max_i(‖x_i‖·‖y_i‖)",
        })
    }
}

impl Family for Relu {
    type Spec = ReluSpec;
    const KIND: &'static str = "relu";
    /// A step is a loop over the samples with the activations of each in the
    /// workspace, so few lanes stay in registers.
    const LANES: Lanes = Lanes::all(16);

    fn build(spec: &ReluSpec) -> Result<Self> {
        Relu::new(spec)
    }

    fn dim(&self) -> usize {
        self.shape.dim()
    }

    fn loss(&self, theta: &[f64]) -> f64 {
        Relu::loss(self, theta)
    }

    fn work_len(&self) -> usize {
        work_len(&self.shape)
    }

    /// Layer 1 is V (after W in θ = [W | V]), layer 2 is W; b is fixed.
    fn layers(&self) -> Vec<std::ops::Range<usize>> {
        let w = self.shape.m * self.shape.h;
        vec![w..self.shape.dim(), 0..w]
    }

    fn constants(&self) -> Vec<f64> {
        Relu::constants(self)
    }

    #[inline(always)]
    fn gradient<A: Arith>(
        &self,
        constants: &[A::Scalar],
        theta: &[A],
        grad: &mut [A],
        work: &mut [A],
    ) {
        gradient(&self.shape, constants, theta, grad, work);
    }

    fn assess(&self, theta: &[f64], replicate: u64) -> Assessment {
        Relu::assess(self, theta, replicate < SHARPNESS_SAMPLES)
    }

    /// max_i ‖x_i‖‖f̂(x_i)‖ ≤ 1/δ (docs/theory.md §4).
    fn bound(&self, step_size: f64) -> f64 {
        1.0 / step_size
    }

    fn step_size_max(&self) -> Option<f64> {
        Relu::step_size_max(self)
    }

    /// No fit past δ = 1/max_i(‖x_i‖‖y_i‖), tight for N = 1.
    fn edges(&self) -> Vec<Edge> {
        Relu::step_size_max(self)
            .map(|d| Edge {
                step_size: d,
                name: "1/max‖x‖‖y‖".into(),
                curve: "δ·max‖x‖‖y‖ = 1".into(),
            })
            .into_iter()
            .collect()
    }

    fn theory(&self) -> serde_json::Value {
        Relu::theory(self)
    }

    fn kernel(&self, rule: &StopRule, limits: DeviceLimits, precision: Precision) -> KernelPlan {
        gpu::kernel(self, rule, limits, precision)
    }

    /// Per sample: Vx − b, Wa − y, Wᵀr and the two outer products; then the
    /// update.
    fn flops_per_step(&self) -> f64 {
        let s = &self.shape;
        let (n, h, m, samples) = (s.n as f64, s.h as f64, s.m as f64, s.samples as f64);
        samples * (4.0 * h * n + 6.0 * m * h + h + m) + 2.0 * (m * h + h * n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(n: u32, h: u32, m: u32, samples: u32) -> ReluSpec {
        ReluSpec {
            input_size: n,
            hidden: h,
            output_size: m,
            samples: Some(samples),
            inputs: InputSpec::Gaussian { std: 1.0, seed: 3 },
            targets: TargetSpec::Teacher { std: 1.0, seed: 4 },
            target_norm: None,
            bias_std: 0.5,
            bias_seed: 5,
            bias: None,
        }
    }

    #[test]
    fn gradient_matches_finite_differences_in_f64() {
        for (n, h, m, samples) in [(1, 20, 1, 1), (1, 20, 1, 64), (3, 7, 2, 9), (4, 64, 2, 16)] {
            let model = Relu::new(&spec(n, h, m, samples)).unwrap();
            let mut rng = TrajectoryRng::new(9, 9);
            let theta: Vec<f64> = (0..model.dim()).map(|_| rng.normal()).collect();
            // The order the kernel uses (S slices and a tree) and the plain one.
            let mut sliced = vec![0.0; model.dim()];
            let mut work = vec![0.0; work_len(&model.shape)];
            gradient(
                &model.shape,
                &model.constants(),
                &theta,
                &mut sliced,
                &mut work,
            );
            let plain = model.gradient_f64(&theta);
            for j in 0..theta.len() {
                let step = 1e-6;
                let (mut up, mut down) = (theta.clone(), theta.clone());
                up[j] += step;
                down[j] -= step;
                let fd = (model.loss(&up) - model.loss(&down)) / (2.0 * step);
                for g in [sliced[j], plain[j]] {
                    assert!(
                        (g - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                        "({n},{h},{m},{samples}) j={j}: {g} vs {fd}"
                    );
                }
            }
        }
    }

    #[test]
    fn slices_depend_on_the_sizes_alone() {
        let slices = |n, h, m, samples| Relu::new(&spec(n, h, m, samples)).unwrap().shape.slices;
        assert_eq!(slices(1, 20, 1, 1), 1);
        assert_eq!(slices(1, 20, 1, 64), 4);
        assert_eq!(slices(1, 2, 1, 64), 16);
        assert_eq!(slices(4, 64, 2, 256), 1);
    }

    #[test]
    fn a_fit_sits_on_the_bound_edge_and_a_balanced_one_sample_fit_has_sharpness_two_xy() {
        // N = 1, x = 2, y = 3: W = (c), V = (v), b = 0 with c·2v = 3 and
        // balanced ‖a‖² = ‖x‖‖y‖ = 6, so a = 2v = √6 and c = 3/√6.
        let model = Relu::new(&ReluSpec {
            inputs: InputSpec::Given {
                samples: vec![vec![2.0]],
            },
            targets: TargetSpec::Constant {},
            target_norm: Some(3.0),
            bias: Some(vec![0.0]),
            samples: None,
            ..spec(1, 1, 1, 1)
        })
        .unwrap();
        assert_eq!(model.step_size_max(), Some(1.0 / 6.0));
        let a = 6f64.sqrt();
        let fit = model.assess(&[3.0 / a, a / 2.0], true);
        assert!(fit.loss < 1e-24 && fit.at_minimum);
        assert!((fit.metric - 6.0).abs() < 1e-12);
        assert!((fit.sharpness - 12.0).abs() < 1e-5, "{}", fit.sharpness);
        // A dead unit: zero gradient, no fit.
        let dead = model.assess(&[1.0, -1.0], false);
        assert!(!dead.at_minimum && model.gradient_f64(&[1.0, -1.0]) == vec![0.0, 0.0]);
    }

    #[test]
    fn bad_sizes_and_data_get_one_sentence() {
        for (n, h, m, samples) in [
            (0, 2, 1, 1),
            (65, 2, 1, 1),
            (1, 257, 1, 1),
            (1, 2, 17, 1),
            (1, 2, 1, 4097),
            (1, 2, 1, 0),
        ] {
            let e = Relu::new(&spec(n, h, m, samples)).unwrap_err().to_string();
            assert!(e.starts_with("model.") && e.contains("from 1 to"), "{e}");
        }
        let e = Relu::new(&ReluSpec {
            samples: None,
            ..spec(1, 2, 1, 1)
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("model.samples is missing"), "{e}");
        let e = Relu::new(&ReluSpec {
            bias: Some(vec![1.0]),
            ..spec(1, 2, 1, 1)
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("model.bias has 1 values"), "{e}");
    }
}
