//! The models a sweep can run. Each has a CPU reference here and a WGSL twin of
//! the same name in `shaders/` (the mirror principle: README.md, "GPU kernels").

pub mod deep_linear;
pub mod hessian;
pub mod poly;
pub mod relu;
pub mod relu_data;
pub mod scalar_deep;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::real::{Arith, Real};
use crate::rng::TrajectoryRng;
use crate::spec::InitSpec;

pub use deep_linear::{DeepLinear, DeepLinearSpec};
pub use poly::{Poly, PolySpec};
pub use relu::{Relu, ReluSpec};
pub use scalar_deep::{ScalarDeep, ScalarDeepSpec};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelSpec {
    /// A 1-D polynomial; the default is (x²+1)(x−1)²(x−2)² (docs/theory.md §1).
    Poly(PolySpec),
    /// ½(w_L⋯w_1 − λ)² (docs/theory.md §2).
    ScalarDeep(ScalarDeepSpec),
    /// ½‖W_L⋯W_1 − R‖²_F on whitened data, or with a given input covariance (docs/theory.md §3).
    DeepLinear(DeepLinearSpec),
    /// ½Σ_i‖W(Vx_i − b)₊ − y_i‖², b fixed (docs/theory.md §4).
    Relu(ReluSpec),
}

impl ModelSpec {
    pub fn build(&self) -> Result<Model> {
        match self {
            ModelSpec::Poly(p) => Ok(Model::Poly(Poly::new(p)?)),
            ModelSpec::ScalarDeep(s) => Ok(Model::ScalarDeep(ScalarDeep::new(s)?)),
            ModelSpec::DeepLinear(d) => Ok(Model::DeepLinear(DeepLinear::new(d)?)),
            ModelSpec::Relu(r) => Ok(Model::Relu(Relu::new(r)?)),
        }
    }
}

/// A model resolved for one cell: everything precomputed that the trajectories share.
#[derive(Clone, Debug)]
pub enum Model {
    Poly(Poly),
    ScalarDeep(ScalarDeep),
    DeepLinear(DeepLinear),
    Relu(Relu),
}

/// Replicates per cell whose sharpness is computed where it costs power
/// iteration (deep-linear, relu): the first ones of each cell, so the choice does
/// not depend on chunking.
pub const SHARPNESS_SAMPLES: u64 = 64;

/// What post-processing learns about one trajectory's final iterate (f64, on the CPU).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Assessment {
    pub loss: f64,
    /// The paper's bounded quantity at the final iterate (f'' for the polynomial).
    pub metric: f64,
    /// The top Hessian eigenvalue at the final iterate.
    pub sharpness: f64,
    /// The estimate's spectral radius (deep-linear); NaN where it has none.
    pub spectral_radius: f64,
    /// For the polynomial: which minimizer a converged trajectory reached.
    pub minimizer: Option<usize>,
    /// Whether the iterate is at a minimum the paper's bound speaks of (a
    /// minimizer of the polynomial, a global minimum of the networks). GD that
    /// stalls at a saddle or a maximum converges too, but elsewhere.
    pub at_minimum: bool,
}

