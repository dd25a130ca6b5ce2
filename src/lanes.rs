//! The CPU backend's fast path: `descend` for N trajectories at once, one per
//! lane of a pack. Every lane performs exactly the operations `descend`
//! performs for its trajectory (the model's gradient is the same generic
//! routine, applied to `Pack`), so results are bit-identical to the
//! one-trajectory reference; the packs only let the compiler use SIMD
//! registers. Lanes advance in lockstep, block by block, each at its own
//! iteration; a lane whose trajectory ends is given the next one at the next
//! block boundary, so a pack is not held up by its slowest trajectory.

use crate::real::{Pack, Real};
use crate::stopping::{
    classify_lanes, fingerprint, oscillation_limit, oscillation_periods, strided_sum, update,
    Outcome, Record, StopRule, TrajectoryEnd, RUNNING,
};

/// Per-thread buffers for the lane engine, reused across packs.
pub struct LaneScratch<R, const N: usize> {
    theta: Vec<Pack<R, N>>,
    gradient: Vec<Pack<R, N>>,
    work: Vec<Pack<R, N>>,
    /// Fingerprints of the current block's iterates, at slot (iterate's step
    /// within the block & mask): a check reads only its own block's.
    history: Vec<Pack<R, N>>,
}

impl<R: Real, const N: usize> LaneScratch<R, N> {
    pub fn new(dim: usize, work: usize, rule: &StopRule) -> Self {
        let ring = rule.history_len();
        LaneScratch {
            theta: vec![Pack::splat(R::zero()); dim],
            gradient: vec![Pack::splat(R::zero()); dim],
            work: vec![Pack::splat(R::zero()); work],
            history: vec![Pack::splat(R::zero()); ring],
        }
    }
}

/// ∇f for a pack: `write(θ, g, work)` writes the gradient of every lane into g.
/// A closure serves; the CPU backend passes a type whose method is always
/// inlined, since a closure's body is compiled on its own, without the target
/// features of the caller it is passed to.
pub trait PackGradient<R: Real, const N: usize> {
    fn write(&mut self, theta: &[Pack<R, N>], gradient: &mut [Pack<R, N>], work: &mut [Pack<R, N>]);

    /// `steps` steps θ ← θ − δ∇f(θ) with nothing read between them but the
    /// fingerprints `record` asks for. A model whose iterate fits in
    /// registers overrides this to keep it there: the round trip of θ and
    /// ∇f through memory lengthens the chain of dependent operations from
    /// one step to the next.
    #[inline(always)]
    fn advance(
        &mut self,
        theta: &mut [Pack<R, N>],
        gradient: &mut [Pack<R, N>],
        work: &mut [Pack<R, N>],
        delta: Pack<R, N>,
        steps: u64,
        mut record: Option<Record<'_, Pack<R, N>>>,
    ) {
        for s in 0..steps as usize {
            self.write(theta, gradient, work);
            update(theta, gradient, delta);
            if let Some(r) = record.as_mut() {
                r.keep(s, theta);
            }
        }
    }
}

impl<R: Real, const N: usize, F: FnMut(&[Pack<R, N>], &mut [Pack<R, N>], &mut [Pack<R, N>])>
    PackGradient<R, N> for F
{
    #[inline(always)]
    fn write(
        &mut self,
        theta: &[Pack<R, N>],
        gradient: &mut [Pack<R, N>],
        work: &mut [Pack<R, N>],
    ) {
        self(theta, gradient, work)
    }
}

/// Where the lane engine's trajectories come from and where their ends go.
pub trait LaneSource<R, const N: usize> {
    /// Writes the next trajectory's initial point into `lane` of `theta`
    /// (coordinate i in `theta[i]`) and returns its step size; None when no
    /// trajectory is left.
    fn load(&mut self, lane: usize, theta: &mut [Pack<R, N>]) -> Option<R>;
    /// `load` into every lane, in order, their step sizes into `step_size`:
    /// for a pack whose lanes are all idle. Returns how many were loaded (N
    /// unless the trajectories ran out).
    #[inline(always)]
    fn load_all(&mut self, theta: &mut [Pack<R, N>], step_size: &mut Pack<R, N>) -> usize {
        load_each(self, theta, step_size)
    }
    /// The trajectory in `lane` ended, at its iterate in `lane` of `theta`.
    fn end(&mut self, lane: usize, end: TrajectoryEnd, theta: &[Pack<R, N>]);
}

