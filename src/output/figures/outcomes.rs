//! P(outcome) against the step size, one curve per outcome class and per
//! minimizer, each in its 95% Wilson band, with the theory's thresholds as
//! dashed, labelled vertical lines.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{self, DrawResult, Figure, Scale};
use super::data::{CellRow, RunData};
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
        Outcomes {
            cells: run.by_step_size(),
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
        let x_range = scale.range(self.cells.iter().map(|c| c.step_size), 0.02);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, canvas::text(20))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(x_range, -0.02f64..1.02)?;
        chart
            .configure_mesh()
            .x_desc(match scale {
                Scale::Log => "step size δ (dimensionless, log scale)",
                Scale::Linear => "step size δ (dimensionless)",
            })
            .y_desc("P(outcome), 95% Wilson band")
            .x_label_formatter(&|v| scale.label(*v))
            .y_label_formatter(&|v| canvas::tick_label(*v))
            .label_style(canvas::text(14))
            .axis_desc_style(canvas::text(16))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;

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

        for (i, t) in self.thresholds.iter().enumerate() {
            let x = scale.to_axis(t.step_size);
            if !chart.x_range().contains(&x) {
                continue;
            }
            chart.draw_series(DashedLineSeries::new(
                vec![(x, -0.02), (x, 1.02)],
                8,
                5,
                BLACK.stroke_width(2),
            ))?;
            // Stagger the labels so thresholds close together stay readable.
            let y = 0.96 - 0.06 * i as f64;
            chart.draw_series(std::iter::once(Text::new(
                format!(" {}", t.label),
                (x, y),
                canvas::text(14),
            )))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(canvas::text(14))
            .draw()?;
        Ok(())
    }
}