impl Model {
    pub fn name(&self) -> &'static str {
        match self {
            Model::Poly(_) => "poly",
            Model::ScalarDeep(_) => "scalar-deep",
            Model::DeepLinear(_) => "deep-linear",
            Model::Relu(_) => "relu",
        }
    }

    /// Number of trained parameters.
    pub fn dim(&self) -> usize {
        match self {
            Model::Poly(_) => 1,
            Model::ScalarDeep(s) => s.layers,
            Model::DeepLinear(d) => d.dim(),
            Model::Relu(r) => r.dim(),
        }
    }

    /// Length of the gradient's workspace.
    pub fn work_len(&self) -> usize {
        match self {
            Model::Poly(_) => 0,
            Model::ScalarDeep(s) => s.layers,
            Model::DeepLinear(d) => deep_linear::work_len(d.layers, d.size),
            Model::Relu(r) => relu::work_len(&r.shape),
        }
    }

    /// Refuses initializations the model has no meaning for.
    pub fn check_init(&self, init: &InitSpec) -> Result<()> {
        let fits = match (self, init) {
            (_, InitSpec::Uniform { .. } | InitSpec::Gaussian { .. } | InitSpec::Point { .. }) => {
                true
            }
            (Model::Poly(_), InitSpec::Grid { .. }) => true,
            (Model::ScalarDeep(_), InitSpec::Balanced { .. }) => true,
            (Model::DeepLinear(_), InitSpec::Identity { .. } | InitSpec::Orthogonal { .. }) => true,
            (_, InitSpec::Given { values }) => {
                if values.len() != self.dim() {
                    return Err(Error::spec(format!(
                        "init.values has {} numbers but the {} model has {} parameters",
                        values.len(),
                        self.name(),
                        self.dim()
                    )));
                }
                true
            }
            _ => false,
        };
        if fits {
            Ok(())
        } else {
            Err(Error::spec(format!(
                "init kind '{}' does not apply to the {} model; see the README for the kinds it takes",
                init.name(),
                self.name()
            )))
        }
    }

    /// The initial parameters of replicate `replicate` of `trajectories`, drawn
    /// in f64 from the trajectory's own stream.
    pub fn initial(
        &self,
        init: &InitSpec,
        rng: &mut TrajectoryRng,
        replicate: u64,
        trajectories: u64,
        out: &mut [f64],
    ) {
        match (self, init) {
            (Model::ScalarDeep(s), InitSpec::Balanced { noise }) => s.balanced(*noise, rng, out),
            (Model::DeepLinear(d), InitSpec::Identity { scale }) => {
                d.initial_identity(*scale, rng, out)
            }
            (Model::DeepLinear(d), InitSpec::Orthogonal { scale }) => {
                d.initial_orthogonal(*scale, rng, out)
            }
            (_, InitSpec::Given { values }) => out.copy_from_slice(values),
            _ => {
                for x in out.iter_mut() {
                    *x = draw_scalar(init, rng, replicate, trajectories);
                }
            }
        }
    }

    /// The Philox blocks `initial` draws for one trajectory from `init`, where
    /// the count is fixed (0 where it is not, or nothing is drawn): a uniform
    /// takes two words, a normal four, one block. `Sweep::initials` computes
    /// them for many trajectories at once; a wrong count changes no draw,
    /// only how many blocks are computed beforehand.
    pub fn init_blocks(&self, init: &InitSpec) -> usize {
        let dim = self.dim();
        match (self, init) {
            (Model::ScalarDeep(_), InitSpec::Balanced { .. })
            | (Model::DeepLinear(_), InitSpec::Identity { .. }) => dim,
            (_, InitSpec::Uniform { .. }) => dim.div_ceil(2),
            (_, InitSpec::Gaussian { .. }) => dim,
            _ => 0,
        }
    }

    /// ∇f(θ) in the working precision, in the same order of operations as the kernel.
    /// The gradients are always inlined, for the CPU backend's per-instruction-set packs.
    #[inline(always)]
    pub fn gradient<A: Arith>(
        &self,
        constants: &[A::Scalar],
        theta: &[A],
        gradient: &mut [A],
        work: &mut [A],
    ) {
        use kernels::Kernel;
        match self {
            Model::Poly(_) => kernels::Poly::gradient(self, constants, theta, gradient, work),
            Model::ScalarDeep(_) => {
                kernels::ScalarDeep::gradient(self, constants, theta, gradient, work)
            }
            Model::DeepLinear(_) => {
                kernels::DeepLinear::gradient(self, constants, theta, gradient, work)
            }
            Model::Relu(_) => kernels::Relu::gradient(self, constants, theta, gradient, work),
        }
    }

    /// The model's constants in the working precision, for `gradient`.
    pub fn constants<R: Real>(&self) -> Vec<R> {
        match self {
            Model::Poly(p) => p.derivative.iter().map(|&c| R::of(c)).collect(),
            Model::ScalarDeep(s) => vec![R::of(s.lambda)],
            Model::DeepLinear(d) => d.constants().into_iter().map(R::of).collect(),
            Model::Relu(r) => r.constants().into_iter().map(R::of).collect(),
        }
    }

    /// Post-processing of a final iterate, in f64. `replicate` decides whether
    /// an expensive sharpness is computed (see SHARPNESS_SAMPLES).
    pub fn assess(&self, theta: &[f64], replicate: u64) -> Assessment {
        match self {
            Model::Poly(p) => p.assess(theta[0]),
            Model::ScalarDeep(s) => s.assess(theta),
            Model::DeepLinear(d) => d.assess(theta, replicate < SHARPNESS_SAMPLES),
            Model::Relu(r) => r.assess(theta, replicate < SHARPNESS_SAMPLES),
        }
    }

    /// `assess` of each (θ, replicate), in order, into `out`: the polynomial
    /// assesses many points at once.
    pub fn assess_many<'a>(
        &self,
        items: impl Iterator<Item = (&'a [f64], u64)>,
        out: &mut Vec<Assessment>,
    ) {
        match self {
            Model::Poly(p) => p.assess_many(items.map(|(theta, _)| theta[0]), out),
            _ => out.extend(items.map(|(theta, replicate)| self.assess(theta, replicate))),
        }
    }

    /// The bound on the metric at step size δ, from the paper.
    pub fn bound(&self, step_size: f64) -> f64 {
        match self {
            Model::Poly(_) | Model::ScalarDeep(_) => 2.0 / step_size,
            Model::DeepLinear(d) => d.bound(step_size),
            // max_i ‖x_i‖‖f̂(x_i)‖ ≤ 1/δ (docs/theory.md §4).
            Model::Relu(_) => 1.0 / step_size,
        }
    }

    /// The minimizers, for models that report convergence per minimizer.
    pub fn minimizers(&self) -> &[poly::Minimizer] {
        match self {
            Model::Poly(p) => &p.minimizers,
            _ => &[],
        }
    }

    /// The largest step size at which any trajectory can converge, where the theory gives one.
    pub fn step_size_max(&self) -> Option<f64> {
        match self {
            Model::Poly(p) => p.minimizers.iter().map(|m| m.threshold).reduce(f64::max),
            Model::ScalarDeep(s) => Some(s.step_size_max()),
            Model::DeepLinear(d) => Some(d.step_size_max()),
            Model::Relu(r) => r.step_size_max(),
        }
    }

    /// The theory for summary.json.
    pub fn theory(&self) -> serde_json::Value {
        match self {
            Model::Poly(p) => p.theory(),
            Model::ScalarDeep(s) => s.theory(),
            Model::DeepLinear(d) => d.theory(),
            Model::Relu(r) => r.theory(),
        }
    }
}

