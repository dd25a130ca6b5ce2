//! The paper's claims, as entries: each experiment names an embedded preset,
//! how `--quick` shrinks it, and the claims judged on its sweep. Predicted
//! values come from the model's theory (2/f''(x*) for the polynomial), never
//! from a measurement. To add a model's claims, add an experiment here.

use super::{Claim, Experiment};
use crate::models::poly::{Poly, PolySpec};
use crate::output::figures::theory::short;
use crate::reproduce::Prediction;
use crate::spec::Overrides;

fn overrides(trajectories: u64, max_iters: u64, steps: Option<&str>) -> Overrides {
    Overrides {
        trajectories: Some(trajectories),
        max_iters: Some(max_iters),
        steps: steps.map(String::from),
        ..Overrides::default()
    }
}

/// Every claim `stepsweep reproduce` checks.
pub fn paper() -> Vec<Experiment> {
    let mut all = poly();
    all.extend(optimizers());
    all.extend(networks());
    all.extend(relu());
    all
}

/// The step size past which a preset's model has no stable minimum.
fn preset_step_size_max(preset: &str) -> f64 {
    let text = crate::presets::find(preset).expect("an embedded preset");
    let spec = crate::spec::Spec::from_toml(text, preset).expect("presets parse");
    spec.model
        .build()
        .ok()
        .and_then(|m| m.step_size_max())
        .expect("the network models give δ_max")
}

/// docs/theory.md §2 and §3: the scalar and matrix deep linear networks.
fn networks() -> Vec<Experiment> {
    let scalar = preset_step_size_max("scalar-deep-threshold");
    let matrix = preset_step_size_max("deep-linear-random");
    let no_convergence_past =
        |id: &str, statement: String, explanation: &str, threshold: f64, figure: &str| Claim {
            id: id.into(),
            statement,
            explanation: explanation.into(),
            prediction: Prediction::ConvergesOnlyUpTo {
                minimizer: None,
                threshold,
            },
            figure: figure.into(),
        };
    let bound = |id: &str, statement: &str, explanation: &str, figure: &str| Claim {
        id: id.into(),
        statement: statement.into(),
        explanation: explanation.into(),
        prediction: Prediction::MetricWithinBound,
        figure: figure.into(),
    };
    vec![
        Experiment {
            preset: "scalar-deep-threshold",
            quick: overrides(1000, 20_000, None),
            claims: vec![
                no_convergence_past(
                    "scalar-deep-max",
                    format!("½(w₅⋯w₁ − 2)²: no trajectory converges past δ_max = 2/(L λ^(2−2/L)) = {}", short(scalar)),
                    "At a global minimum the Hessian is g gᵀ with g_j = λ/w_j, so its sharpness is S = Σ(λ/w_j)², smallest (L|λ|^(2−2/L)) at the balanced minima. Past δ_max no minimum is stable, whatever the start; starts near the balanced minima converge just below it. Step sizes are 0.5 … 1.6 times δ_max.",
                    scalar,
                    "scalar-deep-threshold/figures/outcomes",
                ),
                bound(
                    "scalar-deep-bound",
                    "Every converged trajectory satisfies Σ(λ/ŵᵢ)² ≤ 2/δ",
                    "The sharpness of the minimum reached is at most 2/δ (violations above it by more than 0.1%).",
                    "scalar-deep-threshold/figures/metric_bound",
                ),
            ],
        },
        Experiment {
            preset: "scalar-deep",
            quick: overrides(100, 20_000, None),
            claims: Vec::new(),
        },
        Experiment {
            preset: "scalar-deep-boundary",
            quick: Overrides::default(),
            claims: vec![Claim {
                id: "scalar-deep-boundary".into(),
                statement: "Over δ × λ, the boundary of the balanced starts' convergence is the smooth curve δ_max(λ) = 2/(L λ^(2−2/L)): its box-counting dimension is 1".into(),
                explanation: "Every layer starts at w = 1, so the layers stay equal and GD reaches the balanced minimum exactly when δ ≤ δ_max(λ). `stepsweep boundary` refines the plane from 16 to 1024 boxes per axis (256 with --quick), counts the boundary boxes at every scale and fits the dimension; every boundary box must also lie within one lattice cell of the curve.".into(),
                prediction: Prediction::SmoothBoundary {
                    depth: 6,
                    quick_depth: 4,
                },
                figure: "scalar-deep-boundary/figures/box-counts".into(),
            }],
        },
        Experiment {
            preset: "deep-linear-random",
            quick: overrides(100, 20_000, None),
            claims: vec![
                bound(
                    "deep-linear-bound",
                    "From random starts, every converged estimate has σ_max(R̂) ≤ (2/(Lδ))^(L/(2L−2))",
                    "Whitened data, L = 3 layers of 4 × 4, a symmetric PSD target with σ_max = 2. The Hessian's top eigenvalue at a minimum is at least L σ_max(R̂)^(2−2/L), so a converged estimate's largest singular value is bounded by the step size.",
                    "deep-linear-random/figures/metric_bound",
                ),
                no_convergence_past(
                    "deep-linear-max",
                    format!("From random starts, nothing converges past δ_max(R) = 2/(L σ_max(R)^(2−2/L)) = {}", short(matrix)),
                    "A target whose σ_max exceeds the bound at δ cannot be learned at that step size.",
                    matrix,
                    "deep-linear-random/figures/outcomes",
                ),
            ],
        },
        Experiment {
            preset: "deep-linear-identity",
            quick: overrides(4, 20_000, None),
            claims: vec![no_convergence_past(
                "deep-linear-tight",
                format!("From the identity, GD converges for δ up to δ_max(R) = {} and not past it", short(matrix)),
                "For a symmetric PSD target with every layer started at the identity, the layers stay equal and GD converges for every δ up to the bound: the bound is tight. Step sizes 0.98 and 1.02 times δ_max(R) bracket it.",
                matrix,
                "deep-linear-identity/figures/outcomes",
            )],
        },
    ]
}

