//! trajectories.csv: one row per trajectory, written chunk by chunk in id order.

use std::fmt::Write as _;
use std::io::Write;

use crate::error::{Error, Result};
use crate::grid::Sweep;
use crate::models::Assessment;
use crate::stopping::{Outcome, TrajectoryEnd};

pub fn write_header(w: &mut dyn Write, sweep: &Sweep) -> Result<()> {
    let mut header = ["trajectory", "cell", "replicate", "step_size"].join(",");
    if let Some(a) = &sweep.spec.axis {
        header.push(',');
        header.push_str(a.column());
    }
    header.push_str(",outcome,period,iterations,loss,metric,sharpness,minimizer");
    for k in 0..sweep.dim() {
        header.push_str(&format!(",theta_{k}"));
    }
    writeln!(w, "{header}").map_err(|e| Error::io("cannot write", "trajectories.csv", e))
}

/// The rows of trajectories `base..base + ends.len()`.
pub fn write_rows(
    w: &mut dyn Write,
    sweep: &Sweep,
    base: u64,
    ends: &[TrajectoryEnd],
    theta: &[f64],
    assessments: &[Option<Assessment>],
) -> Result<()> {
    let dim = sweep.dim();
    let mut text = String::new();
    for (i, end) in ends.iter().enumerate() {
        let id = base + i as u64;
        let cell = sweep.cell_of(id);
        let _ = write!(
            text,
            "{id},{},{},{}",
            cell.index,
            sweep.replicate_of(id),
            cell.step_size
        );
        if let Some(v) = cell.axis_value {
            let _ = write!(text, ",{v}");
        }
        let _ = write!(
            text,
            ",{},{},{}",
            end.outcome.name(),
            end.period,
            end.iterations
        );
        match &assessments[i] {
            Some(a) => {
                let _ = write!(text, ",{},{},{},", a.loss, a.metric, a.sharpness);
                if let (Outcome::Converged, Some(m)) = (end.outcome, a.minimizer) {
                    let _ = write!(text, "{m}");
                }
            }
            None => text.push_str(",,,,"),
        }
        for t in &theta[i * dim..(i + 1) * dim] {
            let _ = write!(text, ",{t}");
        }
        text.push('\n');
    }
    w.write_all(text.as_bytes())
        .map_err(|e| Error::io("cannot write", "trajectories.csv", e))
}
