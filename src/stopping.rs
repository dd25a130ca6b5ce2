//! The stopping rule and outcome classification (README.md, "Outcomes").
//! `shaders/stopping.wgsl` holds the WGSL twin.
//!
//! Gradient descent θ[k+1] = θ[k] − δ ∇f(θ[k]) runs in blocks of `check_every`
//! iterations (the last block may be shorter). After each block, at iteration k:
//!
//! 1. **diverged** if any coordinate is non-finite or |θ|∞ exceeds the cap;
//! 2. **converged** if ‖∇f(θ[k])‖₂ ≤ `tol_grad`, or if the iterate stopped
//!    moving (its fingerprint s[k] = s[k−1] exactly: a fixed point of the
//!    floating-point map);
//! 3. **oscillating** with period p, the smallest p in 2..=`max_period` with
//!    |s[k−j] − s[k−j−p]| ≤ `osc_rel_tol`·|s[k] − s[k−1]| for every j < p.
//!    Measuring the mismatch against the orbit's own step, not against |θ|,
//!    keeps a slowly converging sequence with multiplier near −1 (δ just below
//!    a threshold) from passing as a period-2 orbit;
//! 4. **undecided** once k reaches `max_iters`.
//!
//! The fingerprint s = Σᵢ rᵢ θᵢ projects θ on fixed weights rᵢ ∈ [1, 2) (r₀ = 1,
//! so a 1-D model's fingerprint is x itself). A generic projection repeats
//! exactly when θ does, and keeping one scalar per iterate instead of the whole
//! θ lets a GPU kernel hold the history in registers at any model size.
//!
//! The history is a ring of the last `H` fingerprints (H a power of two ≥
//! 2·max_period) written during the current block only, so a check sees
//! min(B+1, H) iterates of a block of B iterations, whichever backend runs it.

use crate::optimizer::OptimizerKind;
use crate::real::{Arith, Pack, Real};

/// Outcome codes, shared with `shaders/common.wgsl`.
pub const RUNNING: u32 = 0;
pub const CONVERGED: u32 = 1;
pub const DIVERGED: u32 = 2;
pub const OSCILLATING: u32 = 3;
pub const UNDECIDED: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Converged,
    Diverged,
    Oscillating,
    Undecided,
}

impl Outcome {
    pub fn from_code(code: u32) -> Option<Outcome> {
        match code {
            CONVERGED => Some(Outcome::Converged),
            DIVERGED => Some(Outcome::Diverged),
            OSCILLATING => Some(Outcome::Oscillating),
            UNDECIDED => Some(Outcome::Undecided),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Converged => "converged",
            Outcome::Diverged => "diverged",
            Outcome::Oscillating => "oscillating",
            Outcome::Undecided => "undecided",
        }
    }
}

/// How one trajectory ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrajectoryEnd {
    pub outcome: Outcome,
    /// The orbit's period when oscillating, else 0.
    pub period: u32,
    /// Gradient steps taken.
    pub iterations: u64,
}

/// The resolved stopping rule for one precision.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct StopRule {
    pub max_iters: u64,
    pub check_every: u32,
    pub tol_grad: f64,
    pub osc_rel_tol: f64,
    pub max_period: u32,
    pub divergence_cap: f64,
    /// Classify after every block; without it, every trajectory runs the full
    /// `max_iters` and is classified once at the end (fixed-work benchmarks).
    pub early_exit: bool,
    /// The update each iteration makes (`crate::optimizer`); its β is each
    /// trajectory's own, like its step size.
    #[serde(skip_serializing_if = "OptimizerKind::is_gd")]
    pub optimizer: OptimizerKind,
    /// Step sizes per trajectory: 1, or one per layer where the second axis
    /// sets a layer's step size (`Sweep::layer_step_sizes`).
    #[serde(skip_serializing_if = "is_one")]
    pub step_slots: u32,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl StopRule {
    /// Whether every iteration is a plain GD step of one step size, as the
    /// CPU's pack engines take it.
    pub fn plain(&self) -> bool {
        !self.optimizer.has_velocity() && self.step_slots == 1
    }

    /// Length of the iterate ring: the smallest power of two ≥ 2·max_period.
    pub fn history_len(&self) -> usize {
        (2 * self.max_period as usize).next_power_of_two()
    }

    /// The first iterate of the block [k, k + block] whose fingerprint the
    /// check after it reads (the last min(block + 1, ring) iterates of the block);
    /// past the block's end when no check follows it (early exit off, budget
    /// not spent). The fingerprints before it are never read, so the CPU skips
    /// them; the kernels may keep them, which changes no result.
    #[inline]
    pub fn first_fingerprint_read(&self, k: u64, block: u64) -> u64 {
        let end = k + block;
        if !self.early_exit && end < self.max_iters {
            return end + 1;
        }
        end + 1 - (block + 1).min(self.history_len() as u64)
    }
}

