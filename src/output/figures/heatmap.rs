//! Two-axis sweeps: P(converged to a minimum) over (step size, second-axis value) in the
//! viridis colormap (readable under the common colour-vision deficiencies and
//! in grey), with a colour bar and the theory's boundary drawn over it.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{self, Chart, DrawResult, Figure, Scale};
use super::data::RunData;
use super::grid2d::Grid2d;
use super::theory::{self, Boundary};

/// The colour of probability `p` (clamped to [0, 1]).
pub fn colour_of(p: f64) -> RGBColor {
    ViridisRGB.get_color(p.clamp(0.0, 1.0) as f32)
}

pub struct Heatmap {
    pub grid: Grid2d,
    boundaries: Vec<Boundary>,
    title: String,
}

const BAR_WIDTH: u32 = 130;

impl Heatmap {
    pub fn new(run: &RunData) -> Option<Heatmap> {
        let grid = Grid2d::new(run)?;
        Some(Heatmap {
            title: format!(
                "{}: P(converged to a minimum), {} per cell",
                run.name,
                per_cell(run.sweep.trajectories_per_cell)
            ),
            boundaries: theory::boundaries(&run.sweep),
            grid,
        })
    }

    fn chart<'a, DB: DrawingBackend>(
        &self,
        area: &'a DrawingArea<DB, Shift>,
    ) -> Result<Chart<'a, DB>, Box<dyn std::error::Error>>
    where
        DB::ErrorType: 'static,
    {
        let (xs, ys) = self.grid.ranges();
        canvas::chart(area, &self.title, xs, ys)
    }

    /// The pixel at the centre of cell (step index, axis index) in the PNG,
    /// from the same layout `draw` uses.
    pub fn pixel_of(&self, step: usize, axis: usize) -> (i32, i32) {
        let (w, h) = self.size();
        let mut scratch = vec![0u8; w as usize * h as usize * 3];
        let root = BitMapBackend::with_buffer(&mut scratch, (w, h)).into_drawing_area();
        let (main, _) = root.split_horizontally(w - BAR_WIDTH);
        let chart = self.chart(&main).expect("the same layout draw() built");
        chart.backend_coord(&self.grid.centre(step, axis))
    }
}

impl Figure for Heatmap {
    fn stem(&self) -> &str {
        "heatmap"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let (w, _) = root.dim_in_pixel();
        let (main, bar) = root.split_horizontally(w - BAR_WIDTH);
        if let Some(p) = &self.grid.pooling {
            canvas::note(p.clone());
        }
        let mut chart = self.chart(&main)?;
        let (xs, ys) = (self.grid.x_scale, self.grid.y_scale);
        canvas::axes(
            &mut chart,
            (&self.grid.x_desc(), xs),
            (&self.grid.y_desc(), ys),
            false,
        )?;
        chart.draw_series(self.grid.rects().map(|(corners, cell)| {
            Rectangle::new(corners, colour_of(cell.p_minimum()).filled())
        }))?;

        for (i, b) in self.boundaries.iter().enumerate() {
            let points: Vec<(f64, f64)> = b
                .points
                .iter()
                .filter(|(d, _)| d.is_finite() && *d > 0.0)
                .map(|(d, v)| (xs.to_axis(*d), ys.to_axis(*v)))
                .collect();
            let Some(&(x_top, _)) = points.last() else {
                continue;
            };
            if !chart.x_range().contains(&x_top) {
                continue;
            }
            // A vertical boundary (the same δ at every axis value) spans the plot.
            let points = if points.iter().all(|p| p.0 == x_top) {
                let y = chart.y_range();
                vec![(x_top, y.start), (x_top, y.end)]
            } else {
                points
            };
            chart.draw_series(LineSeries::new(points.clone(), WHITE.stroke_width(5)))?;
            chart.draw_series(DashedLineSeries::new(points, 10, 6, BLACK.stroke_width(3)))?;
            let y = chart.y_range();
            let label_y = y.end - (y.end - y.start) * (0.05 + 0.07 * i as f64);
            chart.draw_series(std::iter::once(Text::new(
                format!(" {}", b.label),
                (x_top, label_y),
                canvas::text(15).color(&WHITE),
            )))?;
        }
        draw_colour_bar(&bar)?;
        Ok(())
    }
}

fn draw_colour_bar<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut bar = ChartBuilder::on(area)
        .margin_top(60)
        .margin_bottom(64)
        .margin_right(16)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..1.0, 0f64..1.0)?;
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc("P(converged to a minimum)")
        .y_labels(6)
        .y_label_formatter(&|v| canvas::tick_label(*v))
        .label_style(canvas::text(14))
        .axis_desc_style(canvas::text(16))
        .draw()?;
    const STEPS: usize = 200;
    bar.draw_series((0..STEPS).map(|i| {
        let lo = i as f64 / STEPS as f64;
        let hi = (i + 1) as f64 / STEPS as f64;
        Rectangle::new([(0.0, lo), (1.0, hi)], colour_of((lo + hi) / 2.0).filled())
    }))?;
    Ok(())
}

/// "1 trajectory" or "N trajectories".
pub fn per_cell(n: u64) -> String {
    if n == 1 {
        "1 trajectory".into()
    } else {
        format!("{n} trajectories")
    }
}

/// For the caption of an axis drawn log-spaced.
pub fn describe(scale: Scale, what: &str) -> String {
    match scale {
        Scale::Log => format!("{what}, log scale"),
        Scale::Linear => what.to_string(),
    }
}
