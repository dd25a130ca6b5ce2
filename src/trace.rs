//! Sharpness over time (`--trace K`, `[output] trace = K`): for the first K
//! replicates of every cell, the top Hessian eigenvalue of the iterate at
//! the start and after every block of `check_every` iterations, against the
//! stability bound of the optimizer in use, as the edge-of-stability
//! studies plot it.
//!
//! The traced trajectories are run again, after the sweep, on the backend
//! that ran it, which hands back the iterate at every check: the GPU in
//! dispatches that end on every check, each followed by a readback (a chunk
//! per cell), and the CPU through its one-trajectory reference
//! (`stopping::descend_observed`); `merge` traces on the CPU. The sharpness
//! is computed from those iterates in f64 on the CPU: the family's own
//! (`Family::sharpness`: f''(x) for the polynomial, power iteration on
//! Hessian-vector products otherwise), or λ_max(D^½HD^½) with a step size
//! per layer. Rows are written a batch at a time, so memory stays bounded by
//! the batch.

use std::io::Write;
use std::path::Path;

use rayon::prelude::*;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::real::{Precision, Real};
use crate::stopping::{descend_observed, fingerprint_weights, Scratch, StopRule};
use crate::sweep::{Cell, Sweep};

pub const TRACE_FILE: &str = "trace.csv";

/// Trajectories traced together (of one cell) before their rows are written.
const PER_BATCH: usize = 64;

/// One traced iterate.
#[derive(Clone, Debug, PartialEq)]
pub struct TracePoint {
    pub iteration: u64,
    pub sharpness: f64,
    pub loss: f64,
}

/// The sharpness a trace follows in `cell` at θ, and the bound it is held
/// to: the optimizer's 2/δ_eff, or with per-layer step sizes the
/// preconditioned sharpness and its bound.
pub fn sharpness_and_bound(cell: &Cell, theta: &[f64]) -> (f64, f64) {
    match cell.parameter_step_sizes() {
        Some(steps) => (
            crate::models::hessian::preconditioned_sharpness(
                theta,
                &steps,
                cell.model.gradient_f64(),
            ),
            cell.bound(),
        ),
        None => (
            cell.model.sharpness(theta),
            cell.optimizer.sharpness_bound(cell.step_size),
        ),
    }
}

/// The traced point of `cell` at iteration `k`, iterate `theta`.
fn point(cell: &Cell, k: u64, theta: &[f64]) -> TracePoint {
    let sharpness = if theta.iter().all(|v| v.is_finite()) {
        sharpness_and_bound(cell, theta).0
    } else {
        f64::NAN
    };
    TracePoint {
        iteration: k,
        sharpness,
        loss: cell.model.loss(theta),
    }
}

/// The traced points of trajectory `id`, run on the CPU's reference in
/// precision R.
pub fn trace<R: Real>(sweep: &Sweep, rule: &StopRule, id: u64) -> Vec<TracePoint> {
    let cell = sweep.cell_of(id);
    let model = &cell.model;
    let dim = model.dim();
    let constants: Vec<R> = model.constants().into_iter().map(R::of).collect();
    let mut start = vec![0.0; dim];
    sweep.initial(id, &mut start);
    let mut theta: Vec<R> = start.iter().map(|&v| R::of(v)).collect();
    let mut scratch = Scratch::<R>::new(dim, model.work_len(), rule);
    let steps: Option<Vec<R>> = cell
        .parameter_step_sizes()
        .map(|s| s.into_iter().map(R::of).collect());
    let mut points = Vec::new();
    let mut wide = vec![0.0; dim];
    descend_observed(
        &mut theta,
        R::of(cell.step_size),
        steps.as_deref(),
        R::of(cell.optimizer.beta),
        rule,
        &fingerprint_weights::<R>(dim),
        &mut scratch,
        |t, g, w| model.gradient(&constants, t, g, w),
        &mut |k, t| {
            for (w, v) in wide.iter_mut().zip(t) {
                *w = v.to_f64_lossless();
            }
            points.push(point(cell, k, &wide));
        },
    );
    points
}

/// The header of trace.csv for `sweep`.
fn header(sweep: &Sweep) -> String {
    let mut h = String::from("trajectory,cell,replicate,step_size");
    if let Some(a) = &sweep.spec.axis {
        h.push(',');
        h.push_str(&a.column());
    }
    h.push_str(",iteration,sharpness,bound,loss\n");
    h
}

/// The traced points of `ids` (one cell's): from the GPU's iterates where
/// `backend` is a GPU, else from the CPU's reference.
fn trace_ids(
    sweep: &Sweep,
    rule: &StopRule,
    precision: Precision,
    backend: Option<&Backend>,
    ids: std::ops::Range<u64>,
) -> Result<Vec<Vec<TracePoint>>> {
    if let Some(iterates) = match backend {
        Some(b) => b.gpu_iterates(sweep, rule, ids.clone())?,
        None => None,
    } {
        let cell = sweep.cell_of(ids.start);
        return Ok(iterates
            .par_iter()
            .map(|points| points.iter().map(|(k, t)| point(cell, *k, t)).collect())
            .collect());
    }
    Ok(ids
        .into_par_iter()
        .map(|id| match precision {
            Precision::F64 => trace::<f64>(sweep, rule, id),
            Precision::F32 => trace::<f32>(sweep, rule, id),
        })
        .collect())
}

/// Writes trace.csv into `out` for the first `k` replicates of every cell,
/// traced on `backend` (the CPU where None), through a temporary file and a
/// rename, so a killed run leaves none or the whole of it.
pub fn write(
    sweep: &Sweep,
    precision: Precision,
    k: u64,
    out: &Path,
    backend: Option<&Backend>,
) -> Result<()> {
    let path = out.join(TRACE_FILE);
    let tmp = out.join(format!("{TRACE_FILE}.partial"));
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io("cannot write", &tmp, e))?;
    let mut w = std::io::BufWriter::new(file);
    let io = |e| Error::io("cannot write", &tmp, e);
    w.write_all(header(sweep).as_bytes()).map_err(io)?;
    let rule = sweep.rule(precision);
    let per = k.min(sweep.trajectories_per_cell);
    // A cell's traced ids, PER_BATCH at a time.
    let runs = sweep.cells.iter().flat_map(|c| {
        let first = c.index as u64 * sweep.trajectories_per_cell;
        (first..first + per)
            .step_by(PER_BATCH)
            .map(move |s| s..(s + PER_BATCH as u64).min(first + per))
    });
    for run in runs {
        let ids: Vec<u64> = run.clone().collect();
        let traces = trace_ids(sweep, &rule, precision, backend, run)?;
        let mut text = String::new();
        for (&id, points) in ids.iter().zip(&traces) {
            let cell = sweep.cell_of(id);
            let bound = match cell.parameter_step_sizes() {
                Some(_) => cell.bound(),
                None => cell.optimizer.sharpness_bound(cell.step_size),
            };
            let mut lead = format!(
                "{id},{},{},{}",
                cell.index,
                sweep.replicate_of(id),
                cell.step_size
            );
            if let Some(v) = cell.axis_value {
                lead.push_str(&format!(",{v}"));
            }
            for p in points {
                text.push_str(&format!(
                    "{lead},{},{},{bound},{}\n",
                    p.iteration, p.sharpness, p.loss
                ));
            }
        }
        w.write_all(text.as_bytes()).map_err(io)?;
    }
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("cannot write", &path, e))
}
