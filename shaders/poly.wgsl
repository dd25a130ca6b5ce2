// Model `poly`, the twin of src/models/poly.rs: f'(x) by Horner's rule,
// highest power first, starting from the leading coefficient. DERIVATIVE
// (ascending coefficients of f') and DERIVATIVE_LEN come from the generated header.
fn gradient(theta: ptr<function, array<real, DIM>>, g: ptr<function, array<real, DIM>>) {
    let x = (*theta)[0];
    var acc = DERIVATIVE[DERIVATIVE_LEN - 1u];
    for (var i = 1u; i < DERIVATIVE_LEN; i++) {
        acc = acc * x + DERIVATIVE[DERIVATIVE_LEN - 1u - i];
    }
    (*g)[0] = acc;
}
