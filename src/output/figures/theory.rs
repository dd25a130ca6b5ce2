//! What the theory predicts, in the figures' coordinates, from each family's
//! `Family::edges` and `Family::scalar_map`.

use crate::models::Edge;
use crate::sweep::Sweep;

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

/// The step-size thresholds of a one-axis sweep: the model's edges (see
/// `Family::edges`), each labelled with its value.
pub fn thresholds(sweep: &Sweep) -> Vec<Threshold> {
    sweep.cells[0]
        .edges()
        .into_iter()
        .map(|e| Threshold {
            step_size: e.step_size,
            label: format!("{} = {}", e.name, short(e.step_size)),
        })
        .collect()
}

/// The boundaries of a two-axis sweep, one point per second-axis value, from
/// the model built for that value (the axis may change the model itself):
/// edge k of each model makes boundary k, labelled as the first model's.
pub fn boundaries(sweep: &Sweep) -> Vec<Boundary> {
    if sweep.axis.is_none() {
        return Vec::new();
    }
    // Cells run second axis first: every steps.len()-th cell starts a new axis value.
    let edges: Vec<(Vec<Edge>, f64)> = sweep
        .cells
        .iter()
        .step_by(sweep.steps.len())
        .map(|c| (c.edges(), c.axis_value.unwrap_or(f64::NAN)))
        .collect();
    edges[0]
        .0
        .iter()
        .enumerate()
        .map(|(k, first)| Boundary {
            label: first.curve.clone(),
            points: edges
                .iter()
                .filter_map(|(e, v)| e.get(k).map(|e| (e.step_size, *v)))
                .collect(),
        })
        .collect()
}

/// The bifurcation diagram's model: a 1-D gradient map x ↦ x − δ f'(x), with
/// the points to start from (see `Family::scalar_map`). None for other
/// models, for two-axis sweeps, and for optimizers with momentum, whose map
/// has the velocity as a second coordinate.
pub fn scalar_map(sweep: &Sweep) -> Option<(Vec<f64>, Vec<f64>)> {
    if sweep.axis.is_some() || sweep.spec.optimizer.kind.has_velocity() {
        return None;
    }
    sweep.cells[0].model.scalar_map()
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
