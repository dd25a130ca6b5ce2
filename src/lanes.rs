//! The CPU backend's fast path: `descend` for a pack of N trajectories at
//! once. Every lane performs exactly the operations `descend` performs for its
//! trajectory (the model's gradient is the same generic routine, applied to
//! `Pack`), so results are bit-identical to the one-trajectory reference; the
//! packs only let the compiler use SIMD registers. Lanes advance in lockstep
//! block by block; a lane that is classified keeps its final state and its
//! remaining arithmetic is discarded.

use crate::real::{Pack, Real};
use crate::stopping::{classify, fingerprint, strided_sum, StopRule, TrajectoryEnd};

/// Per-thread buffers for the lane engine, reused across packs.
pub struct LaneScratch<R, const N: usize> {
    gradient: Vec<Pack<R, N>>,
    work: Vec<Pack<R, N>>,
    history: Vec<Pack<R, N>>,
    /// Each lane's final iterate, kept from the check that classified it.
    finals: Vec<Pack<R, N>>,
    ring: usize,
}

impl<R: Real, const N: usize> LaneScratch<R, N> {
    pub fn new(dim: usize, work: usize, rule: &StopRule) -> Self {
        let ring = rule.history_len();
        LaneScratch {
            gradient: vec![Pack::splat(R::zero()); dim],
            work: vec![Pack::splat(R::zero()); work],
            history: vec![Pack::splat(R::zero()); ring],
            finals: vec![Pack::splat(R::zero()); dim],
            ring,
        }
    }
}

/// ∇f for a pack: `write(θ, g, work)` writes the gradient of every lane into g.
/// A closure serves; the CPU backend passes a type whose method is always
/// inlined, since a closure's body is compiled on its own, without the target
/// features of the caller it is passed to.
pub trait PackGradient<R, const N: usize> {
    fn write(&mut self, theta: &[Pack<R, N>], gradient: &mut [Pack<R, N>], work: &mut [Pack<R, N>]);
}

impl<R, const N: usize, F: FnMut(&[Pack<R, N>], &mut [Pack<R, N>], &mut [Pack<R, N>])>
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

/// Runs a pack of trajectories; `theta[i]` holds coordinate i of every lane and
/// is overwritten with the final iterates. `weights` are the fingerprint
/// weights, splatted. Always inlined, so that it takes the target features of
/// the CPU backend's per-instruction-set caller.
#[inline(always)]
pub fn descend_lanes<R: Real, const N: usize>(
    theta: &mut [Pack<R, N>],
    step_size: Pack<R, N>,
    rule: &StopRule,
    weights: &[Pack<R, N>],
    scratch: &mut LaneScratch<R, N>,
    mut gradient: impl PackGradient<R, N>,
) -> [TrajectoryEnd; N] {
    let mask = scratch.ring - 1;
    let mut ends: [Option<TrajectoryEnd>; N] = [None; N];
    let mut k: u64 = 0;
    loop {
        let block = u64::from(rule.check_every).min(rule.max_iters - k);
        let first_read = rule.first_fingerprint_read(k, block);
        if k >= first_read {
            scratch.history[k as usize & mask] = fingerprint(weights, theta);
        }
        for _ in 0..block {
            gradient.write(theta, &mut scratch.gradient, &mut scratch.work);
            for (t, &g) in theta.iter_mut().zip(scratch.gradient.iter()) {
                *t = *t - step_size * g;
            }
            k += 1;
            if k >= first_read {
                scratch.history[k as usize & mask] = fingerprint(weights, theta);
            }
        }
        if !rule.early_exit && k < rule.max_iters {
            continue;
        }
        let depth = (block as usize + 1).min(scratch.ring);
        gradient.write(theta, &mut scratch.gradient, &mut scratch.work);
        for (lane, end) in ends.iter_mut().enumerate() {
            if end.is_some() {
                continue;
            }
            let verdict = classify(
                rule,
                k,
                depth,
                || theta.iter().map(|t| t.0[lane]),
                || {
                    let g = &scratch.gradient;
                    strided_sum(g.len(), |i| g[i].0[lane] * g[i].0[lane])
                },
                |j| scratch.history[(k as usize).wrapping_sub(j) & mask].0[lane],
            );
            if let Some((outcome, period)) = verdict {
                *end = Some(TrajectoryEnd {
                    outcome,
                    period,
                    iterations: k,
                });
                for (f, t) in scratch.finals.iter_mut().zip(theta.iter()) {
                    f.0[lane] = t.0[lane];
                }
            }
        }
        if ends.iter().all(Option::is_some) {
            theta.copy_from_slice(&scratch.finals);
            return ends.map(|e| e.expect("every lane is classified"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stopping::{descend, fingerprint_weights, Scratch};

    const LANES: usize = 32;
    type P = Pack<f32, LANES>;

    /// Every lane ends exactly where the one-trajectory reference ends.
    #[test]
    fn lanes_match_the_reference_bit_for_bit() {
        let rule = StopRule {
            max_iters: 5000,
            check_every: 64,
            tol_grad: 1e-3,
            osc_rel_tol: 1e-4,
            max_period: 16,
            divergence_cap: 1e6,
            early_exit: true,
        };
        // f(x, y) = ¼(x² − 1)² + y²: lanes start apart and take different times.
        let grad = |t: &[f32], g: &mut [f32]| {
            g[0] = (t[0] * t[0] - 1.0) * t[0];
            g[1] = 2.0 * t[1];
        };
        let starts: [[f32; 2]; LANES] = std::array::from_fn(|l| [0.3 + 0.4 * l as f32, 0.5]);
        let steps: [f32; LANES] = std::array::from_fn(|l| 0.1 + 0.12 * l as f32);
        let weights = fingerprint_weights::<f32>(2);
        let mut pack: Vec<Pack<f32, LANES>> = (0..2)
            .map(|i| Pack(std::array::from_fn(|l| starts[l][i])))
            .collect();
        let pw: Vec<Pack<f32, LANES>> = weights.iter().map(|&w| Pack::splat(w)).collect();
        let mut ls = LaneScratch::new(2, 0, &rule);
        let ends = descend_lanes(
            &mut pack,
            Pack(steps),
            &rule,
            &pw,
            &mut ls,
            |t: &[P], g: &mut [P], _: &mut [P]| {
                let one = Pack::splat(1.0f32);
                g[0] = (t[0] * t[0] - one) * t[0];
                g[1] = Pack::splat(2.0) * t[1];
            },
        );
        let mut outcomes = std::collections::HashSet::new();
        for lane in 0..LANES {
            let mut theta = starts[lane];
            let mut scratch = Scratch::new(2, 0, &rule);
            let end = descend(
                &mut theta,
                steps[lane],
                &rule,
                &weights,
                &mut scratch,
                |t, g, _| grad(t, g),
            );
            assert_eq!(ends[lane], end, "lane {lane}");
            let bits = |v: [f32; 2]| v.map(f32::to_bits);
            assert_eq!(
                bits([pack[0].0[lane], pack[1].0[lane]]),
                bits(theta),
                "lane {lane}"
            );
            outcomes.insert(format!("{:?}", end.outcome));
        }
        assert!(
            outcomes.len() >= 2,
            "the lanes should end differently: {outcomes:?}"
        );
    }
}
