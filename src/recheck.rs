//! f64 rechecks of f32 verdicts. In f32 a verdict within a few percent of a
//! stability threshold can be wrong: rounding can land an iterate exactly on
//! a minimizer that GD could not reach at that step size, or turn a
//! convergence into a period-2 orbit. So every f32 run (on either backend)
//! reruns in f64, on the CPU:
//!
//! 1. every **suspect** trajectory: one that converged to a minimum with its
//!    metric above the bound at its step size, or (the polynomial) to a
//!    minimizer whose threshold 2/f''(x*) is below its step size. The theory
//!    rules these out, so each is either a rounding artefact or a finding,
//!    and f64 tells which;
//! 2. a fixed **sample** of the others: the first ⌈T/`SAMPLE_EVERY`⌉ of the
//!    T replicates of every cell, chosen by id, so the choice does not depend
//!    on chunking, threads or shards. Consecutive ids run through the CPU's
//!    pack engines as fast as a sweep; a `grid` or `point` start gives the
//!    sample the low end of the grid (it measures f32's error rate, not the
//!    grid).
//!
//! The f64 verdict replaces the f32 one in the counts (and in the
//! trajectory's row), and the cell counts how many it `rechecked` and how
//! many of those verdicts f64 `overturned`: another outcome, or for a
//! converged trajectory another minimizer or no minimum at all.
//!
//! Cost: each trajectory is rechecked at most once, within the same
//! max_iters, so a recheck never runs more trajectories than the sweep did;
//! the sample adds 1/`SAMPLE_EVERY` of them on the pack engines, and suspects
//! (the verdicts the theory rules out) run one by one on the reference.

use rayon::prelude::*;

use crate::backend::{cpu, ChunkResult};
use crate::models::Assessment;
use crate::spec::Precision;
use crate::stopping::{Outcome, StopRule, TrajectoryEnd};
use crate::sweep::Sweep;

/// The first ⌈T/SAMPLE_EVERY⌉ replicates of every cell of T are rechecked
/// whatever their verdict.
pub const SAMPLE_EVERY: u64 = 64;

/// What a recheck did to one cell of a chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CellRecheck {
    pub rechecked: u64,
    pub overturned: u64,
}

/// The f64 side of an f32 sweep's rechecks: the model constants and the
/// stopping rule in f64.
pub struct Rechecker {
    constants: Vec<Vec<f64>>,
    rule: StopRule,
}

/// The verdict a cell counts for a trajectory: its outcome and, where it
/// converged, the minimum it reached (the polynomial's minimizer, or none
/// where it stalled elsewhere).
fn verdict(
    end: &TrajectoryEnd,
    assessment: Option<&Assessment>,
) -> (Outcome, Option<(bool, Option<usize>)>) {
    let at = (end.outcome == Outcome::Converged)
        .then(|| assessment.map_or((false, None), |a| (a.at_minimum, a.minimizer)));
    (end.outcome, at)
}

impl Rechecker {
    pub fn new(sweep: &Sweep) -> Self {
        Rechecker {
            constants: cpu::constants::<f64>(sweep),
            rule: sweep.rule(Precision::F64),
        }
    }

    /// Whether a trajectory's f32 verdict is one the theory rules out.
    fn suspect(
        sweep: &Sweep,
        id: u64,
        end: &TrajectoryEnd,
        assessment: Option<&Assessment>,
    ) -> bool {
        let Some(a) = assessment.filter(|a| a.at_minimum) else {
            return false;
        };
        if end.outcome != Outcome::Converged {
            return false;
        }
        let cell = sweep.cell_of(id);
        let beyond_threshold = a
            .minimizer
            .and_then(|i| cell.model.minimizers().get(i))
            .is_some_and(|m| cell.optimizer.step_for(m.threshold) < cell.step_size);
        a.metric > cell.bound() || beyond_threshold
    }

    /// Rechecks a chunk of f32 results (ids from `base`) in place. Returns
    /// what it did per cell, as (cell index, counts) for the cells where it
    /// rechecked any, and every trajectory's assessment as the tally takes it
    /// (`needs_assessment`: converged and finite), after the rechecks.
    pub fn apply(
        &self,
        sweep: &Sweep,
        base: u64,
        result: &mut ChunkResult,
    ) -> (Vec<(usize, CellRecheck)>, Vec<Option<Assessment>>) {
        let dim = result.dim;
        let n = result.ends.len();
        // The assessment a converged trajectory's verdict depends on.
        let assess = |i: usize, end: &TrajectoryEnd, theta: &[f64]| -> Option<Assessment> {
            let id = base + i as u64;
            crate::aggregate::needs_assessment(end, theta, false)
                .then(|| sweep.cell_of(id).assess(theta, sweep.replicate_of(id)))
        };
        let mut assessed: Vec<Option<Assessment>> = (0..n)
            .into_par_iter()
            .map(|i| assess(i, &result.ends[i], &result.theta[i * dim..(i + 1) * dim]))
            .collect();
        // The sample: each cell's first replicates, consecutive ids.
        let per_cell = sweep.trajectories_per_cell;
        let sampled = per_cell.div_ceil(SAMPLE_EVERY);
        let mut reruns: Vec<(usize, TrajectoryEnd, Vec<f64>)> = Vec::new();
        for (cell, run) in sweep.cell_runs(base..base + n as u64) {
            let first = cell.index as u64 * per_cell;
            let ids = run.start..run.end.min(first + sampled);
            if ids.is_empty() {
                continue;
            }
            let (ends, theta) = cpu::run_chunk(sweep, &self.constants, &self.rule, ids.clone());
            for (k, end) in ends.into_iter().enumerate() {
                let i = (ids.start - base) as usize + k;
                reruns.push((i, end, theta[k * dim..(k + 1) * dim].to_vec()));
            }
        }
        // The suspects outside the sample, one by one.
        let suspects: Vec<usize> = (0..n)
            .into_par_iter()
            .filter(|&i| {
                let id = base + i as u64;
                sweep.replicate_of(id) >= sampled
                    && Self::suspect(sweep, id, &result.ends[i], assessed[i].as_ref())
            })
            .collect();
        let ids: Vec<u64> = suspects.iter().map(|&i| base + i as u64).collect();
        let alone = cpu::run_each(sweep, &self.constants, &self.rule, &ids);
        reruns.extend(
            suspects
                .into_iter()
                .zip(alone)
                .map(|(i, (end, theta))| (i, end, theta)),
        );
        reruns.sort_by_key(|r| r.0);
        let mut counts: Vec<(usize, CellRecheck)> = Vec::new();
        for (i, end, theta) in reruns {
            let cell = sweep.cell_of(base + i as u64).index;
            let before = verdict(&result.ends[i], assessed[i].as_ref());
            assessed[i] = assess(i, &end, &theta);
            let after = verdict(&end, assessed[i].as_ref());
            result.ends[i] = end;
            result.theta[i * dim..(i + 1) * dim].copy_from_slice(&theta);
            if counts.last().is_none_or(|&(c, _)| c != cell) {
                counts.push((cell, CellRecheck::default()));
            }
            let slot = &mut counts.last_mut().expect("a cell").1;
            slot.rechecked += 1;
            slot.overturned += u64::from(after != before);
        }
        (counts, assessed)
    }
}