/// docs/theory.md §4: the ReLU bound max_i ‖x_i‖‖f̂(x_i)‖ ≤ 1/δ, its tightness with
/// one sample, and the notebook's period-2 orbit.
fn relu() -> Vec<Experiment> {
    vec![
        Experiment {
            preset: "relu-single",
            // Fewer starts and a shorter budget; the δ grid keeps its cells
            // at 0.95–0.99 and past 1.02 of every edge.
            quick: overrides(32, 5000, None),
            claims: vec![
                Claim {
                    id: "relu-tight".into(),
                    statement: "With one sample, GD fits only for δ ≤ 1/(‖x‖‖y‖), and the edge is tight".into(),
                    explanation: "At a fit the Hessian has an eigenvalue of at least ‖a‖² + ‖x‖²‖y‖²/‖a‖² ≥ \
                                  2‖x‖‖y‖, so no fit is stable past δ = 1/(‖x‖‖y‖); the balanced fits, \
                                  ‖a‖² = ‖x‖‖y‖, reach the bound. Small random starts on x = 1 and \
                                  constant targets of several norms: some fit at δ between 0.95 and 1 \
                                  of the edge, none at 1.02 of it or beyond (those orbit with period 2 \
                                  or stop with every hidden unit dead)."
                        .into(),
                    prediction: Prediction::FitEdge {
                        below: 0.95,
                        above: 1.02,
                    },
                    figure: "relu-single/figures/heatmap".into(),
                },
                Claim {
                    id: "relu-bound".into(),
                    statement: "Every fit GD reaches satisfies max_i ‖x_i‖‖f̂(x_i)‖ ≤ 1/δ".into(),
                    explanation: "The theorem of docs/theory.md §4, checked on every converged fit of the \
                                  one-sample sweep; tests/relu_claims.rs checks it on random data \
                                  with many samples too."
                        .into(),
                    prediction: Prediction::MetricWithinBound,
                    figure: "relu-single/figures/metric_bound".into(),
                },
            ],
        },
        Experiment {
            preset: "relu-notebook",
            // Quick: only the step size the claim is about. Its trajectories
            // mostly run all 20 001 steps, which on a GPU emulated on the CPU
            // (lavapipe, in CI) took ten minutes for both cells.
            quick: overrides(8, 20_001, Some("0.0006")),
            claims: vec![Claim {
                id: "relu-notebook".into(),
                statement: "In the authors' notebook setup, GD at δ = 6e-4 (their 3e-4) ends in a period-2 orbit of the estimate".into(),
                explanation: "The notebook's setup with stepsweep's own draws (see the preset): at \
                              6e-4, the minima GD approaches are too sharp for the step, and the \
                              estimate flips between two curves instead of settling. Trajectories \
                              whose early steps kill most hidden units stay undecided at a poor fit."
                    .into(),
                prediction: Prediction::OrbitInstead {
                    step_size: 6e-4,
                    period: 2,
                },
                figure: "relu-notebook/figures/outcomes".into(),
            }],
        },
    ]
}

