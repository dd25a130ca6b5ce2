//! How a trajectory's initial parameters are drawn: the kinds every family
//! takes (scalar distributions, a given point) and those a family owns
//! (`Family::draws`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::TrajectoryRng;

/// How the initial parameters are drawn. Scalar distributions apply to every
/// parameter independently.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum InitSpec {
    /// Uniform on [low, high).
    Uniform { low: f64, high: f64 },
    /// Normal with the given mean and standard deviation.
    Gaussian { mean: f64, std: f64 },
    /// Replicate r of T starts at low + (r + ½)(high − low)/T: a deterministic
    /// grid, so that a sweep draws a basin map.
    Grid { low: f64, high: f64 },
    /// Every parameter starts at x0; sweep `init.x0` as the second axis for a basin map.
    Point { x0: f64 },
    /// `scalar-deep`: the balanced minimum wᵢ = |λ|^{1/L} (w₁ carrying the sign
    /// of λ) plus Gaussian noise of standard deviation `noise`.
    Balanced { noise: f64 },
    /// `deep-linear`: every layer the identity plus Gaussian noise of standard deviation `scale`.
    Identity { scale: f64 },
    /// `deep-linear`: every layer `scale` times a random orthogonal matrix.
    Orthogonal { scale: f64 },
    /// Explicit initial parameters, in the model's parameter order.
    Given { values: Vec<f64> },
}

impl Default for InitSpec {
    fn default() -> Self {
        InitSpec::Uniform {
            low: -1.0,
            high: 4.0,
        }
    }
}

impl InitSpec {
    pub fn name(&self) -> &'static str {
        match self {
            InitSpec::Uniform { .. } => "uniform",
            InitSpec::Gaussian { .. } => "gaussian",
            InitSpec::Grid { .. } => "grid",
            InitSpec::Point { .. } => "point",
            InitSpec::Balanced { .. } => "balanced",
            InitSpec::Identity { .. } => "identity",
            InitSpec::Orthogonal { .. } => "orthogonal",
            InitSpec::Given { .. } => "given",
        }
    }

    pub fn validate(&self) -> Result<()> {
        let finite = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(Error::spec(format!(
                    "init.{name} is {v}; give a finite number"
                )))
            }
        };
        match *self {
            InitSpec::Uniform { low, high } | InitSpec::Grid { low, high } => {
                finite("low", low)?;
                finite("high", high)?;
                if low >= high {
                    return Err(Error::spec(format!(
                        "init.low ({low}) must be below init.high ({high})"
                    )));
                }
            }
            InitSpec::Gaussian { mean, std } => {
                finite("mean", mean)?;
                finite("std", std)?;
                if std <= 0.0 {
                    return Err(Error::spec(format!(
                        "init.std is {std}; give a standard deviation above zero"
                    )));
                }
            }
            InitSpec::Point { x0 } => finite("x0", x0)?,
            InitSpec::Balanced { noise: scale }
            | InitSpec::Identity { scale }
            | InitSpec::Orthogonal { scale } => {
                finite("scale", scale)?;
                if scale < 0.0 {
                    return Err(Error::spec(format!(
                        "init scale is {scale}; give a number at or above zero"
                    )));
                }
            }
            InitSpec::Given { ref values } => {
                if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
                    return Err(Error::spec(format!(
                        "init.values contains {bad}; give finite numbers"
                    )));
                }
            }
        }
        Ok(())
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
