//! Assembly of the WGSL kernels. Each kernel is a generated header of
//! constants (sizes and model constants baked in, so loops unroll and arrays
//! live in registers) and a descent loop from `shaders/shared/`, composed with
//! the model's file and the shared pieces it imports (`compose`). The
//! bindings are declared from one table (`bindings`).

pub mod bindings;
pub mod compose;

use crate::optimizer::OptimizerKind;
use crate::real::Precision;
use crate::stopping::{fingerprint_weight, StopRule};
use bindings::Binding;
pub use compose::compose;

/// The compaction kernel.
pub fn compact() -> String {
    compose("shared/compact", None, &[])
}

/// A literal of the working precision that parses back to exactly `v` rounded
/// to it (`v as f32` in f32, `v` itself in f64), as the CPU twin rounds it.
pub fn real_literal(v: f64, precision: Precision) -> String {
    let (text, suffix) = match precision {
        Precision::F32 => (format!("{:?}", v as f32), "f"),
        Precision::F64 => (format!("{v:?}"), "lf"),
    };
    if text.contains(['.', 'e', 'i', 'N']) {
        format!("{text}{suffix}")
    } else {
        format!("{text}.0{suffix}")
    }
}

/// A private array constant: `var<private> NAME: array<real, N> = array(...)`.
/// Private rather than `const` so that loops may index it at run time.
pub fn real_array(name: &str, values: &[f64], precision: Precision) -> String {
    let items: Vec<String> = values.iter().map(|&v| real_literal(v, precision)).collect();
    format!(
        "var<private> {name}: array<real, {}> = array<real, {}>({});\n",
        values.len(),
        values.len(),
        items.join(", ")
    )
}

/// Bytes of one `real` of the working precision, on the device and in its buffers.
pub fn real_bytes(precision: Precision) -> usize {
    match precision {
        Precision::F32 => 4,
        Precision::F64 => 8,
    }
}

/// The working precision of a kernel: every kernel is one WGSL source written
/// over the alias `real`, which this header makes f32 or f64, with the scale
/// that `is_finite` in `shaders/common.wgsl` narrows an f64 by (2^-1000:
/// exact, and it brings the largest finite f64 within the range of f32).
pub fn precision_header(precision: Precision) -> String {
    format!(
        "alias real = {};\nconst FINITE_SCALE: real = {};\n",
        precision.name(),
        real_literal(
            match precision {
                Precision::F32 => 1.0,
                Precision::F64 => 2f64.powi(-1000),
            },
            precision
        )
    )
}

/// Constants of the stopping rule, in the working precision, as the kernels
/// see them, after the precision's own header.
pub fn stop_header(rule: &StopRule, workgroup_size: u32, precision: Precision) -> String {
    let ring = rule.history_len();
    format!(
        "{}const WORKGROUP_SIZE: u32 = {workgroup_size}u;\n\
         const CHECK_EVERY: u32 = {}u;\n\
         const MAX_ITERS: u32 = {}u;\n\
         const MAX_PERIOD: u32 = {}u;\n\
         const RING: u32 = {ring}u;\n\
         const RING_MASK: u32 = {}u;\n\
         const TOL_GRAD: real = {};\n\
         const OSC_REL_TOL: real = {};\n\
         const DIVERGENCE_CAP: real = {};\n\
         const EARLY_EXIT: bool = {};\n\
         const STEP_SLOTS: u32 = {}u;\n",
        precision_header(precision),
        rule.check_every,
        rule.max_iters,
        rule.max_period,
        ring - 1,
        real_literal(rule.tol_grad, precision),
        real_literal(rule.osc_rel_tol, precision),
        real_literal(rule.divergence_cap, precision),
        rule.early_exit,
        rule.step_slots,
    )
}

/// How a kernel maps trajectories onto the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One invocation per trajectory, θ stored structure-of-arrays.
    PerInvocation,
    /// One workgroup per trajectory, θ stored trajectory by trajectory.
    PerWorkgroup,
}

impl KernelPlan {
    /// The bindings the host binds for this kernel: the state, the model
    /// constants where the plan has any, and scratch where it takes some.
    pub fn bindings(&self) -> Vec<Binding> {
        let mut all = bindings::state::ALWAYS.to_vec();
        if !self.constants.is_empty() {
            all.push(bindings::state::MODEL_CONSTANTS);
        }
        if self.scratch_per_trajectory > 0 {
            all.push(bindings::state::SCRATCH);
        }
        if !self.layer_of.is_empty() {
            all.push(bindings::state::LAYER_OF);
        }
        all.sort_by_key(|b| b.slot);
        all
    }
}