/// docs/theory.md "Optimizers": momentum and Nesterov on the polynomial of §1
/// move each minimizer's threshold 2/f''(x*) to the optimizer's own.
fn optimizers() -> Vec<Experiment> {
    let model = Poly::new(&PolySpec::default()).expect("the paper's polynomial");
    let experiment = |preset: &'static str, quick: &str| {
        let text = crate::presets::find(preset).expect("an embedded preset");
        let spec = crate::spec::Spec::from_toml(text, preset).expect("presets parse");
        let optimizer = spec.optimizer.resolve().expect("presets validate");
        let name = optimizer.kind.name();
        let mut claims: Vec<Claim> = model
            .minimizers
            .iter()
            .map(|m| {
                let threshold = optimizer.step_for(m.threshold);
                Claim {
                    id: format!("{preset}-x{}", m.index + 1),
                    statement: format!(
                        "With {name} (β = {}), the iterates converge to x = {} only if δ ≤ {}",
                        short(optimizer.beta),
                        short(m.x),
                        short(threshold)
                    ),
                    explanation: format!(
                        "Linearized at x = {x}, {name} is stable only if {rule}; with                          f''({x}) = {c} that is δ ≤ {t}, where GD's threshold is {gd}. The                          measured cut-off is the largest swept δ from which some trajectory                          still converged to x = {x}, and the next swept δ.",
                        x = short(m.x),
                        rule = optimizer.rule_text(),
                        c = short(m.curvature),
                        t = short(threshold),
                        gd = short(m.threshold),
                    ),
                    prediction: Prediction::ConvergesOnlyUpTo {
                        minimizer: Some(m.index),
                        threshold,
                    },
                    figure: format!("{preset}/figures/outcomes"),
                }
            })
            .collect();
        claims.push(Claim {
            id: format!("{preset}-bound"),
            statement: format!("With {name}, every converged trajectory satisfies f''(x̂) ≤ {}", match optimizer.kind {
                crate::optimizer::OptimizerKind::Nesterov => "(2+2β)/((1+2β)δ)",
                _ => "2(1+β)/δ",
            }),
            explanation: "The optimizer's stability bound on the curvature of the point reached,                           at every swept step size; a violation is a converged trajectory above                           it by more than 0.1%."
                .into(),
            prediction: Prediction::MetricWithinBound,
            figure: format!("{preset}/figures/metric_bound"),
        });
        Experiment {
            preset,
            quick: overrides(1000, 20_000, Some(quick)),
            claims,
        }
    };
    vec![
        experiment(
            "poly-momentum",
            "0.05,0.15,0.25,0.29,0.299,0.301,0.31,0.4,0.6,0.74,0.749,0.751,0.76,0.85",
        ),
        experiment(
            "poly-nesterov",
            "0.05,0.1,0.145,0.1499,0.1501,0.155,0.25,0.37,0.3745,0.3751,0.38,0.42",
        ),
    ]
}

