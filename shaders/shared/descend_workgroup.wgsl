// Gradient descent with one workgroup per trajectory, the twin of `descend` in
// src/stopping.rs for models too large for one invocation. The model file
// supplies `model_gradient(lane)`, which reads θ from the region at W_OFF and
// leaves ∇f at G_OFF (`shaders/shared/region.wgsl`), and `model_prepare`
// (loads what the model keeps in workgroup memory for the whole dispatch,
// such as samples); the generated header the sizes, the offsets and
// FINGERPRINT_OFF, where the fingerprint's weights start in the constants.
//
// Lane 0 keeps the fingerprint ring and classifies, in the same order of
// operations as the CPU; the verdict reaches every lane through workgroup
// memory, so every barrier stays in uniform control flow.
//
// With MOMENTUM (heavy ball, or NESTEROV), β follows the step sizes in
// `step_size` (at stride + t), and each lane keeps the velocity of its
// coordinates in the trajectory's slice of `scratch` at VELOCITY_OFF (and,
// with Nesterov, θ itself at POINT_OFF while the region holds the look-ahead
// point the gradient is taken at); the twin of `momentum_step` in
// src/stopping.rs.
//
// A dispatch advances a trajectory by at most `params.steps` iterations, and
// may stop inside a block of CHECK_EVERY: blocks start at multiples of
// CHECK_EVERY, as on the CPU, and the fingerprint ring waits in the
// trajectory's slice of `scratch` (at HISTORY_OFF of SCRATCH_LEN floats)
// between dispatches. The host bounds the steps where the driver bounds the
// loop iterations of one dispatch (see `steps_per_dispatch` in
// src/shaders.rs).

#import shared/common
#import shared/stopping
#import shared/state
#import shared/region
#import model

fn fingerprint_weight(i: u32) -> real {
    return model_constants[FINGERPRINT_OFF + i];
}

// (status or verdict code, iteration, period, unused), shared by the lanes.
var<workgroup> shared_state: vec4<u32>;

// Parts of the sums over θ, one per lane (see `strided_sum` in src/stopping.rs),
// and whether any coordinate in a part is out of bounds.
var<workgroup> parts: array<real, PARTS>;
var<workgroup> part_out_of_bounds: array<u32, PARTS>;

// Every lane calls this; afterwards parts[p] holds part p of Σ rᵢθᵢ.
fn fingerprint_parts(lane: u32) {
    for (var p = lane; p < min(PARTS, DIM); p += LANES) {
        var part: real = 0.0;
        for (var i = p; i < DIM; i += PARTS) {
            part = part + fingerprint_weight(i) * region_get(W_OFF + i);
        }
        parts[p] = part;
    }
    sync();
}

// Every lane calls this; afterwards parts[p] holds part p of ‖g‖² and
// part_out_of_bounds[p] whether a coordinate of that part is beyond the cap.
fn check_parts(lane: u32) {
    for (var p = lane; p < min(PARTS, DIM); p += LANES) {
        var part: real = 0.0;
        var out_of_bounds = 0u;
        for (var i = p; i < DIM; i += PARTS) {
            part = part + region_get(G_OFF + i) * region_get(G_OFF + i);
            if (beyond_cap(region_get(W_OFF + i))) {
                out_of_bounds = 1u;
            }
        }
        parts[p] = part;
        part_out_of_bounds[p] = out_of_bounds;
    }
    sync();
}

#ifdef MOMENTUM
// Every lane calls this; afterwards parts[p] holds part p of ‖v‖².
fn velocity_parts(lane: u32, t: u32) {
    // The velocities other lanes wrote, in storage.
    storageBarrier();
    for (var p = lane; p < min(PARTS, DIM); p += LANES) {
        var part: real = 0.0;
        for (var i = p; i < DIM; i += PARTS) {
            let v = scratch[t * SCRATCH_LEN + VELOCITY_OFF + i];
#ifdef PER_LAYER
            let q = v / delta_at(t, i);
            part = part + q * q;
#else
            part = part + v * v;
#endif
        }
        parts[p] = part;
    }
    sync();
}
#endif

#ifdef PER_LAYER
// The step size of parameter i of trajectory t.
fn delta_at(t: u32, i: u32) -> real {
    return step_size[layer_of[i] * params.stride + t];
}
#endif

// Lane 0 adds the parts in order.
fn sum_parts() -> real {
    var total: real = 0.0;
    for (var p = 0u; p < min(PARTS, DIM); p++) {
        total = total + parts[p];
    }
    return total;
}