/// A kernel ready to compile, with what the driver needs to know about it.
#[derive(Clone, Debug)]
pub struct KernelPlan {
    pub source: String,
    /// The working precision the source computes in.
    pub precision: Precision,
    pub entry: &'static str,
    pub layout: Layout,
    pub workgroup_size: u32,
    /// Read-only model constants bound at binding 6 (empty: none), uploaded
    /// in the working precision.
    pub constants: Vec<f64>,
    /// Reals of read-write scratch per trajectory bound at binding 7 (0: none).
    pub scratch_per_trajectory: usize,
    /// Whether the optimizer's velocity lives in scratch, so that scratch is
    /// bound for every dispatch, and β follows the step sizes.
    pub keeps_velocity: bool,
    /// The layer of each parameter, bound where the layers' step sizes
    /// differ (empty otherwise; `Model::kernel` fills it).
    pub layer_of: Vec<u32>,
    /// How many loop iterations one invocation runs in a dispatch (see
    /// `LLVMPIPE_LOOP_LIMIT`).
    pub loop_trips: LoopTrips,
}

/// Mesa's llvmpipe, the driver under lavapipe, counts the loop iterations of a
/// shader invocation, all loops together, from the start of a dispatch, and
/// once 65535 have run it leaves every loop after at most one more pass
/// (LP_MAX_TGSI_LOOP_ITERATIONS, "shared between every loop", in gallivm's
/// lp_exec_endloop; Mesa 22.3). A kernel that runs past it computes garbage
/// without an error: relu at (n, h, m, N) = (4, 64, 2, 256) did so at the
/// 49th step of a dispatch, and the deep-linear corruptions seen before (several
/// blocks per dispatch) fit the same count; so did scalar-deep at L = 64 (about
/// 330 a step) in the per-invocation kernel's 1024 steps per dispatch. On such
/// an adapter the host bounds the steps of a dispatch by `steps_per_dispatch`.
pub const LLVMPIPE_LOOP_LIMIT: u64 = 65535;

/// Upper bounds on the loop trips of one invocation of a kernel, as
/// llvmpipe counts them: every pass through a loop's end, the last one that
/// leaves the loop included, with every loop counted as written (the compiler
/// may unroll some) and both sides of a branch taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopTrips {
    /// Once per dispatch: loading and storing θ and the fingerprint ring,
    /// the model's preparation (workgroup kernels).
    pub per_dispatch: u64,
    /// Once per block of CHECK_EVERY iterations that a dispatch touches: the
    /// first fingerprint and the check (a gradient, ‖g‖², the classification).
    pub per_block: u64,
    /// Once per iteration: the gradient, the update and the fingerprint.
    pub per_step: u64,
}

impl LoopTrips {
    /// Trips of a dispatch of `steps` iterations in blocks of `check_every`.
    pub fn dispatch(&self, steps: u64, check_every: u64) -> u64 {
        self.per_dispatch + (steps / check_every + 2) * self.per_block + steps * self.per_step
    }
}

/// Trips of a loop of `iterations` passes whose body costs `body` trips: each
/// pass, and the test that leaves.
pub(crate) fn loop_trips(iterations: u64, body: u64) -> u64 {
    iterations * body + iterations + 1
}

/// Passes of a lane-strided loop `for (i = lane; i < n; i += lanes)`.
pub(crate) fn strided(n: usize, lanes: u32) -> u64 {
    n.div_ceil(lanes as usize) as u64
}

/// The trips of `descend_workgroup.wgsl` around a model whose gradient costs
/// `gradient` trips and whose `model_prepare` costs `prepare`.
pub(crate) fn workgroup_trips(
    gradient: u64,
    prepare: u64,
    dim: usize,
    lanes: u32,
    rule: &StopRule,
) -> LoopTrips {
    let parts = crate::stopping::PARTS.min(dim);
    let parts_loop = loop_trips(
        strided(parts, lanes),
        loop_trips(dim.div_ceil(crate::stopping::PARTS) as u64, 0),
    );
    let sum_parts = loop_trips(parts as u64, 0);
    let fingerprint = parts_loop + sum_parts;
    let over_theta = loop_trips(strided(dim, lanes), 0);
    let period = u64::from(rule.max_period);
    let classify = loop_trips(period, loop_trips(period, 0));
    let ring = loop_trips(rule.history_len() as u64, 0);
    // The optimizer's loops: the look-ahead point (Nesterov), and ‖v‖² at a check.
    let (ahead, speed) = match rule.optimizer {
        OptimizerKind::Gd => (0, 0),
        OptimizerKind::Momentum => (0, fingerprint),
        OptimizerKind::Nesterov => (over_theta, fingerprint),
    };
    LoopTrips {
        per_dispatch: prepare + 2 * over_theta + 2 * ring,
        // The block loop, the first fingerprint, the step loop's exit and the check.
        per_block: 2 + fingerprint + gradient + fingerprint + sum_parts + classify + speed,
        per_step: 1 + gradient + over_theta + fingerprint + ahead,
    }
}

