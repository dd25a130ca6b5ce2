//! The kernel plans of `shaders/deep_linear.wgsl`: one invocation per
//! trajectory where the workspace is small, otherwise one workgroup per
//! trajectory, its lanes sharing each n × n product.

use super::DeepLinear;
use crate::real::Precision;
use crate::shaders::{
    driver_workgroup_bytes, fits_a_dispatch, invocation_suits, loop_trips, per_invocation,
    real_bytes, strided, workgroup_kernel, DeviceLimits, KernelPlan,
};
use crate::stopping::StopRule;

pub const SOURCE: &str = include_str!("../../../shaders/deep_linear.wgsl");

pub fn kernel(
    d: &DeepLinear,
    rule: &StopRule,
    limits: DeviceLimits,
    precision: Precision,
) -> KernelPlan {
    let (n, layers) = (d.size, d.layers);
    let nn = n * n;
    let dim = d.dim();
    let region_len = (4 * layers + 2) * nn;
    let mut constants: Vec<f64> = d.constants();
    let offsets = format!(
        "const N: u32 = {n}u;\nconst NN: u32 = {nn}u;\nconst LAYERS: u32 = {layers}u;\n\
         const W_OFF: u32 = 0u;\nconst PRE_OFF: u32 = {}u;\nconst SUF_OFF: u32 = {}u;\n\
         const E_OFF: u32 = {}u;\nconst TMP_OFF: u32 = {}u;\nconst G_OFF: u32 = {}u;\n\
         const REGION_LEN: u32 = {region_len}u;\nconst COVARIANCE: bool = {};\n",
        layers * nn,
        2 * layers * nn,
        3 * layers * nn,
        3 * layers * nn + nn,
        3 * layers * nn + 2 * nn,
        d.covariance.is_some(),
    );
    if invocation_suits(region_len, precision, limits) {
        // The copies in and out, and the gradient with one lane.
        let trips = 2 * loop_trips(dim as u64, 0)
            + deep_linear_gradient_trips(n, layers, d.covariance.is_some(), 1);
        let header = format!("{offsets}const LANES: u32 = 1u;\n");
        let plan = per_invocation(header, SOURCE, dim, rule, trips, precision, constants, &[]);
        if fits_a_dispatch(&plan, rule, limits) {
            return plan;
        }
        constants = plan.constants;
    }
    // One workgroup per trajectory: lanes enough to cover an n × n product.
    let lanes = (nn.next_power_of_two() as u32).clamp(32, limits.max_invocations.min(256));
    let in_workgroup = region_len * real_bytes(precision) + driver_workgroup_bytes(precision)
        <= limits.workgroup_storage as usize;
    workgroup_kernel(
        format!("const DIM: u32 = {dim}u;\nconst LANES: u32 = {lanes}u;\n{offsets}"),
        SOURCE,
        &[],
        lanes,
        in_workgroup,
        region_len,
        constants,
        dim,
        (
            deep_linear_gradient_trips(n, layers, d.covariance.is_some(), lanes),
            0,
        ),
        rule,
        precision,
    )
}

/// Loop trips of `model_gradient` in `deep_linear.wgsl` (see `LoopTrips`).
fn deep_linear_gradient_trips(n: usize, layers: usize, covariance: bool, lanes: u32) -> u64 {
    let nn = n * n;
    let entrywise = loop_trips(strided(nn, lanes), 0);
    let matmul = loop_trips(strided(nn, lanes), loop_trips(n as u64, 0));
    let chain = loop_trips(layers as u64 - 1, matmul);
    let covariance = if covariance { matmul + entrywise } else { 0 };
    // P_1, the forward chain, E, the suffix identity, the backward chain,
    // G_1 and the pairs of products for the other layers.
    entrywise
        + chain
        + entrywise
        + covariance
        + entrywise
        + chain
        + matmul
        + loop_trips(layers as u64 - 1, 2 * matmul)
}