@compute @workgroup_size(LANES)
fn descend_workgroup_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let slot = wid.x + wid.y * groups.x;
    if (slot >= params.count) {
        return;
    }
    let t = index[slot];
    if (lane == 0u) {
        shared_state = vec4<u32>(status[t], iterations[t], 0u, 0u);
    }
    let start = workgroupUniformLoad(&shared_state);
    if (start.x != RUNNING) {
        return;
    }
    set_region_base(t);
    model_prepare(lane);
    for (var i = lane; i < DIM; i += LANES) {
        region_set(W_OFF + i, theta[t * DIM + i]);
    }
    sync();
    let delta = step_size[t];
#ifdef MOMENTUM
    let beta = step_size[STEP_SLOTS * params.stride + t];
#endif
    var k = start.y;
    var hist: array<real, RING>;
    if (lane == 0u) {
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
            fingerprint_parts(lane);
            if (lane == 0u) {
                hist[k & RING_MASK] = sum_parts();
            }
        }
        let stop = min(end, last);
        for (; k < stop; k += 1u) {
#ifdef NESTEROV
            for (var i = lane; i < DIM; i += LANES) {
                let x = region_get(W_OFF + i);
                scratch[t * SCRATCH_LEN + POINT_OFF + i] = x;
                region_set(W_OFF + i, x + beta * scratch[t * SCRATCH_LEN + VELOCITY_OFF + i]);
            }
            sync();
#endif
            model_gradient(lane);
#ifdef MOMENTUM
            for (var i = lane; i < DIM; i += LANES) {
                let at = t * SCRATCH_LEN + VELOCITY_OFF + i;
#ifdef PER_LAYER
                let v = beta * scratch[at] - delta_at(t, i) * region_get(G_OFF + i);
#else
                let v = beta * scratch[at] - delta * region_get(G_OFF + i);
#endif
                scratch[at] = v;
#ifdef NESTEROV
                region_set(W_OFF + i, scratch[t * SCRATCH_LEN + POINT_OFF + i] + v);
#else
                region_set(W_OFF + i, region_get(W_OFF + i) + v);
#endif
            }
#else
            for (var i = lane; i < DIM; i += LANES) {
#ifdef PER_LAYER
                region_set(W_OFF + i, region_get(W_OFF + i) - delta_at(t, i) * region_get(G_OFF + i));
#else
                region_set(W_OFF + i, region_get(W_OFF + i) - delta * region_get(G_OFF + i));
#endif
            }
#endif
            sync();
            if (k + 1u >= first_read) {
                fingerprint_parts(lane);
                if (lane == 0u) {
                    hist[(k + 1u) & RING_MASK] = sum_parts();
                }
            }
        }
        if (k < end) {
            // This dispatch's steps are spent inside the block.
            break;
        }
        if (EARLY_EXIT || k >= MAX_ITERS) {
            model_gradient(lane);
            check_parts(lane);
            var norm: real = 0.0;
            if (lane == 0u) {
                norm = sqrt(sum_parts());
            }
#ifdef MOMENTUM
            // Lane 0 has read the gradient's parts before they are replaced.
            sync();
            velocity_parts(lane, t);
            if (lane == 0u) {
#ifdef PER_LAYER
                norm = residual(norm, sqrt(sum_parts()), 1.0);
#else
                norm = residual(norm, sqrt(sum_parts()), delta);
#endif
            }
#endif
            if (lane == 0u) {
                var out_of_bounds = false;
                for (var p = 0u; p < min(PARTS, DIM); p++) {
                    out_of_bounds = out_of_bounds || part_out_of_bounds[p] != 0u;
                }
                let v = classify(&hist, k, min(block + 1u, RING), out_of_bounds, norm);
                shared_state = vec4<u32>(v.x, k, v.y, 0u);
            }
            let decided = workgroupUniformLoad(&shared_state);
            verdict = vec2<u32>(decided.x, decided.z);
            if (verdict.x != RUNNING) {
                break;
            }
        }
        if (k >= last) {
            break;
        }
    }
    if (lane == 0u) {
        for (var i = 0u; i < RING; i++) {
            scratch[t * SCRATCH_LEN + HISTORY_OFF + i] = hist[i];
        }
    }
    for (var i = lane; i < DIM; i += LANES) {
        theta[t * DIM + i] = region_get(W_OFF + i);
    }
    if (lane == 0u) {
        iterations[t] = k;
        if (verdict.x == RUNNING) {
            atomicAdd(&active_count, 1u);
        } else {
            status[t] = verdict.x | (verdict.y << 8u);
        }
    }
}
