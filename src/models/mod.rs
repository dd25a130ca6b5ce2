//! The models a sweep can run. Each has a CPU reference here and a WGSL twin of
//! the same name in `shaders/` (the mirror principle of DESIGN.md).

pub mod poly;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::real::Real;
use crate::rng::TrajectoryRng;
use crate::spec::{InitSpec, Spec};

pub use poly::{Poly, PolySpec};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ModelSpec {
    /// A 1-D polynomial; the default is (x²+1)(x−1)²(x−2)² (PAPER.md §1).
    Poly(PolySpec),
}

impl ModelSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Poly(_) => "poly",
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.build().map(|_| ())
    }

    pub fn build(&self) -> Result<Model> {
        match self {
            ModelSpec::Poly(p) => Ok(Model::Poly(Poly::new(p)?)),
        }
    }
}

/// A model resolved for one cell: everything precomputed that the trajectories share.
#[derive(Clone, Debug)]
pub enum Model {
    Poly(Poly),
}

/// What post-processing learns about one trajectory's final iterate (f64, on the CPU).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Assessment {
    pub loss: f64,
    /// The paper's bounded quantity at the final iterate (f'' for the polynomial).
    pub metric: f64,
    /// The top Hessian eigenvalue at the final iterate.
    pub sharpness: f64,
    /// For the polynomial: which minimizer a converged trajectory reached.
    pub minimizer: Option<usize>,
}

impl Model {
    /// Number of trained parameters.
    pub fn dim(&self) -> usize {
        match self {
            Model::Poly(_) => 1,
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
        for x in out.iter_mut() {
            *x = draw_scalar(init, rng, replicate, trajectories);
        }
    }

    /// ∇f(θ) in the working precision, in the same order of operations as the kernel.
    pub fn gradient<R: Real>(&self, coefficients: &[R], theta: &[R], gradient: &mut [R]) {
        match self {
            Model::Poly(_) => gradient[0] = poly::derivative(coefficients, theta[0]),
        }
    }

    /// The model's constants in the working precision, for `gradient`.
    pub fn constants<R: Real>(&self) -> Vec<R> {
        match self {
            Model::Poly(p) => p.derivative.iter().map(|&c| R::of(c)).collect(),
        }
    }

    pub fn assess(&self, theta: &[f64]) -> Assessment {
        match self {
            Model::Poly(p) => p.assess(theta[0]),
        }
    }

    /// The bound on the metric at step size δ, from the paper.
    pub fn bound(&self, step_size: f64) -> f64 {
        match self {
            Model::Poly(_) => 2.0 / step_size,
        }
    }

    /// The minimizers, for models that report convergence per minimizer.
    pub fn minimizers(&self) -> &[poly::Minimizer] {
        match self {
            Model::Poly(p) => &p.minimizers,
        }
    }

    /// The theory for summary.json.
    pub fn theory(&self) -> serde_json::Value {
        match self {
            Model::Poly(p) => p.theory(),
        }
    }
}

/// One scalar draw from a scalar initialization.
pub fn draw_scalar(
    init: &InitSpec,
    rng: &mut TrajectoryRng,
    replicate: u64,
    trajectories: u64,
) -> f64 {
    match *init {
        InitSpec::Uniform { low, high } => low + (high - low) * rng.uniform(),
        InitSpec::Gaussian { mean, std } => mean + std * rng.normal(),
        InitSpec::Grid { low, high } => {
            low + (replicate as f64 + 0.5) * (high - low) / trajectories as f64
        }
        InitSpec::Point { x0 } => x0,
    }
}

/// The spec of one cell, built once per cell.
pub fn cell_model(spec: &Spec) -> Result<Model> {
    spec.model.build()
}
