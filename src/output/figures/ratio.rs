//! The paper's bound checked visually: metric / bound for converged
//! trajectories against the step size, with the line at 1 that no point may
//! cross. From trajectories.csv when the run wrote it (every converged
//! trajectory, thinned evenly to a drawable number), otherwise from each
//! cell's largest metric (cells.csv's metric_max / bound).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{self, DrawResult, Figure, Scale};
use super::data::RunData;
use crate::error::{Error, Result};

/// At most this many points are drawn.
const MAX_POINTS: usize = 20_000;

pub struct MetricRatio {
    /// (δ, metric / bound).
    points: Vec<(f64, f64)>,
    /// The note on ratios left out, where some were.
    left_out: Option<String>,
    per_trajectory: bool,
    metric: String,
    scale: Scale,
    title: String,
}

fn read_trajectories(run: &RunData, path: &Path) -> Result<Vec<(f64, f64)>> {
    let bad = |what: &str| Error::spec(format!("{} {what}; rerun the sweep", path.display()));
    if path.extension().is_some_and(|e| e == "parquet") {
        return crate::output::columnar::converged_metrics(path)?
            .into_iter()
            .map(|(cell, metric)| {
                let c = run
                    .sweep
                    .cells
                    .get(cell as usize)
                    .ok_or_else(|| bad("names a cell outside its sweep"))?;
                Ok((c.step_size, metric / c.bound()))
            })
            .collect();
    }
    let mut reader = csv::Reader::from_path(path).map_err(|_| bad("cannot be read"))?;
    let header = reader.headers().map_err(|_| bad("has no header"))?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(&format!("has no {name} column")))
    };
    let (cell_col, outcome_col, metric_col) = (col("cell")?, col("outcome")?, col("metric")?);
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|_| bad("has a malformed row"))?;
        if record.get(outcome_col) != Some("converged") {
            continue;
        }
        let cell: usize = record
            .get(cell_col)
            .and_then(|v| v.parse().ok())
            .filter(|&c| c < run.sweep.cells.len())
            .ok_or_else(|| bad("names a cell outside its sweep"))?;
        let Some(metric) = record.get(metric_col).and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let c = &run.sweep.cells[cell];
        out.push((c.step_size, metric / c.bound()));
    }
    Ok(out)
}

/// Every k-th point, so the drawn ones spread over the whole run.
fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points;
    }
    let stride = points.len().div_ceil(MAX_POINTS);
    points.into_iter().step_by(stride).collect()
}

impl MetricRatio {
    pub fn new(run: &RunData) -> Result<MetricRatio> {
        let (points, per_trajectory) = match &run.trajectories {
            Some(path) => (read_trajectories(run, path)?, true),
            None => (
                run.cells
                    .iter()
                    .filter_map(|c| c.metric_max.map(|m| (c.step_size, m / c.bound)))
                    .collect::<Vec<_>>(),
                false,
            ),
        };
        // A ratio that is not finite (a bound of zero, a metric that
        // overflowed) has no place on the axis; the note counts them.
        let all = points.len();
        let points: Vec<(f64, f64)> = points
            .into_iter()
            .filter(|(d, r)| d.is_finite() && r.is_finite())
            .collect();
        let left_out = (points.len() < all).then(|| {
            format!(
                "{} of {all} ratios are not finite and are not drawn",
                all - points.len()
            )
        });
        let points = thin(points);
        let theory = run.sweep.cells[0].model.theory();
        let metric = theory["metric"].as_str().unwrap_or("metric").to_string();
        Ok(MetricRatio {
            title: format!(
                "{}: {} / bound over converged trajectories ({})",
                run.name,
                metric,
                if per_trajectory {
                    "each trajectory"
                } else {
                    "largest per cell"
                }
            ),
            points,
            left_out,
            per_trajectory,
            metric,
            scale: Scale::of(run.log_steps()),
        })
    }

    /// The largest ratio drawn, if any trajectory converged.
    pub fn max_ratio(&self) -> Option<f64> {
        self.points.iter().map(|p| p.1).reduce(f64::max)
    }
}

impl Figure for MetricRatio {
    fn stem(&self) -> &str {
        "metric_bound"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let scale = self.scale;
        if let Some(n) = &self.left_out {
            canvas::note(n.clone());
        }
        let x_range = if self.points.is_empty() {
            0.0..1.0
        } else {
            scale.range(self.points.iter().map(|p| p.0), 0.02)
        };
        let top = self.max_ratio().unwrap_or(1.0).max(1.0) * 1.1;
        let mut chart = canvas::chart(root, &self.title, x_range.clone(), 0f64..top)?;
        let y_desc = format!("{} / bound (dimensionless)", self.metric);
        canvas::axes(
            &mut chart,
            (canvas::step_desc(scale), scale),
            (&y_desc, Scale::Linear),
            true,
        )?;
        let radius = if self.per_trajectory { 2 } else { 4 };
        chart
            .draw_series(self.points.iter().map(|(d, r)| {
                Circle::new(
                    (scale.to_axis(*d), *r),
                    radius,
                    canvas::BLUE.mix(0.6).filled(),
                )
            }))?
            .label(if self.per_trajectory {
                "converged trajectory"
            } else {
                "largest in a cell"
            })
            .legend(|(x, y)| Circle::new((x + 8, y), 4, canvas::BLUE.filled()));
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x_range.start, 1.0), (x_range.end, 1.0)],
                8,
                5,
                canvas::VERMILLION.stroke_width(2),
            ))?
            .label("bound: ratio = 1")
            .legend(|(x, y)| {
                PathElement::new(
                    vec![(x, y), (x + 20, y)],
                    canvas::VERMILLION.stroke_width(2),
                )
            });
        canvas::legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    }
}
