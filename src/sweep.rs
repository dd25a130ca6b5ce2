//! Running a sweep: chunks through a backend, post-processing on the CPU,
//! streaming aggregation, then the writers. Memory is bounded by the chunk,
//! not by the sweep.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use crate::aggregate::CellStats;
use crate::backend::{self, Engine};
use crate::error::{Error, Result};
use crate::grid::Sweep;
use crate::models::Assessment;
use crate::output::{self, progress::Progress};
use crate::spec::{Precision, Spec};
use crate::stopping::{Outcome, StopRule};

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Trajectories per chunk; defaults per backend.
    pub chunk_size: Option<u64>,
    /// Quiet: no progress on stderr.
    pub quiet: bool,
}

pub struct SweepReport {
    pub name: String,
    pub sweep: Sweep,
    pub cells: Vec<CellStats>,
    pub backend: String,
    pub adapter: Option<String>,
    pub precision: Precision,
    pub rule: StopRule,
    pub seconds: f64,
    /// Gradient steps taken, summed over trajectories.
    pub trajectory_steps: u64,
    /// GPU kernel time from timestamp queries, where the adapter has them.
    pub kernel_seconds: Option<f64>,
    /// Why `auto` chose what it chose, when it fell back.
    pub note: Option<String>,
}

const CPU_CHUNK: u64 = 1 << 18;
const GPU_CHUNK: u64 = 1 << 22;

/// Runs a sweep, writing trajectories.csv rows to `trajectories` if given.
pub fn execute(
    spec: Spec,
    name: &str,
    opts: &RunOptions,
    mut trajectories: Option<&mut dyn Write>,
) -> Result<SweepReport> {
    let sweep = Sweep::new(spec)?;
    let (gpu, note) = backend::select(sweep.spec.backend, sweep.spec.precision)?;
    if let (Some(n), false) = (&note, opts.quiet) {
        eprintln!("stepsweep: {n}");
    }
    let precision = sweep.spec.precision_for(gpu.is_some());
    let rule = sweep.spec.stop.rule(precision, sweep.spec.max_iters);
    let engine = Engine::new(&sweep, gpu, precision, &rule)?;
    let (backend_name, adapter) = engine.describe();
    let default_chunk = if matches!(engine, Engine::Gpu { .. }) {
        GPU_CHUNK
    } else {
        CPU_CHUNK
    };
    let chunk = opts
        .chunk_size
        .unwrap_or(default_chunk)
        .min(engine.max_chunk())
        .max(1);

    let minimizers = sweep.cells[0].model.minimizers().len();
    let mut cells: Vec<CellStats> = vec![CellStats::new(minimizers); sweep.cells.len()];
    let mut progress = Progress::new(sweep.total(), opts.quiet);
    if let Some(w) = trajectories.as_mut() {
        write_trajectory_header(*w, &sweep, sweep.max_dim())?;
    }
    let started = Instant::now();
    let mut steps_taken = 0u64;
    for ids in sweep.chunks(chunk) {
        let base = ids.start;
        let result = engine.run(&sweep, &rule, ids.clone(), |done| progress.set(base + done))?;
        let want_all = trajectories.is_some();
        let dim = result.dim;
        let assessments: Vec<Option<Assessment>> = result
            .ends
            .par_iter()
            .zip(result.theta.par_chunks(dim))
            .enumerate()
            .map(|(i, (end, theta))| {
                let finite = theta.iter().all(|t| t.is_finite());
                let id = base + i as u64;
                ((end.outcome == Outcome::Converged || want_all) && finite).then(|| {
                    sweep
                        .cell_of(id)
                        .model
                        .assess(theta, sweep.replicate_of(id))
                })
            })
            .collect();
        for (i, (end, a)) in result.ends.iter().zip(&assessments).enumerate() {
            let id = base + i as u64;
            let cell = sweep.cell_of(id);
            steps_taken += end.iterations;
            cells[cell.index].add(end, a.as_ref(), cell.model.bound(cell.step_size));
        }
        if let Some(w) = trajectories.as_mut() {
            write_trajectory_rows(*w, &sweep, base, &result, &assessments)?;
        }
        progress.set(ids.end);
    }
    progress.finish();
    Ok(SweepReport {
        name: name.to_string(),
        cells,
        backend: backend_name,
        adapter,
        precision: engine.precision(),
        rule,
        seconds: started.elapsed().as_secs_f64(),
        trajectory_steps: steps_taken,
        kernel_seconds: engine.kernel_seconds(),
        note,
        sweep,
    })
}

