//! Model `mlp`: a fully connected network with 1 to 4 hidden layers, biases
//! trained, f̂(x) = W_{L+1} φ(⋯ φ(W_1 x + b_1) ⋯) + b_{L+1}, on the mean
//! squared error f = (1/(N·m)) Σ_i ‖f̂(x_i) − y_i‖² over N samples
//! (docs/theory.md, "The MLP"). φ is tanh, relu or the identity. The WGSL
//! twin is `shaders/mlp.wgsl`.
//!
//! θ holds the layers in order, each as W_l (row-major, fan-out × fan-in)
//! then b_l. Sample by sample, in order, the forward pass keeps every hidden
//! layer's activations; the backward pass starts from
//! δ_{L+1} = c(f̂(x_i) − y_i) with c = 2/(N·m), adds δ_l a_{l−1}ᵀ and δ_l to
//! layer l's gradient, and forms δ_{l−1} = (W_lᵀδ_l) ⊙ φ′(z_{l−1}). Every sum
//! runs from zero in the order written, on every backend.

use serde::{Deserialize, Serialize};

mod gpu;

use super::relu::data::{self, size, Design, InputSpec, TargetSpec};
use crate::error::{Error, Result};
use crate::models::{Assessment, Family, Lanes};
use crate::real::{Arith, Precision};
use crate::shaders::{DeviceLimits, KernelPlan};
use crate::stopping::StopRule;

pub const MAX_INPUT: u32 = 64;
pub const MAX_DEPTH: usize = 4;
pub const MAX_WIDTH: u32 = 64;
pub const MAX_OUTPUT: u32 = 16;
pub const MAX_SAMPLES: u32 = 1024;