/// docs/theory.md §1: f(x) = (x²+1)(x−1)²(x−2)², minimizers x = 1 (f'' = 4) and x = 2 (f'' = 10).
fn poly() -> Vec<Experiment> {
    let model = Poly::new(&PolySpec::default()).expect("the paper's polynomial");
    let (x1, x2) = (&model.minimizers[0], &model.minimizers[1]);
    let threshold_claim = |k: usize, figure: &'static str| {
        let m = &model.minimizers[k];
        Claim {
            id: format!("poly-threshold-x{}", k + 1),
            statement: format!(
                "GD converges to x = {} only if δ ≤ 2/f''({}) = {}",
                short(m.x),
                short(m.x),
                short(m.threshold)
            ),
            explanation: format!(
                "A minimizer is reachable only if it is linearly stable: 1 − δ f''(x*) ≥ −1. \
                 With f''({x}) = {c}, convergence to x = {x} needs δ ≤ {t}. Random starts on \
                 [−1, 4) sweep δ across the threshold; the measured cut-off is the largest swept δ \
                 from which some trajectory still converged to x = {x}, and the next swept δ.",
                x = short(m.x),
                c = short(m.curvature),
                t = short(m.threshold),
            ),
            prediction: Prediction::ConvergesOnlyUpTo {
                minimizer: Some(k),
                threshold: m.threshold,
            },
            figure: figure.into(),
        }
    };
    let between = 0.3;
    vec![
        Experiment {
            preset: "poly",
            // Fewer trajectories, a coarser grid that keeps a bracket of ±0.001
            // around each threshold, and a budget that still lets δ = 0.499
            // (multiplier −0.996) converge.
            quick: overrides(
                4000,
                20_000,
                Some("0.02,0.05,0.1,0.15,0.19,0.199,0.201,0.21,0.25,0.3,0.35,0.4,0.45,0.49,0.499,0.501,0.51,0.55,0.6"),
            ),
            claims: vec![
                threshold_claim(0, "poly-basin/figures/heatmap"),
                threshold_claim(1, "poly-basin/figures/basin"),
                Claim {
                    id: "poly-only-x1".into(),
                    statement: format!(
                        "At δ = {between}, every converging trajectory ends at x = {}",
                        short(x1.x)
                    ),
                    explanation: format!(
                        "{between} lies between the two thresholds {} and {}: x = {} is too sharp \
                         for this step size and x = {} is not, so whatever converges must end at x = {}.",
                        short(x2.threshold),
                        short(x1.threshold),
                        short(x2.x),
                        short(x1.x),
                        short(x1.x)
                    ),
                    prediction: Prediction::OnlyMinimizer {
                        step_size: between,
                        minimizer: 0,
                    },
                    figure: "poly/figures/outcomes".into(),
                },
                Claim {
                    id: "poly-bound".into(),
                    statement: "Every converged trajectory satisfies f''(x̂) ≤ 2/δ".into(),
                    explanation: "The general form of the two threshold claims: at every swept \
                                  step size, the curvature at the point reached is at most 2/δ. \
                                  A violation is a converged trajectory above the bound by more \
                                  than 0.1%."
                        .into(),
                    prediction: Prediction::MetricWithinBound,
                    figure: "poly/figures/metric_bound".into(),
                },
            ],
        },
        Experiment {
            preset: "poly-basin",
            quick: overrides(1, 20_000, None),
            claims: Vec::new(),
        },
        Experiment {
            preset: "poly-cascade",
            quick: overrides(64, 20_000, None),
            claims: vec![Claim {
                id: "poly-cascade".into(),
                statement: format!(
                    "Past δ = {}, the orbit near x = {} doubles its period, then turns chaotic",
                    short(x2.threshold),
                    short(x2.x)
                ),
                explanation: "Starts within 0.1 of x = 2: just past the threshold the fixed point \
                              gives way to a period-2 orbit (δ = 0.21), then period 4 (δ = 0.25), \
                              and by δ = 0.3 most orbits are bounded but aperiodic, as in the \
                              logistic map."
                    .into(),
                prediction: Prediction::Periods {
                    expected: vec![(0.21, Some(2)), (0.25, Some(4)), (0.3, None)],
                },
                figure: "poly-cascade/figures/bifurcation".into(),
            }],
        },
    ]
}
