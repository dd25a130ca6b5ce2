// The stopping rule, the twin of `descend` in src/stopping.rs. Needs RING,
// RING_MASK, MAX_PERIOD, MAX_ITERS, TOL_GRAD and OSC_REL_TOL from the generated
// header. `hist` holds the fingerprints s = Σ rᵢθᵢ of the current block's
// iterates at slot (iteration & RING_MASK); `depth` of them are valid.
// `out_of_bounds` says whether any coordinate of θ is non-finite or beyond the
// divergence cap. Returns (code, period).
// What a check compares with TOL_GRAD under an optimizer with a velocity:
// the larger of ‖∇f‖ and ‖v‖/δ, the twin of `residual` in src/stopping.rs.
fn residual(grad_norm: real, velocity_norm: real, delta: real) -> real {
    let moving = velocity_norm / delta;
    if (moving > grad_norm) {
        return moving;
    }
    return grad_norm;
}

fn classify(hist: ptr<function, array<real, RING>>, k: u32, depth: u32, out_of_bounds: bool, grad_norm: real) -> vec2<u32> {
    if (out_of_bounds || !is_finite(grad_norm)) {
        return vec2<u32>(DIVERGED, 0u);
    }
    let last_step = abs((*hist)[k & RING_MASK] - (*hist)[(k - 1u) & RING_MASK]);
    if (grad_norm <= TOL_GRAD || last_step == 0.0) {
        return vec2<u32>(CONVERGED, 0u);
    }
    // A periodic orbit: the last p fingerprints repeat the p before them, to
    // within a fraction of the orbit's own step.
    let limit = OSC_REL_TOL * last_step;
    for (var p = 2u; p <= MAX_PERIOD && 2u * p <= depth; p++) {
        var repeats = true;
        for (var j = 0u; j < p; j++) {
            let a = (*hist)[(k - j) & RING_MASK];
            let b = (*hist)[(k - j - p) & RING_MASK];
            if (!(abs(a - b) <= limit)) {
                repeats = false;
                break;
            }
        }
        if (repeats) {
            return vec2<u32>(OSCILLATING, p);
        }
    }
    if (k >= MAX_ITERS) {
        return vec2<u32>(UNDECIDED, 0u);
    }
    return vec2<u32>(RUNNING, 0u);
}

// The first iterate of the block ending at iteration `end` whose fingerprint
// the check after it reads: the last min(block + 1, RING) iterates, or none
// (end + 1) when no check follows the block (early exit off, budget not
// spent). `first_fingerprint_read` in src/stopping.rs; the kernels skip the
// fingerprints before it, as the CPU does. end ≤ MAX_ITERS < u32::MAX.
fn first_fingerprint_read(block: u32, end: u32) -> u32 {
    if (!EARLY_EXIT && end < MAX_ITERS) {
        return end + 1u;
    }
    return end + 1u - min(block + 1u, RING);
}

// Whether a coordinate puts the trajectory out of bounds.
fn beyond_cap(v: real) -> bool {
    return !is_finite(v) || abs(v) > DIVERGENCE_CAP;
}
