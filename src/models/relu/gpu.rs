//! The `relu` kernel plans. Small sizes (the model's workspace, the CPU's
//! `work_len`, within `INVOCATION_MAX_WORKSPACE_BYTES`) run one invocation per trajectory
//! (`shaders/relu.wgsl` with PER_INVOCATION); larger ones one workgroup per trajectory,
//! specialized to the sizes, with the region (θ, partial gradients, a tile of activations) in
//! workgroup memory when it fits and in the scratch buffer when it does not,
//! and the samples in workgroup memory when they fit beside it and read from
//! the constants buffer otherwise. The sum over samples is split into the
//! model's `Shape::slices` partial sums, whatever the device.

use super::{work_len, Relu, Shape};
use crate::real::Precision;
use crate::shaders::{
    driver_workgroup_bytes, fits_a_dispatch, invocation_suits, loop_trips, per_invocation,
    real_bytes, strided, workgroup_kernel, DeviceLimits, KernelPlan,
};
use crate::stopping::StopRule;

pub const SOURCE: &str = include_str!("../../../shaders/relu.wgsl");

/// Largest tile of samples whose activations the region holds at once.
const MAX_TILE: usize = 64;

/// Floats of the region for a tile of `tile` samples.
fn region_len(r: &Relu, tile: usize) -> usize {
    let s = &r.shape;
    s.dim() + s.slices * s.dim() + tile * (2 * s.h + s.m)
}

/// Loop trips of `model_gradient` in `relu.wgsl` with `lanes` lanes and tiles
/// of `tile` samples (see `LoopTrips`).
fn gradient_trips(r: &Relu, tile: usize, lanes: u32) -> u64 {
    let s = &r.shape;
    let (n, h, m) = (s.n as u64, s.h as u64, s.m as u64);
    let partials = s.slices * s.dim();
    let per_slice = loop_trips(tile.div_ceil(s.slices) as u64, 0);
    let per_tile = loop_trips(strided(tile * s.h, lanes), loop_trips(n, 0))
        + loop_trips(strided(tile * s.m, lanes), loop_trips(h, 0))
        + loop_trips(strided(tile * s.h, lanes), loop_trips(m, 0))
        // Both sides of the branch on W or V entries.
        + loop_trips(strided(partials, lanes), 2 * per_slice);
    let mut tree = 1;
    let mut half = s.slices / 2;
    while half >= 1 {
        tree += 1 + loop_trips(strided(half * s.dim(), lanes), 0);
        half /= 2;
    }
    loop_trips(strided(partials, lanes), 0)
        + loop_trips(s.samples.div_ceil(tile) as u64, per_tile)
        + tree
}

/// Loop trips of `gradient` in `relu.wgsl` with PER_INVOCATION (see `LoopTrips`).
fn invocation_gradient_trips(s: &Shape) -> u64 {
    let (n, h, m) = (s.n as u64, s.h as u64, s.m as u64);
    // a, r, e, then the partials of W and of V.
    let per_sample = loop_trips(h, loop_trips(n, 0))
        + loop_trips(m, loop_trips(h, 0))
        + loop_trips(h, loop_trips(m, 0))
        + loop_trips(m, loop_trips(h, 0))
        + loop_trips(h, loop_trips(n, 0));
    let mut tree = 1;
    let mut half = s.slices / 2;
    while half >= 1 {
        tree += 1 + loop_trips((half * s.dim()) as u64, 0);
        half /= 2;
    }
    loop_trips((s.slices * s.dim()) as u64, 0)
        + loop_trips(s.samples as u64, per_sample)
        + tree
        + loop_trips(s.dim() as u64, 0)
}

/// The sizes both relu kernels are specialized to, and where the targets and
/// the bias start in the constants buffer (after the inputs: see
/// `Relu::constants`).
fn sizes_header(s: &Shape) -> String {
    format!(
        "const N_IN: u32 = {}u;\nconst H: u32 = {}u;\nconst M: u32 = {}u;\n\
         const SAMPLES: u32 = {}u;\nconst SLICES: u32 = {}u;\nconst MH: u32 = {}u;\n\
         const Y_C: u32 = {}u;\nconst B_C: u32 = {}u;\n",
        s.n,
        s.h,
        s.m,
        s.samples,
        s.slices,
        s.m * s.h,
        s.samples * s.n,
        s.samples * (s.n + s.m),
    )
}

/// One invocation per trajectory, the CPU's loop over samples in each.
fn invocation_kernel(r: &Relu, rule: &StopRule, precision: Precision) -> KernelPlan {
    let s = r.shape;
    let header = format!(
        "{}const PARTIALS: u32 = {}u;\n",
        sizes_header(&s),
        s.slices * s.dim(),
    );
    let trips = invocation_gradient_trips(&s);
    per_invocation(
        header,
        SOURCE,
        s.dim(),
        rule,
        trips,
        precision,
        r.constants(),
        &[],
    )
}

pub fn kernel(r: &Relu, rule: &StopRule, limits: DeviceLimits, precision: Precision) -> KernelPlan {
    let s = r.shape;
    if invocation_suits(work_len(&s), precision, limits) {
        let plan = invocation_kernel(r, rule, precision);
        if fits_a_dispatch(&plan, rule, limits) {
            return plan;
        }
    }
    let dim = s.dim();
    // Reals of workgroup memory left beside the driver's.
    let budget = (limits.workgroup_storage as usize)
        .saturating_sub(driver_workgroup_bytes(precision))
        / real_bytes(precision);
    // A tile is a power of two and a multiple of the slices, so every tile
    // starts at a multiple of SLICES.
    let widest = MAX_TILE.min(s.samples.next_power_of_two()).max(s.slices);
    let mut tile = widest;
    while region_len(r, tile) > budget && tile > s.slices {
        tile /= 2;
    }
    let in_workgroup = region_len(r, tile) <= budget;
    if !in_workgroup {
        tile = widest;
    }
    let len = region_len(r, tile);
    let samples_len = s.samples * (s.n + s.m);
    let samples_in_workgroup = in_workgroup && len + samples_len <= budget;
    let work = (s.slices * dim).max(tile * s.h);
    let lanes = (work.next_power_of_two() as u32).clamp(32, limits.max_invocations.min(256));

    let offsets = format!(
        "{}const TILE: u32 = {tile}u;\n\
         const DIM: u32 = {dim}u;\nconst LANES: u32 = {lanes}u;\n\
         const W_OFF: u32 = 0u;\nconst V_OFF: u32 = {}u;\nconst G_OFF: u32 = {dim}u;\n\
         const A_OFF: u32 = {}u;\nconst R_OFF: u32 = {}u;\nconst E_OFF: u32 = {}u;\n\
         const REGION_LEN: u32 = {len}u;\nconst SAMPLES_LEN: u32 = {samples_len}u;\n",
        sizes_header(&s),
        s.m * s.h,
        dim + s.slices * dim,
        dim + s.slices * dim + tile * s.h,
        dim + s.slices * dim + tile * (s.h + s.m),
    );
    let flags: &[&str] = if samples_in_workgroup {
        &["SAMPLES_IN_WORKGROUP"]
    } else {
        &[]
    };
    let prepare_trips = if samples_in_workgroup {
        loop_trips(strided(samples_len, lanes), 0)
    } else {
        0
    };
    workgroup_kernel(
        offsets,
        SOURCE,
        flags,
        lanes,
        in_workgroup,
        len,
        r.constants(),
        dim,
        (gradient_trips(r, tile, lanes), prepare_trips),
        rule,
        precision,
    )
}
