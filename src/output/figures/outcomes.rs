//! P(outcome) against the step size, one curve per outcome class and per
//! minimizer, each in its 95% Wilson band, with the theory's thresholds as
//! dashed, labelled vertical lines.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{self, DrawResult, Figure, Scale};
use super::data::{pooled, CellRow, RunData};

/// Most step sizes the figure draws; more are pooled in runs of neighbours.
const MAX_COLUMNS: usize = 1000;
use super::theory::{self, Threshold};

/// One curve: a label, a colour, and the count it plots per cell.
struct Curve {
    label: String,
    colour: RGBColor,
    count: Box<dyn Fn(&CellRow) -> u64>,
}

pub struct Outcomes {
    cells: Vec<CellRow>,
    curves: Vec<Curve>,
    thresholds: Vec<Threshold>,
    scale: Scale,
    title: String,
    /// The note on pooling, where step sizes were pooled.
    pooling: Option<String>,
}

impl Outcomes {
    pub fn new(run: &RunData) -> Outcomes {
        let mut curves = vec![Curve {
            label: "converged".into(),
            colour: canvas::BLACK_,
            count: Box::new(|c: &CellRow| c.converged),
        }];
        for (k, m) in run.sweep.cells[0].model.minimizers().iter().enumerate() {
            curves.push(Curve {
                label: format!("converged to x = {}", theory::short(m.x)),
                colour: canvas::MINIMIZER_COLOURS[k % canvas::MINIMIZER_COLOURS.len()],
                count: Box::new(move |c: &CellRow| c.converged_min.get(k).copied().unwrap_or(0)),
            });
        }
        curves.extend([
            Curve {
                label: "diverged".into(),
                colour: canvas::VERMILLION,
                count: Box::new(|c: &CellRow| c.diverged),
            },
            Curve {
                label: "oscillating".into(),
                colour: canvas::ORANGE,
                count: Box::new(|c: &CellRow| c.oscillating),
            },
            Curve {
                label: "undecided".into(),
                colour: canvas::SKY_BLUE,
                count: Box::new(|c: &CellRow| c.undecided),
            },
        ]);
        let cells = run.by_step_size();
        let steps = cells.len();
        let (cells, run_len) = pooled(cells, MAX_COLUMNS);
        let pooling = (run_len > 1).then(|| {
            format!(
                "{steps} step sizes are drawn as {} points, each pooling {run_len} neighbours",
                cells.len()
            )
        });
        Outcomes {
            cells,
            pooling,
            curves,
            thresholds: theory::thresholds(&run.sweep),
            scale: Scale::of(run.log_steps()),
            title: format!(
                "{}: outcome probabilities, {} trajectories per step size",
                run.name,
                run.sweep.trajectories_per_cell
                    * run.sweep.axis.as_ref().map_or(1, |a| a.1.len() as u64)
            ),
        }
    }
}

impl Figure for Outcomes {
    fn stem(&self) -> &str {
        "outcomes"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let scale = self.scale;
        if let Some(p) = &self.pooling {
            canvas::note(p.clone());
        }
        let x_range = scale.range(self.cells.iter().map(|c| c.step_size), 0.02);
        let mut chart = canvas::chart(root, &self.title, x_range, -0.02f64..1.02)?;
        canvas::axes(
            &mut chart,
            (canvas::step_desc(scale), scale),
            ("P(outcome), 95% Wilson band", Scale::Linear),
            true,
        )?;

        for curve in &self.curves {
            let shares: Vec<(f64, (f64, f64, f64))> = self
                .cells
                .iter()
                .map(|c| (scale.to_axis(c.step_size), c.share((curve.count)(c))))
                .collect();
            if shares.iter().all(|(_, (p, _, hi))| *p == 0.0 && *hi < 0.5) && shares.len() > 1 {
                // A class that never occurs would only add a band along zero.
                continue;
            }
            let mut band: Vec<(f64, f64)> =
                shares.iter().map(|(x, (_, _, hi))| (*x, *hi)).collect();
            band.extend(shares.iter().rev().map(|(x, (_, lo, _))| (*x, *lo)));
            chart.draw_series(std::iter::once(Polygon::new(
                band,
                curve.colour.mix(0.18).filled(),
            )))?;
            let colour = curve.colour;
            chart
                .draw_series(LineSeries::new(
                    shares.iter().map(|(x, (p, _, _))| (*x, *p)),
                    colour.stroke_width(2),
                ))?
                .label(curve.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
                });
        }

        canvas::threshold_lines(&mut chart, &self.thresholds, scale, 2)?;
        canvas::legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
        Ok(())
    }
}
