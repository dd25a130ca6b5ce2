//! What a model family provides. Every family is one type implementing
//! `Family`, registered once in `models/mod.rs`; the spec's `kind`, the
//! dispatch of `Model`, and the CPU backend's pack engines are generated from
//! that list, so a family that lacks something does not compile.

use crate::error::Result;
use crate::isa::Isa;
use crate::real::{Arith, Precision};
use crate::rng::TrajectoryRng;
use crate::shaders::{DeviceLimits, KernelPlan};
use crate::stopping::{Record, StopRule};

use super::init::InitSpec;
use super::poly::Minimizer;
use super::Assessment;

/// Lanes per pack of the CPU engine for each instruction set, in f32 and in
/// f64. Every width is one more compiled copy of the lane engine, so each
/// instruction set and precision has exactly one. docs/performance.md gives
/// the measurements behind each family's choice. (On x86-64 the baseline,
/// a processor without AVX2, runs the one-trajectory reference, and its
/// width is only the size of the batches it takes.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lanes {
    pub baseline: [usize; 2],
    pub avx2: [usize; 2],
    pub avx512: [usize; 2],
}

impl Lanes {
    /// The same widths on every instruction set and in both precisions.
    pub const fn all(n: usize) -> Lanes {
        Lanes {
            baseline: [n, n],
            avx2: [n, n],
            avx512: [n, n],
        }
    }

    /// The width for `isa` in f32 (`single`) or f64.
    pub const fn of(&self, isa: Isa, single: bool) -> usize {
        let pair = match isa {
            Isa::Baseline => self.baseline,
            Isa::Avx2 => self.avx2,
            Isa::Avx512 => self.avx512,
        };
        pair[if single { 0 } else { 1 }]
    }
}

/// A step size past which the theory rules a convergence out, as the
/// figures draw it: a vertical line on one-axis figures, and one point of a
/// boundary curve on two-axis heatmaps.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub step_size: f64,
    /// What the step size is, in the theory's terms ("2/f''(1)"); the line's
    /// label gives it with its value.
    pub name: String,
    /// The curve's label, the same for every value of the second axis.
    pub curve: String,
}

/// θ ↦ ∇f(θ) in f64 for family `m`, its constants built once.
pub fn gradient_f64<F: Family>(m: &F) -> impl Fn(&[f64]) -> Vec<f64> + '_ {
    let constants = m.constants();
    move |theta| {
        let mut g = vec![0.0; theta.len()];
        let mut work = vec![0.0; m.work_len()];
        m.gradient::<f64>(&constants, theta, &mut g, &mut work);
        g
    }
}

