// Model `scalar-deep`, the twin of src/models/scalar_deep.rs:
// ∂f/∂w_j = (p − λ)·(prefix_j·suffix_j) with p = Π wᵢ, prefix_j = Π_{i<j} wᵢ and
// suffix_j = Π_{i>j} wᵢ. λ is the model's one constant; DIM = L comes from
// the generated header.
fn gradient(w: ptr<function, array<real, DIM>>, g: ptr<function, array<real, DIM>>) {
    var prefix_at: array<real, DIM>;
    var prefix: real = 1.0;
    for (var i = 0u; i < DIM; i++) {
        prefix_at[i] = prefix;
        prefix = prefix * (*w)[i];
    }
    let residual = prefix - model_constants[0];
    var suffix: real = 1.0;
    for (var j = DIM; j > 0u; j--) {
        let i = j - 1u;
        (*g)[i] = residual * (prefix_at[i] * suffix);
        suffix = suffix * (*w)[i];
    }
}