/// The fingerprint weight of coordinate i: 1 + frac(i·φ⁻¹), in [1, 2).
pub fn fingerprint_weight(i: usize) -> f64 {
    1.0 + (i as f64 * 0.618_033_988_749_894_9).fract()
}

/// The fingerprint weights of a model with `dim` parameters.
pub fn fingerprint_weights<R: Real>(dim: usize) -> Vec<R> {
    (0..dim).map(|i| R::of(fingerprint_weight(i))).collect()
}

/// Parts of the sums over all parameters (the fingerprint, the gradient
/// norm); `shaders/common.wgsl` has the same constant.
pub const PARTS: usize = 32;

/// Σ f(i) over i < n in the kernels' order: part p sums i = p, p + PARTS, …
/// from zero, then the parts are added in order from zero. A workgroup kernel
/// gives each part to its own lane, since one lane looping over thousands of
/// parameters while the others wait at a barrier is what broke lavapipe (see
/// README, "GPU kernels"); every backend sums in this order.
#[inline(always)]
pub fn strided_sum<A: Arith>(n: usize, f: impl Fn(usize) -> A) -> A {
    let mut total = A::zero();
    for p in 0..PARTS.min(n) {
        let mut part = A::zero();
        let mut i = p;
        while i < n {
            part = part + f(i);
            i += PARTS;
        }
        total = total + part;
    }
    total
}

/// s = Σᵢ rᵢ θᵢ in the order of `strided_sum`.
#[inline(always)]
pub fn fingerprint<A: Arith>(weights: &[A], theta: &[A]) -> A {
    strided_sum(theta.len(), |i| weights[i] * theta[i])
}

/// Where a run of steps writes the fingerprint of each iterate it makes:
/// the s-th new iterate (s = 0, 1, …) goes to `history[(first + s) & (len − 1)]`
/// (a ring whose length is a power of two).
pub struct Record<'a, A> {
    pub weights: &'a [A],
    pub history: &'a mut [A],
    pub first: usize,
}

impl<A: Arith> Record<'_, A> {
    /// Keeps the fingerprint of θ, the s-th new iterate.
    #[inline(always)]
    pub fn keep(&mut self, s: usize, theta: &[A]) {
        let mask = self.history.len() - 1;
        self.history[(self.first + s) & mask] = fingerprint(self.weights, theta);
    }
}

/// Per-thread buffers, reused across trajectories so the inner loop never allocates.
pub struct Scratch<R> {
    pub gradient: Vec<R>,
    /// Model workspace (prefix and suffix products, activations, …).
    pub work: Vec<R>,
    history: Vec<R>,
    ring: usize,
    /// An optimizer's velocity and look-ahead point (empty for gd).
    velocity: Vec<R>,
    ahead: Vec<R>,
}

impl<R: Real> Scratch<R> {
    pub fn new(dim: usize, work: usize, rule: &StopRule) -> Self {
        let ring = rule.history_len();
        Self {
            gradient: vec![R::zero(); dim],
            work: vec![R::zero(); work],
            history: vec![R::zero(); ring],
            ring,
            velocity: Vec::new(),
            ahead: Vec::new(),
        }
    }

