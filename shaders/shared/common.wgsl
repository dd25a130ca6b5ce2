// Outcome codes, the twin of the constants in src/stopping.rs. A trajectory's
// status word is its code in the low byte and its period above it.
const RUNNING: u32 = 0u;
const CONVERGED: u32 = 1u;
const DIVERGED: u32 = 2u;
const OSCILLATING: u32 = 3u;
const UNDECIDED: u32 = 4u;

// WGSL has no isnan/isinf, and compilers may fold comparisons with NaN, so test
// the exponent bits: all ones means infinite or NaN. `real` is f32 or f64 (the
// generated header's alias). An f64 is first scaled by FINITE_SCALE (1 in
// f32, 2^-1000 in f64), exactly, into the range of f32, where infinities and
// NaN stay what they are and every finite value stays finite; then its bits
// are tested in f32, as WGSL has no 64-bit bitcast.
fn is_finite(v: real) -> bool {
    let narrowed = f32(v * FINITE_SCALE);
    return (bitcast<u32>(narrowed) & 0x7f800000u) != 0x7f800000u;
}

// Parts of the sums over all parameters (fingerprint, gradient norm), the twin
// of PARTS in src/stopping.rs: part p sums i = p, p + PARTS, … from zero, then
// the parts are added in order from zero.
const PARTS: u32 = 32u;