/// The trips of `descend.wgsl` (one invocation per trajectory) around a
/// model whose `gradient` costs `gradient` trips.
pub(crate) fn invocation_trips(gradient: u64, dim: usize, rule: &StopRule) -> LoopTrips {
    let parts = crate::stopping::PARTS;
    // `fingerprint` and `squared_norm`: the plain loop up to PARTS parameters.
    let sum = if dim <= parts {
        loop_trips(dim as u64, 0)
    } else {
        loop_trips(parts as u64, loop_trips(dim.div_ceil(parts) as u64, 0))
    };
    let over_theta = loop_trips(dim as u64, 0);
    let period = u64::from(rule.max_period);
    let classify = loop_trips(period, loop_trips(period, 0));
    let ring = loop_trips(rule.history_len() as u64, 0);
    // The optimizer's loops: loading and storing v, the look-ahead point
    // (Nesterov), and ‖v‖² at a check.
    let (load, ahead, speed) = match rule.optimizer {
        OptimizerKind::Gd => (0, 0, 0),
        OptimizerKind::Momentum => (2 * over_theta, 0, sum),
        OptimizerKind::Nesterov => (2 * over_theta, over_theta, sum),
    };
    // The layers' step sizes, loaded once.
    let slots = if rule.step_slots > 1 {
        loop_trips(u64::from(rule.step_slots), 0)
    } else {
        0
    };
    LoopTrips {
        per_dispatch: 2 * over_theta + 2 * ring + load + slots,
        // The block loop, the first fingerprint, the step loop's exit and the
        // check (bounds, a gradient, ‖g‖², the classification).
        per_block: 2 + sum + over_theta + gradient + sum + classify + speed,
        per_step: 1 + gradient + over_theta + sum + ahead,
    }
}

/// Iterations one dispatch may run, at most `most`, so that its loop trips
/// stay within `budget`; 0 when not even one fits. A per-invocation kernel
/// takes whole blocks when one fits, so that its fingerprint ring stays in
/// registers; otherwise (and a workgroup kernel always) the dispatch may stop
/// inside a block.
pub fn steps_per_dispatch(
    layout: Layout,
    trips: &LoopTrips,
    check_every: u32,
    most: u64,
    budget: u64,
) -> u64 {
    let check_every = u64::from(check_every.max(1));
    let mut steps = most.min(budget / trips.per_step.max(1));
    while steps > 0 && trips.dispatch(steps, check_every) > budget {
        steps -= 1;
    }
    if layout == Layout::PerInvocation && steps >= check_every {
        steps -= steps % check_every;
    }
    steps
}

const INVOCATION_WORKGROUP: u32 = 64;

/// Bytes of workgroup memory `descend_workgroup.wgsl` itself declares: the
/// shared verdict (16) and the PARTS partial sums (reals) and out-of-bounds
/// flags (u32).
pub fn driver_workgroup_bytes(precision: Precision) -> usize {
    16 + (real_bytes(precision) + 4) * crate::stopping::PARTS
}

/// What the adapter allows that decides a kernel's shape.
#[derive(Clone, Copy, Debug)]
pub struct DeviceLimits {
    /// Bytes of workgroup memory.
    pub workgroup_storage: u32,
    pub max_invocations: u32,
    /// Loop trips one invocation may run in a dispatch, on an adapter that
    /// bounds them (a CPU adapter: see `LLVMPIPE_LOOP_LIMIT`); None where
    /// nothing does.
    pub loop_budget: Option<u64>,
    /// A layout asked for (`LAYOUT_ENV`) where a model has both; None: the
    /// one its size calls for.
    pub layout: Option<Layout>,
}

/// Set to `invocation` or `workgroup` to run deep-linear and relu in that
/// layout whatever their size, so that both can be timed on one adapter
/// (`scripts/gpu_check.sh`); a per-invocation kernel must still fit a CPU
/// adapter's loop budget.
pub const LAYOUT_ENV: &str = "STEPSWEEP_GPU_LAYOUT";

/// The layout `LAYOUT_ENV` asks for, if it names one.
pub fn layout_from_env() -> Option<Layout> {
    match std::env::var(LAYOUT_ENV).ok()?.as_str() {
        "invocation" => Some(Layout::PerInvocation),
        "workgroup" => Some(Layout::PerWorkgroup),
        _ => None,
    }
}

/// Whether a model whose workspace is `workspace` reals of `precision` runs
/// one invocation per trajectory (see `INVOCATION_MAX_WORKSPACE_BYTES` and,
/// on an adapter with a loop budget, a CPU adapter, `INVOCATION_MAX_WORKSPACE`),
/// unless `limits` asks for a layout.
pub(crate) fn invocation_suits(
    workspace: usize,
    precision: Precision,
    limits: DeviceLimits,
) -> bool {
    match (limits.layout, limits.loop_budget) {
        (Some(layout), _) => layout == Layout::PerInvocation,
        (None, Some(_)) => workspace <= INVOCATION_MAX_WORKSPACE,
        (None, None) => workspace * real_bytes(precision) <= INVOCATION_MAX_WORKSPACE_BYTES,
    }
}

impl DeviceLimits {
    /// The WebGPU defaults every adapter meets.
    pub const DEFAULT: DeviceLimits = DeviceLimits {
        workgroup_storage: 16384,
        max_invocations: 256,
        loop_budget: None,
        layout: None,
    };
}

