//! What a figure is drawn from: a run's summary.json (the spec, rebuilt into
//! a sweep so the models' theory is at hand, and the cell rows) and, when the
//! run wrote it, trajectories.csv. Figures read only these, so `stepsweep plot
//! DIR` redraws any finished run.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::aggregate::wilson;
use crate::error::{Error, Result};
use crate::spec::Spec;
use crate::sweep::Sweep;

/// One grid cell's counts, as cells.csv and summary.json give them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CellRow {
    pub step_size: f64,
    pub axis_value: Option<f64>,
    pub trajectories: u64,
    pub converged: u64,
    pub diverged: u64,
    pub oscillating: u64,
    pub undecided: u64,
    /// Converged to each minimizer, ascending in x (models with minimizers).
    pub converged_min: Vec<u64>,
    /// Converged, but not at a minimum (a saddle or a maximum).
    pub converged_other: u64,
    pub metric_max: Option<f64>,
    pub bound: f64,
    pub violations: u64,
    /// Mean log10 iterations to be seen converged, and diverged (None where
    /// none did, or in a run from before the readouts).
    pub speed_converged: Option<f64>,
    pub speed_diverged: Option<f64>,
}

impl CellRow {
    pub fn p_converged(&self) -> f64 {
        self.converged as f64 / self.trajectories.max(1) as f64
    }

    /// P(converged to a minimum): what the paper's thresholds bound. GD that
    /// stalls at a saddle (common at large δ for deep products) is left out.
    pub fn p_minimum(&self) -> f64 {
        (self.converged - self.converged_other) as f64 / self.trajectories.max(1) as f64
    }

    /// Adds `other`'s counts to this cell's (the largest metric of both).
    pub fn absorb(&mut self, other: &CellRow) {
        self.trajectories += other.trajectories;
        self.converged += other.converged;
        self.converged_other += other.converged_other;
        self.diverged += other.diverged;
        self.oscillating += other.oscillating;
        self.undecided += other.undecided;
        for (a, b) in self.converged_min.iter_mut().zip(&other.converged_min) {
            *a += b;
        }
        self.metric_max = match (self.metric_max, other.metric_max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.violations += other.violations;
        // Means pooled by their counts (before the counts are added).
        let pool = |a: Option<f64>, na: u64, b: Option<f64>, nb: u64| match (a, b) {
            (Some(a), Some(b)) => Some((a * na as f64 + b * nb as f64) / (na + nb) as f64),
            (a, b) => a.or(b),
        };
        self.speed_converged = pool(
            self.speed_converged,
            self.converged - other.converged,
            other.speed_converged,
            other.converged,
        );
        self.speed_diverged = pool(
            self.speed_diverged,
            self.diverged - other.diverged,
            other.speed_diverged,
            other.diverged,
        );
    }

    /// A count as a fraction of the cell's trajectories, with its 95% Wilson interval.
    pub fn share(&self, count: u64) -> (f64, f64, f64) {
        wilson(count, self.trajectories)
    }
}

/// A finished run, as the figures see it.
pub struct RunData {
    pub name: String,
    pub sweep: Sweep,
    pub cells: Vec<CellRow>,
    /// trajectories.csv or trajectories.parquet, when the run wrote one.
    pub trajectories: Option<PathBuf>,
    /// trace.csv, when the run wrote one.
    pub trace: Option<PathBuf>,
}

fn bad(dir: &Path, what: &str) -> Error {
    Error::spec(format!(
        "{} is not a stepsweep run directory: its summary.json {what}; run 'stepsweep run' into it first",
        dir.display()
    ))
}

impl RunData {
    /// Reads DIR/summary.json (and notes DIR/trajectories.csv when present).
    pub fn load(dir: &Path) -> Result<RunData> {
        let path = dir.join("summary.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(bad(dir, "is missing"));
            }
            Err(e) => return Err(Error::io("cannot read", &path, e)),
        };
        let summary: Value =
            serde_json::from_str(&text).map_err(|_| bad(dir, "is not valid JSON"))?;
        let mut data = RunData::from_summary(&summary).map_err(|e| match e {
            Error::Spec(m) => bad(dir, &m),
            other => other,
        })?;
        data.trajectories = [
            crate::output::trajectories::CSV,
            crate::output::columnar::TRAJECTORIES,
        ]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file());
        let trace = dir.join(crate::trace::TRACE_FILE);
        data.trace = trace.is_file().then_some(trace);
        Ok(data)
    }

    /// Builds the data from a summary.json value (see `runner::summary_json`).
    pub fn from_summary(summary: &Value) -> Result<RunData> {
        let spec: Spec = serde_json::from_value(summary["spec"].clone())
            .map_err(|e| Error::spec(format!("has no readable spec ({e})")))?;
        let sweep = Sweep::new(spec)?;
        let rows = summary["cells"]
            .as_array()
            .ok_or_else(|| Error::spec("has no cells"))?;
        if rows.len() != sweep.cells.len() {
            return Err(Error::spec(format!(
                "lists {} cells where its spec gives {}",
                rows.len(),
                sweep.cells.len()
            )));
        }
        let axis_column = sweep.spec.axis.as_ref().map(|a| a.column());
        let minimizers = sweep.cells[0].model.minimizers().len();
        let cells = rows
            .iter()
            .map(|row| cell_row(row, axis_column.as_deref(), minimizers))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::spec("has a cell row with a missing or malformed count"))?;
        Ok(RunData {
            name: summary["name"].as_str().unwrap_or("sweep").to_string(),
            sweep,
            cells,
            trajectories: None,
            trace: None,
        })
    }

    /// Whether the step-size axis was laid out log-spaced.
    pub fn log_steps(&self) -> bool {
        self.sweep.spec.steps.is_log()
    }

    /// Whether the second axis was laid out log-spaced.
    pub fn log_axis(&self) -> bool {
        self.sweep
            .spec
            .axis
            .as_ref()
            .is_some_and(|a| a.axis_values().is_log())
    }

    /// Cells with the same step size summed over the second axis, ascending in δ.
    pub fn by_step_size(&self) -> Vec<CellRow> {
        // A stable sort keeps each step size's first cell first, whose bound
        // the sum keeps.
        let mut order: Vec<&CellRow> = self.cells.iter().collect();
        order.sort_by(|a, b| a.step_size.total_cmp(&b.step_size));
        let mut out: Vec<CellRow> = Vec::new();
        for c in order {
            match out.last_mut() {
                Some(o) if o.step_size == c.step_size => o.absorb(c),
                _ => out.push(CellRow {
                    axis_value: None,
                    ..c.clone()
                }),
            }
        }
        out
    }
}

