//! Two-axis sweeps coloured as the fractal-boundary studies colour their
//! images: a cell where most trajectories converged in blue, darker the
//! fewer iterations they took; one where most diverged in red, darker the
//! sooner they diverged; and one where most did neither (oscillating or
//! undecided at the budget) in grey. The boundary between blue and red is
//! the edge of trainability.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{self, DrawResult, Figure};
use super::data::{CellRow, RunData};
use super::grid2d::Grid2d;
use super::heatmap::per_cell;

pub struct Speed {
    grid: Grid2d,
    title: String,
    /// The range of mean log10 iterations over the plot's converged cells,
    /// and over its diverged ones: each ramp spans its own.
    converged: (f64, f64),
    diverged: (f64, f64),
}

/// Light to dark, fast at the dark end.
pub const BLUES: [(u8, u8, u8); 2] = [(198, 219, 239), (8, 48, 107)];
pub const REDS: [(u8, u8, u8); 2] = [(252, 187, 161), (103, 0, 13)];
pub const NEITHER: RGBColor = RGBColor(190, 190, 190);

pub fn ramp(ends: [(u8, u8, u8); 2], t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    RGBColor(
        mix(ends[0].0, ends[1].0),
        mix(ends[0].1, ends[1].1),
        mix(ends[0].2, ends[1].2),
    )
}

/// Which way most of a cell's trajectories went.
enum Fate {
    Converged(f64),
    Diverged(f64),
    Neither,
}

fn fate(c: &CellRow) -> Fate {
    let neither = c.oscillating + c.undecided;
    match (c.speed_converged, c.speed_diverged) {
        (Some(s), _) if c.converged >= c.diverged && c.converged >= neither => Fate::Converged(s),
        (_, Some(s)) if c.diverged > c.converged && c.diverged >= neither => Fate::Diverged(s),
        _ => Fate::Neither,
    }
}

/// The range of `values`, widened where they are all one number.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo < hi {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    }
}

impl Speed {
    /// The figure of a two-axis run whose cells.csv has the readouts.
    pub fn new(run: &RunData) -> Option<Speed> {
        let grid = Grid2d::new(run)?;
        let rows: Vec<&CellRow> = grid.rects().map(|(_, c)| c).collect();
        if rows
            .iter()
            .all(|c| c.speed_converged.is_none() && c.speed_diverged.is_none())
        {
            return None;
        }
        let converged = range(rows.iter().filter_map(|c| match fate(c) {
            Fate::Converged(s) => Some(s),
            _ => None,
        }));
        let diverged = range(rows.iter().filter_map(|c| match fate(c) {
            Fate::Diverged(s) => Some(s),
            _ => None,
        }));
        Some(Speed {
            title: format!(
                "{}: converged (blue) or diverged (red), darker = faster; {} per cell",
                run.name,
                per_cell(run.sweep.trajectories_per_cell)
            ),
            grid,
            converged,
            diverged,
        })
    }

    fn colour(&self, c: &CellRow) -> RGBColor {
        let darkness = |s: f64, (lo, hi): (f64, f64)| 1.0 - (s - lo) / (hi - lo);
        match fate(c) {
            Fate::Converged(s) => ramp(BLUES, darkness(s, self.converged)),
            Fate::Diverged(s) => ramp(REDS, darkness(s, self.diverged)),
            Fate::Neither => NEITHER,
        }
    }
}

impl Figure for Speed {
    fn stem(&self) -> &str {
        "speed"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        if let Some(p) = &self.grid.pooling {
            canvas::note(p.clone());
        }
        let (xs, ys) = self.grid.ranges();
        let area: &DrawingArea<DB, Shift> = root;
        let mut chart = canvas::chart(area, &self.title, xs, ys)?;
        canvas::axes(
            &mut chart,
            (&self.grid.x_desc(), self.grid.x_scale),
            (&self.grid.y_desc(), self.grid.y_scale),
            false,
        )?;
        chart.draw_series(
            self.grid
                .rects()
                .map(|(corners, cell)| Rectangle::new(corners, self.colour(cell).filled())),
        )?;
        Ok(())
    }
}
