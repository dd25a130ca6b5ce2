// Model `deep-linear`, the twin of src/models/deep_linear.rs. The gradient
// ∂f/∂W_j = S_jᵀ (P − R) Σ_x P_{j−1}ᵀ is computed in `region`, laid out as
// [W_1..W_L | P_1..P_L | S_1..S_L | E | TMP | G_1..G_L] (n × n row-major each),
// by LANES lanes that each take every LANES-th entry of a product and meet at
// `sync()` between products. Every entry is summed over m in order from zero,
// exactly as `matmul` on the CPU, so the lanes only change who computes an
// entry, never how. The generated header provides N, NN, LAYERS, LANES, the
// offsets and COVARIANCE.
//
// With one invocation per trajectory (PER_INVOCATION) the region is the
// invocation's own array and `gradient` copies θ in and ∇f out around
// `model_gradient` with one lane; in a workgroup the region is
// `shaders/shared/region.wgsl`'s.

#ifdef PER_INVOCATION
var<private> region: array<real, REGION_LEN>;

fn sync() {}

fn region_get(i: u32) -> real {
    return region[i];
}

fn region_set(i: u32, v: real) {
    region[i] = v;
}

fn gradient(w: ptr<function, array<real, DIM>>, g: ptr<function, array<real, DIM>>) {
    for (var i = 0u; i < DIM; i++) {
        region_set(W_OFF + i, (*w)[i]);
    }
    model_gradient(0u);
    for (var i = 0u; i < DIM; i++) {
        (*g)[i] = region_get(G_OFF + i);
    }
}
#else
fn model_prepare(lane: u32) {}
#endif

fn dl_matmul(dst: u32, a: u32, a_t: bool, b: u32, b_t: bool, lane: u32) {
    for (var idx = lane; idx < NN; idx += LANES) {
        let i = idx / N;
        let k = idx % N;
        var acc: real = 0.0;
        for (var m = 0u; m < N; m++) {
            var x = region_get(a + i * N + m);
            if (a_t) {
                x = region_get(a + m * N + i);
            }
            var y = region_get(b + m * N + k);
            if (b_t) {
                y = region_get(b + k * N + m);
            }
            acc = acc + x * y;
        }
        region_set(dst + idx, acc);
    }
}

// Reads W from region[W_OFF..] and leaves ∇f in region[G_OFF..].
fn model_gradient(lane: u32) {
    for (var idx = lane; idx < NN; idx += LANES) {
        region_set(PRE_OFF + idx, region_get(W_OFF + idx));
    }
    sync();
    for (var j = 1u; j < LAYERS; j++) {
        dl_matmul(PRE_OFF + j * NN, W_OFF + j * NN, false, PRE_OFF + (j - 1u) * NN, false, lane);
        sync();
    }
    for (var idx = lane; idx < NN; idx += LANES) {
        region_set(E_OFF + idx, region_get(PRE_OFF + (LAYERS - 1u) * NN + idx) - model_constants[idx]);
    }
    sync();
    if (COVARIANCE) {
        for (var idx = lane; idx < NN; idx += LANES) {
            let i = idx / N;
            let k = idx % N;
            var acc: real = 0.0;
            for (var m = 0u; m < N; m++) {
                acc = acc + region_get(E_OFF + i * N + m) * model_constants[NN + m * N + k];
            }
            region_set(TMP_OFF + idx, acc);
        }
        sync();
        for (var idx = lane; idx < NN; idx += LANES) {
            region_set(E_OFF + idx, region_get(TMP_OFF + idx));
        }
        sync();
    }
    for (var idx = lane; idx < NN; idx += LANES) {
        region_set(SUF_OFF + (LAYERS - 1u) * NN + idx, select(real(0.0), real(1.0), idx / N == idx % N));
    }
    sync();
    for (var j = LAYERS - 1u; j > 0u; j--) {
        dl_matmul(SUF_OFF + (j - 1u) * NN, SUF_OFF + j * NN, false, W_OFF + j * NN, false, lane);
        sync();
    }
    dl_matmul(G_OFF, SUF_OFF, true, E_OFF, false, lane);
    sync();
    for (var j = 1u; j < LAYERS; j++) {
        dl_matmul(TMP_OFF, SUF_OFF + j * NN, true, E_OFF, false, lane);
        sync();
        dl_matmul(G_OFF + j * NN, TMP_OFF, false, PRE_OFF + (j - 1u) * NN, true, lane);
        sync();
    }
}