/// `LaneSource::load_all` lane by lane, with `load`.
#[inline(always)]
pub fn load_each<R, const N: usize, S: LaneSource<R, N> + ?Sized>(
    source: &mut S,
    theta: &mut [Pack<R, N>],
    step_size: &mut Pack<R, N>,
) -> usize {
    for lane in 0..N {
        match source.load(lane, theta) {
            Some(d) => step_size.0[lane] = d,
            None => return lane,
        }
    }
    N
}

/// Runs every trajectory `source` gives, N lanes at a time, and hands each
/// end back to it. Always inlined, so that it takes the target features of
/// the CPU backend's per-instruction-set caller.
///
/// Every lane starts each block at a multiple of check_every of its own
/// iterations, as `descend` does, so a lane is refilled only at a block
/// boundary of the pack. Within a pack block the lanes' blocks end at two
/// places at most: check_every, and max_iters mod check_every for lanes in
/// their last block (which then always end). A lane that has ended idles at
/// θ = 0 with δ = 0 until it is refilled, which keeps its arithmetic finite.
#[inline(always)]
pub fn descend_lanes<R: Real, const N: usize>(
    rule: &StopRule,
    weights: &[Pack<R, N>],
    scratch: &mut LaneScratch<R, N>,
    gradient: impl PackGradient<R, N>,
    source: &mut impl LaneSource<R, N>,
) {
    let LaneScratch {
        theta,
        gradient: grad,
        work,
        history,
    } = scratch;
    stream(rule, weights, theta, grad, work, history, gradient, source);
}

