//! The CPU backend: rayon across trajectories, f64 or f32. It is the
//! specification every kernel is held against.

use std::ops::Range;

use rayon::prelude::*;

use crate::grid::Sweep;
use crate::real::Real;
use crate::stopping::{descend, fingerprint_weights, Outcome, Scratch, StopRule, TrajectoryEnd};

/// Trajectories per rayon task: large enough to amortize scheduling, small
/// enough to balance cells that finish at very different speeds.
const TASK: usize = 256;

/// Runs trajectories `ids` to the end; returns their ends and final iterates
/// (ids.len() × dim, in f64).
pub fn run_chunk<R: Real>(
    sweep: &Sweep,
    constants: &[Vec<R>],
    rule: &StopRule,
    ids: Range<u64>,
) -> (Vec<TrajectoryEnd>, Vec<f64>) {
    // A chunk runs one model (see `Sweep::chunks`).
    let model = &sweep.cell_of(ids.start).model;
    let (dim, work) = (model.dim(), model.work_len());
    let weights = fingerprint_weights::<R>(dim);
    let n = (ids.end - ids.start) as usize;
    let blank = TrajectoryEnd {
        outcome: Outcome::Undecided,
        period: 0,
        iterations: 0,
    };
    let mut ends = vec![blank; n];
    let mut theta = vec![0.0f64; n * dim];
    ends.par_chunks_mut(TASK)
        .zip(theta.par_chunks_mut(TASK * dim))
        .enumerate()
        .for_each_init(
            || {
                (
                    Scratch::<R>::new(dim, work, rule),
                    vec![R::zero(); dim],
                    vec![0.0f64; dim],
                )
            },
            |(scratch, state, start), (task, (ends, finals))| {
                for (i, (end, fin)) in ends.iter_mut().zip(finals.chunks_mut(dim)).enumerate() {
                    let id = ids.start + (task * TASK + i) as u64;
                    let cell = sweep.cell_of(id);
                    sweep.initial(id, start);
                    for (s, &v) in state.iter_mut().zip(start.iter()) {
                        *s = R::of(v);
                    }
                    let consts = &constants[cell.index];
                    let step = R::of(cell.step_size);
                    *end = descend(state, step, rule, &weights, scratch, |t, g, w| {
                        cell.model.gradient(consts, t, g, w)
                    });
                    for (f, &s) in fin.iter_mut().zip(state.iter()) {
                        *f = s.to_f64_lossless();
                    }
                }
            },
        );
    (ends, theta)
}

/// Each cell's model constants in the working precision.
pub fn constants<R: Real>(sweep: &Sweep) -> Vec<Vec<R>> {
    sweep
        .cells
        .iter()
        .map(|c| c.model.constants::<R>())
        .collect()
}
