//! The model families a sweep can run. Each family is one folder here (its
//! spec, math, theory and GPU kernel plan) and one WGSL file of the same name
//! in `shaders/`, and is registered once, in `for_each_family!` below; see
//! docs/architecture.md, "Adding a model family".

pub mod deep_linear;
pub mod family;
pub mod hessian;
pub mod init;
pub mod mlp;
pub mod poly;
pub mod relu;
pub mod scalar_deep;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::real::{Arith, Precision, Real};
use crate::rng::TrajectoryRng;
use crate::shaders::{DeviceLimits, KernelPlan};
use crate::stopping::StopRule;

pub use deep_linear::{DeepLinear, DeepLinearSpec};
pub use family::{Edge, Family, Lanes};
pub use init::{draw_scalar, uniform_init, InitSpec};
pub use mlp::{Mlp, MlpSpec};
pub use poly::{Poly, PolySpec};
pub use relu::{Relu, ReluSpec};
pub use scalar_deep::{ScalarDeep, ScalarDeepSpec};

/// θ ↦ ∇f(θ) in f64 (see `Model::gradient_f64`).
pub type GradientF64<'a> = dyn Fn(&[f64]) -> Vec<f64> + 'a;

/// The registry: every model family, once. `$callback!` receives the list as
/// `Variant(Family, Spec),*`, each entry with its doc comment, after the
/// arguments given it and a `;`. The spec's `kind` is the variant in kebab
/// case, and a test holds it to `Family::KIND`.
#[macro_export]
macro_rules! for_each_family {
    ($callback:path $(, $arg:tt)*) => {
        $callback! {
            $($arg,)* ;
            /// A 1-D polynomial; the default is (x²+1)(x−1)²(x−2)² (docs/theory.md §1).
            Poly($crate::models::Poly, $crate::models::PolySpec),
            /// ½(w_L⋯w_1 − λ)² (docs/theory.md §2).
            ScalarDeep($crate::models::ScalarDeep, $crate::models::ScalarDeepSpec),
            /// ½‖W_L⋯W_1 − R‖²_F on whitened data, or with a given input covariance (docs/theory.md §3).
            DeepLinear($crate::models::DeepLinear, $crate::models::DeepLinearSpec),
            /// ½Σ_i‖W(Vx_i − b)₊ − y_i‖², b fixed (docs/theory.md §4).
            Relu($crate::models::Relu, $crate::models::ReluSpec),
            /// A tanh, relu or linear MLP with biases, on the mean squared error (docs/theory.md, "The MLP").
            Mlp($crate::models::Mlp, $crate::models::MlpSpec),
        }
    };
}

