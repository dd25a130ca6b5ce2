//! The optimizers a sweep can run, and the linear-stability bound each puts
//! on the sharpness S of a minimum it can converge to (docs/theory.md,
//! "Optimizers").
//!
//! With the velocity v[k] = θ[k] − θ[k−1] (v[0] = 0):
//!
//! - `gd`: θ ← θ − δ∇f(θ); a minimum is stable only if δS ≤ 2;
//! - `momentum` (heavy ball): v ← βv − δ∇f(θ), θ ← θ + v; δS ≤ 2(1 + β);
//! - `nesterov`: y = θ + βv, v ← βv − δ∇f(y), θ ← θ + v; δS ≤ (2 + 2β)/(1 + 2β).
//!
//! Each bound is δ_eff·S ≤ 2 for an effective step size δ_eff = c·δ, where c
//! is 1, 1/(1 + β) and (1 + 2β)/(1 + β). Every family's theorem is a
//! consequence of S ≤ 2/δ, so each holds with δ_eff in place of δ; that is
//! how a family's bound, threshold and edges follow the optimizer.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which optimizer runs the trajectories.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    #[default]
    Gd,
    Momentum,
    Nesterov,
}

impl OptimizerKind {
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Gd => "gd",
            OptimizerKind::Momentum => "momentum",
            OptimizerKind::Nesterov => "nesterov",
        }
    }

    /// Whether the optimizer keeps a velocity (every kind but `gd`).
    pub fn has_velocity(self) -> bool {
        self != OptimizerKind::Gd
    }

    pub fn is_gd(&self) -> bool {
        *self == OptimizerKind::Gd
    }
}

/// The spec's `[optimizer]` table.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    #[serde(default)]
    pub kind: OptimizerKind,
    /// The momentum coefficient β, in [0, 1); only with momentum or nesterov.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
}

impl OptimizerSpec {
    /// Whether the table says nothing beyond plain gradient descent (so a
    /// spec that never names an optimizer writes none back).
    pub fn is_default(&self) -> bool {
        *self == OptimizerSpec::default()
    }

    /// The optimizer, refused in one sentence where the table is invalid.
    pub fn resolve(&self) -> Result<Optimizer> {
        match (self.kind, self.beta) {
            (OptimizerKind::Gd, Some(b)) if b != 0.0 => Err(Error::spec(format!(
                "optimizer.beta is {b} but optimizer.kind is gd, which has no momentum; set kind = \"momentum\" or \"nesterov\", or drop beta"
            ))),
            (OptimizerKind::Gd, _) => Ok(Optimizer::GD),
            (kind, beta) => {
                let beta = beta.unwrap_or(0.0);
                if !(beta.is_finite() && (0.0..1.0).contains(&beta)) {
                    return Err(Error::spec(format!(
                        "optimizer.beta is {beta}; give a momentum coefficient from 0 up to (not including) 1"
                    )));
                }
                Ok(Optimizer { kind, beta })
            }
        }
    }
}

/// A resolved optimizer: its kind and β (0 for gd).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub beta: f64,
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::GD
    }
}

impl Optimizer {
    pub const GD: Optimizer = Optimizer {
        kind: OptimizerKind::Gd,
        beta: 0.0,
    };

    /// c in δ_eff = c·δ (see the module's documentation).
    pub fn step_scale(&self) -> f64 {
        let b = self.beta;
        match self.kind {
            OptimizerKind::Gd => 1.0,
            OptimizerKind::Momentum => 1.0 / (1.0 + b),
            OptimizerKind::Nesterov => (1.0 + 2.0 * b) / (1.0 + b),
        }
    }

    /// The step size at which plain GD has the same stability bound as this
    /// optimizer at `step_size`.
    pub fn effective_step(&self, step_size: f64) -> f64 {
        if self.kind.is_gd() {
            step_size
        } else {
            step_size * self.step_scale()
        }
    }

    /// The step size of this optimizer whose bound is plain GD's at
    /// `gd_step`: the inverse of `effective_step`.
    pub fn step_for(&self, gd_step: f64) -> f64 {
        if self.kind.is_gd() {
            gd_step
        } else {
            gd_step / self.step_scale()
        }
    }

    /// The largest sharpness a minimum can have and be stable at `step_size`.
    pub fn sharpness_bound(&self, step_size: f64) -> f64 {
        2.0 / self.effective_step(step_size)
    }

    /// The bound δS ≤ … as the summary and the figures state it.
    pub fn rule_text(&self) -> String {
        match self.kind {
            OptimizerKind::Gd => "δ·S ≤ 2".into(),
            OptimizerKind::Momentum => format!("δ·S ≤ 2(1+β) = {}", 2.0 * (1.0 + self.beta)),
            OptimizerKind::Nesterov => format!(
                "δ·S ≤ (2+2β)/(1+2β) = {}",
                (2.0 + 2.0 * self.beta) / (1.0 + 2.0 * self.beta)
            ),
        }
    }

    /// What summary.json records of the optimizer.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind.name(),
            "beta": self.beta,
            "stability": self.rule_text(),
            "step_scale": self.step_scale(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(kind: OptimizerKind, beta: f64) -> Optimizer {
        OptimizerSpec {
            kind,
            beta: Some(beta),
        }
        .resolve()
        .unwrap()
    }

    /// Linearized at a minimum of sharpness S, each optimizer's iteration on
    /// the quadratic ½Sx² is a 2×2 linear map; its spectral radius crosses 1
    /// exactly where `sharpness_bound` says.
    #[test]
    fn bounds_are_where_the_linearized_map_loses_stability() {
        let radius = |o: &Optimizer, delta: f64, s: f64| {
            // (x[k+1], x[k]) = M (x[k], x[k−1]).
            let a = 1.0 - delta * s;
            let (t, d) = match o.kind {
                OptimizerKind::Gd => (a, 0.0),
                OptimizerKind::Momentum => (a + o.beta, o.beta),
                OptimizerKind::Nesterov => (a * (1.0 + o.beta), a * o.beta),
            };
            // Roots of z² − t z + d.
            let disc = t * t - 4.0 * d;
            if disc >= 0.0 {
                let r = disc.sqrt();
                ((t + r) / 2.0).abs().max(((t - r) / 2.0).abs())
            } else {
                d.abs().sqrt()
            }
        };
        for o in [
            Optimizer::GD,
            opt(OptimizerKind::Momentum, 0.5),
            opt(OptimizerKind::Momentum, 0.9),
            opt(OptimizerKind::Nesterov, 0.5),
            opt(OptimizerKind::Nesterov, 0.9),
        ] {
            let delta = 0.1;
            let s = o.sharpness_bound(delta);
            assert!(radius(&o, delta, s * 0.999) < 1.0, "{o:?}");
            assert!(radius(&o, delta, s * 1.001) > 1.0, "{o:?}");
        }
        // The example: the default polynomial's x = 2 (f'' = 10)
        // with momentum 0.5 is stable up to δ = 0.3.
        let m = opt(OptimizerKind::Momentum, 0.5);
        assert!((m.step_for(0.2) - 0.3).abs() < 1e-15);
    }

    #[test]
    fn bad_tables_get_one_sentence() {
        let e = OptimizerSpec {
            kind: OptimizerKind::Gd,
            beta: Some(0.5),
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.contains("optimizer.kind is gd"), "{e}");
        for beta in [1.0, -0.1, f64::NAN] {
            let e = OptimizerSpec {
                kind: OptimizerKind::Momentum,
                beta: Some(beta),
            }
            .resolve()
            .unwrap_err()
            .to_string();
            assert!(e.contains("from 0 up to (not including) 1"), "{e}");
        }
    }
}
