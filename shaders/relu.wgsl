// Model `relu`, the twin of `gradient` in src/models/relu.rs (docs/theory.md §4):
// ∂f/∂W = Σ_i r_i a_iᵀ and ∂f/∂V = Σ_i ((Wᵀr_i) ⊙ d_i) x_iᵀ for f̂(x) = W(Vx − b)₊.
//
// `region` holds [W | V | G: SLICES partial gradients | A | R | E], where A, R
// and E hold a_i, r_i and Wᵀr_i ⊙ d_i for a tile of TILE samples. Per tile,
// the lanes share the entries of each stage and meet at `sync()`; then lane
// item (s, p) adds the tile's samples s, s+SLICES, … to partial s of entry p.
// A fixed tree over the partials ends the step. Every sum runs from zero in
// the order the CPU twin uses, so lanes change who computes an entry, never
// how. The generated header provides the sizes (N_IN, H, M, SAMPLES, SLICES,
// TILE, DIM, MH, LANES, SAMPLES_LEN) and the offsets; the region is
// `shaders/shared/region.wgsl`'s. The samples are copied into workgroup
// memory for the dispatch where they fit beside it (SAMPLES_IN_WORKGROUP), and
// read from the constants otherwise.
//
// With one invocation per trajectory (PER_INVOCATION), for the small sizes,
// the loop of `gradient` in src/models/relu/mod.rs runs sample by sample in
// each invocation, with the same SLICES partial sums (sample i adds to
// partial i mod SLICES) and the same tree over them at the end, so every
// entry is summed in the CPU's order. θ = [W | V] lives in the invocation's
// own array `w`; the samples and the bias are read from the constants, the
// same words for every invocation.

#ifdef PER_INVOCATION
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
#else
#ifdef SAMPLES_IN_WORKGROUP
var<workgroup> samples: array<real, SAMPLES_LEN>;

fn model_prepare(lane: u32) {
    for (var i = lane; i < SAMPLES_LEN; i += LANES) {
        samples[i] = model_constants[i];
    }
}

fn x_at(i: u32, l: u32) -> real {
    return samples[i * N_IN + l];
}

fn y_at(i: u32, j: u32) -> real {
    return samples[Y_C + i * M + j];
}
#else
fn model_prepare(lane: u32) {}

fn x_at(i: u32, l: u32) -> real {
    return model_constants[i * N_IN + l];
}

fn y_at(i: u32, j: u32) -> real {
    return model_constants[Y_C + i * M + j];
}
#endif

fn model_gradient(lane: u32) {
    for (var idx = lane; idx < SLICES * DIM; idx += LANES) {
        region_set(G_OFF + idx, 0.0);
    }
    sync();
    for (var start = 0u; start < SAMPLES; start += TILE) {
        let count = min(TILE, SAMPLES - start);
        // a = (Vx − b)₊
        for (var idx = lane; idx < count * H; idx += LANES) {
            let t = idx / H;
            let k = idx % H;
            var acc: real = 0.0;
            for (var l = 0u; l < N_IN; l++) {
                acc = acc + region_get(V_OFF + k * N_IN + l) * x_at(start + t, l);
            }
            let z = acc - model_constants[B_C + k];
            region_set(A_OFF + t * H + k, select(real(0.0), z, z > 0.0));
        }
        sync();
        // r = Wa − y
        for (var idx = lane; idx < count * M; idx += LANES) {
            let t = idx / M;
            let j = idx % M;
            var acc: real = 0.0;
            for (var k = 0u; k < H; k++) {
                acc = acc + region_get(W_OFF + j * H + k) * region_get(A_OFF + t * H + k);
            }
            region_set(R_OFF + t * M + j, acc - y_at(start + t, j));
        }
        sync();
        // e = Wᵀr ⊙ d
        for (var idx = lane; idx < count * H; idx += LANES) {
            let t = idx / H;
            let k = idx % H;
            var acc: real = 0.0;
            if (region_get(A_OFF + t * H + k) > 0.0) {
                for (var j = 0u; j < M; j++) {
                    acc = acc + region_get(W_OFF + j * H + k) * region_get(R_OFF + t * M + j);
                }
            }
            region_set(E_OFF + t * H + k, acc);
        }
        sync();
        // Partial s of entry p gathers the samples ≡ s (mod SLICES); TILE is a
        // multiple of SLICES, so tile position t and sample start + t agree mod SLICES.
        for (var idx = lane; idx < SLICES * DIM; idx += LANES) {
            let s = idx / DIM;
            let p = idx % DIM;
            var acc = region_get(G_OFF + idx);
            if (p < MH) {
                let j = p / H;
                let k = p % H;
                for (var t = s; t < count; t += SLICES) {
                    acc = acc + region_get(R_OFF + t * M + j) * region_get(A_OFF + t * H + k);
                }
            } else {
                let k = (p - MH) / N_IN;
                let l = (p - MH) % N_IN;
                for (var t = s; t < count; t += SLICES) {
                    acc = acc + region_get(E_OFF + t * H + k) * x_at(start + t, l);
                }
            }
            region_set(G_OFF + idx, acc);
        }
        sync();
    }
    for (var half = SLICES / 2u; half >= 1u; half /= 2u) {
        for (var idx = lane; idx < half * DIM; idx += LANES) {
            region_set(G_OFF + idx, region_get(G_OFF + idx) + region_get(G_OFF + half * DIM + idx));
        }
        sync();
    }
}
#endif