/// `ModelSpec`, `Model` and `Model`'s dispatch, from the registry.
macro_rules! model_enums {
    (; $($(#[$doc:meta])* $variant:ident($family:ty, $spec:ty)),* $(,)?) => {
        #[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        pub enum ModelSpec {
            $($(#[$doc])* $variant($spec)),*
        }

        impl ModelSpec {
            pub fn build(&self) -> Result<Model> {
                match self {
                    $(ModelSpec::$variant(s) => Ok(Model::$variant(<$family>::build(s)?))),*
                }
            }

            /// The spec's `kind`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(ModelSpec::$variant(_) => <$family as Family>::KIND),*
                }
            }
        }

        /// A model resolved for one cell: everything precomputed that the trajectories share.
        #[derive(Clone, Debug)]
        pub enum Model {
            $($variant($family)),*
        }

        /// Runs `$body` with `$m` bound to the model's family value.
        macro_rules! each {
            ($model:expr, $m:ident => $body:expr) => {
                match $model {
                    $(Model::$variant($m) => $body),*
                }
            };
        }
    };
}

for_each_family!(model_enums);

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
    /// The spec's `kind`.
    pub fn name(&self) -> &'static str {
        fn kind<F: Family>(_: &F) -> &'static str {
            F::KIND
        }
        each!(self, m => kind(m))
    }

    /// The model as family F's value, where it is one.
    pub fn family<F: Family>(&self) -> Option<&F> {
        each!(self, m => (m as &dyn std::any::Any).downcast_ref::<F>())
    }

    /// Number of trained parameters.
    pub fn dim(&self) -> usize {
        each!(self, m => Family::dim(m))
    }

    /// Length of the gradient's workspace.
    pub fn work_len(&self) -> usize {
        each!(self, m => Family::work_len(m))
    }

    /// The parameters of each layer, layer 1 first (see `Family::layers`).
    pub fn layers(&self) -> Vec<std::ops::Range<usize>> {
        each!(self, m => Family::layers(m))
    }

    /// The dominant Hessian eigenvalue at θ (see `Family::sharpness`).
    pub fn sharpness(&self, theta: &[f64]) -> f64 {
        each!(self, m => Family::sharpness(m, theta))
    }

    /// f(θ) in f64 (see `Family::loss`).
    pub fn loss(&self, theta: &[f64]) -> f64 {
        each!(self, m => Family::loss(m, theta))
    }

    /// The layer (0-based) of each parameter.
    pub fn layer_of(&self) -> Vec<u32> {
        let mut out = vec![0; self.dim()];
        for (l, range) in self.layers().into_iter().enumerate() {
            out[range].fill(l as u32);
        }
        out
    }

    /// θ ↦ ∇f(θ) in f64, from the family's own gradient, its constants
    /// built once: for the many Hessian-vector products of a power
    /// iteration on the CPU.
    pub fn gradient_f64(&self) -> Box<GradientF64<'_>> {
        each!(self, m => Box::new(family::gradient_f64(m)))
    }

    /// Refuses initializations the model has no meaning for.
    pub fn check_init(&self, init: &InitSpec) -> Result<()> {
        let fits = match init {
            InitSpec::Uniform { .. } | InitSpec::Gaussian { .. } | InitSpec::Point { .. } => true,
            InitSpec::Given { values } => {
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
            _ => each!(self, m => Family::takes(m, init)),
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
        match init {
            InitSpec::Given { values } => out.copy_from_slice(values),
            InitSpec::Uniform { .. }
            | InitSpec::Gaussian { .. }
            | InitSpec::Grid { .. }
            | InitSpec::Point { .. } => {
                for x in out.iter_mut() {
                    *x = draw_scalar(init, rng, replicate, trajectories);
                }
            }
            _ => each!(self, m => Family::draw(m, init, rng, out)),
        }
    }

    /// The Philox blocks `initial` draws for one trajectory from `init`, where
    /// the count is fixed (0 where it is not, or nothing is drawn): a uniform
    /// takes two words, a normal four, one block. `Sweep::initials` computes
    /// them for many trajectories at once; a wrong count changes no draw,
    /// only how many blocks are computed beforehand.
    pub fn init_blocks(&self, init: &InitSpec) -> usize {
        let dim = self.dim();
        match init {
            InitSpec::Uniform { .. } => dim.div_ceil(2),
            InitSpec::Gaussian { .. } => dim,
            InitSpec::Grid { .. } | InitSpec::Point { .. } | InitSpec::Given { .. } => 0,
            _ => each!(self, m => Family::draw_blocks(m, init)),
        }
    }

    /// ∇f(θ) in the working precision, in the same order of operations as the kernel.
    #[inline(always)]
    pub fn gradient<A: Arith>(
        &self,
        constants: &[A::Scalar],
        theta: &[A],
        gradient: &mut [A],
        work: &mut [A],
    ) {
        each!(self, m => Family::gradient(m, constants, theta, gradient, work))
    }

    /// The model's constants in the working precision, for `gradient`.
    pub fn constants<R: Real>(&self) -> Vec<R> {
        each!(self, m => Family::constants(m))
            .into_iter()
            .map(R::of)
            .collect()
    }

    /// Post-processing of a final iterate, in f64. `replicate` decides whether
    /// an expensive sharpness is computed (see SHARPNESS_SAMPLES).
    pub fn assess(&self, theta: &[f64], replicate: u64) -> Assessment {
        each!(self, m => Family::assess(m, theta, replicate))
    }

    /// `assess` of each (θ, replicate), in order, into `out`.
    pub fn assess_many<'a>(
        &self,
        items: impl Iterator<Item = (&'a [f64], u64)>,
        out: &mut Vec<Assessment>,
    ) {
        each!(self, m => Family::assess_many(m, items, out))
    }

    /// The theorem's bound on the metric at step size δ.
    pub fn bound(&self, step_size: f64) -> f64 {
        each!(self, m => Family::bound(m, step_size))
    }

    /// The minimizers, for models that report convergence per minimizer.
    pub fn minimizers(&self) -> &[poly::Minimizer] {
        each!(self, m => Family::minimizers(m))
    }

    /// The largest step size at which any trajectory can converge, where the theory gives one.
    pub fn step_size_max(&self) -> Option<f64> {
        each!(self, m => Family::step_size_max(m))
    }

    /// The step sizes the figures mark.
    pub fn edges(&self) -> Vec<Edge> {
        each!(self, m => Family::edges(m))
    }

    /// The 1-D gradient map of the bifurcation diagram, where the model is one.
    pub fn scalar_map(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        each!(self, m => Family::scalar_map(m))
    }

    /// The theory for summary.json.
    pub fn theory(&self) -> serde_json::Value {
        each!(self, m => Family::theory(m))
    }

    /// The model's WGSL kernel, specialized to its sizes and constants,
    /// computing in `precision`.
    pub fn kernel(
        &self,
        rule: &StopRule,
        limits: DeviceLimits,
        precision: Precision,
    ) -> KernelPlan {
        let mut plan = each!(self, m => Family::kernel(m, rule, limits, precision));
        if rule.step_slots > 1 {
            plan.layer_of = self.layer_of();
        }
        plan
    }

    /// The CPU engine's lanes per pack on `isa`, in f32 (`single`) or f64.
    pub fn lanes(&self, isa: crate::isa::Isa, single: bool) -> usize {
        fn of<F: Family>(_: &F, isa: crate::isa::Isa, single: bool) -> usize {
            F::LANES.of(isa, single)
        }
        each!(self, m => of(m, isa, single))
    }

    /// Floating-point operations per gradient step.
    pub fn flops_per_step(&self) -> f64 {
        each!(self, m => Family::flops_per_step(m))
    }
}

#[cfg(test)]
mod tests {
    /// Each family's `KIND` is the `kind` its spec is written with, and
    /// names the model it builds: the registry's variant names and the
    /// families cannot drift apart.
    #[test]
    fn every_registered_kind_is_its_familys() {
        let mut kinds = Vec::new();
        for (name, text) in crate::presets::PRESETS {
            let spec = crate::spec::Spec::from_toml(text, name).unwrap();
            let written = toml::Value::try_from(&spec.model).unwrap();
            let kind = written.get("kind").and_then(|k| k.as_str()).unwrap();
            assert_eq!(kind, spec.model.kind(), "{name}");
            assert_eq!(spec.model.build().unwrap().name(), kind, "{name}");
            kinds.push(kind.to_string());
        }
        kinds.sort();
        kinds.dedup();
        // The presets cover every registered family.
        assert_eq!(kinds, ["deep-linear", "mlp", "poly", "relu", "scalar-deep"]);
    }
}
