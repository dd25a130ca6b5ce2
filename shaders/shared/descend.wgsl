// Gradient descent with one invocation per trajectory, the twin of `descend` in
// src/stopping.rs. The model file supplies `gradient(theta, g)` and the
// generated header DIM, FINGERPRINT (the fingerprint's weights) and the
// stopping constants.
//
// θ is stored structure-of-arrays (coordinate i of trajectory t at
// i·stride + t) so that neighbouring invocations read neighbouring words.
// Invocations map to trajectories through `index`, which the host compacts to
// the running trajectories once most have finished. Each
// dispatch advances every running trajectory by up to `params.steps`
// iterations, classifies it after each block of CHECK_EVERY, and counts the
// trajectories still running in `active_count`.
//
// With MOMENTUM (heavy ball, or NESTEROV), β follows the step sizes in
// `step_size` (at stride + t), and the velocity waits in the trajectory's
// DIM reals of `scratch` at VELOCITY_OFF between dispatches; the twin of
// `momentum_step` in src/stopping.rs.
//
// A dispatch may stop inside a block (on a CPU adapter, where the host bounds
// the steps of a dispatch by llvmpipe's loop limit: see `steps_per_dispatch`
// in src/shaders.rs): blocks still start at multiples of CHECK_EVERY, as on
// the CPU, and the fingerprint ring waits in the trajectory's RING floats of
// `scratch` (at HISTORY_OFF of SCRATCH_LEN reals) between such dispatches. A dispatch of whole blocks never touches
// `scratch`.

#import shared/common
#import shared/stopping
#import shared/state
#import model

fn fingerprint_weight(i: u32) -> real {
    return FINGERPRINT[i];
}

// s = Σ rᵢθᵢ, in the order of `strided_sum` in src/stopping.rs. Up to PARTS
// parameters that order is the plain one (each part holds one term, and
// 0 + x = x exactly), which keeps the loop simple for the common sizes.
fn fingerprint(w: ptr<function, array<real, DIM>>) -> real {
    var total: real = 0.0;
    if (DIM <= PARTS) {
        for (var i = 0u; i < DIM; i++) {
            total = total + fingerprint_weight(i) * (*w)[i];
        }
        return total;
    }
    for (var p = 0u; p < PARTS; p++) {
        var part: real = 0.0;
        for (var i = p; i < DIM; i += PARTS) {
            part = part + fingerprint_weight(i) * (*w)[i];
        }
        total = total + part;
    }
    return total;
}

// ‖g‖², in the same order.
fn squared_norm(g: ptr<function, array<real, DIM>>) -> real {
    var total: real = 0.0;
    if (DIM <= PARTS) {
        for (var i = 0u; i < DIM; i++) {
            total = total + (*g)[i] * (*g)[i];
        }
        return total;
    }
    for (var p = 0u; p < PARTS; p++) {
        var part: real = 0.0;
        for (var i = p; i < DIM; i += PARTS) {
            part = part + (*g)[i] * (*g)[i];
        }
        total = total + part;
    }
    return total;
}

#ifdef PER_LAYER
// ‖D⁻¹v‖², in the same order: the speed a check compares under momentum with
// a step size per layer.
fn slowed_squared_norm(v: ptr<function, array<real, DIM>>, d: ptr<function, array<real, STEP_SLOTS>>) -> real {
    var total: real = 0.0;
    if (DIM <= PARTS) {
        for (var i = 0u; i < DIM; i++) {
            let q = (*v)[i] / (*d)[layer_of[i]];
            total = total + q * q;
        }
        return total;
    }
    for (var p = 0u; p < PARTS; p++) {
        var part: real = 0.0;
        for (var i = p; i < DIM; i += PARTS) {
            let q = (*v)[i] / (*d)[layer_of[i]];
            part = part + q * q;
        }
        total = total + part;
    }
    return total;
}
#endif

@compute @workgroup_size(WORKGROUP_SIZE)
fn descend_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= params.count) {
        return;
    }
    let t = index[gid.x];
    if (status[t] != RUNNING) {
        return;
    }
    var w: array<real, DIM>;
    for (var i = 0u; i < DIM; i++) {
        w[i] = theta[i * params.stride + t];
    }
    let delta = step_size[t];