    #[inline]
    fn record(&mut self, k: u64, s: R) {
        self.history[(k as usize) & (self.ring - 1)] = s;
    }
}

/// The check after a block, at iteration k: the outcome, or None to go on.
/// `theta` gives θ[k] coordinate by coordinate; `grad_norm` gives ‖∇f(θ[k])‖,
/// the root of its square summed as `strided_sum` does (or the optimizer's
/// `residual`; asked for only once θ is in bounds);
/// `past(j)` gives the fingerprint s[k − j] for j < `depth`; `period(limit)`
/// gives what `oscillation_period` gives for this `limit` (the lane engine
/// finds it for a whole pack at once). Shared by `descend` and the lane
/// engine so both classify with the same operations. Inlined: the lane
/// engine checks every lane of a pack in turn, and a call per lane, with its
/// closures built on the stack, was a twentieth of a fixed-work poly sweep.
#[inline(always)]
pub fn classify<R: Real, T>(
    rule: &StopRule,
    k: u64,
    theta: impl Fn() -> T,
    grad_norm: impl FnOnce() -> R,
    past: impl Fn(usize) -> R,
    period: impl FnOnce(R) -> Option<u32>,
) -> Option<(Outcome, u32)>
where
    T: Iterator<Item = R>,
{
    let cap = R::of(rule.divergence_cap);
    if theta().any(|t| out_of_bounds(cap, t)) {
        return Some((Outcome::Diverged, 0));
    }
    let grad_norm = grad_norm();
    if !grad_norm.is_finite() {
        return Some((Outcome::Diverged, 0));
    }
    let last_step = (past(0) - past(1)).abs();
    if converged(R::of(rule.tol_grad), grad_norm, last_step) {
        return Some((Outcome::Converged, 0));
    }
    if let Some(p) = period(oscillation_limit(rule, last_step)) {
        return Some((Outcome::Oscillating, p));
    }
    (k >= rule.max_iters).then_some((Outcome::Undecided, 0))
}

/// Whether a coordinate t of θ puts the trajectory out of bounds (diverged),
/// for `classify` and `classify_lanes` alike. (`|`, not `||`: without a
/// branch, a pack's lanes are tested together.)
#[inline(always)]
fn out_of_bounds<R: Real>(cap: R, t: R) -> bool {
    !t.is_finite() | (t.abs() > cap)
}

/// Whether a trajectory in bounds, with a finite gradient norm, has
/// converged: its gradient is small, or its iterate stopped moving.
#[inline(always)]
fn converged<R: Real>(tol: R, grad_norm: R, last_step: R) -> bool {
    (grad_norm <= tol) | (last_step == R::zero())
}

/// `classify` for the N lanes of a pack at once, as outcome codes (RUNNING
/// where the lane goes on): lane l's code is `classify`'s verdict for θ in
/// lane l of `theta` at iteration `at[l]`, ‖∇f‖ in lane l of `grad_norm` (the
/// square root of ‖∇f‖² summed as `classify` sums it),
/// fingerprints s[k] and s[k−1] in lane l of `now` and `before`, and period
/// `periods[l]` (0 for none; read only where the lane has not converged).
/// The same comparisons, lane by lane, without branches: one lane at a time,
/// `classify` was the largest part of ending a pack of a fixed-work sweep.
#[inline(always)]
pub fn classify_lanes<R: Real, const N: usize>(
    rule: &StopRule,
    at: &[u64; N],
    theta: &[Pack<R, N>],
    grad_norm: &[R; N],
    now: &[R; N],
    before: &[R; N],
    periods: &[u32; N],
) -> [u32; N] {
    let cap = R::of(rule.divergence_cap);
    let tol = R::of(rule.tol_grad);
    let mut outside = [false; N];
    for coordinate in theta {
        for (out, &t) in outside.iter_mut().zip(&coordinate.0) {
            *out |= out_of_bounds(cap, t);
        }
    }
    let mut code = [RUNNING; N];
    for l in 0..N {
        let grad_norm = grad_norm[l];
        let last_step = (now[l] - before[l]).abs();
        code[l] = if outside[l] | !grad_norm.is_finite() {
            DIVERGED
        } else if converged(tol, grad_norm, last_step) {
            CONVERGED
        } else if periods[l] > 0 {
            OSCILLATING
        } else if at[l] >= rule.max_iters {
            UNDECIDED
        } else {
            RUNNING
        };
    }
    code
}

