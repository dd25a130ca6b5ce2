// Model `poly`: gradient descent on a 1-D polynomial, one invocation per
// trajectory. The twin of src/models/poly.rs (and `descend` in src/stopping.rs):
// x ← x − δ f'(x), with f' evaluated by Horner's rule in `gradient`, which the
// host generates with the coefficients baked in.
//
// Each dispatch advances every running trajectory by up to `params.blocks`
// blocks of CHECK_EVERY iterations, classifies it after each block, and counts
// the trajectories still running in `active_count`.

struct Params {
    blocks: u32,
    count: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> theta: array<f32>;
@group(0) @binding(2) var<storage, read> step_size: array<f32>;
@group(0) @binding(3) var<storage, read_write> status: array<u32>;
@group(0) @binding(4) var<storage, read_write> iterations: array<u32>;
@group(0) @binding(5) var<storage, read_write> active_count: atomic<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn poly_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if (t >= params.count) {
        return;
    }
    if (status[t] != RUNNING) {
        return;
    }
    var x = theta[t];
    let delta = step_size[t];
    var k = iterations[t];
    var hist: array<f32, RING>;
    var verdict = vec2<u32>(RUNNING, 0u);
    for (var b = 0u; b < params.blocks; b++) {
        let block = min(CHECK_EVERY, MAX_ITERS - k);
        hist[k & RING_MASK] = x;
        for (var i = 0u; i < block; i++) {
            x = x - delta * gradient(x);
            k += 1u;
            hist[k & RING_MASK] = x;
        }
        let depth = min(block + 1u, RING);
        verdict = classify_scalar(&hist, k, depth, x, gradient(x));
        if (verdict.x != RUNNING) {
            break;
        }
    }
    theta[t] = x;
    iterations[t] = k;
    if (verdict.x == RUNNING) {
        atomicAdd(&active_count, 1u);
    } else {
        status[t] = verdict.x | (verdict.y << 8u);
    }
}