/// `descend_lanes` on the scratch's buffers as slices, whose pointers and
/// lengths stay in registers, where reaching them through the struct's
/// `Vec`s reloads them at every step.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn stream<R: Real, const N: usize>(
    rule: &StopRule,
    weights: &[Pack<R, N>],
    theta: &mut [Pack<R, N>],
    grad: &mut [Pack<R, N>],
    work: &mut [Pack<R, N>],
    history: &mut [Pack<R, N>],
    mut gradient: impl PackGradient<R, N>,
    source: &mut impl LaneSource<R, N>,
) {
    let ring = history.len();
    let mask = ring - 1;
    let every = u64::from(rule.check_every);
    let mut step_size = Pack::splat(R::zero());
    let mut k = [0u64; N];
    let mut active = [false; N];
    // The length of each active lane's current block (0 for an idle lane).
    let mut length = [0u64; N];
    for t in theta.iter_mut() {
        *t = Pack::splat(R::zero());
    }
    // The furthest lane's iteration (idle lanes are at k = 0), kept as the
    // lanes move rather than found afresh by a pass over the lanes at every
    // block.
    let mut furthest = 0u64;
    let loaded = source.load_all(theta, &mut step_size);
    active[..loaded].fill(true);
    let mut exhausted = loaded < N;
    // The bookkeeping below is a few passes over the lanes per block, which
    // weighs on a model with cheap steps, so the common block (no lane in
    // its last) takes a short path.
    while active.contains(&true) {
        // The pack block: as long as its longest lane block, fingerprints
        // kept from the first step any lane's check reads. Lane blocks end
        // at two places at most: `shortest` (lanes in their last block) and
        // `longest`.
        let (mut longest, mut shortest, mut from, mut reach) = (0u64, u64::MAX, u64::MAX, 0u64);
        if furthest + every < rule.max_iters {
            // The common block: every lane runs a whole block, none its last.
            for (len, &on) in length.iter_mut().zip(&active) {
                *len = if on { every } else { 0 };
            }
            (longest, shortest) = (every, every);
            from = rule.first_fingerprint_read(furthest, every) - furthest;
            reach = furthest + every;
        } else {
            for lane in 0..N {
                if active[lane] {
                    let block = every.min(rule.max_iters - k[lane]);
                    length[lane] = block;
                    longest = longest.max(block);
                    shortest = shortest.min(block);
                    from = from.min(rule.first_fingerprint_read(k[lane], block) - k[lane]);
                    reach = reach.max(k[lane] + block);
                } else {
                    length[lane] = 0;
                }
            }
        }
        // With early exit off, only a lane's last block ends in a check.
        let checks = rule.early_exit || reach >= rule.max_iters;
        if from == 0 {
            history[0] = fingerprint(weights, theta);
        }
        let mut ended = false;
        let mut s = 0u64;
        loop {
            // The lanes whose blocks end at step s and are checked there.
            let mut checking = [false; N];
            if checks {
                // (`&`, not `&&`: without branches, the compiler vectorizes it.)
                for (lane, c) in checking.iter_mut().enumerate() {
                    *c = active[lane]
                        & (length[lane] == s)
                        & (rule.early_exit | (k[lane] + s >= rule.max_iters));
                }
            }
            if checks && checking.contains(&true) {
                // What `classify` asks of each lane, computed for the whole
                // pack at once: ‖∇f‖², summed as `classify` sums it, and,
                // where a lane's gradient is not small enough to converge
                // (the only lanes `classify` asks it of), every lane's
                // oscillation period. Written out here, in the engine's
                // copy for its instruction set: in a closure, which the
                // compiler keeps out of line, it ran without the vector
                // instructions.
                gradient.write(theta, grad, work);
                let mut grad_norm = strided_sum(grad.len(), |i| grad[i] * grad[i]).0;
                for g in grad_norm.iter_mut() {
                    *g = g.sqrt();
                }
                let depth = (s as usize + 1).min(ring);
                let past = |j: usize| &history[(s as usize).wrapping_sub(j) & mask].0;
                let tol = R::of(rule.tol_grad);
                // (A NaN norm counts as too large, as `classify` reads it.)
                let mut search = false;
                for (&c, &g) in checking.iter().zip(&grad_norm) {
                    let small = g <= tol;
                    search |= c & !small;
                }
                // (0 for none, as where no lane is searched.)
                let periods = if search {
                    let (now, before) = (past(0), past(1));
                    let mut limit = [R::zero(); N];
                    for (l, (a, b)) in limit.iter_mut().zip(now.iter().zip(before)) {
                        *l = oscillation_limit(rule, (*a - *b).abs());
                    }
                    oscillation_periods(rule, depth, &limit, past)
                } else {
                    [0; N]
                };
                let mut at = [0u64; N];
                for (a, &k) in at.iter_mut().zip(&k) {
                    *a = k + s;
                }
                let verdicts =
                    classify_lanes(rule, &at, theta, &grad_norm, past(0), past(1), &periods);
                let mut ending = [false; N];
                for ((e, &c), &v) in ending.iter_mut().zip(&checking).zip(&verdicts) {
                    *e = c & (v != RUNNING);
                }
                for lane in 0..N {
                    if !ending[lane] {
                        continue;
                    }
                    let outcome = Outcome::from_code(verdicts[lane]).expect("an end's code");
                    let oscillating = outcome == Outcome::Oscillating;
                    let period = if oscillating { periods[lane] } else { 0 };
                    let end = TrajectoryEnd {
                        outcome,
                        period,
                        iterations: at[lane],
                    };
                    source.end(lane, end, theta);
                }
                // The ended lanes idle, all together (lane by lane, the
                // stores were a tenth of ending a pack): θ = 0, δ = 0, and
                // k = 0 (see `furthest`).
                for t in theta.iter_mut() {
                    for (v, &e) in t.0.iter_mut().zip(&ending) {
                        *v = if e { R::zero() } else { *v };
                    }
                }
                for (l, &e) in ending.iter().enumerate() {
                    step_size.0[l] = if e { R::zero() } else { step_size.0[l] };
                    active[l] &= !e;
                    k[l] = if e { 0 } else { k[l] };
                    length[l] = if e { 0 } else { length[l] };
                    ended |= e;
                }
            }
            if s >= longest {
                break;
            }
            let next = if s < shortest { shortest } else { longest };
            // The step sizes are fixed until the next check, so the
            // compiler may keep them in registers.
            let delta = step_size;
            // The steps before the first fingerprint a check reads.
            let quiet = next.min(from.saturating_sub(1));
            if s < quiet {
                gradient.advance(theta, grad, work, delta, quiet - s, None);
                s = quiet;
            }
            // From here every iterate's fingerprint is read (s + 1 ≥ from).
            if s < next {
                let record = Record {
                    weights,
                    history: &mut *history,
                    first: s as usize + 1,
                };
                gradient.advance(theta, grad, work, delta, next - s, Some(record));
                s = next;
            }
        }
        // Lanes that ended are at k = 0 with a block of 0 by now, and lanes
        // loaded below start at 0, so this is the furthest lane's iteration
        // for the next block.
        furthest = 0;
        for (k, &block) in k.iter_mut().zip(&length) {
            *k += block;
            furthest = furthest.max(*k);
        }
        if ended && !exhausted && !active.contains(&true) {
            // Every lane ended at this block (as all do at once in a
            // fixed-work sweep): the pack is loaded afresh, all together.
            let loaded = source.load_all(theta, &mut step_size);
            active[..loaded].fill(true);
            exhausted = loaded < N;
        } else if ended && !exhausted {
            for lane in 0..N {
                if active[lane] {
                    continue;
                }
                match source.load(lane, theta) {
                    Some(d) => (step_size.0[lane], k[lane], active[lane]) = (d, 0, true),
                    None => {
                        exhausted = true;
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stopping::{descend, fingerprint_weights, Scratch};

    const LANES: usize = 32;
    type P = Pack<f32, LANES>;

    /// Trajectories taken from a list, their ends and final iterates kept.
    struct Listed {
        starts: Vec<[f32; 2]>,
        steps: Vec<f32>,
        next: usize,
        in_lane: [usize; LANES],
        ends: Vec<Option<(TrajectoryEnd, [f32; 2])>>,
    }

    impl LaneSource<f32, LANES> for Listed {
        fn load(&mut self, lane: usize, theta: &mut [P]) -> Option<f32> {
            let i = self.next;
            let start = self.starts.get(i)?;
            self.next += 1;
            self.in_lane[lane] = i;
            theta[0].0[lane] = start[0];
            theta[1].0[lane] = start[1];
            Some(self.steps[i])
        }
        fn end(&mut self, lane: usize, end: TrajectoryEnd, theta: &[P]) {
            let i = self.in_lane[lane];
            assert!(self.ends[i].is_none(), "trajectory {i} ended twice");
            self.ends[i] = Some((end, [theta[0].0[lane], theta[1].0[lane]]));
        }
    }

    /// Every trajectory ends exactly where the one-trajectory reference ends,
    /// with six times as many trajectories as lanes, so lanes are refilled as
    /// their trajectories end, and max_iters not a multiple of check_every,
    /// so some lanes' last blocks end inside the pack's block; with early
    /// exit on and off.
    #[test]
    fn lanes_match_the_reference_bit_for_bit() {
        for early_exit in [true, false] {
            let rule = StopRule {
                max_iters: 5 * 64 + 13,
                check_every: 64,
                tol_grad: 1e-3,
                osc_rel_tol: 1e-4,
                max_period: 16,
                divergence_cap: 1e6,
                early_exit,
                optimizer: crate::optimizer::OptimizerKind::Gd,
                step_slots: 1,
            };
            // f(x, y) = ¼(x² − 1)² + y²: trajectories take different times,
            // and some step sizes oscillate or diverge.
            let grad = |t: &[f32], g: &mut [f32]| {
                g[0] = (t[0] * t[0] - 1.0) * t[0];
                g[1] = 2.0 * t[1];
            };
            let n = 6 * LANES + 5;
            let starts: Vec<[f32; 2]> = (0..n)
                .map(|i| [0.3 + 0.37 * (i % 11) as f32, 0.5 * (i % 2) as f32])
                .collect();
            let steps: Vec<f32> = (0..n).map(|i| 0.001 + 0.06 * (i % 23) as f32).collect();
            let weights = fingerprint_weights::<f32>(2);
            let pw: Vec<P> = weights.iter().map(|&w| Pack::splat(w)).collect();
            let mut ls = LaneScratch::new(2, 0, &rule);
            let mut source = Listed {
                starts: starts.clone(),
                steps: steps.clone(),
                next: 0,
                in_lane: [0; LANES],
                ends: vec![None; n],
            };
            descend_lanes(
                &rule,
                &pw,
                &mut ls,
                |t: &[P], g: &mut [P], _: &mut [P]| {
                    let one = Pack::splat(1.0f32);
                    g[0] = (t[0] * t[0] - one) * t[0];
                    g[1] = Pack::splat(2.0) * t[1];
                },
                &mut source,
            );
            let mut outcomes = std::collections::HashSet::new();
            let mut iterations = std::collections::HashSet::new();
            for i in 0..n {
                let mut theta = starts[i];
                let mut scratch = Scratch::new(2, 0, &rule);
                let end = descend(
                    &mut theta,
                    steps[i],
                    &rule,
                    &weights,
                    &mut scratch,
                    |t, g, _| grad(t, g),
                );
                let (got, at) = source.ends[i].expect("every trajectory ends");
                assert_eq!(got, end, "trajectory {i}, early exit {early_exit}");
                assert_eq!(
                    at.map(f32::to_bits),
                    theta.map(f32::to_bits),
                    "trajectory {i}, early exit {early_exit}"
                );
                outcomes.insert(format!("{:?} {}", end.outcome, end.period));
                iterations.insert(end.iterations);
            }
            // Some end within a few blocks and some run to max_iters, in the
            // middle of a pack block: lanes are refilled while others run on.
            if early_exit {
                let shortest = *iterations.iter().min().unwrap();
                assert!(
                    outcomes.len() >= 4 && shortest < 256 && iterations.contains(&rule.max_iters),
                    "the trajectories should end differently: {outcomes:?}, {iterations:?}"
                );
            }
        }
    }
}
