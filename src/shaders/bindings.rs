//! The bindings of the descent and compaction kernels, in one table: the
//! WGSL declarations are generated from it (`declarations`), and so are the
//! host's bind group layouts (`backend::gpu`), so the two cannot disagree.

/// How a kernel reaches a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Uniform,
    Read,
    ReadWrite,
}

/// One binding of group 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub slot: u32,
    /// The WGSL variable's name.
    pub name: &'static str,
    pub access: Access,
    /// The WGSL variable's type.
    pub ty: &'static str,
}

impl Binding {
    /// The fewest bytes a buffer bound here holds: the type's size, or one
    /// element of a runtime-sized array, in `real_bytes` for reals. Given to
    /// the layout, as an inferred layout would give it, so that the driver
    /// checks the buffer once, when it is bound, not at every dispatch.
    pub fn min_bytes(&self, real_bytes: u64) -> u64 {
        match self.ty {
            "array<real>" => real_bytes,
            "array<u32>" | "atomic<u32>" => 4,
            // The uniform structs: four u32 each.
            _ => 16,
        }
    }
}

impl Binding {
    const fn new(slot: u32, name: &'static str, access: Access, ty: &'static str) -> Self {
        Binding {
            slot,
            name,
            access,
            ty,
        }
    }

    /// The WGSL declaration.
    pub fn declaration(&self) -> String {
        let space = match self.access {
            Access::Uniform => "uniform",
            Access::Read => "storage, read",
            Access::ReadWrite => "storage, read_write",
        };
        format!(
            "@group(0) @binding({}) var<{space}> {}: {};\n",
            self.slot, self.name, self.ty
        )
    }
}

/// The table `#bindings NAME` declares (see `compose`).
pub fn table(name: &str) -> Option<&'static [Binding]> {
    static MODEL_CONSTANTS: [Binding; 1] = [state::MODEL_CONSTANTS];
    static SCRATCH: [Binding; 1] = [state::SCRATCH];
    static LAYER_OF: [Binding; 1] = [state::LAYER_OF];
    match name {
        "state" => Some(&state::ALWAYS),
        "model_constants" => Some(&MODEL_CONSTANTS),
        "scratch" => Some(&SCRATCH),
        "layer_of" => Some(&LAYER_OF),
        "compact" => Some(&compact::ALL),
        "rng_stream" => Some(&rng_stream::ALL),
        _ => None,
    }
}

/// The WGSL declarations of `bindings`.
pub fn declarations(bindings: &[Binding]) -> String {
    bindings.iter().map(Binding::declaration).collect()
}

/// The descent kernels' bindings (their state: see `shaders/shared/state.wgsl`).
pub mod state {
    use super::{Access::*, Binding};

    /// `Params`: steps per dispatch, running trajectories, the stride.
    pub const PARAMS: Binding = Binding::new(0, "params", Uniform, "Params");
    /// θ of every trajectory, as its layout stores it.
    pub const THETA: Binding = Binding::new(1, "theta", ReadWrite, "array<real>");
    pub const STEP_SIZE: Binding = Binding::new(2, "step_size", Read, "array<real>");
    /// Each trajectory's outcome code (RUNNING until it ends).
    pub const STATUS: Binding = Binding::new(3, "status", ReadWrite, "array<u32>");
    pub const ITERATIONS: Binding = Binding::new(4, "iterations", ReadWrite, "array<u32>");
    /// Trajectories still running after the dispatch.
    pub const ACTIVE_COUNT: Binding = Binding::new(5, "active_count", ReadWrite, "atomic<u32>");
    /// The model's constants, where the kernel reads them from memory
    /// rather than having them baked in.
    pub const MODEL_CONSTANTS: Binding = Binding::new(6, "model_constants", Read, "array<real>");
    /// Per-trajectory scratch: the fingerprint ring between dispatches, and
    /// a workgroup kernel's region where workgroup memory cannot hold it.
    pub const SCRATCH: Binding = Binding::new(7, "scratch", ReadWrite, "array<real>");
    /// The running trajectories, listed by compaction.
    pub const INDEX: Binding = Binding::new(8, "index", Read, "array<u32>");
    /// The layer of each parameter, where the layers' step sizes differ.
    pub const LAYER_OF: Binding = Binding::new(9, "layer_of", Read, "array<u32>");

    /// Every descent kernel's bindings; `MODEL_CONSTANTS` and `SCRATCH` are
    /// bound where a kernel's plan asks for them (`KernelPlan::bindings`).
    pub const ALWAYS: [Binding; 7] = [
        PARAMS,
        THETA,
        STEP_SIZE,
        STATUS,
        ITERATIONS,
        ACTIVE_COUNT,
        INDEX,
    ];
}

/// The compaction kernel's bindings (`shaders/shared/compact.wgsl`).
pub mod compact {
    use super::{Access::*, Binding};

    pub const PARAMS: Binding = Binding::new(0, "cparams", Uniform, "CompactParams");
    pub const STATUS: Binding = Binding::new(1, "status", Read, "array<u32>");
    /// The list compaction reads, and the one it writes.
    pub const INDEX_IN: Binding = Binding::new(2, "index_in", Read, "array<u32>");
    pub const INDEX_OUT: Binding = Binding::new(3, "index_out", ReadWrite, "array<u32>");
    /// How many it listed.
    pub const LISTED: Binding = Binding::new(4, "listed", ReadWrite, "atomic<u32>");

    pub const ALL: [Binding; 5] = [PARAMS, STATUS, INDEX_IN, INDEX_OUT, LISTED];
}

/// The test kernel that writes RNG streams (`shaders::rng_stream_kernel`).
pub mod rng_stream {
    use super::{Access::*, Binding};

    pub const PARAMS: Binding = Binding::new(0, "rng_params", Uniform, "RngParams");
    pub const OUT: Binding = Binding::new(1, "rng_out", ReadWrite, "array<u32>");

    pub const ALL: [Binding; 2] = [PARAMS, OUT];
}
