//! Parquet outputs: cells.parquet and trajectories.parquet, written in place
//! of the CSVs when the spec's `[output] format` is "parquet".
//!
//! trajectories.parquet is streamed: each chunk's rows become one part file
//! of one row group, synced before the journal counts it, so memory is
//! bounded by the chunk and a killed run keeps every journaled chunk. When
//! the sweep finishes, the parts' column chunks are copied, still encoded,
//! into trajectories.parquet, one row group per chunk, and the parts are
//! removed. A Parquet file cannot be appended to once its footer is written,
//! and a file killed before its footer cannot be read, which is why the
//! chunks wait in parts rather than in one growing file.
//!
//! The files are written with the Parquet crate's column writers rather than
//! through Arrow arrays: the tables are flat columns of three types, and the
//! Arrow crates were about a fifth of a fresh build's compile time.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Compression, IntType, LogicalType, Repetition, Type as Physical};
use parquet::column::reader::get_typed_column_reader;
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::{AsBytes, ByteArray, ByteArrayType, DataType, DoubleType, Int64Type};
use parquet::file::metadata::ParquetMetaDataReader;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{Type, TypePtr};
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

/// Snappy: fast to write and to read, and pure Rust. Statistics per column
/// chunk only: a page index would be lost when the parts' chunks are copied
/// into trajectories.parquet, and with none anywhere every file of a sweep
/// has the same layout.
fn properties() -> Arc<WriterProperties> {
    Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .build(),
    )
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

/// A column's values, `None` for null.
enum Values {
    /// Ids, counts and indices: INT64 annotated as unsigned 64-bit.
    UInt64(Vec<Option<u64>>),
    Float64(Vec<Option<f64>>),
    /// UTF-8 text, never null.
    Text(Vec<&'static str>),
}

impl Values {
    fn physical(&self) -> Physical {
        match self {
            Values::UInt64(_) => Physical::INT64,
            Values::Float64(_) => Physical::DOUBLE,
            Values::Text(_) => Physical::BYTE_ARRAY,
        }
    }

    fn logical(&self) -> Option<LogicalType> {
        match self {
            Values::UInt64(_) => Some(LogicalType::Integer(IntType {
                bit_width: 64,
                is_signed: false,
            })),
            Values::Float64(_) => None,
            Values::Text(_) => Some(LogicalType::String),
        }
    }
}

/// One column of a table: every column is flat.
struct Column {
    name: String,
    nullable: bool,
    values: Values,
}

impl Column {
    fn new(name: &str, nullable: bool, values: Values) -> Column {
        Column {
            name: name.to_string(),
            nullable,
            values,
        }
    }
}

/// The schema of a table's columns.
fn schema(columns: &[Column]) -> TypePtr {
    let fields = columns
        .iter()
        .map(|c| {
            let repetition = if c.nullable {
                Repetition::OPTIONAL
            } else {
                Repetition::REQUIRED
            };
            Arc::new(
                Type::primitive_type_builder(&c.name, c.values.physical())
                    .with_repetition(repetition)
                    .with_logical_type(c.values.logical())
                    .build()
                    .expect("a flat column of a supported type"),
            )
        })
        .collect();
    Arc::new(
        Type::group_type_builder("schema")
            .with_fields(fields)
            .build()
            .expect("a group of flat columns"),
    )
}

/// The present values of a column and its definition levels (1 present, 0
/// null), or no levels for a column that cannot be null.
fn present<T: Copy, U>(
    values: &[Option<T>],
    nullable: bool,
    f: impl Fn(T) -> U,
) -> (Vec<U>, Option<Vec<i16>>) {
    let kept = values.iter().flatten().map(|&v| f(v)).collect();
    let levels = nullable.then(|| values.iter().map(|v| i16::from(v.is_some())).collect());
    (kept, levels)
}

/// Writes `columns` as one row group of `w`.
fn write_group<W: std::io::Write + Send>(
    w: &mut SerializedFileWriter<W>,
    columns: &[Column],
) -> parquet::errors::Result<()> {
    let mut group = w.next_row_group()?;
    for column in columns {
        let mut writer = group
            .next_column()?
            .expect("one column writer per column of the schema");
        match &column.values {
            Values::UInt64(v) => {
                // Unsigned values travel in INT64's bits, as the annotation says.
                let (kept, levels) = present(v, column.nullable, |x| x as i64);
                writer
                    .typed::<Int64Type>()
                    .write_batch(&kept, levels.as_deref(), None)?;
            }
            Values::Float64(v) => {
                let (kept, levels) = present(v, column.nullable, |x| x);
                writer
                    .typed::<DoubleType>()
                    .write_batch(&kept, levels.as_deref(), None)?;
            }
            Values::Text(v) => {
                let kept: Vec<ByteArray> = v.iter().map(|s| ByteArray::from(*s)).collect();
                writer
                    .typed::<ByteArrayType>()
                    .write_batch(&kept, None, None)?;
            }
        }
        writer.close()?;
    }
    group.close()?;
    Ok(())
}

/// A whole file of one row group, in memory.
fn file_bytes(columns: &[Column], path: &Path) -> Result<Vec<u8>> {
    let write = || {
        let mut w = SerializedFileWriter::new(Vec::new(), schema(columns), properties())?;
        write_group(&mut w, columns)?;
        w.into_inner()
    };
    write().map_err(|e| failed(path, e))
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
    let columns: Vec<Column> = names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let column = || rows.iter().map(move |r| &r[j].1);
            let whole = column().all(|v| v.is_null() || v.is_u64()) && column().any(|v| v.is_u64());
            let values = if whole {
                Values::UInt64(column().map(Value::as_u64).collect())
            } else {
                let float = |v: &Value| match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.parse::<f64>().ok(),
                    _ => None,
                };
                Values::Float64(column().map(float).collect())
            };
            Column::new(name, true, values)
        })
        .collect();
    file_bytes(&columns, Path::new(CELLS))
}