/// A model family: its spec, its arithmetic on both backends, and its theory.
pub trait Family: Clone + std::fmt::Debug + Send + Sync + Sized + 'static {
    /// The spec's `[model]` table, without `kind`.
    type Spec;

    /// The spec's `kind`.
    const KIND: &'static str;

    /// The CPU engine's lanes per pack (see `Lanes`).
    const LANES: Lanes;

    /// Resolves a spec, refusing it in one sentence where it is invalid.
    fn build(spec: &Self::Spec) -> Result<Self>;

    /// Number of trained parameters.
    fn dim(&self) -> usize;

    /// Length of the gradient's workspace.
    fn work_len(&self) -> usize;

    /// The parameters of each layer (parameter group), layer 1 (the input
    /// side) first, covering 0..dim: what a per-layer step size applies to.
    /// A family without layers is one group.
    fn layers(&self) -> Vec<std::ops::Range<usize>> {
        std::iter::once(0..self.dim()).collect()
    }

    /// The constants `gradient` reads, in f64; each backend rounds them to
    /// its working precision once.
    fn constants(&self) -> Vec<f64>;

    /// ∇f(θ) over any arithmetic (a real, or a pack of lanes), in the order of
    /// operations of the family's WGSL kernel. Always inlined, so that each
    /// CPU engine copy compiles it for its own instruction set.
    fn gradient<A: Arith>(
        &self,
        constants: &[A::Scalar],
        theta: &[A],
        gradient: &mut [A],
        work: &mut [A],
    );

    /// `steps` gradient steps θ ← θ − δ∇f(θ), as `gradient` and the update
    /// compute them one by one, keeping each iterate's fingerprint where
    /// `record` says (see `PackGradient::advance`). A family whose iterate
    /// fits in registers overrides it to keep it there.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn advance<A: Arith>(
        &self,
        constants: &[A::Scalar],
        theta: &mut [A],
        gradient: &mut [A],
        work: &mut [A],
        delta: A,
        steps: u64,
        mut record: Option<Record<'_, A>>,
    ) {
        for s in 0..steps as usize {
            self.gradient(constants, theta, gradient, work);
            crate::stopping::update(theta, gradient, delta);
            if let Some(r) = record.as_mut() {
                r.keep(s, theta);
            }
        }
    }

    /// Whether the AVX-512 engines run `advance_rolled`, compiled as a
    /// function of its own rather than inlined into the lane engine.
    const ROLLED_ON_AVX512: bool = false;

    /// `advance` with the step's inner loop kept a loop, so that each of its
    /// operations is issued for the whole pack before the next.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn advance_rolled<A: Arith>(
        &self,
        constants: &[A::Scalar],
        theta: &mut [A],
        gradient: &mut [A],
        work: &mut [A],
        delta: A,
        steps: u64,
        record: Option<Record<'_, A>>,
    ) {
        self.advance(constants, theta, gradient, work, delta, steps, record)
    }

    /// f(θ) in f64: the final loss every trajectory reports.
    fn loss(&self, theta: &[f64]) -> f64;

    /// The dominant Hessian eigenvalue at θ, anywhere (not only at a
    /// minimum), for traces: by default power iteration on Hessian-vector
    /// products of the f64 gradient; a family with a closed form overrides it.
    fn sharpness(&self, theta: &[f64]) -> f64 {
        super::hessian::sharpness(theta, gradient_f64(self))
    }

    /// Post-processing of a final iterate, in f64. `replicate` decides
    /// whether an expensive sharpness is computed (see `SHARPNESS_SAMPLES`).
    fn assess(&self, theta: &[f64], replicate: u64) -> Assessment;

    /// `assess` of each (θ, replicate), in order, into `out`, for a family
    /// that assesses many points faster together.
    fn assess_many<'a>(
        &self,
        items: impl Iterator<Item = (&'a [f64], u64)>,
        out: &mut Vec<Assessment>,
    ) {
        out.extend(items.map(|(theta, replicate)| self.assess(theta, replicate)));
    }

    /// The theorem's bound on the metric at step size δ.
    fn bound(&self, step_size: f64) -> f64;

    /// The largest step size at which any trajectory can converge to a
    /// minimum, where the theory gives one.
    fn step_size_max(&self) -> Option<f64>;

    /// The step sizes the figures mark (see `Edge`); by default δ_max.
    fn edges(&self) -> Vec<Edge> {
        self.step_size_max()
            .map(|d| Edge {
                step_size: d,
                name: "δ_max".into(),
                curve: "δ = δ_max".into(),
            })
            .into_iter()
            .collect()
    }

    /// The minimizers, for a family that reports convergence per minimizer.
    fn minimizers(&self) -> &[Minimizer] {
        &[]
    }

    /// A 1-D gradient map's derivative coefficients (ascending) and the
    /// points beside each minimizer to follow, for the bifurcation diagram.
    fn scalar_map(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        None
    }

    /// The theory for summary.json.
    fn theory(&self) -> serde_json::Value;

    /// The WGSL kernel specialized to this model's sizes and constants.
    fn kernel(&self, rule: &StopRule, limits: DeviceLimits, precision: Precision) -> KernelPlan;

    /// Floating-point operations per gradient step (the gradient and the
    /// update), from the family's formulas, for `stepsweep bench`.
    fn flops_per_step(&self) -> f64;

    /// Whether `init`, one of the kinds only some families take, applies
    /// here (the scalar kinds and `given` apply to every family).
    fn takes(&self, init: &InitSpec) -> bool {
        let _ = init;
        false
    }

    /// Draws the initial parameters from a kind `takes` admits and that is
    /// not scalar; `initial` never calls it otherwise.
    fn draw(&self, init: &InitSpec, rng: &mut TrajectoryRng, out: &mut [f64]) {
        let _ = (rng, out);
        unreachable!("{} draws no '{}' initialization", Self::KIND, init.name())
    }

    /// The Philox blocks `draw` takes from one trajectory's stream, where the
    /// count is fixed (see `Model::init_blocks`).
    fn draw_blocks(&self, init: &InitSpec) -> usize {
        let _ = init;
        0
    }
}