/// A uniform initialization's value for a uniform draw u in [0, 1).
#[inline(always)]
pub fn uniform_init(low: f64, high: f64, u: f64) -> f64 {
    low + (high - low) * u
}

/// One scalar draw from a scalar initialization.
pub fn draw_scalar(
    init: &InitSpec,
    rng: &mut TrajectoryRng,
    replicate: u64,
    trajectories: u64,
) -> f64 {
    match *init {
        InitSpec::Uniform { low, high } => uniform_init(low, high, rng.uniform()),
        InitSpec::Gaussian { mean, std } => mean + std * rng.normal(),
        InitSpec::Grid { low, high } => {
            low + (replicate as f64 + 0.5) * (high - low) / trajectories as f64
        }
        InitSpec::Point { x0 } => x0,
        _ => unreachable!("check_init admits only scalar initializations here"),
    }
}

/// Each model's gradient as a type, so the CPU backend can compile a pack
/// engine for one model alone (`Model::gradient` dispatches to these).
pub mod kernels {
    use super::{deep_linear, poly, relu, scalar_deep, Model};
    use crate::real::Arith;
    use crate::stopping::Record;

    pub trait Kernel: Send + Sync {
        fn gradient<A: Arith>(
            model: &Model,
            constants: &[A::Scalar],
            theta: &[A],
            grad: &mut [A],
            work: &mut [A],
        );

        /// `steps` gradient steps θ ← θ − δ∇f(θ), as `gradient` and the
        /// update compute them one by one, keeping each iterate's
        /// fingerprint where `record` says (see `PackGradient::advance`).
        #[allow(clippy::too_many_arguments)]
        #[inline(always)]
        fn advance<A: Arith>(
            model: &Model,
            constants: &[A::Scalar],
            theta: &mut [A],
            grad: &mut [A],
            work: &mut [A],
            delta: A,
            steps: u64,
            mut record: Option<Record<'_, A>>,
        ) {
            for s in 0..steps as usize {
                Self::gradient(model, constants, theta, grad, work);
                crate::stopping::update(theta, grad, delta);
                if let Some(r) = record.as_mut() {
                    r.keep(s, theta);
                }
            }
        }

        /// Whether the AVX-512 engines run `advance_rolled`, compiled as a
        /// function of its own rather than inlined into the lane engine.
        const ROLLED_ON_AVX512: bool = false;

