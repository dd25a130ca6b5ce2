//! Basin map: initial point × step size, each cell coloured by its most common
//! outcome (which minimizer, diverged, oscillating, undecided). Drawn for
//! sweeps whose second axis is the starting point, `init.x0` with
//! `init.kind = "point"`.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{self, DrawResult, Figure};
use super::data::{CellRow, RunData};
use super::grid2d::Grid2d;
use super::theory;
use crate::spec::InitSpec;

pub struct BasinMap {
    grid: Grid2d,
    /// (label, colour) per class; the index is what `class_of` returns.
    classes: Vec<(String, RGBColor)>,
    minimizers: usize,
    title: String,
}

impl BasinMap {
    pub fn new(run: &RunData) -> Option<BasinMap> {
        let axis = run.sweep.spec.axis.as_ref()?;
        if axis.param != "init.x0" || !matches!(run.sweep.spec.init, InitSpec::Point { .. }) {
            return None;
        }
        let grid = Grid2d::new(run)?;
        let minimizers = run.sweep.cells[0].model.minimizers();
        let mut classes: Vec<(String, RGBColor)> = minimizers
            .iter()
            .enumerate()
            .map(|(k, m)| {
                (
                    format!("converged to x = {}", theory::short(m.x)),
                    canvas::MINIMIZER_COLOURS[k % canvas::MINIMIZER_COLOURS.len()],
                )
            })
            .collect();
        classes.extend([
            ("converged elsewhere".to_string(), canvas::BLACK_),
            ("diverged".to_string(), canvas::VERMILLION),
            ("oscillating".to_string(), canvas::ORANGE),
            ("undecided".to_string(), canvas::YELLOW),
        ]);
        Some(BasinMap {
            title: format!(
                "{}: basins of attraction (most common outcome per cell)",
                run.name
            ),
            minimizers: minimizers.len(),
            classes,
            grid,
        })
    }

    /// The index into `classes` of a cell's most common outcome (the first on ties).
    fn class_of(&self, c: &CellRow) -> usize {
        let at_minimizers: u64 = c.converged_min.iter().sum();
        let mut counts: Vec<u64> = c.converged_min.clone();
        counts.resize(self.minimizers, 0);
        counts.extend([
            c.converged.saturating_sub(at_minimizers),
            c.diverged,
            c.oscillating,
            c.undecided,
        ]);
        counts
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
            .map_or(0, |(i, _)| i)
    }
}

impl Figure for BasinMap {
    fn stem(&self) -> &str {
        "basin"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        if let Some(p) = &self.grid.pooling {
            canvas::note(p.clone());
        }
        let (xs, ys) = self.grid.ranges();
        let (x_scale, y_scale) = (self.grid.x_scale, self.grid.y_scale);
        let mut chart = canvas::chart(root, &self.title, xs, ys)?;
        canvas::axes(
            &mut chart,
            (&self.grid.x_desc(), x_scale),
            (&self.grid.y_desc(), y_scale),
            false,
        )?;
        chart.draw_series(self.grid.rects().map(|(corners, cell)| {
            Rectangle::new(corners, self.classes[self.class_of(cell)].1.filled())
        }))?;
        let present: Vec<usize> = {
            let mut seen: Vec<usize> = self.grid.cells.iter().map(|c| self.class_of(c)).collect();
            seen.sort_unstable();
            seen.dedup();
            seen
        };
        for i in present {
            let (label, colour) = &self.classes[i];
            let colour = *colour;
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
                });
        }
        canvas::legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}