/// `rows` pooled in runs of neighbours so that at most `most` remain, each
/// at the step size of its middle row; with the size of the runs (1: none
/// pooled). A figure of millions of cells stays a figure of pixels.
pub fn pooled(rows: Vec<CellRow>, most: usize) -> (Vec<CellRow>, usize) {
    let run = rows.len().div_ceil(most.max(1)).max(1);
    if run == 1 {
        return (rows, 1);
    }
    let out = rows
        .chunks(run)
        .map(|chunk| {
            let mut sum = chunk[chunk.len() / 2].clone();
            for (i, c) in chunk.iter().enumerate() {
                if i != chunk.len() / 2 {
                    sum.absorb(c);
                }
            }
            sum
        })
        .collect();
    (out, run)
}

fn cell_row(row: &Value, axis: Option<&str>, minimizers: usize) -> Option<CellRow> {
    let count = |k: &str| row.get(k)?.as_u64();
    let axis_value = match axis {
        Some(col) => Some(row.get(col)?.as_f64()?),
        None => None,
    };
    Some(CellRow {
        step_size: row.get("step_size")?.as_f64()?,
        axis_value,
        trajectories: count("trajectories")?,
        converged: count("converged")?,
        diverged: count("diverged")?,
        oscillating: count("oscillating")?,
        undecided: count("undecided")?,
        converged_min: (0..minimizers)
            .map(|k| count(&format!("converged_min_{k}")))
            .collect::<Option<Vec<_>>>()?,
        converged_other: count("converged_other").unwrap_or(0),
        metric_max: row.get("metric_max").and_then(Value::as_f64),
        bound: row.get("bound")?.as_f64()?,
        violations: count("violations")?,
        speed_converged: row
            .get("log10_iterations_converged_mean")
            .and_then(Value::as_f64),
        speed_diverged: row
            .get("log10_iterations_diverged_mean")
            .and_then(Value::as_f64),
    })
}