/// The hidden layers' nonlinearity.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Tanh,
    Relu,
    Identity,
}

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Identity => "identity",
        }
    }

    /// φ(z), as every backend computes it.
    #[inline(always)]
    fn apply<A: Arith>(self, z: A) -> A {
        match self {
            Activation::Tanh => z.tanh_mirrored(),
            Activation::Relu => z.positive_part(),
            Activation::Identity => z,
        }
    }

    /// g·φ′(z), from a = φ(z): g(1 − a²), g where a > 0, or g.
    #[inline(always)]
    fn back<A: Arith>(self, g: A, a: A) -> A {
        match self {
            Activation::Tanh => g * (A::one() - a * a),
            Activation::Relu => g.gated_by(a),
            Activation::Identity => g,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MlpSpec {
    /// n, the input dimension (1 to 64).
    pub input_size: u32,
    /// The width of each hidden layer, input side first (1 to 4 layers, each
    /// 1 to 64 wide).
    pub hidden: Vec<u32>,
    /// m, the output dimension (1 to 16).
    pub output_size: u32,
    #[serde(default)]
    pub activation: Activation,
    /// N; taken from the inputs when they come from a file or a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
    pub inputs: InputSpec,
    pub targets: TargetSpec,
}

/// The widths that fix the order of the gradient's float operations:
/// widths[0] = n, widths[1..=depth] the hidden layers, widths[depth + 1] = m.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub widths: [usize; MAX_DEPTH + 2],
    pub depth: usize,
    pub samples: usize,
}

impl Shape {
    /// Weight layers: the hidden ones and the output.
    pub fn layers(&self) -> usize {
        self.depth + 1
    }

    pub fn n(&self) -> usize {
        self.widths[0]
    }

    pub fn m(&self) -> usize {
        self.widths[self.depth + 1]
    }

    /// Where W_l starts in θ (l = 1 …), and b_l right after it.
    pub fn w_off(&self, l: usize) -> usize {
        (1..l)
            .map(|k| self.widths[k] * (self.widths[k - 1] + 1))
            .sum()
    }

    pub fn b_off(&self, l: usize) -> usize {
        self.w_off(l) + self.widths[l] * self.widths[l - 1]
    }

    pub fn dim(&self) -> usize {
        self.w_off(self.layers() + 1)
    }

    /// Where hidden layer l's activations start in the workspace (l = 1 …
    /// depth); the input layer (l = 0) is read from the samples.
    pub fn a_off(&self, l: usize) -> usize {
        (1..l).map(|k| self.widths[k]).sum()
    }

    /// The output's residual in the workspace, then two buffers of δ.
    pub fn r_off(&self) -> usize {
        self.a_off(self.depth + 1)
    }

    pub fn widest(&self) -> usize {
        self.widths[..=self.depth + 1]
            .iter()
            .copied()
            .max()
            .unwrap_or(1)
    }

    pub fn d_off(&self, which: usize) -> usize {
        self.r_off() + self.m() + which * self.widest()
    }
}

/// The gradient's workspace: the hidden activations, the residual and two
/// buffers of δ.
pub fn work_len(s: &Shape) -> usize {
    s.d_off(2)
}

/// Writes ∇f into `grad` (see the module's documentation). `constants` holds
/// x (N × n), y (N × m) and c = 2/(N·m).
#[inline(always)]
pub fn gradient<A: Arith>(
    s: &Shape,
    phi: Activation,
    constants: &[A::Scalar],
    theta: &[A],
    grad: &mut [A],
    work: &mut [A],
) {
    let (n, m, depth) = (s.n(), s.m(), s.depth);
    let (x, rest) = constants.split_at(s.samples * n);
    let (y, rest) = rest.split_at(s.samples * m);
    let c = A::splat(rest[0]);
    grad.fill(A::zero());
    for i in 0..s.samples {
        let xi = &x[i * n..(i + 1) * n];
        // The input of layer l, entry j.
        let input = |work: &[A], l: usize, j: usize| -> A {
            if l == 1 {
                A::splat(xi[j])
            } else {
                work[s.a_off(l - 1) + j]
            }
        };
        for l in 1..=depth + 1 {
            let (fan_in, fan_out) = (s.widths[l - 1], s.widths[l]);
            let (w, b) = (s.w_off(l), s.b_off(l));
            for k in 0..fan_out {
                let mut acc = A::zero();
                for j in 0..fan_in {
                    acc = acc + theta[w + k * fan_in + j] * input(work, l, j);
                }
                let z = acc + theta[b + k];
                if l <= depth {
                    work[s.a_off(l) + k] = phi.apply(z);
                } else {
                    work[s.r_off() + k] = (z - A::splat(y[i * m + k])) * c;
                }
            }
        }
        let mut delta = s.r_off();
        let mut spare = s.d_off(0);
        for l in (1..=depth + 1).rev() {
            let (fan_in, fan_out) = (s.widths[l - 1], s.widths[l]);
            let (w, b) = (s.w_off(l), s.b_off(l));
            for k in 0..fan_out {
                let d = work[delta + k];
                for j in 0..fan_in {
                    let e = w + k * fan_in + j;
                    grad[e] = grad[e] + d * input(work, l, j);
                }
                grad[b + k] = grad[b + k] + d;
            }
            if l >= 2 {
                for j in 0..fan_in {
                    let mut acc = A::zero();
                    for k in 0..fan_out {
                        acc = acc + theta[w + k * fan_in + j] * work[delta + k];
                    }
                    work[spare + j] = phi.back(acc, work[s.a_off(l - 1) + j]);
                }
                let next = if spare == s.d_off(0) {
                    s.d_off(1)
                } else {
                    s.d_off(0)
                };
                delta = spare;
                spare = next;
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct Mlp {
    pub shape: Shape,
    pub activation: Activation,
    pub inputs: Vec<f64>,
    pub targets: Vec<f64>,
}

/// f̂(x) in f64 at θ, for the teacher and the assessments.
pub fn forward(s: &Shape, phi: Activation, theta: &[f64], x: &[f64]) -> Vec<f64> {
    let mut a = x.to_vec();
    for l in 1..=s.depth + 1 {
        let (fan_in, fan_out) = (s.widths[l - 1], s.widths[l]);
        let (w, b) = (s.w_off(l), s.b_off(l));
        a = (0..fan_out)
            .map(|k| {
                let z = (0..fan_in)
                    .map(|j| theta[w + k * fan_in + j] * a[j])
                    .sum::<f64>()
                    + theta[b + k];
                if l <= s.depth {
                    phi.apply(z)
                } else {
                    z
                }
            })
            .collect();
    }
    a
}

impl Mlp {
    pub fn new(spec: &MlpSpec) -> Result<Mlp> {
        let n = size("input_size", spec.input_size, MAX_INPUT, "n")?;
        let m = size("output_size", spec.output_size, MAX_OUTPUT, "m")?;
        if spec.hidden.is_empty() || spec.hidden.len() > MAX_DEPTH {
            return Err(Error::spec(format!(
                "model.hidden has {} layers; give 1 to {MAX_DEPTH} widths, such as hidden = [16]",
                spec.hidden.len()
            )));
        }
        let mut widths = [0; MAX_DEPTH + 2];
        widths[0] = n;
        for (l, &h) in spec.hidden.iter().enumerate() {
            widths[l + 1] = size("hidden", h, MAX_WIDTH, "each width")?;
        }
        let depth = spec.hidden.len();
        widths[depth + 1] = m;
        let samples = data::samples(&spec.inputs, n, spec.samples, MAX_SAMPLES)?;
        let shape = Shape {
            widths,
            depth,
            samples,
        };
        let inputs = spec.inputs.generate(n, samples)?;
        let teacher = |theta: &[f64], x: &[f64]| forward(&shape, spec.activation, theta, x);
        let targets = spec.targets.generate(&Design {
            n,
            m,
            x: &inputs,
            teacher_dim: shape.dim(),
            teacher: &teacher,
        })?;
        Ok(Mlp {
            shape,
            activation: spec.activation,
            inputs,
            targets,
        })
    }

    /// x, then y, then c = 2/(N·m).
    pub fn constants(&self) -> Vec<f64> {
        let c = 2.0 / (self.shape.samples * self.shape.m()) as f64;
        [&self.inputs[..], &self.targets, &[c]].concat()
    }

    pub fn loss(&self, theta: &[f64]) -> f64 {
        let (n, m) = (self.shape.n(), self.shape.m());
        let total: f64 = (0..self.shape.samples)
            .map(|i| {
                forward(
                    &self.shape,
                    self.activation,
                    theta,
                    &self.inputs[i * n..(i + 1) * n],
                )
                .iter()
                .zip(&self.targets[i * m..(i + 1) * m])
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
            })
            .sum();
        total / (self.shape.samples * m) as f64
    }

    pub fn gradient_f64(&self, theta: &[f64]) -> Vec<f64> {
        let mut grad = vec![0.0; self.shape.dim()];
        let mut work = vec![0.0; work_len(&self.shape)];
        gradient(
            &self.shape,
            self.activation,
            &self.constants(),
            theta,
            &mut grad,
            &mut work,
        );
        grad
    }
}

impl Family for Mlp {
    type Spec = MlpSpec;
    const KIND: &'static str = "mlp";
    /// Like relu's, a step loops over the samples with each one's
    /// activations in the workspace.
    const LANES: Lanes = Lanes::all(16);

    fn build(spec: &MlpSpec) -> Result<Self> {
        Mlp::new(spec)
    }

    fn dim(&self) -> usize {
        self.shape.dim()
    }

    fn loss(&self, theta: &[f64]) -> f64 {
        Mlp::loss(self, theta)
    }

    fn work_len(&self) -> usize {
        work_len(&self.shape)
    }

    /// Layer l is W_l with b_l.
    fn layers(&self) -> Vec<std::ops::Range<usize>> {
        (1..=self.shape.layers())
            .map(|l| self.shape.w_off(l)..self.shape.w_off(l + 1))
            .collect()
    }

    fn constants(&self) -> Vec<f64> {
        Mlp::constants(self)
    }

    #[inline(always)]
    fn gradient<A: Arith>(
        &self,
        constants: &[A::Scalar],
        theta: &[A],
        grad: &mut [A],
        work: &mut [A],
    ) {
        gradient(&self.shape, self.activation, constants, theta, grad, work);
    }

    /// The metric is the sharpness itself, for every converged trajectory:
    /// no closed form bounds another quantity here. Any point GD converges
    /// to is a stable fixed point, so every convergence counts.
    fn assess(&self, theta: &[f64], _replicate: u64) -> Assessment {
        let sharpness = super::hessian::sharpness(theta, super::family::gradient_f64(self));
        Assessment {
            loss: self.loss(theta),
            metric: sharpness,
            sharpness,
            spectral_radius: f64::NAN,
            minimizer: None,
            at_minimum: true,
        }
    }

    /// S ≤ 2/δ: a minimum sharper than that is not stable.
    fn bound(&self, step_size: f64) -> f64 {
        2.0 / step_size
    }

    /// Where the minima's sharpness is not known beforehand, no step size
    /// rules every convergence out.
    fn step_size_max(&self) -> Option<f64> {
        None
    }

    fn theory(&self) -> serde_json::Value {
        let s = &self.shape;
        serde_json::json!({
            "model": "mlp",
            "input_size": s.n(),
            "hidden": &s.widths[1..=s.depth],
            "output_size": s.m(),
            "activation": self.activation.name(),
            "samples": s.samples,
            "parameters": s.dim(),
            "loss": "(1/(N·m)) Σ_i ‖f̂(x_i) − y_i‖²",
            "metric": "S, the top Hessian eigenvalue at the point reached",
            "bound": "S <= 2/step_size",
        })
    }

    fn kernel(&self, rule: &StopRule, limits: DeviceLimits, precision: Precision) -> KernelPlan {
        gpu::kernel(self, rule, limits, precision)
    }

    /// Per sample, a forward and a backward pass: two multiply-adds per
    /// weight each way and one more for the weight's gradient; tanh costs
    /// about 40 operations a unit. Then the update.
    fn flops_per_step(&self) -> f64 {
        let s = &self.shape;
        let weights: usize = (1..=s.layers())
            .map(|l| s.widths[l] * s.widths[l - 1])
            .sum();
        let units: usize = s.widths[1..=s.depth].iter().sum();
        let per_unit = match self.activation {
            Activation::Tanh => 40.0,
            _ => 1.0,
        };
        s.samples as f64 * (6.0 * weights as f64 + per_unit * units as f64 + 4.0 * s.m() as f64)
            + 2.0 * s.dim() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(activation: Activation, hidden: Vec<u32>) -> Mlp {
        Mlp::new(&MlpSpec {
            input_size: 3,
            hidden,
            output_size: 2,
            activation,
            samples: Some(7),
            inputs: InputSpec::Gaussian { std: 1.0, seed: 1 },
            targets: TargetSpec::Gaussian { std: 1.0, seed: 2 },
        })
        .unwrap()
    }

    /// The gradient is the loss's, by central differences, for every
    /// activation and depth.
    #[test]
    fn gradient_is_the_derivative_of_the_loss() {
        for activation in [Activation::Tanh, Activation::Relu, Activation::Identity] {
            for hidden in [vec![4], vec![5, 3, 2]] {
                let m = model(activation, hidden.clone());
                let dim = m.shape.dim();
                let mut rng = crate::rng::TrajectoryRng::new(3, 0);
                let theta: Vec<f64> = (0..dim).map(|_| 0.7 * rng.normal()).collect();
                let g = m.gradient_f64(&theta);
                for e in 0..dim {
                    let h = 1e-6;
                    let mut up = theta.clone();
                    up[e] += h;
                    let mut down = theta.clone();
                    down[e] -= h;
                    let numeric = (m.loss(&up) - m.loss(&down)) / (2.0 * h);
                    assert!(
                        (numeric - g[e]).abs() <= 1e-6 * (1.0 + numeric.abs()),
                        "{activation:?} {hidden:?} entry {e}: {numeric} vs {}",
                        g[e]
                    );
                }
            }
        }
    }

    #[test]
    fn layers_cover_the_parameters_in_order() {
        let m = model(Activation::Tanh, vec![5, 3]);
        // W1 5×3 + b1 5, W2 3×5 + b2 3, W3 2×3 + b3 2.
        assert_eq!(m.shape.dim(), 20 + 18 + 8);
        assert_eq!(Family::layers(&m), vec![0..20, 20..38, 38..46]);
    }

    #[test]
    fn bad_shapes_get_one_sentence() {
        let mut spec = MlpSpec {
            input_size: 3,
            hidden: vec![],
            output_size: 2,
            activation: Activation::Tanh,
            samples: Some(7),
            inputs: InputSpec::Gaussian { std: 1.0, seed: 1 },
            targets: TargetSpec::Gaussian { std: 1.0, seed: 2 },
        };
        let e = Mlp::new(&spec).unwrap_err().to_string();
        assert!(e.contains("model.hidden has 0 layers"), "{e}");
        spec.hidden = vec![4, 4, 4, 4, 4];
        assert!(Mlp::new(&spec).is_err());
        spec.hidden = vec![65];
        let e = Mlp::new(&spec).unwrap_err().to_string();
        assert!(e.contains("from 1 to 64"), "{e}");
        spec.hidden = vec![4];
        spec.samples = Some(1025);
        assert!(Mlp::new(&spec).is_err());
    }
}
