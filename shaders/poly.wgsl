// Model `poly`, the twin of src/models/poly.rs: f'(x) by Horner's rule,
// highest power first, from zero. DERIVATIVE (ascending coefficients of f')
// and DERIVATIVE_LEN come from the generated header.
fn gradient(theta: ptr<function, array<f32, DIM>>, g: ptr<function, array<f32, DIM>>) {
    let x = (*theta)[0];
    var acc = 0.0f;
    for (var i = 0u; i < DERIVATIVE_LEN; i++) {
        acc = acc * x + DERIVATIVE[DERIVATIVE_LEN - 1u - i];
    }
    (*g)[0] = acc;
}