/// Trajectories' rows as the columns of trajectories.csv.
fn trajectory_columns<'a>(
    sweep: &Sweep,
    rows: impl Iterator<Item = trajectories::Row<'a>>,
) -> Vec<Column> {
    let n = rows.size_hint().0;
    let ints = || Vec::<Option<u64>>::with_capacity(n);
    let floats = || Vec::<Option<f64>>::with_capacity(n);
    let (mut id, mut cell, mut replicate) = (ints(), ints(), ints());
    let (mut step, mut axis) = (floats(), floats());
    let mut outcome = Vec::with_capacity(n);
    let (mut period, mut iterations, mut minimizer) = (ints(), ints(), ints());
    let (mut loss, mut metric, mut sharpness) = (floats(), floats(), floats());
    let mut theta: Vec<Vec<Option<f64>>> = (0..sweep.max_dim()).map(|_| floats()).collect();
    for r in rows {
        id.push(Some(r.id));
        cell.push(Some(r.cell as u64));
        replicate.push(Some(r.replicate));
        step.push(Some(r.step_size));
        axis.push(r.axis_value);
        outcome.push(r.outcome);
        period.push(Some(u64::from(r.period)));
        iterations.push(Some(r.iterations));
        loss.push(Some(r.loss));
        metric.push(r.metric);
        sharpness.push(r.sharpness);
        minimizer.push(r.minimizer.map(|m| m as u64));
        for (k, t) in theta.iter_mut().enumerate() {
            t.push(r.theta.get(k).copied());
        }
    }
    let mut columns = vec![
        Column::new("trajectory", false, Values::UInt64(id)),
        Column::new("cell", false, Values::UInt64(cell)),
        Column::new("replicate", false, Values::UInt64(replicate)),
        Column::new("step_size", false, Values::Float64(step)),
    ];
    if let Some(a) = &sweep.spec.axis {
        columns.push(Column::new(&a.column(), false, Values::Float64(axis)));
    }
    columns.extend([
        Column::new("outcome", false, Values::Text(outcome)),
        Column::new("period", false, Values::UInt64(period)),
        Column::new("iterations", false, Values::UInt64(iterations)),
        Column::new("loss", false, Values::Float64(loss)),
        Column::new("metric", true, Values::Float64(metric)),
        Column::new("sharpness", true, Values::Float64(sharpness)),
        Column::new("minimizer", true, Values::UInt64(minimizer)),
    ]);
    columns.extend(
        theta
            .into_iter()
            .enumerate()
            .map(|(k, t)| Column::new(&format!("theta_{k}"), true, Values::Float64(t))),
    );
    debug_assert!(columns
        .iter()
        .map(|c| &c.name)
        .eq(trajectories::columns(sweep).iter()));
    columns
}

