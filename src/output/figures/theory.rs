//! What the theory predicts, in the figures' coordinates. This is the hook
//! through which a model gives its thresholds and boundary: add an arm for
//! the model to each function here, and every figure draws its theory.

use crate::grid::Sweep;
use crate::models::Model;

/// A step size past which the theory rules something out, with its label.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub step_size: f64,
    pub label: String,
}

/// A curve in the (step size, second-axis value) plane on which the theory
/// puts the edge of convergence; points ascend in the axis value.
#[derive(Clone, Debug, PartialEq)]
pub struct Boundary {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// The step-size thresholds of a one-axis sweep.
///
/// `poly`: δ = 2/f''(x*) for each minimizer x* (docs/theory.md §1).
pub fn thresholds(sweep: &Sweep) -> Vec<Threshold> {
    match &sweep.cells[0].model {
        Model::Poly(p) => p
            .minimizers
            .iter()
            .map(|m| Threshold {
                step_size: m.threshold,
                label: format!("2/f''({}) = {}", short(m.x), short(m.threshold)),
            })
            .collect(),
        // docs/theory.md §4: no fit past δ = 1/max_i(‖x_i‖‖y_i‖), tight for N = 1.
        Model::Relu(r) => r
            .step_size_max()
            .map(|d| Threshold {
                step_size: d,
                label: format!("1/max‖x‖‖y‖ = {}", short(d)),
            })
            .into_iter()
            .collect(),
        model => model
            .step_size_max()
            .map(|d| Threshold {
                step_size: d,
                label: format!("δ_max = {}", short(d)),
            })
            .into_iter()
            .collect(),
    }
}

/// The boundaries of a two-axis sweep, one point per second-axis value, from
/// the model built for that value (the axis may change the model itself).
///
/// `poly`: for each minimizer, δ = 2/f''(x*); past the largest of them nothing
/// converges, which is the edge of the p_converged heatmap. The networks: δ_max
/// of the model at each axis value (docs/theory.md §2–4).
pub fn boundaries(sweep: &Sweep) -> Vec<Boundary> {
    if sweep.axis.is_none() {
        return Vec::new();
    }
    // Cells run second axis first: every steps.len()-th cell starts a new axis value.
    let models: Vec<(&Model, f64)> = sweep
        .cells
        .iter()
        .step_by(sweep.steps.len())
        .map(|c| (&c.model, c.axis_value.unwrap_or(f64::NAN)))
        .collect();
    match models[0].0 {
        Model::Poly(first) => (0..first.minimizers.len())
            .map(|k| Boundary {
                label: format!("δ = 2/f''({})", short(first.minimizers[k].x)),
                points: models
                    .iter()
                    .filter_map(|(m, v)| match m {
                        Model::Poly(p) => p.minimizers.get(k).map(|m| (m.threshold, *v)),
                        _ => None,
                    })
                    .collect(),
            })
            .collect(),
        model => vec![Boundary {
            label: match model {
                Model::Relu(_) => "δ·max‖x‖‖y‖ = 1".into(),
                _ => "δ = δ_max".into(),
            },
            points: models
                .iter()
                .filter_map(|(m, v)| m.step_size_max().map(|d| (d, *v)))
                .collect(),
        }],
    }
}

/// The bifurcation diagram's model: a 1-D gradient map x ↦ x − δ f'(x), with
/// the points to start from (just beside each minimizer, so that the orbit
/// born there as δ passes its threshold is followed). None for other models.
pub fn scalar_map(sweep: &Sweep) -> Option<(Vec<f64>, Vec<f64>)> {
    match &sweep.cells[0].model {
        Model::Poly(p) if sweep.axis.is_none() => {
            let starts = p.minimizers.iter().map(|m| m.x + 1e-3).collect();
            Some((p.derivative.clone(), starts))
        }
        _ => None,
    }
}

/// A number with at most four decimals, trailing zeros dropped.
pub fn short(v: f64) -> String {
    super::canvas::tick_label(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    fn sweep(extra: &str) -> Sweep {
        let text = format!(
            "trajectories = 1\nmax_iters = 10\nseed = 1\n[model]\nkind = \"poly\"\n[init]\nkind = \"point\"\nx0 = 0.0\n[steps]\nvalues = [0.1, 0.3]\n{extra}"
        );
        Sweep::new(Spec::from_toml(&text, "t").unwrap()).unwrap()
    }

    #[test]
    fn poly_thresholds_are_two_over_curvature() {
        let t = thresholds(&sweep(""));
        assert_eq!(t.len(), 2);
        assert!((t[0].step_size - 0.5).abs() < 1e-9 && (t[1].step_size - 0.2).abs() < 1e-9);
        assert_eq!(t[1].label, "2/f''(2) = 0.2");
    }

    #[test]
    fn relu_boundary_is_one_over_x_times_target_norm() {
        let text = "trajectories = 1\nmax_iters = 10\nseed = 1\n[model]\nkind = \"relu\"\ninput_size = 1\nhidden = 3\noutput_size = 1\ninputs = { kind = \"given\", samples = [[2.0]] }\ntargets = { kind = \"constant\" }\n[init]\nkind = \"gaussian\"\nmean = 0.0\nstd = 1.0\n[steps]\nvalues = [0.1, 0.3]\n[axis]\nparam = \"model.target_norm\"\nvalues = [0.5, 1, 2]";
        let sweep = Sweep::new(Spec::from_toml(text, "t").unwrap()).unwrap();
        let b = boundaries(&sweep);
        assert_eq!(b[0].points, vec![(1.0, 0.5), (0.5, 1.0), (0.25, 2.0)]);
    }

    #[test]
    fn a_starting_point_axis_gives_vertical_boundaries() {
        let b = boundaries(&sweep(
            "[axis]\nparam = \"init.x0\"\nlinspace = [0.0, 3.0, 4]",
        ));
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].points.len(), 4);
        assert!(b[1].points.iter().all(|&(d, _)| (d - 0.2).abs() < 1e-9));
        assert_eq!(b[1].points[3].1, 3.0);
    }
}
