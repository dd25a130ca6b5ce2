//! The per-trajectory file, one row per trajectory, written chunk by chunk in
//! id order: trajectories.csv, or trajectories.parquet (`columnar`). Both
//! take their rows from `rows`, so the two formats hold the same values.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use crate::backend::ChunkResult;
use crate::error::{Error, Result};
use crate::journal::Checkpoint;
use crate::models::Assessment;
use crate::spec::Format;
use crate::stopping::Outcome;
use crate::sweep::Sweep;

/// One trajectory's row, typed.
pub struct Row<'a> {
    pub id: u64,
    pub cell: usize,
    pub replicate: u64,
    pub step_size: f64,
    pub axis_value: Option<f64>,
    pub outcome: &'static str,
    pub period: u32,
    pub iterations: u64,
    pub loss: f64,
    /// The assessment's readouts, for trajectories that have one.
    pub metric: Option<f64>,
    pub sharpness: Option<f64>,
    /// Which minimizer a converged trajectory reached, where the model names them.
    pub minimizer: Option<usize>,
    pub theta: &'a [f64],
}

/// The rows of a chunk's trajectories, `base..base + ends.len()`.
pub fn rows<'a>(
    sweep: &'a Sweep,
    base: u64,
    result: &'a ChunkResult,
    assessments: &'a [Option<Assessment>],
) -> impl Iterator<Item = Row<'a>> + 'a {
    let dim = result.dim;
    result.ends.iter().enumerate().map(move |(i, end)| {
        let id = base + i as u64;
        let cell = sweep.cell_of(id);
        let theta = &result.theta[i * dim..(i + 1) * dim];
        // Every trajectory reports its final loss; the rest is for the
        // assessed ones.
        let (loss, metric, sharpness, minimizer) = match &assessments[i] {
            Some(a) => (
                a.loss,
                Some(a.metric),
                Some(a.sharpness),
                a.minimizer.filter(|_| end.outcome == Outcome::Converged),
            ),
            None => (cell.model.loss(theta), None, None, None),
        };
        Row {
            id,
            cell: cell.index,
            replicate: sweep.replicate_of(id),
            step_size: cell.step_size,
            axis_value: cell.axis_value,
            outcome: end.outcome.name(),
            period: end.period,
            iterations: end.iterations,
            loss,
            metric,
            sharpness,
            minimizer,
            theta,
        }
    })
}

/// The column names, in order; the theta columns run to the sweep's largest model.
pub fn columns(sweep: &Sweep) -> Vec<String> {
    let mut names: Vec<String> = ["trajectory", "cell", "replicate", "step_size"]
        .map(String::from)
        .into();
    if let Some(a) = &sweep.spec.axis {
        names.push(a.column());
    }
    names.extend(
        [
            "outcome",
            "period",
            "iterations",
            "loss",
            "metric",
            "sharpness",
            "minimizer",
        ]
        .map(String::from),
    );
    names.extend((0..sweep.max_dim()).map(|k| format!("theta_{k}")));
    names
}

pub fn write_header(w: &mut dyn Write, sweep: &Sweep) -> Result<()> {
    writeln!(w, "{}", columns(sweep).join(","))
        .map_err(|e| Error::io("cannot write", "trajectories.csv", e))
}

/// A chunk's rows as CSV text.
pub fn write_rows(
    w: &mut dyn Write,
    sweep: &Sweep,
    base: u64,
    result: &ChunkResult,
    assessments: &[Option<Assessment>],
) -> Result<()> {
    // Rows of smaller models (a second axis over the depth) leave the trailing
    // theta columns empty.
    let padding = ",".repeat(sweep.max_dim() - result.dim);
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut text = String::new();
    for r in rows(sweep, base, result, assessments) {
        let _ = write!(text, "{},{},{},{}", r.id, r.cell, r.replicate, r.step_size);
        if let Some(v) = r.axis_value {
            let _ = write!(text, ",{v}");
        }
        let _ = write!(
            text,
            ",{},{},{},{},{},{},",
            r.outcome,
            r.period,
            r.iterations,
            r.loss,
            opt(r.metric),
            opt(r.sharpness)
        );
        if let Some(m) = r.minimizer {
            let _ = write!(text, "{m}");
        }
        for t in r.theta {
            let _ = write!(text, ",{t}");
        }
        text.push_str(&padding);
        text.push('\n');
    }
    w.write_all(text.as_bytes())
        .map_err(|e| Error::io("cannot write", "trajectories.csv", e))
}

/// Where a run's rows go, chunk by chunk.
pub trait Rows: Send {
    fn write(
        &mut self,
        sweep: &Sweep,
        base: u64,
        result: &ChunkResult,
        assessments: &[Option<Assessment>],
    ) -> Result<()>;

