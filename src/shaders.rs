//! Assembly of the WGSL kernels. Shared pieces (outcome codes, the stopping
//! rule, the RNG) live in one file each under `shaders/`; each kernel is a
//! generated header of constants, the shared files and the model's file.

use crate::stopping::StopRule;

pub const COMMON: &str = include_str!("../shaders/common.wgsl");
pub const STOPPING: &str = include_str!("../shaders/stopping.wgsl");
pub const RNG: &str = include_str!("../shaders/rng.wgsl");
pub const POLY: &str = include_str!("../shaders/poly.wgsl");

/// An f32 literal that parses back to exactly `v as f32`.
pub fn f32_literal(v: f64) -> String {
    let v = v as f32;
    let text = format!("{v:?}");
    if text.contains(['.', 'e', 'i', 'N']) {
        format!("{text}f")
    } else {
        format!("{text}.0f")
    }
}

/// Constants of the stopping rule, in f32, as the kernels see them.
pub fn stop_header(rule: &StopRule, workgroup_size: u32) -> String {
    let ring = rule.history_len();
    format!(
        "const WORKGROUP_SIZE: u32 = {workgroup_size}u;\n\
         const CHECK_EVERY: u32 = {}u;\n\
         const MAX_ITERS: u32 = {}u;\n\
         const MAX_PERIOD: u32 = {}u;\n\
         const RING: u32 = {ring}u;\n\
         const RING_MASK: u32 = {}u;\n\
         const TOL_GRAD: f32 = {};\n\
         const OSC_REL_TOL: f32 = {};\n\
         const DIVERGENCE_CAP: f32 = {};\n",
        rule.check_every,
        rule.max_iters,
        rule.max_period,
        ring - 1,
        f32_literal(rule.tol_grad),
        f32_literal(rule.osc_rel_tol),
        f32_literal(rule.divergence_cap),
    )
}

/// f'(x) by Horner's rule with the coefficients baked in, in the order of
/// `models::poly::derivative`: acc ← acc·x + c, highest power first, from 0.
pub fn poly_gradient(derivative: &[f64]) -> String {
    let mut body = String::from("fn gradient(x: f32) -> f32 {\n    var acc = 0.0f;\n");
    for &c in derivative.iter().rev() {
        body.push_str(&format!("    acc = acc * x + ({});\n", f32_literal(c)));
    }
    body.push_str("    return acc;\n}\n");
    body
}

/// The complete poly kernel.
pub fn poly_kernel(derivative: &[f64], rule: &StopRule, workgroup_size: u32) -> String {
    [
        stop_header(rule, workgroup_size),
        COMMON.to_string(),
        STOPPING.to_string(),
        poly_gradient(derivative),
        POLY.to_string(),
    ]
    .join("\n")
}

/// A kernel that writes the first `words` words of trajectory streams, for the
/// test that holds the WGSL RNG against `rng.rs`.
pub fn rng_stream_kernel() -> String {
    format!(
        "{RNG}\n\
         struct RngParams {{ seed: vec2<u32>, first_trajectory: u32, words: u32 }}\n\
         @group(0) @binding(0) var<uniform> rng_params: RngParams;\n\
         @group(0) @binding(1) var<storage, read_write> rng_out: array<u32>;\n\
         @compute @workgroup_size(64)\n\
         fn rng_main(@builtin(global_invocation_id) gid: vec3<u32>) {{\n\
             let t = rng_params.first_trajectory + gid.x / rng_params.words;\n\
             let i = gid.x % rng_params.words;\n\
             if (gid.x < arrayLength(&rng_out)) {{\n\
                 rng_out[gid.x] = trajectory_rng_word(rng_params.seed, vec2<u32>(t, 0u), i);\n\
             }}\n\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Precision, StopSpec};

    /// Parses and validates WGSL with naga, as the device would.
    pub fn validate(source: &str) {
        let module = naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string(source)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string(source)));
    }

    #[test]
    fn every_assembled_kernel_validates() {
        let rule = StopSpec::default().rule(Precision::F32, 100_000);
        let derivative = [-12.0, 34.0, -54.0, 56.0, -30.0, 6.0];
        validate(&poly_kernel(&derivative, &rule, 64));
        validate(&rng_stream_kernel());
    }

    #[test]
    fn f32_literals_round_trip() {
        for v in [1e-4, 0.1, -12.0, 1e6, 3.4e38, 1.0 / 3.0] {
            let lit = f32_literal(v);
            let parsed: f32 = lit.trim_end_matches('f').parse().unwrap();
            assert_eq!(parsed, v as f32, "{lit}");
        }
    }
}
