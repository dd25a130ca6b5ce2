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
    /// Cells step size fastest: cell (i, j) is `cells[i + j * steps.len()]`.
    pub cells: Vec<CellRow>,
    /// The note on pooling, where blocks of cells were pooled.
    pub pooling: Option<String>,
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

/// Most columns (step sizes) and rows (axis values) a map draws; larger grids
/// pool blocks of neighbouring cells.
const MAX_COLUMNS: usize = 800;
const MAX_ROWS: usize = 500;

/// Every `factor` neighbours pooled: each block at its middle value.
fn pool_axis(axis: &[f64], factor: usize) -> Vec<f64> {
    axis.chunks(factor).map(|c| c[c.len() / 2]).collect()
}

impl Grid2d {
    /// None for a one-axis sweep.
    pub fn new(run: &RunData) -> Option<Grid2d> {
        let (param, values) = run.sweep.axis.clone()?;
        let steps = run.sweep.steps.clone();
        let (fx, fy) = (
            steps.len().div_ceil(MAX_COLUMNS).max(1),
            values.len().div_ceil(MAX_ROWS).max(1),
        );
        let mut grid = Grid2d {
            pooling: None,
            param,
            x_scale: Scale::of(run.log_steps()),
            y_scale: Scale::of(run.log_axis()),
            cells: Vec::new(),
            steps: pool_axis(&steps, fx),
            values: pool_axis(&values, fy),
        };
        if fx == 1 && fy == 1 {
            grid.cells = run.cells.clone();
            return Some(grid);
        }
        // Cell (i, j) of the run is cell i + j·S; it joins block (i/fx, j/fy).
        let (s, columns) = (steps.len(), grid.steps.len());
        let mut cells: Vec<Option<CellRow>> = vec![None; columns * grid.values.len()];
        for (c, cell) in run.cells.iter().enumerate() {
            let b = (c % s) / fx + (c / s) / fy * columns;
            match &mut cells[b] {
                Some(sum) => sum.absorb(cell),
                slot => *slot = Some(cell.clone()),
            }
        }
        grid.cells = cells.into_iter().map(Option::unwrap_or_default).collect();
        grid.pooling = Some(format!(
            "{s} × {} cells are drawn as {columns} × {}, each pooling {fx} × {fy} neighbours",
            values.len(),
            grid.values.len()
        ));
        Some(grid)
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
        let what = match self.param.strip_prefix("steps.layer") {
            // The other layers' step size, as the axis leaves them.
            Some(_) => "step size δ of the other layers",
            None => "step size δ (dimensionless)",
        };
        describe(self.x_scale, what)
    }

    pub fn y_desc(&self) -> String {
        let what = if self.param == "init.x0" {
            "initial point x₀ (init.x0)".to_string()
        } else if let Some(k) = self.param.strip_prefix("steps.layer") {
            format!("step size of layer {k} ({})", self.param)
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