/// How close the fingerprints one period apart must come for an orbit:
/// relative to the last step |s[k] − s[k−1]|.
#[inline(always)]
pub fn oscillation_limit<R: Real>(rule: &StopRule, last_step: R) -> R {
    R::of(rule.osc_rel_tol) * last_step
}

/// The shortest period p (2 ≤ p ≤ max_period, 2p ≤ `depth`) for which every
/// one of the last p fingerprints is within `limit` of the one p before it.
#[inline(always)]
pub fn oscillation_period<R: Real>(
    rule: &StopRule,
    depth: usize,
    limit: R,
    past: impl Fn(usize) -> R,
) -> Option<u32> {
    let [p] = oscillation_periods(rule, depth, &[limit], |j| [past(j)]);
    (p > 0).then_some(p)
}

/// `oscillation_period` for N trajectories at once, 0 where there is none:
/// `past(j)` gives the N fingerprints s[k − j], `limit` their limits. The
/// lane engine finds every lane's period in one pass over its history, in
/// vector registers, where one lane at a time the search was most of the
/// time of a sweep with early exit.
#[inline(always)]
pub fn oscillation_periods<R: Real, const N: usize, P: AsRef<[R]>>(
    rule: &StopRule,
    depth: usize,
    limit: &[R; N],
    past: impl Fn(usize) -> P,
) -> [u32; N] {
    let mut period = [0u32; N];
    let mut p = 2usize;
    while p <= rule.max_period as usize && 2 * p <= depth {
        let mut within = [true; N];
        for j in 0..p {
            let (now, then) = (past(j), past(j + p));
            let pairs = now.as_ref().iter().zip(then.as_ref());
            for ((w, (a, b)), l) in within.iter_mut().zip(pairs).zip(limit) {
                *w &= (*a - *b).abs() <= *l;
            }
        }
        for (found, w) in period.iter_mut().zip(within) {
            if *found == 0 && w {
                *found = p as u32;
            }
        }
        p += 1;
    }
    period
}

/// The gradient step θ ← θ − δ∇f(θ), given ∇f(θ): the one every engine takes,
/// for one trajectory or a pack of them.
#[inline(always)]
pub fn update<A: Arith>(theta: &mut [A], gradient: &[A], step_size: A) {
    for (t, &g) in theta.iter_mut().zip(gradient) {
        *t = *t - step_size * g;
    }
}

/// The velocity's part of an optimizer with momentum: β, and the velocity
/// v[k] = θ[k] − θ[k−1] with the look-ahead point y that Nesterov's gradient
/// is taken at.
pub struct Momentum<'a, R> {
    pub kind: OptimizerKind,
    pub beta: R,
    pub velocity: &'a mut [R],
    pub ahead: &'a mut [R],
}

/// The step θ ← θ − Dg with a step size per parameter (`steps`, D's
/// diagonal), as `update` takes it with one.
#[inline(always)]
pub fn update_each<R: Real>(theta: &mut [R], gradient: &[R], steps: &[R]) {
    for ((t, &g), &d) in theta.iter_mut().zip(gradient).zip(steps) {
        *t = *t - d * g;
    }
}