    /// Makes the rows written so far durable, and records in `tally` how far
    /// they go, for the journal.
    fn commit(&mut self, _tally: &mut Checkpoint) -> Result<()> {
        Ok(())
    }
}

/// The rows file of a run into a directory: committed chunk by chunk, then
/// moved into place whole.
pub trait RowFile: Rows {
    fn finish(self: Box<Self>, out: &Path) -> Result<()>;
}

/// CSV rows into any writer: a run held in memory.
pub struct CsvStream<W>(pub W);

impl<W: Write + Send> Rows for CsvStream<W> {
    fn write(
        &mut self,
        sweep: &Sweep,
        base: u64,
        result: &ChunkResult,
        assessments: &[Option<Assessment>],
    ) -> Result<()> {
        write_rows(&mut self.0, sweep, base, result, assessments)
    }
}

pub const CSV: &str = "trajectories.csv";

/// The partial trajectories.csv of a run into a directory.
pub struct CsvFile {
    w: BufWriter<File>,
    partial: PathBuf,
}

impl CsvFile {
    /// Opens the partial trajectories.csv: new, with its header, or, on
    /// resume, cut back to the length the journal recorded, dropping rows of
    /// the chunk that was in flight.
    pub fn open(out: &Path, sweep: &Sweep, tally: &mut Checkpoint) -> Result<CsvFile> {
        let partial = crate::files::temp_path(&out.join(CSV));
        let file = match tally.trajectories_bytes {
            None => {
                let file =
                    File::create(&partial).map_err(|e| Error::io("cannot write", &partial, e))?;
                let mut w = BufWriter::new(file);
                write_header(&mut w, sweep)?;
                tally.trajectories_bytes = Some(sync(&mut w, &partial)?);
                return Ok(CsvFile { w, partial });
            }
            Some(len) => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&partial)
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
                    .map_err(|e| Error::io("cannot write", &partial, e))?;
                file
            }
        };
        Ok(CsvFile {
            w: BufWriter::new(file),
            partial,
        })
    }
}

impl Rows for CsvFile {
    fn write(
        &mut self,
        sweep: &Sweep,
        base: u64,
        result: &ChunkResult,
        assessments: &[Option<Assessment>],
    ) -> Result<()> {
        write_rows(&mut self.w, sweep, base, result, assessments)
    }

    fn commit(&mut self, tally: &mut Checkpoint) -> Result<()> {
        tally.trajectories_bytes = Some(sync(&mut self.w, &self.partial)?);
        Ok(())
    }
}

impl RowFile for CsvFile {
    fn finish(mut self: Box<Self>, out: &Path) -> Result<()> {
        sync(&mut self.w, &self.partial)?;
        let dest = out.join(CSV);
        std::fs::rename(&self.partial, &dest).map_err(|e| Error::io("cannot write", &dest, e))
    }
}

/// Flushes trajectories.csv rows to disk; returns the file's length.
fn sync(w: &mut BufWriter<File>, partial: &Path) -> Result<u64> {
    w.flush()
        .and_then(|_| w.get_ref().sync_data())
        .and_then(|_| w.get_mut().stream_position())
        .map_err(|e| Error::io("cannot write", partial, e))
}

/// Opens the rows file of a run into `out` in the spec's format.
pub fn open(out: &Path, sweep: &Sweep, tally: &mut Checkpoint) -> Result<Box<dyn RowFile>> {
    Ok(match sweep.spec.output.format {
        Format::Csv => Box::new(CsvFile::open(out, sweep, tally)?),
        Format::Parquet => Box::new(super::columnar::Parts::open(out, sweep, tally)?),
    })
}

/// The name of the rows file in `format`.
pub fn file_name(format: Format) -> &'static str {
    match format {
        Format::Csv => CSV,
        Format::Parquet => super::columnar::TRAJECTORIES,
    }
}

/// Whether a finished run's rows file is already in place, with nothing
/// partial left to extend: a run killed after the move but before its
/// journal was removed.
pub fn in_place(out: &Path, format: Format) -> bool {
    match format {
        Format::Csv => !crate::files::temp_path(&out.join(CSV)).exists(),
        Format::Parquet => !super::columnar::parts_dir(out).exists(),
    }
}

/// Removes what an abandoned run left partial, in either format.
pub fn remove_partial(out: &Path) {
    let _ = std::fs::remove_file(crate::files::temp_path(&out.join(CSV)));
    let _ = std::fs::remove_dir_all(super::columnar::parts_dir(out));
    let _ = std::fs::remove_file(crate::files::temp_path(
        &out.join(super::columnar::TRAJECTORIES),
    ));
}
