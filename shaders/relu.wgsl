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
// TILE, DIM, MH, LANES), the offsets, `x_at`, `y_at`, `region` and `sync()`.

fn model_gradient(lane: u32) {
    for (var idx = lane; idx < SLICES * DIM; idx += LANES) {
        region[G_OFF + idx] = 0.0;
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
                acc = acc + region[V_OFF + k * N_IN + l] * x_at(start + t, l);
            }
            let z = acc - model_constants[B_C + k];
            region[A_OFF + t * H + k] = select(real(0.0), z, z > 0.0);
        }
        sync();
        // r = Wa − y
        for (var idx = lane; idx < count * M; idx += LANES) {
            let t = idx / M;
            let j = idx % M;
            var acc: real = 0.0;
            for (var k = 0u; k < H; k++) {
                acc = acc + region[W_OFF + j * H + k] * region[A_OFF + t * H + k];
            }
            region[R_OFF + t * M + j] = acc - y_at(start + t, j);
        }
        sync();
        // e = Wᵀr ⊙ d
        for (var idx = lane; idx < count * H; idx += LANES) {
            let t = idx / H;
            let k = idx % H;
            var acc: real = 0.0;
            if (region[A_OFF + t * H + k] > 0.0) {
                for (var j = 0u; j < M; j++) {
                    acc = acc + region[W_OFF + j * H + k] * region[R_OFF + t * M + j];
                }
            }
            region[E_OFF + t * H + k] = acc;
        }
        sync();
        // Partial s of entry p gathers the samples ≡ s (mod SLICES); TILE is a
        // multiple of SLICES, so tile position t and sample start + t agree mod SLICES.
        for (var idx = lane; idx < SLICES * DIM; idx += LANES) {
            let s = idx / DIM;
            let p = idx % DIM;
            var acc = region[G_OFF + idx];
            if (p < MH) {
                let j = p / H;
                let k = p % H;
                for (var t = s; t < count; t += SLICES) {
                    acc = acc + region[R_OFF + t * M + j] * region[A_OFF + t * H + k];
                }
            } else {
                let k = (p - MH) / N_IN;
                let l = (p - MH) % N_IN;
                for (var t = s; t < count; t += SLICES) {
                    acc = acc + region[E_OFF + t * H + k] * x_at(start + t, l);
                }
            }
            region[G_OFF + idx] = acc;
        }
        sync();
    }
    for (var half = SLICES / 2u; half >= 1u; half /= 2u) {
        for (var idx = lane; idx < half * DIM; idx += LANES) {
            region[G_OFF + idx] = region[G_OFF + idx] + region[G_OFF + half * DIM + idx];
        }
        sync();
    }
}
