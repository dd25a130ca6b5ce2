//! Sharpness over time, from trace.csv: the top Hessian eigenvalue of each
//! traced trajectory against the iteration, coloured by its step size, with
//! each bound it is held to (2/δ_eff, or the preconditioned bound) dashed in
//! the same colour, as the edge-of-stability studies draw it.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{self, DrawResult, Figure, Scale};
use super::data::RunData;
use super::heatmap::colour_of;
use crate::error::{Error, Result};

/// At most this many trajectories are drawn, spread over the traced ones.
const MAX_LINES: usize = 24;

/// One traced trajectory: its step size, its bound and its points.
struct Line {
    step_size: f64,
    bound: f64,
    points: Vec<(f64, f64)>,
}

pub struct Trace {
    lines: Vec<Line>,
    title: String,
}

fn read(path: &Path) -> Result<Vec<Line>> {
    let bad = |what: &str| Error::spec(format!("{} {what}; rerun the sweep", path.display()));
    let mut reader = csv::Reader::from_path(path).map_err(|_| bad("cannot be read"))?;
    let header = reader.headers().map_err(|_| bad("has no header"))?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(&format!("has no {name} column")))
    };
    let cols = [
        col("trajectory")?,
        col("step_size")?,
        col("iteration")?,
        col("sharpness")?,
        col("bound")?,
    ];
    let mut lines: BTreeMap<u64, Line> = BTreeMap::new();
    for record in reader.records() {
        let record = record.map_err(|_| bad("has a malformed row"))?;
        let num = |i: usize| record.get(cols[i]).and_then(|v| v.parse::<f64>().ok());
        let (Some(id), Some(step), Some(k), Some(s), Some(b)) =
            (num(0), num(1), num(2), num(3), num(4))
        else {
            return Err(bad("has a malformed row"));
        };
        let line = lines.entry(id as u64).or_insert(Line {
            step_size: step,
            bound: b,
            points: Vec::new(),
        });
        if s.is_finite() {
            line.points.push((k, s));
        }
    }
    Ok(lines.into_values().collect())
}

impl Trace {
    /// The figure of a run that wrote trace.csv.
    pub fn new(run: &RunData) -> Result<Option<Trace>> {
        let Some(path) = &run.trace else {
            return Ok(None);
        };
        let all = read(path)?;
        if all.iter().all(|l| l.points.is_empty()) {
            return Ok(None);
        }
        let every = all.len().div_ceil(MAX_LINES).max(1);
        let drawn = all.len().div_ceil(every);
        if every > 1 {
            canvas::note(format!(
                "trace: {drawn} of {} traced trajectories drawn, evenly spread",
                all.len()
            ));
        }
        let lines = all.into_iter().step_by(every).collect();
        Ok(Some(Trace {
            lines,
            title: format!("{}: sharpness over the iterations", run.name),
        }))
    }
}

impl Figure for Trace {
    fn stem(&self) -> &str {
        "trace"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let finite = |v: f64| v.is_finite();
        let x_max = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .fold(1.0f64, f64::max);
        let values = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1).chain([l.bound]))
            .filter(|v| finite(*v));
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (lo, hi) = if lo < hi {
            (lo.min(0.0), hi * 1.05)
        } else {
            (lo - 1.0, lo + 1.0)
        };
        let mut chart = canvas::chart(root, &self.title, 0.0..x_max, lo..hi)?;
        canvas::axes(
            &mut chart,
            ("iteration", Scale::Linear),
            (
                "top Hessian eigenvalue (dashed: its bound 2/δ_eff)",
                Scale::Linear,
            ),
            true,
        )?;
        // Colours by log δ over the drawn step sizes.
        let logs: Vec<f64> = self.lines.iter().map(|l| l.step_size.log10()).collect();
        let (a, b) = logs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let shade = |v: f64| if b > a { 0.9 * (v - a) / (b - a) } else { 0.5 };
        for (line, log) in self.lines.iter().zip(&logs) {
            let colour = colour_of(shade(*log));
            if finite(line.bound) && line.bound >= lo && line.bound <= hi {
                chart.draw_series(DashedLineSeries::new(
                    [(0.0, line.bound), (x_max, line.bound)],
                    8,
                    6,
                    colour.stroke_width(1),
                ))?;
            }
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied(),
                    colour.stroke_width(2),
                ))?
                .label(format!("δ = {}", canvas::tick_label(line.step_size)))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        if self.lines.len() <= 12 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(canvas::text(13))
                .draw()?;
        }
        Ok(())
    }
}
