// Model `relu` with one invocation per trajectory, for the small sizes: the
// loop of `gradient` in src/models/relu.rs, sample by sample, with the same
// SLICES partial sums (sample i adds to partial i mod SLICES) and the same
// tree over them at the end, so every entry is summed in the CPU's order.
// θ = [W | V] lives in the invocation's own array `w`; the samples and the
// bias are read from the constants binding, the same words for every
// invocation. The generated header provides N_IN, H, M, SAMPLES, SLICES, DIM,
// MH, Y_C and B_C.

fn gradient(w: ptr<function, array<real, DIM>>, g: ptr<function, array<real, DIM>>) {
    var partials: array<real, PARTIALS>;
    for (var p = 0u; p < PARTIALS; p++) {
        partials[p] = 0.0;
    }
    var a: array<real, H>;
    var r: array<real, M>;
    var e: array<real, H>;
    for (var i = 0u; i < SAMPLES; i++) {
        // a = (Vx − b)₊
        for (var k = 0u; k < H; k++) {
            var acc: real = 0.0;
            for (var l = 0u; l < N_IN; l++) {
                acc = acc + (*w)[MH + k * N_IN + l] * model_constants[i * N_IN + l];
            }
            let z = acc - model_constants[B_C + k];
            a[k] = select(real(0.0), z, z > 0.0);
        }
        // r = Wa − y
        for (var j = 0u; j < M; j++) {
            var acc: real = 0.0;
            for (var k = 0u; k < H; k++) {
                acc = acc + (*w)[j * H + k] * a[k];
            }
            r[j] = acc - model_constants[Y_C + i * M + j];
        }
        // e = Wᵀr ⊙ d
        for (var k = 0u; k < H; k++) {
            var acc: real = 0.0;
            for (var j = 0u; j < M; j++) {
                acc = acc + (*w)[j * H + k] * r[j];
            }
            e[k] = select(real(0.0), acc, a[k] > 0.0);
        }
        let base = (i % SLICES) * DIM;
        for (var j = 0u; j < M; j++) {
            for (var k = 0u; k < H; k++) {
                partials[base + j * H + k] = partials[base + j * H + k] + r[j] * a[k];
            }
        }
        for (var k = 0u; k < H; k++) {
            for (var l = 0u; l < N_IN; l++) {
                let p = base + MH + k * N_IN + l;
                partials[p] = partials[p] + e[k] * model_constants[i * N_IN + l];
            }
        }
    }
    for (var half = SLICES / 2u; half >= 1u; half /= 2u) {
        for (var p = 0u; p < half * DIM; p++) {
            partials[p] = partials[p] + partials[half * DIM + p];
        }
    }
    for (var p = 0u; p < DIM; p++) {
        (*g)[p] = partials[p];
    }
}
