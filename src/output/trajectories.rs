//! trajectories.csv: one row per trajectory, written chunk by chunk in id order.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;

use crate::backend::ChunkResult;
use crate::error::{Error, Result};
use crate::journal::Checkpoint;
use crate::models::Assessment;
use crate::stopping::Outcome;
use crate::sweep::Sweep;

pub fn write_header(w: &mut dyn Write, sweep: &Sweep) -> Result<()> {
    let mut header = ["trajectory", "cell", "replicate", "step_size"].join(",");
    if let Some(a) = &sweep.spec.axis {
        header.push(',');
        header.push_str(&a.column());
    }
    header.push_str(",outcome,period,iterations,loss,metric,sharpness,minimizer");
    for k in 0..sweep.max_dim() {
        header.push_str(&format!(",theta_{k}"));
    }
    writeln!(w, "{header}").map_err(|e| Error::io("cannot write", "trajectories.csv", e))
}

/// The rows of a chunk's trajectories, `base..base + ends.len()`.
pub fn write_rows(
    w: &mut dyn Write,
    sweep: &Sweep,
    base: u64,
    result: &ChunkResult,
    assessments: &[Option<Assessment>],
) -> Result<()> {
    let (dim, theta) = (result.dim, &result.theta);
    // Rows of smaller models (a second axis over the depth) leave the trailing
    // theta columns empty.
    let padding = ",".repeat(sweep.max_dim() - dim);
    let mut text = String::new();
    for (i, end) in result.ends.iter().enumerate() {
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
            // Every trajectory reports its final loss; the rest is for
            // the converged ones.
            None => {
                let loss = cell.model.loss(&theta[i * dim..(i + 1) * dim]);
                let _ = write!(text, ",{loss},,,");
            }
        }
        for t in &theta[i * dim..(i + 1) * dim] {
            let _ = write!(text, ",{t}");
        }
        text.push_str(&padding);
        text.push('\n');
    }
    w.write_all(text.as_bytes())
        .map_err(|e| Error::io("cannot write", "trajectories.csv", e))
}

/// Opens the partial trajectories.csv: new, with its header, or, on resume,
/// cut back to the length the journal recorded, dropping rows of the chunk
/// that was in flight.
pub fn open_partial(
    partial: &Path,
    sweep: &Sweep,
    tally: &mut Checkpoint,
) -> Result<BufWriter<File>> {
    let file = match tally.trajectories_bytes {
        None => {
            let file = File::create(partial).map_err(|e| Error::io("cannot write", partial, e))?;
            let mut w = BufWriter::new(file);
            write_header(&mut w, sweep)?;
            tally.trajectories_bytes = Some(sync(&mut w, partial)?);
            return Ok(w);
        }
        Some(len) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(partial)
                .ok()
                .filter(|f| f.metadata().is_ok_and(|m| m.len() >= len));
            let Some(mut file) = file else {
                return Err(Error::spec(format!(
                    "{} is missing or shorter than the journal says; add --force to start the sweep over",
                    partial.display()
                )));
            };
            file.set_len(len)
                .and_then(|_| file.seek(std::io::SeekFrom::End(0)))
                .map_err(|e| Error::io("cannot write", partial, e))?;
            file
        }
    };
    Ok(BufWriter::new(file))
}

/// Flushes trajectories.csv rows to disk; returns the file's length.
pub fn sync(w: &mut BufWriter<File>, partial: &Path) -> Result<u64> {
    w.flush()
        .and_then(|_| w.get_ref().sync_data())
        .and_then(|_| w.get_mut().stream_position())
        .map_err(|e| Error::io("cannot write", partial, e))
}
