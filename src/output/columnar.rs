//! Parquet outputs: cells.parquet and trajectories.parquet, written in place
//! of the CSVs when the spec's `[output] format` is "parquet".
//!
//! trajectories.parquet is streamed: each chunk's rows become one part file
//! of one row group, synced before the journal counts it, so memory is
//! bounded by the chunk and a killed run keeps every journaled chunk. When
//! the sweep finishes, the parts are copied in order into
//! trajectories.parquet, one row group per chunk, and removed. A Parquet
//! file cannot be appended to once its footer is written, and a file killed
//! before its footer cannot be read, which is why the chunks wait in parts
//! rather than in one growing file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, UInt64Builder};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::aggregate::CellStats;
use crate::backend::ChunkResult;
use crate::error::{Error, Result};
use crate::journal::Checkpoint;
use crate::models::Assessment;
use crate::output::trajectories::{self, RowFile, Rows};
use crate::sweep::Sweep;

pub const TRAJECTORIES: &str = "trajectories.parquet";
pub const CELLS: &str = "cells.parquet";

/// Snappy: fast to write and to read, and pure Rust. Row groups are never
/// split by size, so each holds exactly one chunk.
fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None)
        .build()
}

fn failed(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(
        "cannot write",
        path,
        std::io::Error::other(format!("Parquet: {e}")),
    )
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::spec(format!(
        "{} is not a readable Parquet file of stepsweep ({e}); rerun the sweep",
        path.display()
    ))
}

/// cells.parquet: the columns of cells.csv, typed. A column whose values
/// are all whole numbers (the counts) is UInt64; every other is Float64,
/// with the readouts' "inf" as infinity and an empty CSV field as null.
pub fn cells(sweep: &Sweep, stats: &[CellStats]) -> Result<Vec<u8>> {
    let rows: Vec<Vec<(String, Value)>> = (0..stats.len())
        .map(|i| crate::output::cell_row(sweep, i, &stats[i]))
        .collect();
    let names: Vec<String> = rows
        .first()
        .map(|r| r.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let mut fields = Vec::with_capacity(names.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(names.len());
    for (j, name) in names.iter().enumerate() {
        let column = || rows.iter().map(move |r| &r[j].1);
        let whole = column().all(|v| v.is_null() || v.is_u64()) && column().any(|v| v.is_u64());
        if whole {
            fields.push(Field::new(name, DataType::UInt64, true));
            arrays.push(Arc::new(
                column().map(Value::as_u64).collect::<UInt64Array>(),
            ));
        } else {
            let float = |v: &Value| match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.parse::<f64>().ok(),
                _ => None,
            };
            fields.push(Field::new(name, DataType::Float64, true));
            arrays.push(Arc::new(column().map(float).collect::<Float64Array>()));
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("columns of one length");
    let path = Path::new(CELLS);
    let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(properties()))
        .map_err(|e| failed(path, e))?;
    w.write(&batch).map_err(|e| failed(path, e))?;
    w.into_inner().map_err(|e| failed(path, e))
}

/// The schema of a sweep's trajectories, in the columns of trajectories.csv.
pub fn trajectory_schema(sweep: &Sweep) -> SchemaRef {
    let names = trajectories::columns(sweep);
    let kind = |name: &str| match name {
        "trajectory" | "cell" | "replicate" | "period" | "iterations" | "minimizer" => {
            DataType::UInt64
        }
        "outcome" => DataType::Utf8,
        _ => DataType::Float64,
    };
    let nullable = |name: &str| {
        matches!(name, "metric" | "sharpness" | "minimizer") || name.starts_with("theta_")
    };
    Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(n, kind(n), nullable(n)))
            .collect::<Vec<_>>(),
    ))
}

