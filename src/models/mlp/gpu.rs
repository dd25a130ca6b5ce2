//! The `mlp` kernel plans, sized as relu's are: one invocation per
//! trajectory while the workspace (the CPU's `work_len`) is small enough
//! (`invocation_suits`) and a step fits a dispatch, otherwise one workgroup
//! per trajectory whose lanes share each layer's units and gradient entries,
//! with θ, the gradient and the workspace in workgroup memory when they fit
//! and in the scratch buffer when they do not.

use super::{work_len, Activation, Mlp, Shape};
use crate::real::Precision;
use crate::shaders::{
    driver_workgroup_bytes, fits_a_dispatch, invocation_suits, loop_trips, per_invocation,
    real_bytes, strided, workgroup_kernel, DeviceLimits, KernelPlan,
};
use crate::stopping::StopRule;

pub const SOURCE: &str = include_str!("../../../shaders/mlp.wgsl");

/// A private table of u32s, one per layer index 0 … depth + 1.
fn table(name: &str, values: impl Iterator<Item = usize>) -> String {
    let items: Vec<String> = values.map(|v| format!("{v}u")).collect();
    format!(
        "var<private> {name}: array<u32, {}> = array<u32, {}>({});\n",
        items.len(),
        items.len(),
        items.join(", ")
    )
}

/// The sizes, the per-layer tables and the workspace's offsets (see
/// `shaders/mlp.wgsl`).
fn sizes_header(s: &Shape) -> String {
    let layers = 0..=s.depth + 1;
    let w_off = |l: usize| if l == 0 { 0 } else { s.w_off(l) };
    let b_off = |l: usize| if l == 0 { 0 } else { s.b_off(l) };
    let a_off = |l: usize| {
        if (1..=s.depth).contains(&l) {
            s.a_off(l)
        } else {
            0
        }
    };
    [
        format!(
            "const N_IN: u32 = {}u;\nconst M: u32 = {}u;\nconst DEPTH: u32 = {}u;\n\
             const SAMPLES: u32 = {}u;\nconst Y_C: u32 = {}u;\nconst C_C: u32 = {}u;\n\
             const WORK_LEN: u32 = {}u;\nconst R_OFF: u32 = {}u;\n\
             const D0_OFF: u32 = {}u;\nconst D1_OFF: u32 = {}u;\n",
            s.n(),
            s.m(),
            s.depth,
            s.samples,
            s.samples * s.n(),
            s.samples * (s.n() + s.m()),
            work_len(s),
            s.r_off(),
            s.d_off(0),
            s.d_off(1),
        ),
        table("WIDTHS", layers.clone().map(|l| s.widths[l])),
        table("W_OFFS", layers.clone().map(w_off)),
        table("B_OFFS", layers.clone().map(b_off)),
        table("A_OFFS", layers.map(a_off)),
    ]
    .concat()
}

fn flags(activation: Activation) -> &'static [&'static str] {
    match activation {
        Activation::Tanh => &["ACT_TANH"],
        Activation::Relu => &["ACT_RELU"],
        Activation::Identity => &[],
    }
}

/// Loop trips of one sample's passes when `lanes` lanes share them (1 for
/// one invocation per trajectory), counting every loop as written, the layer
/// loops included.
fn sample_trips(s: &Shape, lanes: u32) -> u64 {
    let mut forward = 0;
    let mut backward = 0;
    for l in 1..=s.depth + 1 {
        let (fan_in, fan_out) = (s.widths[l - 1], s.widths[l]);
        forward += 1 + loop_trips(strided(fan_out, lanes), loop_trips(fan_in as u64, 0));
        backward += 1
            + loop_trips(strided(fan_out * fan_in, lanes), 0)
            + loop_trips(strided(fan_out, lanes), 0)
            + loop_trips(strided(fan_in, lanes), loop_trips(fan_out as u64, 0));
    }
    // The per-invocation twin nests the weight loop in the unit loop.
    if lanes == 1 {
        backward += loop_trips(s.m() as u64, 0) * (s.depth as u64 + 1);
    }
    2 + forward + backward
}

fn gradient_trips(s: &Shape, lanes: u32) -> u64 {
    loop_trips(strided(s.dim(), lanes), 0) + loop_trips(s.samples as u64, sample_trips(s, lanes))
}

pub fn kernel(r: &Mlp, rule: &StopRule, limits: DeviceLimits, precision: Precision) -> KernelPlan {
    let s = r.shape;
    let dim = s.dim();
    // θ and its gradient live in the invocation's own arrays too, and a
    // network's parameters outnumber its workspace.
    if invocation_suits(work_len(&s) + 2 * dim, precision, limits) {
        let plan = per_invocation(
            sizes_header(&s),
            SOURCE,
            dim,
            rule,
            gradient_trips(&s, 1),
            precision,
            r.constants(),
            flags(r.activation),
        );
        if fits_a_dispatch(&plan, rule, limits) {
            return plan;
        }
    }
    let budget = (limits.workgroup_storage as usize)
        .saturating_sub(driver_workgroup_bytes(precision))
        / real_bytes(precision);
    let len = 2 * dim + work_len(&s);
    let in_workgroup = len <= budget;
    let widest_layer = (1..=s.depth + 1)
        .map(|l| s.widths[l] * s.widths[l - 1])
        .max()
        .unwrap_or(1);
    let lanes =
        (widest_layer.next_power_of_two() as u32).clamp(32, limits.max_invocations.min(256));
    let header = format!(
        "{}const DIM: u32 = {dim}u;\nconst LANES: u32 = {lanes}u;\n\
         const W_OFF: u32 = 0u;\nconst G_OFF: u32 = {dim}u;\nconst WORK_OFF: u32 = {}u;\n\
         const REGION_LEN: u32 = {len}u;\n",
        sizes_header(&s),
        2 * dim,
    );
    workgroup_kernel(
        header,
        SOURCE,
        flags(r.activation),
        lanes,
        in_workgroup,
        len,
        r.constants(),
        dim,
        (gradient_trips(&s, lanes), 0),
        rule,
        precision,
    )
}
