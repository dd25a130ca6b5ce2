// The stopping rule for a scalar state, the twin of `descend` in src/stopping.rs.
// Needs RING, RING_MASK, MAX_PERIOD, MAX_ITERS, TOL_GRAD, OSC_REL_TOL and
// DIVERGENCE_CAP from the generated header. `hist` holds the iterates of the
// current block at slot (iteration & RING_MASK); `depth` of them are valid.
// Returns (code, period).
fn classify_scalar(hist: ptr<function, array<f32, RING>>, k: u32, depth: u32, x: f32, g: f32) -> vec2<u32> {
    if (!is_finite(x) || abs(x) > DIVERGENCE_CAP) {
        return vec2<u32>(DIVERGED, 0u);
    }
    let grad_norm = sqrt(g * g);
    if (!is_finite(grad_norm)) {
        return vec2<u32>(DIVERGED, 0u);
    }
    let last_step = abs((*hist)[k & RING_MASK] - (*hist)[(k - 1u) & RING_MASK]);
    if (grad_norm <= TOL_GRAD || last_step == 0.0) {
        return vec2<u32>(CONVERGED, 0u);
    }
    // A periodic orbit: the last p iterates repeat the p before them, to within a
    // fraction of the orbit's own step.
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