/// A chunk's rows as one record batch.
pub fn batch(
    sweep: &Sweep,
    schema: &SchemaRef,
    base: u64,
    result: &ChunkResult,
    assessments: &[Option<Assessment>],
) -> RecordBatch {
    let n = result.ends.len();
    let ints = || UInt64Builder::with_capacity(n);
    let floats = || Float64Builder::with_capacity(n);
    let (mut id, mut cell, mut replicate) = (ints(), ints(), ints());
    let (mut step, mut axis) = (floats(), floats());
    let mut outcome = StringBuilder::with_capacity(n, n * 10);
    let (mut period, mut iterations, mut minimizer) = (ints(), ints(), ints());
    let (mut loss, mut metric, mut sharpness) = (floats(), floats(), floats());
    let mut theta: Vec<Float64Builder> = (0..sweep.max_dim()).map(|_| floats()).collect();
    for r in trajectories::rows(sweep, base, result, assessments) {
        id.append_value(r.id);
        cell.append_value(r.cell as u64);
        replicate.append_value(r.replicate);
        step.append_value(r.step_size);
        axis.append_option(r.axis_value);
        outcome.append_value(r.outcome);
        period.append_value(u64::from(r.period));
        iterations.append_value(r.iterations);
        loss.append_value(r.loss);
        metric.append_option(r.metric);
        sharpness.append_option(r.sharpness);
        minimizer.append_option(r.minimizer.map(|m| m as u64));
        for (k, t) in theta.iter_mut().enumerate() {
            t.append_option(r.theta.get(k).copied());
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(cell.finish()),
        Arc::new(replicate.finish()),
        Arc::new(step.finish()),
    ];
    if sweep.spec.axis.is_some() {
        columns.push(Arc::new(axis.finish()));
    }
    columns.extend([
        Arc::new(outcome.finish()) as ArrayRef,
        Arc::new(period.finish()),
        Arc::new(iterations.finish()),
        Arc::new(loss.finish()),
        Arc::new(metric.finish()),
        Arc::new(sharpness.finish()),
        Arc::new(minimizer.finish()),
    ]);
    columns.extend(theta.iter_mut().map(|t| Arc::new(t.finish()) as ArrayRef));
    RecordBatch::try_new(schema.clone(), columns).expect("columns of the schema's types")
}

/// Where a run's journaled chunks wait until the sweep finishes.
pub fn parts_dir(out: &Path) -> PathBuf {
    out.join(".trajectories.parquet.parts")
}

fn part_path(dir: &Path, k: u64) -> PathBuf {
    dir.join(format!("part-{k:010}.parquet"))
}

/// The part files of trajectories.parquet: one per chunk, counted by the journal.
pub struct Parts {
    dir: PathBuf,
    schema: SchemaRef,
    /// Parts written, journaled or not.
    written: u64,
    /// Parts written since the last commit, to be synced by the next.
    unsynced: Vec<File>,
}

impl Parts {
    /// New, or on resume the journal's parts with any later part (a chunk
    /// in flight when the run stopped) removed.
    pub fn open(out: &Path, sweep: &Sweep, tally: &mut Checkpoint) -> Result<Parts> {
        let dir = parts_dir(out);
        let written = match tally.trajectories_parts {
            None => {
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir(&dir).map_err(|e| Error::io("cannot write", &dir, e))?;
                tally.trajectories_parts = Some(0);
                0
            }
            Some(n) => {
                if !(0..n).all(|k| part_path(&dir, k).is_file()) {
                    return Err(Error::spec(format!(
                        "{} is missing parts that the journal counts; add --force to start the sweep over",
                        dir.display()
                    )));
                }
                let entries =
                    std::fs::read_dir(&dir).map_err(|e| Error::io("cannot read", &dir, e))?;
                let kept: Vec<PathBuf> = (0..n).map(|k| part_path(&dir, k)).collect();
                for entry in entries.flatten() {
                    if !kept.contains(&entry.path()) {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
                n
            }
        };
        Ok(Parts {
            dir,
            schema: trajectory_schema(sweep),
            written,
            unsynced: Vec::new(),
        })
    }
}

impl Rows for Parts {
    fn write(
        &mut self,
        sweep: &Sweep,
        base: u64,
        result: &ChunkResult,
        assessments: &[Option<Assessment>],
    ) -> Result<()> {
        let batch = batch(sweep, &self.schema, base, result, assessments);
        let path = part_path(&self.dir, self.written);
        let file = File::create(&path).map_err(|e| Error::io("cannot write", &path, e))?;
        let mut w = ArrowWriter::try_new(file, self.schema.clone(), Some(properties()))
            .map_err(|e| failed(&path, e))?;
        w.write(&batch).map_err(|e| failed(&path, e))?;
        let file = w.into_inner().map_err(|e| failed(&path, e))?;
        self.unsynced.push(file);
        self.written += 1;
        Ok(())
    }

    fn commit(&mut self, tally: &mut Checkpoint) -> Result<()> {
        for file in self.unsynced.drain(..) {
            file.sync_all()
                .map_err(|e| Error::io("cannot write", &self.dir, e))?;
        }
        crate::files::sync_dir(&self.dir)?;
        tally.trajectories_parts = Some(self.written);
        Ok(())
    }
}

impl RowFile for Parts {
    fn finish(self: Box<Self>, out: &Path) -> Result<()> {
        let sources: Vec<PathBuf> = (0..self.written).map(|k| part_path(&self.dir, k)).collect();
        concatenate(&sources, &self.schema, &out.join(TRAJECTORIES))?;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

/// Copies the row groups of `sources`, in order, into `dest` (through a
/// temp file and a rename): one row group in, one out, so memory is
/// bounded by the largest row group.
pub fn concatenate(sources: &[PathBuf], schema: &SchemaRef, dest: &Path) -> Result<()> {
    let tmp = crate::files::temp_path(dest);
    let file = File::create(&tmp).map_err(|e| Error::io("cannot write", &tmp, e))?;
    let mut w = ArrowWriter::try_new(file, schema.clone(), Some(properties()))
        .map_err(|e| failed(&tmp, e))?;
    for source in sources {
        let file = File::open(source).map_err(|e| Error::io("cannot read", source, e))?;
        // The footer is read once; each row group is then read through its
        // own handle on the file.
        let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::default())
            .map_err(|e| unreadable(source, e))?;
        for g in 0..metadata.metadata().num_row_groups() {
            let handle = file
                .try_clone()
                .map_err(|e| Error::io("cannot read", source, e))?;
            let reader =
                ParquetRecordBatchReaderBuilder::new_with_metadata(handle, metadata.clone())
                    .with_row_groups(vec![g])
                    .with_batch_size(1 << 16)
                    .build()
                    .map_err(|e| unreadable(source, e))?;
            for batch in reader {
                let batch = batch.map_err(|e| unreadable(source, e))?;
                if batch.schema().fields() != schema.fields() {
                    return Err(unreadable(source, "its columns differ from the sweep's"));
                }
                w.write(&batch).map_err(|e| failed(&tmp, e))?;
            }
            w.flush().map_err(|e| failed(&tmp, e))?;
        }
    }
    let file = w.into_inner().map_err(|e| failed(&tmp, e))?;
    file.sync_all()
        .map_err(|e| Error::io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, dest).map_err(|e| Error::io("cannot write", dest, e))
}

/// Reads a trajectories.parquet's converged trajectories: (cell, metric),
/// the metric where it is a number. Only those columns are decoded.
pub fn converged_metrics(path: &Path) -> Result<Vec<(u64, f64)>> {
    let file = File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| unreadable(path, e))?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["cell", "outcome", "metric"]);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| unreadable(path, e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(path, e))?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| unreadable(path, format!("it has no {name} column")))
        };
        let (cell, outcome, metric) = (column("cell")?, column("outcome")?, column("metric")?);
        let (Some(cell), Some(outcome), Some(metric)) = (
            cell.as_any().downcast_ref::<UInt64Array>(),
            outcome.as_any().downcast_ref::<StringArray>(),
            metric.as_any().downcast_ref::<Float64Array>(),
        ) else {
            return Err(unreadable(path, "its columns are not of stepsweep's types"));
        };
        for i in 0..batch.num_rows() {
            if outcome.value(i) == "converged" && !metric.is_null(i) {
                out.push((cell.value(i), metric.value(i)));
            }
        }
    }
    Ok(out)
}