#ifdef PER_LAYER
    var deltas: array<real, STEP_SLOTS>;
    for (var l = 0u; l < STEP_SLOTS; l++) {
        deltas[l] = step_size[l * params.stride + t];
    }
#endif
#ifdef MOMENTUM
    let beta = step_size[STEP_SLOTS * params.stride + t];
    var v: array<real, DIM>;
    for (var i = 0u; i < DIM; i++) {
        v[i] = scratch[t * SCRATCH_LEN + VELOCITY_OFF + i];
    }
#endif
    var k = iterations[t];
    var g: array<real, DIM>;
    var hist: array<real, RING>;
    if (k % CHECK_EVERY != 0u) {
        // The previous dispatch stopped inside this block.
        for (var i = 0u; i < RING; i++) {
            hist[i] = scratch[t * SCRATCH_LEN + HISTORY_OFF + i];
        }
    }
    // The iteration this dispatch stops at, at the latest (params.steps ≥ 1).
    let last = k + min(params.steps, MAX_ITERS - k);
    var verdict = vec2<u32>(RUNNING, 0u);
    loop {
        let first = k - k % CHECK_EVERY;
        let block = min(CHECK_EVERY, MAX_ITERS - first);
        let end = first + block;
        let first_read = first_fingerprint_read(block, end);
        if (k == first && k >= first_read) {
            hist[k & RING_MASK] = fingerprint(&w);
        }
        let stop = min(end, last);
        for (; k < stop; k += 1u) {
#ifdef MOMENTUM
#ifdef NESTEROV
            var y: array<real, DIM>;
            for (var i = 0u; i < DIM; i++) {
                y[i] = w[i] + beta * v[i];
            }
            gradient(&y, &g);
#else
            gradient(&w, &g);
#endif
            for (var i = 0u; i < DIM; i++) {
#ifdef PER_LAYER
                v[i] = beta * v[i] - deltas[layer_of[i]] * g[i];
#else
                v[i] = beta * v[i] - delta * g[i];
#endif
                w[i] = w[i] + v[i];
            }
#else
            gradient(&w, &g);
            for (var i = 0u; i < DIM; i++) {
#ifdef PER_LAYER
                w[i] = w[i] - deltas[layer_of[i]] * g[i];
#else
                w[i] = w[i] - delta * g[i];
#endif
            }
#endif
            if (k + 1u >= first_read) {
                hist[(k + 1u) & RING_MASK] = fingerprint(&w);
            }
        }
        if (k < end) {
            // This dispatch's steps are spent inside the block.
            for (var i = 0u; i < RING; i++) {
                scratch[t * SCRATCH_LEN + HISTORY_OFF + i] = hist[i];
            }
            break;
        }
        if (EARLY_EXIT || k >= MAX_ITERS) {
            var out_of_bounds = false;
            for (var i = 0u; i < DIM; i++) {
                out_of_bounds = out_of_bounds || beyond_cap(w[i]);
            }
            gradient(&w, &g);
            var norm = sqrt(squared_norm(&g));
#ifdef MOMENTUM
#ifdef PER_LAYER
            norm = residual(norm, sqrt(slowed_squared_norm(&v, &deltas)), 1.0);
#else
            norm = residual(norm, sqrt(squared_norm(&v)), delta);
#endif
#endif
            verdict = classify(&hist, k, min(block + 1u, RING), out_of_bounds, norm);
            if (verdict.x != RUNNING) {
                break;
            }
        }
        if (k >= last) {
            break;
        }
    }
    for (var i = 0u; i < DIM; i++) {
        theta[i * params.stride + t] = w[i];
    }
#ifdef MOMENTUM
    for (var i = 0u; i < DIM; i++) {
        scratch[t * SCRATCH_LEN + VELOCITY_OFF + i] = v[i];
    }
#endif
    iterations[t] = k;
    if (verdict.x == RUNNING) {
        atomicAdd(&active_count, 1u);
    } else {
        status[t] = verdict.x | (verdict.y << 8u);
    }
}