/// A kernel of one invocation per trajectory around a model whose `gradient`
/// costs `gradient_trips` loop trips: the generated `model_header` (sizes and
/// baked-in constants) and the model's WGSL `model_source`, composed with
/// `flags` (and PER_INVOCATION), reading `constants` from memory where there
/// are any.
#[allow(clippy::too_many_arguments)]
pub(crate) fn per_invocation(
    model_header: String,
    model_source: &str,
    dim: usize,
    rule: &StopRule,
    gradient_trips: u64,
    precision: Precision,
    constants: Vec<f64>,
    flags: &[&str],
) -> KernelPlan {
    let weights: Vec<f64> = (0..dim).map(fingerprint_weight).collect();
    let mut flags = flags.to_vec();
    flags.push("PER_INVOCATION");
    if !constants.is_empty() {
        flags.push("MODEL_CONSTANTS");
    }
    // The fingerprint ring of a dispatch that stops inside a block, then the
    // velocity of an optimizer that has one.
    let ring = rule.history_len();
    let scratch_len = ring + velocity_len(rule, dim);
    flags.extend(optimizer_flags(rule));
    let source = [
        stop_header(rule, INVOCATION_WORKGROUP, precision),
        format!(
            "const DIM: u32 = {dim}u;\nconst SCRATCH_LEN: u32 = {scratch_len}u;\n\
             const HISTORY_OFF: u32 = 0u;\nconst VELOCITY_OFF: u32 = {ring}u;\n"
        ),
        real_array("FINGERPRINT", &weights, precision),
        model_header,
        compose("shared/descend", Some(model_source), &flags),
    ]
    .join("\n");
    KernelPlan {
        source,
        precision,
        entry: "descend_main",
        layout: Layout::PerInvocation,
        workgroup_size: INVOCATION_WORKGROUP,
        constants,
        scratch_per_trajectory: scratch_len,
        keeps_velocity: rule.optimizer.has_velocity(),
        layer_of: Vec::new(),
        loop_trips: invocation_trips(gradient_trips, dim, rule),
    }
}

/// The flags that select the optimizer's update in the descent loops, and
/// a step size per layer.
fn optimizer_flags(rule: &StopRule) -> Vec<&'static str> {
    let mut flags = match rule.optimizer {
        OptimizerKind::Gd => vec![],
        OptimizerKind::Momentum => vec!["MOMENTUM"],
        OptimizerKind::Nesterov => vec!["MOMENTUM", "NESTEROV"],
    };
    if rule.step_slots > 1 {
        flags.push("PER_LAYER");
    }
    flags
}

/// Reals of scratch per trajectory that the optimizer keeps: the velocity,
/// and with Nesterov in a workgroup kernel θ itself while the region holds
/// the look-ahead point (a per-invocation kernel keeps that in registers).
fn velocity_len(rule: &StopRule, dim: usize) -> usize {
    if rule.optimizer.has_velocity() {
        dim
    } else {
        0
    }
}

/// Bytes of a model's working storage (beyond θ, its gradient and the
/// fingerprint ring) up to which a kernel runs one invocation per trajectory
/// on a hardware GPU, its state in that invocation's registers and, past
/// them, its L1 cache; larger models take a workgroup each, whose lanes share
/// the products of one step. One invocation per trajectory wastes no lanes
/// and meets at no barrier (at deep-linear (n, L) = (4, 4) a workgroup of 32
/// lanes leaves half of them idle in every 4 × 4 product and waits at 16
/// barriers in each gradient), as long as what spills past the 255 registers
/// of a thread stays in L1: 2 KB a thread, at 8 warps an SM, is about the
/// 256 KB of L1 an H200-class SM has. The figures are in the README's "GPU
/// kernel layouts".
pub const INVOCATION_MAX_WORKSPACE_BYTES: usize = 2048;

/// Reals of workspace up to which a kernel runs one invocation per trajectory
/// on a CPU adapter (lavapipe), whatever the precision: there a private
/// array is main memory in either, and a workgroup's barriers, which switch
/// between its lanes, are what costs (docs/performance.md has the figures).
pub const INVOCATION_MAX_WORKSPACE: usize = 512;

/// Whether a per-invocation plan runs at least one iteration in a dispatch
/// within the adapter's loop budget. Where it does not (many relu samples on
/// a CPU adapter), the workgroup kernel, whose lanes share each step's loops,
/// takes the model instead.
pub(crate) fn fits_a_dispatch(plan: &KernelPlan, rule: &StopRule, limits: DeviceLimits) -> bool {
    limits.loop_budget.is_none_or(|budget| {
        steps_per_dispatch(plan.layout, &plan.loop_trips, rule.check_every, 1, budget) >= 1
    })
}

