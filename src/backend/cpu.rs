//! The CPU backend: rayon across packs of trajectories, f64 or f32. Each pack
//! runs through `lanes::descend_lanes`, which is bit-identical to the
//! one-trajectory reference `stopping::descend` that every kernel is held
//! against.

use std::ops::Range;

use rayon::prelude::*;

use crate::grid::Sweep;
use crate::lanes::{descend_lanes, LaneScratch};
use crate::real::{Pack, Real, LANES};
use crate::stopping::{fingerprint_weights, Outcome, StopRule, TrajectoryEnd};

/// Trajectories per rayon task: large enough to amortize scheduling, small
/// enough to balance cells that finish at very different speeds.
const TASK: usize = 32 * LANES;

/// Runs trajectories `ids` to the end; returns their ends and final iterates
/// (ids.len() × dim, in f64).
pub fn run_chunk<R: Real>(
    sweep: &Sweep,
    constants: &[Vec<R>],
    rule: &StopRule,
    ids: Range<u64>,
) -> (Vec<TrajectoryEnd>, Vec<f64>) {
    // A chunk runs one model, with one set of constants (see `Sweep::chunks`).
    let first = sweep.cell_of(ids.start);
    let model = &first.model;
    let (dim, work) = (model.dim(), model.work_len());
    let splat = |v: &[R]| v.iter().map(|&c| Pack::splat(c)).collect::<Vec<_>>();
    let weights = splat(&fingerprint_weights::<R>(dim));
    let consts = splat(&constants[first.index]);
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
                    LaneScratch::<R>::new(dim, work, rule),
                    vec![Pack::splat(R::zero()); dim],
                    vec![0.0f64; dim],
                )
            },
            |(scratch, state, start), (task, (ends, finals))| {
                let base = ids.start + (task * TASK) as u64;
                for (p, (ends, finals)) in ends
                    .chunks_mut(LANES)
                    .zip(finals.chunks_mut(LANES * dim))
                    .enumerate()
                {
                    let pack_base = base + (p * LANES) as u64;
                    // A short last pack repeats its last trajectory in the spare lanes.
                    let id_of = |lane: usize| pack_base + lane.min(ends.len() - 1) as u64;
                    let mut steps = [R::zero(); LANES];
                    for (lane, step) in steps.iter_mut().enumerate() {
                        let id = id_of(lane);
                        sweep.initial(id, start);
                        for (s, &v) in state.iter_mut().zip(start.iter()) {
                            s.0[lane] = R::of(v);
                        }
                        *step = R::of(sweep.cell_of(id).step_size);
                    }
                    let pack_ends =
                        descend_lanes(state, Pack(steps), rule, &weights, scratch, |t, g, w| {
                            model.gradient(&consts, t, g, w)
                        });
                    for (lane, (end, fin)) in
                        ends.iter_mut().zip(finals.chunks_mut(dim)).enumerate()
                    {
                        *end = pack_ends[lane];
                        for (f, s) in fin.iter_mut().zip(state.iter()) {
                            *f = s.0[lane].to_f64_lossless();
                        }
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