/// The schema of a sweep's trajectories.parquet.
pub fn trajectory_schema(sweep: &Sweep) -> TypePtr {
    schema(&trajectory_columns(sweep, std::iter::empty()))
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
    /// The sweep's schema: every part's, and trajectories.parquet's.
    schema: TypePtr,
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
        let rows = trajectories::rows(sweep, base, result, assessments);
        let columns = trajectory_columns(sweep, rows);
        let path = part_path(&self.dir, self.written);
        let file = File::create(&path).map_err(|e| Error::io("cannot write", &path, e))?;
        let write = || {
            let mut w = SerializedFileWriter::new(file, self.schema.clone(), properties())?;
            write_group(&mut w, &columns)?;
            w.into_inner()
        };
        let file = write().map_err(|e| failed(&path, e))?;
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
/// temp file and a rename), a file of the sweep's `schema`. The column
/// chunks are copied as they are encoded, so memory and time are those of
/// copying bytes. With no sources (a shard of no trajectories), `dest` has
/// the columns and no rows.
pub fn concatenate(sources: &[PathBuf], schema: &TypePtr, dest: &Path) -> Result<()> {
    let tmp = crate::files::temp_path(dest);
    let result = (|| {
        let out = File::create(&tmp).map_err(|e| Error::io("cannot write", &tmp, e))?;
        let mut w = SerializedFileWriter::new(out, schema.clone(), properties())
            .map_err(|e| failed(&tmp, e))?;
        for source in sources {
            let file = File::open(source).map_err(|e| Error::io("cannot read", source, e))?;
            let metadata = ParquetMetaDataReader::new()
                .parse_and_finish(&file)
                .map_err(|e| unreadable(source, e))?;
            if metadata.file_metadata().schema_descr().root_schema() != schema.as_ref() {
                return Err(unreadable(source, "its columns differ from the sweep's"));
            }
            for group in metadata.row_groups() {
                let mut copy = || {
                    let mut out = w.next_row_group()?;
                    for column in group.columns() {
                        let chunk = ColumnCloseResult {
                            bytes_written: column.compressed_size() as u64,
                            rows_written: group.num_rows() as u64,
                            metadata: column.clone(),
                            bloom_filter: None,
                            column_index: None,
                            offset_index: None,
                        };
                        out.append_column(&file, chunk)?;
                    }
                    out.close().map(|_| ())
                };
                copy().map_err(|e| failed(&tmp, e))?;
            }
        }
        let file = w.into_inner().map_err(|e| failed(&tmp, e))?;
        file.sync_all()
            .map_err(|e| Error::io("cannot write", &tmp, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    std::fs::rename(&tmp, dest).map_err(|e| Error::io("cannot write", dest, e))
}

/// Column `j` of a row group: its values, `None` for null.
fn read_column<T: DataType>(
    group: &dyn RowGroupReader,
    j: usize,
) -> parquet::errors::Result<Vec<Option<T::T>>> {
    let rows = group.metadata().num_rows() as usize;
    let mut reader = get_typed_column_reader::<T>(group.get_column_reader(j)?);
    let (mut levels, mut values) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    let mut read = 0;
    while read < rows {
        let (records, _, _) =
            reader.read_records(rows - read, Some(&mut levels), None, &mut values)?;
        if records == 0 {
            break;
        }
        read += records;
    }
    if levels.is_empty() {
        // A column that cannot be null has no levels.
        return Ok(values.into_iter().map(Some).collect());
    }
    let mut values = values.into_iter();
    Ok(levels
        .iter()
        .map(|&l| if l > 0 { values.next() } else { None })
        .collect())
}

/// Reads a trajectories.parquet's converged trajectories: (cell, metric),
/// the metric where it is a number. Only those columns are decoded.
pub fn converged_metrics(path: &Path) -> Result<Vec<(u64, f64)>> {
    let file = File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| unreadable(path, e))?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let index = |name: &str, physical: Physical| {
        (0..schema.num_columns())
            .find(|&j| schema.column(j).name() == name)
            .filter(|&j| schema.column(j).physical_type() == physical)
            .ok_or_else(|| unreadable(path, format!("it has no {name} column of stepsweep's type")))
    };
    let cell = index("cell", Physical::INT64)?;
    let outcome = index("outcome", Physical::BYTE_ARRAY)?;
    let metric = index("metric", Physical::DOUBLE)?;
    let mut out = Vec::new();
    for g in 0..reader.num_row_groups() {
        let read = || {
            let group = reader.get_row_group(g)?;
            Ok::<_, parquet::errors::ParquetError>((
                read_column::<Int64Type>(group.as_ref(), cell)?,
                read_column::<ByteArrayType>(group.as_ref(), outcome)?,
                read_column::<DoubleType>(group.as_ref(), metric)?,
            ))
        };
        let (cells, outcomes, metrics) = read().map_err(|e| unreadable(path, e))?;
        for ((c, o), m) in cells.iter().zip(&outcomes).zip(&metrics) {
            if let (Some(c), Some(o), Some(m)) = (c, o, m) {
                if o.as_bytes() == b"converged" {
                    out.push((*c as u64, *m));
                }
            }
        }
    }
    Ok(out)
}
