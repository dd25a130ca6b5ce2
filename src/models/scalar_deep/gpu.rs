//! The kernel plan of `shaders/scalar_deep.wgsl`: one invocation per
//! trajectory, λ baked in.

use super::ScalarDeep;
use crate::real::Precision;
use crate::shaders::{loop_trips, per_invocation, real_literal, KernelPlan};
use crate::stopping::StopRule;

pub const SOURCE: &str = include_str!("../../../shaders/scalar_deep.wgsl");

pub fn kernel(s: &ScalarDeep, rule: &StopRule, precision: Precision) -> KernelPlan {
    per_invocation(
        format!(
            "const LAMBDA: real = {};\n",
            real_literal(s.lambda, precision)
        ),
        SOURCE,
        s.layers,
        rule,
        // The prefix products, then the suffix products.
        2 * loop_trips(s.layers as u64, 0),
        precision,
        Vec::new(),
        &[],
    )
}
