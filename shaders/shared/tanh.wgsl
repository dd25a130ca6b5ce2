// tanh from + − × ÷ alone, the twin of `Arith::tanh_mirrored` in src/real.rs
// (WGSL's f64 has no transcendental functions): clamp to [−20, 20], u = x/64,
// the Taylor series of tanh(u) to u²⁵ by Horner's rule in u², then six
// doublings tanh(2u) = 2t/(1 + t²). Two `if`s rather than `clamp`, so that a
// NaN stays NaN as on the CPU.
fn tanh_mirrored(v: real) -> real {
    var x = v;
    if (x > 20.0) {
        x = 20.0;
    }
    if (x < -20.0) {
        x = -20.0;
    }
    let u = x * 0.015625;
    let u2 = u * u;
    var p: real = 1.5918905069328964e-05;
    p = p * u2 + -3.927832388331683e-05;
    p = p * u2 + 9.691537956929451e-05;
    p = p * u2 + -0.00023912911424355248;
    p = p * u2 + 0.000590027440945586;
    p = p * u2 + -0.0014558343870513183;
    p = p * u2 + 0.003592128036572481;
    p = p * u2 + -0.008863235529902197;
    p = p * u2 + 0.021869488536155203;
    p = p * u2 + -0.05396825396825397;
    p = p * u2 + 0.13333333333333333;
    p = p * u2 + -0.3333333333333333;
    p = p * u2 + 1.0;
    var t = u * p;
    t = (t + t) / (1.0 + t * t);
    t = (t + t) / (1.0 + t * t);
    t = (t + t) / (1.0 + t * t);
    t = (t + t) / (1.0 + t * t);
    t = (t + t) / (1.0 + t * t);
    t = (t + t) / (1.0 + t * t);
    return t;
}
