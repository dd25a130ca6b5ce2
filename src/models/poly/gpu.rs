//! The kernel plan of `shaders/poly.wgsl`: one invocation per trajectory,
//! the coefficients of f' baked in.

use super::Poly;
use crate::real::Precision;
use crate::shaders::{loop_trips, per_invocation, real_array, KernelPlan};
use crate::stopping::StopRule;

pub const SOURCE: &str = include_str!("../../../shaders/poly.wgsl");

pub fn kernel(p: &Poly, rule: &StopRule, precision: Precision) -> KernelPlan {
    per_invocation(
        format!(
            "const DERIVATIVE_LEN: u32 = {}u;\n{}",
            p.derivative.len(),
            real_array("DERIVATIVE", &p.derivative, precision)
        ),
        SOURCE,
        1,
        rule,
        // Horner's rule over the derivative's coefficients.
        loop_trips(p.derivative.len() as u64 - 1, 0),
        precision,
        Vec::new(),
        &[],
    )
}