/// One step of momentum or Nesterov (see `crate::optimizer`), in the order of
/// operations of `shaders/shared/descend.wgsl`: v ← βv − δg, θ ← θ + v, with
/// g = ∇f(θ) (momentum) or ∇f(θ + βv) (Nesterov); δ is the parameter's own
/// where `steps` gives one per parameter.
#[inline(always)]
pub fn momentum_step<R: Real>(
    m: &mut Momentum<'_, R>,
    theta: &mut [R],
    gradient: &mut [R],
    work: &mut [R],
    step_size: R,
    steps: Option<&[R]>,
    mut gradient_of: impl FnMut(&[R], &mut [R], &mut [R]),
) {
    if m.kind == OptimizerKind::Nesterov {
        for ((y, &t), &v) in m.ahead.iter_mut().zip(theta.iter()).zip(m.velocity.iter()) {
            *y = t + m.beta * v;
        }
        gradient_of(m.ahead, gradient, work);
    } else {
        gradient_of(theta, gradient, work);
    }
    for (i, ((t, v), &g)) in theta
        .iter_mut()
        .zip(m.velocity.iter_mut())
        .zip(gradient.iter())
        .enumerate()
    {
        let d = steps.map_or(step_size, |s| s[i]);
        *v = m.beta * *v - d * g;
        *t = *t + *v;
    }
}

/// What a check compares with `tol_grad`: ‖∇f(θ)‖, and with momentum the
/// larger of it and ‖v‖/δ, since a trajectory that passes through a minimum
/// at speed has a small gradient there but has not converged. A NaN gradient
/// norm stays NaN (the check calls it divergence).
#[inline(always)]
pub fn residual<R: Real>(grad_norm: R, velocity_norm: R, step_size: R) -> R {
    let moving = velocity_norm / step_size;
    if moving > grad_norm {
        moving
    } else {
        grad_norm
    }
}

/// Runs gradient descent from `theta` (overwritten with the final iterate).
///
/// `gradient(θ, g, work)` writes ∇f(θ) into g. This is the reference every GPU
/// kernel is held against.
pub fn descend<R: Real>(
    theta: &mut [R],
    step_size: R,
    rule: &StopRule,
    weights: &[R],
    scratch: &mut Scratch<R>,
    gradient: impl FnMut(&[R], &mut [R], &mut [R]),
) -> TrajectoryEnd {
    descend_with(
        theta,
        step_size,
        None,
        R::zero(),
        rule,
        weights,
        scratch,
        gradient,
    )
}

/// `descend` with `rule.optimizer`, whose momentum coefficient is `beta`,
/// and with a step size per parameter where `steps` gives them (then
/// `step_size` is unused); the velocity starts at zero.
#[allow(clippy::too_many_arguments)]
pub fn descend_with<R: Real>(
    theta: &mut [R],
    step_size: R,
    steps: Option<&[R]>,
    beta: R,
    rule: &StopRule,
    weights: &[R],
    scratch: &mut Scratch<R>,
    gradient: impl FnMut(&[R], &mut [R], &mut [R]),
) -> TrajectoryEnd {
    descend_observed(
        theta,
        step_size,
        steps,
        beta,
        rule,
        weights,
        scratch,
        gradient,
        &mut |_, _| {},
    )
}

