// Model `mlp`, the twin of `gradient` in src/models/mlp/mod.rs: sample by
// sample, a forward pass that keeps every hidden layer's activations, then a
// backward pass from δ = c(f̂(x_i) − y_i) that adds δ_l a_{l−1}ᵀ and δ_l to
// layer l's gradient and forms δ_{l−1} = (W_lᵀδ_l) ⊙ φ′. Every sum runs from
// zero in the CPU's order. The generated header gives the sizes (N_IN, M,
// DEPTH, SAMPLES, DIM), the per-layer tables WIDTHS, W_OFFS, B_OFFS and
// A_OFFS (index l = 0 … DEPTH + 1), the constants' offsets (Y_C, C_C: after
// the inputs, the targets, then c = 2/(N·m)), and the activation's flag
// (ACT_TANH, ACT_RELU or neither for the identity).
//
// With PER_INVOCATION, one invocation runs a trajectory, θ in its own array
// `w`, the activations, the residual and the δs in its own array `work`
// (the CPU's workspace). Otherwise a workgroup runs it: θ, the gradient and
// the workspace are in the region (`shaders/shared/region.wgsl`), and the
// lanes share each layer's units, each gradient entry and each δ, meeting at
// `sync()` between the stages; a lane changes who computes an entry, never
// how.

#import shared/tanh

fn activate(z: real) -> real {
#ifdef ACT_TANH
    return tanh_mirrored(z);
#else
#ifdef ACT_RELU
    return select(real(0.0), z, z > 0.0);
#else
    return z;
#endif
#endif
}

// g·φ′, from a = φ(z).
fn activate_back(g: real, a: real) -> real {
#ifdef ACT_TANH
    return g * (1.0 - a * a);
#else
#ifdef ACT_RELU
    return select(real(0.0), g, a > 0.0);
#else
    return g;
#endif
#endif
}

#ifdef PER_INVOCATION
// Entry j of layer l's input for sample i: the sample itself for l = 1.
fn layer_input(work: ptr<function, array<real, WORK_LEN>>, i: u32, l: u32, j: u32) -> real {
    if (l == 1u) {
        return model_constants[i * N_IN + j];
    }
    return (*work)[A_OFFS[l - 1u] + j];
}

fn gradient(w: ptr<function, array<real, DIM>>, g: ptr<function, array<real, DIM>>) {
    var work: array<real, WORK_LEN>;
    for (var p = 0u; p < DIM; p++) {
        (*g)[p] = 0.0;
    }
    let c = model_constants[C_C];
    for (var i = 0u; i < SAMPLES; i++) {
        for (var l = 1u; l <= DEPTH + 1u; l++) {
            let fan_in = WIDTHS[l - 1u];
            let fan_out = WIDTHS[l];
            for (var k = 0u; k < fan_out; k++) {
                var acc: real = 0.0;
                for (var j = 0u; j < fan_in; j++) {
                    acc = acc + (*w)[W_OFFS[l] + k * fan_in + j] * layer_input(&work, i, l, j);
                }
                let z = acc + (*w)[B_OFFS[l] + k];
                if (l <= DEPTH) {
                    work[A_OFFS[l] + k] = activate(z);
                } else {
                    work[R_OFF + k] = (z - model_constants[Y_C + i * M + k]) * c;
                }
            }
        }
        var delta = R_OFF;
        var spare = D0_OFF;
        for (var l = DEPTH + 1u; l >= 1u; l--) {
            let fan_in = WIDTHS[l - 1u];
            let fan_out = WIDTHS[l];
            for (var k = 0u; k < fan_out; k++) {
                let d = work[delta + k];
                for (var j = 0u; j < fan_in; j++) {
                    let e = W_OFFS[l] + k * fan_in + j;
                    (*g)[e] = (*g)[e] + d * layer_input(&work, i, l, j);
                }
                (*g)[B_OFFS[l] + k] = (*g)[B_OFFS[l] + k] + d;
            }
            if (l >= 2u) {
                for (var j = 0u; j < fan_in; j++) {
                    var acc: real = 0.0;
                    for (var k = 0u; k < fan_out; k++) {
                        acc = acc + (*w)[W_OFFS[l] + k * fan_in + j] * work[delta + k];
                    }
                    work[spare + j] = activate_back(acc, work[A_OFFS[l - 1u] + j]);
                }
                let next = select(D0_OFF, D1_OFF, spare == D0_OFF);
                delta = spare;
                spare = next;
            }
        }
    }
}
#else
fn layer_input(i: u32, l: u32, j: u32) -> real {
    if (l == 1u) {
        return model_constants[i * N_IN + j];
    }
    return region_get(WORK_OFF + A_OFFS[l - 1u] + j);
}

fn model_prepare(lane: u32) {}

fn model_gradient(lane: u32) {
    for (var p = lane; p < DIM; p += LANES) {
        region_set(G_OFF + p, 0.0);
    }
    sync();
    let c = model_constants[C_C];
    for (var i = 0u; i < SAMPLES; i++) {
        for (var l = 1u; l <= DEPTH + 1u; l++) {
            let fan_in = WIDTHS[l - 1u];
            let fan_out = WIDTHS[l];
            for (var k = lane; k < fan_out; k += LANES) {
                var acc: real = 0.0;
                for (var j = 0u; j < fan_in; j++) {
                    acc = acc + region_get(W_OFF + W_OFFS[l] + k * fan_in + j) * layer_input(i, l, j);
                }
                let z = acc + region_get(W_OFF + B_OFFS[l] + k);
                if (l <= DEPTH) {
                    region_set(WORK_OFF + A_OFFS[l] + k, activate(z));
                } else {
                    region_set(WORK_OFF + R_OFF + k, (z - model_constants[Y_C + i * M + k]) * c);
                }
            }
            sync();
        }
        var delta = R_OFF;
        var spare = D0_OFF;
        for (var l = DEPTH + 1u; l >= 1u; l--) {
            let fan_in = WIDTHS[l - 1u];
            let fan_out = WIDTHS[l];
            for (var e = lane; e < fan_out * fan_in; e += LANES) {
                let k = e / fan_in;
                let j = e % fan_in;
                let at = G_OFF + W_OFFS[l] + e;
                region_set(at, region_get(at) + region_get(WORK_OFF + delta + k) * layer_input(i, l, j));
            }
            for (var k = lane; k < fan_out; k += LANES) {
                let at = G_OFF + B_OFFS[l] + k;
                region_set(at, region_get(at) + region_get(WORK_OFF + delta + k));
            }
            if (l >= 2u) {
                for (var j = lane; j < fan_in; j += LANES) {
                    var acc: real = 0.0;
                    for (var k = 0u; k < fan_out; k++) {
                        acc = acc + region_get(W_OFF + W_OFFS[l] + k * fan_in + j) * region_get(WORK_OFF + delta + k);
                    }
                    region_set(WORK_OFF + spare + j, activate_back(acc, region_get(WORK_OFF + A_OFFS[l - 1u] + j)));
                }
                sync();
                let next = select(D0_OFF, D1_OFF, spare == D0_OFF);
                delta = spare;
                spare = next;
            }
        }
        // The next sample's forward pass overwrites what this one's backward read.
        sync();
    }
}
#endif