fn write_trajectory_header(w: &mut dyn Write, sweep: &Sweep, dim: usize) -> Result<()> {
    let mut header = ["trajectory", "cell", "replicate", "step_size"].join(",");
    if let Some(a) = &sweep.spec.axis {
        header.push(',');
        header.push_str(a.column());
    }
    header.push_str(",outcome,period,iterations,loss,metric,sharpness,minimizer");
    for k in 0..dim {
        header.push_str(&format!(",theta_{k}"));
    }
    writeln!(w, "{header}").map_err(|e| Error::io("cannot write", "trajectories.csv", e))
}

fn write_trajectory_rows(
    w: &mut dyn Write,
    sweep: &Sweep,
    base: u64,
    result: &crate::backend::ChunkResult,
    assessments: &[Option<Assessment>],
) -> Result<()> {
    let (dim, theta) = (result.dim, &result.theta);
    // Rows of smaller models leave the trailing theta columns empty.
    let padding = ",".repeat(sweep.max_dim() - dim);
    let mut text = String::new();
    for (i, end) in result.ends.iter().enumerate() {
        use std::fmt::Write as _;
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
        text.push_str(&padding);
        text.push('\n');
    }
    w.write_all(text.as_bytes())
        .map_err(|e| Error::io("cannot write", "trajectories.csv", e))
}

/// summary.json: the spec, backend, timings, theory and cells.
pub fn summary_json(report: &SweepReport) -> serde_json::Value {
    let sweep = &report.sweep;
    json!({
        "stepsweep": env!("CARGO_PKG_VERSION"),
        "name": report.name,
        "spec": sweep.spec,
        "backend": {
            "kind": report.backend,
            "adapter": report.adapter,
            "precision": report.precision.name(),
            "note": report.note,
        },
        "stop_rule": report.rule,
        "timings": {
            "seconds": report.seconds,
            "trajectory_steps": report.trajectory_steps,
            "traj_steps_per_s": report.trajectory_steps as f64 / report.seconds.max(1e-9),
            "gpu_kernel_seconds": report.kernel_seconds,
        },
        "trajectories": sweep.total(),
        "theory": sweep.cells[0].model.theory(),
        "minimizers": sweep.cells[0].model.minimizers(),
        "cells": output::cells_json(sweep, &report.cells),
    })
}

/// Runs a sweep and writes spec.toml, cells.csv, summary.json and, when the
/// spec asks, trajectories.csv into `out`. Nothing is written for a spec that
/// fails validation, and a failed run leaves no half-written file.
pub fn run(spec: Spec, name: &str, out: &Path, opts: &RunOptions) -> Result<SweepReport> {
    // Validate before touching the output directory.
    Sweep::new(spec.clone())?;
    let created = output::prepare_dir(out)?;
    let traj_path = out.join("trajectories.csv");
    let result = (|| {
        let report = if spec.output.trajectories {
            let tmp = output::temp_path(&traj_path);
            let file =
                std::fs::File::create(&tmp).map_err(|e| Error::io("cannot write", &tmp, e))?;
            let mut w = std::io::BufWriter::new(file);
            let report = execute(spec.clone(), name, opts, Some(&mut w))?;
            w.flush().map_err(|e| Error::io("cannot write", &tmp, e))?;
            std::fs::rename(&tmp, &traj_path)
                .map_err(|e| Error::io("cannot write", &traj_path, e))?;
            report
        } else {
            execute(spec.clone(), name, opts, None)?
        };
        write_outputs(&report, out)?;
        Ok(report)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(output::temp_path(&traj_path));
        if created {
            let _ = std::fs::remove_dir(out);
        }
    }
    result
}

pub fn write_outputs(report: &SweepReport, out: &Path) -> Result<()> {
    output::write_atomic(
        &out.join("spec.toml"),
        report.sweep.spec.to_toml().as_bytes(),
    )?;
    output::write_atomic(
        &out.join("cells.csv"),
        &output::cells_csv(&report.sweep, &report.cells),
    )?;
    let summary = serde_json::to_vec_pretty(&summary_json(report)).expect("JSON of plain data");
    output::write_atomic(&out.join("summary.json"), &summary)
}

/// Where a spec's outputs go by default: runs/<name>.
pub fn default_out(name: &str) -> PathBuf {
    PathBuf::from("runs").join(name)
}
