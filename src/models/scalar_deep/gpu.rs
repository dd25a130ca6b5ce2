//! The kernel plan of `shaders/scalar_deep.wgsl`: one invocation per
//! trajectory, λ read from the model constants. (Not baked in: a sweep over
//! λ, such as a boundary plane of δ × λ, then compiles one pipeline for all
//! its λ instead of one per λ.)

use super::ScalarDeep;
use crate::real::Precision;
use crate::shaders::{loop_trips, per_invocation, KernelPlan};
use crate::stopping::StopRule;

pub const SOURCE: &str = include_str!("../../../shaders/scalar_deep.wgsl");

pub fn kernel(s: &ScalarDeep, rule: &StopRule, precision: Precision) -> KernelPlan {
    per_invocation(
        String::new(),
        SOURCE,
        s.layers,
        rule,
        // The prefix products, then the suffix products.
        2 * loop_trips(s.layers as u64, 0),
        precision,
        vec![s.lambda],
        &[],
    )
}
