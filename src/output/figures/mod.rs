//! Figures of a finished run, drawn from its summary.json (and
//! trajectories.csv when present) into DIR/figures/, each as PNG and SVG:
//!
//! | figure | when |
//! | --- | --- |
//! | `outcomes` | always: P(outcome) against δ, summed over any second axis |
//! | `metric_bound` | always: metric / bound over converged trajectories |
//! | `heatmap` | two-axis sweeps: P(converged) over both axes |
//! | `basin` | a second axis over `init.x0` with `init.kind = "point"` |
//! | `bifurcation` | one-axis sweeps of a 1-D model |

pub mod basin;
pub mod bifurcation;
pub mod canvas;
pub mod data;
pub mod grid2d;
pub mod heatmap;
pub mod outcomes;
pub mod ratio;
pub mod speed;
pub mod theory;
pub mod trace;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub use canvas::{render, Figure};
pub use data::RunData;

/// The folder figures go in, inside a run's output directory.
pub const FOLDER: &str = "figures";

/// Draws every figure that fits `run` into `dir`, which is created if needed.
/// On failure the files drawn so far are removed again.
pub fn draw_all(run: &RunData, dir: &Path) -> Result<Vec<PathBuf>> {
    let created = !dir.is_dir();
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io("cannot create the figures directory", dir, e))?;
    let mut written = Vec::new();
    let result = (|| {
        written.extend(render(&outcomes::Outcomes::new(run), dir)?);
        written.extend(render(&ratio::MetricRatio::new(run)?, dir)?);
        if let Some(h) = heatmap::Heatmap::new(run) {
            written.extend(render(&h, dir)?);
        }
        if let Some(s) = speed::Speed::new(run) {
            written.extend(render(&s, dir)?);
        }
        if let Some(t) = trace::Trace::new(run)? {
            written.extend(render(&t, dir)?);
        }
        if let Some(b) = basin::BasinMap::new(run) {
            written.extend(render(&b, dir)?);
        }
        if let Some(b) = bifurcation::Bifurcation::new(run) {
            written.extend(render(&b, dir)?);
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(written),
        Err(e) => {
            for f in &written {
                let _ = std::fs::remove_file(f);
            }
            if created {
                let _ = std::fs::remove_dir(dir);
            }
            Err(e)
        }
    }
}

/// `stepsweep plot DIR`: redraws a finished run's figures into DIR/figures/.
pub fn plot_dir(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let run = RunData::load(run_dir)?;
    draw_all(&run, &run_dir.join(FOLDER))
}