/// A kernel of one workgroup per trajectory, `lanes` lanes: its generated
/// `header` (sizes and offsets, REGION_LEN among them) and the model's WGSL,
/// composed with `flags`. The region (`shaders/shared/region.wgsl`) is in
/// workgroup memory when `in_workgroup`, otherwise in the trajectory's slice
/// of the scratch buffer, which also keeps the fingerprint ring between
/// dispatches. The fingerprint's weights follow the model's `constants` in
/// the constants buffer. `trips` are the loop trips of the model's gradient
/// and of its `model_prepare` (see `workgroup_trips`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn workgroup_kernel(
    header: String,
    model_source: &str,
    flags: &[&str],
    lanes: u32,
    in_workgroup: bool,
    region_len: usize,
    mut constants: Vec<f64>,
    dim: usize,
    (gradient_trips, prepare_trips): (u64, u64),
    rule: &StopRule,
    precision: Precision,
) -> KernelPlan {
    let fingerprint_offset = constants.len();
    constants.extend((0..dim).map(fingerprint_weight));
    let ring = rule.history_len();
    let region = if in_workgroup { 0 } else { region_len };
    // The region (when not in workgroup memory), the fingerprint ring, the
    // velocity, and with Nesterov θ while the region holds the look-ahead point.
    let velocity = region + ring;
    let point = velocity + velocity_len(rule, dim);
    let nesterov = rule.optimizer == OptimizerKind::Nesterov;
    let scratch_len = point + if nesterov { dim } else { 0 };
    let mut flags = flags.to_vec();
    flags.push("MODEL_CONSTANTS");
    if !in_workgroup {
        flags.push("REGION_IN_SCRATCH");
    }
    flags.extend(optimizer_flags(rule));
    let source = [
        stop_header(rule, lanes, precision),
        header,
        format!(
            "const SCRATCH_LEN: u32 = {scratch_len}u;\nconst HISTORY_OFF: u32 = {region}u;\n\
             const VELOCITY_OFF: u32 = {velocity}u;\nconst POINT_OFF: u32 = {point}u;\n\
             const FINGERPRINT_OFF: u32 = {fingerprint_offset}u;\n"
        ),
        compose("shared/descend_workgroup", Some(model_source), &flags),
    ]
    .join("\n");
    KernelPlan {
        source,
        precision,
        entry: "descend_workgroup_main",
        layout: Layout::PerWorkgroup,
        workgroup_size: lanes,
        constants,
        scratch_per_trajectory: scratch_len,
        keeps_velocity: rule.optimizer.has_velocity(),
        layer_of: Vec::new(),
        loop_trips: workgroup_trips(gradient_trips, prepare_trips, dim, lanes, rule),
    }
}

