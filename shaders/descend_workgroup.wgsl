// Gradient descent with one workgroup per trajectory, the twin of `descend` in
// src/stopping.rs for models too large for one invocation. The model file
// supplies `model_gradient(lane)`, which reads θ from region[W_OFF..DIM] and
// leaves ∇f in region[G_OFF..]; the generated header supplies `region`,
// `set_region_base`, `model_prepare` (loads what the model keeps in workgroup
// memory for the whole dispatch, such as samples), `sync` and
// `fingerprint_weight`.
//
// Lane 0 keeps the fingerprint ring and classifies, in the same order of
// operations as the CPU; the verdict reaches every lane through workgroup
// memory, so every barrier stays in uniform control flow.

// (status or verdict code, iteration, period, unused), shared by the lanes.
var<workgroup> shared_state: vec4<u32>;

fn region_fingerprint() -> f32 {
    var s = 0.0f;
    for (var i = 0u; i < DIM; i++) {
        s = s + fingerprint_weight(i) * region[W_OFF + i];
    }
    return s;
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
        region[W_OFF + i] = theta[t * DIM + i];
    }
    sync();
    let delta = step_size[t];
    var k = start.y;
    var hist: array<f32, RING>;
    var verdict = vec2<u32>(RUNNING, 0u);
    for (var b = 0u; b < params.blocks; b++) {
        let block = min(CHECK_EVERY, MAX_ITERS - k);
        if (lane == 0u) {
            hist[k & RING_MASK] = region_fingerprint();
        }
        for (var n = 0u; n < block; n++) {
            model_gradient(lane);
            for (var i = lane; i < DIM; i += LANES) {
                region[W_OFF + i] = region[W_OFF + i] - delta * region[G_OFF + i];
            }
            sync();
            k += 1u;
            if (lane == 0u) {
                hist[k & RING_MASK] = region_fingerprint();
            }
        }
        if (!EARLY_EXIT && k < MAX_ITERS) {
            continue;
        }
        model_gradient(lane);
        if (lane == 0u) {
            var out_of_bounds = false;
            for (var i = 0u; i < DIM; i++) {
                out_of_bounds = out_of_bounds || beyond_cap(region[W_OFF + i]);
            }
            var squares = 0.0f;
            for (var i = 0u; i < DIM; i++) {
                squares = squares + region[G_OFF + i] * region[G_OFF + i];
            }
            let v = classify(&hist, k, min(block + 1u, RING), out_of_bounds, sqrt(squares));
            shared_state = vec4<u32>(v.x, k, v.y, 0u);
        }
        let decided = workgroupUniformLoad(&shared_state);
        verdict = vec2<u32>(decided.x, decided.z);
        if (verdict.x != RUNNING) {
            break;
        }
    }
    for (var i = lane; i < DIM; i += LANES) {
        theta[t * DIM + i] = region[W_OFF + i];
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
