//! Bifurcation diagram of a 1-D model: for each step size δ, the values that
//! the gradient map x ↦ x − δ f'(x) visits after its transient, started just
//! beside each minimizer. Past a minimizer's threshold 2/f''(x*) its fixed
//! point gives way to a period-2 orbit, then 4, 8, … and chaos (docs/theory.md §1).
//! Computed here on the CPU with the sweep's own f' (Horner, f64).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{self, DrawResult, Figure, Scale};
use super::data::RunData;
use super::theory::{self, Threshold};
use crate::models::poly;

/// Columns of δ drawn, iterations discarded as transient, iterations recorded.
const COLUMNS: usize = 500;
const TRANSIENT: usize = 4000;
const RECORDED: usize = 128;
/// Recorded values are merged on a grid this fine (of the y range): periodic
/// orbits leave a few points, chaotic ones a band, and the SVG stays small.
const ROWS: f64 = 500.0;

pub struct Bifurcation {
    /// (δ, x, start index) for each distinct value visited.
    points: Vec<(f64, f64, usize)>,
    starts: Vec<f64>,
    thresholds: Vec<Threshold>,
    scale: Scale,
    title: String,
}

/// The post-transient orbit of x ↦ x − δ f'(x) from `x0`, or None if it leaves |x| ≤ cap.
pub fn orbit(derivative: &[f64], step_size: f64, x0: f64, cap: f64) -> Option<Vec<f64>> {
    let mut x = x0;
    let mut out = Vec::with_capacity(RECORDED);
    for k in 0..TRANSIENT + RECORDED {
        x -= step_size * poly::derivative(derivative, x);
        // NaN fails `is_finite`, so a non-finite iterate also ends the orbit.
        if !x.is_finite() || x.abs() > cap {
            return None;
        }
        if k >= TRANSIENT {
            out.push(x);
        }
    }
    Some(out)
}

impl Bifurcation {
    /// For one-axis sweeps of a 1-D model; None otherwise.
    pub fn new(run: &RunData) -> Option<Bifurcation> {
        let (derivative, starts) = theory::scalar_map(&run.sweep)?;
        let scale = Scale::of(run.log_steps());
        let steps = &run.sweep.steps;
        let (lo, hi) = (
            scale.to_axis(steps[0]),
            scale.to_axis(steps[steps.len() - 1]),
        );
        let cap = run.sweep.spec.stop.divergence_cap;
        let mut raw = Vec::new();
        for i in 0..COLUMNS {
            let t = lo + (hi - lo) * i as f64 / (COLUMNS - 1).max(1) as f64;
            let step_size = scale.from_axis(t);
            for (s, &x0) in starts.iter().enumerate() {
                if let Some(xs) = orbit(&derivative, step_size, x0, cap) {
                    raw.extend(xs.into_iter().map(|x| (step_size, x, s)));
                }
            }
        }
        let (ymin, ymax) = raw
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.1), b.max(p.1))
            });
        let cell = ((ymax - ymin) / ROWS).max(1e-12);
        let mut points: Vec<(f64, f64, usize)> = raw
            .into_iter()
            .map(|(d, x, s)| (d, ymin + ((x - ymin) / cell).round() * cell, s))
            .collect();
        points.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.2.cmp(&b.2))
                .then(a.1.total_cmp(&b.1))
        });
        points.dedup();
        Some(Bifurcation {
            points,
            starts,
            thresholds: theory::thresholds(&run.sweep),
            scale,
            title: format!("{}: bifurcation diagram of x ↦ x − δ f'(x)", run.name),
        })
    }
}

impl Figure for Bifurcation {
    fn stem(&self) -> &str {
        "bifurcation"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let scale = self.scale;
        let x_range = scale.range(self.points.iter().map(|p| p.0), 0.01);
        let y_range = Scale::Linear.range(self.points.iter().map(|p| p.1), 0.05);
        let y_range = if y_range.start.is_finite() {
            y_range
        } else {
            0.0..1.0
        };
        let mut chart = canvas::chart(root, &self.title, x_range, y_range)?;
        let y_desc = format!("x after {TRANSIENT} iterations (next {RECORDED} values)");
        canvas::axes(
            &mut chart,
            (canvas::step_desc(scale), scale),
            (&y_desc, Scale::Linear),
            true,
        )?;
        for (s, x0) in self.starts.iter().enumerate() {
            let colour = canvas::MINIMIZER_COLOURS[s % canvas::MINIMIZER_COLOURS.len()];
            chart
                .draw_series(
                    self.points
                        .iter()
                        .filter(|p| p.2 == s)
                        .map(|p| Circle::new((scale.to_axis(p.0), p.1), 1, colour.filled())),
                )?
                .label(format!("started at x₀ = {}", theory::short(*x0)))
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, colour.filled()));
        }
        canvas::threshold_lines(&mut chart, &self.thresholds, scale, 1)?;
        canvas::legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::poly::{Poly, PolySpec};

    /// Distinct values of an orbit, to a tolerance.
    fn period(orbit: &[f64]) -> usize {
        let mut v: Vec<f64> = orbit.to_vec();
        v.sort_by(f64::total_cmp);
        v.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
        v.len()
    }

    #[test]
    fn the_cascade_near_two_doubles_then_turns_chaotic() {
        let p = Poly::new(&PolySpec::default()).unwrap();
        let o = |d| orbit(&p.derivative, d, 2.001, 1e6).unwrap();
        assert_eq!(period(&o(0.19)), 1);
        assert_eq!(period(&o(0.21)), 2);
        assert_eq!(period(&o(0.25)), 4);
        assert!(period(&o(0.3)) > 16, "δ = 0.3 is not chaotic");
    }
}