        /// `advance` with the step's inner loop kept a loop, so that each of
        /// its operations is issued for the whole pack before the next (see
        /// `Poly`'s).
        #[allow(clippy::too_many_arguments)]
        #[inline(always)]
        fn advance_rolled<A: Arith>(
            model: &Model,
            constants: &[A::Scalar],
            theta: &mut [A],
            grad: &mut [A],
            work: &mut [A],
            delta: A,
            steps: u64,
            record: Option<Record<'_, A>>,
        ) {
            Self::advance(model, constants, theta, grad, work, delta, steps, record)
        }
    }

    pub enum Poly {}
    pub enum ScalarDeep {}
    pub enum DeepLinear {}
    pub enum Relu {}

    impl Kernel for Poly {
        #[inline(always)]
        fn gradient<A: Arith>(
            _: &Model,
            constants: &[A::Scalar],
            theta: &[A],
            grad: &mut [A],
            _: &mut [A],
        ) {
            grad[0] = poly::derivative(constants, theta[0]);
        }

        /// x stays in registers across the steps (AVX-512's f32 engine runs
        /// 256 lanes: 16 of its 32 registers for x, 16 for Horner's
        /// accumulator), so each step's chain is Horner's alone.
        #[inline(always)]
        fn advance<A: Arith>(
            _: &Model,
            constants: &[A::Scalar],
            theta: &mut [A],
            _: &mut [A],
            _: &mut [A],
            delta: A,
            steps: u64,
            record: Option<Record<'_, A>>,
        ) {
            // The paper's polynomial (f' of degree 5) with the coefficients as
            // an array: Horner's loop is unrolled, where the loop over a
            // slice rotated the accumulators through register moves on
            // every coefficient.
            if let Ok(fixed) = <&[A::Scalar; 6]>::try_from(constants) {
                theta[0] = poly_steps(fixed, theta[0], delta, steps, record);
            } else {
                theta[0] = poly_steps(constants, theta[0], delta, steps, record);
            }
        }

        /// With Horner's loop unrolled, LLVM orders each register's chain
        /// of a step one after another: the 16 registers of an AVX-512 pack
        /// are 16 independent chains, but the processor sees too few of
        /// them at once to keep both multipliers busy. Kept a loop (the
        /// coefficients' count hidden from the optimizer), each
        /// multiplication and addition is issued for all 16 registers in
        /// turn; compiled on its own, x and the accumulators keep their
        /// registers from one coefficient to the next. W1 ran 15% faster.
        /// On AVX2's 16 registers the unrolled form stays.
        const ROLLED_ON_AVX512: bool = true;

        #[inline(always)]
        fn advance_rolled<A: Arith>(
            _: &Model,
            constants: &[A::Scalar],
            theta: &mut [A],
            _: &mut [A],
            _: &mut [A],
            delta: A,
            steps: u64,
            record: Option<Record<'_, A>>,
        ) {
            let coefficients = std::hint::black_box(constants);
            theta[0] = poly_steps(coefficients, theta[0], delta, steps, record);
        }
    }

    /// `steps` poly steps from x, each new x's fingerprint kept where
    /// `record` says; `coefficients` are f' ascending.
    #[inline(always)]
    fn poly_steps<A: Arith>(
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
                    x = x - delta * poly::derivative(c, x);
                }
            }
            Some(mut r) => {
                for s in 0..steps as usize {
                    x = x - delta * poly::derivative(c, x);
                    r.keep(s, std::slice::from_ref(&x));
                }
            }
        }
        x
    }

    impl Kernel for ScalarDeep {
        #[inline(always)]
        fn gradient<A: Arith>(
            _: &Model,
            constants: &[A::Scalar],
            theta: &[A],
            grad: &mut [A],
            work: &mut [A],
        ) {
            scalar_deep::gradient(A::splat(constants[0]), theta, grad, work);
        }
    }

    impl Kernel for DeepLinear {
        #[inline(always)]
        fn gradient<A: Arith>(
            model: &Model,
            constants: &[A::Scalar],
            theta: &[A],
            grad: &mut [A],
            work: &mut [A],
        ) {
            let Model::DeepLinear(d) = model else {
                unreachable!("the deep-linear kernel runs deep-linear")
            };
            deep_linear::gradient(d.layers, d.size, constants, theta, grad, work);
        }
    }

    impl Kernel for Relu {
        #[inline(always)]
        fn gradient<A: Arith>(
            model: &Model,
            constants: &[A::Scalar],
            theta: &[A],
            grad: &mut [A],
            work: &mut [A],
        ) {
            let Model::Relu(r) = model else {
                unreachable!("the relu kernel runs relu")
            };
            relu::gradient(&r.shape, constants, theta, grad, work);
        }
    }
}