/// `descend_with`, handing `observe(k, θ[k])` the iterate at the start and
/// after every block, before its check (for traces of the iterates).
#[allow(clippy::too_many_arguments)]
pub fn descend_observed<R: Real>(
    theta: &mut [R],
    step_size: R,
    steps: Option<&[R]>,
    beta: R,
    rule: &StopRule,
    weights: &[R],
    scratch: &mut Scratch<R>,
    mut gradient: impl FnMut(&[R], &mut [R], &mut [R]),
    observe: &mut dyn FnMut(u64, &[R]),
) -> TrajectoryEnd {
    observe(0, theta);
    let momentum = rule.optimizer.has_velocity();
    if momentum {
        scratch.velocity.clear();
        scratch.velocity.resize(theta.len(), R::zero());
        scratch.ahead.resize(theta.len(), R::zero());
    }
    let mut k: u64 = 0;
    loop {
        let block = u64::from(rule.check_every).min(rule.max_iters - k);
        let first_read = rule.first_fingerprint_read(k, block);
        if k >= first_read {
            scratch.record(k, fingerprint(weights, theta));
        }
        for _ in 0..block {
            if momentum {
                let mut m = Momentum {
                    kind: rule.optimizer,
                    beta,
                    velocity: &mut scratch.velocity,
                    ahead: &mut scratch.ahead,
                };
                momentum_step(
                    &mut m,
                    theta,
                    &mut scratch.gradient,
                    &mut scratch.work,
                    step_size,
                    steps,
                    &mut gradient,
                );
            } else {
                gradient(theta, &mut scratch.gradient, &mut scratch.work);
                match steps {
                    Some(steps) => update_each(theta, &scratch.gradient, steps),
                    None => update(theta, &scratch.gradient, step_size),
                }
            }
            k += 1;
            if k >= first_read {
                scratch.record(k, fingerprint(weights, theta));
            }
        }
        observe(k, theta);
        if !rule.early_exit && k < rule.max_iters {
            continue;
        }
        let depth = (block as usize + 1).min(scratch.ring);
        let Scratch {
            gradient: g,
            work,
            history,
            ring,
            velocity,
            ..
        } = scratch;
        let past = |j: usize| history[(k as usize).wrapping_sub(j) & (*ring - 1)];
        let verdict = classify(
            rule,
            k,
            || theta.iter().copied(),
            || {
                gradient(theta, g, work);
                let norm = strided_sum(g.len(), |i| g[i] * g[i]).sqrt();
                match (momentum, steps) {
                    (false, _) => norm,
                    (true, None) => {
                        let v = &velocity[..];
                        let speed = strided_sum(v.len(), |i| v[i] * v[i]).sqrt();
                        residual(norm, speed, step_size)
                    }
                    // ‖D⁻¹v‖, which is ‖∇f‖ where GD's velocity is −D∇f.
                    (true, Some(d)) => {
                        let v = &velocity[..];
                        let speed = strided_sum(v.len(), |i| (v[i] / d[i]) * (v[i] / d[i])).sqrt();
                        residual(norm, speed, R::one())
                    }
                }
            },
            past,
            |limit| oscillation_period(rule, depth, limit, past),
        );
        if let Some((outcome, period)) = verdict {
            return TrajectoryEnd {
                outcome,
                period,
                iterations: k,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Periods found for many trajectories at once are each one's own, for
    /// orbits of every period up to max_period and beyond, exact and with
    /// noise inside and outside the limit, at every depth.
    #[test]
    fn periods_found_together_are_each_trajectorys_own() {
        const N: usize = 64;
        let r = rule(1000);
        // Lane l: an orbit of period 1 + l % 20, its points perturbed by
        // (l / 20) steps of 1e-9 relative (the limit is 1e-7 × last step).
        let history: Vec<[f64; N]> = (0..32)
            .map(|j| {
                std::array::from_fn(|l| {
                    let period = 1 + l % 20;
                    let noise = 1e-9 * (l / 20) as f64 * ((j * 7 + l) % 5) as f64;
                    ((j % period) as f64).sin() * (1.0 + noise)
                })
            })
            .collect();
        let mut kinds = std::collections::HashSet::new();
        for depth in [3, 4, 9, 17, 32] {
            let past = |j: usize| &history[j];
            let limit: [f64; N] = std::array::from_fn(|l| {
                oscillation_limit(&r, (history[0][l] - history[1][l]).abs())
            });
            let together = oscillation_periods(&r, depth, &limit, past);
            for l in 0..N {
                let own = oscillation_period(&r, depth, limit[l], |j| history[j][l]);
                assert_eq!(together[l], own.unwrap_or(0), "lane {l}, depth {depth}");
                kinds.insert(together[l]);
            }
        }
        // Found and not: several periods, and none (period 1, > 16, noisy).
        assert!(kinds.len() >= 8 && kinds.contains(&0), "{kinds:?}");
    }

    /// Lane by lane, the verdicts found for a pack are `classify`'s: every
    /// outcome and its precedence (out of bounds, a non-finite or small
    /// gradient, an iterate that stopped moving, an orbit, the budget spent).
    #[test]
    fn verdicts_found_together_are_each_lanes_own() {
        const N: usize = 128;
        let r = rule(1000);
        let special = [0.0, 1.0, -2.5, 1e7, -1e7, f64::NAN, f64::INFINITY];
        // Lane l mixes the special values at different rates, so the lanes
        // cover their combinations (two coordinates, so either can be out).
        let pick = |l: usize, rate: usize| special[(l / rate) % special.len()];
        let theta: Vec<Pack<f64, N>> = (0..2)
            .map(|i| {
                Pack(std::array::from_fn(|l| {
                    if l % 2 == i {
                        pick(l, 7)
                    } else {
                        0.5
                    }
                }))
            })
            .collect();
        let grad_squared: [f64; N] =
            std::array::from_fn(|l| [1e-22, 4.0, f64::NAN, f64::INFINITY, 1e-19][l % 5]);
        let now: [f64; N] = std::array::from_fn(|l| [0.25, 0.5][l % 2]);
        let before: [f64; N] = std::array::from_fn(|l| [0.25, 0.5, 0.75][l % 3]);
        let periods: [u32; N] = std::array::from_fn(|l| [0, 3][(l / 3) % 2]);
        let at: [u64; N] = std::array::from_fn(|l| [64, 1000][(l / 5) % 2]);
        let grad_norm = grad_squared.map(f64::sqrt);
        let verdicts = classify_lanes(&r, &at, &theta, &grad_norm, &now, &before, &periods);
        let mut seen = std::collections::HashSet::new();
        for l in 0..N {
            let own = classify(
                &r,
                at[l],
                || theta.iter().map(|t| t.0[l]),
                || grad_squared[l].sqrt(),
                |j| [now[l], before[l]][j],
                |_| (periods[l] > 0).then_some(periods[l]),
            );
            assert_eq!(
                Outcome::from_code(verdicts[l]),
                own.map(|v| v.0),
                "lane {l}"
            );
            seen.insert(verdicts[l]);
        }
        assert_eq!(seen.len(), 5, "every code, RUNNING included: {seen:?}");
    }

    fn rule(max_iters: u64) -> StopRule {
        StopRule {
            max_iters,
            check_every: 64,
            tol_grad: 1e-10,
            osc_rel_tol: 1e-7,
            max_period: 16,
            divergence_cap: 1e6,
            early_exit: true,
            optimizer: OptimizerKind::Gd,
            step_slots: 1,
        }
    }

    /// f(x) = ½ a x²: GD multiplies x by (1 − δa) each step.
    fn run_quadratic(a: f64, step: f64, max_iters: u64) -> TrajectoryEnd {
        let r = rule(max_iters);
        let mut scratch = Scratch::new(1, 0, &r);
        let mut theta = [1.0f64];
        descend(&mut theta, step, &r, &[1.0], &mut scratch, |t, g, _| {
            g[0] = a * t[0]
        })
    }

    #[test]
    fn quadratic_converges_below_two_over_a_and_diverges_above() {
        assert_eq!(
            run_quadratic(4.0, 0.49, 100_000).outcome,
            Outcome::Converged
        );
        assert_eq!(run_quadratic(4.0, 0.51, 100_000).outcome, Outcome::Diverged);
    }

    /// f(x) = ½ a x² under momentum and Nesterov with β = 0.5: stable below
    /// δa = 2(1+β) = 3 and (2+2β)/(1+2β) = 1.5, unstable above.
    #[test]
    fn momentum_and_nesterov_converge_below_their_bounds_and_diverge_above() {
        for (kind, bound) in [
            (OptimizerKind::Momentum, 3.0),
            (OptimizerKind::Nesterov, 1.5),
        ] {
            let mut r = rule(1_000_000);
            r.optimizer = kind;
            let run = |step: f64| {
                let mut scratch = Scratch::new(1, 0, &r);
                let mut theta = [1.0f64];
                descend_with(
                    &mut theta,
                    step,
                    None,
                    0.5,
                    &r,
                    &[1.0],
                    &mut scratch,
                    |t, g, _| g[0] = t[0],
                )
                .outcome
            };
            assert_eq!(run(0.98 * bound), Outcome::Converged, "{kind:?}");
            assert_eq!(run(1.02 * bound), Outcome::Diverged, "{kind:?}");
        }
    }

    /// Under momentum a check at a point where the gradient is below tol_grad
    /// but the velocity is not does not call the trajectory converged.
    #[test]
    fn a_small_gradient_at_speed_is_not_convergence() {
        assert_eq!(residual(1e-12, 0.5, 0.1), 5.0);
        assert_eq!(residual(2.0, 0.1, 0.1), 2.0);
        assert!(residual(f64::NAN, 0.1, 0.1).is_nan());
    }

    #[test]
    fn slow_alternating_convergence_is_not_an_orbit() {
        // Multiplier 1 − δa = −0.998: x alternates in sign and shrinks slowly.
        let end = run_quadratic(1.0, 1.998, 1_000_000);
        assert_eq!(end.outcome, Outcome::Converged);
    }

    #[test]
    fn exact_two_cycle_is_oscillating_with_period_two() {
        // δa = 2 exactly: x → −x forever.
        let end = run_quadratic(1.0, 2.0, 10_000);
        assert_eq!((end.outcome, end.period), (Outcome::Oscillating, 2));
        assert_eq!(end.iterations, 64, "detected at the first check");
    }

    #[test]
    fn a_two_dimensional_orbit_is_seen_through_its_fingerprint() {
        // f(x, y) = ½(x² + 4y²) at δ = 0.5: x contracts by ½ per step while y
        // flips sign forever (multiplier 1 − 0.5·4 = −1).
        let r = rule(100_000);
        let weights = fingerprint_weights::<f64>(2);
        let mut scratch = Scratch::new(2, 0, &r);
        let mut theta = [1.0, 1.0];
        let end = descend(&mut theta, 0.5, &r, &weights, &mut scratch, |t, g, _| {
            g[0] = t[0];
            g[1] = 4.0 * t[1];
        });
        assert_eq!((end.outcome, end.period), (Outcome::Oscillating, 2));
    }

    /// θ ↦ Rθ, a rotation by 2π/16, has period 16 = max_period: seeing it
    /// takes all 2·16 fingerprints before the check, so this fails if the
    /// fingerprints the CPU skips include one the check reads.
    #[test]
    fn the_longest_period_is_seen_with_or_without_early_exit() {
        for early_exit in [true, false] {
            let mut r = rule(1000);
            r.early_exit = early_exit;
            let weights = fingerprint_weights::<f64>(2);
            let mut scratch = Scratch::new(2, 0, &r);
            let mut theta = [1.0, 0.0];
            let (sin, cos) = (std::f64::consts::PI / 8.0).sin_cos();
            // With δ = 1, θ − δg = Rθ for g = θ − Rθ.
            let end = descend(&mut theta, 1.0, &r, &weights, &mut scratch, |t, g, _| {
                g[0] = t[0] - (cos * t[0] - sin * t[1]);
                g[1] = t[1] - (sin * t[0] + cos * t[1]);
            });
            assert_eq!(
                (end.outcome, end.period),
                (Outcome::Oscillating, 16),
                "early_exit = {early_exit}"
            );
        }
    }

    #[test]
    fn without_early_exit_every_trajectory_runs_the_full_budget() {
        let mut r = rule(1000);
        r.early_exit = false;
        let mut scratch = Scratch::new(1, 0, &r);
        let mut theta = [1.0f64];
        let end = descend(&mut theta, 0.49, &r, &[1.0], &mut scratch, |t, g, _| {
            g[0] = 4.0 * t[0]
        });
        assert_eq!((end.outcome, end.iterations), (Outcome::Converged, 1000));
    }

    #[test]
    fn a_budget_that_runs_out_is_undecided() {
        let end = run_quadratic(1.0, 1e-6, 1000);
        assert_eq!(end.outcome, Outcome::Undecided);
        assert_eq!(end.iterations, 1000);
    }
}