/// A kernel that writes the first `words` words of trajectory streams, for the
/// test that holds the WGSL RNG against `rng.rs`.
pub fn rng_stream_kernel() -> String {
    compose("shared/rng_stream", None, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::deep_linear::TargetSpec;
    use crate::models::{DeepLinearSpec, ModelSpec, PolySpec, ScalarDeepSpec};
    use crate::spec::{Precision, StopSpec};

    fn kernel(
        model: &crate::models::Model,
        rule: &StopRule,
        limits: DeviceLimits,
        precision: Precision,
    ) -> KernelPlan {
        model.kernel(rule, limits, precision)
    }

    /// The bindings of group 0 that `source` declares: slot, name and access.
    fn declared(source: &str) -> Vec<(u32, String, bindings::Access)> {
        use bindings::Access;
        let module = naga::front::wgsl::parse_str(source).unwrap();
        let mut declared: Vec<_> = module
            .global_variables
            .iter()
            .filter_map(|(_, var)| {
                let binding = var.binding.as_ref()?;
                assert_eq!(binding.group, 0, "every binding is in group 0");
                let access = match var.space {
                    naga::AddressSpace::Uniform => Access::Uniform,
                    naga::AddressSpace::Storage { access }
                        if access.contains(naga::StorageAccess::STORE) =>
                    {
                        Access::ReadWrite
                    }
                    naga::AddressSpace::Storage { .. } => Access::Read,
                    other => panic!("binding {} in {other:?}", binding.binding),
                };
                Some((
                    binding.binding,
                    var.name.clone().unwrap_or_default(),
                    access,
                ))
            })
            .collect();
        declared.sort_by_key(|d| d.0);
        declared
    }

    /// A kernel's declared bindings are exactly those the host binds for it
    /// (`KernelPlan::bindings`, from the table the host's layout is made from).
    fn bindings_match(plan: &KernelPlan) {
        let host: Vec<_> = plan
            .bindings()
            .iter()
            .map(|b| (b.slot, b.name.to_string(), b.access))
            .collect();
        assert_eq!(
            declared(&plan.source),
            host,
            "{} ({:?})",
            plan.entry,
            plan.layout
        );
    }

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
        let deep = |layers, size, covariance: bool| {
            ModelSpec::DeepLinear(DeepLinearSpec {
                layers,
                size,
                target: TargetSpec::Gaussian {
                    scale: 1.0,
                    seed: 0,
                },
                sigma_max: None,
                input_covariance: covariance.then(|| {
                    (0..size)
                        .map(|i| (0..size).map(|j| f64::from(u8::from(i == j))).collect())
                        .collect()
                }),
                inputs: None,
            })
        };
        let models = [
            ModelSpec::Poly(PolySpec::default()),
            ModelSpec::ScalarDeep(ScalarDeepSpec {
                layers: 1,
                lambda: 2.0,
            }),
            ModelSpec::ScalarDeep(ScalarDeepSpec {
                layers: 64,
                lambda: -0.5,
            }),
            deep(4, 4, false),
            deep(1, 1, true),
            deep(3, 8, true),
            deep(16, 32, false),
            deep(3, 12, false),
        ];
        for precision in [Precision::F32, Precision::F64] {
            let mut layouts = Vec::new();
            for spec in &models {
                let model = spec.build().unwrap();
                let plan = kernel(&model, &rule, DeviceLimits::DEFAULT, precision);
                validate(&plan.source);
                bindings_match(&plan);
                assert_eq!(plan.precision, precision);
                assert!(plan
                    .source
                    .contains(&format!("alias real = {};", precision.name())));
                layouts.push((plan.layout, plan.source.contains("scratch[region_base")));
            }
            // Small models take an invocation each on a hardware adapter:
            // (1,1), and (4,4), whose workspace of 288 reals is within 2 KB
            // in f32 but not in f64; (8,3), 896 reals, fits workgroup memory
            // in both precisions; (12,3), 2016 reals, fits in f32 but spills
            // in f64, which needs twice the bytes; (32,16) spills in both.
            assert_eq!(layouts[4], (Layout::PerInvocation, false));
            let single = precision == Precision::F32;
            let wide = if single {
                Layout::PerInvocation
            } else {
                Layout::PerWorkgroup
            };
            assert_eq!(layouts[3], (wide, false));
            // A CPU adapter, which has no registers to fill, runs (4,4) per
            // invocation in both precisions, and (8,3) still in a workgroup.
            let cpu = DeviceLimits {
                loop_budget: Some(LLVMPIPE_LOOP_LIMIT / 2),
                ..DeviceLimits::DEFAULT
            };
            let plan = |spec: &ModelSpec| kernel(&spec.build().unwrap(), &rule, cpu, precision);
            assert_eq!(plan(&models[3]).layout, Layout::PerInvocation);
            assert_eq!(plan(&models[5]).layout, Layout::PerWorkgroup);
            assert_eq!(layouts[5], (Layout::PerWorkgroup, false));
            assert_eq!(layouts[6], (Layout::PerWorkgroup, true));
            assert_eq!(
                layouts[7],
                (Layout::PerWorkgroup, precision == Precision::F64)
            );
        }
        validate(&rng_stream_kernel());
        validate(&compact());
        for (source, table) in [
            (rng_stream_kernel(), &bindings::rng_stream::ALL[..]),
            (compact(), &bindings::compact::ALL[..]),
        ] {
            let host: Vec<_> = table
                .iter()
                .map(|b| (b.slot, b.name.to_string(), b.access))
                .collect();
            assert_eq!(declared(&source), host);
        }
    }

    /// Every family's kernels in both layouts validate and bind what the
    /// host binds with every optimizer and with per-layer step sizes (the
    /// layer table bound beside the state), in both precisions.
    #[test]
    fn kernels_validate_with_every_optimizer_and_per_layer_steps() {
        use crate::models::mlp::{Activation, MlpSpec};
        use crate::models::relu::data::{InputSpec, TargetSpec as Targets};
        use crate::optimizer::OptimizerKind;
        let mlp = |hidden: Vec<u32>, activation| {
            ModelSpec::Mlp(MlpSpec {
                input_size: 4,
                hidden,
                output_size: 2,
                activation,
                samples: Some(8),
                inputs: InputSpec::Gaussian { std: 1.0, seed: 1 },
                targets: Targets::Gaussian { std: 1.0, seed: 2 },
            })
        };
        let deep = |layers, size| {
            ModelSpec::DeepLinear(DeepLinearSpec {
                layers,
                size,
                target: TargetSpec::Gaussian {
                    scale: 1.0,
                    seed: 0,
                },
                sigma_max: None,
                input_covariance: None,
                inputs: None,
            })
        };
        let models = [
            ModelSpec::Poly(PolySpec::default()),
            ModelSpec::ScalarDeep(ScalarDeepSpec {
                layers: 5,
                lambda: 2.0,
            }),
            deep(2, 2),
            deep(3, 8),
            deep(16, 32),
            mlp(vec![5, 3], Activation::Tanh),
            mlp(vec![64, 64, 64], Activation::Relu),
            mlp(vec![6], Activation::Identity),
        ];
        let cpu = DeviceLimits {
            loop_budget: Some(LLVMPIPE_LOOP_LIMIT / 2),
            ..DeviceLimits::DEFAULT
        };
        let mut layouts = std::collections::HashSet::new();
        for precision in [Precision::F32, Precision::F64] {
            for spec in &models {
                let model = spec.build().unwrap();
                let layers = model.layers().len() as u32;
                for optimizer in [
                    OptimizerKind::Gd,
                    OptimizerKind::Momentum,
                    OptimizerKind::Nesterov,
                ] {
                    for slots in [1, layers] {
                        let mut rule = StopSpec::default().rule(precision, 100_000);
                        rule.optimizer = optimizer;
                        rule.step_slots = slots;
                        for limits in [DeviceLimits::DEFAULT, cpu] {
                            let plan = model.kernel(&rule, limits, precision);
                            validate(&plan.source);
                            bindings_match(&plan);
                            assert_eq!(plan.keeps_velocity, optimizer.has_velocity());
                            assert_eq!(
                                plan.layer_of.len(),
                                if slots > 1 { model.dim() } else { 0 }
                            );
                            layouts.insert((model.name(), format!("{:?}", plan.layout)));
                        }
                    }
                }
            }
        }
        // The networks take both layouts among these sizes and adapters.
        for kind in ["deep-linear", "mlp"] {
            let of_kind = layouts.iter().filter(|(k, _)| *k == kind).count();
            assert_eq!(of_kind, 2, "{kind}: {layouts:?}");
        }
    }

    #[test]
    fn relu_kernels_validate_and_fit_the_limits_at_every_size() {
        use crate::models::relu::data::{InputSpec, TargetSpec as ReluTarget};
        use crate::models::ReluSpec;
        let rule = StopSpec::default().rule(Precision::F32, 100_000);
        let relu = |n, h, m, samples| {
            ModelSpec::Relu(ReluSpec {
                input_size: n,
                hidden: h,
                output_size: m,
                samples: Some(samples),
                inputs: InputSpec::Grid {},
                targets: ReluTarget::Sin { frequency: 1.0 },
                target_norm: None,
                bias_std: 1.0,
                bias_seed: 0,
                bias: None,
            })
            .build()
            .unwrap()
        };
        let lavapipe = DeviceLimits {
            workgroup_storage: 32768,
            max_invocations: 1024,
            loop_budget: Some(LLVMPIPE_LOOP_LIMIT / 2),
            layout: None,
        };
        for (n, h, m, samples) in [
            (1, 20, 1, 1),
            (1, 20, 1, 64),
            (4, 64, 2, 256),
            (1, 20, 1, 1000),
            (64, 256, 16, 4096),
            (1, 1, 1, 4096),
            (64, 1, 16, 1),
        ] {
            for (limits, precision) in [
                (DeviceLimits::DEFAULT, Precision::F32),
                (lavapipe, Precision::F32),
                (DeviceLimits::DEFAULT, Precision::F64),
                (lavapipe, Precision::F64),
            ] {
                let plan = kernel(&relu(n, h, m, samples), &rule, limits, precision);
                validate(&plan.source);
                bindings_match(&plan);
                assert!(plan.workgroup_size <= limits.max_invocations);
                // Workgroup arrays (region, samples, the driver's verdict) within the limit.
                let workgroup_reals: usize = plan
                    .source
                    .lines()
                    .filter(|l| l.starts_with("var<workgroup>") && l.contains("array<real, "))
                    .map(|l| {
                        let len = l
                            .split("array<real, ")
                            .nth(1)
                            .unwrap()
                            .trim_end_matches(">;");
                        len.parse::<usize>().unwrap_or_else(|_| {
                            let name = format!("const {len}: u32 = ");
                            let line = plan.source.lines().find(|k| k.starts_with(&name)).unwrap();
                            line[name.len()..].trim_end_matches("u;").parse().unwrap()
                        })
                    })
                    .sum();
                assert!(
                    workgroup_reals * real_bytes(precision) + driver_workgroup_bytes(precision)
                        <= limits.workgroup_storage as usize,
                    "({n},{h},{m},{samples}) in {}",
                    precision.name()
                );
            }
        }
        // The notebook's model keeps region and samples in lavapipe's workgroup memory; the largest spills.
        let small = kernel(&relu(1, 20, 1, 1000), &rule, lavapipe, Precision::F32);
        assert!(
            small.source.contains("var<workgroup> samples")
                && small.source.contains("var<workgroup> region")
        );
        // The benchmark's size (a workspace of 201 reals) and the
        // notebook's (1000 samples) run one invocation per trajectory on a
        // hardware adapter, in both precisions; on a CPU adapter one of their
        // steps, with a check beside it, would spend a dispatch's loop
        // budget, and a workgroup shares it. (4, 64, 2, 256) needs a
        // workspace of 514 reals, past the invocation's limit everywhere.
        for precision in [Precision::F32, Precision::F64] {
            for (n, h, m, samples) in [(1, 20, 1, 64), (1, 20, 1, 1000)] {
                let model = relu(n, h, m, samples);
                let hardware = kernel(&model, &rule, DeviceLimits::DEFAULT, precision);
                assert_eq!(hardware.layout, Layout::PerInvocation);
                assert_eq!(hardware.scratch_per_trajectory, rule.history_len());
                let cpu = kernel(&model, &rule, lavapipe, precision);
                assert_eq!(cpu.layout, Layout::PerWorkgroup);
            }
            for limits in [DeviceLimits::DEFAULT, lavapipe] {
                let plan = kernel(&relu(4, 64, 2, 256), &rule, limits, precision);
                assert_eq!(plan.layout, Layout::PerWorkgroup);
            }
        }
        // A size whose step fits the loop budget runs per invocation there.
        let one = kernel(&relu(1, 20, 1, 1), &rule, lavapipe, Precision::F64);
        assert_eq!(one.layout, Layout::PerInvocation);
        let large = kernel(&relu(64, 256, 16, 4096), &rule, lavapipe, Precision::F32);
        assert!(
            large.source.contains("scratch[region_base")
                && !large.source.contains("var<workgroup> samples")
        );
        // lavapipe's loop limit: (4, 64, 2, 256) ran 48 steps right and the
        // 49th wrong in one dispatch, so a step takes more than 65535/49
        // loop iterations there, which the bound must cover; a dispatch
        // then takes fewer steps than a block. The notebook's size fits a
        // few steps per dispatch; the largest size not one.
        let steps = |plan: &KernelPlan| {
            steps_per_dispatch(
                plan.layout,
                &plan.loop_trips,
                rule.check_every,
                64,
                LLVMPIPE_LOOP_LIMIT / 2,
            )
        };
        let measured = kernel(&relu(4, 64, 2, 256), &rule, lavapipe, Precision::F32);
        let trips = measured.loop_trips;
        assert!(trips.per_step * 49 > LLVMPIPE_LOOP_LIMIT, "{trips:?}");
        assert!((1..64).contains(&steps(&measured)), "{}", steps(&measured));
        assert!(steps(&small) >= 1);
        assert_eq!(steps(&large), 0);
    }

    #[test]
    fn a_dispatch_within_its_loop_budget() {
        let trips = LoopTrips {
            per_dispatch: 100,
            per_block: 1000,
            per_step: 500,
        };
        // 100 + (s/64 + 2)·1000 + 500·s ≤ 10 000 for s ≤ 15.
        let steps = |layout, check_every, most, budget| {
            steps_per_dispatch(layout, &trips, check_every, most, budget)
        };
        assert_eq!(steps(Layout::PerWorkgroup, 64, 64, 10_000), 15);
        assert_eq!(steps(Layout::PerWorkgroup, 64, 8, 10_000), 8);
        assert_eq!(steps(Layout::PerWorkgroup, 64, 64, 2_000), 0);
        assert_eq!(trips.dispatch(15, 64), 9_600);
        // A per-invocation kernel takes whole blocks when one fits, else
        // stops inside a block.
        assert_eq!(steps(Layout::PerInvocation, 64, 1024, 10_000), 15);
        assert_eq!(steps(Layout::PerInvocation, 8, 1024, 10_000), 8);
        assert_eq!(steps(Layout::PerInvocation, 4, 1024, 10_000), 8);
        assert_eq!(steps(Layout::PerInvocation, 4, 1024, 2_000), 0);
    }

    #[test]
    fn per_invocation_kernels_keep_within_the_loop_limit() {
        let budget = LLVMPIPE_LOOP_LIMIT / 2;
        let plan = |spec: ModelSpec, check_every: u32| {
            let rule = StopSpec {
                check_every,
                ..StopSpec::default()
            }
            .rule(Precision::F32, 100_000);
            let plan = kernel(
                &spec.build().unwrap(),
                &rule,
                DeviceLimits::DEFAULT,
                Precision::F32,
            );
            assert_eq!(plan.layout, Layout::PerInvocation);
            assert_eq!(plan.scratch_per_trajectory, rule.history_len());
            plan
        };
        let steps = |plan: &KernelPlan, check_every| {
            steps_per_dispatch(plan.layout, &plan.loop_trips, check_every, 1024, budget)
        };
        let deep = |layers| {
            ModelSpec::ScalarDeep(ScalarDeepSpec {
                layers,
                lambda: 2.0,
            })
        };
        // Measured on lavapipe: scalar-deep at L = 64 stopped between checks
        // in dispatches of 1024 steps, so the count must exceed the limit.
        let long = plan(deep(64), 64);
        assert!(
            long.loop_trips.dispatch(1024, 64) > LLVMPIPE_LOOP_LIMIT,
            "{:?}",
            long.loop_trips
        );
        let s = steps(&long, 64);
        assert!((64..1024).contains(&s) && s % 64 == 0, "{s}");
        // Blocks longer than a dispatch allows: the dispatch stops inside one.
        let s = steps(&plan(deep(64), 512), 512);
        assert!((1..512).contains(&s), "{s}");
        // Short ones keep their 1024 steps.
        assert_eq!(steps(&plan(deep(2), 64), 64), 1024);
        assert_eq!(
            steps(&plan(ModelSpec::Poly(PolySpec::default()), 64), 64),
            1024
        );
    }

    #[test]
    fn real_literals_round_trip() {
        for v in [
            1e-4,
            0.1,
            -12.0,
            1e6,
            3.4e38,
            1.0 / 3.0,
            2f64.powi(-1000),
            1e300,
        ] {
            if v < 3.5e38 {
                let lit = real_literal(v, Precision::F32);
                let parsed: f32 = lit.trim_end_matches('f').parse().unwrap();
                assert_eq!(parsed, v as f32, "{lit}");
            }
            let lit = real_literal(v, Precision::F64);
            let parsed: f64 = lit.trim_end_matches("lf").parse().unwrap();
            assert_eq!(parsed, v, "{lit}");
            // naga reads it back to the same f64.
            let module = naga::front::wgsl::parse_str(&format!("const C: f64 = {lit};")).unwrap();
            let (_, c) = module.constants.iter().next().unwrap();
            let naga::Expression::Literal(naga::Literal::F64(read)) =
                module.global_expressions[c.init]
            else {
                panic!("{lit} is not an f64 literal");
            };
            assert_eq!(read, v, "{lit}");
        }
    }
}
