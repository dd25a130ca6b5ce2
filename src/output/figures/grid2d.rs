//! The (step size × second axis) grid of a two-axis sweep, laid out for
//! drawing: each cell a rectangle reaching halfway to its neighbours, in the
//! axes' own scales (log or linear), so uneven grids draw without gaps.

use std::ops::Range;

use super::canvas::Scale;
use super::data::{CellRow, RunData};
use super::heatmap::describe;

pub struct Grid2d {
    pub steps: Vec<f64>,
    pub values: Vec<f64>,
    pub param: String,
    pub x_scale: Scale,
    pub y_scale: Scale,
    /// Cells step size first: cell (i, j) is `cells[i * values.len() + j]`.
    pub cells: Vec<CellRow>,
}

/// Edges halfway between neighbours (in axis coordinates), the outer ones
/// mirrored, so n values give n + 1 edges.
fn edges(axis: &[f64]) -> Vec<f64> {
    match axis {
        [] => Vec::new(),
        [only] => vec![only - 0.5, only + 0.5],
        _ => {
            let mut e = Vec::with_capacity(axis.len() + 1);
            e.push(axis[0] - (axis[1] - axis[0]) / 2.0);
            e.extend(axis.windows(2).map(|w| (w[0] + w[1]) / 2.0));
            let n = axis.len();
            e.push(axis[n - 1] + (axis[n - 1] - axis[n - 2]) / 2.0);
            e
        }
    }
}

impl Grid2d {
    /// None for a one-axis sweep.
    pub fn new(run: &RunData) -> Option<Grid2d> {
        let (param, values) = run.sweep.axis.clone()?;
        Some(Grid2d {
            steps: run.sweep.steps.clone(),
            values,
            param,
            x_scale: Scale::of(run.log_steps()),
            y_scale: Scale::of(run.log_axis()),
            cells: run.cells.clone(),
        })
    }

    fn x_edges(&self) -> Vec<f64> {
        let t: Vec<f64> = self
            .steps
            .iter()
            .map(|v| self.x_scale.to_axis(*v))
            .collect();
        edges(&t)
    }

    fn y_edges(&self) -> Vec<f64> {
        let t: Vec<f64> = self
            .values
            .iter()
            .map(|v| self.y_scale.to_axis(*v))
            .collect();
        edges(&t)
    }

    /// The plot ranges, in axis coordinates.
    pub fn ranges(&self) -> (Range<f64>, Range<f64>) {
        let (x, y) = (self.x_edges(), self.y_edges());
        (x[0]..x[x.len() - 1], y[0]..y[y.len() - 1])
    }

    /// Each cell's rectangle corners (axis coordinates) with its row.
    pub fn rects(&self) -> impl Iterator<Item = ([(f64, f64); 2], &CellRow)> + '_ {
        let (x, y) = (self.x_edges(), self.y_edges());
        // Cells run second axis first, then step size (see grid.rs).
        let s = self.steps.len();
        self.cells.iter().enumerate().map(move |(c, cell)| {
            let (i, j) = (c % s, c / s);
            ([(x[i], y[j]), (x[i + 1], y[j + 1])], cell)
        })
    }

    /// The centre of cell (step index, axis index), in axis coordinates.
    pub fn centre(&self, step: usize, axis: usize) -> (f64, f64) {
        (
            self.x_scale.to_axis(self.steps[step]),
            self.y_scale.to_axis(self.values[axis]),
        )
    }

    pub fn x_desc(&self) -> String {
        describe(self.x_scale, "step size δ (dimensionless)")
    }

    pub fn y_desc(&self) -> String {
        let what = if self.param == "init.x0" {
            "initial point x₀ (init.x0)".to_string()
        } else {
            self.param.clone()
        };
        describe(self.y_scale, &what)
    }
}

#[cfg(test)]
mod tests {
    use super::edges;

    #[test]
    fn edges_sit_halfway_between_uneven_neighbours() {
        assert_eq!(edges(&[0.0, 1.0, 3.0]), vec![-0.5, 0.5, 2.0, 4.0]);
        assert_eq!(edges(&[2.0]), vec![1.5, 2.5]);
    }
}
