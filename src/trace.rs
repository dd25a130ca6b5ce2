//! Sharpness over time (`--trace K`, `[output] trace = K`): for the first K
//! replicates of every cell, the top Hessian eigenvalue of the iterate at
//! the start and after every block of `check_every` iterations, against the
//! stability bound of the optimizer in use, as the edge-of-stability
//! studies plot it.
//!
//! The traced trajectories are run again on the CPU's one-trajectory
//! reference in the sweep's precision, which hands back its iterate at every
//! check; every backend follows that reference (bit for bit in f64 on the
//! CPU and on lavapipe), so these are the iterates the sweep took. The
//! sharpness is the family's own (`Family::sharpness`: f''(x) for the
//! polynomial, power iteration on Hessian-vector products in f64 otherwise),
//! or λ_max(D^½HD^½) with a step size per layer. Rows are written as cells
//! finish, a batch of cells at a time, so memory stays bounded by the batch.

use std::io::Write;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::real::{Precision, Real};
use crate::stopping::{descend_observed, fingerprint_weights, Scratch, StopRule};
use crate::sweep::{Cell, Sweep};

pub const TRACE_FILE: &str = "trace.csv";

/// Trajectories traced together, in parallel, before their rows are written.
const PER_BATCH: usize = 256;

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
            crate::models::hessian::preconditioned_sharpness(theta, &steps, |t| {
                cell.model.gradient_f64(t)
            }),
            cell.bound(),
        ),
        None => (
            cell.model.sharpness(theta),
            cell.optimizer.sharpness_bound(cell.step_size),
        ),
    }
}

/// The traced points of trajectory `id`, run in precision R.
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
            let (sharpness, _) = if wide.iter().all(|v| v.is_finite()) {
                sharpness_and_bound(cell, &wide)
            } else {
                (f64::NAN, f64::NAN)
            };
            points.push(TracePoint {
                iteration: k,
                sharpness,
                loss: model.loss(&wide),
            });
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

/// Writes trace.csv into `out` for the first `k` replicates of every cell
/// (through a temporary file and a rename, so a killed run leaves none or
/// the whole of it).
pub fn write(sweep: &Sweep, precision: Precision, k: u64, out: &Path) -> Result<()> {
    let path = out.join(TRACE_FILE);
    let tmp = out.join(format!("{TRACE_FILE}.partial"));
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io("cannot write", &tmp, e))?;
    let mut w = std::io::BufWriter::new(file);
    let io = |e| Error::io("cannot write", &tmp, e);
    w.write_all(header(sweep).as_bytes()).map_err(io)?;
    let rule = sweep.rule(precision);
    let per = k.min(sweep.trajectories_per_cell);
    let mut traced = sweep.cells.iter().flat_map(|c| {
        let first = c.index as u64 * sweep.trajectories_per_cell;
        first..first + per
    });
    loop {
        let ids: Vec<u64> = traced.by_ref().take(PER_BATCH).collect();
        if ids.is_empty() {
            break;
        }
        let traces: Vec<Vec<TracePoint>> = ids
            .par_iter()
            .map(|&id| match precision {
                Precision::F64 => trace::<f64>(sweep, &rule, id),
                Precision::F32 => trace::<f32>(sweep, &rule, id),
            })
            .collect();
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
